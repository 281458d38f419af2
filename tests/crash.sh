# tests/crash.sh - crash capture: detection sources, report directories,
# dumps that real tools open (sourced by tests/run.sh; report_of and
# expect_report are in tests/lib.sh).


# -- an application fault: every file, gdb on app.core, readelf on core.elf
vmrun crash-app 60 run --app "$APPS/null-deref" --report-dir "$T/crash-app.reports"
if expect_rc crash-app 123 && expect_report crash-app app-fault core.elf memory.dmp app.core; then
	if [ "$(count_notes "$REPORT/core.elf" NT_PRSTATUS)" -ne 1 ] || [ "$(count_notes "$REPORT/core.elf" 'QEMU')" -lt 1 ]; then
		fail crash-app "core.elf notes: $(readelf -n "$REPORT/core.elf" | grep -E 'CORE|QEMU' | tr '\n' '|')"
	elif ! expect_grep crash-app err '=> +[0-9a-f]+ .* crash_here\+0x'; then
		:
	elif ! grep -q '"function": "crash_here+0x' "$REPORT/report.json" ||
		! grep -q '"signal_name": "SIGSEGV"' "$REPORT/report.json" ||
		! grep -q '"current": true' "$REPORT/report.json"; then
		fail crash-app "report.json lacks function/signal/disassembly: $(head -c 400 "$REPORT/report.json" | tr '\n' ' ')"
	else
		pass crash-app
	fi
	gdb -nx -batch -ex bt "$APPS/null-deref" "$REPORT/app.core" >"$T/gdb.out" 2>&1
	if grep -Eq '#0 .*crash_here' "$T/gdb.out" && grep -Eq '#1 .*main' "$T/gdb.out"; then
		pass crash-app-gdb-bt
	else
		fail crash-app-gdb-bt "gdb bt: $(tr '\n' '|' <"$T/gdb.out" | head -c 600)"
	fi
	gdb -nx -batch -ex 'info registers rip' "$APPS/null-deref" "$REPORT/app.core" >"$T/gdb2.out" 2>&1
	rip=$(grep -Eo 'RIP 0x[0-9a-f]+' "$T/crash-app.err" | head -1 | cut -c5-)
	if grep -q "$rip" "$T/gdb2.out"; then pass crash-app-core-rip; else fail crash-app-core-rip "gdb rip: $(cat "$T/gdb2.out")"; fi
	# The notes Linux writes, NT_FILE and NT_X86_XSTATE (owner LINUX) too:
	# gdb lists the file mappings and reads the vector registers null-deref
	# loaded (ymm0 = 0x11110000 + i where trialos let it use AVX, else
	# xmm0), and lldb takes the core for a Linux one.
	readelf -nW "$REPORT/app.core" >"$T/appnotes.out" 2>&1
	gdb -nx -batch -ex 'info proc mappings' -ex 'p/x $xmm0.v4_int32' -ex 'p/x $ymm0.v8_int32' \
		"$APPS/null-deref" "$REPORT/app.core" >"$T/gdb3.out" 2>&1
	want_ymm='0x11110004, 0x11110005, 0x11110006, 0x11110007}'
	# (the emulated KVM host ignores a guest's XSETBV: there XCR0 stays 1 and
	# null-deref says "avx: no"; ymm0 does not exist then)
	grep -q '^avx: yes' "$T/crash-app.out" || want_ymm='{0x11110000, 0x11110001, 0x11110002, 0x11110003}'
	if ! grep -Eq 'CORE[[:space:]]+0x[0-9a-f]+[[:space:]]+NT_FILE' "$T/appnotes.out" ||
		! grep -Eq 'LINUX[[:space:]]+0x[0-9a-f]+[[:space:]]+NT_X86_XSTATE' "$T/appnotes.out"; then
		fail crash-app-core-notes "readelf -n: $(grep -E '^ *(CORE|LINUX)' "$T/appnotes.out" | tr -s ' ' | tr '\n' '|')"
	elif ! grep -Eq "0x0 $(realpath "$APPS/null-deref")\$" "$T/gdb3.out"; then
		fail crash-app-core-notes "gdb info proc mappings does not list $APPS/null-deref: $(tr '\n' '|' <"$T/gdb3.out" | head -c 600)"
	elif ! grep -q '{0x11110000, 0x11110001, 0x11110002, 0x11110003}' "$T/gdb3.out" || ! grep -qF "$want_ymm" "$T/gdb3.out"; then
		fail crash-app-core-notes "gdb vector registers ($(head -1 "$T/crash-app.out")): $(grep '^\$' "$T/gdb3.out" | tr '\n' '|')"
	else
		pass crash-app-core-notes
	fi
	lldb --batch -o bt -c "$REPORT/app.core" "$APPS/null-deref" >"$T/lldb.out" 2>&1
	if grep -q 'stop reason = signal SIGSEGV' "$T/lldb.out" && grep -q 'null-deref`crash_here' "$T/lldb.out" &&
		grep -q 'null-deref`main' "$T/lldb.out"; then
		pass crash-app-core-lldb
	else
		fail crash-app-core-lldb "lldb bt: $(grep -v -e Traceback -e '^  File' -e Error "$T/lldb.out" | tr '\n' '|' | head -c 600)"
	fi
	# A report whose listed file has become a FIFO: refused, never waited on.
	cp -r "$REPORT" "$T/fifo-report"
	rm "$T/fifo-report/console.log" && mkfifo "$T/fifo-report/console.log"
	vmrun inspect-report-fifo 10 inspect "$T/fifo-report/report.json"
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail inspect-report-fifo "hung (killed by the 10 s timeout)"
	elif [ "$RC" -ne 0 ] && expect_grep inspect-report-fifo err '"console.log" listed in "files".* is not a regular file'; then
		pass inspect-report-fifo
	else
		[ "$RC" -eq 0 ] && fail inspect-report-fifo "accepted a FIFO as console.log"
	fi
fi

# -- a program that calls through a wild pointer: RIP in the last page of the
# address space must not make trialvm's code window wrap (it overflowed a
# stack buffer and hung), whatever RIP the guest hands over.
for rip in ffffffffffffffff ffffffffffffffea fffffffffffff000; do
	vmrun crash-wild-rip-$rip 30 run --app "$APPS/jump-wild" --report-dir "$T/crash-wild-rip-$rip.reports" -- $rip
	expect_rc crash-wild-rip-$rip 123 && expect_report crash-wild-rip-$rip app-fault core.elf memory.dmp app.core &&
		expect_grep crash-wild-rip-$rip err "SIGSEGV.* at address 0x$rip " "RIP 0x$rip" && pass crash-wild-rip-$rip
done

# -- pvpanic from a guest kernel
vmrun crash-panic 30 run --kernel "$TINY/tiny-panic.elf" --report-dir "$T/crash-panic.reports"
expect_rc crash-panic 123 && expect_report crash-panic panic core.elf memory.dmp && pass crash-panic

# -- trialos's own unrecoverable error goes through pvpanic too
printf 'not an ELF\n' >"$T/not-elf"
vmrun crash-trialos-panic 30 run --kernel "$TRIALVM_TRIALOS" --initrd "$T/not-elf" --cmdline '-- x' --report-dir "$T/crash-trialos-panic.reports"
expect_rc crash-trialos-panic 123 && expect_report crash-trialos-panic panic core.elf memory.dmp &&
	expect_grep crash-trialos-panic out 'trialos: panic: ' && expect_grep crash-trialos-panic err 'RIP 0x[0-9a-f]+ in panic\+' &&
	pass crash-trialos-panic

# -- triple fault, 2 vCPUs: both in the dumps; a known physical page equals the kernel's bytes
vmrun crash-triple 30 run --cpus 2 --kernel "$TINY/tiny-triple.elf" --report-dir "$T/crash-triple.reports"
if expect_rc crash-triple 123 && expect_report crash-triple triple-fault core.elf memory.dmp; then
	if [ "$(count_notes "$REPORT/core.elf" NT_PRSTATUS)" -ne 2 ] || [ "$(count_notes "$REPORT/core.elf" 'QEMU')" -ne 2 ]; then
		fail crash-triple-2cpus "readelf -n: $(readelf -n "$REPORT/core.elf" | grep -E 'CORE|QEMU' | tr '\n' '|')"
	elif ! grep -q '"index": 1' "$REPORT/report.json"; then
		fail crash-triple-2cpus "report.json lacks vCPU 1"
	elif [ "$(grep -c '"imr": "0xff"' "$REPORT/report.json")" -ne 2 ]; then
		fail crash-triple-2cpus "the 8259s are not both masked at start: $(grep '"imr"' "$REPORT/report.json" | tr -d ' \n')"
	else
		pass crash-triple-2cpus
	fi
	# report.json says whether the crashing vCPU's state is the real one (Intel) or lost (AMD).
	if grep -q '^vendor_id.*GenuineIntel' /proc/cpuinfo; then
		grep -q '"cpu_state_lost"' "$REPORT/report.json" && fail crash-triple-state "Intel keeps the state, yet report.json says it was lost" ||
			pass crash-triple-state
	elif grep -q '"cpu_state_lost"' "$REPORT/report.json" && grep -q '"why": "KVM re-initialised the vCPU' "$REPORT/report.json" &&
		[ "$(sed -n '/"vcpus"/,$p' "$REPORT/report.json" | grep -m1 '"rip"' | tr -d ' ,')" = \
			"\"rip\":\"0x$(nm "$TINY/tiny-triple.elf" | awk '$3 == "console_out" { print $1 }' | sed 's/^0*//')\"" ]; then
		# vCPU 0 shows its last port write; vCPU 1 never left its wait for SIPI, so its reset state is its real state.
		pass crash-triple-state
	else
		fail crash-triple-state "report.json does not say the CPU state was lost, or shows the reset state: $(grep -A2 -E 'cpu_state_lost|"rip"' "$REPORT/report.json" | tr -d ' \n' | head -c 300)"
	fi
	crash -d 1 --osrelease "$REPORT/core.elf" >"$T/crash-tool.out" 2>&1
	if grep -q 'KDUMP_ELF64' "$T/crash-tool.out" && grep -q 'num_qemu_notes: 2' "$T/crash-tool.out"; then
		pass crash-tool-recognises-core
	else
		fail crash-tool-recognises-core "$(grep -iE 'kdump|qemu|error' "$T/crash-tool.out" | head -5 | tr '\n' '|')"
	fi
	objcopy -O binary -j .text "$TINY/tiny-triple.elf" "$T/text.bin"
	len=$(stat -c %s "$T/text.bin")
	ok=1
	for f in core.elf memory.dmp; do
		if ! "$TRIALVM" inspect --read-phys "0x100000:$len" "$REPORT/$f" >"$T/page.$f" 2>"$T/page.err" ||
			! cmp -s "$T/page.$f" "$T/text.bin"; then
			fail crash-dump-page "$f: guest page 0x100000 differs from the kernel's code ($(head -c 200 "$T/page.err"))"
			ok=0
		fi
	done
	[ $ok -eq 1 ] && pass crash-dump-page
	# The same page read through both dumps, at a RAM address the guest wrote (its stack).
	"$TRIALVM" inspect --read-phys 0x1ff000:4096 "$REPORT/core.elf" >"$T/stack.a" 2>/dev/null
	"$TRIALVM" inspect --read-phys 0x1ff000:4096 "$REPORT/memory.dmp" >"$T/stack.b" 2>/dev/null
	if [ -s "$T/stack.a" ] && cmp -s "$T/stack.a" "$T/stack.b"; then pass crash-dumps-agree; else fail crash-dumps-agree "page 0x1ff000 differs between core.elf and memory.dmp"; fi
	if "$TRIALVM" inspect "$REPORT/memory.dmp" >"$T/md.out" 2>&1 && grep -q 'DUMP_HEADER64' "$T/md.out" && grep -q 'runs' "$T/md.out" &&
		grep -qi 'rip' "$T/md.out"; then pass crash-inspect-windump; else fail crash-inspect-windump "$(head -c 400 "$T/md.out")"; fi
	# Sparse: the 128 MiB guest takes little disk.
	blocks=$(stat -c %b "$REPORT/core.elf")
	if [ "$blocks" -lt 8192 ]; then pass crash-dump-sparse; else fail crash-dump-sparse "core.elf uses $((blocks / 2)) KiB"; fi
	# Damaged dumps are refused with a clear error, never a crash.
	for f in core.elf memory.dmp; do
		head -c 3000 "$REPORT/$f" >"$T/trunc.$f"
		"$TRIALVM" inspect "$T/trunc.$f" >"$T/trunc.out" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ -s "$T/trunc.out" ]; then pass "inspect-truncated-$f"; else fail "inspect-truncated-$f" "rc $rc: $(head -c 200 "$T/trunc.out")"; fi
		cp "$REPORT/$f" "$T/bad.$f"
		# core.elf: e_phoff; memory.dmp: NumberOfRuns.
		case $f in core.elf) at=32 ;; *) at=136 ;; esac
		printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$T/bad.$f" bs=1 seek=$at conv=notrunc status=none
		"$TRIALVM" inspect "$T/bad.$f" >"$T/bad.out" 2>&1
		rc=$?
		if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ -s "$T/bad.out" ]; then pass "inspect-corrupt-$f"; else fail "inspect-corrupt-$f" "rc $rc: $(head -c 200 "$T/bad.out")"; fi
	done
fi

# -- --crash-on SYMBOL: a breakpoint on a trialos kernel function. Hardware
# breakpoints where they fire; else (QEMU's emulated AMD-V: they do not, nor
# is int3 intercepted) a software breakpoint written into the kernel, whose
# bytes no dump, report or disassembly may show.
vmrun crash-on 30 run -v --app "$APPS/hello" --crash-on do_write --report-dir "$T/crash-on.reports"
if expect_rc crash-on 123 && expect_report crash-on breakpoint core.elf memory.dmp &&
	expect_grep crash-on err 'RIP 0x[0-9a-f]+ in do_write\+0x0 ' 'breakpoint probe: hardware breakpoints (do not fire|work)'; then
	pass crash-on
	# The first bytes of do_write as the ELF file has them, and as the dumps and the diagnosis show them.
	want=$(elf_bytes "$TRIALVM_TRIALOS" do_write 4)
	pa=$(sym_phys "$TRIALVM_TRIALOS" do_write)
	ok=1
	for f in core.elf memory.dmp; do
		got=$(phys_bytes "$REPORT/$f" "$pa" 4)
		[ -n "$want" ] && [ "$got" = "$want" ] || { fail crash-on-original-bytes "$f at $pa: '$got', the ELF has '$want'"; ok=0; }
	done
	grep -q "instruction bytes at RIP: $want" "$T/crash-on.err" || { fail crash-on-original-bytes "diagnosis: $(grep 'instruction bytes' "$T/crash-on.err")"; ok=0; }
	first=$(printf '%s' "$want" | cut -d' ' -f1)
	grep -B4 '"current": true' "$REPORT/report.json" | grep -q "\"bytes\": \"$first" ||
		{ fail crash-on-original-bytes "report.json disassembly: $(grep -B2 -A3 '"current": true' "$REPORT/report.json" | tr -d ' \n' | head -c 300)"; ok=0; }
	[ $ok -eq 1 ] && pass crash-on-original-bytes
fi
# A stripped kernel has no symbols: --crash-on needs --kernel-symbols, here a System.map.
strip -o "$T/trialos.stripped" "$TRIALVM_TRIALOS"
nm "$TRIALVM_TRIALOS" >"$T/System.map"
vmrun crash-on-nosyms 10 run --app "$APPS/hello" --trialos "$T/trialos.stripped" --crash-on do_write
expect_rc crash-on-nosyms 126 && expect_grep crash-on-nosyms err 'has none.*--kernel-symbols' && pass crash-on-needs-symbols
vmrun crash-on-map 30 run --app "$APPS/hello" --trialos "$T/trialos.stripped" --kernel-symbols "$T/System.map" \
	--crash-on do_write --no-report
expect_rc crash-on-map 123 && expect_grep crash-on-map err 'breakpoint' 'RIP 0x[0-9a-f]+ in do_write\+0x0 ' && pass crash-on-system-map
vmrun crash-on-bad 10 run --app "$APPS/hello" --crash-on no_such_function
expect_rc crash-on-bad 126 && expect_grep crash-on-bad err 'no such symbol' && pass crash-on-bad-symbol

# -- hangs: an application spinning in ring 3, a kernel spinning in ring 0
vmrun crash-hang-app 60 run --app "$APPS/spin" --hang-timeout 1 --report-dir "$T/crash-hang-app.reports"
expect_rc crash-hang-app 123 && expect_report crash-hang-app hang core.elf memory.dmp &&
	expect_grep crash-hang-app err 'no progress' 'in spin_forever|CPL 3' && pass crash-hang-app
vmrun crash-hang-kernel 60 run --kernel "$TINY/tiny-spin.elf" --hang-timeout 1 --report-dir "$T/crash-hang-kernel.reports"
expect_rc crash-hang-kernel 123 && expect_report crash-hang-kernel hang core.elf memory.dmp && pass crash-hang-kernel
# A guest that finishes is never called hung.
vmrun crash-hang-none 30 run --app "$APPS/hello" --hang-timeout 0.2 --report-dir "$T/crash-hang-none.reports"
expect_rc crash-hang-none 0 && [ ! -e "$T/crash-hang-none.reports" ] && pass crash-hang-no-false-positive

# -- --on-crash restart: each crash has its own report
vmrun crash-restart 60 run --app "$APPS/null-deref" --on-crash restart --max-restarts 2 --report-dir "$T/crash-restart.reports"
n=$(find "$T/crash-restart.reports" -mindepth 1 -maxdepth 1 -type d | wc -l)
if expect_rc crash-restart 123 && [ "$n" -eq 3 ] && [ "$(grep -c 'restarting a fresh VM' "$T/crash-restart.err")" -eq 2 ]; then
	pass crash-restart
else
	fail crash-restart "reports: $n, restarts: $(grep -c 'restarting' "$T/crash-restart.err")"
fi

# -- --on-crash pause: the VM stays until a signal
"$TRIALVM" run --app "$APPS/null-deref" --on-crash pause --no-report >"$T/pause.out" 2>"$T/pause.err" </dev/null &
pid=$!
for _ in $(seq 100); do grep -q 'paused' "$T/pause.err" && break; sleep 0.1; done
if kill -0 $pid 2>/dev/null && grep -q 'paused' "$T/pause.err"; then
	kill -TERM $pid
	wait $pid
	rc=$?
	[ $rc -eq 123 ] && pass crash-pause || fail crash-pause "exit status $rc after SIGTERM"
else
	kill -KILL $pid 2>/dev/null
	wait $pid
	fail crash-pause "did not stay paused: $(head -c 300 "$T/pause.err")"
fi

# -- the report disk fills up: a clear error, no half report, still the crash status
if mkdir -p "$T/full" && mount -t tmpfs -o size=256k tmpfs "$T/full" 2>/dev/null; then
	vmrun crash-disk-full 60 run --app "$APPS/null-deref" --report-dir "$T/full/reports"
	left=$(ls -A "$T/full/reports" 2>/dev/null)
	if expect_rc crash-disk-full 123 && expect_grep crash-disk-full err 'crash report could not be written.*(No space|space)'; then
		[ -z "$left" ] && pass crash-disk-full || fail crash-disk-full "left behind: $left"
	fi
	umount "$T/full"
else
	skip crash-disk-full "cannot mount a small tmpfs here (needs root)"
fi

# -- a file-size limit (ulimit -f): the same clear error, not death by SIGXFSZ (153)
(ulimit -f 4096 && exec timeout -k 5 60 "$TRIALVM" run --app "$APPS/null-deref" --report-dir "$T/fsize/reports") \
	>"$T/crash-fsize.out" 2>"$T/crash-fsize.err" </dev/null
RC=$?
left=$(ls -A "$T/fsize/reports" 2>/dev/null)
if expect_rc crash-fsize 123 && expect_grep crash-fsize err 'crash report could not be written.*File too large'; then
	[ -z "$left" ] && pass crash-fsize || fail crash-fsize "left behind: $left"
fi

# -- inspect: bad input
vmrun inspect-missing 10 inspect "$T/nothing-here"
expect_rc inspect-missing 125 && expect_grep inspect-missing err 'nothing-here' && pass inspect-missing
printf 'not a dump at all\n' >"$T/junk"
vmrun inspect-junk 10 inspect "$T/junk"
[ "$RC" -ne 0 ] && [ "$RC" -lt 128 ] && expect_grep inspect-junk err 'junk' && pass inspect-junk || { [ "$RC" -eq 0 ] && fail inspect-junk "exit 0"; }

# -- guest text (app name, console, symbol names) escaped on stderr, kept in report.json (issue 8, item 8)
HN="$T/hostile"$'\033[2J\007\342\200\256'"name"
cp "$APPS/hostile-text" "$HN"
vmrun crash-hostile-text 60 run --app "$HN" --report-dir "$T/crash-hostile-text.reports"
if expect_rc crash-hostile-text 123 && expect_report crash-hostile-text app-fault core.elf memory.dmp app.core &&
	expect_grep crash-hostile-text err 'application hostile\\x1b\[2J\\x07\\u\{202e\}name crashed' \
		'RIP 0x[0-9a-f]+ in crash\\x1b\[2J\\x07\\u\{202e\}here\\xff\+0x'; then
	if LC_ALL=C grep -q $'[\033\007\377]' "$T/crash-hostile-text.err" || LC_ALL=C grep -q $'\342\200\256' "$T/crash-hostile-text.err"; then
		fail crash-hostile-text "raw control/bidi/invalid bytes on stderr: $(od -c "$T/crash-hostile-text.err" | head -4 | tr '\n' '|')"
	elif ! grep -qiF '"name": "hostile\u001b[2J\u0007' "$REPORT/report.json" ||
		! grep -qiF '"function": "crash\u001b[2J\u0007' "$REPORT/report.json" ||
		! grep -qF 'here\\xff+0x' "$REPORT/report.json" ||
		! grep -qF 'reversed \\xff\\xfe not UTF-8' "$REPORT/report.json"; then
		fail crash-hostile-text "report.json lacks the escaped name/function/console: $(grep -E '"(name|function)"' "$REPORT/report.json" | tr '\n' '|')"
	else
		pass crash-hostile-text
	fi
fi

# -- unfinished reports (.ID.partial) of a trialvm that was killed are
#    removed at the next start, and said; one whose writer still runs stays
mkdir -p "$T/partial.reports/.20260101T000000.000Z-3999999-1.partial" "$T/partial.reports/.20260101T000000.000Z-$$-1.partial"
head -c 4096 /dev/zero >"$T/partial.reports/.20260101T000000.000Z-3999999-1.partial/core.elf"
# named after a live pid (this shell) but older than it: the pid was reused, so it goes too
touch -d '2000-01-01' "$T/partial.reports/.20260101T000000.000Z-$$-1.partial"
vmrun crash-partial-cleanup 60 run --app "$APPS/hello" --report-dir "$T/partial.reports"
if expect_rc crash-partial-cleanup 0 && expect_grep crash-partial-cleanup err \
	'removed .*/\.20260101T000000\.000Z-3999999-1\.partial: an unfinished report left by trialvm process 3999999'; then
	if [ -e "$T/partial.reports/.20260101T000000.000Z-3999999-1.partial" ]; then
		fail crash-partial-cleanup "the dead process's partial report is still there"
	elif [ -e "$T/partial.reports/.20260101T000000.000Z-$$-1.partial" ]; then
		fail crash-partial-cleanup "a partial report whose pid now belongs to a later process was kept"
	else
		pass crash-partial-cleanup
	fi
fi
mkdir -p "$T/partial2.reports/.20260101T000000.000Z-$$-1.partial"
vmrun crash-partial-live 60 run --app "$APPS/hello" --report-dir "$T/partial2.reports"
expect_rc crash-partial-live 0 && { [ -d "$T/partial2.reports/.20260101T000000.000Z-$$-1.partial" ] ||
	fail crash-partial-live "the partial report of a running process ($$) was removed"; } && pass crash-partial-live
