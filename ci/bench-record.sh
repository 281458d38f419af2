#!/usr/bin/env bash
# ci/bench-record.sh BUILD - record and replay benchmark (issue "Record and
# replay"): figures, never judgements. An I/O-heavy trialos app (blk-bench,
# 4 KiB requests on /dev/vda) run RUNS times each, interleaved:
#   a. with snapshots on (an interval the run never reaches: the dirty log
#      is on, no snapshot is taken) and --no-record: the reference;
#   b. the same, recorded (the event log segment from the run's start);
#   c. the recording of the last b run replayed (trialvm replay).
# Printed: median wall time and VM exits of each, recording's overhead
# (b over a; goal <= 3%), the log's bytes and bytes per second, and
# replay's speed relative to recording (c over b).
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TRIALVM=$PWD/$BUILD/trialvm
APP=$PWD/$BUILD/guests/apps/blk-bench
RUNS=${RUNS_RECORD:-7}
MIB=${RECORD_MIB:-8}
W=$(mktemp -d /tmp/trialvm-bench-rec.XXXXXX)
trap 'rm -rf "$W"' EXIT
median() { sort -n | awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ns() { date +%s%N; }
truncate -s $((MIB * 2))M "$W/disk.img"

echo "== record and replay: blk-bench 4096 $MIB rw on /dev/vda, $RUNS runs each (interleaved; wall time exec to exit)"
for i in $(seq "$RUNS"); do
	for mode in off on; do
		d=$W/snap-$mode-$i
		extra=()
		[ $mode = off ] && extra=(--no-record)
		t0=$(ns)
		"$TRIALVM" run -q --stats --app "$APP" --disk "$W/disk.img" --snapshot-every 86400 --snapshot-dir "$d" \
			"${extra[@]}" -- 4096 "$MIB" rw >/dev/null 2>"$W/$mode.err" </dev/null || {
			echo "  NOT RUN: the $mode run failed: $(tail -1 "$W/$mode.err")"
			exit 1
		}
		echo $(( ($(ns) - t0) / 1000 )) >>"$W/$mode.us"
		sed -n 's/^trialvm: stats: \([0-9]*\) VM exits.*/\1/p' "$W/$mode.err" >>"$W/$mode.exits"
	done
	log=$W/snap-on-$i/start-000001.tvl
	stat -c %s "$log" >>"$W/log.bytes"
	t0=$(ns)
	"$TRIALVM" replay "$log" -q --app "$APP" --disk "$W/disk.img" -- 4096 "$MIB" rw >/dev/null 2>"$W/rep.err" </dev/null
	rc=$?
	echo $(( ($(ns) - t0) / 1000 )) >>"$W/rep.us"
	if [ $rc -ne 0 ]; then
		echo "  replay $i: status $rc: $(grep -m1 -E 'diverged|replay:' "$W/rep.err")" >>"$W/rep.notes"
	fi
	rm -rf "$W/snap-off-$i"
done
off=$(median <"$W/off.us") on=$(median <"$W/on.us") rep=$(median <"$W/rep.us")
bytes=$(median <"$W/log.bytes")
awk -v off="$off" -v on="$on" -v rep="$rep" -v bytes="$bytes" -v eoff="$(median <"$W/off.exits")" \
	-v eon="$(median <"$W/on.exits")" 'BEGIN {
	printf "  %-34s | %10s | %s\n", "run", "median ms", "median VM exits"
	printf "  %-34s | %10.1f | %s\n", "a. dirty log on, not recorded", off / 1000, eoff
	printf "  %-34s | %10.1f | %s\n", "b. recorded", on / 1000, eon
	printf "  %-34s | %10.1f |\n", "c. replayed (from b'"'"'s log)", rep / 1000
	printf "  recording overhead (b / a): %.3f (goal <= 1.03)\n", on / off
	printf "  event log: %d bytes median, %.0f bytes/s of the recorded run\n", bytes, bytes / (on / 1e6)
	printf "  replay time relative to recording (c / b): %.3f\n", rep / on
}'
[ -s "$W/rep.notes" ] && { echo "  replays that did not end with the run's status 0:"; cat "$W/rep.notes"; }
exit 0
