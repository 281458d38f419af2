# tests/unit.sh - the unit binaries (sourced by tests/vm-suite.sh, and by
# tests/run.sh when no KVM can be had). Each binary prints "ok NAME",
# "FAIL NAME: why" or "skip NAME: why" per check and exits 1 on a failure.
# One result a binary, plus one skip line for each check it skipped.
# The files some checks read, from this build (not build/'s).
export TVM_TRIALOS=${TVM_TRIALOS:-$PWD/$BUILD/guests/trialos.elf}
export TVM_NULL_DEREF=${TVM_NULL_DEREF:-$PWD/$BUILD/guests/apps/null-deref}
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=unit/$(basename "$t")
	if "$t" >"$T/unit.out" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(grep -E 'FAIL|ERROR|runtime error' "$T/unit.out" | head -5 | tr '\n' '|')"
	fi
	while read -r what rest; do
		skip "$name/${rest%%:*}" "${rest#*: }"
	done < <(grep -E '^skip [^ ]+: ' "$T/unit.out")
done
