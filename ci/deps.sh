#!/bin/sh
# Install the Debian packages trialvm needs to build, test and benchmark.
# Idempotent: installs only what is missing; runs apt-get update at most once.
set -eu
PKGS="gcc make pkg-config libelf-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev
musl-tools busybox-static cpio qemu-system-x86 gdb binutils libcapstone-dev
libjansson-dev crash libseccomp-dev bc clang libclang-rt-14-dev jq lldb mmdebstrap
libarchive-dev openssl zstd xdelta3 libcurl4-openssl-dev python3"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "ci/deps.sh: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
