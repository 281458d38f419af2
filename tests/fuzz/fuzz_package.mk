# tests/fuzz/fuzz_package.mk - the trial package reader (images/package.c).
FUZZ_SRCS_fuzz_package := tests/fuzz/fuzz_package.c images/package.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_package := -larchive -ljansson -lcrypto
