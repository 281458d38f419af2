# tests/fuzz/fuzz_evlog.mk - the event log reader, and inspect on a log.
FUZZ_SRCS_fuzz_evlog := tests/fuzz/fuzz_evlog.c vmm/evlog.c reporter/inspect.c reporter/inspect_elf.c \
	reporter/inspect_appcore.c reporter/inspect_windump.c reporter/inspect_report.c reporter/inspect_evlog.c \
	vmm/text.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_evlog := -ljansson -lcrypto -lz
