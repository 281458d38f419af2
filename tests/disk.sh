# tests/disk.sh - virtio-blk over a read-only master with a copy-on-write
# overlay, virtio-console/rng, the hostile-guest suite (sourced by tests/run.sh).
D=$T/disks
mkdir -p "$D"
head -c $((8 << 20)) /dev/urandom >"$D/master.img"
master_sum=$(sha256sum "$D/master.img" | cut -d' ' -f1)
master_unchanged() {
	[ "$(sha256sum "$D/master.img" | cut -d' ' -f1)" = "$master_sum" ] || { fail "$1" "the master image changed"; return 1; }
}

# Write, read back, exit; the master is untouched.
vmrun disk-rw 60 run --app "$APPS/disk-test" --disk "$D/master.img" --report-dir "$D/reports"
expect_rc disk-rw 0 && expect_grep disk-rw out '^disk-test: ok$' && master_unchanged disk-rw && pass disk-rw
# Discard mode (the default) leaves nothing behind: the next run sees the master.
vmrun disk-discard 60 run --app "$APPS/disk-test" --disk "$D/master.img" -- check
expect_rc disk-discard 3 && pass disk-discard

# Persist: a second run sees the first run's data.
cd "$D" && vmrun disk-persist 60 run --app "$APPS/disk-test" --disk "$D/master.img" --disk-mode persist; cd - >/dev/null
expect_rc disk-persist 0 && [ -f "$D/master.img.overlay" ] && [ -f "$D/master.img.overlay.map" ] && pass disk-persist-write ||
	{ [ "$RC" -eq 0 ] && fail disk-persist-write "no ./master.img.overlay(.map): $(ls "$D")"; }
cd "$D" && vmrun disk-persist2 60 run --app "$APPS/disk-test" --disk "$D/master.img" --disk-mode persist -- check; cd - >/dev/null
expect_rc disk-persist2 0 && master_unchanged disk-persist2 && pass disk-persist-read

# disk diff lists exactly the clusters that differ (checked against a byte
# comparison of the merged image with the master), and commit merges.
vmrun disk-diff 30 disk diff "$D/master.img" "$D/master.img.overlay"
vmrun disk-commit 60 disk commit "$D/master.img" "$D/master.img.overlay" "$D/merged.img"
if expect_rc disk-diff 0 && expect_rc disk-commit 0; then
	grep -Eo '^cluster [0-9]+' "$T/disk-diff.out" | awk '{ print $2 }' | sort -n >"$D/diff.list"
	cmp -l "$D/master.img" "$D/merged.img" | awk '{ print int(($1 - 1) / 65536) }' | sort -n | uniq >"$D/cmp.list"
	if [ -s "$D/diff.list" ] && cmp -s "$D/diff.list" "$D/cmp.list"; then
		pass disk-diff-exact
	else
		fail disk-diff-exact "diff lists $(tr '\n' ' ' <"$D/diff.list"), bytes differ in $(tr '\n' ' ' <"$D/cmp.list")"
	fi
	master_unchanged disk-commit && pass disk-commit
fi
# commit never replaces what is not a regular file, and never deletes an
# earlier commit's leftover temporary file.
mkfifo "$D/out.fifo"
printf 'keep me\n' >"$D/merged2.img.tmp"
vmrun disk-commit-special 30 disk commit "$D/master.img" "$D/master.img.overlay" "$D/out.fifo"
expect_rc disk-commit-special 126 && expect_grep disk-commit-special err 'exists and is not a regular file' &&
	[ -p "$D/out.fifo" ] && pass disk-commit-special
vmrun disk-commit-leftover 60 disk commit "$D/master.img" "$D/master.img.overlay" "$D/merged2.img"
if expect_rc disk-commit-leftover 0; then
	if [ "$(cat "$D/merged2.img.tmp")" = "keep me" ] && cmp -s "$D/merged.img" "$D/merged2.img" &&
		[ -z "$(find "$D" -name 'merged2.img.??????')" ]; then
		pass disk-commit-leftover
	else
		fail disk-commit-leftover "the old merged2.img.tmp was touched, the result differs, or a temporary was left: $(ls "$D")"
	fi
fi
# A file-size limit (ulimit -f, 1 MiB here; the merged image is 8 MiB) ends
# commit with a clear error, never SIGXFSZ (status 153), and leaves no
# temporary file and no OUT.
(
	ulimit -f 2048
	exec "$TRIALVM" disk commit "$D/master.img" "$D/master.img.overlay" "$D/fsize.img"
) >"$T/disk-commit-fsize.out" 2>"$T/disk-commit-fsize.err" </dev/null
RC=$?
if [ "$RC" -eq 153 ]; then
	fail disk-commit-fsize "killed by SIGXFSZ"
elif expect_rc disk-commit-fsize 125 && expect_grep disk-commit-fsize err 'fsize.img.*File too large'; then
	if [ -n "$(find "$D" -name 'fsize.img*')" ]; then
		fail disk-commit-fsize "left behind: $(find "$D" -name 'fsize.img*' | tr '\n' ' ')"
	else
		pass disk-commit-fsize
	fi
fi
vmrun disk-commit-inplace 30 disk commit "$D/master.img" "$D/master.img.overlay" "$D/master.img"
expect_rc disk-commit-inplace 126 && expect_grep disk-commit-inplace err 'in place' && master_unchanged disk-commit-inplace &&
	pass disk-commit-refuses-in-place

# busybox sha256sum /dev/vda agrees with the host's sha256 of master+overlay.
if [ -x /bin/busybox ]; then
	cd "$D" && vmrun disk-busybox 120 run --app /bin/busybox --disk "$D/master.img" --disk-mode persist -- sha256sum /dev/vda; cd - >/dev/null
	want=$(sha256sum "$D/merged.img" | cut -d' ' -f1)
	expect_rc disk-busybox 0 && expect_grep disk-busybox out "^$want  /dev/vda\$" && pass disk-busybox-sha256
fi

# A damaged overlay map is refused with a clear error naming it.
cp "$D/master.img.overlay.map" "$D/map.bak"
printf 'X' | dd of="$D/master.img.overlay.map" bs=1 seek=130 conv=notrunc status=none
cd "$D" && vmrun disk-bad-map 30 run --app "$APPS/disk-test" --disk "$D/master.img" --disk-mode persist -- check; cd - >/dev/null
expect_rc disk-bad-map 125 && expect_grep disk-bad-map err 'master.img.overlay.map' && pass disk-bad-map
cp "$D/map.bak" "$D/master.img.overlay.map"

# A write beyond the capacity fails in the guest, not in trialvm.
vmrun disk-beyond 60 run --app "$APPS/disk-test" --disk "$D/master.img" -- beyond
expect_rc disk-beyond 0 && pass disk-beyond-capacity
# A read-only disk refuses writes; the guest sees an error.
vmrun disk-ro 60 run --app "$APPS/disk-test" --disk "$D/master.img,ro"
if [ "$RC" -ne 0 ] && [ "$RC" -lt 123 ]; then
	master_unchanged disk-ro && pass disk-ro
else
	fail disk-ro "exit status $RC (expected the app's I/O error status)"
fi
vmrun disk-bad-spec 10 run --app "$APPS/hello" --disk "$D/master.img,bogus"
expect_rc disk-bad-spec 126 && pass disk-bad-spec
vmrun disk-missing 10 run --app "$APPS/hello" --disk "$D/none.img"
expect_rc disk-missing 125 && expect_grep disk-missing err 'none.img' && pass disk-missing

# kill -9 in the middle of a write loop: the next run opens the overlay and
# every flushed write is there.
rm -f "$D/loop.ovl" "$D/loop.ovl.map"
"$TRIALVM" run --app "$APPS/disk-test" --disk "$D/master.img,overlay=$D/loop.ovl" --disk-mode persist -- loop 100 4 \
	>"$T/loop.out" 2>"$T/loop.err" </dev/null &
pid=$!
for _ in $(seq 300); do [ "$(grep -c flushed "$T/loop.out")" -ge 3 ] && break; sleep 0.1; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
flushed=$(grep -Eo 'flushed [0-9]+' "$T/loop.out" | tail -1 | awk '{ print $2 }')
if [ -n "$flushed" ]; then
	vmrun disk-kill9 60 run --app "$APPS/disk-test" --disk "$D/master.img,overlay=$D/loop.ovl" --disk-mode persist -- loopcheck "$flushed"
	expect_rc disk-kill9 0 && master_unchanged disk-kill9 && pass disk-kill9-flushed-writes-survive
else
	fail disk-kill9-flushed-writes-survive "the loop never flushed: $(head -c 300 "$T/loop.out" "$T/loop.err")"
fi

# After a crash, a discard overlay is kept and the report names it.
vmrun disk-crash 60 run --app "$APPS/null-deref" --disk "$D/master.img" --report-dir "$D/crash-reports"
if expect_rc disk-crash 123 && expect_grep disk-crash err 'overlay of disk .* is kept'; then
	kept=$(grep -Eo 'kept for the crash report: .*' "$T/disk-crash.err" | sed 's/.*: //')
	[ -f "$kept" ] && grep -q '"changed_clusters"' "$D"/crash-reports/*/report.json && pass disk-crash-keeps-overlay ||
		fail disk-crash-keeps-overlay "kept '$kept' missing or report lacks disks"
	rm -rf "$(dirname "$kept")"
fi

# The hostile-guest suite: every case refused, the VMM survives, and the
# device still works afterwards (the app runs after the suite).
vmrun virtio-evil 300 run --kernel "$TRIALVM_TRIALOS" --initrd "$APPS/disk-test" --cmdline 'trialos.evil -- disk-test' \
	--disk "$D/master.img"
if expect_rc virtio-evil 0 && expect_grep virtio-evil out '^evil: done [0-9]+ cases' '^disk-test: ok$'; then
	if grep -Eq 'ACCEPTED|\(bad\)' "$T/virtio-evil.out"; then
		fail virtio-evil "$(grep -E 'ACCEPTED|\(bad\)' "$T/virtio-evil.out" | head -5 | tr '\n' '|')"
	elif [ "$(grep -c ': refused$' "$T/virtio-evil.out")" -lt 25 ]; then
		fail virtio-evil "only $(grep -c ': refused$' "$T/virtio-evil.out") cases refused"
	else
		master_unchanged virtio-evil && pass virtio-evil
	fi
fi

# virtio-rng feeds getrandom; virtio-console is /dev/hvc0.
# (The device's request count shows it, not the hypercall fallback, served them.)
vmrun virtio-rng 30 run --stats --app "$APPS/clock-rand"
expect_rc virtio-rng 0 && expect_grep virtio-rng err 'virtio-rng \(slot [0-9]\): [1-9][0-9]* requests' &&
	pass virtio-rng-getrandom
vmrun virtio-hello-stats 30 run --stats --app "$APPS/hello"
expect_rc virtio-hello-stats 0 && expect_grep virtio-hello-stats err 'virtio-rng \(slot [0-9]\): [1-9]' && pass virtio-rng-at-random

# virtio-console: what the guest writes to /dev/hvc0 reaches the console
# through the device (its request count says so).
if [ -x /bin/busybox ]; then
	vmrun virtio-console 60 run --stats --app /bin/busybox -- sh -c 'echo via-hvc0 > /dev/hvc0'
	printf 'via-hvc0\n' >"$T/hvc.want"
	expect_rc virtio-console 0 && expect_out virtio-console "$T/hvc.want" &&
		expect_grep virtio-console err 'virtio-console \(slot [0-9]\): 1 requests' && pass virtio-console
fi
