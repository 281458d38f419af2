/* Physical page allocator, direct map, user page tables, VMA bookkeeping. */
#include "kernel.h"

extern u64 boot_pml4[512];
extern u64 pdpt_direct[512];
extern char __kernel_phys_end[];

#define MAX_RAM_REGIONS 64
#define MAX_RESERVED 16

static struct { u64 start, end; } ram[MAX_RAM_REGIONS], reserved[MAX_RESERVED];
static unsigned nr_ram, nr_reserved, bump_idx;
static u64 bump_next;
static u64 free_list;          /* physical address of the first free frame, 0 = none */
u64 user_pml4_pa;
u64 stack_low;

struct vma vmas[TVM_FAULT_MAX_MAPS];
unsigned nr_vmas;

u64 virt_to_phys(const void *va)
{
	u64 v = (u64)va;
	if (v >= KERNEL_VMA)
		return v - KERNEL_VMA;
	return v - DIRECT_MAP;
}

void mm_reserve(u64 start, u64 end)
{
	if (nr_reserved == MAX_RESERVED)
		panic("too many reserved ranges");
	reserved[nr_reserved].start = ALIGN_DOWN(start, PAGE_SIZE);
	reserved[nr_reserved].end = ALIGN_UP(end, PAGE_SIZE);
	nr_reserved++;
}

/* Memory below 1 GiB is reachable through the boot direct map. */
static bool low_ok(u64 pa, u64 len)
{
	return pa < (1ull << 30) && len <= (1ull << 30) - pa;
}

void mm_init(const struct hvm_start_info *si)
{
	if (!si->memmap_paddr || si->memmap_entries == 0 || si->memmap_entries > 128)
		panic("boot info has no usable memory map");
	u64 mmlen = (u64)si->memmap_entries * sizeof(struct hvm_memmap_table_entry);
	if (!low_ok(si->memmap_paddr, mmlen))
		panic("memory map out of range");
	const struct hvm_memmap_table_entry *mm = phys_to_virt(si->memmap_paddr);
	u64 max_ram = 0;
	for (u32 i = 0; i < si->memmap_entries; i++) {
		if (mm[i].type != TVM_E820_RAM || mm[i].size == 0)
			continue;
		u64 s = ALIGN_UP(mm[i].addr, PAGE_SIZE);
		u64 e = mm[i].addr + mm[i].size;
		if (e < mm[i].addr || e > (512ull << 30))
			e = 512ull << 30;       /* direct map limit */
		e = ALIGN_DOWN(e, PAGE_SIZE);
		if (s >= e || nr_ram == MAX_RAM_REGIONS)
			continue;
		/* keep sorted (maps are sorted anyway; insertion sort for safety) */
		unsigned j = nr_ram++;
		while (j > 0 && ram[j - 1].start > s) {
			ram[j] = ram[j - 1];
			j--;
		}
		ram[j].start = s;
		ram[j].end = e;
		if (e > max_ram)
			max_ram = e;
	}
	if (!nr_ram)
		panic("no RAM in memory map");
	mm_reserve(0, 1ull << 20);
	mm_reserve(KERNEL_PHYS, (u64)__kernel_phys_end);
	mm_reserve(si->memmap_paddr, si->memmap_paddr + mmlen);
	mm_reserve(virt_to_phys(si), virt_to_phys(si) + sizeof *si);
	user_pml4_pa = virt_to_phys(boot_pml4);
}

/* Extend the direct map past 1 GiB with 2 MiB pages (only when RAM needs it). */
void mm_extend_direct_map(void);
void mm_extend_direct_map(void)
{
	u64 max_ram = 0;
	for (unsigned i = 0; i < nr_ram; i++)
		if (ram[i].end > max_ram)
			max_ram = ram[i].end;
	u64 gigs = ALIGN_UP(max_ram, 1ull << 30) >> 30;
	for (u64 g = 1; g < gigs && g < 512; g++) {
		u64 pd_pa = alloc_page();
		u64 *pd = phys_to_virt(pd_pa);
		u64 base = (g << 30) | 0x83;
		for (unsigned k = 0; k < 512; k++)
			pd[k] = base + ((u64)k << 21);
		pdpt_direct[g] = pd_pa | 3;
	}
	if (gigs > 1)
		tlb_flush();
}

/* Frames never touched since boot are zero (fresh RAM): hand those out first,
 * recycled frames only when fresh RAM is exhausted (they must be zeroed).
 * [bump_next, bump_limit) is a run of fresh frames free of reservations. */
static u64 bump_limit;

static bool bump_refill(void)
{
	while (bump_idx < nr_ram) {
		u64 p = bump_next > ram[bump_idx].start ? bump_next : ram[bump_idx].start;
		u64 lim = ram[bump_idx].end;
		if (p >= lim) {
			bump_idx++;
			continue;
		}
		bool moved = false;
		for (unsigned i = 0; i < nr_reserved; i++) {
			if (p >= reserved[i].start && p < reserved[i].end) {
				p = reserved[i].end;
				moved = true;
			} else if (reserved[i].start > p && reserved[i].start < lim) {
				lim = reserved[i].start;
			}
		}
		bump_next = p;
		if (moved)
			continue;
		bump_limit = lim;
		return true;
	}
	return false;
}

/* Up to `want` physically contiguous zeroed frames; *got says how many. */
u64 alloc_run(u64 want, u64 *got)
{
	if (bump_next >= bump_limit && !bump_refill()) {
		if (!free_list)
			panic("out of memory");
		u64 p = free_list;
		u64 *v = phys_to_virt(p);
		free_list = v[0];
		zero_page(v);
		*got = 1;
		return p;
	}
	u64 avail = (bump_limit - bump_next) / PAGE_SIZE;
	u64 n = want < avail ? want : avail;
	u64 p = bump_next;
	bump_next += n * PAGE_SIZE;
	*got = n;
	return p;
}

u64 alloc_page(void)
{
	u64 got;
	return alloc_run(1, &got);
}

static void free_page(u64 pa)
{
	*(u64 *)phys_to_virt(pa) = free_list;
	free_list = pa;
}

void tlb_flush(void) { write_cr3(read_cr3()); }

/* Flush a range: a few INVLPGs are much cheaper than a CR3 reload, which
 * under shadow paging throws away every shadow entry of the address space. */
void tlb_flush_range(u64 start, u64 end)
{
	if (end - start > 32 * PAGE_SIZE) {
		tlb_flush();
		return;
	}
	for (u64 va = start; va < end; va += PAGE_SIZE)
		__asm__ volatile("invlpg (%0)" ::"r"(va) : "memory");
}

u64 *pte_get(u64 va, bool create)
{
	u64 *t = phys_to_virt(user_pml4_pa);
	for (int level = 3; level >= 1; level--) {
		unsigned idx = (va >> (12 + 9 * level)) & 511;
		if (!(t[idx] & PTE_P)) {
			if (!create)
				return NULL;
			t[idx] = alloc_page() | PTE_P | PTE_W | PTE_U;
		}
		t = phys_to_virt(t[idx] & PTE_ADDR);
	}
	return &t[(va >> 12) & 511];
}

/* Like pte_get(va, false) but says where to continue when a table is missing. */
static u64 *pte_walk(u64 va, u64 *next)
{
	u64 *t = phys_to_virt(user_pml4_pa);
	for (int level = 3; level >= 1; level--) {
		unsigned shift = 12 + 9 * level;
		unsigned idx = (va >> shift) & 511;
		if (!(t[idx] & PTE_P)) {
			*next = ALIGN_DOWN(va, 1ull << shift) + (1ull << shift);
			return NULL;
		}
		t = phys_to_virt(t[idx] & PTE_ADDR);
	}
	*next = va + PAGE_SIZE;
	return &t[(va >> 12) & 511];
}

void map_page(u64 va, u64 pa, u64 flags)
{
	u64 *pte = pte_get(va, true);
	u64 old = *pte;
	if ((old & (PTE_P | PTE_NONE)) && (old & PTE_OWN) && (old & PTE_ADDR) != pa)
		free_page(old & PTE_ADDR);
	*pte = pa | flags;
}

u64 prot_to_pte(u32 prot)
{
	if (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC)))
		return PTE_NONE;
	u64 f = PTE_P | PTE_U;
	if (prot & PROT_WRITE)
		f |= PTE_W;
	if (!(prot & PROT_EXEC) && have_nx)
		f |= PTE_NX;
	return f;
}

void unmap_range(u64 start, u64 end)
{
	u64 va = start, next;
	while (va < end) {
		u64 *pte = pte_walk(va, &next);
		if (next <= va)
			break;
		if (!pte) {
			va = next;
			continue;
		}
		/* all entries of this page table inside the range, in one loop */
		u64 n = 512 - ((va >> 12) & 511);
		if (n > (end - va) / PAGE_SIZE)
			n = (end - va) / PAGE_SIZE;
		for (u64 i = 0; i < n; i++) {
			u64 e = pte[i];
			if (e) {
				if ((e & PTE_OWN) && (e & (PTE_P | PTE_NONE)))
					free_page(e & PTE_ADDR);
				pte[i] = 0;
			}
		}
		va += n * PAGE_SIZE;
	}
}

/* Change protection of mapped pages; allocate pages for never-backed ones
 * (PROT_NONE reservations made accessible) inside [start, end). */
void protect_range(u64 start, u64 end, u32 prot);
void protect_range(u64 start, u64 end, u32 prot)
{
	u64 flags = prot_to_pte(prot);
	u64 va = start;
	while (va < end) {
		u64 *pte = pte_get(va, flags & PTE_P);
		u64 n = 512 - ((va >> 12) & 511);
		if (n > (end - va) / PAGE_SIZE)
			n = (end - va) / PAGE_SIZE;
		if (!pte) {     /* PROT_NONE over an unmapped table: nothing to do */
			va += n * PAGE_SIZE;
			continue;
		}
		for (u64 i = 0; i < n; i++) {
			u64 e = pte[i];
			if (e & (PTE_P | PTE_NONE))
				pte[i] = (e & (PTE_ADDR | PTE_OWN)) | flags;
			else if (flags & PTE_P)
				pte[i] = alloc_page() | flags | PTE_OWN;
		}
		va += n * PAGE_SIZE;
	}
}

bool map_anon(u64 start, u64 end, u32 prot)
{
	u64 flags = prot_to_pte(prot);
	if (!(flags & PTE_P))
		return true;    /* PROT_NONE: reservation only */
	flags |= PTE_OWN;
	u64 va = start;
	while (va < end) {
		u64 *pte = pte_get(va, true);
		u64 n = 512 - ((va >> 12) & 511);
		if (n > (end - va) / PAGE_SIZE)
			n = (end - va) / PAGE_SIZE;
		while (n) {
			u64 got, pa = alloc_run(n, &got);
			for (u64 i = 0; i < got; i++, pa += PAGE_SIZE) {
				u64 old = pte[i];
				if ((old & PTE_OWN) && (old & (PTE_P | PTE_NONE)))
					free_page(old & PTE_ADDR);
				pte[i] = pa | flags;
			}
			pte += got;
			va += got * PAGE_SIZE;
			n -= got;
		}
	}
	return true;
}

/* Map [va, va + n pages) onto consecutive frames from pa (not owned). */
void map_frames(u64 va, u64 pa, u64 npages, u64 flags)
{
	while (npages) {
		u64 *pte = pte_get(va, true);
		u64 n = 512 - ((va >> 12) & 511);
		if (n > npages)
			n = npages;
		for (u64 i = 0; i < n; i++, pa += PAGE_SIZE) {
			u64 old = pte[i];
			if ((old & PTE_OWN) && (old & (PTE_P | PTE_NONE)))
				free_page(old & PTE_ADDR);
			pte[i] = pa | flags;
		}
		va += n * PAGE_SIZE;
		npages -= n;
	}
}

struct vma *vma_find(u64 addr)
{
	for (unsigned i = 0; i < nr_vmas; i++)
		if (addr >= vmas[i].start && addr < vmas[i].end)
			return &vmas[i];
	return NULL;
}

bool range_free(u64 start, u64 end)
{
	for (unsigned i = 0; i < nr_vmas; i++)
		if (start < vmas[i].end && end > vmas[i].start)
			return false;
	return true;
}

static void vma_remove(unsigned i)
{
	memmove(&vmas[i], &vmas[i + 1], (nr_vmas - i - 1) * sizeof vmas[0]);
	nr_vmas--;
}

void vma_clear(u64 start, u64 end)
{
	for (unsigned i = 0; i < nr_vmas;) {
		struct vma *v = &vmas[i];
		if (end <= v->start || start >= v->end) {
			i++;
			continue;
		}
		if (start <= v->start && end >= v->end) {
			vma_remove(i);
			continue;
		}
		if (start > v->start && end < v->end) {
			if (nr_vmas == TVM_FAULT_MAX_MAPS) {  /* cannot split: keep the tail */
				v->start = end;
				return;
			}
			memmove(&vmas[i + 1], &vmas[i], (nr_vmas - i) * sizeof vmas[0]);
			nr_vmas++;
			vmas[i].end = start;
			vmas[i + 1].start = end;
			return;
		}
		if (start <= v->start)
			v->start = end;
		else
			v->end = start;
		i++;
	}
}

int vma_set(u64 start, u64 end, u32 prot, u32 kind)
{
	vma_clear(start, end);
	unsigned i = 0;
	while (i < nr_vmas && vmas[i].start < start)
		i++;
	if (i > 0 && vmas[i - 1].end == start && vmas[i - 1].prot == prot && vmas[i - 1].kind == kind) {
		vmas[i - 1].end = end;
		if (i < nr_vmas && vmas[i].start == end && vmas[i].prot == prot && vmas[i].kind == kind) {
			vmas[i - 1].end = vmas[i].end;
			vma_remove(i);
		}
		return 0;
	}
	if (i < nr_vmas && vmas[i].start == end && vmas[i].prot == prot && vmas[i].kind == kind) {
		vmas[i].start = start;
		return 0;
	}
	if (nr_vmas == TVM_FAULT_MAX_MAPS)
		return -12;
	memmove(&vmas[i + 1], &vmas[i], (nr_vmas - i) * sizeof vmas[0]);
	nr_vmas++;
	vmas[i] = (struct vma){ start, end, prot, kind };
	return 0;
}

bool user_ok(u64 addr, u64 len, bool write)
{
	if (len == 0)
		return true;
	if (addr >= USER_TOP || len > USER_TOP - addr)
		return false;
	u64 need = PTE_P | PTE_U | (write ? PTE_W : 0);
	u64 *pte = NULL;
	/* one table walk per 2 MiB: guest ring 0 is slow on the CI platform */
	for (u64 va = ALIGN_DOWN(addr, PAGE_SIZE); va < addr + len; va += PAGE_SIZE) {
		if (!pte || !(va & ((1ull << 21) - 1)))
			pte = pte_get(va, false);
		else
			pte++;
		if (!pte || (*pte & need) != need)
			return false;
	}
	return true;
}

/* Validate a NUL-terminated user string of at most max bytes (incl. NUL). */
bool user_str_ok(u64 addr, size_t max, size_t *len)
{
	u64 checked_to = addr;
	for (size_t i = 0; i < max; i++) {
		if (addr + i >= checked_to) {
			if (!user_ok(addr + i, 1, false))
				return false;
			checked_to = ALIGN_DOWN(addr + i, PAGE_SIZE) + PAGE_SIZE;
		}
		if (((const char *)addr)[i] == 0) {
			*len = i;
			return true;
		}
	}
	return false;
}

u64 user_to_phys(u64 va)
{
	u64 *pte = pte_get(va, false);
	if (!pte || !(*pte & PTE_P))
		return 0;
	return (*pte & PTE_ADDR) | (va & (PAGE_SIZE - 1));
}

/* Grow the stack downwards on a fault just below it (rarely needed: 256 KiB
 * are mapped eagerly). */
bool stack_grow(u64 addr, u64 rsp)
{
	u64 floor = STACK_TOP - STACK_MAX;
	if (addr < floor || addr >= stack_low || addr + 65536 + 256 < rsp)
		return false;
	u64 nl = ALIGN_DOWN(addr, PAGE_SIZE);
	nl = nl - floor > 65536 ? nl - 65536 : floor;
	map_anon(nl, stack_low, PROT_READ | PROT_WRITE);
	vma_set(nl, STACK_TOP, PROT_READ | PROT_WRITE, MAP_STACK_KIND);
	stack_low = nl;
	return true;
}

/* Highest end of RAM in the boot memory map (exclusive). */
u64 mm_ram_end(void)
{
	u64 end = 0;
	for (unsigned i = 0; i < nr_ram; i++)
		if (ram[i].end > end)
			end = ram[i].end;
	return end;
}

/* Device MMIO: the 2 MiB page holding physical `pa`, mapped uncached
 * (PCD|PWT) at MMIO_VA + pa (kernel only). Returns the virtual address of
 * pa. One PDPT and one PD per GiB touched, allocated on first use. */
#define MMIO_VA 0xffffc00000000000ull   /* PML4 slot 384 */
void *mmio_map(u64 pa)
{
	if (pa >= (512ull << 30))
		return NULL;
	u64 *pml4 = phys_to_virt(user_pml4_pa);
	unsigned i4 = (MMIO_VA >> 39) & 511;
	if (!(pml4[i4] & PTE_P))
		pml4[i4] = alloc_page() | PTE_P | PTE_W;
	u64 *pdpt = phys_to_virt(pml4[i4] & PTE_ADDR);
	unsigned i3 = pa >> 30;
	if (!(pdpt[i3] & PTE_P))
		pdpt[i3] = alloc_page() | PTE_P | PTE_W;
	u64 *pd = phys_to_virt(pdpt[i3] & PTE_ADDR);
	unsigned i2 = (pa >> 21) & 511;
	if (!(pd[i2] & PTE_P)) {
		pd[i2] = ALIGN_DOWN(pa, 1ull << 21) | PTE_P | PTE_W | PTE_PS | (1ull << 3) /* PWT */ |
			 (1ull << 4) /* PCD */ | (have_nx ? PTE_NX : 0);
		__asm__ volatile("invlpg (%0)" ::"r"(MMIO_VA + ALIGN_DOWN(pa, 1ull << 21)) : "memory");
	}
	return (void *)(MMIO_VA + pa);
}
