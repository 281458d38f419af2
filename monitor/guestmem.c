#include "guestmem.h"

#include <stdint.h>
#include <string.h>

#define PTE_P 1ull
#define PTE_PS (1ull << 7)
#define ADDR_MASK 0x000ffffffffff000ull

int guest_virt_to_phys(const struct guest_mem *m, uint64_t cr3, uint64_t va, uint64_t *gpa)
{
	/* Canonical addresses only. */
	uint64_t top = va >> 47;
	if (top != 0 && top != 0x1ffff)
		return -1;
	uint64_t table = cr3 & ADDR_MASK;
	for (int level = 3; level >= 0; level--) {
		unsigned idx = (unsigned)((va >> (12 + 9 * level)) & 0x1ff);
		uint64_t pte;
		const void *p = gmem_ptr(m, table + idx * 8ull, sizeof(pte));
		if (!p)
			return -1;
		memcpy(&pte, p, sizeof(pte));
		if (!(pte & PTE_P))
			return -1;
		if (level > 0 && level < 3 && (pte & PTE_PS)) {
			uint64_t page = 1ull << (12 + 9 * level);
			*gpa = (pte & ADDR_MASK & ~(page - 1)) | (va & (page - 1));
			return 0;
		}
		table = pte & ADDR_MASK;
	}
	*gpa = table | (va & 0xfff);
	return 0;
}

uint64_t guest_read_virt(const struct guest_mem *m, uint64_t cr3, uint64_t va, void *dst, uint64_t len)
{
	uint64_t done = 0;
	while (done < len) {
		uint64_t pa;
		if (guest_virt_to_phys(m, cr3, va + done, &pa) < 0)
			break;
		uint64_t chunk = 4096 - (pa & 0xfff);
		if (chunk > len - done)
			chunk = len - done;
		const void *src = gmem_ptr(m, pa, chunk);
		if (!src)
			break;
		memcpy((uint8_t *)dst + done, src, chunk);
		done += chunk;
	}
	return done;
}
