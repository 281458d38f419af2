# tests/linux.sh - Linux through the bzImage and vmlinux loaders, on Debian's
# own cloud kernel (sourced by tests/run.sh).
KDIR=$PWD/$BUILD/images/debian
if ! images/fetch-debian-kernel.sh "$KDIR" >"$T/fetch.log" 2>&1; then
	skip linux "Debian's kernel package could not be fetched: $(tail -1 "$T/fetch.log")"
	return 0
fi

# linux_until NAME TIMEOUT REGEX ARGS...: run trialvm until the console shows
# REGEX (then SIGTERM it) or it exits by itself.
linux_until() {
	local name=$1 to=$2 re=$3
	shift 3
	"$TRIALVM" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	local pid=$! waited=0
	while kill -0 $pid 2>/dev/null; do
		if grep -Eq -- "$re" "$T/$name.out"; then
			kill -TERM $pid
			break
		fi
		if [ $waited -ge $((to * 10)) ]; then
			kill -KILL $pid
			break
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait $pid
	RC=$?
}

# The e820 lines Linux prints must be the map trialvm built for 256 MiB.
cat >"$T/e820.want" <<'E820'
BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable
BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved
BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable
E820
check_linux_console() {
	local name=$1
	grep -Eo 'BIOS-e820: .*' "$T/$name.out" | sed 's/[[:space:]]*$//' >"$T/$name.e820"
	expect_grep "$name" out '^\[ *0\.0+\] Linux version 6\.' \
		'Command line: console=ttyS0 earlyprintk=serial trialvm\.marker=42' || return 1
	if ! cmp -s "$T/$name.e820" "$T/e820.want"; then
		fail "$name" "e820 map printed by Linux differs: $(tr '\n' '|' <"$T/$name.e820")"
		return 1
	fi
}

# bzImage, host-side decompression, 2 vCPUs, run until the kernel panics for
# want of a root file system (hardware KVM and the emulated KVM host get
# that far: both CPUs up, the 8250 found through ACPI) or, on the old
# nested platform, KVM fails to emulate an instruction on the way.
CMD='console=ttyS0 earlyprintk=serial trialvm.marker=42'
linux_start=$(date +%s)
linux_until linux-bzimage 300 'Kernel panic|Run /init' run --kernel "$KDIR/vmlinuz" --mem 256M --cpus 2 \
	--cmdline "$CMD" --report-dir "$T/linux-bzimage.reports"
if check_linux_console linux-bzimage && expect_grep linux-bzimage out 'Allowing 2 CPUs'; then
	if [ "$RC" -eq 123 ]; then
		if expect_grep linux-bzimage err 'guest crashed on vCPU [01]: KVM could not continue' \
			'instruction bytes at RIP: [0-9a-f]{2}( [0-9a-f]{2})+' 'CR3 ' && report_of linux-bzimage; then
			pass linux-bzimage
			# The dump of the stopped kernel: both vCPUs, the kernel's CR3 in the QEMU note, and crash reads it.
			cr3=$(grep -Eo 'CR3 [0-9a-f]+' "$T/linux-bzimage.err" | head -1 | awk '{ print $2 }' | sed 's/^0*//')
			"$TRIALVM" inspect "$REPORT/core.elf" >"$T/lcore.out" 2>&1
			if [ "$(count_notes "$REPORT/core.elf" NT_PRSTATUS)" -eq 2 ] && [ "$(count_notes "$REPORT/core.elf" QEMU)" -eq 2 ] &&
				grep -Eq "cr3 0x0*$cr3( |\$)" "$T/lcore.out"; then
				pass linux-core-elf
			else
				fail linux-core-elf "CR3 $cr3 not in the QEMU notes: $(grep -i cr3 "$T/lcore.out" | tr '\n' '|')"
			fi
			crash -d 1 --osrelease "$REPORT/core.elf" >"$T/crash-tool.out" 2>&1
			if grep -q 'KDUMP_ELF64' "$T/crash-tool.out" && grep -Eq 'num_qemu_notes: 2' "$T/crash-tool.out"; then
				pass linux-core-crash-tool
			else
				fail linux-core-crash-tool "crash -d 1: $(grep -iE 'kdump|qemu' "$T/crash-tool.out" | head -5 | tr '\n' '|')"
			fi
		fi
	elif [ "$RC" -eq 143 ]; then
		echo "linux-bzimage: to the root-mount panic in $(($(date +%s) - linux_start)) s" >&2
		expect_grep linux-bzimage out 'smp: Brought up 1 node, 2 CPUs' 'ttyS0 at I/O 0x3f8 \(irq = [0-9]+, base_baud = 115200\) is a 16550A' \
			'Kernel panic - not syncing: VFS: Unable to mount root fs' && pass linux-bzimage
	else
		fail linux-bzimage "exit status $RC; stderr: $(head -c 400 "$T/linux-bzimage.err")"
	fi
fi

# The vmlinux ELF inside the same bzImage, through the ELF loader.
if "$BUILD/tests/tools/extract-vmlinux" "$KDIR/vmlinuz" "$T/vmlinux" 2>"$T/extract.err"; then
	# With a disk: Linux is told of every virtio-mmio device (the disk, the
	# console, rng) on its command line and in the ACPI DSDT.
	head -c 1048576 /dev/zero >"$T/linux-disk.img"
	linux_until linux-vmlinux 120 'Zone ranges' run --kernel "$T/vmlinux" --mem 256M --cmdline "$CMD" \
		--disk "$T/linux-disk.img"
	if check_linux_console linux-vmlinux && expect_grep linux-vmlinux out \
		'Command line: .*virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 virtio_mmio.device=4K@0xd0002000:7' \
		'ACPI: DSDT '; then
		{ [ "$RC" -eq 143 ] || [ "$RC" -eq 123 ]; } && pass linux-vmlinux || fail linux-vmlinux "exit status $RC"
	fi
else
	fail linux-vmlinux "extract-vmlinux: $(cat "$T/extract.err")"
fi

# A bzImage truncated in its payload, and one with a corrupted payload.
head -c 3000000 "$KDIR/vmlinuz" >"$T/vmlinuz.trunc"
vmrun linux-truncated 30 run --kernel "$T/vmlinuz.trunc" --mem 256M
expect_rc linux-truncated 125 && expect_grep linux-truncated err 'vmlinuz.trunc' && pass linux-truncated
cp "$KDIR/vmlinuz" "$T/vmlinuz.bad"
printf '\xde\xad\xbe\xef\xde\xad\xbe\xef\xde\xad\xbe\xef\xde\xad\xbe\xef' |
	dd of="$T/vmlinuz.bad" bs=1 seek=200000 conv=notrunc status=none
vmrun linux-corrupt 30 run --kernel "$T/vmlinuz.bad" --mem 256M
expect_rc linux-corrupt 125 && expect_grep linux-corrupt err 'vmlinuz.bad' && pass linux-corrupt

# Record and replay with two vCPUs (best-effort): a Linux boot to the
# root-mount panic, recorded from the start; interrupts are not in the log,
# so the replay goes its own way at some point. It must say it is
# best-effort and end with a divergence report naming a record and the
# RIP (or match), never hang. Both vCPUs make exits in that boot (vCPU 1
# thousands); the unit test test_replay checks the interleaving exactly.
linux_until linux-rec-smp 300 'Kernel panic' run --kernel "$KDIR/vmlinuz" --mem 256M --cpus 2 \
	--cmdline "$CMD" --no-report --snapshot-every 600 --snapshot-dir "$T/linux-rec"
python3 tests/tools/evlog.py "$T/linux-rec/start-000001.tvl" --vcpus >"$T/linux-rec-smp.log" 2>&1
if ! grep -q 'smp: Brought up 1 node, 2 CPUs' "$T/linux-rec-smp.out"; then
	fail linux-rec-smp "Linux did not bring up 2 CPUs: status $RC; $(tail -c 300 "$T/linux-rec-smp.err")"
elif ! grep -Eq '^header 1 0 ' "$T/linux-rec-smp.log" || ! grep -Eq '^vcpu 1 exits [1-9]' "$T/linux-rec-smp.log"; then
	fail linux-rec-smp "the log is marked exact, or has no exits of vCPU 1: $(tr '\n' '|' <"$T/linux-rec-smp.log")"
else
	echo "linux-rec-smp: $(grep '^vcpu' "$T/linux-rec-smp.log" | tr '\n' ' ')" >&2
	vmrun linux-rep-smp 120 replay "$T/linux-rec/start-000001.tvl" --kernel "$KDIR/vmlinuz" --mem 256M --cpus 2 \
		--cmdline "$CMD"
	if ! expect_grep linux-rep-smp err 'recorded with 2 vCPUs; .* this replay is best-effort'; then
		:
	elif [ "$RC" -eq 122 ]; then
		echo "linux-rec-smp: $(grep -m1 -o 'replay diverged at record.*' "$T/linux-rep-smp.err" | cut -c1-400)" >&2
		expect_grep linux-rep-smp err 'replay diverged at record [0-9]+ \(offset [0-9]+\) of .*start-000001.tvl, after [1-9][0-9]* exits matched: the log has .*; the guest made .*; the guest.s RIP' &&
			pass linux-rec-smp
	elif [ "$RC" -eq 0 ] || [ "$RC" -eq 124 ]; then
		fail linux-rec-smp "the replay did not diverge nor end (status $RC): $(tail -c 300 "$T/linux-rep-smp.err")"
	else
		expect_grep linux-rep-smp err 'replay: [1-9][0-9]* exits matched .* \(vCPU 0: [1-9][0-9]*, vCPU 1: [0-9]+\)' && pass linux-rec-smp
	fi
fi
