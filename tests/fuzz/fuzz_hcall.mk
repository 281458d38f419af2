# tests/fuzz/fuzz_hcall.mk - the hypercall port with hostile guest memory,
# reached through the bus on a struct vm that never opens KVM (vm.c is
# linked for vm_raise only).
FUZZ_SRCS_fuzz_hcall := tests/fuzz/fuzz_hcall.c devices/hcall.c devices/entropy.c vmm/vm.c vmm/evlog.c vmm/evloop.c vmm/stopsig.c vmm/breakpoints.c vmm/debug.c \
	vmm/memory.c vmm/bus.c vmm/util.c vmm/fileio.c vmm/sandbox.c
