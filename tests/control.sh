# tests/control.sh - `run --control SOCKET` and `trialvm ctl` (sourced by
# tests/vm-suite.sh, after crash.sh): status, pause that really stops the
# guest, resume, snapshot of the running machine (which restores), a live
# report (the guest goes on), bad requests answered with errors, several
# clients at once, quit; `run --report-every`, with breakpoints that stay
# armed across its reports.

SOCK=$T/ctl.sock
# A run far longer than these tests (100000 lines, 20 ms apart); quit ends it.
"$TRIALVM" run --control "$SOCK" --report-dir "$T/ctl-report.reports" --app "$APPS/counter" -- 100000 2000 20 \
	>"$T/ctl-run.out" 2>"$T/ctl-run.err" </dev/null &
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

# report: a crash-style report of the running machine (kind "live"), whose
# dumps readelf and trialvm inspect open; the guest goes on after it.
a=$(grep -c '^count ' "$T/ctl-run.out")
out=$(ctl report)
rc=$?
sleep 0.5
b=$(grep -c '^count ' "$T/ctl-run.out")
sleep 0.5
c=$(grep -c '^count ' "$T/ctl-run.out")
rpath=$(echo "$out" | jq -r '.path // empty' 2>/dev/null)
if [ $rc -ne 0 ] || [ -z "$rpath" ] || ! echo "$out" | jq -e '.pause_ms > 0' >/dev/null 2>&1; then
	fail ctl-report "reply '$out'"
elif [ "$(jq -r .cause.kind "$rpath/report.json" 2>&1)" != live ] ||
	[ "$(jq -r .cause.bugcheck_code "$rpath/report.json" 2>&1)" != 0x7e7a0009 ]; then
	fail ctl-report "report.json cause: $(jq -c .cause "$rpath/report.json" 2>&1 | head -c 300)"
elif [ "$(count_notes "$rpath/core.elf" NT_PRSTATUS)" -ne 1 ] || ! "$TRIALVM" inspect "$rpath/memory.dmp" >/dev/null 2>&1; then
	fail ctl-report "core.elf notes: $(readelf -n "$rpath/core.elf" 2>&1 | grep -E 'CORE|QEMU' | tr '\n' '|'); memory.dmp: $("$TRIALVM" inspect "$rpath/memory.dmp" 2>&1 | head -c 200)"
elif [ "$c" -le "$b" ] || [ "$b" -lt "$a" ]; then
	fail ctl-report "the guest did not go on after the report: $a, $b, $c console lines"
elif ! grep -qw "count $a" "$rpath/console.log"; then
	fail ctl-report "the report's console.log lacks the line printed before it (count $a): $(tail -c 100 "$rpath/console.log" | tr '\n' '|')"
else
	pass ctl-report
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

# --report-every: live reports while the guest runs, its output unbroken;
# a --crash-on breakpoint (int3 where hardware ones do not fire) is out of
# guest memory in each report's dumps and back in place after it: the
# application's exit still reaches poweroff and stops there.
vmrun report-every 60 run --report-every 1 --report-dir "$T/report-every.reports" --crash-on poweroff \
	--app "$APPS/counter" -- 60 2000 50
nlive=0
LIVE=""
for d in "$T"/report-every.reports/*/; do
	[ "$(jq -r .cause.kind "$d/report.json" 2>/dev/null)" = live ] && nlive=$((nlive + 1)) && LIVE=$d
done
bp=$(grep -l '"kind": "breakpoint"' "$T"/report-every.reports/*/report.json 2>/dev/null | wc -l)
seq_ok=$(awk '/^count / { if ($2 != prev + 1) bad = 1; prev = $2 } END { print (prev == 60 && !bad) ? 1 : 0 }' "$T/report-every.out")
want=$(elf_bytes "$TRIALVM_TRIALOS" poweroff 2)
pa=$(sym_phys "$TRIALVM_TRIALOS" poweroff)
got=""
[ -n "$LIVE" ] && [ -n "$pa" ] && got=$(phys_bytes "$LIVE/core.elf" "$pa" 2)
if ! expect_rc report-every 123; then
	:
elif [ "$nlive" -lt 2 ] || [ "$bp" -ne 1 ]; then
	fail report-every "$nlive live reports and $bp breakpoint report (want 2 or more, and 1): $(ls "$T/report-every.reports" | tr '\n' ' ')"
elif [ "$seq_ok" != 1 ]; then
	fail report-every "the console lost or repeated lines: $(grep -c '^count ' "$T/report-every.out") count lines"
elif [ "$(grep -c '^trialvm: report: ' "$T/report-every.err")" -ne "$nlive" ]; then
	fail report-every "stderr names $(grep -c '^trialvm: report: ' "$T/report-every.err") reports, $nlive were written"
elif [ -z "$want" ] || [ "$got" != "$want" ]; then
	fail report-every "poweroff's bytes at $pa in a live report's core.elf: '$got', the ELF has '$want'"
else
	pass report-every
fi
vmrun report-every-no-report 10 run --report-every 1 --no-report --app "$APPS/hello"
expect_rc report-every-no-report 126 && expect_grep report-every-no-report err 'report-every.*--no-report' &&
	pass report-every-no-report
