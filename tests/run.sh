#!/usr/bin/env bash
# tests/run.sh BUILD - every test of `make test`. Last line: N passed, N failed, N skipped.
# The command-line tests and the fuzzers run on this machine; the tests that
# need KVM (tests/vm-suite.sh) run directly where /dev/kvm works and inside
# the emulated KVM host (ci/kvm-host) where it does not. If neither can be
# had, each of them is reported as skipped by name, and under CI (CI=true)
# that is a failure: a green CI must mean the VM suite ran.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
. tests/lib.sh
. ci/kvm.sh
TRIALVM=$PWD/$BUILD/trialvm
APPS=$PWD/$BUILD/guests/apps
TINY=$PWD/$BUILD/tests/guests
export TRIALVM_TRIALOS=$PWD/$BUILD/guests/trialos.elf
# ---------------------------------------------------------------------- CLI
vmrun cli-help 10 --help && true
expect_rc cli-help 0 && expect_grep cli-help out 'Usage: trialvm COMMAND' 'run ' && pass cli-help
vmrun cli-run-help 10 run --help
expect_rc cli-run-help 0 && expect_grep cli-run-help out '--kernel FILE' '--initrd FILE' '--cmdline STR' \
	'--mem SIZE' '--cpus N' '--console-log FILE' '--app PROGRAM' && pass cli-run-help
vmrun cli-version 10 --version
expect_rc cli-version 0 && expect_grep cli-version out '^trialvm [0-9]+\.[0-9]+' && pass cli-version
vmrun cli-bad-option 10 run --frobnicate
expect_rc cli-bad-option 126 && expect_grep cli-bad-option err 'unknown option --frobnicate' && pass cli-bad-option
vmrun cli-bad-command 10 fly
expect_rc cli-bad-command 126 && expect_grep cli-bad-command err "unknown command 'fly'" && pass cli-bad-command
vmrun cli-no-kernel 10 run
expect_rc cli-no-kernel 126 && expect_grep cli-no-kernel err 'nothing to boot: give --kernel FILE or --app PROGRAM$' && pass cli-no-kernel
vmrun cli-app-and-kernel 10 run --app "$APPS/hello" --kernel "$TINY/tiny-hello.elf"
expect_rc cli-app-and-kernel 126 && expect_grep cli-app-and-kernel err '^trialvm: --app and --kernel do not go together' &&
	pass cli-app-and-kernel
vmrun cli-args-without-app 10 run --kernel "$TINY/tiny-hello.elf" -- x
expect_rc cli-args-without-app 126 && expect_grep cli-args-without-app err 'arguments after -- need --app or --image\)' &&
	pass cli-args-without-app
vmrun cli-too-many-disks 10 run --app "$APPS/hello" --disk a --disk b --disk c --disk d --disk e
expect_rc cli-too-many-disks 126 && expect_grep cli-too-many-disks err '--disk: at most 4 disks' && pass cli-too-many-disks
vmrun cli-mem-1k 10 run --mem 1K --kernel "$TINY/tiny-hello.elf"
expect_rc cli-mem-1k 126 && expect_grep cli-mem-1k err '--mem 1K.*too small' && pass cli-mem-1k
vmrun cli-mem-garbage 10 run --mem lots --kernel "$TINY/tiny-hello.elf"
expect_rc cli-mem-garbage 126 && expect_grep cli-mem-garbage err '--mem lots: not a size' && pass cli-mem-garbage
vmrun cli-mem-2t 10 run --mem 2T --kernel "$TINY/tiny-hello.elf"
expect_rc cli-mem-2t 126 && expect_grep cli-mem-2t err '--mem 2T: too large; trialvm supports at most 1T' && pass cli-mem-2t
vmrun cli-cpus-bad 10 run --cpus 0 --kernel "$TINY/tiny-hello.elf"
expect_rc cli-cpus-bad 126 && expect_grep cli-cpus-bad err '--cpus 0' && pass cli-cpus-bad
vmrun cli-missing-value 10 run --kernel
expect_rc cli-missing-value 126 && expect_grep cli-missing-value err 'needs a value' && pass cli-missing-value

# Layers depend one way (vmm <- devices <- reporter <- monitor); the check
# itself must catch an upward #include.
if tests/check-layers.sh >"$T/layers.out" 2>&1; then
	pass layers
else
	fail layers "$(head -3 "$T/layers.out" | tr '\n' ' ')"
fi
mkdir -p "$T/layers/vmm" "$T/layers/monitor"
printf '#include "../monitor/crash.h"\n' >"$T/layers/vmm/x.c"
if tests/check-layers.sh "$T/layers" >"$T/layers-check-catches.err" 2>&1; then
	fail layers-check-catches "an include from vmm/ of monitor/ passed"
else
	expect_grep layers-check-catches err 'vmm/x.c:1: vmm includes "../monitor/crash.h"' &&
		pass layers-check-catches
fi

# Special files as inputs: refused at once, never read forever (a FIFO with
# no writer used to block open(); /dev/zero never ends).
mkfifo "$T/fifo"
special() { # NAME REGEX ARGS...
	local name=$1 re=$2
	shift 2
	vmrun "$name" 10 "$@"
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail "$name" "hung (killed by the 10 s timeout)"
	elif [ "$RC" -eq 0 ]; then
		fail "$name" "accepted a special file"
	else
		expect_grep "$name" err "$re" && pass "$name"
	fi
}
special fifo-inspect 'is not a regular file' inspect "$T/fifo"
special fifo-app 'is not a regular file' run --app "$T/fifo"
special fifo-kernel-symbols 'has none' run --app "$APPS/hello" --crash-on do_write --kernel-symbols "$T/fifo"
special zero-kernel-symbols 'has none' run --app "$APPS/hello" --crash-on do_write --kernel-symbols /dev/zero
special fifo-disk-diff 'not a regular file or block device' disk diff "$T/fifo" "$T/fifo"
special fifo-snapshot-inspect 'not a regular file' snapshot inspect "$T/fifo"

# trialvm snapshot inspect: a valid snapshot shown, a damaged one refused
SNAP=tests/fuzz/corpus/fuzz_snapfile/valid
vmrun snapshot-inspect 10 snapshot inspect "$SNAP"
expect_rc snapshot-inspect 0 && expect_grep snapshot-inspect out '^snapshot format 1, written by trialvm 0\.1\.0$' \
	'parent none \(a full snapshot\)' 'section unknown \(type 77\) version 1, optional, 19 bytes' \
	'3 sections, 39 bytes of payload; frames and checksums ok' && pass snapshot-inspect
head -c 200 "$SNAP" >"$T/trunc.snap"
vmrun snapshot-inspect-truncated 10 snapshot inspect "$T/trunc.snap"
expect_rc snapshot-inspect-truncated 125 && expect_grep snapshot-inspect-truncated err 'trunc.snap is truncated' &&
	pass snapshot-inspect-truncated
cp "$SNAP" "$T/flip.snap" && printf '\x58' | dd of="$T/flip.snap" bs=1 seek=170 conv=notrunc 2>/dev/null
vmrun snapshot-inspect-corrupt 10 snapshot inspect "$T/flip.snap"
expect_rc snapshot-inspect-corrupt 125 && expect_grep snapshot-inspect-corrupt err 'corrupt \(checksum mismatch\)' &&
	pass snapshot-inspect-corrupt
vmrun snapshot-bad-command 10 snapshot frob
expect_rc snapshot-bad-command 126 && expect_grep snapshot-bad-command err "unknown command 'frob'" && pass snapshot-bad-command

# inspect on crafted files: nonsense refused, guest text escaped (tests/inspect.sh)
. tests/inspect.sh
inspect_cli_tests

# Signed trial packages: build, verify, trust; hostile packages (tests/package.sh)
. tests/package.sh

# The spool and the upload protocol against the stand-in server (no VM):
# in the background, beside the VM suite (most of it is waiting on the
# network's backoffs); counted after it.
tests/part.sh "$BUILD" tests/upload.sh >"$T/upload.out" 2>&1 &
upload_pid=$!

# -------------------------------------------- fuzzing smoke (15 s each)
# In the background, the harnesses built (make fuzz-bins, a no-op when
# they are up to date) and then run one target at a time, beside the
# emulated KVM host (one emulated CPU: QEMU keeps one core busy, the
# fuzzers the other); its results are counted after the VM suite.
fuzz_pid=""
if command -v clang >/dev/null; then
	(
		if ! env -u MAKEFLAGS -u MFLAGS make --no-print-directory BUILD="$BUILD" fuzz-bins >"$T/fuzz-build.log" 2>&1; then
			echo "FAIL fuzz-build: make fuzz-bins failed: $(grep -E 'error|Error' "$T/fuzz-build.log" | head -3 | tr '\n' '|')"
			exit 1
		fi
		FUZZ_JOBS=${FUZZ_JOBS:-1} nice -n 19 tests/fuzz.sh "$BUILD" "${FUZZ_SECONDS:-15}"
	) >"$T/fuzz.out" 2>&1 &
	fuzz_pid=$!
else
	skip fuzz "no clang to build the fuzzers with (ci/deps.sh installs it)"
fi

# ------------------------------------------------ the emulated KVM host
# ci/kvm-host itself: exit status, streamed output, environment, /dev/kvm,
# a writable checkout, FIFOs in /tmp, the timeout, and one clear line when
# it cannot boot. (Runs on every machine: QEMU is always installed.)
kh() { local name=$1; shift; timeout -k 5 300 ci/kvm-host "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null; RC=$?; }
kh kvm-host-usage --frobnicate
expect_rc kvm-host-usage 125 && expect_grep kvm-host-usage err "^kvm-host: unknown option '--frobnicate'" && pass kvm-host-usage
kh kvm-host-no-command --timeout 10
expect_rc kvm-host-no-command 125 && expect_grep kvm-host-no-command err '^kvm-host: no command given' && pass kvm-host-no-command
probe_file=$BUILD/.kvm-host-probe.$$
rm -f "$probe_file"
TRIALVM_TEST_WORD='two words' kh kvm-host-run --timeout 240 -- bash -c \
	'echo "out $TRIALVM_TEST_WORD"; echo "err line" >&2; [ -c /dev/kvm ] && echo "kvm device";
	 mkfifo /tmp/fifo && echo "fifo in /tmp"; echo written >"$1" && echo "checkout writable"; exit 42' x "$probe_file"
if expect_rc kvm-host-run 42 && expect_grep kvm-host-run out '^out two words$' '^err line$' '^kvm device$' '^fifo in /tmp$' \
	'^checkout writable$' && expect_grep kvm-host-run err '^kvm-host: the command ran [0-9]+ s inside the emulated KVM host'; then
	[ "$(cat "$probe_file" 2>/dev/null)" = written ] && pass kvm-host-run || fail kvm-host-run "$probe_file was not written on this side"
fi
rm -f "$probe_file"
kh kvm-host-timeout --timeout 3 -- sleep 600
expect_rc kvm-host-timeout 124 && expect_grep kvm-host-timeout err '^kvm-host: the command did not finish within 3 s' &&
	pass kvm-host-timeout
kh kvm-host-idle --idle-timeout 10 -- sh -c 'echo first; sleep 600'
expect_rc kvm-host-idle 124 && expect_grep kvm-host-idle out '^first$' &&
	expect_grep kvm-host-idle err '^kvm-host: no output from the command for 10 s' && pass kvm-host-idle
# A cache whose kernel is not a kernel: QEMU cannot boot it.
real_cache=${TRIALVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trialvm}/kvm-host/linux-amd64
mkdir -p "$T/bad-cache/kvm-host/linux-amd64"
if [ -d "$real_cache/modules" ]; then
	ln -s "$real_cache/modules" "$T/bad-cache/kvm-host/linux-amd64/modules"
	cp "$real_cache/release" "$T/bad-cache/kvm-host/linux-amd64/"
	head -c 100000 /dev/urandom >"$T/bad-cache/kvm-host/linux-amd64/vmlinuz"
	TRIALVM_CACHE=$T/bad-cache kh kvm-host-bad-kernel --timeout 60 -- true
	expect_rc kvm-host-bad-kernel 125 && expect_grep kvm-host-bad-kernel err '^kvm-host: the emulated KVM host failed: .*console log' &&
		[ "$(wc -l <"$T/kvm-host-bad-kernel.err")" -eq 1 ] && pass kvm-host-bad-kernel ||
		{ [ "$RC" -eq 125 ] && fail kvm-host-bad-kernel "not one line: $(tr '\n' '|' <"$T/kvm-host-bad-kernel.err")"; }
else
	fail kvm-host-bad-kernel "no kernel in $real_cache after kvm-host-run"
fi

# Debian's kernel for the Linux and loader tests, fetched here: the emulated
# host has no network. linux.sh reports a skip if this failed.
images/fetch-debian-kernel.sh "$BUILD/images/debian" >"$T/fetch.log" 2>&1 ||
	echo "note: $(tail -1 "$T/fetch.log")" >&2
# ...and linux-image-amd64 with its modules, for the Linux master image
# (linux-image.sh reports a skip if this failed), with its headers, for
# the tests' kernel module (the vendor's buggy driver: an oops, lockups).
images/fetch-debian-kernel.sh --flavor amd64 --modules --headers "$BUILD/images/debian-amd64" >"$T/fetch-amd64.log" 2>&1 ||
	echo "note: $(tail -1 "$T/fetch-amd64.log")" >&2
# make test-slow: the kernel's -dbg vmlinux too, for crash on panic dumps.
if [ "${TVM_SLOW:-0}" = 1 ]; then
	images/fetch-debian-kernel.sh --flavor amd64 --modules --headers --dbg "$BUILD/images/debian-amd64" >"$T/fetch-dbg.log" 2>&1 ||
		echo "note: $(tail -1 "$T/fetch-dbg.log")" >&2
fi
rm -rf "$BUILD/tests/kmod"
if [ -e "$BUILD/images/debian-amd64/headers/build/Makefile" ]; then
	cp -r tests/guests/kmod "$BUILD/tests/kmod"
	make -s -C "$BUILD/images/debian-amd64/headers/build" M="$(cd "$BUILD/tests/kmod" && pwd)" modules >"$T/kmod.log" 2>&1 ||
		{ echo "note: the test kernel module did not build: $(grep -m1 -i error "$T/kmod.log")" >&2; rm -f "$BUILD/tests/kmod/tvm_fault.ko"; }
fi
# make test-slow: a Debian userland from mmdebstrap (bookworm, minbase plus
# procps) with crash-test as the vendor's program, built here (mmdebstrap
# downloads packages; the emulated host has no network) and booted and
# crashed by linux-image.sh.
if [ "${TVM_SLOW:-0}" = 1 ] && [ -s "$BUILD/images/debian-amd64/vmlinuz" ]; then
	rm -rf "$BUILD/tests/debian-image" "$BUILD/tests/debian-image.log"
	"$BUILD/trialvm" image linux --debian procps --kernel-dir "$BUILD/images/debian-amd64" \
		--add "$BUILD/guests/linux/crash-test:/usr/bin/crash-test" --app /usr/bin/crash-test \
		-o "$BUILD/tests/debian-image" -- exit 5 >"$BUILD/tests/debian-image.log" 2>&1 ||
		echo "note: trialvm image linux --debian failed: $(tail -1 "$BUILD/tests/debian-image.log")" >&2
fi

# ------------------------------------------------------------ the VM suite
kvm_mode "$BUILD"
case $KVM_MODE in
direct)
	tests/vm-suite.sh "$BUILD" | tee "$T/vm.out"
	count_results "$T/vm.out"
	;;
emulated)
	echo "VM suite: no usable /dev/kvm here ($KVM_WHY); running it inside the emulated KVM host (ci/kvm-host), two parts in two hosts side by side"
	vm_start=$(date +%s)
	# In the emulated host no test is silent for long (the longest,
	# linux-bzimage, takes 10-25 s there). Now and then the emulated host
	# stalls (QEMU busy, the guest kernel silent; see README); then that
	# part runs again, up to three times, and only its last run counts.
	# Part 2 (packages, reports, Linux) runs in the background; part 1's
	# lines show as they come, part 2's after it.
	vm_part() { # PART MEM OUT
		local try
		for try in 1 2 3; do
			ci/kvm-host --mem "$2" --timeout "${KVM_HOST_TIMEOUT:-1500}" --idle-timeout "${KVM_HOST_IDLE:-150}" -- \
				tests/vm-suite.sh "$BUILD" "$1" >"$3" 2>&1
			[ "$try" -lt 3 ] && grep -q '^kvm-host: no output from the command for' "$3" || break
			cp "$3" "$3.stalled-$try"
		done
	}
	vm_part 2 8G "$T/vm2.out" &
	vm2_pid=$!
	for try in 1 2 3; do
		ci/kvm-host --mem 6G --timeout "${KVM_HOST_TIMEOUT:-1500}" --idle-timeout "${KVM_HOST_IDLE:-150}" -- \
			tests/vm-suite.sh "$BUILD" 1 2>&1 | tee "$T/vm.out"
		rc=${PIPESTATUS[0]}
		[ "$try" -lt 3 ] && grep -q '^kvm-host: no output from the command for' "$T/vm.out" || break
		echo "VM suite part 1: the emulated KVM host stalled; running it again from the start"
	done
	wait "$vm2_pid"
	for f in "$T"/vm2.out.stalled-*; do
		[ -e "$f" ] && echo "VM suite part 2: the emulated KVM host stalled; it ran again from the start ($(grep '^kvm-host:' "$f" | tail -1))"
	done
	cat "$T/vm2.out"
	count_results "$T/vm.out"
	count_results "$T/vm2.out"
	echo "VM suite: the emulated parts took $(($(date +%s) - vm_start)) s, booting the emulated hosts included"
	for p in 1 2; do
		out=$T/vm.out
		[ $p = 2 ] && out=$T/vm2.out
		if ! grep -q "^(vm suite part $p: " "$out"; then
			fail "vm-suite-part-$p" "the emulated KVM host stopped before the VM suite's part $p finished: $(grep '^kvm-host:' "$out" | tail -1)"
		fi
	done
	;;
*)
	# Every test of the VM suite, by name, skipped with the reason; the unit
	# binaries still run their KVM-free checks.
	. tests/unit.sh
	for n in $(sed -n 's/.*\bpass \([A-Za-z0-9_./-]*[A-Za-z0-9]\)\( .*\)\{0,1\}$/\1/p' tests/vm-suite.sh tests/trialos.sh \
		tests/disk.sh tests/crash.sh tests/sandbox.sh tests/teardown.sh tests/linux.sh | sort -u); do
		skip "$n" "no KVM: $KVM_WHY"
	done
	if [ "${CI:-}" = true ]; then
		fail vm-suite "CI must run the VM suite, and no KVM could be had: $KVM_WHY"
	fi
	;;
esac

wait "$upload_pid"
grep -E '^(ok|FAIL|skip) ' "$T/upload.out" >"$T/upload.res"
count_results "$T/upload.res"
cat "$T/upload.res"
grep -q '^(part: ' "$T/upload.out" || fail upload "tests/upload.sh did not finish: $(tail -2 "$T/upload.out" | tr '\n' ' ')"

if [ -n "$fuzz_pid" ]; then
	wait "$fuzz_pid"
	while read -r word name rest; do
		case $word in
		ok) pass "$name" ;;
		FAIL) fail "${name%:}" "$rest" ;;
		esac
	done <"$T/fuzz.out"
fi

summary
