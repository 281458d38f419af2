#!/usr/bin/env bash
# ci/bench-dump.sh BUILD - crash-dump benchmark: a 1 GiB guest in which the
# application touched 64 MiB crashes; trialvm writes core.elf + memory.dmp
# (+ app.core, report.json); next to it, QEMU's dump-guest-memory (QMP, ELF)
# of the same trialos image and app, same memory, in the same invocation.
# Prints figures; asserts nothing.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TRIALVM=$PWD/$BUILD/trialvm
TRIALOS=$PWD/$BUILD/guests/trialos.elf
APP=$PWD/$BUILD/guests/apps/mem-touch
QMP=$PWD/$BUILD/tests/bench/qmp
RUNS=${BENCH_DUMP_RUNS:-5}
W=$(mktemp -d /tmp/trialvm-bench-dump.XXXXXX)
trap 'rm -rf "$W"' EXIT
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
progress() { [ -t 2 ] && printf '\r%s   ' "$*" >&2; }

echo "== crash dump: 1 GiB guest, 64 MiB touched by the application ($RUNS runs each)"
: >"$W/tv.ms"
: >"$W/tv.bytes"
for i in $(seq "$RUNS"); do
	progress "trialvm run $i/$RUNS"
	rm -rf "$W/reports"
	"$TRIALVM" run -q --mem 1G --app "$APP" --report-dir "$W/reports" -- 64 >/dev/null 2>"$W/tv.err"
	grep -Eo 'capture pause [0-9.]+ ms' "$W/tv.err" | awk '{ print $3 }' >>"$W/tv.ms"
	d=$(find "$W/reports" -mindepth 1 -maxdepth 1 -type d)
	du -B1 -c "$d/core.elf" "$d/memory.dmp" | tail -1 | awk '{ print $1 }' >>"$W/tv.bytes"
	du -B1 "$d/app.core" | awk '{ print $1 }' >"$W/tv.app"
done
tv_ms=$(median <"$W/tv.ms")
tv_bytes=$(median <"$W/tv.bytes")

: >"$W/q.ms"
: >"$W/q.bytes"
for i in $(seq "$RUNS"); do
	progress "qemu run $i/$RUNS"
	rm -f "$W/qemu.dump" "$W/qmp.sock"
	qemu-system-x86_64 -M microvm -accel kvm -cpu qemu64 -m 1G -nographic -no-reboot -nodefaults \
		-serial file:"$W/q.serial" -kernel "$TRIALOS" -initrd "$APP" -append '-- mem-touch 64 spin' \
		-device isa-debug-exit,iobase=0x501,iosize=1 -qmp unix:"$W/qmp.sock",server=on,wait=off \
		>/dev/null 2>"$W/q.err" &
	qpid=$!
	for _ in $(seq 600); do grep -q touched "$W/q.serial" 2>/dev/null && break; sleep 0.05; done
	if ! grep -q touched "$W/q.serial" 2>/dev/null; then
		echo "QEMU did not start the application: $(head -c 300 "$W/q.err")"
		kill $qpid 2>/dev/null
		break
	fi
	# stop + dump-guest-memory (ELF, no paging), timed together as trialvm's pause is.
	"$QMP" "$W/qmp.sock" '{"execute":"stop"}' \
		"{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":false,\"protocol\":\"file:$W/qemu.dump\"}}" \
		>"$W/q.times"
	kill $qpid 2>/dev/null
	wait $qpid 2>/dev/null
	awk '{ s += $1 } END { print s }' "$W/q.times" >>"$W/q.ms"
	du -B1 "$W/qemu.dump" | awk '{ print $1 }' >>"$W/q.bytes"
done
[ -t 2 ] && printf '\r%40s\r' '' >&2
q_ms=$(median <"$W/q.ms")
q_bytes=$(median <"$W/q.bytes")
printf '%-44s %12s %16s\n' "" "time (median)" "disk (median)"
printf '%-44s %9.1f ms %13.1f MiB\n' "trialvm core.elf + memory.dmp (whole report)" "$tv_ms" "$(echo "$tv_bytes / 1048576" | bc -l)"
printf '%-44s %9s    %13.1f MiB\n' "  (app.core, part of the same report)" "" "$(echo "$(cat "$W/tv.app") / 1048576" | bc -l)"
if [ -n "$q_ms" ]; then
	printf '%-44s %9.1f ms %13.1f MiB\n' "QEMU dump-guest-memory (ELF)" "$q_ms" "$(echo "$q_bytes / 1048576" | bc -l)"
	printf 'ratio QEMU/trialvm: time %.1fx, disk %.1fx (target: >= 5x each); capture pause %.0f ms (target < 1000 ms)\n' \
		"$(echo "$q_ms / $tv_ms" | bc -l)" "$(echo "$q_bytes / $tv_bytes" | bc -l)" "$tv_ms"
fi
