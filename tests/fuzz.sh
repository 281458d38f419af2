#!/usr/bin/env bash
# tests/fuzz.sh BUILD SECONDS - run every libFuzzer harness in BUILD/fuzz
# for SECONDS each, starting from a copy of its seeds in
# tests/fuzz/corpus/<name>/ (the repository's corpus never grows).
# One line per target: "ok fuzz/<name> (runs, exec/s)" or
# "FAIL fuzz/<name>: <first crash line>"; a crashing input is kept in
# BUILD/fuzz/artifacts/<name>/. Exits non-zero if any target failed.
# The targets run FUZZ_JOBS (default: the number of CPUs) at a time.
set -u
BUILD=${1:-build}
SECONDS_EACH=${2:-60}
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/trialvm-fuzz.XXXXXX)
trap 'rm -rf "$T"' EXIT
JOBS=${FUZZ_JOBS:-$(nproc)}
# One target: its result line in $T/<name>.res (and the log's tail when it
# failed); the targets run JOBS at a time, the lines print in name order.
fuzz_one() { # BIN
	local bin=$1 name corpus log rc runs eps why keep
	name=$(basename "$bin")
	corpus=$T/corpus-$name
	mkdir -p "$corpus" "$T/art-$name"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -r "tests/fuzz/corpus/$name/." "$corpus/"
	fi
	log=$T/$name.log
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$T/art-$name/" "$corpus" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		echo "ok fuzz/$name (${runs:-?} runs, ${eps:-?} exec/s)" >"$T/$name.res"
	else
		why=$(grep -m1 -E 'ERROR: |runtime error|deadly signal|ALARM|out-of-memory|leak' "$log")
		keep=$BUILD/fuzz/artifacts/$name
		mkdir -p "$keep"
		cp "$T/art-$name"/* "$keep/" 2>/dev/null
		{
			echo "FAIL fuzz/$name: ${why:-exit status $rc} (inputs in $keep, log tail follows)"
			tail -30 "$log" | sed 's/^/    /'
		} >"$T/$name.res"
	fi
}
found=0
for bin in "$BUILD"/fuzz/*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	found=1
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	fuzz_one "$bin" &
done
wait
if [ "$found" -eq 0 ]; then
	echo "FAIL fuzz: no fuzzers in $BUILD/fuzz (make fuzz builds them)"
	exit 1
fi
failed=0
for bin in "$BUILD"/fuzz/*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	if [ -s "$T/$name.res" ]; then
		cat "$T/$name.res"
		grep -q '^FAIL' "$T/$name.res" && failed=1
	else
		echo "FAIL fuzz/$name: no result (the harness's runner stopped)"
		failed=1
	fi
done
exit "$failed"
