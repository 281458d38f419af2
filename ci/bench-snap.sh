#!/usr/bin/env bash
# ci/bench-snap.sh BUILD - snapshot benchmark (issue "Snapshots"): figures,
# never judgements, each next to a reference run made in the same
# invocation.
#   1. vCPU pause per incremental snapshot (median, p99) of a guest dirtying
#      about 1000 pages between snapshots (goal: under 2 ms median), next to
#      QEMU's downtime for a migration of the same guest to a file;
#   2. a full snapshot of a 1 GiB guest whose app touched 512 MiB: time and
#      size, next to QEMU's migration of the same guest to a file;
#   3. restore to the first guest output for 128 MiB and 1 GiB guests, next
#      to a cold boot of the same guest and to QEMU's -incoming of the same
#      guest at the same point (goal: flat in RAM size, >= 10x faster than
#      QEMU);
#   4. KVM's dirty bitmap (what trialvm uses) next to its dirty ring, for a
#      guest dirtying 1000 pages, in 128 MiB and 1 GiB of RAM: the guest's
#      run and the harvest, medians (tests/bench/dirty-log).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TRIALVM=$PWD/$BUILD/trialvm
TRIALOS=$PWD/$BUILD/guests/trialos.elf
APPS=$PWD/$BUILD/guests/apps
QMP=$PWD/$BUILD/tests/bench/qmp
TIMER=$PWD/$BUILD/tests/bench/spawn-time
DIRTYLOG=$PWD/$BUILD/tests/bench/dirty-log
W=$(mktemp -d /tmp/trialvm-bench-snap.XXXXXX)
trap 'rm -rf "$W"; [ -n "${qpid:-}" ] && kill "$qpid" 2>/dev/null' EXIT
median() { sort -n | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
HAVE_QEMU=1
command -v qemu-system-x86_64 >/dev/null 2>&1 || HAVE_QEMU=0

# qemu_start MEM APP ARGS...: QEMU microvm with trialos + APP, QMP at $W/qmp.sock.
qemu_start() {
	local mem=$1 app=$2
	shift 2
	rm -f "$W/qmp.sock" "$W/q.serial"
	qemu-system-x86_64 -M microvm -accel kvm -cpu qemu64 -m "$mem" -nographic -no-reboot -nodefaults \
		-serial file:"$W/q.serial" -kernel "$TRIALOS" -initrd "$app" -append "-- $(basename "$app") $*" \
		-device isa-debug-exit,iobase=0x501,iosize=1 -qmp unix:"$W/qmp.sock",server=on,wait=off \
		>/dev/null 2>"$W/q.err" &
	qpid=$!
}
# wait_serial STRING: until QEMU's console printed it (30 s at most).
wait_serial() { for _ in $(seq 600); do grep -q "$1" "$W/q.serial" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# qemu_migrate FILE: migrate the running guest to FILE; prints "total_ms downtime_ms".
qemu_migrate() {
	"$QMP" "$W/qmp.sock" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $1\"}}" >/dev/null || return 1
	local st=""
	for _ in $(seq 2400); do
		st=$("$QMP" "$W/qmp.sock" '@{"execute":"query-migrate"}' 2>/dev/null)
		case $st in
		*'"completed"'* | *'"failed"'*) break ;;
		esac
		sleep 0.05
	done
	echo "$st" | tr ',{}' '\n\n\n' | awk -F: '/"total-time"/ { t = $2 } /"downtime"/ { d = $2 }
		END { gsub(/[^0-9]/, "", t); gsub(/[^0-9]/, "", d); print (t == "" ? "?" : t), (d == "" ? "?" : d) }'
}

# qemu_reference MEM READY FILE APP ARGS...: QEMU runs APP until its console
# prints READY, then migrates to FILE; one line of figures.
qemu_reference() {
	local mem=$1 ready=$2 file=$3
	shift 3
	qemu_start "$mem" "$@"
	if wait_serial "$ready"; then
		read -r qt qd < <(qemu_migrate "$file")
		printf '  QEMU microvm, migration to a file: total %s ms, downtime %s ms; file %.1f MiB\n' "${qt:-?}" "${qd:-?}" \
			"$(echo "$(stat -c %s "$file" 2>/dev/null || echo 0) / 1048576" | bc -l)"
	else
		echo "  QEMU did not start the guest: $(head -c 200 "$W/q.err")"
	fi
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	qpid=
}

echo "== snapshots 1: vCPU pause per incremental snapshot, a guest dirtying ~1000 pages every 100 ms"
"$TRIALVM" run -q --stats --app "$APPS/dirty-pages" --snapshot-every 0.1 --snapshot-dir "$W/s1" --snapshot-keep 3 \
	-- 1000 100 40 >/dev/null 2>"$W/tv1.err"
line=$(grep -E 'vCPUs paused per snapshot' "$W/tv1.err")
if [ -n "$line" ]; then
	echo "  trialvm: ${line#*: }"
	parts=$(grep -E 'of the pause, medians' "$W/tv1.err")
	[ -n "$parts" ] && echo "           ${parts#*: }"
else
	echo "  trialvm: no figures: $(tail -c 300 "$W/tv1.err" | tr '\n' ' ')"
fi
if [ $HAVE_QEMU -eq 1 ]; then
	qemu_reference 128M ready "$W/q1.mig" "$APPS/dirty-pages" 1000 100 0 spin
else
	echo "  QEMU reference not run (no qemu-system-x86_64)"
fi

echo
echo "== snapshots 2: full snapshot of a 1 GiB guest, 512 MiB touched"
t0=$(date +%s%N)
"$TRIALVM" snapshot checkpoint -v --mem 1G --app "$APPS/mem-touch" --at-console touched -o "$W/full.tvs" -- 512 spin \
	>/dev/null 2>"$W/tv2.err"
t1=$(date +%s%N)
pause=$(grep -Eo 'paused [0-9.]+ ms' "$W/tv2.err" | awk '{ print $2 }' | tail -1)
if [ -f "$W/full.tvs" ]; then
	printf '  trialvm: capture (vCPUs paused) %s ms; whole command %.0f ms; file %.1f MiB\n' "${pause:-?}" \
		"$(echo "($t1 - $t0) / 1000000" | bc -l)" "$(echo "$(stat -c %s "$W/full.tvs") / 1048576" | bc -l)"
else
	echo "  trialvm: no snapshot: $(tail -c 300 "$W/tv2.err" | tr '\n' ' ')"
fi
[ $HAVE_QEMU -eq 1 ] && qemu_reference 1G touched "$W/q2.mig" "$APPS/mem-touch" 512 spin

echo
# qemu_incoming_ns MEM FILE APP ARGS...: exec -> QMP reports the guest
# running, for a QEMU started with -incoming from FILE (the same machine as
# qemu_start's): its first guest instruction, which comes before its first
# console line (so the figure favours QEMU); appended to $W/q.ns.
qemu_incoming_ns() {
	local mem=$1 file=$2 app=$3
	shift 3
	rm -f "$W/qmpi.sock"
	local t0 t1 st=""
	t0=$(date +%s%N)
	qemu-system-x86_64 -M microvm -accel kvm -cpu qemu64 -m "$mem" -display none -no-reboot -nodefaults \
		-serial none -kernel "$TRIALOS" -initrd "$app" -append "-- $(basename "$app") $*" \
		-device isa-debug-exit,iobase=0x501,iosize=1 -qmp unix:"$W/qmpi.sock",server=on,wait=off \
		-incoming "exec:cat $file" >/dev/null 2>"$W/qi.err" &
	local ipid=$!
	for _ in $(seq 6000); do
		st=$("$QMP" "$W/qmpi.sock" '@{"execute":"query-status"}' 2>/dev/null)
		case $st in *'"running"'*) break ;; esac
		sleep 0.005
	done
	t1=$(date +%s%N)
	kill "$ipid" 2>/dev/null
	wait "$ipid" 2>/dev/null
	case $st in *'"running"'*) echo $((t1 - t0)) >>"$W/q.ns" ;; esac
}

echo "== snapshots 3: exec -> first console line after a restore, next to a cold boot and QEMU -incoming (median of 5)"
printf '  %-6s | %-17s | %-19s | %-19s | %s\n' "memory" "restore (count 2)" "cold boot (count 1)" "QEMU -incoming (1)" \
	"ratios"
for mem in 128M 1G; do
	"$TRIALVM" snapshot checkpoint -q --mem "$mem" --app "$APPS/counter" --at-console $'count 1\n' -o "$W/c-$mem.tvs" \
		-- 3 2000000 >/dev/null 2>"$W/c.err" || { echo "  $mem: no checkpoint: $(tail -c 200 "$W/c.err")"; continue; }
	: >"$W/r.ns"
	: >"$W/b.ns"
	: >"$W/q.ns"
	if [ $HAVE_QEMU -eq 1 ]; then
		# The same guest, QEMU's copy migrated to a file after "count 1"
		# (spinning longer there, so that the migration starts before it
		# ends), which each -incoming run loads.
		qemu_start "$mem" "$APPS/counter" 3 2000000000
		if wait_serial 'count 1'; then
			qemu_migrate "$W/qi-$mem.mig" >/dev/null
		fi
		kill "$qpid" 2>/dev/null
		wait "$qpid" 2>/dev/null
		qpid=
	fi
	for _ in 1 2 3 4 5; do
		"$TIMER" -p 'count 2' -t 60 -- "$TRIALVM" run --restore "$W/c-$mem.tvs" >"$W/r.res" 2>/dev/null &&
			sed -n 's/^match_ns=//p' "$W/r.res" >>"$W/r.ns"
		"$TIMER" -p 'count 1' -t 60 -- "$TRIALVM" run --mem "$mem" --app "$APPS/counter" -- 3 2000000 >"$W/b.res" 2>/dev/null &&
			sed -n 's/^match_ns=//p' "$W/b.res" >>"$W/b.ns"
		[ -s "$W/qi-$mem.mig" ] && qemu_incoming_ns "$mem" "$W/qi-$mem.mig" "$APPS/counter" 3 2000000000
	done
	r=$(median <"$W/r.ns")
	b=$(median <"$W/b.ns")
	q=$(median <"$W/q.ns")
	ms() { awk -v n="$1" 'BEGIN { if (n == "-") print "-"; else printf "%.1f ms", n / 1e6 }'; }
	printf '  %-6s | %-17s | %-19s | %-19s | %s\n' "$mem" "$(ms "$r")" "$(ms "$b")" \
		"$(if [ "$q" = - ]; then echo "not run"; else ms "$q"; fi)" \
		"$(awk -v a="$b" -v c="$r" -v q="$q" 'BEGIN { if (c > 0) { printf "boot/restore %.2fx", a / c; if (q != "-") printf ", QEMU/restore %.2fx", q / c } }')"
done
echo "  (restores map the memory cached by the first one; (1) QEMU: exec until QMP says the guest runs, its"
echo "   migration stream loaded from a file: before its first console line, so the ratio favours QEMU)"

echo
echo "== snapshots 4: KVM dirty bitmap (trialvm's) vs dirty ring, 1000 pages dirtied per round (median of 50 rounds)"
for mem in 128 1024; do
	"$DIRTYLOG" -m "$mem" -p 1000 -r 50 2>&1 | sed 's/^/  /'
done
