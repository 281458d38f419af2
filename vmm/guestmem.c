#include "guestmem.h"

#include "cpu_state.h"

#include <stdint.h>
#include <string.h>

#define PTE_P 1ull
#define PTE_PS (1ull << 7)
#define ADDR_MASK 0x000ffffffffff000ull

int guest_walk4(const struct guest_mem *m, uint64_t cr3, uint64_t va, uint64_t *pa, uint64_t *span)
{
	uint64_t table = cr3 & ADDR_MASK;
	for (int level = 3; level >= 0; level--) {
		unsigned shift = 12 + 9 * (unsigned)level;
		uint64_t size = 1ull << shift;
		*span = size - (va & (size - 1));
		uint64_t pte;
		const void *p = gmem_ptr_ro(m, table + ((va >> shift) & 0x1ff) * 8, sizeof(pte));
		if (!p)
			return 0;
		memcpy(&pte, p, sizeof(pte));
		if (!(pte & PTE_P))
			return 0;
		if (level == 0 || ((level == 1 || level == 2) && (pte & PTE_PS))) {
			*pa = (pte & ADDR_MASK & ~(size - 1)) | (va & (size - 1));
			return 1;
		}
		table = pte & ADDR_MASK;
	}
	return 0;
}

int guest_virt_to_phys(const struct guest_mem *m, uint64_t cr3, uint64_t va, uint64_t *gpa)
{
	/* Canonical addresses only. */
	uint64_t top = va >> 47;
	if (top != 0 && top != 0x1ffff)
		return -1;
	uint64_t span;
	return guest_walk4(m, cr3, va, gpa, &span) == 1 ? 0 : -1;
}


static int read_u32(const struct guest_mem *m, uint64_t gpa, uint32_t *v)
{
	const void *p = gmem_ptr_ro(m, gpa, 4);
	if (!p)
		return -1;
	memcpy(v, p, 4);
	return 0;
}

static int read_u64(const struct guest_mem *m, uint64_t gpa, uint64_t *v)
{
	const void *p = gmem_ptr_ro(m, gpa, 8);
	if (!p)
		return -1;
	memcpy(v, p, 8);
	return 0;
}

int guest_translate(const struct guest_mem *m, const struct cpu_state *cpu, uint64_t va, uint64_t *gpa)
{
	bool long_mode = (cpu->efer & 0x400) && cpu->cs.l;
	uint64_t la = long_mode ? va : (cpu->cs.base + va) & 0xffffffffull;
	if (!(cpu->cr0 & 0x80000000u)) { /* paging off */
		*gpa = la;
		return 0;
	}
	if (cpu->efer & 0x400) /* IA-32e paging (4-level) */
		return guest_virt_to_phys(m, cpu->cr3, la, gpa);
	if (cpu->cr4 & 0x20) { /* PAE: 4 PDPTEs, then 2-level with 64-bit entries */
		uint64_t pdpte, pde, pte;
		if (read_u64(m, (cpu->cr3 & 0xffffffe0u) + ((la >> 30) & 3) * 8, &pdpte) < 0 || !(pdpte & PTE_P))
			return -1;
		if (read_u64(m, (pdpte & ADDR_MASK) + ((la >> 21) & 0x1ff) * 8, &pde) < 0 || !(pde & PTE_P))
			return -1;
		if (pde & PTE_PS) {
			*gpa = (pde & ADDR_MASK & ~0x1fffffull) | (la & 0x1fffff);
			return 0;
		}
		if (read_u64(m, (pde & ADDR_MASK) + ((la >> 12) & 0x1ff) * 8, &pte) < 0 || !(pte & PTE_P))
			return -1;
		*gpa = (pte & ADDR_MASK) | (la & 0xfff);
		return 0;
	}
	uint32_t pde, pte; /* 32-bit paging */
	if (read_u32(m, (cpu->cr3 & 0xfffff000u) + ((la >> 22) & 0x3ff) * 4, &pde) < 0 || !(pde & 1))
		return -1;
	if ((pde & 0x80) && (cpu->cr4 & 0x10)) { /* 4 MiB page */
		*gpa = ((uint64_t)(pde & 0xffc00000u)) | (la & 0x3fffff);
		return 0;
	}
	if (read_u32(m, (pde & 0xfffff000u) + ((la >> 12) & 0x3ff) * 4, &pte) < 0 || !(pte & 1))
		return -1;
	*gpa = (pte & 0xfffff000u) | (la & 0xfff);
	return 0;
}

/* Copy page by page through a translation; stops at the first unmapped page
 * and at the top of the address space (a read never wraps to address 0). */
static uint64_t read_translated(const struct guest_mem *m, int (*translate)(const struct guest_mem *, const void *,
									   uint64_t, uint64_t *),
				const void *how, uint64_t va, void *dst, uint64_t len)
{
	if (va != 0 && len > 0 - va)
		len = 0 - va; /* the bytes up to 2^64 */
	uint64_t done = 0;
	while (done < len) {
		uint64_t pa;
		if (translate(m, how, va + done, &pa) < 0)
			break;
		uint64_t chunk = 4096 - (pa & 0xfff);
		if (chunk > len - done)
			chunk = len - done;
		const void *src = gmem_ptr_ro(m, pa, chunk);
		if (!src)
			break;
		memcpy((uint8_t *)dst + done, src, chunk);
		done += chunk;
	}
	return done;
}

static int by_cr3(const struct guest_mem *m, const void *how, uint64_t va, uint64_t *pa)
{
	return guest_virt_to_phys(m, *(const uint64_t *)how, va, pa);
}

static int by_cpu(const struct guest_mem *m, const void *how, uint64_t va, uint64_t *pa)
{
	return guest_translate(m, how, va, pa);
}

uint64_t guest_read_virt(const struct guest_mem *m, uint64_t cr3, uint64_t va, void *dst, uint64_t len)
{
	return read_translated(m, by_cr3, &cr3, va, dst, len);
}

uint64_t guest_read_cpu(const struct guest_mem *m, const struct cpu_state *cpu, uint64_t va, void *dst, uint64_t len)
{
	return read_translated(m, by_cpu, cpu, va, dst, len);
}
