/* tests/fuzz/fuzz_vm.h - a struct vm (vmm/vm_internal.h) that never opens
 * KVM, for harnesses that reach devices the way a vCPU does: no fds, its
 * locks ready, no RAM (the harness adds its regions). Aborts when out of
 * memory. Also REQUIRE, the harnesses' assertion. */
#ifndef TVM_FUZZ_VM_H
#define TVM_FUZZ_VM_H

#include <stdlib.h>

#include "vmm/vm_internal.h"

/* A harness's invariant: abort (a finding) when it does not hold. */
#define REQUIRE(c)               \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static inline struct vm *fuzz_vm_new(int ncpus)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		abort();
	vm->kvm_fd = vm->vm_fd = vm->evfd = -1;
	for (int i = 0; i < TVM_MAX_VCPUS; i++)
		vm->cpus[i].fd = -1;
	vm->ncpus = ncpus;
	pthread_mutex_init(&vm->ev_lock, NULL);
	pthread_mutex_init(&vm->kick_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	return vm;
}

#endif
