# tests/fuzz/fuzz_inspect_appcore.mk - `trialvm inspect` on an application core.
FUZZ_SRCS_fuzz_inspect_appcore := tests/fuzz/fuzz_inspect_appcore.c reporter/inspect.c reporter/inspect_elf.c \
	reporter/inspect_appcore.c reporter/inspect_windump.c reporter/inspect_report.c reporter/inspect_evlog.c vmm/evlog.c vmm/text.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_inspect_appcore := -ljansson -lcrypto -lz
