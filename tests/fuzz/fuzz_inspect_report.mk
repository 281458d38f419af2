# tests/fuzz/fuzz_inspect_report.mk - `trialvm inspect` on a report.json.
FUZZ_SRCS_fuzz_inspect_report := tests/fuzz/fuzz_inspect_report.c reporter/inspect.c reporter/inspect_elf.c \
	reporter/inspect_appcore.c reporter/inspect_windump.c reporter/inspect_report.c reporter/inspect_evlog.c vmm/evlog.c vmm/text.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_inspect_report := -ljansson -lcrypto -lz
