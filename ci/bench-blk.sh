#!/usr/bin/env bash
# ci/bench-blk.sh BUILD - virtio-blk throughput: sequential 4 KiB and 64 KiB
# reads and writes by a trialos app (blk-bench) on /dev/vda, under trialvm
# (master image + copy-on-write overlay) and under QEMU's microvm with
# -device virtio-blk-device on the same trialos image, app and disk, in the
# same invocation. MiB/s, requests, VM exits per request; ratios. Figures only.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TRIALVM=$PWD/$BUILD/trialvm
TRIALOS=$PWD/$BUILD/guests/trialos.elf
APP=$PWD/$BUILD/guests/apps/blk-bench
MIB=${BENCH_BLK_MIB:-8}
W=$(mktemp -d /tmp/trialvm-bench-blk.XXXXXX)
trap 'rm -rf "$W"' EXIT
head -c $((4 * MIB << 20)) /dev/zero >"$W/disk.img"

echo "== virtio-blk: blk-bench on /dev/vda, $MIB MiB per case (compare ratios: absolute rates depend on the host, and are emulated inside ci/kvm-host)"
"$TRIALVM" run --stats --app "$APP" --disk "$W/disk.img" -- all "$MIB" rw >"$W/tv.out" 2>"$W/tv.err"
tv_exits=$(grep -Eo 'stats: [0-9]+ VM exits' "$W/tv.err" | awk '{ print $2 }')
cp "$W/disk.img" "$W/qdisk.img"
timeout 600 qemu-system-x86_64 -M microvm -accel kvm -cpu qemu64 -m 128M -nographic -no-reboot -nodefaults \
	-serial stdio -kernel "$TRIALOS" -initrd "$APP" -append "-- blk-bench all $MIB rw" \
	-device isa-debug-exit,iobase=0x501,iosize=1 -global virtio-mmio.force-legacy=false \
	-drive id=d0,file="$W/qdisk.img",format=raw,if=none -device virtio-blk-device,drive=d0 >"$W/q.out" 2>"$W/q.err"
total_req=$(grep -Eo 'requests=[0-9]+' "$W/tv.out" | cut -d= -f2 | awk '{ s += $1 } END { print s }')
printf '%-16s %14s %14s %10s\n' case "trialvm MiB/s" "QEMU MiB/s" "ratio"
for op in write read; do
	for bs in 4096 65536; do
		a=$(grep -E "blk-bench: $op $bs " "$W/tv.out" | grep -Eo 'MiB/s=[0-9.]+' | cut -d= -f2)
		b=$(grep -E "blk-bench: $op $bs " "$W/q.out" | grep -Eo 'MiB/s=[0-9.]+' | cut -d= -f2)
		r=$( [ -n "$a" ] && [ -n "$b" ] && echo "$a / $b" | bc -l)
		printf '%-16s %14s %14s %9s\n' "$op $bs" "${a:-n/a}" "${b:-n/a}" "$( [ -n "$r" ] && printf '%.2fx' "$r" || echo n/a)"
	done
done
if [ -n "$tv_exits" ] && [ -n "$total_req" ] && [ "$total_req" -gt 0 ]; then
	printf 'trialvm: %s VM exits for %s requests (%.2f exits per request, all kinds; QEMU exits are not counted here)\n' \
		"$tv_exits" "$total_req" "$(echo "$tv_exits / $total_req" | bc -l)"
fi
grep -q 'blk-bench: read' "$W/q.out" || echo "QEMU run incomplete: $(tail -c 300 "$W/q.out" "$W/q.err")"
