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

static const struct mem_region *find_region(const struct guest_mem *m, uint64_t gpa, uint64_t len, uint64_t *offp)
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
		*offp = off;
		return r;
	}
	return NULL;
}

const void *gmem_ptr_ro(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t off;
	const struct mem_region *r = find_region(m, gpa, len, &off);
	return r ? r->host + off : NULL;
}

void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t off;
	const struct mem_region *r = find_region(m, gpa, len, &off);
	if (!r)
		return NULL;
	if (r->vmm_dirty && len) {
		for (uint64_t pg = off / 4096, last = (off + len - 1) / 4096; pg <= last; pg++)
			__atomic_fetch_or(&r->vmm_dirty[pg / 64], 1ull << (pg % 64), __ATOMIC_RELAXED);
	}
	return r->host + off;
}

void *gpa_ptr(struct vm *vm, gpa_t gpa, uint64_t len)
{
	struct guest_mem m = { vm->regions, vm->nregions };
	return gmem_ptr(&m, gpa.v, len);
}

struct guest_mem vm_guest_mem(const struct vm *vm) { return (struct guest_mem){ vm->regions, vm->nregions }; }

int gpa_read(struct vm *vm, gpa_t gpa, void *dst, uint64_t len)
{
	struct guest_mem m = { vm->regions, vm->nregions };
	const void *p = gmem_ptr_ro(&m, gpa.v, len);
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
