# tests/fuzz/fuzz_snapfile.mk - the snapshot file reader.
FUZZ_SRCS_fuzz_snapfile := tests/fuzz/fuzz_snapfile.c vmm/snapfile.c vmm/fileio.c vmm/util.c
FUZZ_LIBS_fuzz_snapfile := -lz
