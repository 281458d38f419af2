# tests/snapshot.sh - snapshots of the whole machine (sourced by
# tests/vm-suite.sh): the booted checkpoint and an exact restore of a
# trialos app, periodic snapshots, and restores that must be refused.
# guests/apps/counter prints "count 1".."count N", a checksum of memory it
# filled, and "done": a restored run must continue with no gap, no repeat.

COUNTER_ARGS="-- 40 20000"
# shellcheck disable=SC2086
vmrun snap-reference 60 run --app "$APPS/counter" $COUNTER_ARGS
if expect_rc snap-reference 0 && expect_grep snap-reference out '^count 40$' '^done$'; then
	pass snap-reference
fi
REF=$T/snap-reference.out

# The checkpoint stops exactly after the line it waits for; the restore
# prints the rest. Together: the reference, byte for byte.
# shellcheck disable=SC2086
vmrun snap-checkpoint 60 snapshot checkpoint --app "$APPS/counter" --at-console $'count 15\n' \
	-o "$T/c15.tvs" $COUNTER_ARGS
if expect_rc snap-checkpoint 0 && expect_grep snap-checkpoint err 'checkpoint written to' &&
	[ "$(tail -1 "$T/snap-checkpoint.out")" = "count 15" ] && [ -f "$T/c15.tvs" ]; then
	if [ "$(stat -c %a "$T/c15.tvs")" = 600 ]; then
		pass snap-checkpoint
	else
		fail snap-checkpoint "mode $(stat -c %a "$T/c15.tvs"), expected 600 (it holds guest memory)"
	fi
else
	[ "$RC" -eq 0 ] && fail snap-checkpoint "last line '$(tail -1 "$T/snap-checkpoint.out")', expected 'count 15'"
fi

vmrun snap-restore 60 run --restore "$T/c15.tvs"
cat "$T/snap-checkpoint.out" "$T/snap-restore.out" >"$T/snap-joined.out"
if expect_rc snap-restore 0; then
	if [ "$(head -1 "$T/snap-restore.out")" != "count 16" ]; then
		fail snap-restore "first line '$(head -1 "$T/snap-restore.out")', expected 'count 16'"
	elif ! cmp -s "$T/snap-joined.out" "$REF"; then
		fail snap-restore "checkpoint + restore output differs from the reference run: $(diff "$REF" "$T/snap-joined.out" | head -5 | tr '\n' '|')"
	else
		pass snap-restore
	fi
fi

# Its memory was materialised once into the cache and is mapped from
# there; a damaged cache file is rebuilt.
cache=$(find "$XDG_CACHE_HOME/trialvm/ram" -name '*.ram' 2>/dev/null | head -1)
vmrun snap-restore-cached 60 run -v --restore "$T/c15.tvs"
if [ -n "$cache" ] && [ "$(stat -c %s "$cache")" = $((128 << 20)) ] && [ "$(stat -c %a "$cache")" = 600 ] &&
	expect_rc snap-restore-cached 0 && expect_grep snap-restore-cached err 'guest memory mapped from .*\.ram' &&
	expect_out snap-restore-cached "$T/snap-restore.out"; then
	: >"$cache"
	vmrun snap-restore-cache-damaged 60 run --restore "$T/c15.tvs"
	if expect_rc snap-restore-cache-damaged 0 && expect_out snap-restore-cache-damaged "$T/snap-restore.out" &&
		[ "$(stat -c %s "$cache")" = $((128 << 20)) ]; then
		pass snap-restore-cached
	fi
elif [ -z "$cache" ]; then
	fail snap-restore-cached "no memory cache under $XDG_CACHE_HOME/trialvm/ram"
fi

# The cache is bounded (TRIALVM_RAM_CACHE_MAX): the least recently used
# files go first, never the one in use; stale temporary files go, young
# ones (a restore in progress) and other files stay.
if [ -n "$cache" ]; then
	cdir=$(dirname "$cache")
	for i in 1 2 3; do
		head -c 1048576 /dev/urandom >"$cdir/$(printf '%032x' "$i").ram"
		touch -d "$i days ago" "$cdir/$(printf '%032x' "$i").ram"
	done
	: >"$cdir/$(printf '%032x' 9).ram.abcdef"
	touch -d '2 hours ago' "$cdir/$(printf '%032x' 9).ram.abcdef"
	: >"$cdir/$(printf '%032x' 9).ram.ghijkl"
	: >"$cdir/notes.txt"
	used=$(($(stat -c '%b * %B' "$cache")))
	TRIALVM_RAM_CACHE_MAX=$((used + 1536 * 1024)) vmrun snap-cache-bounded 60 run --restore "$T/c15.tvs"
	left=$(cd "$cdir" && ls | tr '\n' ' ')
	if expect_rc snap-cache-bounded 0 && expect_out snap-cache-bounded "$T/snap-restore.out"; then
		if [ -f "$cache" ] && [ -f "$cdir/$(printf '%032x' 1).ram" ] && [ ! -e "$cdir/$(printf '%032x' 2).ram" ] &&
			[ ! -e "$cdir/$(printf '%032x' 3).ram" ] && [ ! -e "$cdir/$(printf '%032x' 9).ram.abcdef" ] &&
			[ -e "$cdir/$(printf '%032x' 9).ram.ghijkl" ] && [ -e "$cdir/notes.txt" ]; then
			pass snap-cache-bounded
		else
			fail snap-cache-bounded "the cache holds: $left"
		fi
	fi
	rm -f "$cdir/$(printf '%032x' 1).ram" "$cdir/$(printf '%032x' 9).ram.ghijkl" "$cdir/notes.txt"
fi

# The same checkpoint again: the same continuation (and the images given
# explicitly this time, checked against the snapshot's hashes).
vmrun snap-restore-again 60 run --restore "$T/c15.tvs" --app "$APPS/counter"
expect_rc snap-restore-again 0 && expect_out snap-restore-again "$T/snap-restore.out" && pass snap-restore-again

# Other images, other machine sizes: refused before anything runs.
vmrun snap-restore-other-app 30 run --restore "$T/c15.tvs" --app "$APPS/hello"
expect_rc snap-restore-other-app 125 &&
	expect_grep snap-restore-other-app err 'another initrd/app image' 'restoring onto other images is refused' &&
	pass snap-restore-other-app
vmrun snap-restore-mem 30 run --restore "$T/c15.tvs" --mem 64M
expect_rc snap-restore-mem 126 && expect_grep snap-restore-mem err 'leave --mem and --cpus out' && pass snap-restore-mem
vmrun snap-restore-other-disks 30 run --restore "$T/c15.tvs" --app "$APPS/counter" --disk "$APPS/hello"
expect_rc snap-restore-other-disks 125 && expect_grep snap-restore-other-disks err 'taken without a disk 0 image' &&
	pass snap-restore-other-disks

# Damaged snapshots: a flipped byte in guest memory, a truncated file.
size=$(stat -c %s "$T/c15.tvs")
cp "$T/c15.tvs" "$T/flip.tvs"
printf '\x5a' | dd of="$T/flip.tvs" bs=1 seek=$((size - 2000)) conv=notrunc 2>/dev/null
vmrun snap-restore-corrupt 30 run --restore "$T/flip.tvs"
expect_rc snap-restore-corrupt 125 && expect_grep snap-restore-corrupt err 'flip.tvs' 'checksum|corrupt' &&
	pass snap-restore-corrupt
head -c $((size / 2)) "$T/c15.tvs" >"$T/half.tvs"
vmrun snap-restore-truncated 30 run --restore "$T/half.tvs"
expect_rc snap-restore-truncated 125 && expect_grep snap-restore-truncated err 'half.tvs' 'truncated' &&
	pass snap-restore-truncated
vmrun snap-restore-missing 30 run --restore "$T/none.tvs"
expect_rc snap-restore-missing 125 && expect_grep snap-restore-missing err 'none.tvs' && pass snap-restore-missing

# A checkpoint whose string never comes: an error, and no file.
vmrun snap-checkpoint-never 60 snapshot checkpoint --app "$APPS/hello" --at-console 'never printed' -o "$T/never.tvs"
expect_rc snap-checkpoint-never 125 && expect_grep snap-checkpoint-never err 'never printed the --at-console string' &&
	{ [ ! -e "$T/never.tvs" ] || { fail snap-checkpoint-never "$T/never.tvs exists"; false; }; } &&
	pass snap-checkpoint-never
vmrun snap-checkpoint-usage 10 snapshot checkpoint --app "$APPS/hello" -o "$T/x.tvs"
expect_rc snap-checkpoint-usage 126 && expect_grep snap-checkpoint-usage err 'needs --at-console' && pass snap-checkpoint-usage

# Periodic snapshots: a full one, then incremental ones from the dirty log;
# only the newest N are kept (the oldest merged forward), and the newest
# restores into the same ending: the memory checksum, and the checksum of
# pages only trialvm wrote (virtio-rng; not in KVM's dirty log).
# check_rnd NAME OUT: OUT (a restored run) continues the periodic run: the
# same memory checksum and ending, and the same bytes in every page
# virtio-rng filled before the snapshot (pages 1..M-1 when OUT starts at
# "count M"; M = 41: it was taken after the last line).
check_rnd() {
	local first m orig="$T/snap-periodic.out" k
	first=$(grep -m1 -E '^(count|rnd) ' "$2")
	case $first in
	"count "*) m=${first#count } ;;
	*) m=41 ;;
	esac
	if [ "$(grep -E '^(sum|done)' "$2")" != "$(grep -E '^(sum|done)' "$orig")" ]; then
		fail "$1" "the restored run ends '$(tail -2 "$2" | tr '\n' '|')', the original '$(tail -2 "$orig" | tr '\n' '|')'"
		return 1
	fi
	k=$(grep -c '^count ' "$2")
	if [ "$(grep '^count ' "$orig" | tail -n "$k")" != "$(grep '^count ' "$2")" ] ||
		[ "$k" -ne $((41 - m)) ]; then
		fail "$1" "the restored run's count lines are not the tail of the original's"
		return 1
	fi
	local want got
	got=$(awk -v m="$m" '$1 == "rnd" && $2 < m' "$2")
	# The restore may start inside the rnd lines: compare the pages it shows.
	want=$(awk -v m="$m" 'NR == FNR { if ($1 == "rnd") seen[$2] = 1; next } $1 == "rnd" && $2 < m && seen[$2]' "$2" "$orig")
	# (No rnd lines at all: the snapshot was taken after they were all
	# printed, in the last milliseconds; the ending was checked above.)
	if [ "$want" != "$got" ]; then
		fail "$1" "pages virtio-rng filled before the snapshot (1..$((m - 1))) differ after the restore: $(diff <(echo "$want") <(echo "$got") | head -3 | tr '\n' '|')"
		return 1
	fi
	return 0
}
# shellcheck disable=SC2086
vmrun snap-periodic 120 run --app "$APPS/counter" --snapshot-every 0.2 --snapshot-dir "$T/snaps" --snapshot-keep 2 \
	-- 40 2000 50 rnd
n=$(find "$T/snaps" -name 'snap-*.tvs' 2>/dev/null | wc -l)
last=$(find "$T/snaps" -name 'snap-*.tvs' 2>/dev/null | sort | tail -1)
if expect_rc snap-periodic 0; then
	if [ "$n" -lt 1 ] || [ "$n" -gt 2 ]; then
		fail snap-periodic "$n snapshots kept in $T/snaps, expected 1 or 2 (--snapshot-keep 2)"
	else
		vmrun snap-periodic-restore 120 run --restore "$last"
		if expect_rc snap-periodic-restore 0 && expect_grep snap-periodic-restore out '^done$' &&
			check_rnd snap-periodic "$T/snap-periodic-restore.out"; then
			pass snap-periodic
		fi
	fi
fi
# The newest is incremental, the oldest kept is full (merged), and that
# one restores too; an incremental one without its parent is refused.
if [ "$n" -eq 2 ]; then
	first=$(find "$T/snaps" -name 'snap-*.tvs' | sort | head -1)
	vmrun snap-chain-inspect 10 snapshot inspect "$last"
	vmrun snap-chain-inspect-full 10 snapshot inspect "$first"
	if expect_grep snap-chain-inspect out 'an incremental snapshot' 'section parent' &&
		expect_grep snap-chain-inspect-full out 'a full snapshot'; then
		pass snap-chain-inspect
	fi
	vmrun snap-merged-restore 120 run --restore "$first"
	expect_rc snap-merged-restore 0 && expect_grep snap-merged-restore out '^done$' &&
		check_rnd snap-merged-restore "$T/snap-merged-restore.out" && pass snap-merged-restore
	mv "$first" "$first.away"
	vmrun snap-chain-broken 30 run --restore "$last"
	expect_rc snap-chain-broken 125 && expect_grep snap-chain-broken err 'its parent' "$(basename "$first")" &&
		pass snap-chain-broken
	mv "$first.away" "$first"
else
	skip snap-chain-inspect "the run kept $n snapshots, not 2 (too short a run on this machine)"
fi
vmrun snap-periodic-usage 10 run --app "$APPS/hello" --snapshot-every 1
expect_rc snap-periodic-usage 126 && expect_grep snap-periodic-usage err 'go together' && pass snap-periodic-usage

# A crash with periodic snapshots on: the crash-time state is written as a
# crash snapshot, report.json names it and the last periodic one, and that
# one re-runs into the same crash at the same place.
# shellcheck disable=SC2086
vmrun snap-crash 120 run --app "$APPS/counter" --snapshot-every 0.3 --snapshot-dir "$T/csnaps" \
	--report-dir "$T/creports" -- 10 2000 50 crash
report=$(find "$T/creports" -name report.json 2>/dev/null | head -1)
if expect_rc snap-crash 123 && expect_grep snap-crash err 'crash snapshot: .*crash-[0-9]+\.tvs' && [ -n "$report" ]; then
	crash_file=$(jq -r '.snapshots.crash.file' "$report")
	crash_id=$(jq -r '.snapshots.crash.id' "$report")
	last_file=$(jq -r '.snapshots.before_crash.file' "$report")
	last_id=$(jq -r '.snapshots.before_crash.id' "$report")
	rip=$(jq -r '.app.registers.rip // .vcpus[0].rip' "$report")
	"$TRIALVM" snapshot inspect "$crash_file" >"$T/snap-crash-inspect.out" 2>&1
	"$TRIALVM" snapshot inspect "$last_file" >"$T/snap-crash-inspect-last.out" 2>&1
	if ! grep -q "id     $crash_id" "$T/snap-crash-inspect.out" || ! grep -q "parent $last_id" "$T/snap-crash-inspect.out"; then
		fail snap-crash "the crash snapshot $crash_file is not the id report.json names, over the last periodic one: $(head -3 "$T/snap-crash-inspect.out" | tr '\n' '|')"
	elif ! grep -q "id     $last_id" "$T/snap-crash-inspect-last.out"; then
		fail snap-crash "the last periodic snapshot $last_file is not the id report.json names"
	else
		pass snap-crash
		vmrun snap-crash-rerun 120 run --restore "$last_file" --report-dir "$T/creports2"
		report2=$(find "$T/creports2" -name report.json 2>/dev/null | head -1)
		if expect_rc snap-crash-rerun 123 && [ -n "$report2" ]; then
			rip2=$(jq -r '.app.registers.rip // .vcpus[0].rip' "$report2")
			if [ "$rip" = "$rip2" ] && [ "$(jq -r .cause.kind "$report")" = "$(jq -r .cause.kind "$report2")" ]; then
				pass snap-crash-rerun
			else
				fail snap-crash-rerun "restored run crashed at $rip2 ($(jq -r .cause.kind "$report2")), the original at $rip ($(jq -r .cause.kind "$report"))"
			fi
		fi
	fi
fi

# The kept fixture: a checkpoint written by trialvm 0.1.0 (format 1) of
# tests/fixtures/snapshot-v1/tiny-count.elf (tests/guests/tiny.S, variant
# count, as built then) taken at "m\n". Every later build must restore it
# into the rest of the alphabet: never regenerate it, add a new fixture
# next to it when the format grows.
FIX=tests/fixtures/snapshot-v1
printf '%s\n' n o p q r s t u v w x y z >"$T/fixture.expected"
vmrun snap-fixture-v1 60 run --restore "$FIX/count-m.tvs" --kernel "$FIX/tiny-count.elf"
expect_rc snap-fixture-v1 0 && expect_out snap-fixture-v1 "$T/fixture.expected" && pass snap-fixture-v1

# A guest writing to its disk: checkpointed after 8 of 32 clusters (each
# flushed), restored into a new persistent overlay, it writes the rest; the
# overlay then holds all 32, the first 8 only through the snapshot.
head -c $((8 << 20)) /dev/zero >"$T/snapdisk.img"
vmrun snap-disk-checkpoint 120 snapshot checkpoint --app "$APPS/disk-test" --disk "$T/snapdisk.img" \
	--at-console $'flushed 8\n' -o "$T/disk8.tvs" -- loop 32 4
if expect_rc snap-disk-checkpoint 0; then
	vmrun snap-disk-restore 120 run --restore "$T/disk8.tvs" --disk-mode persist \
		--disk "$T/snapdisk.img,overlay=$T/restored.ovl"
	if expect_rc snap-disk-restore 0 && [ "$(head -1 "$T/snap-disk-restore.out")" = "flushed 12" ] &&
		expect_grep snap-disk-restore out '^flushed 32$'; then
		vmrun snap-disk-check 120 run --app "$APPS/disk-test" --disk-mode persist \
			--disk "$T/snapdisk.img,overlay=$T/restored.ovl" -- loopcheck 32
		expect_rc snap-disk-check 0 && pass snap-disk-restore
	elif [ "$RC" -eq 0 ]; then
		fail snap-disk-restore "the restore printed '$(head -2 "$T/snap-disk-restore.out" | tr '\n' '|')', expected to go on at 'flushed 12'"
	fi
	vmrun snap-disk-restore-used 60 run --restore "$T/disk8.tvs" --disk-mode persist \
		--disk "$T/snapdisk.img,overlay=$T/restored.ovl"
	expect_rc snap-disk-restore-used 125 && expect_grep snap-disk-restore-used err 'needs a fresh one' &&
		pass snap-disk-restore-used
fi

# Snapshots of a run with a --crash-on software breakpoint hold the
# guest's own bytes (a restore without --crash-on runs through poweroff
# and exits 0: with the breakpoint left in, trialos would die there), and
# --crash-on with --restore arms it again in the restored machine (through
# its page tables): that restore stops at poweroff as a breakpoint crash.
vmrun snap-bp 120 snapshot checkpoint --app "$APPS/counter" --crash-on poweroff --at-console $'count 5\n' \
	-o "$T/bp5.tvs" -- 30 2000 20
if expect_rc snap-bp 0 && [ -f "$T/bp5.tvs" ]; then
	vmrun snap-bp-restore 120 run --restore "$T/bp5.tvs"
	if expect_rc snap-bp-restore 0 && [ "$(head -1 "$T/snap-bp-restore.out")" = "count 6" ] &&
		expect_grep snap-bp-restore out '^count 30$' '^done$'; then
		pass snap-bp-restore-clean
	fi
	vmrun snap-bp-restore-armed 120 run --restore "$T/bp5.tvs" --crash-on poweroff --no-report
	expect_rc snap-bp-restore-armed 123 && expect_grep snap-bp-restore-armed out '^done$' &&
		expect_grep snap-bp-restore-armed err 'RIP 0x[0-9a-f]+ in poweroff\+0x0 ' && pass snap-bp-restore-armed
fi

# A disk changed by more than the 48 MiB the first format held: a
# checkpoint after 1000 clusters (62.5 MiB) restores into a fresh overlay,
# which the restored run completes; every cluster then checks.
head -c $((80 << 20)) /dev/zero >"$T/bigdisk.img"
vmrun snap-bigdisk-checkpoint 300 snapshot checkpoint --app "$APPS/disk-test" --disk "$T/bigdisk.img" \
	--at-console $'flushed 1000\n' -o "$T/big1000.tvs" -- loop 1100 4
if expect_rc snap-bigdisk-checkpoint 0; then
	vmrun snap-bigdisk-restore 300 run --restore "$T/big1000.tvs" --disk-mode persist \
		--disk "$T/bigdisk.img,overlay=$T/big.ovl"
	if expect_rc snap-bigdisk-restore 0 && [ "$(head -1 "$T/snap-bigdisk-restore.out")" = "flushed 1004" ]; then
		vmrun snap-bigdisk-check 120 run --app "$APPS/disk-test" --disk-mode persist \
			--disk "$T/bigdisk.img,overlay=$T/big.ovl" -- loopcheck 1100
		expect_rc snap-bigdisk-check 0 && pass snap-bigdisk
	elif [ "$RC" -eq 0 ]; then
		fail snap-bigdisk "the restore began with '$(head -1 "$T/snap-bigdisk-restore.out")', expected 'flushed 1004'"
	fi
fi

# Periodic snapshots of a writing disk: incremental ones hold the clusters
# written since their parent (disk sections), --snapshot-keep merges them
# forward; the newest restores into a fresh overlay holding everything
# written before it, and the restored run's rest completes the disk. The
# periodic run starts from a checkpoint taken after 300 clusters, so its
# first (full) snapshot surely holds clusters no later one writes again:
# they reach the newest snapshots only through the merges.
vmrun snap-disk-periodic-checkpoint 300 snapshot checkpoint --app "$APPS/disk-test" --disk "$T/bigdisk.img" \
	--at-console $'flushed 300\n' -o "$T/big300.tvs" -- loop 1100 4
expect_rc snap-disk-periodic-checkpoint 0
vmrun snap-disk-periodic 300 run --restore "$T/big300.tvs" --snapshot-every 0.2 \
	--snapshot-dir "$T/dsnaps" --snapshot-keep 2
newest=$(ls "$T"/dsnaps/snap-*.tvs 2>/dev/null | tail -1)
nkept=$(ls "$T"/dsnaps/snap-*.tvs 2>/dev/null | wc -l)
num=$(basename "${newest:-snap-0.tvs}" .tvs)
num=$((10#${num#snap-}))
if ! expect_rc snap-disk-periodic 0; then
	:
elif [ "$nkept" -ne 2 ] || [ "$num" -lt 3 ]; then
	fail snap-disk-periodic "expected 2 kept of at least 3 snapshots (merged forward): $(ls "$T/dsnaps" | tr '\n' ' ')"
elif ! "$TRIALVM" snapshot inspect "$newest" 2>&1 | grep -q 'disk'; then
	fail snap-disk-periodic "the newest snapshot has no disk section: $("$TRIALVM" snapshot inspect "$newest" 2>&1 | head -c 400)"
else
	vmrun snap-disk-periodic-restore 300 run --restore "$newest" --disk-mode persist \
		--disk "$T/bigdisk.img,overlay=$T/dper.ovl"
	if expect_rc snap-disk-periodic-restore 0; then
		vmrun snap-disk-periodic-check 120 run --app "$APPS/disk-test" --disk-mode persist \
			--disk "$T/bigdisk.img,overlay=$T/dper.ovl" -- loopcheck 1100
		expect_rc snap-disk-periodic-check 0 && pass snap-disk-periodic
	fi
fi
