# tests/record.sh - the event log of a recorded run (sourced by
# tests/vm-suite.sh): every input the guest received, checked by an
# independent reader (tests/tools/evlog.py) against what the guest printed,
# and by trialvm inspect.
EVLOG="python3 $PWD/tests/tools/evlog.py"

# clock-rand prints the clock it read and its 16 random bytes: both are in
# the log of its run, as data records; the segment from the run's start
# ends at the run's end, after the exits that printed them.
vmrun rec-run 60 run --app "$APPS/clock-rand" --snapshot-every 5 --snapshot-dir "$T/rec1" --stats --state-hash
seg=$T/rec1/start-000001.tvl
if expect_rc rec-run 0 && expect_grep rec-run err "stats: event log segment $seg: [0-9]+ records" && [ -s "$seg" ]; then
	$EVLOG "$seg" --random --clock >"$T/rec-run.log" 2>&1
	rnd=$(sed -n 's/^random //p' "$T/rec-run.out")
	rt=$(sed -n 's/^realtime \([0-9]*\)\.0*\([0-9][0-9]*\)$/clock \1 \2/p' "$T/rec-run.out")
	if ! grep -Eq '^records [0-9]+ exits [1-9][0-9]* pio [0-9]+ mmio [1-9][0-9]* data [1-9][0-9]* end 0$' "$T/rec-run.log"; then
		fail rec-run "the log's records: $(head -3 "$T/rec-run.log" | tr '\n' '|')"
	elif ! grep -Eq '^header 1 1 0{32}$' "$T/rec-run.log"; then
		fail rec-run "the header is not version 1, one vCPU, from the run's start: $(head -1 "$T/rec-run.log")"
	elif [ -z "$rnd" ] || ! sed -n 3p "$T/rec-run.log" | grep -q "$rnd"; then
		fail rec-run "the random bytes the app printed ($rnd) are not in the log's data records"
	elif [ -z "$rt" ] || ! grep -qx "$rt" "$T/rec-run.log"; then
		fail rec-run "the realtime clock the app printed ($rt) is not a clock record of the log"
	else
		vmrun rec-inspect 10 inspect "$seg"
		expect_rc rec-inspect 0 && expect_grep rec-inspect out 'trialvm event log, format version 1, one vCPU' \
			'starts at +the start of the run' 'ends +at the run.s end' 'bytes from (random|virtio-rng)' &&
			pass rec-run
	fi
fi

# RDTSC and RDTSCP in the application trap (trialos sets CR4.TSD) and are
# served from the hypercall clock: each value printed is a clock record of
# the log (seconds * 10^9 + nanoseconds), and a replay prints the same.
vmrun rec-tsc 60 run --app "$APPS/tsc" --snapshot-every 5 --snapshot-dir "$T/rec6"
if expect_rc rec-tsc 0 && expect_grep rec-tsc out '^tsc [0-9]+ tscp [0-9]+ aux 0$' '^ok$'; then
	$EVLOG "$T/rec6/start-000001.tvl" --tsc | sed -n 's/^tsc //p' >"$T/rec-tsc.clocks"
	first=$(sed -n 's/^tsc \([0-9]*\) .*/\1/p' "$T/rec-tsc.out" | head -1)
	if ! grep -qx "$first" "$T/rec-tsc.clocks"; then
		fail rec-tsc "the first RDTSC value ($first) is no clock record of the log"
	else
		vmrun rep-tsc 60 replay "$T/rec6/start-000001.tvl" --app "$APPS/tsc"
		expect_rc rep-tsc 0 && cmp -s "$T/rec-tsc.out" "$T/rep-tsc.out" && pass rec-tsc ||
			fail rec-tsc "the replay printed other values: $(diff "$T/rec-tsc.out" "$T/rep-tsc.out" | head -3 | tr '\n' '|')"
	fi
fi

# Console input (through a FIFO: the stdin thread reads only a terminal or
# a pipe) reaches trialos through the UART's registers, so it is in the
# exit records: the replay, which reads no input, prints the same line.
# CPUID hides RDRAND and RDSEED (their bytes would reach no exit).
mkfifo "$T/rec-in.fifo"
(printf 'hello trialvm\n' >"$T/rec-in.fifo") &
timeout -k 5 60 "$TRIALVM" run --app "$APPS/console-in" --snapshot-every 5 --snapshot-dir "$T/rec8" \
	<"$T/rec-in.fifo" >"$T/rec-in.out" 2>"$T/rec-in.err"
RC=$?
wait
if expect_rc rec-in 0 && expect_grep rec-in out '^cpuid rdrand 0 rdseed 0$' '^got \[hello trialvm\]$'; then
	vmrun rep-in 60 replay "$T/rec8/start-000001.tvl" --app "$APPS/console-in"
	expect_rc rep-in 0 && cmp -s "$T/rec-in.out" "$T/rep-in.out" && pass rec-in ||
		fail rec-in "the replay printed: $(tr '\n' '|' <"$T/rep-in.out")"
fi

# Disk reads: each is a check record (offset, length, CRC-32 of the bytes),
# which an independent reader verifies against the image; a replay reads
# the same bytes, and one whose image changed since diverges, naming the
# read.
head -c 8M /dev/urandom >"$T/recdisk.img"
vmrun rec-disk 60 run --app "$APPS/disk-test" --disk "$T/recdisk.img" --snapshot-every 5 --snapshot-dir "$T/rec7" -- check
if expect_rc rec-disk 3; then
	$EVLOG "$T/rec7/start-000001.tvl" --disk-image "$T/recdisk.img" >"$T/rec-disk.log" 2>&1
	if ! grep -Eq '^disk [1-9][0-9]* matched$' "$T/rec-disk.log"; then
		fail rec-disk "the disk-read checks: $(tail -2 "$T/rec-disk.log" | tr '\n' '|')"
	else
		vmrun rep-disk 60 replay "$T/rec7/start-000001.tvl" --app "$APPS/disk-test" --disk "$T/recdisk.img" -- check
		if expect_rc rep-disk 3 && expect_grep rep-disk err 'replay: [1-9][0-9]* exits matched'; then
			head -c 8M /dev/urandom >"$T/recdisk.img"
			vmrun rep-disk-changed 60 replay "$T/rec7/start-000001.tvl" --app "$APPS/disk-test" --disk "$T/recdisk.img" -- check
			expect_rc rep-disk-changed 122 &&
				expect_grep rep-disk-changed err 'replay diverged during exit [0-9]+ of vCPU 0: the disk read of [0-9]+ bytes at byte [0-9]+ differs' &&
				pass rec-disk
		fi
	fi
fi

# Periodic snapshots: each starts a segment (snap-N.tvl beside snap-N.tvs)
# whose header names that snapshot's id; the one before it ends there.
vmrun rec-segments 120 run --app "$APPS/counter" --snapshot-every 0.3 --snapshot-dir "$T/rec2" -- 12 2000 100
if expect_rc rec-segments 0 && [ -s "$T/rec2/start-000001.tvl" ] && [ -s "$T/rec2/snap-000001.tvl" ]; then
	bad=""
	$EVLOG "$T/rec2/start-000001.tvl" >"$T/rec-seg0.log" 2>&1
	grep -q ' end 2$' "$T/rec-seg0.log" || bad="$bad start-segment-end:$(tail -1 "$T/rec-seg0.log")"
	for tvl in "$T"/rec2/snap-*.tvl; do
		tvs=${tvl%.tvl}.tvs
		id=$("$TRIALVM" snapshot inspect "$tvs" 2>/dev/null | sed -n 's/^ *id  *\([0-9a-f]\{32\}\).*/\1/p' | head -1)
		hid=$($EVLOG "$tvl" 2>/dev/null | sed -n 's/^header 1 1 //p')
		[ -n "$id" ] && [ "$id" = "$hid" ] || bad="$bad $(basename "$tvl"):id($hid/$id)"
		"$TRIALVM" inspect "$tvl" >/dev/null 2>&1 || bad="$bad $(basename "$tvl"):inspect"
	done
	last=$(ls "$T"/rec2/snap-*.tvl | tail -1)
	$EVLOG "$last" | grep -q ' end 0$' || bad="$bad last-segment-not-run-end"
	[ -z "$bad" ] && pass rec-segments || fail rec-segments "wrong:$bad"
else
	[ "$RC" -eq 0 ] && fail rec-segments "no snapshot segment: $(ls "$T/rec2" | tr '\n' ' ')"
fi

# A crash: the segment since the last snapshot ends at it (on disk before
# the report names it), and report.json says where it is and how big.
vmrun rec-crash 120 run --app "$APPS/counter" --snapshot-every 0.3 --snapshot-dir "$T/rec3" \
	--report-dir "$T/rec-crash.reports" --state-hash -- 12 2000 100 crash
if expect_rc rec-crash 123 && expect_report rec-crash app-fault core.elf; then
	f=$(jq -r '.snapshots.event_log.file' "$REPORT/report.json")
	recs=$(jq -r '.snapshots.event_log.records' "$REPORT/report.json")
	bytes=$(jq -r '.snapshots.event_log.bytes' "$REPORT/report.json")
	$EVLOG "$f" >"$T/rec-crash.log" 2>&1
	if grep -q "^records $recs .* end 1\$" "$T/rec-crash.log" && [ "$(stat -c %s "$f")" = "$bytes" ] &&
		[ "$(jq -r '.snapshots.event_log.exact' "$REPORT/report.json")" = true ]; then
		pass rec-crash
	else
		fail rec-crash "report.json says $f, $recs records, $bytes bytes; the log: $(tail -1 "$T/rec-crash.log"), $(stat -c %s "$f" 2>&1) bytes"
	fi
fi

# kill -9 while recording: what reached the file reads back, cut at the
# last whole record, without an END.
"$TRIALVM" run --app "$APPS/counter" --snapshot-every 0.5 --snapshot-dir "$T/rec4" -- 100000 2000 50 \
	>/dev/null 2>"$T/rec-kill.err" </dev/null &
rec_pid=$!
sleep 3
kill -9 "$rec_pid"
wait "$rec_pid" 2>/dev/null
if [ -s "$T/rec4/start-000001.tvl" ]; then
	bad=""
	for tvl in "$T"/rec4/*.tvl; do
		"$TRIALVM" inspect "$tvl" >"$T/rec-kill.inspect" 2>&1 || bad="$bad $(basename "$tvl"):$(head -1 "$T/rec-kill.inspect")"
	done
	# The newest segment (the last snapshot's, or the start's) was cut short.
	newest=$(ls "$T"/rec4/snap-*.tvl 2>/dev/null | tail -1)
	"$TRIALVM" inspect "${newest:-$T/rec4/start-000001.tvl}" >"$T/rec-kill.inspect" 2>&1
	grep -q 'without an END record' "$T/rec-kill.inspect" || bad="$bad newest-has-END"
	[ -z "$bad" ] && pass rec-kill || fail rec-kill "wrong:$bad"
else
	fail rec-kill "no log after kill -9: $(ls "$T/rec4" 2>&1 | tr '\n' ' ')"
fi

# --no-record: snapshots, no log; and only with snapshots.
vmrun rec-off 60 run --app "$APPS/hello" --snapshot-every 5 --snapshot-dir "$T/rec5" --no-record
expect_rc rec-off 0 && [ -z "$(ls "$T"/rec5/*.tvl 2>/dev/null)" ] && pass rec-off
vmrun rec-off-usage 10 run --app "$APPS/hello" --no-record
expect_rc rec-off-usage 126 && expect_grep rec-off-usage err '--no-record: only a run with --snapshot-every' && pass rec-off-usage

# ---------------------------------------------------------------- replay
# The start segment of clock-rand's run, replayed by booting the same app:
# the clock and the random bytes come from the log, so it prints exactly
# what the recorded run printed, and every exit matched.
if [ -s "$T/rec1/start-000001.tvl" ]; then
	vmrun rep-run 60 replay "$T/rec1/start-000001.tvl" --app "$APPS/clock-rand" --state-hash
	# ...and ends in the same state: registers and memory (the state hash
	# both print).
	h1=$(sed -n 's/^trialvm: state hash at the end: \([0-9a-f]\{64\}\) .*/\1/p' "$T/rec-run.err")
	if expect_rc rep-run 0 && expect_grep rep-run err "replay: [1-9][0-9]* exits matched $T/rec1/start-000001.tvl; [1-9][0-9]* inputs"; then
		if ! cmp -s "$T/rec-run.out" "$T/rep-run.out"; then
			fail rep-run "the output differs from the recorded run's: $(diff "$T/rec-run.out" "$T/rep-run.out" | head -4 | tr '\n' '|')"
		elif [ -z "$h1" ] || ! grep -q "state hash at the end: $h1 " "$T/rep-run.err"; then
			fail rep-run "the state hash differs: recorded ${h1:-none}, replayed $(grep 'state hash' "$T/rep-run.err")"
		else
			pass rep-run
		fi
	fi
	# --until exit N: it stops after that exit, status 0, in one and the same
	# state every time, an earlier one than the end's.
	vmrun rep-until 60 replay "$T/rec1/start-000001.tvl" --until exit 20 --app "$APPS/clock-rand" --state-hash
	hu=$(sed -n 's/^trialvm: state hash at the end: \([0-9a-f]\{64\}\) .*/\1/p' "$T/rep-until.err")
	if expect_rc rep-until 0 && expect_grep rep-until err 'replay: stopped after exit 20 of .* as --until asked'; then
		vmrun rep-until2 60 replay "$T/rec1/start-000001.tvl" --until exit 20 --app "$APPS/clock-rand" --state-hash
		if [ -z "$hu" ] || [ "$hu" = "$h1" ] || ! grep -q "state hash at the end: $hu " "$T/rep-until2.err"; then
			fail rep-until "the state at exit 20: ${hu:-no hash}, again $(grep 'state hash' "$T/rep-until2.err"), at the end $h1"
		else
			vmrun rep-until-usage 10 replay "$T/rec1/start-000001.tvl" --until exit 0 --app "$APPS/clock-rand"
			expect_rc rep-until-usage 126 && expect_grep rep-until-usage err 'give crash .* or exit N' && pass rep-until
		fi
	fi
	# A write exit changed in the log (its CRC made right): the replay stops
	# at that record and names it, the log's side and the guest's.
	rec=$($EVLOG "$T/rec1/start-000001.tvl" --tamper 3 "$T/rep-tampered.tvl" | sed -n 's/^tampered //p')
	vmrun rep-tampered 60 replay "$T/rep-tampered.tvl" --app "$APPS/clock-rand"
	expect_rc rep-tampered 122 && expect_grep rep-tampered err "replay diverged at record $rec \(offset [0-9]+\) of $T/rep-tampered.tvl.*the log has exit [0-9]+ of vCPU 0, .* write.*; the guest made exit [0-9]+ of vCPU 0, .*the guest's RIP" &&
		pass rep-tampered
	# Cut in the middle: it replays what is there, and says where it ended.
	head -c $(($(stat -c %s "$T/rec1/start-000001.tvl") / 2)) "$T/rec1/start-000001.tvl" >"$T/rep-cut.tvl"
	vmrun rep-cut 60 replay "$T/rep-cut.tvl" --app "$APPS/clock-rand"
	expect_rc rep-cut 0 && expect_grep rep-cut err "replay: $T/rep-cut.tvl ends after [0-9]+ exits without an END record" && pass rep-cut
	# The boot segment needs the boot, not a snapshot.
	vmrun rep-not-snapshot 30 replay "$T/rec1/start-000001.tvl" --restore "$T/rec1/start-000001.tvl"
	expect_rc rep-not-snapshot 125 && pass rep-not-snapshot
fi
# A crash report: its segment (since the last snapshot) from that snapshot,
# into the same crash at the same RIP, the output since the snapshot the
# recorded run's last lines.
if [ -s "$T/rec-crash.log" ] && grep -q ' end 1$' "$T/rec-crash.log"; then
	rdir=$(dirname "$(ls "$T"/rec-crash.reports/*/report.json | head -1)")
	vmrun rep-crash 120 replay "$rdir" --state-hash
	rip=$(grep -Eo 'RIP 0x[0-9a-f]+' "$T/rec-crash.err" | head -1)
	if expect_rc rep-crash 123 && expect_grep rep-crash err "replay: [1-9][0-9]* exits matched" &&
		[ -n "$rip" ] && [ "$(grep -Eo 'RIP 0x[0-9a-f]+' "$T/rep-crash.err" | head -1)" = "$rip" ]; then
		h1=$(sed -n 's/^trialvm: state hash at the end: \([0-9a-f]\{64\}\) .*/\1/p' "$T/rec-crash.err")
		if ! tail -c "$(stat -c %s "$T/rep-crash.out")" "$T/rec-crash.out" | cmp -s - "$T/rep-crash.out"; then
			fail rep-crash "its output is not the end of the recorded run's"
		elif [ -z "$h1" ] || ! grep -q "state hash at the end: $h1 " "$T/rep-crash.err"; then
			fail rep-crash "the state hash at the crash differs: recorded ${h1:-none}, replayed $(grep 'state hash' "$T/rep-crash.err")"
		else
			pass rep-crash
		fi
	elif [ "$RC" = 123 ]; then
		fail rep-crash "not the crash at $rip: $(grep -E 'RIP 0x' "$T/rep-crash.err" | head -2 | tr '\n' '|')"
	fi
fi
# A later segment against an earlier snapshot: refused, naming both.
if [ -s "$T/rec2/snap-000002.tvl" ]; then
	vmrun rep-wrong-snapshot 30 replay "$T/rec2/snap-000002.tvl" --restore "$T/rec2/snap-000001.tvs"
	expect_rc rep-wrong-snapshot 125 && expect_grep rep-wrong-snapshot err 'starts at snapshot [0-9a-f]{32}, and the snapshot restored is [0-9a-f]{32}' &&
		pass rep-wrong-snapshot
	# ...and against its own: every exit matches, through the segments after
	# it to the run's end; its output the recorded run's from there.
	vmrun rep-segment 60 replay "$T/rec2/snap-000002.tvl"
	if [ ! -s "$T/rec2/snap-000003.tvl" ]; then
		fail rep-segment "the recorded run has no third snapshot segment: $(ls "$T/rec2" | tr '\n' ' ')"
	elif expect_rc rep-segment 0 && expect_grep rep-segment err 'replay: [1-9][0-9]* exits matched .*snap-000002.tvl and the [1-9][0-9]* segments? after it' &&
		tail -c "$(stat -c %s "$T/rep-segment.out")" "$T/rec-segments.out" | cmp -s - "$T/rep-segment.out"; then
		# --until snapshot: that segment only, to the next snapshot.
		vmrun rep-segment1 60 replay "$T/rec2/snap-000002.tvl" --until snapshot
		expect_rc rep-segment1 0 && expect_grep rep-segment1 err 'replay: all [1-9][0-9]* exits of .*snap-000002.tvl matched; it ends at the next snapshot' &&
			grep -qF "$(head -c 40 "$T/rep-segment1.out")" "$T/rec-segments.out" && {
			# The same as SNAPSHOT LOG.
			vmrun rep-segment2 60 replay "$T/rec2/snap-000002.tvs" "$T/rec2/snap-000002.tvl" --until exit 3
			expect_rc rep-segment2 0 && expect_grep rep-segment2 err 'replay: stopped after exit 3 of .*snap-000002.tvl' &&
				pass rep-segment
		}
	elif [ "$RC" = 0 ]; then
		fail rep-segment "its output is not the end of the recorded run's"
	fi
fi
# The crash from the first snapshot of its run: through every segment after
# it into the same crash at the same RIP, in the same state.
if [ -s "$T/rec-crash.log" ] && [ -s "$T/rec3/snap-000001.tvl" ]; then
	vmrun rep-crash-through 120 replay "$T/rec3/snap-000001.tvs" "$T/rec3/snap-000001.tvl" --state-hash
	rip=$(grep -Eo 'RIP 0x[0-9a-f]+' "$T/rec-crash.err" | head -1)
	h1=$(sed -n 's/^trialvm: state hash at the end: \([0-9a-f]\{64\}\) .*/\1/p' "$T/rec-crash.err")
	if [ ! -s "$T/rec3/snap-000002.tvl" ]; then
		fail rep-crash-through "the crashed run has one snapshot segment only: $(ls "$T/rec3" | tr '\n' ' ')"
	elif expect_rc rep-crash-through 123 &&
		expect_grep rep-crash-through err 'replay: [1-9][0-9]* exits matched .*snap-000001.tvl and the [1-9][0-9]* segments? after it'; then
		if [ -z "$rip" ] || [ "$(grep -Eo 'RIP 0x[0-9a-f]+' "$T/rep-crash-through.err" | head -1)" != "$rip" ]; then
			fail rep-crash-through "not the crash at $rip: $(grep -E 'RIP 0x' "$T/rep-crash-through.err" | head -2 | tr '\n' '|')"
		elif [ -z "$h1" ] || ! grep -q "state hash at the end: $h1 " "$T/rep-crash-through.err"; then
			fail rep-crash-through "the state hash differs: recorded ${h1:-none}, replayed $(grep 'state hash' "$T/rep-crash-through.err")"
		elif ! tail -c "$(stat -c %s "$T/rep-crash-through.out")" "$T/rec-crash.out" | cmp -s - "$T/rep-crash-through.out"; then
			fail rep-crash-through "its output is not the end of the recorded run's"
		else
			pass rep-crash-through
		fi
	fi
fi
# Two vCPUs (trialos starts only the first): the log is marked not exactly
# replayable, and its replay says it is best-effort, yet matches here: the
# same output and state.
vmrun rec-smp 60 run --cpus 2 --app "$APPS/clock-rand" --snapshot-every 5 --snapshot-dir "$T/rec9" --state-hash
if expect_rc rec-smp 0 && $EVLOG "$T/rec9/start-000001.tvl" --vcpus >"$T/rec-smp.log" 2>&1 &&
	expect_grep rec-smp err 'state hash at the end'; then
	if ! grep -Eq '^header 1 0 0{32}$' "$T/rec-smp.log" || ! grep -Eq '^vcpu 0 exits [1-9]' "$T/rec-smp.log"; then
		fail rec-smp "the log: $(tr '\n' '|' <"$T/rec-smp.log")"
	else
		vmrun rep-smp 60 replay "$T/rec9/start-000001.tvl" --cpus 2 --app "$APPS/clock-rand" --state-hash
		h1=$(sed -n 's/^trialvm: state hash at the end: \([0-9a-f]\{64\}\) .*/\1/p' "$T/rec-smp.err")
		if expect_rc rep-smp 0 && expect_grep rep-smp err 'recorded with 2 vCPUs; .* this replay is best-effort' \
			'replay: [1-9][0-9]* exits matched .*start-000001.tvl \(vCPU 0: [1-9][0-9]*, vCPU 1: 0\)'; then
			if ! cmp -s "$T/rec-smp.out" "$T/rep-smp.out"; then
				fail rec-smp "the replay printed other output: $(diff "$T/rec-smp.out" "$T/rep-smp.out" | head -3 | tr '\n' '|')"
			elif ! grep -q "state hash at the end: $h1 " "$T/rep-smp.err"; then
				fail rec-smp "the state hash differs: $h1, replayed $(grep 'state hash' "$T/rep-smp.err")"
			else
				vmrun rep-smp-one 30 replay "$T/rec1/start-000001.tvl" --cpus 2 --app "$APPS/clock-rand"
				expect_rc rep-smp-one 125 && expect_grep rep-smp-one err 'recorded with one vCPU, and the machine has 2: replay it with --cpus 1' &&
					pass rec-smp
			fi
		fi
	fi
fi
vmrun rep-usage 10 replay
expect_rc rep-usage 126 && expect_grep rep-usage err 'Usage: trialvm replay' && pass rep-usage
