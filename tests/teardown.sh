# tests/teardown.sh - stopping a VM (sourced by tests/vm-suite.sh): stop
# signals arrive through a signalfd, a stdout nobody reads never blocks a
# vCPU or the end of trialvm, and a VM torn down while the hang watcher
# samples its vCPUs ends cleanly, every time.

# -- a reader that stopped reading: guest output fills the pipe. The vCPU
#    must not block on it, SIGTERM must end trialvm at once, and what did
#    not reach stdout is counted on stderr.
# The pipe is cut to 4 KiB (F_SETPIPE_SZ) so that the slow emulated console
# fills it in a second.
mkfifo "$T/td-pipe"
perl -e 'open(my $f, "+<", $ARGV[0]) or die "$ARGV[0]: $!"; fcntl($f, 1031, 4096) or die "F_SETPIPE_SZ: $!"; sleep 60' "$T/td-pipe" &
reader=$! # holds the pipe open, never reads
"$TRIALVM" run --app "$APPS/flood" --console-log "$T/td-flood.log" >"$T/td-pipe" 2>"$T/console-stalled.err" &
pid=$!
sleep 5
kill -TERM $pid 2>/dev/null
ended=false
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || { ended=true; break; }; sleep 0.1; done
$ended || kill -KILL $pid 2>/dev/null
wait $pid
RC=$?
kill $reader 2>/dev/null
wait $reader 2>/dev/null
if ! $ended; then
	fail console-stalled "trialvm did not end within 10 s of SIGTERM while nobody read its stdout"
else
	expect_grep console-stalled err 'interrupted by signal 15' \
		'warning: [0-9]+ bytes of guest console output did not reach stdout: nothing was reading it' &&
		{ [ "$(wc -l <"$T/td-flood.log")" -gt 100 ] || fail console-stalled "the console log has only $(wc -l <"$T/td-flood.log") lines"; } &&
		pass console-stalled
fi

# -- all of the output still arrives when the reader is merely slow
# (a reader that takes 0.2 s per 4 KiB, after a 1 s nap; unit/test_core
# checks the same with megabytes, past the ring)
"$TRIALVM" run --app "$APPS/flood" -- 400 2>"$T/console-slow.err" |
	perl -e 'sleep 1; $| = 1; while (read(STDIN, my $b, 4096)) { print $b; select(undef, undef, undef, 0.2); }' >"$T/console-slow.out"
lines=$(wc -l <"$T/console-slow.out")
if [ "$lines" -ne 400 ]; then
	fail console-slow "$lines of 400 lines reached a slow reader: $(head -c 300 "$T/console-slow.err")"
elif grep -q 'did not reach stdout' "$T/console-slow.err"; then
	fail console-slow "output counted as lost: $(head -c 300 "$T/console-slow.err")"
else
	pass console-slow
fi

# -- the hang watcher samples every vCPU while the VM is torn down (a hang
#    found, or SIGTERM): many times in a row, no crash, no hang
bad=""
for i in $(seq 5); do
	vmrun td-hang-$i 60 run --cpus 4 --hang-timeout 0.3 --no-report --app "$APPS/spin"
	[ "$RC" -eq 123 ] || bad="$bad hang-$i:rc=$RC"
	"$TRIALVM" run --cpus 4 --hang-timeout 5 --app "$APPS/spin" >/dev/null 2>"$T/td-term-$i.err" &
	pid=$!
	sleep "0.$((RANDOM % 9 + 1))"
	kill -TERM $pid 2>/dev/null
	ended=false
	for _ in $(seq 100); do kill -0 $pid 2>/dev/null || { ended=true; break; }; sleep 0.1; done
	$ended || { kill -KILL $pid 2>/dev/null; bad="$bad term-$i:hung"; }
	wait $pid
	rc=$?
	$ended && [ "$rc" -ne 125 ] && [ "$rc" -ne 143 ] && [ "$rc" -ne 130 ] && ! grep -q 'interrupted by signal 15' "$T/td-term-$i.err" &&
		bad="$bad term-$i:rc=$rc"
done
if [ -n "$bad" ]; then
	fail teardown-stress "runs that crashed, hung or ended oddly:$bad"
else
	pass teardown-stress
fi

