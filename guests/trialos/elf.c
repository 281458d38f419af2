/* Application ELF loader: validates the (untrusted) image and maps PT_LOAD
 * segments. File pages are mapped straight from the module when possible;
 * only pages that must differ from the file (data/bss boundary, writable
 * partial pages, pages shared by two segments) are copied. */
#include "kernel.h"

#define EM_X86_64 62
#define ET_EXEC 2
#define ET_DYN 3
#define PT_LOAD 1
#define PT_INTERP 3
#define PT_PHDR 6
#define PT_GNU_STACK 0x6474e551
#define PF_X 1
#define PF_W 2
#define PF_R 4

typedef struct {
	u8 e_ident[16];
	u16 e_type, e_machine;
	u32 e_version;
	u64 e_entry, e_phoff, e_shoff;
	u32 e_flags;
	u16 e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} Elf64_Ehdr;

typedef struct {
	u32 p_type, p_flags;
	u64 p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
} Elf64_Phdr;

u64 load_bias;

static bool add_ok(u64 a, u64 b, u64 limit) { return a <= limit && b <= limit - a; }

static void map_segment(const u8 *img, u64 size, u64 phys, const Elf64_Phdr *ph)
{
	u64 vaddr = ph->p_vaddr + load_bias;
	u64 vfile_end = vaddr + ph->p_filesz;
	u64 vmem_end = vaddr + ph->p_memsz;
	u32 prot = (ph->p_flags & PF_R ? PROT_READ : 0) | (ph->p_flags & PF_W ? PROT_WRITE : 0) |
		   (ph->p_flags & PF_X ? PROT_EXEC : 0);
	u64 flags = prot_to_pte(prot ? prot : PROT_READ);
	bool writable = ph->p_flags & PF_W;
	bool direct_ok = (phys & (PAGE_SIZE - 1)) == 0;
	(void)size;

	/* Fast paths: whole file pages straight from the module, whole bss
	 * pages from fresh RAM, one page-table loop each. */
	u64 full_lo = ALIGN_UP(vaddr, PAGE_SIZE), full_hi = ALIGN_DOWN(vfile_end, PAGE_SIZE);
	if (!direct_ok || full_hi <= full_lo)
		full_lo = full_hi = 0;
	else
		map_frames(full_lo, phys + ph->p_offset + (full_lo - vaddr), (full_hi - full_lo) / PAGE_SIZE, flags);
	u64 bss_lo = ALIGN_UP(vfile_end, PAGE_SIZE), bss_hi = ALIGN_UP(vmem_end, PAGE_SIZE);
	if (bss_lo < ALIGN_UP(vaddr, PAGE_SIZE))
		bss_lo = ALIGN_UP(vaddr, PAGE_SIZE);
	if (bss_hi > bss_lo)
		map_anon(bss_lo, bss_hi, prot ? prot : PROT_READ);
	else
		bss_lo = bss_hi = 0;

	for (u64 va = ALIGN_DOWN(vaddr, PAGE_SIZE); va < vmem_end; va += PAGE_SIZE) {
		if ((va >= full_lo && va < full_hi) || (va >= bss_lo && va < bss_hi))
			continue;
		u64 pend = va + PAGE_SIZE;
		u64 fs = va > vaddr ? va : vaddr;          /* file-backed part of this page */
		u64 fe = pend < vfile_end ? pend : vfile_end;
		u64 *pte = pte_get(va, true);
		bool present = *pte & PTE_P;
		u64 file_off_page = ph->p_offset - (vaddr - va);  /* offset of byte `va` */
		if (!present && fs < fe && direct_ok) {
			bool whole = fs == va && fe == pend;
			bool zero_tail = vfile_end < pend && vmem_end > vfile_end;
			if (whole || (!writable && !zero_tail)) {
				*pte = (phys + file_off_page) | flags;
				continue;
			}
		}
		u64 pa;
		if (present && (*pte & PTE_OWN)) {
			pa = *pte & PTE_ADDR;
		} else {
			pa = alloc_page();
			if (present)    /* shared page mapped from the file: private copy */
				copy_page(phys_to_virt(pa), phys_to_virt(*pte & PTE_ADDR));
		}
		if (fs < fe)
			memcpy((u8 *)phys_to_virt(pa) + (fs - va), img + file_off_page + (fs - va), fe - fs);
		u64 f = flags;
		if (present) {   /* merge permissions of both segments */
			if (*pte & PTE_W)
				f |= PTE_W;
			if (!(*pte & PTE_NX))
				f &= ~PTE_NX;
		}
		*pte = pa | f | PTE_OWN;
	}
	vma_set(ALIGN_DOWN(vaddr, PAGE_SIZE), ALIGN_UP(vmem_end, PAGE_SIZE), prot, MAP_ELF_KIND);
}

void load_app(const u8 *img, u64 size, u64 phys, struct app_image *out)
{
	const Elf64_Ehdr *eh = (const void *)img;
	if (size < sizeof *eh || memcmp(eh->e_ident, "\177ELF", 4))
		panic("application is not an ELF file");
	if (eh->e_ident[4] != 2 || eh->e_ident[5] != 1 || eh->e_machine != EM_X86_64)
		panic("application is not a little-endian x86-64 ELF");
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		panic("application ELF is neither executable nor PIE");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 128 ||
	    !add_ok(eh->e_phoff, (u64)eh->e_phnum * sizeof(Elf64_Phdr), size) || (eh->e_phoff & 7))
		panic("application ELF has bad program headers");
	const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff);
	load_bias = eh->e_type == ET_DYN ? PIE_BIAS : 0;
	u64 lo = ~0ull, hi = 0, phdr_va = 0;
	bool have_load = false;
	out->exec_stack = false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_INTERP)
			panic("application is dynamically linked (PT_INTERP); only static executables are supported");
		if (ph[i].p_type == PT_GNU_STACK)
			out->exec_stack = ph[i].p_flags & PF_X;
		if (ph[i].p_type == PT_PHDR)
			phdr_va = ph[i].p_vaddr;
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (!add_ok(ph[i].p_offset, ph[i].p_filesz, size) || ph[i].p_filesz > ph[i].p_memsz ||
		    !add_ok(ph[i].p_vaddr, ph[i].p_memsz, USER_TOP - load_bias) ||
		    ph[i].p_vaddr + load_bias < PAGE_SIZE ||
		    ((ph[i].p_vaddr - ph[i].p_offset) & (PAGE_SIZE - 1)))
			panic("application ELF has a bad PT_LOAD segment %u", i);
		if (ph[i].p_vaddr < lo)
			lo = ph[i].p_vaddr;
		if (ph[i].p_vaddr + ph[i].p_memsz > hi)
			hi = ph[i].p_vaddr + ph[i].p_memsz;
		if (!phdr_va && eh->e_phoff >= ph[i].p_offset && eh->e_phoff - ph[i].p_offset < ph[i].p_filesz)
			phdr_va = ph[i].p_vaddr + (eh->e_phoff - ph[i].p_offset);
		have_load = true;
	}
	if (!have_load)
		panic("application ELF has no PT_LOAD segment");
	if (hi + load_bias > MMAP_TOP - (1ull << 32))
		panic("application ELF segments reach into the mmap area");
	if (eh->e_entry < lo || eh->e_entry >= hi)
		panic("application entry point outside its segments");
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_memsz)
			map_segment(img, size, phys, &ph[i]);
	out->entry = eh->e_entry + load_bias;
	out->phdr = phdr_va ? phdr_va + load_bias : 0;
	out->phnum = eh->e_phnum;
	out->phent = eh->e_phentsize;
	out->brk = ALIGN_UP(hi + load_bias, PAGE_SIZE);
}
