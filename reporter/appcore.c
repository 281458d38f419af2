/* reporter/appcore.c - ELF process core of a crashed trialos application.
 * Format facts: Linux fs/binfmt_elf.c, include/uapi/linux/elfcore.h. */
#include "appcore.h"

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/guestmem.h"
#include "../vmm/util.h"
#include "elfdump.h"

#define PAGE 4096ull
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define USER_TOP (1ull << 47)

#define PRPSINFO_SIZE 0x88u
#define SIGINFO_SIZE 128u
#ifndef NT_X86_XSAVE_LAYOUT
#define NT_X86_XSAVE_LAYOUT 0x205
#endif
#define XSAVE_LEGACY 576u  /* the FXSAVE image and the XSAVE header */
#define XSAVE_USER_MASK 0x2ffull /* x87 .. AVX-512, PKRU: what Linux shows user space */
#define APP_MAX_SEGS 64

static inline void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static inline void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }


struct pending {
	const uint8_t *host;
	uint64_t off, len;
};

static int flush(int fd, struct pending *pd, struct tvm_err *err)
{
	int rc = 0;
	if (pd->len)
		rc = dump_pwrite_all(fd, pd->host, pd->len, pd->off, "the application core memory", err);
	pd->len = 0;
	return rc;
}

/* Write [start, start + filesz) of the application's address space at file
 * offset off: present non-zero pages only. */
static int write_mapping(int fd, const struct crash_state *cs, uint64_t start, uint64_t filesz, uint64_t off,
			 bool dense, struct tvm_err *err)
{
	uint64_t cr3 = cs->app->f.page_table_root;
	struct pending pd = { 0 };
	static const uint8_t zeros[PAGE];
	for (uint64_t pos = 0; pos < filesz;) {
		uint64_t pa, span;
		int mapped = guest_walk4(&cs->mem, cr3, start + pos, &pa, &span);
		uint64_t step = span < filesz - pos ? span : filesz - pos;
		if (!mapped) {
			if (flush(fd, &pd, err) < 0)
				return -1;
			if (dense)
				for (uint64_t k = 0; k < step; k += PAGE)
					if (dump_pwrite_all(fd, zeros, PAGE, off + pos + k, "the application core memory",
							    err) < 0)
						return -1;
			pos += step;
			continue;
		}
		/* One 4 KiB page at a time (start and pos are page aligned). */
		const uint8_t *h = gmem_ptr(&cs->mem, pa, PAGE);
		if (!h || (!dense && dump_is_zero(h, PAGE))) {
			if (flush(fd, &pd, err) < 0)
				return -1;
			if (dense && dump_pwrite_all(fd, zeros, PAGE, off + pos, "the application core memory", err) < 0)
				return -1;
		} else if (pd.len && pd.host + pd.len == h && pd.off + pd.len == off + pos && pd.len < (8u << 20)) {
			pd.len += PAGE;
		} else {
			if (flush(fd, &pd, err) < 0)
				return -1;
			pd = (struct pending){ h, off + pos, PAGE };
		}
		pos += PAGE;
	}
	return flush(fd, &pd, err);
}

/* ---- notes ---- */

/* pr_psargs: argv[0..argc) joined by spaces, read through the page tables;
 * 0 when argv is not readable. */
static int read_psargs(const struct crash_state *cs, char out[80])
{
	const struct tvm_fault *f = &cs->app->f;
	uint64_t cr3 = f->page_table_root;
	if (f->argc == 0 || f->argv_gva == 0)
		return 0;
	uint64_t argc = f->argc > 64 ? 64 : f->argc;
	size_t used = 0;
	for (uint64_t i = 0; i < argc && used < 79; i++) {
		uint64_t p;
		if (guest_read_virt(&cs->mem, cr3, f->argv_gva + 8 * i, &p, 8) != 8)
			return 0;
		char s[80];
		uint64_t got = guest_read_virt(&cs->mem, cr3, p, s, sizeof s - 1);
		s[got] = 0;
		size_t n = strnlen(s, got);
		if (n == got && got < sizeof s - 1)
			return 0; /* no NUL before an unmapped page */
		if (i > 0)
			out[used++] = ' ';
		for (size_t k = 0; k < n && used < 79; k++)
			out[used++] = s[k];
	}
	out[used] = 0;
	return used > 0;
}

/* The application file's PT_LOAD segments with file contents (libelf):
 * how many (at most max), 0 when it cannot be read as an x86-64 ELF. */
struct file_seg { uint64_t vaddr, filesz, offset; };
static int app_segments(const char *path, struct file_seg *seg, int max, bool *pie)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	int n = 0;
	Elf *e = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
	GElf_Ehdr eh;
	size_t phnum;
	if (e && elf_kind(e) == ELF_K_ELF && gelf_getehdr(e, &eh) && eh.e_machine == EM_X86_64 &&
	    (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) && elf_getphdrnum(e, &phnum) == 0) {
		*pie = eh.e_type == ET_DYN;
		for (size_t i = 0; i < phnum && n < max; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_LOAD || !ph.p_filesz)
				continue;
			if (ph.p_filesz > ph.p_memsz || ph.p_vaddr > USER_TOP || ph.p_filesz > USER_TOP - ph.p_vaddr ||
			    (uint64_t)ph.p_offset > (uint64_t)st.st_size || ((ph.p_vaddr ^ ph.p_offset) & (PAGE - 1)))
				continue;
			seg[n++] = (struct file_seg){ ph.p_vaddr, ph.p_filesz, ph.p_offset };
		}
	}
	if (e)
		elf_end(e);
	close(fd);
	return n;
}

/* [start, end) lies in the fault record's ELF-segment mappings. */
static bool in_elf_maps(const struct app_fault *app, uint64_t start, uint64_t end)
{
	unsigned nmaps = app->nmaps > TVM_FAULT_MAX_MAPS ? TVM_FAULT_MAX_MAPS : app->nmaps;
	for (uint64_t va = start; va < end;) {
		unsigned i = 0;
		while (i < nmaps && !(app->maps[i].kind == 1 && app->maps[i].start <= va && va < app->maps[i].end))
			i++;
		if (i == nmaps)
			return false;
		va = app->maps[i].end;
	}
	return true;
}

/* NT_FILE, as Linux writes it: count, page size, {start, end, offset in
 * pages} per file mapping, then the names. The file mappings are the
 * application's segments with contents, where the fault record shows them
 * mapped (a PIE's load bias from its lowest mapping); the name is its path
 * on this host (cs->app_file), so that a debugger finds it. Left out when
 * there is no such file or mapping. */
static int file_note(const struct crash_state *cs, struct notebuf *nb)
{
	if (!cs->app_file || cs->app_file[0] != '/')
		return 0;
	struct file_seg seg[APP_MAX_SEGS];
	bool pie = false;
	int n = app_segments(cs->app_file, seg, APP_MAX_SEGS, &pie);
	if (n == 0)
		return 0;
	uint64_t bias = 0;
	if (pie) {
		uint64_t low = UINT64_MAX, lowmap = UINT64_MAX;
		for (int i = 0; i < n; i++)
			low = seg[i].vaddr < low ? seg[i].vaddr : low;
		for (unsigned i = 0; i < cs->app->nmaps && i < TVM_FAULT_MAX_MAPS; i++)
			if (cs->app->maps[i].kind == 1 && cs->app->maps[i].start < lowmap)
				lowmap = cs->app->maps[i].start;
		low &= ~(PAGE - 1);
		if (lowmap == UINT64_MAX || lowmap < low)
			return 0;
		bias = lowmap - low;
	}
	size_t name_len = strlen(cs->app_file) + 1;
	size_t cap = 16 + (size_t)n * (24 + name_len);
	uint8_t *d = malloc(cap);
	if (!d)
		return -1;
	uint64_t count = 0;
	for (int i = 0; i < n; i++) {
		uint64_t lo = seg[i].vaddr + bias, hi = lo + seg[i].filesz;
		if (hi < lo || hi > USER_TOP)
			continue;
		lo &= ~(PAGE - 1);
		hi = ALIGN_UP(hi, PAGE);
		if (!in_elf_maps(cs->app, lo, hi))
			continue;
		put64(d, 16 + count * 24, lo);
		put64(d, 16 + count * 24 + 8, hi);
		put64(d, 16 + count * 24 + 16, (seg[i].offset & ~(PAGE - 1)) / PAGE);
		count++;
	}
	/* The names follow the entries. */
	size_t at = 16 + (size_t)count * 24;
	for (uint64_t i = 0; i < count; i++, at += name_len)
		memcpy(d + at, cs->app_file, name_len);
	put64(d, 0, count);
	put64(d, 8, PAGE);
	int r = count ? dump_note_add(nb, "CORE", NT_FILE, d, at) : 0;
	free(d);
	return r;
}

/* NT_X86_XSTATE (owner LINUX, as ptrace's PTRACE_GETREGSET gives it): the
 * crashing vCPU's XSAVE image in the standard format (KVM_GET_XSAVE), cut
 * after the last component XCR0 enables, with XCR0 in the first
 * software-reserved word (byte 464) where gdb and lldb read it; and
 * NT_X86_XSAVE_LAYOUT with each component's size and offset. Offsets and
 * sizes are this host's CPUID leaf 0xD (the layout KVM wrote in); a
 * component that does not fit KVM's 4 KiB image is left out of XCR0. */
static int xstate_notes(const struct cpu_state *c, struct notebuf *nb)
{
	if (!c->xsave_valid || __get_cpuid_max(0, NULL) < 0xd)
		return 0;
	/* x87 and SSE always: their state is the legacy area's under
	 * CR4.OSFXSR whatever XCR0 says (Linux's XCR0 always has both), and
	 * KVM fills that area in. */
	uint64_t xcr0 = (c->xcr0 | 3) & XSAVE_USER_MASK;
	uint32_t size = XSAVE_LEGACY, layout[16][4];
	int nl = 0;
	for (unsigned i = 2; i < 10; i++) {
		if (!(xcr0 & (1ull << i)))
			continue;
		unsigned a, b, cx, dx;
		__cpuid_count(0xd, i, a, b, cx, dx);
		(void)cx, (void)dx;
		if (a == 0 || b < XSAVE_LEGACY || (uint64_t)a + b > sizeof c->xsave) {
			xcr0 &= ~(1ull << i);
			continue;
		}
		if (a + b > size)
			size = a + b;
		layout[nl][0] = i, layout[nl][1] = a, layout[nl][2] = b, layout[nl][3] = 0;
		nl++;
	}
	uint8_t x[sizeof c->xsave];
	memcpy(x, c->xsave, size);
	memset(x + 464, 0, 48);
	put64(x, 464, xcr0);
	uint64_t bv;
	memcpy(&bv, x + 512, 8);
	put64(x, 512, bv & xcr0);
	if (dump_note_add(nb, "LINUX", NT_X86_XSTATE, x, size) < 0)
		return -1;
	return nl ? dump_note_add(nb, "LINUX", NT_X86_XSAVE_LAYOUT, layout, (size_t)nl * 16) : 0;
}

static int build_notes(const struct crash_state *cs, struct notebuf *nb)
{
	const struct tvm_fault *f = &cs->app->f;
	bool have_fp = cs->cpu && cs->crashing_cpu >= 0 && cs->crashing_cpu < cs->ncpus;

	uint8_t pr[TVM_PRSTATUS_SIZE] = { 0 };
	put32(pr, 0x00, f->signo);          /* pr_info.si_signo */
	pr[0x0c] = (uint8_t)f->signo;       /* pr_cursig (short) */
	pr[0x0d] = (uint8_t)(f->signo >> 8);
	put32(pr, 0x20, 1); /* pr_pid */
	put32(pr, 0x28, 1); /* pr_pgrp */
	put32(pr, 0x2c, 1); /* pr_sid */
	_Static_assert(sizeof f->regs == 27 * 8, "user_regs_struct");
	memcpy(pr + 0x70, &f->regs, sizeof f->regs);
	put32(pr, 0x148, have_fp ? 1 : 0); /* pr_fpvalid */
	if (dump_note_add(nb, "CORE", NT_PRSTATUS, pr, sizeof pr) < 0)
		return -1;

	uint8_t ps[PRPSINFO_SIZE] = { 0 };
	ps[1] = 'R'; /* pr_sname; pr_state 0 = running */
	put32(ps, 0x18, 1); /* pr_pid */
	put32(ps, 0x20, 1); /* pr_pgrp */
	put32(ps, 0x24, 1); /* pr_sid */
	char name[sizeof f->app_name + 1];
	memcpy(name, f->app_name, sizeof f->app_name);
	name[sizeof f->app_name] = 0;
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	memcpy(ps + 0x28, base, strnlen(base, 15));
	char args[80];
	if (!read_psargs(cs, args))
		snprintf(args, sizeof args, "%s", name);
	memcpy(ps + 0x38, args, strnlen(args, 79));
	if (dump_note_add(nb, "CORE", NT_PRPSINFO, ps, sizeof ps) < 0)
		return -1;

	uint8_t si[SIGINFO_SIZE] = { 0 };
	put32(si, 0, f->signo);
	put32(si, 8, (uint32_t)f->si_code);
	if (f->vector != TVM_FAULT_NO_VECTOR && (f->signo == 4 || f->signo == 5 || f->signo == 7 ||
						 f->signo == 8 || f->signo == 11))
		put64(si, 16, f->addr); /* si_addr */
	else
		put32(si, 16, 1); /* si_pid (si_uid 0) */
	if (dump_note_add(nb, "CORE", NT_SIGINFO, si, sizeof si) < 0)
		return -1;

	if (f->auxv_gva && f->auxv_len >= 16) {
		uint64_t len = f->auxv_len > TVM_APPCORE_AUXV_MAX ? TVM_APPCORE_AUXV_MAX : f->auxv_len;
		len &= ~15ull;
		uint8_t auxv[TVM_APPCORE_AUXV_MAX];
		if (guest_read_virt(&cs->mem, f->page_table_root, f->auxv_gva, auxv, len) == len &&
		    dump_note_add(nb, "CORE", NT_AUXV, auxv, len) < 0)
			return -1;
	}
	if (file_note(cs, nb) < 0)
		return -1;
	if (have_fp && dump_note_add(nb, "CORE", NT_FPREGSET, cs->cpu[cs->crashing_cpu].fxsave, 512) < 0)
		return -1;
	if (have_fp && xstate_notes(&cs->cpu[cs->crashing_cpu], nb) < 0)
		return -1;
	return 0;
}

/* End of the last page of [start, end) present in the page tables (start
 * when none): the file extent a mapping needs. */
static uint64_t present_end(const struct crash_state *cs, uint64_t start, uint64_t end)
{
	uint64_t last = start;
	for (uint64_t va = start; va < end;) {
		uint64_t pa, span;
		int mapped = guest_walk4(&cs->mem, cs->app->f.page_table_root, va, &pa, &span);
		uint64_t next = span < end - va ? va + span : end;
		if (mapped)
			last = next;
		va = next;
	}
	return last;
}

static bool map_valid(const struct tvm_mapping *mp)
{
	return mp->start < mp->end && !((mp->start | mp->end) & (PAGE - 1)) && mp->end <= USER_TOP;
}

int write_app_core(const struct crash_state *cs, int fd, struct tvm_err *err)
{
	if (cs && cs->guest_core) { /* a Linux guest's: Linux wrote it whole */
		const struct guest_core *g = cs->guest_core;
		if (!g->data || g->len > CORE_CHANNEL_MAX)
			return tvm_seterr(err, "application core: no data from the core channel");
		if (dump_pwrite_all(fd, g->data, g->len, 0, "the application core", err) < 0)
			return -1;
		return dump_finish(fd, g->len, "the application core", err);
	}
	if (!cs || !cs->app)
		return tvm_seterr(err, "application core: no application fault record");
	const struct app_fault *app = cs->app;
	unsigned nmaps = app->nmaps > TVM_FAULT_MAX_MAPS ? TVM_FAULT_MAX_MAPS : app->nmaps;
	struct stat st;
	bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (regular && ftruncate(fd, 0) < 0)
		return tvm_seterr(err, "cannot truncate the application core file: %s", strerror(errno));

	/* File extents: ELF segments and the stack first, then the rest. */
	uint64_t ram = 0;
	for (int i = 0; i < cs->mem.n; i++)
		ram += cs->mem.r[i].size;
	uint64_t budget = 2 * ram + (64ull << 20);
	uint64_t filesz[TVM_FAULT_MAX_MAPS] = { 0 };
	unsigned nvalid = 0;
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < nmaps; i++) {
			const struct tvm_mapping *mp = &app->maps[i];
			bool first = mp->kind == 1 || mp->kind == 2;
			if (!map_valid(mp) || first != (pass == 0))
				continue;
			nvalid++;
			uint64_t want = (mp->prot & 1) ? present_end(cs, mp->start, mp->end) - mp->start : 0;
			filesz[i] = want < budget ? want : budget;
			budget -= filesz[i];
		}

	struct notebuf nb = { 0 };
	if (build_notes(cs, &nb) < 0) {
		free(nb.p);
		return tvm_seterr(err, "out of memory building the application core notes");
	}
	unsigned phnum = 1 + nvalid;
	uint64_t note_off = sizeof(Elf64_Ehdr) + (uint64_t)phnum * sizeof(Elf64_Phdr);
	size_t hdr_len = (size_t)note_off;
	Elf64_Phdr *ph;
	uint8_t *hdr = dump_core_header(phnum, &ph);
	if (!hdr) {
		free(nb.p);
		return tvm_seterr(err, "out of memory building the application core headers");
	}
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off, .p_filesz = nb.len, .p_align = 4 };
	uint64_t off = ALIGN_UP(note_off + nb.len, PAGE);
	unsigned k = 1;
	unsigned idx[TVM_FAULT_MAX_MAPS];
	for (unsigned i = 0; i < nmaps; i++) {
		const struct tvm_mapping *mp = &app->maps[i];
		if (!map_valid(mp))
			continue;
		uint32_t fl = ((mp->prot & 1) ? PF_R : 0) | ((mp->prot & 2) ? PF_W : 0) | ((mp->prot & 4) ? PF_X : 0);
		ph[k] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = fl, .p_offset = off, .p_vaddr = mp->start,
				      .p_paddr = 0, .p_filesz = filesz[i], .p_memsz = mp->end - mp->start,
				      .p_align = PAGE };
		idx[k - 1] = i;
		off += filesz[i];
		k++;
	}
	int rc = -1;
	if (dump_pwrite_all(fd, hdr, hdr_len, 0, "the application core headers", err) < 0 ||
	    dump_pwrite_all(fd, nb.p, nb.len, note_off, "the application core notes", err) < 0)
		goto out;
	if (!regular) {
		static const uint8_t zeros[PAGE];
		uint64_t pad = ALIGN_UP(note_off + nb.len, PAGE) - (note_off + nb.len);
		if (pad && dump_pwrite_all(fd, zeros, pad, note_off + nb.len, "the application core padding", err) < 0)
			goto out;
	}
	for (unsigned j = 0; j + 1 < k; j++) {
		const Elf64_Phdr *p = &ph[1 + j];
		if (write_mapping(fd, cs, app->maps[idx[j]].start, p->p_filesz, p->p_offset, !regular, err) < 0)
			goto out;
	}
	rc = dump_finish(fd, off, "the application core", err);
out:
	free(hdr);
	free(nb.p);
	return rc;
}
