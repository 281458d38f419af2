#!/usr/bin/env bash
# tests/part.sh BUILD FILE... - run some of the suite's test files (each
# sourced as tests/vm-suite.sh sources it) with the suite's variables, for
# working on one part: ci/kvm-host -- tests/part.sh build tests/launch.sh
set -u
BUILD=${1:-build}
shift
cd "$(dirname "$0")/.."
. tests/lib.sh
suite_vars "$BUILD"
for f in "$@"; do
	. "$f"
done
summary part
