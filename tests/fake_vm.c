/* tests/fake_vm.c - see fake_vm.h. */
#include "fake_vm.h"
#include "../vmm/vm_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct vm *fake_vm_new(uint64_t ram_size, int ncpus)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm || ram_size == 0)
		goto fail;
	void *m = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		goto fail;
	vm->kvm_fd = vm->vm_fd = vm->evfd = -1; /* any KVM ioctl on it fails (EBADF) */
	for (int i = 0; i < TVM_MAX_VCPUS; i++)
		vm->cpus[i].fd = -1;
	vm->ram = m;
	vm->ram_size = ram_size;
	vm->ncpus = ncpus;
	vm_layout_ram(vm);
	return vm;
fail:
	free(vm);
	return NULL;
}

void fake_vm_free(struct vm *vm)
{
	if (vm) {
		vm_destroy_devices(vm); /* the devices a test added (vm_add_device) */
		munmap(vm->ram, vm->ram_size);
		free(vm);
	}
}
