# tests/fuzz/fuzz_crash.mk - the whole crash path (event, capture, code
# window, symbols, summary, report.json, core.elf, memory.dmp, app.core) on
# the harness's fake VM; vm.c is not linked (the harness stands in for it).
FUZZ_SRCS_fuzz_crash := tests/fuzz/fuzz_crash.c monitor/crash.c monitor/report.c monitor/symbols.c \
	monitor/disasm.c reporter/appcore.c reporter/elfdump.c reporter/windump.c devices/overlay.c \
	vmm/guestmem.c vmm/memory.c vmm/text.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_crash := -lelf -ljansson -lcrypto -lz -ldl
