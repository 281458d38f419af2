# tests/sandbox.sh - the seccomp sandbox (sourced by tests/run.sh). Every
# other test already runs under it; these check that it is really there:
# a system call outside a thread's allowlist kills trialvm with SIGSYS (exit
# status 159 from a shell), and --no-sandbox turns it off, loudly.
# TRIALVM_TEST_FORBIDDEN_SYSCALL=CLASS[:CALL] makes the thread of that class
# make CALL (default socket(2)) right after installing its filter; only the
# test build $BUILD/tests/trialvm-hooks has that switch.
HOOKS=$PWD/$BUILD/tests/trialvm-hooks

# sbrun NAME TIMEOUT CLASS INPUT ARGS...: like vmrun, with the switch set to
# CLASS (- for none) and INPUT on stdin through a pipe (- for /dev/null),
# without core files or the shell's "Bad system call" notice.
sbrun() {
	local name=$1 to=$2 class=$3 input=$4
	shift 4
	(
		ulimit -c 0
		[ "$class" = - ] || export TRIALVM_TEST_FORBIDDEN_SYSCALL=$class
		if [ "$input" = - ]; then
			timeout -k 5 "$to" "$HOOKS" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
		else
			printf '%s\n' "$input" | timeout -k 5 "$to" "$HOOKS" "$@" >"$T/$name.out" 2>"$T/$name.err"
		fi
		exit $?
	) 2>/dev/null
	RC=$?
}

printf 'Hello, world!\n' >"$T/sb-hello.want"

# -- a forbidden call on each thread class kills the process: SIGSYS (159),
#    before the guest ran (no output) for the main and vCPU threads
sbrun sandbox-kill-vcpu 30 vcpu - run --app "$APPS/hello"
expect_rc sandbox-kill-vcpu 159 && expect_grep sandbox-kill-vcpu err 'FORBIDDEN_SYSCALL=vcpu: the vcpu thread calls socket' &&
	{ [ ! -s "$T/sandbox-kill-vcpu.out" ] || fail sandbox-kill-vcpu "the guest ran: $(head -c 200 "$T/sandbox-kill-vcpu.out")"; } &&
	pass sandbox-kill-vcpu
sbrun sandbox-kill-vcpu-smp 30 vcpu - run --cpus 4 --app "$APPS/hello"
expect_rc sandbox-kill-vcpu-smp 159 && pass sandbox-kill-vcpu-smp
sbrun sandbox-kill-main 30 main - run --app "$APPS/hello"
expect_rc sandbox-kill-main 159 && expect_grep sandbox-kill-main err 'FORBIDDEN_SYSCALL=main: the main thread calls socket' &&
	{ [ ! -s "$T/sandbox-kill-main.out" ] || fail sandbox-kill-main "the guest ran: $(head -c 200 "$T/sandbox-kill-main.out")"; } &&
	pass sandbox-kill-main
sbrun sandbox-kill-stdin 30 stdin 'some input' run --app "$APPS/hello"
expect_rc sandbox-kill-stdin 159 && expect_grep sandbox-kill-stdin err 'the stdin thread calls socket' && pass sandbox-kill-stdin
sbrun sandbox-kill-watch 30 watch - run --hang-timeout 30 --app "$APPS/hello"
expect_rc sandbox-kill-watch 159 && expect_grep sandbox-kill-watch err 'the watch thread calls socket' && pass sandbox-kill-watch
# The switch is in the test build only, never in the release binary.
if grep -q TRIALVM_TEST_FORBIDDEN_SYSCALL "$TRIALVM"; then
	fail sandbox-hooks-not-in-release "$TRIALVM contains the test-only TRIALVM_TEST_FORBIDDEN_SYSCALL switch"
elif ! grep -q TRIALVM_TEST_FORBIDDEN_SYSCALL "$HOOKS"; then
	fail sandbox-hooks-not-in-release "the test build $HOOKS lacks the switch (the check would prove nothing)"
else
	pass sandbox-hooks-not-in-release
fi
# The vCPU thread (the one a guest drives) may open, rename, unlink and
# truncate no file; no thread may map executable memory; the I/O thread
# (disk flushes) is sandboxed too. An ASan build's runtime needs open and
# mmap on every thread, so its filters allow them: those checks skip there.
head -c $((1 << 20)) /dev/zero >"$T/sb-io.img"
asan_build=false
grep -q __asan_init "$TRIALVM" && asan_build=true
for what in vcpu:openat vcpu:rename vcpu:unlink vcpu:ftruncate vcpu:mmap-exec main:mmap-exec; do
	name=sandbox-${what%%:*}-no-${what#*:}
	if $asan_build && { [ "${what#*:}" = openat ] || [ "${what#*:}" = mmap-exec ]; }; then
		skip "$name" "an ASan build allows open and mmap on every thread (its runtime needs them)"
		continue
	fi
	sbrun "$name" 30 "$what" - run --app "$APPS/hello"
	expect_rc "$name" 159 && expect_grep "$name" err "the ${what%%:*} thread calls ${what#*:}\\(2\\)" && pass "$name"
done
sbrun sandbox-kill-console 30 console - run --app "$APPS/hello"
expect_rc sandbox-kill-console 159 && expect_grep sandbox-kill-console err 'the console thread calls socket' && pass sandbox-kill-console
sbrun sandbox-kill-io 30 io - run --app "$APPS/hello" --disk "$T/sb-io.img"
expect_rc sandbox-kill-io 159 && expect_grep sandbox-kill-io err 'the io thread calls socket' && pass sandbox-kill-io
# The same switch with nothing to match changes nothing.
sbrun sandbox-switch-other 30 nothing - run --app "$APPS/hello"
expect_rc sandbox-switch-other 0 && expect_out sandbox-switch-other "$T/sb-hello.want" && pass sandbox-switch-other

# -- --no-sandbox: a loud warning, and the forbidden call no longer kills
sbrun sandbox-off-vcpu 30 vcpu - run --no-sandbox --app "$APPS/hello"
expect_rc sandbox-off-vcpu 0 && expect_out sandbox-off-vcpu "$T/sb-hello.want" &&
	expect_grep sandbox-off-vcpu err '^trialvm: WARNING: --no-sandbox: the VMM runs without its seccomp sandbox \(debugging only\)$' \
		'socket\(2\) on the vcpu thread was allowed' && pass sandbox-off-vcpu
sbrun sandbox-off-main 30 main - run --no-sandbox --app "$APPS/null-deref" --no-report
expect_rc sandbox-off-main 123 && expect_grep sandbox-off-main err 'WARNING: --no-sandbox' 'socket\(2\) on the main thread was allowed' \
	'SIGSEGV' && pass sandbox-off-main
# Without --no-sandbox there is no warning.
vmrun sandbox-on-quiet 30 run --app "$APPS/hello"
expect_rc sandbox-on-quiet 0 && { ! grep -q 'no-sandbox' "$T/sandbox-on-quiet.err" || fail sandbox-on-quiet "warning printed"; } &&
	pass sandbox-on-quiet

# -- guest input passes through the stdin thread's filter, which survives EOF
if [ -x /bin/busybox ] && ! readelf -l /bin/busybox | grep -q INTERP; then
	sbrun sandbox-stdin-input 60 - 'typed into the console' run --app /bin/busybox -- head -n 1
	expect_rc sandbox-stdin-input 0 && expect_grep sandbox-stdin-input out '^typed into the console$' && pass sandbox-stdin-input
fi

# -- a restart builds the next VM under MAIN's filter, disks included
#    (overlay reopened and locked, master identity hashed)
head -c $((1 << 20)) /dev/zero >"$T/sb-disk.img"
sbrun sandbox-restart-disk 90 - - run --app "$APPS/null-deref" --disk "$T/sb-disk.img" --on-crash restart \
	--max-restarts 1 --report-dir "$T/sb-restart.reports"
n=$(find "$T/sb-restart.reports" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
expect_rc sandbox-restart-disk 123 && { [ "$n" -eq 2 ] || fail sandbox-restart-disk "$n reports, expected 2"; } &&
	pass sandbox-restart-disk

# -- every trialvm thread of a running VM has a filter: main, stdin and the
#    console writer their own (1), vCPUs and the hang watcher MAIN's plus
#    their own (2); SIGTERM
#    still stops it (the stop path runs under the sandbox)
mkfifo "$T/sb-fifo"
exec 3<>"$T/sb-fifo"
"$TRIALVM" run --cpus 2 --hang-timeout 600 --app "$APPS/spin" <"$T/sb-fifo" >"$T/sb-threads.out" 2>"$T/sb-threads.err" &
pid=$!
filters=""
for _ in $(seq 100); do
	filters=""
	for t in /proc/$pid/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = trialvm ] || continue # kernel workers (kvm-nx-lpage-recovery)
		filters="$filters $(awk '$1 == "Seccomp:" { m = $2 } $1 == "Seccomp_filters:" { f = $2 } END { print m ":" f }' "$t/status" 2>/dev/null)"
	done
	[ "$(echo $filters | wc -w)" -ge 6 ] && break
	sleep 0.1
done
sorted=$(echo $filters | tr ' ' '\n' | sort | tr '\n' ' ')
kill -TERM $pid 2>/dev/null
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -KILL $pid 2>/dev/null
wait $pid
rc=$?
exec 3>&-
if [ "$sorted" != "2:1 2:1 2:1 2:2 2:2 2:2 " ]; then
	fail sandbox-threads "threads' Seccomp mode:filters: '$sorted', expected main, stdin, console writer 2:1 and 2 vCPUs, watcher 2:2"
elif ! grep -q 'interrupted by signal 15' "$T/sb-threads.err"; then
	fail sandbox-threads "exit status $rc after SIGTERM: $(head -c 300 "$T/sb-threads.err")"
else
	pass sandbox-threads
fi
