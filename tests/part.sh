#!/usr/bin/env bash
# tests/part.sh BUILD FILE... - run some of the suite's test files (each
# sourced as tests/vm-suite.sh sources it) with the suite's variables, for
# working on one part: ci/kvm-host -- tests/part.sh build tests/launch.sh
set -u
BUILD=${1:-build}
shift
cd "$(dirname "$0")/.."
. tests/lib.sh
TRIALVM=$PWD/$BUILD/trialvm
APPS=$PWD/$BUILD/guests/apps
TINY=$PWD/$BUILD/tests/guests
export TRIALVM_TRIALOS=$PWD/$BUILD/guests/trialos.elf
export TVM_DEBIAN_KERNEL=$PWD/$BUILD/images/debian/vmlinuz
export XDG_CACHE_HOME=$T/cache
for f in "$@"; do
	. "$f"
done
summary part
