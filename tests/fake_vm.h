/* tests/fake_vm.h - a KVM-free struct vm with the vm.h memory API, for unit
 * tests of code that only touches guest memory (the loaders). Link
 * tests/fake_vm.c instead of vmm/vm.c. */
#ifndef TVM_FAKE_VM_H
#define TVM_FAKE_VM_H

#include <stdint.h>

#include "../vmm/vm.h"

/* RAM laid out as vm.h describes (low RAM below the MMIO hole, the rest at
 * 4 GiB), backed by one lazily populated anonymous mapping. NULL on failure. */
struct vm *fake_vm_new(uint64_t ram_size, int ncpus);
void fake_vm_free(struct vm *vm);

#endif
