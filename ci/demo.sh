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
	echo "demo: /dev/kvm is not usable on this machine; trialvm needs KVM" >&2
	exit 1
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

say "3. The trial software crashes: trialvm diagnoses it from the hypervisor" "trialvm run --app $APPS/null-deref"
"$TRIALVM" run --app "$APPS/null-deref"
echo "(exit status $?: 123 means the guest or its application crashed)"

say "4. A divide error in another function" "trialvm run --app $APPS/div-zero"
"$TRIALVM" run --app "$APPS/div-zero"
echo "(exit status $?)"
echo
echo "Demo finished. 'make test' runs every test; README.md documents the CLI."
