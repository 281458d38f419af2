/* vmm/memory.c - guest RAM layout and the one checked accessor. No KVM
 * calls: unit tests link this with a struct vm of their own making. */
#include "../guests/include/trialvm_abi.h"
#include "vm.h"
#include "vm_internal.h"

#include <string.h>

void vm_layout_ram(struct vm *vm)
{
	uint64_t low = vm->ram_size < TVM_MMIO_HOLE_START ? vm->ram_size : TVM_MMIO_HOLE_START;
	vm->nregions = 0;
	vm->regions[vm->nregions++] = (struct mem_region){ .gpa = 0, .size = low, .host = vm->ram };
	if (vm->ram_size > low)
		vm->regions[vm->nregions++] = (struct mem_region){ .gpa = TVM_4G, .size = vm->ram_size - low,
								   .host = vm->ram + low };
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->n; i++) {
		const struct mem_region *r = &m->r[i];
		if (gpa < r->gpa)
			continue;
		uint64_t off = gpa - r->gpa;
		if (off > r->size || len > r->size - off)
			continue;
		if (off == r->size && len == 0)
			continue;
		return r->host + off;
	}
	return NULL;
}

void *gpa_ptr(struct vm *vm, gpa_t gpa, uint64_t len)
{
	struct guest_mem m = { vm->regions, vm->nregions };
	return gmem_ptr(&m, gpa.v, len);
}

struct guest_mem vm_guest_mem(const struct vm *vm) { return (struct guest_mem){ vm->regions, vm->nregions }; }

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
	int n = 0;
#define ADD(a, s, t) do { if (n < max) out[n++] = (struct e820_entry){ (a), (s), (t) }; } while (0)
	for (int i = 0; i < vm->nregions; i++) {
		const struct mem_region *r = &vm->regions[i];
		if (r->gpa == 0 && r->size > 0x100000) {
			ADD(0, 0x9fc00, TVM_E820_RAM);
			ADD(0x9fc00, 0x100000 - 0x9fc00, TVM_E820_RESERVED);
			ADD(0x100000, r->size - 0x100000, TVM_E820_RAM);
		} else {
			ADD(r->gpa, r->size, TVM_E820_RAM);
		}
	}
#undef ADD
	return n;
}

int boot_entry_virt_to_phys(const struct boot_entry *e, uint64_t va, uint64_t *pa)
{
	for (int i = 0; i < e->nsegs && i < TVM_MAX_KSEGS; i++) {
		const struct kernel_seg *s = &e->segs[i];
		if (va >= s->vaddr && va - s->vaddr < s->size) {
			uint64_t off = va - s->vaddr;
			if (__builtin_add_overflow(s->paddr, off, pa))
				return -1;
			return 0;
		}
	}
	return -1;
}
