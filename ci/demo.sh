#!/usr/bin/env bash
# ci/demo.sh BUILD - the main job end to end: run trial software in a VM,
# watch it from the hypervisor, and diagnose its crash.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
TRIALVM=$BUILD/trialvm
APPS=$BUILD/guests/apps
say() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "demo: /dev/kvm is not usable here; run it as 'make demo', which uses the emulated KVM host (ci/kvm-host) where KVM is missing" >&2
	exit 1
fi
if [ "${TRIALVM_KVM_HOST:-}" = emulated ]; then
	echo "(inside the emulated KVM host: QEMU's software emulator with AMD-V; times are emulated)"
fi

say "1. A static Linux program on trialos, inside a KVM guest" "trialvm run --app $APPS/hello"
"$TRIALVM" run --app "$APPS/hello"
echo "(exit status $?)"

say "2. Arguments and files from a cpio archive" "trialvm run --app /bin/busybox --cpio files.cpio -- sha256sum /etc/version"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/etc" && echo "trial build 1.2.3 (beta)" >"$tmp/root/etc/version"
(cd "$tmp/root" && find . | cpio -o -H newc --quiet >"$tmp/files.cpio")
"$TRIALVM" run --app /bin/busybox --cpio "$tmp/files.cpio" -- sha256sum /etc/version
echo "(exit status $?)"

say "3. A disk: the vendor's master image is never written" "trialvm run --app disk-test --disk master.img"
head -c $((8 << 20)) /dev/zero >"$tmp/master.img"
before=$(sha256sum "$tmp/master.img" | cut -c1-16)
"$TRIALVM" run --app "$APPS/disk-test" --disk "$tmp/master.img"
echo "(exit status $?; master sha256 before ${before}..., after $(sha256sum "$tmp/master.img" | cut -c1-16)...)"

say "4. The trial software crashes: trialvm diagnoses it from the hypervisor" \
	"trialvm run --app $APPS/null-deref --report-dir reports"
"$TRIALVM" run --app "$APPS/null-deref" --report-dir "$tmp/reports"
echo "(exit status $?: 123 means the guest or its application crashed)"
report=$(find "$tmp/reports" -mindepth 1 -maxdepth 1 -type d | head -1)

say "5. The crash report: validated, and opened in gdb" "trialvm inspect REPORT/report.json; gdb null-deref REPORT/app.core"
ls -l "$report"
"$TRIALVM" inspect "$report/report.json" | head -12
gdb -nx -batch -ex bt "$APPS/null-deref" "$report/app.core" 2>/dev/null | grep '^#'

say "6. A divide error in another function" "trialvm run --app $APPS/div-zero --no-report"
"$TRIALVM" run --app "$APPS/div-zero" --no-report
echo "(exit status $?)"
echo
echo "Demo finished. 'make test' runs every test; README.md documents the CLI."
