# tests/lib.sh - the test driver's vocabulary. Each test prints one line:
#   ok NAME | FAIL NAME: why | skip NAME: why
# and the driver ends with "N passed, N failed, N skipped".
PASS=0 FAILN=0 SKIPN=0
FAILED_NAMES=""
T=$(mktemp -d /tmp/trialvm-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

# suite_vars BUILD: the variables the suite's test files use (TRIALVM,
# APPS, TINY, the trialos and Debian kernel they boot; restores' memory
# caches stay in $T).
suite_vars() {
	TRIALVM=$PWD/$1/trialvm
	APPS=$PWD/$1/guests/apps
	TINY=$PWD/$1/tests/guests
	export TRIALVM_TRIALOS=$PWD/$1/guests/trialos.elf
	export TVM_DEBIAN_KERNEL=$PWD/$1/images/debian/vmlinuz
	export XDG_CACHE_HOME=$T/cache
}

# vendor_key DIR: a vendor key pair DIR/v.pem and DIR/v.pub, trusted (in
# $TRIALVM_TRUST_DIR).
vendor_key() {
	openssl genpkey -algorithm ed25519 -out "$1/v.pem" 2>/dev/null
	openssl pkey -in "$1/v.pem" -pubout -out "$1/v.pub" 2>/dev/null
	"$TRIALVM" trust add "$1/v.pub" >/dev/null 2>&1
}

pass() { PASS=$((PASS + 1)); echo "ok $1"; }
fail() { FAILN=$((FAILN + 1)); FAILED_NAMES="$FAILED_NAMES $1"; echo "FAIL $1: $2"; }
skip() { SKIPN=$((SKIPN + 1)); echo "skip $1: $2"; }

# vmrun NAME TIMEOUT ARGS... : run trialvm, stdout in $T/NAME.out, stderr in
# $T/NAME.err, status in $RC.
vmrun() {
	local name=$1 to=$2
	shift 2
	timeout -k 5 "$to" "$TRIALVM" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
	RC=$?
}

# elf_bytes ELF SYMBOL N: SYMBOL's first N bytes as the ELF file has them
# (gdb), "cc 0f ..."; sym_phys ELF SYMBOL: its physical address by the
# ELF's LOAD segments (readelf), 0x...; empty when not found.
elf_bytes() { gdb -nx -batch -ex "x/$3xb $2" "$1" 2>/dev/null | sed 's/.*://; s/0x//g' | tr -s ' \t' ' ' | sed 's/^ //; s/ $//'; }
sym_phys() {
	local va pa="" pv pp pm
	va=$(nm "$1" | awk -v s="$2" '$3 == s { print $1 }')
	[ -n "$va" ] || return 0
	while read -r _ _ pv pp _ pm _; do # LOAD offset vaddr paddr filesz memsz ...
		[ $((0x$va - pv)) -ge 0 ] && [ $((0x$va - pv)) -lt $((pm)) ] && pa=$(printf '0x%x' $((0x$va - pv + pp)))
	done < <(readelf -lW "$1" | grep '^ *LOAD')
	echo "$pa"
}
# phys_bytes DUMP ADDR N: N bytes at guest-physical ADDR of a dump (trialvm inspect).
phys_bytes() { "$TRIALVM" inspect --read-phys "$2:$3" "$1" 2>/dev/null | od -An -tx1 | tr -s ' ' | sed 's/^ //; s/ $//'; }

# count_notes FILE TYPE: how many notes readelf -n lists of TYPE.
count_notes() { readelf -n "$1" 2>/dev/null | grep -c -- "$2"; }

# expect_rc NAME WANT: check $RC.
expect_rc() {
	if [ "$RC" -ne "$2" ]; then
		fail "$1" "exit status $RC, expected $2; stderr: $(head -c 600 "$T/$1.err" | tr '\n' '|')"
		return 1
	fi
	return 0
}

# expect_out NAME FILE: stdout must equal FILE exactly.
expect_out() {
	if ! cmp -s "$T/$1.out" "$2"; then
		fail "$1" "stdout differs: got '$(head -c 300 "$T/$1.out" | tr '\n' '|')', expected '$(head -c 300 "$2" | tr '\n' '|')'"
		return 1
	fi
	return 0
}

# expect_grep NAME WHICH(out|err) REGEX...: each extended regex must match.
expect_grep() {
	local name=$1 which=$2
	shift 2
	for re in "$@"; do
		if ! grep -Eq -- "$re" "$T/$name.$which"; then
			fail "$name" "std$which lacks /$re/: $(head -c 600 "$T/$name.$which" | tr '\n' '|')"
			return 1
		fi
	done
	return 0
}

# summary [LABEL]: the closing line; with LABEL (a part of the suite run
# by tests/run.sh) it is "(LABEL: N passed, ...)", which run.sh does not
# mistake for its own.
summary() {
	[ -n "$FAILED_NAMES" ] && echo "failed:$FAILED_NAMES"
	if [ $# -gt 0 ]; then
		echo "($1: $PASS passed, $FAILN failed, $SKIPN skipped)"
	else
		echo "$PASS passed, $FAILN failed, $SKIPN skipped"
	fi
	[ "$FAILN" -eq 0 ]
}

# count_results FILE: add the ok/FAIL/skip lines of a part's output to ours.
count_results() {
	local word name
	while read -r word name _; do
		case $word in
		ok) PASS=$((PASS + 1)) ;;
		FAIL) FAILN=$((FAILN + 1)); FAILED_NAMES="$FAILED_NAMES ${name%:}" ;;
		skip) SKIPN=$((SKIPN + 1)) ;;
		esac
	done <"$1"
}

# report_of NAME: the one report directory under $T/NAME.reports (or fail).
report_of() {
	local dirs
	dirs=$(find "$T/$1.reports" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
	if [ "$(printf '%s\n' "$dirs" | grep -c .)" -ne 1 ]; then
		fail "$1" "expected one report directory, found: $(ls -A "$T/$1.reports" 2>&1 | tr '\n' ' ')"
		return 1
	fi
	REPORT=$dirs
}

# expect_report NAME KIND FILES...: a complete report of KIND with FILES,
# each of which `trialvm inspect` validates.
expect_report() {
	local name=$1 kind=$2
	shift 2
	report_of "$name" || return 1
	case $(basename "$REPORT") in
	.*) fail "$name" "report left with a temporary name: $REPORT"; return 1 ;;
	esac
	for f in report.json console.log "$@"; do
		if [ ! -f "$REPORT/$f" ] || { [ "$f" != console.log ] && [ ! -s "$REPORT/$f" ]; }; then
			fail "$name" "report lacks $f: $(ls "$REPORT" | tr '\n' ' ')"
			return 1
		fi
		case $f in console.log) continue ;; esac
		if ! "$TRIALVM" inspect "$REPORT/$f" >"$T/$name.$f.inspect" 2>&1; then
			fail "$name" "trialvm inspect $f failed: $(head -c 300 "$T/$name.$f.inspect")"
			return 1
		fi
	done
	if ! grep -q "\"kind\": \"$kind\"" "$REPORT/report.json" || ! grep -q "\"redirtbl\"" "$REPORT/report.json"; then
		fail "$name" "report.json cause.kind is not $kind: $(grep '"kind"' "$REPORT/report.json")"
		return 1
	fi
	grep -q "crash report: $REPORT" "$T/$name.err" || { fail "$name" "stderr does not name the report"; return 1; }
}
