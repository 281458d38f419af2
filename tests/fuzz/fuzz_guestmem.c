/* tests/fuzz/fuzz_guestmem.c - libFuzzer harness for the guest page walker
 * and memory readers (vmm/guestmem.c): guest_virt_to_phys, guest_translate,
 * guest_read_virt, guest_read_cpu, with hostile page tables, CR0/CR4/EFER/
 * CR3, segment bases and addresses. Guest RAM is two regions (at 0 and at
 * 4 GiB), each its own exact-size allocation so ASan sees any access past
 * its end. Checks the readers' promises (guestmem.h) and aborts on any
 * broken one: a read never returns more than asked, never wraps past 2^64,
 * and returns exactly the bytes a page-by-page translation finds.
 *
 * Input layout (little-endian; bytes past the end read as 0):
 *   0  u64 cr0, cr3, cr4, efer, cs_base
 *  40  u8  cs_l (bit 0)
 *  41  u8  region sizes: low nibble x 4 KiB at gpa 0, high nibble x 4 KiB at 4 GiB
 *  42  u16 len (bytes to read, at most 0x3000)
 *  44  u64 va
 *  52  ... RAM image: region 0, then region 1
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cpu_state.h"
#include "vmm/guestmem.h"

#define REQUIRE(c)               \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

#define HDR 52

static uint64_t rd(const uint8_t *d, size_t len, size_t off, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		if (off + i < len)
			v |= (uint64_t)d[off + i] << (8 * i);
	return v;
}

/* The bytes [va, va+n) as the guest sees them, one byte at a time. */
static int byte_at(const struct guest_mem *m, const struct cpu_state *cpu, uint64_t va, uint8_t *b)
{
	uint64_t pa;
	if (guest_translate(m, cpu, va, &pa) < 0)
		return -1;
	const uint8_t *p = gmem_ptr(m, pa, 1);
	if (!p)
		return -1;
	*b = *p;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct cpu_state cpu;
	memset(&cpu, 0, sizeof cpu);
	cpu.cr0 = rd(data, len, 0, 8);
	cpu.cr3 = rd(data, len, 8, 8);
	cpu.cr4 = rd(data, len, 16, 8);
	cpu.efer = rd(data, len, 24, 8);
	cpu.cs.base = rd(data, len, 32, 8);
	cpu.cs.l = rd(data, len, 40, 1) & 1;
	unsigned sizes = (unsigned)rd(data, len, 41, 1);
	uint64_t n = rd(data, len, 42, 2) % 0x3001;
	uint64_t va = rd(data, len, 44, 8);
	uint64_t size[2] = { (sizes & 15) * 4096ull, (sizes >> 4) * 4096ull };
	struct mem_region r[2];
	int nr = 0;
	size_t img = HDR;
	for (int i = 0; i < 2; i++) {
		if (!size[i])
			continue;
		uint8_t *h = calloc(1, size[i]);
		REQUIRE(h);
		if (img < len)
			memcpy(h, data + img, len - img < size[i] ? len - img : size[i]);
		img += size[i];
		r[nr++] = (struct mem_region){ .gpa = i ? 0x100000000ull : 0, .size = size[i], .host = h };
	}
	struct guest_mem m = { r, nr };

	/* Translations land in RAM only when they say so (gpa is whatever the
	 * tables say; the readers check it). */
	uint64_t pa;
	if (guest_virt_to_phys(&m, cpu.cr3, va, &pa) == 0)
		REQUIRE((pa & 0xfff) == (va & 0xfff));
	(void)guest_translate(&m, &cpu, va, &pa);

	uint8_t *dst = malloc(n ? n : 1);
	REQUIRE(dst);
	uint64_t got = guest_read_virt(&m, cpu.cr3, va, dst, n);
	REQUIRE(got <= n);
	REQUIRE(va == 0 || got <= 0 - va); /* never past 2^64 */
	uint64_t got2 = guest_read_cpu(&m, &cpu, va, dst, n);
	REQUIRE(got2 <= n);
	REQUIRE(va == 0 || got2 <= 0 - va);
	/* guest_read_cpu returned the bytes byte-by-byte translation finds,
	 * and stopped where it does (at a page it could not read). */
	for (uint64_t i = 0; i < got2; i++) {
		uint8_t b;
		REQUIRE(byte_at(&m, &cpu, va + i, &b) == 0 && b == dst[i]);
	}
	if (got2 < n && (va == 0 || got2 < 0 - va)) {
		uint8_t b;
		REQUIRE(byte_at(&m, &cpu, va + got2, &b) < 0);
	}
	free(dst);
	for (int i = 0; i < nr; i++)
		free(r[i].host);
	return 0;
}
