# tests/control.sh - `run --control SOCKET` and `trialvm ctl` (sourced by
# tests/vm-suite.sh): status, pause that really stops the guest, resume,
# snapshot of the running machine (which restores), bad requests answered
# with errors, several clients at once, quit.

SOCK=$T/ctl.sock
# A run far longer than these tests (100000 lines, 20 ms apart); quit ends it.
"$TRIALVM" run --control "$SOCK" --app "$APPS/counter" -- 100000 2000 20 >"$T/ctl-run.out" 2>"$T/ctl-run.err" </dev/null &
ctl_pid=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && grep -q '^count 3$' "$T/ctl-run.out" && break; sleep 0.1; done

ctl() { timeout 20 "$TRIALVM" ctl "$SOCK" "$@"; }
out=$(ctl status)
if [ $? -eq 0 ] && echo "$out" | grep -q '"state":"running"' && [ "$(stat -c %a "$SOCK")" = 600 ]; then
	pass ctl-status
else
	fail ctl-status "reply '$out', socket mode $(stat -c %a "$SOCK" 2>&1); run stderr: $(head -c 300 "$T/ctl-run.err")"
fi

# pause: the guest prints nothing while paused; resume: it goes on.
out=$(ctl pause)
sleep 0.3
a=$(wc -l <"$T/ctl-run.out")
sleep 1
b=$(wc -l <"$T/ctl-run.out")
st=$(ctl status)
if echo "$out" | grep -q '"state":"paused"' && [ "$a" -eq "$b" ] && echo "$st" | grep -q '"state":"paused"'; then
	pass ctl-pause
else
	fail ctl-pause "reply '$out', status '$st'; console lines $a then $b while paused"
fi
ctl resume >/dev/null
sleep 1
c=$(wc -l <"$T/ctl-run.out")
if [ "$c" -gt "$b" ]; then pass ctl-resume; else fail ctl-resume "console lines stayed at $c after resume"; fi

# snapshot of the running machine; it restores into the rest of the run
# (the continuation of the lines printed before it, for 3 s).
before=$(grep -c '^count ' "$T/ctl-run.out")
out=$(ctl snapshot "$T/ctl-snap.tvs")
if [ $? -eq 0 ] && echo "$out" | grep -q '"ok":true' && [ -f "$T/ctl-snap.tvs" ]; then
	timeout -s INT 3 "$TRIALVM" run --restore "$T/ctl-snap.tvs" >"$T/ctl-restore.raw" 2>"$T/ctl-restore.err" </dev/null
	# The snapshot may fall between two exits of one console write: the
	# restore then begins with the rest of that line.
	grep -E '^count [0-9]+$' "$T/ctl-restore.raw" >"$T/ctl-restore.out"
	first=$(head -1 "$T/ctl-restore.out")
	n=${first#count }
	if [ "$first" = "count $n" ] && [ "$n" -gt "$before" ] &&
		[ "$(awk 'NR > 1 && $2 != prev + 1 { bad = 1 } { prev = $2 } END { print bad + 0 }' "$T/ctl-restore.out")" = 0 ] &&
		[ "$(wc -l <"$T/ctl-restore.out")" -gt 2 ]; then
		pass ctl-snapshot
	else
		fail ctl-snapshot "the restore printed '$(head -3 "$T/ctl-restore.raw" | tr '\n' '|')' (the run had $before lines before the snapshot); stderr: $(head -c 300 "$T/ctl-restore.err")"
	fi
else
	fail ctl-snapshot "reply '$out'"
fi

# Bad requests: errors, the VM unaffected; several clients at once.
bad=$(printf 'not json\n{"cmd":"fly"}\n{"nocmd":1}\n' | timeout 20 "$TRIALVM" ctl "$SOCK" -)
big=$(head -c 10000 /dev/zero | tr '\0' x | timeout 20 "$TRIALVM" ctl "$SOCK" -)
if [ "$(echo "$bad" | grep -c '"ok":false')" -eq 3 ] && echo "$bad" | grep -q "unknown command 'fly'" &&
	echo "$big" | grep -q 'longer than 4096 bytes' && ctl status >/dev/null; then
	pass ctl-bad-requests
else
	fail ctl-bad-requests "replies '$(echo "$bad" | tr '\n' '|')' and '$big'"
fi
pids=""
for i in 1 2 3 4 5; do ctl status >"$T/ctl-multi.$i" & pids="$pids $!"; done
okn=0
for p in $pids; do wait "$p" && okn=$((okn + 1)); done
if [ "$okn" -eq 5 ] && [ "$(cat "$T"/ctl-multi.* | grep -c '"ok":true')" -eq 5 ]; then
	pass ctl-clients
else
	fail ctl-clients "$okn of 5 concurrent clients got a reply"
fi

out=$(ctl quit)
wait "$ctl_pid"
rc=$?
if [ "$rc" -eq 0 ] && echo "$out" | grep -q quitting && [ ! -e "$SOCK" ]; then
	pass ctl-quit
else
	fail ctl-quit "reply '$out', trialvm exit $rc, socket left: $([ -e "$SOCK" ] && echo yes || echo no)"
fi
vmrun ctl-no-server 10 ctl "$T/none.sock" status
expect_rc ctl-no-server 125 && expect_grep ctl-no-server err 'cannot connect' && pass ctl-no-server
