#!/usr/bin/env bash
# tests/run.sh BUILD - every test of `make test`. Last line: N passed, N failed, N skipped.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
. tests/lib.sh
TRIALVM=$PWD/$BUILD/trialvm
APPS=$PWD/$BUILD/guests/apps
TINY=$PWD/$BUILD/tests/guests
export TRIALVM_TRIALOS=$PWD/$BUILD/guests/trialos.elf

# ---------------------------------------------------------------- unit tests
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t")
	if "$t" >"$T/unit.out" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(grep -E 'FAIL|ERROR|runtime error' "$T/unit.out" | head -5 | tr '\n' '|')"
	fi
done

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
expect_rc cli-args-without-app 126 && expect_grep cli-args-without-app err 'arguments after -- need --app\)' &&
	pass cli-args-without-app
vmrun cli-too-many-disks 10 run --app "$APPS/hello" --disk a --disk b --disk c --disk d --disk e
expect_rc cli-too-many-disks 126 && expect_grep cli-too-many-disks err '--disk: at most 4 disks' && pass cli-too-many-disks
vmrun cli-mem-1k 10 run --mem 1K --kernel "$TINY/tiny-hello.elf"
expect_rc cli-mem-1k 126 && expect_grep cli-mem-1k err '--mem 1K.*too small' && pass cli-mem-1k
vmrun cli-mem-garbage 10 run --mem lots --kernel "$TINY/tiny-hello.elf"
expect_rc cli-mem-garbage 126 && expect_grep cli-mem-garbage err '--mem lots: not a size' && pass cli-mem-garbage
vmrun cli-cpus-bad 10 run --cpus 0 --kernel "$TINY/tiny-hello.elf"
expect_rc cli-cpus-bad 126 && expect_grep cli-cpus-bad err '--cpus 0' && pass cli-cpus-bad
vmrun cli-missing-value 10 run --kernel
expect_rc cli-missing-value 126 && expect_grep cli-missing-value err 'needs a value' && pass cli-missing-value

# -------------------------------------------- fuzzing smoke (30 s each)
if ls "$BUILD"/fuzz/* >/dev/null 2>&1; then
	tests/fuzz.sh "$BUILD" "${FUZZ_SECONDS:-30}" >"$T/fuzz.out" 2>&1
	while read -r word name rest; do
		case $word in
		ok) pass "$name" ;;
		FAIL) fail "${name%:}" "$rest" ;;
		esac
	done <"$T/fuzz.out"
else
	skip fuzz "no fuzzers built in $BUILD/fuzz (make fuzz-bins; needs clang)"
fi

# KVM usable? Boot the smallest guest; trialvm's own error says why not.
"$TRIALVM" run --kernel "$TINY/tiny-hello.elf" >/dev/null 2>"$T/kvm-probe.err" </dev/null
if [ $? -ne 7 ] && grep -q 'kvm' "$T/kvm-probe.err"; then
	skip kvm "$(head -1 "$T/kvm-probe.err"); every test that runs a guest is skipped"
	summary
	exit $?
fi

# ------------------------------------------------------------ bad kernels
vmrun kernel-missing 10 run --kernel "$T/does-not-exist"
expect_rc kernel-missing 125 && expect_grep kernel-missing err 'does-not-exist' 'No such file' && pass kernel-missing
: >"$T/empty"
vmrun kernel-empty 10 run --kernel "$T/empty"
expect_rc kernel-empty 125 && expect_grep kernel-empty err 'empty' && pass kernel-empty
head -c 65536 /dev/urandom >"$T/garbage"
vmrun kernel-garbage 10 run --kernel "$T/garbage"
expect_rc kernel-garbage 125 && expect_grep kernel-garbage err 'garbage|neither|not an? (ELF|kernel)|unrecogni' && pass kernel-garbage
head -c 100 "$TINY/tiny-hello.elf" >"$T/truncated.elf"
vmrun kernel-truncated 10 run --kernel "$T/truncated.elf"
expect_rc kernel-truncated 125 && expect_grep kernel-truncated err 'truncated.elf' && pass kernel-truncated
vmrun kernel-outside-ram 10 run --mem 64M --kernel "$TINY/tiny-high.elf"
expect_rc kernel-outside-ram 125 && expect_grep kernel-outside-ram err 'outside|beyond|does not fit' '--mem|RAM' && pass kernel-outside-ram
vmrun kernel-dir 10 run --kernel /
expect_rc kernel-dir 125 && pass kernel-dir

# ------------------------------------------------ VMM paths via tiny guests
vmrun tiny-hello 20 run --kernel "$TINY/tiny-hello.elf" --console-log "$T/tiny.log"
printf 'tiny guest\n' >"$T/want"
expect_rc tiny-hello 7 && expect_out tiny-hello "$T/want" && cmp -s "$T/tiny.log" "$T/want" && pass tiny-hello ||
	{ [ "$RC" -eq 7 ] && fail tiny-hello "--console-log differs"; }
vmrun tiny-triple 20 run --kernel "$TINY/tiny-triple.elf"
expect_rc tiny-triple 123 && expect_grep tiny-triple err 'triple-faulted' 'RIP 0x1000' 'instruction bytes at RIP: 0f 0b' && pass tiny-triple
vmrun tiny-panic 20 run --kernel "$TINY/tiny-panic.elf"
expect_rc tiny-panic 123 && expect_grep tiny-panic err 'panicked \(pvpanic\)' && pass tiny-panic
vmrun tiny-reset 20 run --kernel "$TINY/tiny-reset.elf"
expect_rc tiny-reset 0 && expect_grep tiny-reset err 'reset' && pass tiny-reset
vmrun tiny-hostile 20 run --kernel "$TINY/tiny-hostile.elf"
expect_rc tiny-hostile 0 && expect_grep tiny-hostile out '^survived$' && pass tiny-hostile
vmrun tiny-smp 20 run --cpus 4 --kernel "$TINY/tiny-hello.elf"
expect_rc tiny-smp 7 && pass tiny-smp
vmrun tiny-bigmem 20 run --mem 4G --kernel "$TINY/tiny-hello.elf"
expect_rc tiny-bigmem 7 && pass tiny-bigmem
# --stats counts the exits the guest caused: 11 console bytes + power-off = 12 port writes at least.
vmrun tiny-stats 20 run --stats --kernel "$TINY/tiny-hello.elf"
n=$(grep -Eo 'stats: [0-9]+ VM exits to trialvm \([0-9]+ port I/O' "$T/tiny-stats.err" | grep -Eo '\([0-9]+' | tr -d '(')
expect_rc tiny-stats 7 && [ -n "$n" ] && [ "$n" -ge 12 ] && pass tiny-stats ||
	{ [ "$RC" -eq 7 ] && fail tiny-stats "no or too few port exits: $(cat "$T/tiny-stats.err")"; }

# ------------------------------------------------------ trialos + apps
. tests/trialos.sh

# ------------------------------------------------------------------ disks
. tests/disk.sh

# ----------------------------------------------------------- crash capture
. tests/crash.sh

# ------------------------------------------------------- seccomp sandbox
. tests/sandbox.sh

# ------------------------------------------------------- Linux bzImage
. tests/linux.sh

summary
