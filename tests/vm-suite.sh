#!/usr/bin/env bash
# tests/vm-suite.sh BUILD [PART] - the tests of `make test` that need KVM:
# the unit binaries (their VM parts), bad kernels, the VMM paths through
# tiny guests, trialos and its apps, disks, crash capture, the sandbox,
# snapshots, record and replay, gdb (part 1), the control socket, trial
# packages and their reports, and Linux (part 2); both without PART. Run
# by tests/run.sh directly where /dev/kvm works, else inside the emulated
# KVM host (ci/kvm-host; one host a part, side by side). Prints "ok NAME" /
# "FAIL NAME: why" / "skip NAME: why", one line a test, and ends with
# "(vm suite: N passed, N failed, N skipped)" ("vm suite part N" for a part).
set -u
BUILD=${1:-build}
PART=${2:-}
case $PART in '' | 1 | 2) ;; *) echo "usage: $0 BUILD [1|2]" >&2; exit 2 ;; esac
part() { [ -z "$PART" ] || [ "$PART" = "$1" ]; }
label="vm suite${PART:+ part $PART}"
cd "$(dirname "$0")/.."
. tests/lib.sh
suite_vars "$BUILD"
start_s=$(date +%s)

# KVM must work here: the caller decided so. Say plainly when it does not.
"$TRIALVM" run --kernel "$TINY/tiny-hello.elf" >/dev/null 2>"$T/kvm-probe.err" </dev/null
if [ $? -ne 7 ]; then
	fail vm-suite "KVM does not work here: $(head -1 "$T/kvm-probe.err")"
	summary "$label"
	exit 1
fi

if part 1; then
# ---------------------------------------------------------------- unit tests
. tests/unit.sh

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
# FIFOs (kept on this side's tmpfs) as kernel, initrd, cpio and disk: refused, never waited on.
mkfifo "$T/fifo"
for what in "kernel:--kernel $T/fifo" "initrd:--kernel $TINY/tiny-hello.elf --initrd $T/fifo" \
	"cpio:--app $APPS/hello --cpio $T/fifo" "disk:--app $APPS/hello --disk $T/fifo"; do
	name=fifo-${what%%:*}
	# shellcheck disable=SC2086
	vmrun "$name" 10 run ${what#*:}
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail "$name" "hung (killed by the 10 s timeout)"
	else
		expect_rc "$name" 125 && expect_grep "$name" err 'not a regular file' && pass "$name"
	fi
done

# ------------------------------------------------ VMM paths via tiny guests
vmrun tiny-hello 20 run --kernel "$TINY/tiny-hello.elf" --console-log "$T/tiny.log"
printf 'tiny guest\n' >"$T/want"
expect_rc tiny-hello 7 && expect_out tiny-hello "$T/want" && cmp -s "$T/tiny.log" "$T/want" && pass tiny-hello ||
	{ [ "$RC" -eq 7 ] && fail tiny-hello "--console-log differs"; }
# A triple fault. Intel's KVM keeps the faulting state (RIP on the ud2);
# AMD's re-initialises the vCPU, and trialvm must say so and show the last
# state it saw (the guest's last port write, at console_out), never the
# reset state (RIP 0xfff0).
vmrun tiny-triple 20 run --kernel "$TINY/tiny-triple.elf"
if grep -q '^vendor_id.*GenuineIntel' /proc/cpuinfo; then
	expect_rc tiny-triple 123 && expect_grep tiny-triple err 'triple-faulted' 'RIP 0x1000' 'instruction bytes at RIP: 0f 0b' &&
		pass tiny-triple
else
	at=$(nm "$TINY/tiny-triple.elf" | awk '$3 == "console_out" { print $1 }' | sed 's/^0*//')
	if expect_rc tiny-triple 123 && expect_grep tiny-triple err 'triple-faulted' \
		'The CPU state at the fault was lost: KVM re-initialised the vCPU after the SHUTDOWN intercept' \
		'the last ones trialvm saw, at the vCPU.s exit 11 \(a port I/O exit\)' "RIP 0x$at " 'instruction bytes at RIP: ee '; then
		if grep -q 'RIP 0xfff0' "$T/tiny-triple.err"; then
			fail tiny-triple "the reset state is shown as the crash state"
		else
			pass tiny-triple
		fi
	fi
fi
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

# ------------------------------------------- stopping: signals, stalls, races
. tests/teardown.sh

# ------------------------------------------------------------- snapshots
. tests/snapshot.sh
. tests/record.sh
. tests/gdb.sh
fi

if part 2; then
. tests/control.sh
. tests/launch.sh
. tests/bundle.sh

# What the tests so far left in this host's memory (in the emulated host
# /tmp is a tmpfs): said, for when a Linux guest below cannot get its RAM.
echo "vm suite: $(du -sm "$T" 2>/dev/null | cut -f1) MiB in $T, $(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MiB of memory available"

# ------------------------------------------------------- Linux bzImage
. tests/linux.sh
. tests/linux-image.sh
fi

echo "$label: $(($(date +%s) - start_s)) s" >&2
summary "$label"
