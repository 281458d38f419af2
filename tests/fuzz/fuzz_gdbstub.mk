# tests/fuzz/fuzz_gdbstub.mk - the gdb stub's packet layer (no VM: what needs one
# answers an error), linked with the vmm it would call.
FUZZ_SRCS_fuzz_gdbstub := tests/fuzz/fuzz_gdbstub.c monitor/gdbstub.c vmm/debug.c vmm/breakpoints.c vmm/vm.c vmm/vm_capture.c vmm/guestmem.c vmm/memory.c vmm/util.c vmm/evlog.c vmm/evloop.c vmm/sandbox.c vmm/stopsig.c vmm/bus.c vmm/fileio.c
FUZZ_LIBS_fuzz_gdbstub := -lseccomp -lelf -lz -lcrypto
