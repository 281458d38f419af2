# tests/gdb.sh - the gdb stub (--gdb) with stock gdb against a live trialos
# VM and a replayed crash, and the raw protocol with hostile packets
# (tests/tools/gdbrsp.py, an independent client). Sourced by
# tests/vm-suite.sh after record.sh.
GDBRSP="python3 $PWD/tests/tools/gdbrsp.py"
TRIALOS_ELF=$TRIALVM_TRIALOS

# gdb_port NAME PID: the port trialvm (PID) said it listens on, from
# $T/NAME.err; empty when it ended first or said nothing in 30 s.
gdb_port() {
	local i p
	for i in $(seq 1 300); do
		p=$(sed -n 's/^.*gdb: waiting for a debugger on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$T/$1.err" | head -1)
		[ -n "$p" ] && { echo "$p"; return; }
		kill -0 "$2" 2>/dev/null || return
		sleep 0.1
	done
}

# gdb_session NAME TIMEOUT ELF CMDS TRIALVM-COMMAND ARGS...: trialvm (ARGS
# with --gdb 0) in the background, then stock gdb in batch mode on ELF with the
# commands in file CMDS after `target remote`. gdb's output in
# $T/NAME.gdb, trialvm's in NAME.out and NAME.err, its status in $RC.
gdb_session() {
	local name=$1 to=$2 elf=$3 cmds=$4 cmd=$5
	shift 5
	timeout -k 5 "$to" "$TRIALVM" "$cmd" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	local pid=$!
	local port
	port=$(gdb_port "$name" $pid)
	if [ -z "$port" ]; then
		echo "trialvm never listened" >"$T/$name.gdb"
	else
		timeout -k 5 "$to" gdb -nx -batch -ex 'set pagination off' -ex 'set confirm off' "$elf" \
			-ex "target remote 127.0.0.1:$port" -x "$cmds" >"$T/$name.gdb" 2>&1 </dev/null
	fi
	wait $pid
	RC=$?
}

# gdb_expect NAME PATTERN...: every extended regex is a line of NAME.gdb.
gdb_expect() {
	local name=$1 p
	shift
	for p in "$@"; do
		if ! grep -Eq -- "$p" "$T/$name.gdb"; then
			fail "$name" "gdb did not print /$p/; it printed: $(grep -v '^$' "$T/$name.gdb" | tail -6 | tr '\n' '|')"
			return 1
		fi
	done
}

# A live VM: the VM waits stopped at its start; gdb breaks in the trialos
# kernel (a symbol of trialos.elf, set while paging is still off), then in
# the application once trialos has loaded it (add-symbol-file), shows its
# callers, registers and code, and continues into the crash, which gdb
# sees as the program's end by SIGSEGV. One step in the kernel goes one
# instruction on.
cat >"$T/gdb-live.cmds" <<EOF
break do_syscall
continue
stepi
info registers rip
delete 1
add-symbol-file $APPS/counter
break crash_at_end
continue
bt
info registers rip
p/x \$cr3
p \$rip == crash_at_end
x/2i \$pc
continue
EOF
gdb_session gdb-live 150 "$TRIALOS_ELF" "$T/gdb-live.cmds" run --gdb 0 --app "$APPS/counter" -- 3 10 0 crash
if expect_rc gdb-live 123 &&
	gdb_expect gdb-live 'Breakpoint 1, .*do_syscall' 'Breakpoint 2, .*crash_at_end' '^#1 .* main ' \
		'^rip +0x40[0-9a-f]+ .*crash_at_end' '^\$1 = 0x[0-9a-f]+' '^\$2 = 1' '^=> 0x40[0-9a-f]+ <crash_at_end' \
		'^rip +0xffffffff8[0-9a-f]+ .*<do_syscall\+[1-9][0-9]*>' 'trialvm: .*(SIGSEGV|signal 11)' \
		'terminated with signal SIGSEGV'; then
	grep -q '^count 3$' "$T/gdb-live.out" && pass gdb-live || fail gdb-live "the program's output is not all there: $(tr '\n' '|' <"$T/gdb-live.out")"
fi

# A replayed crash: gdb breaks at the same place on every replay, with the
# same registers and memory there, and the replay goes on to the crash.
vmrun gdb-rec 120 run --app "$APPS/counter" --snapshot-every 0.3 --snapshot-dir "$T/gdb-rec" \
	--report-dir "$T/gdb-rec.reports" -- 6 2000 100 crash
gdir=$(dirname "$(ls "$T"/gdb-rec.reports/*/report.json 2>/dev/null | head -1)")
cat >"$T/gdb-replay.cmds" <<'EOF'
break crash_at_end
continue
info registers rip rsp rax rbx rcx rdx rsi rdi eflags
x/8xg $sp
x/2i $pc
continue
EOF
if expect_rc gdb-rec 123 && [ -f "$gdir/report.json" ]; then
	gdb_session gdb-replay 150 "$APPS/counter" "$T/gdb-replay.cmds" replay "$gdir" --gdb 0
	cp "$T/gdb-replay.gdb" "$T/gdb-replay1.gdb"
	if expect_rc gdb-replay 123 && gdb_expect gdb-replay 'Breakpoint 1, .*crash_at_end' '^rip +0x40[0-9a-f]+ .*<crash_at_end>' \
		'^0x7fffffff[0-9a-f]+:\s+0x0000000000401[0-9a-f]{3}' 'terminated with signal SIGSEGV'; then
		gdb_session gdb-replay 150 "$APPS/counter" "$T/gdb-replay.cmds" replay "$gdir" --gdb 0
		# The same session twice: what gdb printed differs only in the port.
		if expect_rc gdb-replay 123 && ! diff <(grep -v 127.0.0.1 "$T/gdb-replay1.gdb") <(grep -v 127.0.0.1 "$T/gdb-replay.gdb") >"$T/gdb-replay.diff"; then
			fail gdb-replay "two replays under gdb differ: $(head -6 "$T/gdb-replay.diff" | tr '\n' '|')"
		elif [ "$RC" = 123 ]; then
			pass gdb-replay
		fi
	fi
fi

# --until exit N under gdb: the replay stops for the debugger after that
# exit, at the same RIP each time (the log names the place); N: half the
# segment's exits (how many there are depends on the recorded run's timing).
gexits=0
[ -f "$gdir/report.json" ] && gexits=$(python3 tests/tools/evlog.py "$(jq -r '.snapshots.event_log.file' "$gdir/report.json")" |
	sed -n 's/^records [0-9]* exits \([0-9]*\) .*/\1/p')
if [ "${gexits:-0}" -lt 4 ]; then
	fail gdb-until "the crash's segment has ${gexits:-no} exits"
else
	gn=$((gexits / 2))
	printf 'continue\ninfo registers rip\nkill\n' >"$T/gdb-until.cmds"
	gdb_session gdb-until 150 "$APPS/counter" "$T/gdb-until.cmds" replay "$gdir" --until exit $gn --gdb 0
	cp "$T/gdb-until.gdb" "$T/gdb-until1.gdb"
	if expect_rc gdb-until 0 && gdb_expect gdb-until 'received signal SIGINT' '^rip +0x[0-9a-f]+' &&
		expect_grep gdb-until err "the replay stopped for the interrupt at exit $gn of vCPU 0"; then
		gdb_session gdb-until 150 "$APPS/counter" "$T/gdb-until.cmds" replay "$gdir" --until exit $gn --gdb 0
		r1=$(grep '^rip ' "$T/gdb-until1.gdb")
		r2=$(grep '^rip ' "$T/gdb-until.gdb")
		[ -n "$r1" ] && [ "$r1" = "$r2" ] && pass gdb-until || fail gdb-until "two stops at exit $gn: '$r1' and '$r2'"
	fi
fi

# The raw protocol, by an independent client: the start stop, registers
# (the g packet's size by the target description), memory, a breakpoint
# and a step, Ctrl-C while it runs, and hostile packets (bad checksums,
# bad hex, lengths past the limit, unmapped addresses, a selector change,
# an endless packet), each refused while the VM lives on; then kill.
timeout -k 5 120 "$TRIALVM" run --gdb 0 --app "$APPS/spin" >"$T/gdb-raw.out" 2>"$T/gdb-raw.err" </dev/null &
gpid=$!
gport=$(gdb_port gdb-raw $gpid)
if [ -z "$gport" ]; then
	wait $gpid
	fail gdb-raw "trialvm never listened: $(tail -3 "$T/gdb-raw.err" | tr '\n' '|')"
else
	timeout 90 $GDBRSP 127.0.0.1 "$gport" --elf "$TRIALOS_ELF" >"$T/gdb-raw.log" 2>&1
	prc=$?
	wait $gpid
	RC=$?
	if [ $prc != 0 ]; then
		fail gdb-raw "$(tail -4 "$T/gdb-raw.log" | tr '\n' '|')"
	elif [ "$RC" != 0 ] && [ "$RC" != 124 ]; then
		expect_rc gdb-raw 0 # a kill from the debugger ends the run like a quit: status 0
	else
		pass gdb-raw
	fi
fi

vmrun gdb-usage 10 run --gdb 70000 --app "$APPS/hello"
expect_rc gdb-usage 125 && expect_grep gdb-usage err 'the port must be a number from 0 to 65535' && {
	vmrun gdb-usage2 10 run --gdb 0 --crash-on do_syscall --kernel-symbols "$TRIALOS_ELF" --app "$APPS/hello"
	expect_rc gdb-usage2 126 && expect_grep gdb-usage2 err '--gdb and --crash-on cannot be combined' && pass gdb-usage
}
