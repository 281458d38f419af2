/* reporter/elfdump.c - guest-physical ELF dump and the sparse writer.
 * Format facts: DESIGN.md "Formats"; QEMU target/i386/arch_dump.c (note
 * layout); Linux include/uapi/linux/elfcore.h (elf_prstatus). */
#include "elfdump.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/util.h"

#define PAGE 4096ull
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))

/* ---- sparse writing ---------------------------------------------------- */

int dump_is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	/* Word loop first: most non-zero pages differ in their first bytes. */
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		if (w)
			return 0;
	}
	for (; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

int dump_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *what,
		    struct tvm_err *err)
{
	int rc = pwrite_all(fd, buf, len, off);
	if (rc == -EIO)
		return tvm_seterr(err, "cannot write %s at offset 0x%llx: the write made no progress (disk full?)", what,
				  (unsigned long long)off);
	if (rc < 0)
		return tvm_seterr(err, "cannot write %s at offset 0x%llx: %s", what, (unsigned long long)off,
				  strerror(-rc));
	return 0;
}

/* The zero-page oracle: which host pages of a RAM region the host never
 * populated, so that they read as zero without being touched (reading them
 * would fault in the shared zero page, and comparing costs time).
 * Only private anonymous memory qualifies (a non-resident page of a file
 * mapping holds file data); checked in /proc/self/maps.
 *  - /proc/self/pagemap: a page neither present (bit 63) nor swapped
 *    (bit 62) has never been written (or was discarded): zero.
 *  - else mincore(), but only when no swap is active: mincore cannot tell
 *    a swapped-out page from an untouched one.
 *  - else nothing is skipped unread. */
enum oracle_mode { ORACLE_NONE, ORACLE_PAGEMAP, ORACLE_MINCORE };
struct zero_oracle {
	enum oracle_mode mode;
	int pagemap_fd;
};

static int range_is_private_anon(uintptr_t start, uintptr_t end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return 0;
	char line[512];
	uintptr_t cur = start;
	int ok = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi, ino;
		char perms[8], dev[16];
		unsigned long long offs;
		int pos = 0;
		if (sscanf(line, "%lx-%lx %7s %llx %15s %lu %n", &lo, &hi, perms, &offs, dev, &ino, &pos) < 6)
			continue;
		if (hi <= cur)
			continue;
		if (lo > cur)
			break; /* a gap: not all mapped */
		const char *path = line + pos;
		bool anon_name = path[0] == '\n' || path[0] == 0 || !strncmp(path, "[heap]", 6) ||
				 !strncmp(path, "[anon:", 6);
		if (ino != 0 || perms[3] != 'p' || !anon_name)
			break;
		cur = hi;
		if (cur >= end) {
			ok = 1;
			break;
		}
	}
	fclose(f);
	return ok;
}

static int swap_active(void)
{
	FILE *f = fopen("/proc/swaps", "re");
	if (!f)
		return 1; /* unknown: assume the worst */
	char line[256];
	int lines = 0;
	while (fgets(line, sizeof line, f))
		lines++;
	fclose(f);
	return lines > 1;
}

static void oracle_open(struct zero_oracle *o, const uint8_t *host, uint64_t len)
{
	o->mode = ORACLE_NONE;
	o->pagemap_fd = -1;
	if (sysconf(_SC_PAGESIZE) != (long)PAGE || ((uintptr_t)host & (PAGE - 1)) || len == 0)
		return;
	if (!range_is_private_anon((uintptr_t)host, (uintptr_t)host + len))
		return;
	o->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (o->pagemap_fd >= 0) {
		o->mode = ORACLE_PAGEMAP;
		return;
	}
	if (!swap_active())
		o->mode = ORACLE_MINCORE;
}

static void oracle_close(struct zero_oracle *o)
{
	if (o->pagemap_fd >= 0)
		close(o->pagemap_fd);
	o->pagemap_fd = -1;
}

#define ORACLE_BATCH 512u /* pages per query (2 MiB) */

/* untouched[k] = 1 when page k of [p, p + n pages) is known to be zero
 * without reading it. */
static void oracle_query(struct zero_oracle *o, const uint8_t *p, unsigned n, uint8_t *untouched)
{
	memset(untouched, 0, n);
	if (o->mode == ORACLE_PAGEMAP) {
		uint64_t ent[ORACLE_BATCH];
		off_t off = (off_t)(((uintptr_t)p / PAGE) * 8);
		ssize_t r = pread(o->pagemap_fd, ent, n * 8ull, off);
		if (r != (ssize_t)(n * 8ull))
			return;
		for (unsigned k = 0; k < n; k++)
			untouched[k] = !(ent[k] & (3ull << 62));
	} else if (o->mode == ORACLE_MINCORE) {
		unsigned char vec[ORACLE_BATCH];
		if (mincore((void *)p, n * PAGE, vec) < 0)
			return;
		for (unsigned k = 0; k < n; k++)
			untouched[k] = !(vec[k] & 1);
	}
}

/* Dense mode (non-regular files, where a hole would not read back as zero)
 * writes every page. */
static int write_range(int fd, uint64_t off, const uint8_t *host, uint64_t len, bool sparse,
		       const char *what, struct tvm_err *err)
{
	if (!sparse)
		return dump_pwrite_all(fd, host, len, off, what, err);
	struct zero_oracle o;
	oracle_open(&o, host, len);
	uint8_t untouched[ORACLE_BATCH];
	uint64_t run_start = 0, run_len = 0; /* pending non-zero bytes */
	int rc = 0;
	for (uint64_t pos = 0; pos < len && rc == 0;) {
		uint64_t left_pages = (len - pos + PAGE - 1) / PAGE;
		unsigned n = left_pages > ORACLE_BATCH ? ORACLE_BATCH : (unsigned)left_pages;
		oracle_query(&o, host + pos, n, untouched);
		for (unsigned k = 0; k < n && rc == 0; k++, pos += PAGE) {
			uint64_t plen = len - pos < PAGE ? len - pos : PAGE;
			bool zero = untouched[k] || dump_is_zero(host + pos, plen);
			if (!zero) {
				if (run_len == 0)
					run_start = pos;
				run_len += plen;
			}
			if (run_len && (zero || run_len >= (8u << 20))) {
				rc = dump_pwrite_all(fd, host + run_start, run_len, off + run_start, what, err);
				run_len = 0;
			}
		}
	}
	if (rc == 0 && run_len)
		rc = dump_pwrite_all(fd, host + run_start, run_len, off + run_start, what, err);
	oracle_close(&o);
	return rc;
}

static bool fd_is_regular(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

int dump_write_sparse(int fd, uint64_t off, const uint8_t *host, uint64_t len, const char *what,
		      struct tvm_err *err)
{
	return write_range(fd, off, host, len, fd_is_regular(fd), what, err);
}

int dump_finish(int fd, uint64_t size, const char *what, struct tvm_err *err)
{
	if (!fd_is_regular(fd))
		return 0;
	if (ftruncate(fd, (off_t)size) < 0)
		return tvm_seterr(err, "cannot set the size of %s to %llu bytes: %s", what,
				  (unsigned long long)size, strerror(errno));
	if (fsync(fd) < 0)
		return tvm_seterr(err, "cannot flush %s to disk: %s", what, strerror(errno));
	return 0;
}

/* ---- notes --------------------------------------------------------------- */

int dump_note_add(struct notebuf *nb, const char *name, uint32_t type, const void *desc, size_t descsz)
{
	size_t namesz = strlen(name) + 1;
	size_t need = 12 + ALIGN_UP(namesz, 4) + ALIGN_UP(descsz, 4);
	if (nb->len + need > nb->cap) {
		size_t cap = nb->cap ? nb->cap : 4096;
		while (cap < nb->len + need)
			cap *= 2;
		uint8_t *np = realloc(nb->p, cap);
		if (!np)
			return -1;
		nb->p = np;
		nb->cap = cap;
	}
	uint8_t *q = nb->p + nb->len;
	memset(q, 0, need);
	uint32_t hdr[3] = { (uint32_t)namesz, (uint32_t)descsz, type };
	memcpy(q, hdr, 12);
	memcpy(q + 12, name, namesz);
	if (descsz)
		memcpy(q + 12 + ALIGN_UP(namesz, 4), desc, descsz);
	nb->len += need;
	return 0;
}

static inline void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static inline void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }

/* cpu_state.gpr order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/* x86-64 struct elf_prstatus (0x150 bytes): pr_pid at 0x20, pr_reg at 0x70
 * (user_regs_struct), pr_fpvalid at 0x148. */
static void fill_prstatus(uint8_t d[TVM_PRSTATUS_SIZE], const struct cpu_state *c)
{
	memset(d, 0, TVM_PRSTATUS_SIZE);
	put32(d, 0x20, (uint32_t)c->index + 1);
	const uint64_t *g = c->gpr;
	uint64_t r[27] = {
		g[R15], g[R14], g[R13], g[R12], g[RBP], g[RBX], g[R11], g[R10], g[R9], g[R8],
		g[RAX], g[RCX], g[RDX], g[RSI], g[RDI],
		0, /* orig_rax: QEMU writes 0 */
		c->rip, c->cs.selector, c->rflags, g[RSP], c->ss.selector,
		c->fs.base, c->gs.base, c->ds.selector, c->es.selector, c->fs.selector, c->gs.selector,
	};
	memcpy(d + 0x70, r, sizeof r);
}

/* QEMU's SegmentCache.flags: the descriptor's high dword bits. */
static uint32_t seg_flags(const struct seg_state *s)
{
	return (uint32_t)(s->type & 0xf) << 8 | (uint32_t)(s->s & 1) << 12 | (uint32_t)(s->dpl & 3) << 13 |
	       (uint32_t)((s->present && !s->unusable) & 1) << 15 | (uint32_t)(s->avl & 1) << 20 |
	       (uint32_t)(s->l & 1) << 21 | (uint32_t)(s->db & 1) << 22 | (uint32_t)(s->g & 1) << 23;
}

static void put_seg(uint8_t *d, size_t off, uint32_t sel, uint32_t limit, uint32_t flags, uint64_t base)
{
	put32(d, off, sel);
	put32(d, off + 4, limit);
	put32(d, off + 8, flags);
	put32(d, off + 12, 0);
	put64(d, off + 16, base);
}

/* QEMUCPUState v1 (x86_64): version, size, rax rbx rcx rdx rsi rdi rsp rbp,
 * r8..r15, rip, rflags (0x08..0x98), segments cs ds es fs gs ss ldt tr gdt
 * idt (24 bytes each, 0x98..0x188), cr[5] (0x188), kernel_gs_base (0x1b0). */
static void fill_qemu(uint8_t d[TVM_QEMU_CPUSTATE_SIZE], const struct cpu_state *c)
{
	memset(d, 0, TVM_QEMU_CPUSTATE_SIZE);
	put32(d, 0, 1);
	put32(d, 4, TVM_QEMU_CPUSTATE_SIZE);
	const uint64_t *g = c->gpr;
	uint64_t r[18] = { g[RAX], g[RBX], g[RCX], g[RDX], g[RSI], g[RDI], g[RSP], g[RBP],
			   g[R8], g[R9], g[R10], g[R11], g[R12], g[R13], g[R14], g[R15],
			   c->rip, c->rflags };
	memcpy(d + 8, r, sizeof r);
	const struct seg_state *segs[8] = { &c->cs, &c->ds, &c->es, &c->fs, &c->gs, &c->ss, &c->ldt, &c->tr };
	size_t off = 0x98;
	for (int i = 0; i < 8; i++, off += 24)
		put_seg(d, off, segs[i]->selector, segs[i]->limit, seg_flags(segs[i]), segs[i]->base);
	put_seg(d, off, 0, c->gdt.limit, 0, c->gdt.base);
	off += 24;
	put_seg(d, off, 0, c->idt.limit, 0, c->idt.base);
	off += 24;
	uint64_t cr[5] = { c->cr0, 0, c->cr2, c->cr3, c->cr4 };
	memcpy(d + off, cr, sizeof cr);
	put64(d, 0x1b0, c->msr_kernel_gs_base);
}

static int build_notes(const struct crash_state *cs, struct notebuf *nb, struct tvm_err *err)
{
	uint8_t pr[TVM_PRSTATUS_SIZE], q[TVM_QEMU_CPUSTATE_SIZE];
	for (int i = 0; i < cs->ncpus; i++) {
		fill_prstatus(pr, &cs->cpu[i]);
		if (dump_note_add(nb, "CORE", NT_PRSTATUS, pr, sizeof pr) < 0)
			goto oom;
	}
	for (int i = 0; i < cs->ncpus; i++) {
		fill_qemu(q, &cs->cpu[i]);
		if (dump_note_add(nb, "QEMU", 0, q, sizeof q) < 0)
			goto oom;
	}
	if (cs->vmcoreinfo && cs->vmcoreinfo_len) {
		if (cs->vmcoreinfo_len > TVM_VMCOREINFO_MAX)
			tvm_log("core.elf: VMCOREINFO of %zu bytes left out (over %u)", cs->vmcoreinfo_len,
				TVM_VMCOREINFO_MAX);
		else if (dump_note_add(nb, "VMCOREINFO", 0, cs->vmcoreinfo, cs->vmcoreinfo_len) < 0)
			goto oom;
	}
	return 0;
oom:
	return tvm_seterr(err, "out of memory building the ELF dump notes");
}

int write_core_elf(const struct crash_state *cs, int fd, struct tvm_err *err)
{
	if (!cs || cs->ncpus < 1 || !cs->cpu || cs->mem.n < 1 || !cs->mem.r)
		return tvm_seterr(err, "ELF dump: no vCPU state or no guest memory to dump");
	if (cs->mem.n > 0xfff0)
		return tvm_seterr(err, "ELF dump: too many RAM regions (%d)", cs->mem.n);
	bool regular = fd_is_regular(fd);
	if (regular && ftruncate(fd, 0) < 0)
		return tvm_seterr(err, "cannot truncate the ELF dump file: %s", strerror(errno));

	struct notebuf nb = { 0 };
	if (build_notes(cs, &nb, err) < 0) {
		free(nb.p);
		return -1;
	}
	int phnum = 1 + cs->mem.n;
	uint64_t note_off = sizeof(Elf64_Ehdr) + (uint64_t)phnum * sizeof(Elf64_Phdr);
	uint64_t data_off = ALIGN_UP(note_off + nb.len, PAGE);
	size_t hdr_len = (size_t)note_off;
	Elf64_Phdr *ph;
	uint8_t *hdr = dump_core_header((unsigned)phnum, &ph);
	if (!hdr) {
		free(nb.p);
		return tvm_seterr(err, "out of memory building the ELF dump headers");
	}
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = nb.len, .p_memsz = nb.len,
			      .p_align = 4 };
	uint64_t off = data_off;
	int rc = -1;
	for (int i = 0; i < cs->mem.n; i++) {
		const struct mem_region *r = &cs->mem.r[i];
		if (!r->host && r->size) {
			tvm_seterr(err, "ELF dump: RAM region %d has no host mapping", i);
			goto out;
		}
		ph[1 + i] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W | PF_X, .p_offset = off,
					  .p_vaddr = r->gpa, .p_paddr = r->gpa, .p_filesz = r->size,
					  .p_memsz = r->size, .p_align = 0 };
		if (add_overflows(off, ALIGN_UP(r->size, PAGE), &off) || off > (uint64_t)INT64_MAX) {
			tvm_seterr(err, "ELF dump: RAM regions too large for a file");
			goto out;
		}
	}
	if (dump_pwrite_all(fd, hdr, hdr_len, 0, "the ELF dump headers", err) < 0 ||
	    dump_pwrite_all(fd, nb.p, nb.len, note_off, "the ELF dump notes", err) < 0)
		goto out;
	if (!regular) {
		/* No holes possible: fill the gap up to the first page of data. */
		static const uint8_t zeros[PAGE];
		if (dump_pwrite_all(fd, zeros, data_off - note_off - nb.len, note_off + nb.len,
				    "the ELF dump padding", err) < 0)
			goto out;
	}
	for (int i = 0; i < cs->mem.n; i++) {
		const struct mem_region *r = &cs->mem.r[i];
		if (write_range(fd, ph[1 + i].p_offset, r->host, r->size, regular, "the ELF dump memory", err) < 0)
			goto out;
	}
	rc = dump_finish(fd, off, "the ELF dump", err);
out:
	free(hdr);
	free(nb.p);
	return rc;
}

uint8_t *dump_core_header(unsigned phnum, Elf64_Phdr **phdrs)
{
	uint8_t *hdr = calloc(1, sizeof(Elf64_Ehdr) + (size_t)phnum * sizeof(Elf64_Phdr));
	if (!hdr)
		return NULL;
	Elf64_Ehdr *eh = (Elf64_Ehdr *)hdr;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh->e_type = ET_CORE;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = (Elf64_Half)phnum;
	*phdrs = (Elf64_Phdr *)(hdr + sizeof(Elf64_Ehdr));
	return hdr;
}
