#!/usr/bin/env bash
# ci/bench-bundle.sh BUILD - report bundle sizes (make bench, section 8): a
# Linux master image (Debian's amd64 kernel, busybox and crash-test, 512M,
# 2 vCPUs) whose program loads PRE MiB of data (half of it random) and says
# "ready", packaged with its booted checkpoint there, launched; the program
# then changes POST MiB of its data, writes half as much to a file, and
# crashes (BENCH_BUNDLE_WORK="PRE POST", default "192 8"). Its report is
# bundled against the package, and the bundle's bytes are set beside, in
# the same invocation:
#   - zstd -3 of the full core.elf (the goal: the bundle 20x smaller or more)
#   - zstd -3 of just the pages that differ from the checkpoint's at the
#     same address and the disk clusters the trial changed (the goal: the
#     bundle at most 1.1x that)
#   - zstd --patch-from and xdelta3 of the full core.elf against the
#     master's memory (the checkpoint's RAM, `trialvm snapshot memory`)
# and the time to make the bundle and to rebuild the report from it (a
# check that the rebuild is byte for byte is printed too). Prints
# figures; asserts nothing.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TRIALVM=$PWD/$BUILD/trialvm
KDIR=$PWD/$BUILD/images/debian-amd64
CRASH_TEST=$PWD/$BUILD/guests/linux/crash-test
read -r PRE POST <<<"${BENCH_BUNDLE_WORK:-192 8}"
W=$(mktemp -d "${TMPDIR:-/tmp}/trialvm-bench-bundle.XXXXXX")
trap 'rm -rf "$W"' EXIT
progress() { [ -t 2 ] && printf 'bench-bundle: %s\n' "$*" >&2; return 0; }
ms() { echo $(($(date +%s%N) / 1000000)); }

echo "== report bundle: Linux image (512M, 2 vCPUs), its program's $PRE MiB loaded at the checkpoint; after it, $POST MiB changed and $((POST / 2)) MiB written to a file, then a crash"
if [ ! -s "$KDIR/vmlinuz" ] || [ ! -x "$CRASH_TEST" ]; then
	echo "  NOT RUN: $KDIR (make bench fetches it) or $CRASH_TEST is missing"
	exit 1
fi
for tool in zstd xdelta3 python3; do
	command -v $tool >/dev/null || { echo "  NOT RUN: $tool is missing (ci/deps.sh installs it)"; exit 1; }
done
export TRIALVM_TRUST_DIR=$W/trust TRIALVM_CACHE=$W/cache XDG_DATA_HOME=$W/data XDG_CACHE_HOME=$W/xc
R=$W/root
mkdir -p "$R/bin" "$R/usr/bin" && cp /bin/busybox "$R/bin/" && cp "$CRASH_TEST" "$R/usr/bin/crash-test"
for lib in $(ldd "$CRASH_TEST" | grep -Eo '/[^ ]+'); do mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib"; done
progress "image linux, image build --checkpoint-at (boots the image)"
openssl genpkey -algorithm ed25519 -out "$W/v.pem" 2>/dev/null
openssl pkey -in "$W/v.pem" -pubout -out "$W/v.pub" 2>/dev/null
"$TRIALVM" trust add "$W/v.pub" >/dev/null 2>&1
if ! "$TRIALVM" image linux --rootfs "$R" --kernel-dir "$KDIR" --app /usr/bin/crash-test --mem 512M --cpus 2 -o "$W/img" \
	-- work "$PRE" "$POST" >"$W/img.log" 2>&1 ||
	! "$TRIALVM" image build --name bench --version 1 --vendor-key "$W/v.pem" --image "$W/img" \
		--checkpoint-at $'crash-test: ready\n' -o "$W/pkg.tvp" >"$W/pkg.log" 2>&1; then
	echo "  NOT RUN: the image or its package could not be built: $(tail -1 "$W/img.log") $(tail -1 "$W/pkg.log" 2>/dev/null)"
	exit 1
fi
progress "launch: the trial runs from the checkpoint and crashes"
"$TRIALVM" launch "$W/pkg.tvp" --on-crash exit --consent no --snapshot-every 3600 -q --report-dir "$W/rep" \
	>/dev/null 2>"$W/launch.err"
REP=$(find "$W/rep" -mindepth 2 -maxdepth 2 -type d ! -name snapshots | head -1)
OVL=$(sed -n 's/.*is kept for the crash report: //p' "$W/launch.err" | head -1)
if [ -z "$REP" ] || [ ! -s "$REP/core.elf" ]; then
	echo "  NOT RUN: the trial left no report: $(tail -2 "$W/launch.err" | tr '\n' ' ')"
	exit 1
fi
progress "report bundle"
t0=$(ms)
"$TRIALVM" report bundle "$REP" --master "$W/pkg.tvp" -o "$W/bundle" >/dev/null 2>"$W/bundle.err" || {
	echo "  NOT RUN: report bundle failed: $(tail -1 "$W/bundle.err")"
	exit 1
}
t_bundle=$(($(ms) - t0))
bundle=$(du -sb --apparent-size "$W/bundle" | cut -f1)
t0=$(ms)
"$TRIALVM" report rebuild "$W/bundle" --master "$W/pkg.tvp" -o "$W/rebuilt" >/dev/null 2>"$W/rebuild.err"
t_rebuild=$(($(ms) - t0))
same=identical
for f in $(cd "$REP" && ls); do cmp -s "$REP/$f" "$W/rebuilt/$f" || same="DIFFERENT ($f)"; done
rm -rf "$W/rebuilt"

progress "references: zstd, the changed pages, zstd --patch-from, xdelta3"
mkdir -p "$W/x"
"$TRIALVM" image verify "$W/pkg.tvp" --extract "$W/x" >/dev/null 2>&1
"$TRIALVM" snapshot memory "$W/x/checkpoint" "$W/master.ram" 2>"$W/mem.err" || {
	echo "  NOT RUN: the checkpoint's memory: $(tail -1 "$W/mem.err")"
	exit 1
}
z_core=$(zstd -3 -q -c "$REP/core.elf" | wc -c)
# The pages of core.elf that differ from the master's at the same address
# (its PT_LOADs, by readelf), and the overlay's changed clusters.
python3 - "$REP/core.elf" "$W/master.ram" "$W/changed" <<'PY' 2>"$W/changed.err"
import os, struct, sys
core, ram, out = sys.argv[1], sys.argv[2], sys.argv[3]
with open(core, 'rb') as f:
    h = f.read(64)
    phoff, phnum = struct.unpack_from('<Q', h, 32)[0], struct.unpack_from('<H', h, 56)[0]
    f.seek(phoff)
    ph = [struct.unpack('<IIQQQQQQ', f.read(56)) for _ in range(phnum)]
loads = [(p[2], p[4], p[5]) for p in ph if p[0] == 1]  # offset, paddr, filesz
def ram_off(gpa):  # RAM above 3 GiB is at 4 GiB
    return gpa if gpa < 3 << 30 else gpa - (1 << 30)
n = 0
with open(core, 'rb') as c, open(ram, 'rb') as m, open(out, 'wb') as o:
    for off, gpa, size in loads:
        for k in range(0, size, 4096):
            c.seek(off + k); a = c.read(4096)
            m.seek(ram_off(gpa + k)); b = m.read(4096)
            if a != b:
                o.write(a); n += 1
print(n, file=sys.stderr)
PY
pages=$(tail -1 "$W/changed.err")
# Disk clusters: the crash snapshot holds those written since the
# checkpoint; the kept overlay holds all the trial wrote.
clusters=0
if [ -n "$OVL" ] && [ -e "$OVL" ]; then
	"$TRIALVM" disk diff "$W/x/rootfs" "$OVL" 2>/dev/null | awk '/^cluster/ { print $4, $6 }' >"$W/clusters"
	while read -r off len; do
		dd if="$OVL" bs=65536 skip=$((off / 65536)) count=1 2>/dev/null | head -c "$len" >>"$W/changed"
		clusters=$((clusters + 1))
	done <"$W/clusters"
fi
z_changed=$(zstd -3 -q -c "$W/changed" | wc -c)
z_patch=$(zstd -3 -q --long=30 --patch-from="$W/master.ram" -c "$REP/core.elf" 2>/dev/null | wc -c)
xdelta3 -e -f -B 1073741824 -s "$W/master.ram" "$REP/core.elf" "$W/x.vcdiff" 2>/dev/null
x_delta=$(stat -c %s "$W/x.vcdiff" 2>/dev/null || echo 0)

# The bundle of core.elf alone (the references' input): a report of it only.
mkdir -p "$W/core-only"
jq '{schema, version, id, time, cause, files: {"core.elf": .files["core.elf"]}}' "$REP/report.json" >"$W/core-only/report.json"
ln "$REP/core.elf" "$W/core-only/core.elf" 2>/dev/null || cp --sparse=always "$REP/core.elf" "$W/core-only/core.elf"
"$TRIALVM" report bundle "$W/core-only" --master "$W/pkg.tvp" -o "$W/bundle-core" >/dev/null 2>&1
core_only=$(du -sb --apparent-size "$W/bundle-core" | cut -f1)
# times: how many times smaller than REF the bundle is (or its size in REF's)
times() { awk -v r="$1" -v b="$2" 'BEGIN { if (b <= 0) print "-"; else if (r >= b) printf "%.1fx smaller", r / b; else printf "%.2fx its size", b / r }'; }
printf '  %-48s | %12s | %-24s | %s\n' reference bytes "the whole bundle" "the bundle of core.elf alone"
printf '  %-48s-+-%12s-+-%-24s-+-%s\n' "------------------------------------------------" "------------" "------------------------" "------"
printf '  %-48s | %12s | %-24s | %s\n' "(the bundle itself)" "$bundle" "-" "$core_only bytes"
printf '  %-48s | %12s | %-24s | %s (goal for the whole: 20x smaller or more)\n' "zstd -3 of the full core.elf" "$z_core" \
	"$(times "$z_core" "$bundle")" "$(times "$z_core" "$core_only")"
printf '  %-48s | %12s | %-24s | %s (goal for the whole: 1.1x its size or less)\n' \
	"zstd -3 of $pages changed pages + $clusters clusters" "$z_changed" "$(times "$z_changed" "$bundle")" \
	"$(times "$z_changed" "$core_only")"
printf '  %-48s | %12s | %-24s | %s\n' "zstd --patch-from=master memory, core.elf" "$z_patch" "$(times "$z_patch" "$bundle")" \
	"$(times "$z_patch" "$core_only")"
printf '  %-48s | %12s | %-24s | %s\n' "xdelta3 -s master memory, core.elf" "$x_delta" "$(times "$x_delta" "$bundle")" \
	"$(times "$x_delta" "$core_only")"
echo "  the whole bundle holds every file of the report: core.elf, memory.dmp, app.core, report.json, console.log,"
echo "  the crash snapshot (its disk clusters included) and the event log; the references hold core.elf (and the clusters)."
echo "  changed pages: those that differ from the checkpoint's page at the same address (pages the guest moved count)"
echo "  time: bundle $t_bundle ms, rebuild $t_rebuild ms (the rebuilt report: $same)"
