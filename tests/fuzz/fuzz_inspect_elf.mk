# tests/fuzz/fuzz_inspect_elf.mk - `trialvm inspect` on an ELF core (guest dump or app core).
FUZZ_SRCS_fuzz_inspect_elf := tests/fuzz/fuzz_inspect_elf.c reporter/inspect.c reporter/inspect_elf.c \
	reporter/inspect_appcore.c reporter/inspect_windump.c reporter/inspect_report.c reporter/inspect_evlog.c vmm/evlog.c vmm/text.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_inspect_elf := -ljansson -lcrypto -lz
