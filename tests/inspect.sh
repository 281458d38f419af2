# tests/inspect.sh - `trialvm inspect` on crafted files, through the binary
# (issue 8, items 8 and 9): nonsense is refused with exit status 125 and a
# message naming what and where; guest text never reaches the terminal raw.
# Sourced by the test driver after tests/lib.sh (needs pass, fail, vmrun,
# expect_rc, expect_grep, $T, $TRIALVM); run with: inspect_cli_tests
# The ELF files are copies of the fuzzers' seeds
# (tests/fuzz/corpus/fuzz_inspect_*, written by fuzz_inspect_seeds.py), so
# the offsets below are theirs.

# patch FILE OFFSET BYTES: overwrite bytes (printf escapes) at a decimal offset.
inspect_patch() {
	printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# no_controls NAME WHICH(out|err): no ESC, BEL or U+202E in the output.
inspect_no_controls() {
	if LC_ALL=C grep -q "$(printf '[\033\007]')" "$T/$1.$2" || grep -q "$(printf '\342\200\256')" "$T/$1.$2"; then
		fail "$1" "std$2 holds a raw terminal control: $(od -c "$T/$1.$2" | head -3 | tr '\n' '|')"
		return 1
	fi
	return 0
}

# inspect_json NAME VCPU VCPUS SUMMARY [SCHEMA]: a report.json in $T/NAME/.
inspect_json() {
	mkdir -p "$T/$1"
	printf 'hello\n' >"$T/$1/console.log"
	printf '{"schema": "%s", "version": 1, "id": "r1", "trialvm_version": "0.1",
 "time": "2024-01-02T03:04:05Z", "cause": {"kind": "app-fault", "summary": "%s", "vcpu": %s},
 "vcpus": [%s], "console_tail": "", "files": {"console.log": {"size": 6}}}\n' \
		"${5:-trialvm-report}" "$4" "$2" "$3" >"$T/$1/report.json"
}

inspect_cli_tests() {
	local seeds=tests/fuzz/corpus vcpu1='{"index": 1, "rip": "0x1", "rsp": "0x2", "cr3": "0x3"}'

	# A PT_LOAD p_memsz of 2^64-1 (program header 1 at 0x78, p_memsz at 0xa0).
	cp "$seeds/fuzz_inspect_elf/two-vcpus" "$T/memsz.elf"
	inspect_patch "$T/memsz.elf" 160 '\377\377\377\377\377\377\377\377'
	vmrun inspect-memsz-wraps 10 inspect "$T/memsz.elf"
	expect_rc inspect-memsz-wraps 125 && expect_grep inspect-memsz-wraps err 'PT_LOAD \(program header 1 at 0x78\)' &&
		pass inspect-memsz-wraps

	# Two PT_LOADs over the same guest-physical page (header 2's p_paddr, at 0xc8, set to 0x80).
	cp "$seeds/fuzz_inspect_elf/two-vcpus" "$T/overlap.elf"
	inspect_patch "$T/overlap.elf" 200 '\200\0\0\0\0\0\0\0'
	vmrun inspect-overlap 10 inspect "$T/overlap.elf"
	expect_rc inspect-overlap 125 && expect_grep inspect-overlap err 'overlaps PT_LOAD' && pass inspect-overlap

	# An app.core whose NT_PRPSINFO note (header at 0x24c, type at 0x254) has another type.
	cp "$seeds/fuzz_inspect_appcore/null-deref" "$T/changed.core"
	inspect_patch "$T/changed.core" 596 '\167\167\0\0'
	vmrun inspect-appcore-note 10 inspect "$T/changed.core"
	expect_rc inspect-appcore-note 125 && expect_grep inspect-appcore-note err 'note 1 at offset 0x24c .*type 0x7777' &&
		if grep -q 'guest-physical' "$T/inspect-appcore-note.out"; then
			fail inspect-appcore-note "taken for a guest dump"
		else
			pass inspect-appcore-note
		fi

	# "vcpus": [] with cause.vcpu 1.
	inspect_json vcpus-empty 1 '' x
	vmrun inspect-vcpus-empty 10 inspect "$T/vcpus-empty/report.json"
	expect_rc inspect-vcpus-empty 125 && expect_grep inspect-vcpus-empty err '"cause.vcpu" is 1' && pass inspect-vcpus-empty

	# Terminal controls in the summary (output) and in the schema (message).
	inspect_json json-controls 1 "$vcpu1" '\u001b[2J\u0007boom\u202e'
	vmrun inspect-json-controls 10 inspect "$T/json-controls/report.json"
	expect_rc inspect-json-controls 0 && inspect_no_controls inspect-json-controls out &&
		expect_grep inspect-json-controls out 'boom' && pass inspect-json-controls
	inspect_json json-schema 1 "$vcpu1" x '\u001b[2J\u0007x'
	vmrun inspect-json-schema 10 inspect "$T/json-schema/report.json"
	expect_rc inspect-json-schema 125 && inspect_no_controls inspect-json-schema err &&
		expect_grep inspect-json-schema err '"schema" is "\\x1b\[2J\\x07x"' && pass inspect-json-schema
}
