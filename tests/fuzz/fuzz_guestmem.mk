# tests/fuzz/fuzz_guestmem.mk - the guest page walker and memory readers.
FUZZ_SRCS_fuzz_guestmem := tests/fuzz/fuzz_guestmem.c vmm/guestmem.c vmm/memory.c
