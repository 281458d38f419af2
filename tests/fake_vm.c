/* tests/fake_vm.c - see fake_vm.h. */
#include "fake_vm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct vm {
	uint64_t ram_size;
	uint8_t *ram;
	int nregions;
	struct mem_region regions[TVM_MAX_REGIONS];
	int ncpus;
};

struct vm *fake_vm_new(uint64_t ram_size, int ncpus)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm || ram_size == 0)
		goto fail;
	void *m = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		goto fail;
	vm->ram = m;
	vm->ram_size = ram_size;
	vm->ncpus = ncpus;
	uint64_t low = ram_size < TVM_MMIO_HOLE_START ? ram_size : TVM_MMIO_HOLE_START;
	vm->regions[0] = (struct mem_region){ 0, low, vm->ram };
	vm->nregions = 1;
	if (ram_size > low)
		vm->regions[vm->nregions++] = (struct mem_region){ TVM_4G, ram_size - low, vm->ram + low };
	return vm;
fail:
	free(vm);
	return NULL;
}

void fake_vm_free(struct vm *vm)
{
	if (vm) {
		munmap(vm->ram, vm->ram_size);
		free(vm);
	}
}

void *gpa_ptr(struct vm *vm, gpa_t gpa, uint64_t len)
{
	for (int i = 0; i < vm->nregions; i++) {
		const struct mem_region *r = &vm->regions[i];
		if (gpa.v >= r->gpa && gpa.v - r->gpa <= r->size && len <= r->size - (gpa.v - r->gpa))
			return r->host + (gpa.v - r->gpa);
	}
	return NULL;
}

int gpa_read(struct vm *vm, gpa_t gpa, void *dst, uint64_t len)
{
	void *p = gpa_ptr(vm, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int gpa_write(struct vm *vm, gpa_t gpa, const void *src, uint64_t len)
{
	void *p = gpa_ptr(vm, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	return 0;
}

uint64_t vm_ram_size(const struct vm *vm) { return vm->ram_size; }
int vm_ncpus(const struct vm *vm) { return vm->ncpus; }

int vm_regions(const struct vm *vm, const struct mem_region **out)
{
	*out = vm->regions;
	return vm->nregions;
}

int vm_e820(const struct vm *vm, struct e820_entry *out, int max)
{
	struct e820_entry e[4];
	int n = 0;
	uint64_t low = vm->regions[0].size;
	e[n++] = (struct e820_entry){ 0, low < 0x9fc00 ? low : 0x9fc00, 1 };
	if (low > 0x9fc00)
		e[n++] = (struct e820_entry){ 0x9fc00, 0x100000 - 0x9fc00, 2 };
	if (low > 0x100000)
		e[n++] = (struct e820_entry){ 0x100000, low - 0x100000, 1 };
	if (vm->nregions > 1)
		e[n++] = (struct e820_entry){ TVM_4G, vm->regions[1].size, 1 };
	if (n > max)
		n = max;
	memcpy(out, e, sizeof(e[0]) * (size_t)n);
	return n;
}
