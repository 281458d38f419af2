#!/usr/bin/env bash
# ci/bench.sh BUILD - the benchmarks of `make bench` (run after the build).
#
# Prints figures, never judges them: no benchmark fails on speed. Each figure
# comes with a reference run made in the same invocation (QEMU 7.2 on the same
# image) and the ratio. Exit status: 0 when every benchmark ran; 1 when one
# could not run at all (the reason is printed); 2 on a usage error.
#
#   1. startup: exec -> first console byte and exec -> exit, trialos+hello,
#      RUNS runs each of trialvm and QEMU microvm (interleaved)
#   2. VMM memory overhead: peak RSS minus guest RAM resident, trialvm and QEMU
#   3. Linux early boot: exec -> first "BIOS-e820" console line, Debian's
#      bzImage; trialvm (host decompression), trialvm --no-decompress, QEMU pc
#   3b. Linux master image: exec -> the program's first line, trialvm
#      run --image next to QEMU microvm and q35 booting the same image
#   4-7. crash dumps, virtio-blk, snapshots, record and replay
#      (ci/bench-dump.sh, ci/bench-blk.sh, ci/bench-snap.sh, ci/bench-record.sh)
#   8. report bundles: the bundle of a Linux image's crash against zstd of
#      core.elf, of its changed pages, zstd --patch-from and xdelta3
#      (ci/bench-bundle.sh)
#
# Environment: RUNS (default 20), LINUX_CAP (seconds, default 240),
# BENCH_SKIP_LINUX=1 to leave section 3 out (it is then reported as skipped).
set -u
if [ $# -gt 1 ]; then
	echo "usage: $0 [BUILD]" >&2
	exit 2
fi
BUILD=${1:-build}
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
CAP=${LINUX_CAP:-240}

TRIALVM=$BUILD/trialvm
TRIALOS=$BUILD/guests/trialos.elf
HELLO=$BUILD/guests/apps/hello
TIMER=$BUILD/tests/bench/spawn-time
KDIR=$BUILD/images/debian
QEMU=qemu-system-x86_64
T=$(mktemp -d "${TMPDIR:-/tmp}/trialvm-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

PROBLEMS=()    # benchmarks that could not run, with the reason
problem() { PROBLEMS+=("$1"); echo "  NOT RUN: $1"; }
progress() { [ -t 2 ] && printf 'bench: %s\n' "$*" >&2; return 0; }

for f in "$TRIALVM" "$TRIALOS" "$HELLO" "$TIMER"; do
	if [ ! -x "$f" ] && [ ! -f "$f" ]; then
		echo "bench: $f is missing (run make first); nothing can be measured" >&2
		exit 1
	fi
done
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "bench: /dev/kvm is not usable here ($(ls -l /dev/kvm 2>&1)); nothing can be measured" >&2
	exit 1
fi
HAVE_QEMU=1
command -v "$QEMU" >/dev/null 2>&1 || HAVE_QEMU=0

# The trialos + hello image under QEMU: microvm, the PVH entry of trialos,
# isa-debug-exit at 0x501 (trialos exits through it: status (code<<1)|1).
QEMU_HELLO=("$QEMU" -M microvm -accel kvm -cpu qemu64 -m 128M -nographic -no-reboot -nodefaults
	-serial stdio -kernel "$TRIALOS" -initrd "$HELLO" -append '-- hello'
	-device isa-debug-exit,iobase=0x501,iosize=1)
TVM_HELLO=("$TRIALVM" run --trialos "$TRIALOS" --app "$HELLO")

# field FILE KEY: a value from a spawn-time result file.
field() { sed -n "s/^$2=//p" "$1"; }

# stats FILE: "median p10 p90" of the integers in FILE (one per line); the
# median of an even count is the mean of the middle two, p10/p90 nearest rank.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		i10 = int(NR * 0.1 + 0.999999); if (i10 < 1) i10 = 1
		i90 = int(NR * 0.9 + 0.999999); if (i90 > NR) i90 = NR
		printf "%d %d %d\n", m, v[i10], v[i90] }'
}
ms() { awk -v n="$1" 'BEGIN { if (n == "-") print "-"; else printf "%.1f", n / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b <= 0) print "-"; else printf "%.2fx", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

echo "trialvm benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs)"
echo "  trialvm: $("$TRIALVM" --version 2>/dev/null | head -1)"
if [ $HAVE_QEMU -eq 1 ]; then
	echo "  reference: $("$QEMU" --version | head -1)"
else
	echo "  reference: $QEMU not found (install qemu-system-x86); QEMU columns are left out"
fi
echo "  all times: CLOCK_MONOTONIC from the execve of the VMM (tests/bench/spawn-time)"
if [ "${TRIALVM_KVM_HOST:-}" = emulated ]; then
	echo "  EMULATED: this runs inside the emulated KVM host (ci/kvm-host: QEMU TCG with AMD-V), QEMU's"
	echo "  references with -accel kvm there too; absolute times are emulated, compare the ratios"
fi

# ------------------------------------------------------------------ startup
echo
echo "== 1. Startup: trialos + hello, exec -> first console byte, exec -> exit ($RUNS runs each, interleaved) =="
progress "startup: $RUNS runs of trialvm and of QEMU"
: >"$T/tvm.first"; : >"$T/tvm.exit"; : >"$T/q.first"; : >"$T/q.exit"
tvm_bad=0 q_bad=0 tvm_why="" q_why=""
# one_run KIND(tvm|q) N: time one run, append to the lists when it was good.
one_run() {
	local k=$1 n=$2 r=$T/$1.$2.res want
	if [ "$k" = tvm ]; then
		"$TIMER" -o "$T/$k.$n.out" -- "${TVM_HELLO[@]}" >"$r" 2>"$T/$k.$n.err"
		want=exit:0
	else
		"$TIMER" -o "$T/$k.$n.out" -- "${QEMU_HELLO[@]}" >"$r" 2>"$T/$k.$n.err"
		want=exit:1
	fi
	if [ "$(field "$r" status)" = "$want" ] && grep -q 'Hello, world!' "$T/$k.$n.out"; then
		field "$r" first_byte_ns >>"$T/$k.first"
		field "$r" exit_ns >>"$T/$k.exit"
	else
		local why
		why="status $(field "$r" status) (want $want), console '$(head -c 80 "$T/$k.$n.out" | tr '\n' ' ')', stderr '$(grep -v 'host doesn.t support requested feature' "$T/$k.$n.err" | head -c 200 | tr '\n' ' ')'"
		if [ "$k" = tvm ]; then tvm_bad=$((tvm_bad + 1)) tvm_why=$why; else q_bad=$((q_bad + 1)) q_why=$why; fi
	fi
}
# A warm-up run of each (page cache, first KVM use), not counted.
"${TVM_HELLO[@]}" </dev/null >/dev/null 2>&1
[ $HAVE_QEMU -eq 1 ] && "${QEMU_HELLO[@]}" </dev/null >/dev/null 2>&1
for i in $(seq 1 "$RUNS"); do
	one_run tvm "$i"
	[ $HAVE_QEMU -eq 1 ] && one_run q "$i"
	[ $((i % 5)) -eq 0 ] && progress "startup: $i/$RUNS"
done
read -r tf_m tf_10 tf_90 < <(stats "$T/tvm.first")
read -r te_m te_10 te_90 < <(stats "$T/tvm.exit")
read -r qf_m qf_10 qf_90 < <(stats "$T/q.first")
read -r qe_m qe_10 qe_90 < <(stats "$T/q.exit")
printf '  %-22s | %-32s | %-32s\n' runner "first byte: median [p10, p90]" "exit: median [p10, p90]"
printf '  %-22s-+-%-32s-+-%-32s\n' "----------------------" "--------------------------------" "--------------------------------"
row() { printf '  %-22s | %-32s | %-32s\n' "$1" "$(ms "$2") ms [$(ms "$3"), $(ms "$4")]" "$(ms "$5") ms [$(ms "$6"), $(ms "$7")]"; }
row "trialvm ($(wc -l <"$T/tvm.first") ok)" "$tf_m" "$tf_10" "$tf_90" "$te_m" "$te_10" "$te_90"
if [ $HAVE_QEMU -eq 1 ]; then
	row "qemu microvm ($(wc -l <"$T/q.first") ok)" "$qf_m" "$qf_10" "$qf_90" "$qe_m" "$qe_10" "$qe_90"
	printf '  %-22s | %-32s | %-32s\n' "ratio qemu/trialvm" "$(ratio "$qf_m" "$tf_m") (medians)" "$(ratio "$qe_m" "$te_m") (medians)"
fi
[ $tvm_bad -gt 0 ] && echo "  trialvm: $tvm_bad bad run(s) left out; last: $tvm_why"
[ $q_bad -gt 0 ] && echo "  qemu: $q_bad bad run(s) left out; last: $q_why"
[ ! -s "$T/tvm.first" ] && problem "startup: no trialvm run of hello succeeded"
[ $HAVE_QEMU -eq 1 ] && [ ! -s "$T/q.first" ] && problem "startup: no QEMU run of hello succeeded (reference missing)"
[ $HAVE_QEMU -eq 0 ] && problem "startup: QEMU reference not run ($QEMU not found)"

# ------------------------------------------------------------ memory overhead
MEMRUNS=5
GUEST_BYTES=$((128 << 20))
echo
echo "== 2. VMM memory overhead: trialos + hello, --mem 128M ($MEMRUNS runs each, medians) =="
progress "memory: $MEMRUNS runs of trialvm and of QEMU"
# mem_runs KIND CMD...: overhead, peak, guest, anon, file (kB medians) on stdout.
mem_runs() {
	local k=$1 i r
	shift
	: >"$T/$k.ovh"; : >"$T/$k.hwm"; : >"$T/$k.guest"; : >"$T/$k.anon"; : >"$T/$k.file"; : >"$T/$k.at"
	for i in $(seq 1 $MEMRUNS); do
		r=$T/$k.m$i.res
		"$TIMER" -m -g $GUEST_BYTES -- "$@" >"$r" 2>"$T/$k.m$i.err" || continue
		local hwm guest
		hwm=$(field "$r" vmhwm_kb) guest=$(field "$r" guest_rss_kb)
		[ -n "$hwm" ] && [ -n "$guest" ] && [ "$hwm" -ge 0 ] && [ "$guest" -ge 0 ] || continue
		echo $((hwm - guest)) >>"$T/$k.ovh"
		echo "$hwm" >>"$T/$k.hwm"
		echo "$guest" >>"$T/$k.guest"
		field "$r" rssanon_kb >>"$T/$k.anon"
		field "$r" rssfile_kb >>"$T/$k.file"
		field "$r" sample_at >>"$T/$k.at"
	done
	[ -s "$T/$k.ovh" ] || return 1
	local x
	for x in ovh hwm guest anon file; do stats "$T/$k.$x" | cut -d' ' -f1; done | tr '\n' ' '
	sort -u "$T/$k.at" | tr '\n' ' '
	echo
}
printf '  %-14s | %-16s | %-18s | %-16s | %s\n' runner "peak RSS (VmHWM)" "guest RAM resident" "VMM overhead" "RssAnon (guest incl.) / RssFile at sample"
printf '  %-14s-+-%-16s-+-%-18s-+-%-16s-+-%s\n' "--------------" "----------------" "------------------" "----------------" "--------------------------------------"
mrow() { printf '  %-14s | %-16s | %-18s | %-16s | %s\n' "$1" "$(mib "$3") MiB" "$(mib "$4") MiB" "$(mib "$2") MiB" "$(mib "$5") / $(mib "$6") MiB (sampled at $7)"; }
tvm_ovh="" TVM_BREAKDOWN=""
if read -r tvm_ovh tvm_hwm tvm_guest tvm_anon tvm_file tvm_at < <(mem_runs tvm "${TVM_HELLO[@]}") && [ -n "$tvm_ovh" ]; then
	mrow trialvm "$tvm_ovh" "$tvm_hwm" "$tvm_guest" "$tvm_anon" "$tvm_file" "$tvm_at"
	TVM_BREAKDOWN=$(for r in "$T"/tvm.m*.res; do grep -q '^rss_kb_of=' "$r" && { field "$r" rss_kb_of; break; }; done |
		head -8 | awk '{ n = $2; sub(".*/", "", n); printf "%s%s %.2f", (NR > 1 ? ", " : ""), n, $1 / 1024 }')
else
	tvm_ovh=""
	problem "memory: trialvm could not be measured: $(tail -c 300 "$T/tvm.m1.err" 2>/dev/null | tr '\n' ' ')"
fi
if [ $HAVE_QEMU -eq 1 ]; then
	if read -r q_ovh q_hwm q_guest q_anon q_file q_at < <(mem_runs q "${QEMU_HELLO[@]}") && [ -n "$q_ovh" ]; then
		mrow "qemu microvm" "$q_ovh" "$q_hwm" "$q_guest" "$q_anon" "$q_file" "$q_at"
		[ -n "$tvm_ovh" ] && echo "  ratio qemu/trialvm (overhead): $(ratio "$q_ovh" "$tvm_ovh")"
	else
		problem "memory: QEMU reference could not be measured"
	fi
fi
if [ -n "$tvm_ovh" ]; then
	echo "  trialvm non-guest resident at sample, largest first (MiB, one run): $TVM_BREAKDOWN" | fold -s -w 100 | sed '2,$s/^/    /'
	if [ "$tvm_ovh" -lt 5120 ]; then verdict="under it"; else verdict="NOT under it"; fi
	echo "  target: trialvm overhead under 5 MiB: $(mib "$tvm_ovh") MiB is $verdict (a figure, not a test)"
fi
cat <<'EOF'
  How: the VMM runs under ptrace with a seccomp filter that stops it when it
  munmaps a region of the guest-RAM size (trialvm tearing its VM down) or
  calls exit_group (QEMU), whichever comes first; there, its address space
  still intact, VmHWM is read from /proc/PID/status and the Rss of the guest
  RAM mapping (the private anonymous mapping of 128 MiB) from /proc/PID/smaps.
  overhead = peak RSS - guest RAM resident. Guest RAM only grows during a
  run, so this is the peak RSS less every guest page ever touched. It counts
  the VMM's heap, stacks, and the resident pages of its binary and shared
  libraries (file-backed); it does not count kernel memory (KVM's page
  tables, vCPU state), which RSS does not show.
EOF

# linux_run and lratio: sections 3 and 3b.
LRUN=0
# linux_run LABEL CMD...: one run; prints a table row.
linux_run() {
	local label=$1 r
	shift
	LRUN=$((LRUN + 1)) r=$T/linux.$LRUN.res
	progress "linux: $label (up to ${CAP} s)"
	if ! "$TIMER" -p "${LPAT:-BIOS-e820}" -t "$CAP" -o "$r.out" -- "$@" >"$r" 2>"$r.err"; then
		printf '  %-34s | %-12s | %s\n' "$label" "-" "could not run: $(tail -c 200 "$r.err" | tr '\n' ' ')"
		return 1
	fi
	local m e st first
	m=$(field "$r" match_ns) e=$(field "$r" exit_ns) st=$(field "$r" status) first=$(field "$r" first_byte_ns)
	if [ "$m" -ge 0 ]; then
		printf '  %-34s | %-12s | first console byte %s s\n' "$label" \
			"$(awk -v n="$m" 'BEGIN { printf "%.1f s", n / 1e9 }')" \
			"$(awk -v n="$first" 'BEGIN { printf "%.1f", n / 1e9 }')"
		LAST_M=$m
	elif [ "$(field "$r" timed_out)" = 1 ]; then
		local last="no console output"
		[ -s "$r.out" ] && last="last console line: '$(sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$r.out" | tr -d '\r' |
			tr -c '[:print:]\n' '?' | sed 's/[[:space:]]*$//' | grep -v '^[[:space:]]*$' | tail -1 | head -c 70)' ($(wc -c <"$r.out") bytes)"
		printf '  %-34s | %-12s | not reached; %s\n' "$label" ">${CAP} s" "$last"
		LAST_M=cap
	else
		printf '  %-34s | %-12s | ended (%s) after %s s without it; stderr: %s\n' "$label" "-" "$st" \
			"$(awk -v n="$e" 'BEGIN { printf "%.1f", n / 1e9 }')" "$(grep -v 'requested feature' "$r.err" | tail -c 150 | tr '\n' ' ')"
		LAST_M=fail
		return 1
	fi
}
# lratio A B: A/B for two times, or a bound when one hit the cap.
lratio() {
	case "$1:$2" in
	fail:* | *:fail) echo "-" ;;
	cap:cap) echo "- (both capped)" ;;
	cap:*) awk -v c="$CAP" -v b="$2" 'BEGIN { printf ">%.2fx", c * 1e9 / b }' ;;
	*:cap) awk -v c="$CAP" -v a="$1" 'BEGIN { printf "<%.2fx", a / (c * 1e9) }' ;;
	*) ratio "$1" "$2" ;;
	esac
}

# ------------------------------------------------------------- Linux boot
echo
echo "== 3. Linux early boot: Debian bzImage, --mem 256M, exec -> first 'BIOS-e820' console line (1 run each, cap ${CAP} s) =="
LCMD='console=ttyS0 earlyprintk=serial'
if [ "${BENCH_SKIP_LINUX:-0}" = 1 ]; then
	problem "linux: skipped (BENCH_SKIP_LINUX=1)"
elif ! images/fetch-debian-kernel.sh "$KDIR" >"$T/fetch.log" 2>&1; then
	problem "linux: Debian's kernel could not be fetched: $(tail -1 "$T/fetch.log")"
else
	LRUN=0
	printf '  %-34s | %-12s | %s\n' runner "to BIOS-e820" notes
	printf '  %-34s-+-%-12s-+-%s\n' "----------------------------------" "------------" "-----"
	LAST_M=fail
	linux_run "trialvm (host decompression)" "$TRIALVM" run --kernel "$KDIR/vmlinuz" --mem 256M --cmdline "$LCMD" ||
		problem "linux: trialvm (host decompression) did not run"
	l_host=$LAST_M
	LAST_M=fail
	linux_run "trialvm --no-decompress" "$TRIALVM" run --kernel "$KDIR/vmlinuz" --no-decompress --mem 256M --cmdline "$LCMD" ||
		problem "linux: trialvm --no-decompress did not run"
	l_nd=$LAST_M
	l_q=fail
	if [ $HAVE_QEMU -eq 1 ]; then
		LAST_M=fail
		linux_run "qemu pc (SeaBIOS, guest decomp.)" "$QEMU" -M pc -accel kvm -cpu qemu64 -m 256M -nographic -no-reboot \
			-kernel "$KDIR/vmlinuz" -append "$LCMD" || problem "linux: QEMU reference did not run"
		l_q=$LAST_M
	fi
	if [ $HAVE_QEMU -eq 1 ]; then
		echo "  ratio qemu/trialvm (host decompression): $(lratio "$l_q" "$l_host")"
		echo "  ratio qemu/trialvm --no-decompress:      $(lratio "$l_q" "$l_nd")"
	fi
	echo "  ratio trialvm --no-decompress/host decompression: $(lratio "$l_nd" "$l_host")"
	if [ "${TRIALVM_KVM_HOST:-}" = emulated ]; then
		echo "  (emulated KVM host: every instruction, guest's and VMM's, runs under QEMU TCG)"
	fi
fi

# ------------------------------------------------------- Linux image boot
echo
echo "== 3b. Linux master image: exec -> the program's first output line, Debian's amd64 kernel, 512M, 2 vCPUs (1 run each, cap ${CAP} s) =="
KDIR_AMD64=$BUILD/images/debian-amd64
CRASH_TEST=$BUILD/guests/linux/crash-test
if [ "${BENCH_SKIP_LINUX:-0}" = 1 ]; then
	problem "linux image: skipped (BENCH_SKIP_LINUX=1)"
elif [ ! -s "$KDIR_AMD64/vmlinuz" ] || [ ! -x "$CRASH_TEST" ]; then
	problem "linux image: $KDIR_AMD64 (make bench fetches it) or $CRASH_TEST is missing"
else
	# The image of tests/linux-image.sh: busybox and the dynamically linked
	# crash-test with its libraries.
	R=$T/lroot
	mkdir -p "$R/bin" "$R/usr/bin" && cp /bin/busybox "$R/bin/" && cp "$CRASH_TEST" "$R/usr/bin/crash-test"
	for lib in $(ldd "$CRASH_TEST" | grep -Eo '/[^ ]+'); do mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib"; done
	if ! "$TRIALVM" image linux --rootfs "$R" --kernel-dir "$KDIR_AMD64" --app /usr/bin/crash-test -o "$T/limg" \
		-- exit 0 >"$T/limg.log" 2>&1; then
		problem "linux image: trialvm image linux failed: $(tail -1 "$T/limg.log")"
	else
		IMG=$T/limg
		ICMD=$(jq -r .cmdline "$IMG/manifest.json")
		LPAT='crash-test: running'
		printf '  %-34s | %-12s | %s\n' runner "to 1st line" notes
		printf '  %-34s-+-%-12s-+-%s\n' "----------------------------------" "------------" "-----"
		LAST_M=fail
		linux_run "trialvm run --image" "$TRIALVM" run --image "$IMG" || problem "linux image: trialvm did not run"
		i_tvm=$LAST_M
		i_micro=fail i_q35=fail
		if [ $HAVE_QEMU -eq 1 ]; then
			# The same kernel, initramfs and root: the console on the
			# serial port and virtio-console (hvc0) muxed onto stdout;
			# the root's writes go to a temporary file (snapshot=on, in $T).
			QIMG=(-accel kvm -cpu qemu64 -m 512M -smp 2 -nographic -no-reboot -nodefaults
				-chardev stdio,id=c0,mux=on -serial chardev:c0 -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.cpio"
				-drive "id=r,file=$IMG/rootfs.ext4,format=raw,if=none,snapshot=on")
			LAST_M=fail
			linux_run "qemu microvm (virtio-mmio)" env TMPDIR="$T" "$QEMU" -M microvm "${QIMG[@]}" -append "$ICMD" \
				-device virtio-blk-device,drive=r -device virtio-serial-device -device virtconsole,chardev=c0 ||
				problem "linux image: QEMU microvm did not run"
			i_micro=$LAST_M
			LAST_M=fail
			linux_run "qemu q35 (SeaBIOS, virtio-pci)" env TMPDIR="$T" "$QEMU" -M q35 "${QIMG[@]}" -append "$ICMD" \
				-device virtio-blk-pci,drive=r -device virtio-serial-pci -device virtconsole,chardev=c0 ||
				problem "linux image: QEMU q35 did not run"
			i_q35=$LAST_M
			echo "  ratio qemu microvm/trialvm: $(lratio "$i_micro" "$i_tvm")"
			echo "  ratio qemu q35/trialvm:     $(lratio "$i_q35" "$i_tvm")"
		fi
		unset LPAT
	fi
fi

# == 4 and 5: crash dumps and virtio-blk (their own scripts, same rules)
echo
if [ $HAVE_QEMU -eq 1 ]; then
	ci/bench-dump.sh "$BUILD" || problem "crash dump benchmark failed"
	echo
	ci/bench-blk.sh "$BUILD" || problem "virtio-blk benchmark failed"
	echo
	ci/bench-snap.sh "$BUILD" || problem "snapshot benchmark failed"
	echo
	ci/bench-record.sh "$BUILD" || problem "record and replay benchmark failed"
else
	problem "crash dump and virtio-blk benchmarks: no QEMU to compare with"
fi
# == 8: report bundles against zstd, the changed pages, zstd --patch-from and xdelta3
echo
if [ "${BENCH_SKIP_LINUX:-0}" = 1 ]; then
	problem "report bundle: skipped (BENCH_SKIP_LINUX=1)"
else
	ci/bench-bundle.sh "$BUILD" || problem "report bundle benchmark failed"
fi

echo
if [ ${#PROBLEMS[@]} -gt 0 ]; then
	echo "bench: ${#PROBLEMS[@]} benchmark(s) could not run:"
	for p in "${PROBLEMS[@]}"; do echo "  - $p"; done
	exit 1
fi
echo "bench: all benchmarks ran (figures only; nothing is asserted)"
exit 0
