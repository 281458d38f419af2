# tests/linux-image.sh - a vendor's Linux master image (trialvm image linux)
# booted to its program with run --image (sourced by tests/vm-suite.sh).
# The root: busybox and the dynamically linked crash-test with the
# libraries it needs, copied from this machine; the kernel: Debian's
# linux-image-amd64, fetched by tests/run.sh (the emulated host has no
# network).
KDIR_AMD64=$PWD/$BUILD/images/debian-amd64
CRASH_TEST=$PWD/$BUILD/guests/linux/crash-test
if [ ! -s "$KDIR_AMD64/vmlinuz" ] || [ ! -d "$KDIR_AMD64/modules" ]; then
	skip linux-image "Debian's linux-image-amd64 was not fetched into $KDIR_AMD64 (see the note tests/run.sh printed)"
	return 0
fi

# The root directory: /bin/busybox (static), /usr/bin/crash-test and its
# shared libraries at the paths ldd names.
ROOT=$T/lroot
mkdir -p "$ROOT/bin" "$ROOT/usr/bin"
cp /bin/busybox "$ROOT/bin/busybox" && ln -s busybox "$ROOT/bin/sh"
cp "$CRASH_TEST" "$ROOT/usr/bin/crash-test"
# The vendor's buggy driver (tests/guests/kmod), built by tests/run.sh
# against the kernel's headers.
KMOD=$PWD/$BUILD/tests/kmod/tvm_fault.ko
[ -s "$KMOD" ] && mkdir -p "$ROOT/usr/lib/trialvm-test" && cp "$KMOD" "$ROOT/usr/lib/trialvm-test/tvm_fault.ko"
for lib in $(ldd "$CRASH_TEST" | grep -Eo '/[^ ]+'); do
	mkdir -p "$ROOT$(dirname "$lib")" && cp -L "$lib" "$ROOT$lib"
done

vmrun image-linux 120 image linux --rootfs "$ROOT" --kernel-dir "$KDIR_AMD64" --app /usr/bin/crash-test \
	-o "$T/limg" -- exit 7
if expect_rc image-linux 0 && expect_grep image-linux out "^image written to $T/limg: kernel $(cat "$KDIR_AMD64/release")"; then
	# The parts, read-only, and what the manifest says of them, checked by
	# sha256sum and by the kernel's and cpio's own tools.
	man=$T/limg/manifest.json
	bad=""
	for part in kernel initrd rootfs; do
		f=$T/limg/$(jq -r ".parts.$part.file" "$man")
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(jq -r ".parts.$part.sha256" "$man")" ] || bad="$bad $part-sha256"
		[ "$(stat -c %a "$f")" = 444 ] || bad="$bad $part-mode"
	done
	cpio -it <"$T/limg/initrd.cpio" >"$T/limg.cpio.list" 2>/dev/null
	for want in init trialvm/argv trialvm/modules.list trialvm/modules/virtio_mmio.ko trialvm/modules/ext4.ko \
		trialvm/modules/virtio_blk.ko dev/console; do
		grep -qx "$want" "$T/limg.cpio.list" || bad="$bad cpio:$want"
	done
	# virtio_blk after virtio_ring, which it depends on (modinfo says so)
	strings -a "$KDIR_AMD64"/modules/kernel/drivers/block/virtio_blk.ko | grep -q '^depends=.*virtio_ring' &&
		[ "$(grep -n virtio_ring "$T/limg.cpio.list" | head -1 | cut -d: -f1)" -lt "$(grep -n virtio_blk "$T/limg.cpio.list" | head -1 | cut -d: -f1)" ] ||
		bad="$bad module-order"
	debugfs -R 'stat /usr/bin/crash-test' "$T/limg/rootfs.ext4" >"$T/limg.debugfs" 2>&1
	grep -q 'Type: regular' "$T/limg.debugfs" || bad="$bad rootfs:crash-test"
	[ "$(jq -r .app "$man")" = /usr/bin/crash-test ] && [ "$(jq -c .args "$man")" = '["exit","7"]' ] || bad="$bad app/args"
	[ -z "$bad" ] && pass image-linux || fail image-linux "wrong:$bad"

	vmrun image-show 30 image show "$T/limg"
	expect_rc image-show 0 && expect_grep image-show out 'every part matches its sha256' 'app +/usr/bin/crash-test' \
		'machine +512 MiB, 2 vCPUs' && pass image-show

	# Each boot below takes 10-25 s in the emulated host; 120 s, under the
	# emulated host's 150 s stall watch, makes a guest that hangs a failure
	# of its test rather than a stall of the whole suite.
	# Booted: Debian's kernel, the modules from the initramfs, the root on
	# /dev/vda through the overlay, the dynamically linked program run by
	# /init on 2 vCPUs; its output and exit status are the run's.
	linux_img_start=$(date +%s)
	vmrun image-boot 120 run --image "$T/limg" --report-dir "$T/limg.reports"
	echo "image-boot: exec to the program's exit in $(($(date +%s) - linux_img_start)) s" >&2
	expect_rc image-boot 7 && expect_grep image-boot out "^crash-test: running on Linux $(cat "$KDIR_AMD64/release"), 2 CPUs" \
		'^crash-test: exit 7' && pass image-boot

	# The run's own arguments for the program (run --image DIR -- ARGS):
	# through the kernel command line to /init, spaces and '=' intact.
	vmrun image-args 120 run --image "$T/limg" --no-report -- args "a b" x=1 ''
	expect_rc image-args 0 && expect_grep image-args out '^crash-test: arg \[a b\]' '^crash-test: arg \[x=1\]' \
		'^crash-test: arg \[\]' && ! grep -q 'crash-test: exit 7' "$T/image-args.out" && pass image-args
	vmrun image-args-quote 10 run --image "$T/limg" -- 'say "hi"'
	expect_rc image-args-quote 126 && expect_grep image-args-quote err "argument 1 .* holds a '\"'" && pass image-args-quote

	# A kernel panic, with no change by the vendor: Linux's pvpanic driver
	# binds to the QEMU0001 device of trialvm's DSDT and reports it; the
	# report's core.elf carries the guest's VMCOREINFO (readelf), which
	# names this kernel's release. The same for an oops (oops=panic on
	# trialvm's command line), a soft lockup (softlockup_panic=1) and a
	# task hung in D state (hung_task_panic=1): each becomes a panic.
	kernel_report() { # NAME KIND: status 123, a report of KIND with this kernel's VMCOREINFO
		if [ "$RC" -ne 123 ]; then # what the guest printed last, for the failure
			fail "$1" "exit status $RC, expected 123; the guest's last lines: $(tail -6 "$T/$1.out" | tr '\n' '|')"
			return 1
		fi
		expect_report "$1" "$2" core.elf memory.dmp || return 1
		readelf -nW "$REPORT/core.elf" >"$T/$1.notes" 2>&1
		if grep -Eq '^ *VMCOREINFO[[:space:]]' "$T/$1.notes" &&
			strings -a "$REPORT/core.elf" | grep -qx "OSRELEASE=$(cat "$KDIR_AMD64/release")"; then
			return 0
		fi
		fail "$1" "core.elf has no VMCOREINFO of $(cat "$KDIR_AMD64/release"): $(grep -E '^ *[A-Z]' "$T/$1.notes" | sort | uniq -c | tr -s ' ' | tr '\n' '|')"
		return 1
	}
	# make test-slow: Debian's crash, with the kernel's -dbg vmlinux, opens
	# the dump: bt shows the panicking task from WANT-FRAME down, log the
	# kernel's log with the panic.
	crash_check() { # NAME WANT-FRAME WANT-LOG
		[ "${TVM_SLOW:-0}" = 1 ] || return 0
		if [ ! -s "$KDIR_AMD64/vmlinux-dbg" ]; then
			skip "$1-crash" "no -dbg vmlinux in $KDIR_AMD64 (see the note tests/run.sh printed)"
			return 0
		fi
		printf 'bt\nlog\nquit\n' >"$T/$1.crash-in"
		timeout 600 crash -s "$KDIR_AMD64/vmlinux-dbg" "$REPORT/core.elf" -i "$T/$1.crash-in" >"$T/$1.crash" 2>&1
		if grep -Eq '^PID: [0-9]+ +TASK: .*COMMAND: "crash-test"' "$T/$1.crash" &&
			grep -Eq "^ *#[0-9]+ \[[0-9a-f]+\] $2 at " "$T/$1.crash" && grep -Eq "$3" "$T/$1.crash"; then
			pass "$1-crash"
		else
			fail "$1-crash" "crash: $(grep -vE '^\[ *[0-9]' "$T/$1.crash" | head -12 | tr '\n' '|')"
		fi
	}
	vmrun image-panic 120 run --image "$T/limg" --report-dir "$T/image-panic.reports" -- panic
	kernel_report image-panic panic && expect_grep image-panic out 'Kernel panic - not syncing: sysrq triggered crash' &&
		expect_grep image-panic err 'pvpanic' && pass image-panic &&
		crash_check image-panic sysrq_handle_crash '^\[ *[0-9.]+\] Kernel panic - not syncing: sysrq triggered crash'
	# The detectors are made sensitive by crash-test, after the boot: set on
	# the command line, a slow (emulated) boot tripped them before pvpanic
	# was loaded, and the panic went unreported.
	vmrun image-hung-task 120 run --image "$T/limg" --report-dir "$T/image-hung-task.reports" -- \
		hang kernel/hung_task_timeout_secs=2
	kernel_report image-hung-task panic && expect_grep image-hung-task out 'crash-test: / is frozen' \
		'task crash-test:[0-9]+ blocked for more than [0-9]+ seconds' 'Kernel panic - not syncing: hung_task: blocked tasks' &&
		pass image-hung-task
	if [ ! -s "$KMOD" ]; then
		for t in image-oops image-softlockup image-hardlockup; do
			skip $t "the test kernel module $KMOD was not built (Debian's linux-headers for $(cat "$KDIR_AMD64/release") not fetched: see the note tests/run.sh printed)"
		done
	else
		ko=/usr/lib/trialvm-test/tvm_fault.ko
		vmrun image-oops 120 run --image "$T/limg" --report-dir "$T/image-oops.reports" -- kernel $ko oops
		# report.json keeps the kernel's log (ttyS0) and the program's output
		# (hvc0) apart; trialvm inspect shows both.
		if kernel_report image-oops panic && expect_grep image-oops out 'BUG: kernel NULL pointer dereference' \
			'RIP: 0010:tvm_fault_oops' 'Kernel panic - not syncing: Fatal exception'; then
			jq -r .kernel_log_tail "$REPORT/report.json" >"$T/image-oops.klog"
			jq -r .app_output_tail "$REPORT/report.json" >"$T/image-oops.aout"
			"$TRIALVM" inspect "$REPORT/report.json" >"$T/image-oops.inspect" 2>&1
			if grep -q 'BUG: kernel NULL pointer dereference' "$T/image-oops.klog" && grep -q 'Call Trace' "$T/image-oops.klog" &&
				! grep -q 'crash-test:' "$T/image-oops.klog" && grep -q 'crash-test: .* loaded; oops' "$T/image-oops.aout" &&
				! grep -q 'BUG:' "$T/image-oops.aout" &&
				grep -Eq 'kernel log tail: [0-9]+ bytes, last line: ' "$T/image-oops.inspect" &&
				grep -Eq 'program output tail: [0-9]+ bytes' "$T/image-oops.inspect"; then
				pass image-oops
				crash_check image-oops tvm_fault_write '^\[ *[0-9.]+\] BUG: kernel NULL pointer dereference'
			else
				fail image-oops "report.json's tails: kernel log $(head -c 300 "$T/image-oops.klog" | tr '\n' '|'); program $(head -c 300 "$T/image-oops.aout" | tr '\n' '|'); inspect: $(grep -i tail "$T/image-oops.inspect" | tr '\n' '|')"
			fi
		fi
		vmrun image-softlockup 60 run --image "$T/limg" --report-dir "$T/image-softlockup.reports" -- \
			kernel $ko softlockup kernel/watchdog_thresh=1
		kernel_report image-softlockup panic && expect_grep image-softlockup out 'BUG: soft lockup - CPU#[0-9]+ stuck' \
			'tvm_fault_softlockup' 'Kernel panic - not syncing: softlockup: hung tasks' && pass image-softlockup
		# Interrupts off: no detector in the guest runs on that CPU (and a VM
		# has no NMI watchdog); trialvm's hang watch sees the vCPU stuck.
		vmrun image-hardlockup 120 run --image "$T/limg" --hang-timeout 3 \
			--report-dir "$T/image-hardlockup.reports" -- kernel $ko hardlockup
		kernel_report image-hardlockup hang && expect_grep image-hardlockup out 'tvm_fault: hardlockup|loaded; hardlockup' &&
			expect_grep image-hardlockup err 'vCPU [0-9]+ made no progress for 3000 ms .*CPL 0' && pass image-hardlockup
	fi

	# The vendor's process dies of a signal: the guest kernel's own core of
	# it comes over the core channel and is the report's app.core, which
	# gdb opens at the faulting function with its caller (Linux's notes
	# and mappings: gdb needs no help from trialvm). SIGABRT and SIGFPE, the
	# same path with other signals, in make test-slow.
	hows=segv:crash_here:SIGSEGV
	[ "${TVM_SLOW:-0}" = 1 ] && hows="$hows abort:abort:SIGABRT fpe:crash_here:SIGFPE"
	for how in $hows; do
		mode=${how%%:*} rest=${how#*:} want_fn=${rest%%:*} want_sig=${rest#*:}
		vmrun image-$mode 120 run --image "$T/limg" --report-dir "$T/image-$mode.reports" -- "$mode"
		expect_rc image-$mode 123 && expect_grep image-$mode err "process crash-test \(pid [0-9]+\) died of $want_sig" &&
			expect_report image-$mode app-fault core.elf memory.dmp app.core || continue
		gdb -nx -batch -ex bt -ex 'info proc mappings' "$ROOT/usr/bin/crash-test" "$REPORT/app.core" >"$T/image-$mode.gdb" 2>&1
		if grep -Eq "^#[0-9]+ .*$want_fn" "$T/image-$mode.gdb" && grep -Eq '^#[0-9]+ .* main ' "$T/image-$mode.gdb" &&
			grep -q '/usr/bin/crash-test' "$T/image-$mode.gdb" && grep -q "\"signal_name\": \"$want_sig\"" "$REPORT/report.json"; then
			pass image-$mode
		else
			fail image-$mode "gdb on app.core: $(grep -E '^#|crash-test|Program terminated' "$T/image-$mode.gdb" | head -8 | tr '\n' '|')"
		fi
	done

	# make test-slow: a Debian userland (mmdebstrap, built by tests/run.sh)
	# with crash-test, Debian's own libc and procps: it boots to the
	# program, and the program's crash is an app.core that gdb opens.
	if [ "${TVM_SLOW:-0}" = 1 ]; then
		DIMG=$PWD/$BUILD/tests/debian-image
		if [ ! -s "$DIMG/manifest.json" ]; then
			fail image-debian "trialvm image linux --debian did not build $DIMG: $(tail -1 "$DIMG.log" 2>/dev/null)"
		else
			debugfs -R 'cat /etc/debian_version' "$DIMG/rootfs.ext4" >"$T/image-debian.version" 2>/dev/null
			debugfs -R 'stat /usr/bin/ps' "$DIMG/rootfs.ext4" >"$T/image-debian.ps" 2>&1
			debugfs -R 'stat /usr/lib/x86_64-linux-gnu/libc.so.6' "$DIMG/rootfs.ext4" >"$T/image-debian.libc" 2>&1
			if grep -q '^12\.' "$T/image-debian.version" && grep -q 'Type: regular' "$T/image-debian.ps" &&
				grep -q 'Type: regular' "$T/image-debian.libc"; then
				pass image-debian
			else
				fail image-debian "not a bookworm root with procps: debian_version $(head -c 40 "$T/image-debian.version"), ps $(grep -c 'Type: regular' "$T/image-debian.ps")"
			fi
			vmrun image-debian-boot 120 run --image "$DIMG" --no-report
			expect_rc image-debian-boot 5 && expect_grep image-debian-boot out \
				"^crash-test: running on Linux $(cat "$KDIR_AMD64/release"), 2 CPUs" '^crash-test: exit 5' &&
				pass image-debian-boot
			vmrun image-debian-segv 120 run --image "$DIMG" --report-dir "$T/image-debian-segv.reports" -- segv
			if expect_rc image-debian-segv 123 &&
				expect_grep image-debian-segv err 'process crash-test \(pid [0-9]+\) died of SIGSEGV' &&
				expect_report image-debian-segv app-fault core.elf memory.dmp app.core; then
				gdb -nx -batch -ex bt -ex 'info proc mappings' "$CRASH_TEST" "$REPORT/app.core" >"$T/image-debian-segv.gdb" 2>&1
				if grep -Eq '^#[0-9]+ .*crash_here' "$T/image-debian-segv.gdb" &&
					grep -Eq '^#[0-9]+ .* main ' "$T/image-debian-segv.gdb" &&
					grep -q '/usr/lib/x86_64-linux-gnu/libc.so.6' "$T/image-debian-segv.gdb"; then
					pass image-debian-segv
				else
					fail image-debian-segv "gdb on app.core: $(grep -E '^#|libc|Program terminated' "$T/image-debian-segv.gdb" | head -8 | tr '\n' '|')"
				fi
			fi
		fi
	fi

	# A part changed after the build: refused before anything boots.
	cp -r "$T/limg" "$T/limg-bad" && chmod u+w "$T/limg-bad/rootfs.ext4"
	printf 'X' | dd of="$T/limg-bad/rootfs.ext4" bs=1 seek=70000 conv=notrunc status=none
	vmrun image-tampered 30 run --image "$T/limg-bad"
	expect_rc image-tampered 125 && expect_grep image-tampered err 'rootfs.ext4 does not match its sha256 in the manifest' &&
		pass image-tampered
	vmrun image-not-image 30 run --image "$T"
	expect_rc image-not-image 125 && expect_grep image-not-image err "manifest.json" && pass image-not-image
	# Hostile manifests: a part outside the image, a newer format, a size
	# that does not fit, and a FIFO in the manifest's place.
	hostile() { # NAME JQ-FILTER ERROR-REGEX
		rm -rf "$T/limg-$1" && cp -r "$T/limg" "$T/limg-$1" && chmod u+w "$T/limg-$1/manifest.json"
		jq "$2" "$T/limg/manifest.json" >"$T/limg-$1/manifest.json"
		vmrun image-$1 30 image show "$T/limg-$1"
		expect_rc image-$1 125 && expect_grep image-$1 err "$3" && pass image-$1
	}
	hostile traversal '.parts.rootfs.file = "../limg/rootfs.ext4"' 'parts.rootfs.file "../limg/rootfs.ext4" is not a plain file name'
	hostile version '.version = 2' 'format version 2; this trialvm reads version 1'
	hostile size '.parts.kernel.size = 99999999999999' 'the manifest says 99999999999999'
	hostile memory '.memory = 12345' '"memory" .* is wrong'
	rm -rf "$T/limg-fifo" && cp -r "$T/limg" "$T/limg-fifo" && rm -f "$T/limg-fifo/manifest.json" && mkfifo "$T/limg-fifo/manifest.json"
	vmrun image-fifo 10 image show "$T/limg-fifo"
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail image-fifo "hung on a FIFO manifest"
	else
		expect_rc image-fifo 125 && expect_grep image-fifo err 'not a regular file' && pass image-fifo
	fi
fi

# Usage errors: each names what is wrong.
vmrun image-no-app 10 image linux --rootfs "$ROOT" -o "$T/limg2"
expect_rc image-no-app 126 && expect_grep image-no-app err '--app PATH is needed' && pass image-no-app
vmrun image-app-missing 60 image linux --rootfs "$ROOT" --kernel-dir "$KDIR_AMD64" --app /usr/bin/nothing -o "$T/limg3"
expect_rc image-app-missing 125 && expect_grep image-app-missing err '--app /usr/bin/nothing: not in the root file system' &&
	[ ! -e "$T/limg3" ] && [ -z "$(ls -d "$T"/limg3.tmp-* 2>/dev/null)" ] && pass image-app-missing
vmrun image-exists 10 image linux --rootfs "$ROOT" --kernel-dir "$KDIR_AMD64" --app /usr/bin/crash-test -o "$T/limg"
expect_rc image-exists 125 && expect_grep image-exists err 'already exists' && pass image-exists
vmrun image-with-kernel 10 run --image "$T/limg" --kernel "$KDIR_AMD64/vmlinuz"
expect_rc image-with-kernel 126 && expect_grep image-with-kernel err '--image and --kernel' && pass image-with-kernel
