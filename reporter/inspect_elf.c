/* reporter/inspect_elf.c - ELF core files for `trialvm inspect`: the checked
 * ELF/program header/note parser shared with inspect_appcore.c, the choice
 * between a guest dump and an application core (by the notes, which must
 * each be one that format holds), and the guest-physical dump (core.elf). */
#include "inspect_int.h"

#include <inttypes.h>
#include <stdlib.h>

#include "../vmm/text.h"
#include "../vmm/util.h"
#include "elfdump.h"

#define NOTE_SEG_MAX (64u << 20)
#define NOTES_MAX 65536u
/* x86-64 guest-physical addresses have at most 52 bits (MAXPHYADDR). */
#define GPA_LIMIT (1ull << 52)
#ifndef NT_FILE
#define NT_FILE 0x46494c45
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

void insp_elf_free(struct insp_elf *e)
{
	free(e->ph);
	free(e->notes);
}

uint64_t insp_phoff(const struct insp_elf *e, unsigned i)
{
	return e->eh.e_phoff + (uint64_t)i * sizeof(Elf64_Phdr);
}

static const char *ptype(uint32_t t)
{
	switch (t) {
	case PT_NULL: return "PT_NULL";
	case PT_LOAD: return "PT_LOAD";
	case PT_NOTE: return "PT_NOTE";
	default: return "other";
	}
}

/* The kind of a note: its owner name must be exactly NAME (namesz =
 * strlen(NAME) + 1) and its type one that owner has. */
static enum insp_note_kind note_kind(const uint8_t *name, uint32_t namesz, uint32_t type)
{
	static const struct {
		const char *name;
		uint32_t type;
		enum insp_note_kind kind;
	} known[] = {
		{ "CORE", NT_PRSTATUS, INSP_NOTE_PRSTATUS }, { "CORE", NT_PRPSINFO, INSP_NOTE_PRPSINFO },
		{ "CORE", NT_SIGINFO, INSP_NOTE_SIGINFO },   { "CORE", NT_AUXV, INSP_NOTE_AUXV },
		{ "CORE", NT_FPREGSET, INSP_NOTE_FPREGSET }, { "CORE", NT_FILE, INSP_NOTE_FILE },
		{ "LINUX", NT_X86_XSTATE, INSP_NOTE_XSTATE }, { "QEMU", 0, INSP_NOTE_QEMU },
		{ "VMCOREINFO", 0, INSP_NOTE_VMCOREINFO },
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (namesz == strlen(known[i].name) + 1 && !memcmp(name, known[i].name, namesz) && type == known[i].type)
			return known[i].kind;
	return INSP_NOTE_UNKNOWN;
}

/* Parse the notes of one PT_NOTE (contents in buf, file offset base). */
static int parse_notes(const struct insp_src *s, struct insp_elf *e, const uint8_t *buf, uint64_t len, uint64_t base,
		       struct tvm_err *err)
{
	uint64_t pos = 0;
	while (pos < len) {
		if (len - pos < 12)
			return tvm_seterr(err, "%s: note header at offset 0x%" PRIx64 " is cut short by the end of its PT_NOTE",
					  s->path, base + pos);
		uint32_t namesz = insp_get32(buf, pos), descsz = insp_get32(buf, pos + 4), type = insp_get32(buf, pos + 8);
		uint64_t name_off = pos + 12;
		uint64_t desc_off = name_off + ((namesz + 3ull) & ~3ull);
		uint64_t desc_end = desc_off + descsz; /* no overflow: all < 2^35 */
		if (desc_off > len || desc_end > len)
			return tvm_seterr(err, "%s: note at offset 0x%" PRIx64 " (namesz %u, descsz %u) extends past the end of its PT_NOTE",
					  s->path, base + pos, namesz, descsz);
		if (namesz && buf[name_off + namesz - 1] != 0)
			return tvm_seterr(err, "%s: note name at offset 0x%" PRIx64 " is not NUL-terminated", s->path,
					  base + name_off);
		if (e->nnotes == NOTES_MAX)
			return tvm_seterr(err, "%s: more than %u notes (the one at offset 0x%" PRIx64 ")", s->path, NOTES_MAX,
					  base + pos);
		if (e->nnotes == e->cap) {
			size_t cap = e->cap ? e->cap * 2 : 16;
			struct insp_note *n = realloc(e->notes, cap * sizeof *n);
			if (!n)
				return tvm_seterr(err, "%s: out of memory", s->path);
			e->notes = n;
			e->cap = cap;
		}
		struct insp_note *n = &e->notes[e->nnotes++];
		n->kind = note_kind(buf + name_off, namesz, type);
		/* The whole name, NULs and all (namesz 8 for "CORE" shows as
		 * "CORE\x00\x00\x00"), at most 24 bytes of it. */
		tvm_escape(buf + name_off, namesz ? (namesz - 1 < 24 ? namesz - 1 : 24) : 0, TVM_ESC_TERMINAL, n->shown,
			   sizeof n->shown);
		n->type = type;
		n->off = base + pos;
		n->desc_off = base + desc_off;
		n->descsz = descsz;
		uint64_t next = desc_off + ((descsz + 3ull) & ~3ull);
		pos = next > len ? len : next;
	}
	return 0;
}

/* A range of the file or of an address space, for the overlap checks. */
struct range {
	uint64_t start, end; /* [start, end), end > start */
	const char *what;
	unsigned ph; /* program header index (what == NULL: not one) */
};

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start ? 1 : (x->ph > y->ph) - (x->ph < y->ph);
}

static void range_name(char *buf, size_t cap, const struct insp_elf *e, const struct range *r)
{
	if (r->ph == UINT32_MAX)
		snprintf(buf, cap, "%s", r->what);
	else
		snprintf(buf, cap, "%s (program header %u at 0x%" PRIx64 ")", r->what, r->ph, insp_phoff(e, r->ph));
}

/* Sort r[0..n) and fail on the first two that overlap. */
static int ranges_disjoint(const struct insp_src *s, const struct insp_elf *e, struct range *r, size_t n,
			   const char *space, const char *hint, struct tvm_err *err)
{
	qsort(r, n, sizeof *r, range_cmp);
	size_t far = 0; /* the range reaching furthest so far */
	for (size_t i = 1; i < n; i++) {
		if (r[i].start < r[far].end) {
			char a[96], b[96];
			range_name(a, sizeof a, e, &r[i]);
			range_name(b, sizeof b, e, &r[far]);
			return tvm_seterr(err, "%s: %s %s [0x%" PRIx64 ", 0x%" PRIx64 ") overlaps %s [0x%" PRIx64 ", 0x%" PRIx64 ")%s",
					  s->path, a, space, r[i].start, r[i].end, b, r[far].start, r[far].end, hint);
		}
		if (r[i].end > r[far].end)
			far = i;
	}
	return 0;
}

int insp_elf_no_overlap(const struct insp_src *s, const struct insp_elf *e, bool by_paddr, struct tvm_err *err)
{
	struct range *r = malloc((e->phnum ? e->phnum : 1) * sizeof *r);
	if (!r)
		return tvm_seterr(err, "%s: out of memory", s->path);
	size_t n = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		uint64_t a = by_paddr ? p->p_paddr : p->p_vaddr;
		if (p->p_type == PT_LOAD && p->p_memsz) /* a + memsz does not wrap: insp_elf_load */
			r[n++] = (struct range){ a, a + p->p_memsz, "PT_LOAD", i };
	}
	int rc = ranges_disjoint(s, e, r, n, by_paddr ? "guest-physical range" : "virtual address range",
				 by_paddr ? ": a guest-physical byte is in the dump twice; the dump is damaged"
					  : ": a virtual address is mapped twice; the core is damaged",
				 err);
	free(r);
	return rc;
}

/* The file bytes of the headers, every PT_NOTE and every PT_LOAD are
 * distinct: a dump trialvm, QEMU or Linux writes never shares them. */
static int file_ranges_disjoint(const struct insp_src *s, const struct insp_elf *e, struct tvm_err *err)
{
	struct range *r = malloc((e->phnum + 2u) * sizeof *r);
	if (!r)
		return tvm_seterr(err, "%s: out of memory", s->path);
	size_t n = 0;
	r[n++] = (struct range){ 0, sizeof(Elf64_Ehdr), "the ELF header", UINT32_MAX };
	r[n++] = (struct range){ e->eh.e_phoff, insp_phoff(e, e->phnum), "the program header table", UINT32_MAX };
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if ((p->p_type == PT_LOAD || p->p_type == PT_NOTE) && p->p_filesz)
			r[n++] = (struct range){ p->p_offset, p->p_offset + p->p_filesz, ptype(p->p_type), i };
	}
	int rc = ranges_disjoint(s, e, r, n, "file bytes", ": two parts of the file claim the same bytes; it is damaged",
				 err);
	free(r);
	return rc;
}

int insp_elf_load(const struct insp_src *s, struct insp_elf *e, struct tvm_err *err)
{
	if (insp_read(s, 0, &e->eh, sizeof e->eh, "the ELF header", err) < 0)
		return -1;
	const Elf64_Ehdr *h = &e->eh;
	if (h->e_ident[EI_CLASS] != ELFCLASS64)
		return tvm_seterr(err, "%s: ELF class %u at offset 0x4 is not ELFCLASS64", s->path, h->e_ident[EI_CLASS]);
	if (h->e_ident[EI_DATA] != ELFDATA2LSB)
		return tvm_seterr(err, "%s: ELF data encoding %u at offset 0x5 is not little-endian", s->path,
				  h->e_ident[EI_DATA]);
	if (h->e_ident[EI_VERSION] != EV_CURRENT || h->e_version != EV_CURRENT)
		return tvm_seterr(err, "%s: ELF version at offset 0x6/0x14 is not 1", s->path);
	if (h->e_type != ET_CORE)
		return tvm_seterr(err, "%s: ELF type %u at offset 0x10 is not ET_CORE (4)", s->path, h->e_type);
	if (h->e_machine != EM_X86_64)
		return tvm_seterr(err, "%s: ELF machine %u at offset 0x12 is not EM_X86_64 (62)", s->path, h->e_machine);
	if (h->e_phentsize != sizeof(Elf64_Phdr))
		return tvm_seterr(err, "%s: e_phentsize %u at offset 0x36 is not %zu", s->path, h->e_phentsize,
				  sizeof(Elf64_Phdr));
	if (h->e_phnum == 0 || h->e_phnum == PN_XNUM)
		return tvm_seterr(err, "%s: e_phnum %u at offset 0x38 is %s", s->path, h->e_phnum,
				  h->e_phnum ? "extended numbering (unsupported)" : "zero: no program headers");
	e->phnum = h->e_phnum;
	e->ph = malloc(e->phnum * sizeof *e->ph);
	if (!e->ph)
		return tvm_seterr(err, "%s: out of memory", s->path);
	/* insp_read checks e_phoff + the table's size against the file (no wrap). */
	if (insp_read(s, h->e_phoff, e->ph, (uint64_t)e->phnum * sizeof *e->ph, "the program header table", err) < 0)
		return -1;
	uint64_t notes_len = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		uint64_t phoff = insp_phoff(e, i);
		uint64_t end;
		if (p->p_type != PT_LOAD && p->p_type != PT_NOTE)
			continue;
		if (add_overflows(p->p_offset, p->p_filesz, &end) || end > s->size)
			return tvm_seterr(err, "%s: %s (program header %u at 0x%" PRIx64 ") data [0x%" PRIx64 ", +0x%" PRIx64 ") extends past the end of the file (%" PRIu64 " bytes)",
					  s->path, ptype(p->p_type), i, phoff, p->p_offset, p->p_filesz, s->size);
		if (p->p_type == PT_LOAD) {
			if (p->p_filesz > p->p_memsz)
				return tvm_seterr(err, "%s: PT_LOAD (program header %u at 0x%" PRIx64 ") has p_filesz 0x%" PRIx64 " > p_memsz 0x%" PRIx64,
						  s->path, i, phoff, p->p_filesz, p->p_memsz);
			if (add_overflows(p->p_paddr, p->p_memsz, &end) || add_overflows(p->p_vaddr, p->p_memsz, &end))
				return tvm_seterr(err, "%s: PT_LOAD (program header %u at 0x%" PRIx64 ") address range (p_paddr 0x%" PRIx64 ", p_vaddr 0x%" PRIx64 ", p_memsz 0x%" PRIx64 ") wraps around 2^64",
						  s->path, i, phoff, p->p_paddr, p->p_vaddr, p->p_memsz);
			continue;
		}
		if (p->p_offset & 3)
			return tvm_seterr(err, "%s: PT_NOTE (program header %u at 0x%" PRIx64 ") offset 0x%" PRIx64 " is not 4-byte aligned",
					  s->path, i, phoff, p->p_offset);
		if (p->p_filesz > NOTE_SEG_MAX || notes_len + p->p_filesz > NOTE_SEG_MAX)
			return tvm_seterr(err, "%s: PT_NOTE (program header %u at 0x%" PRIx64 ") is larger than %u bytes",
					  s->path, i, phoff, NOTE_SEG_MAX);
		notes_len += p->p_filesz;
		uint8_t *seg = malloc(p->p_filesz ? p->p_filesz : 1);
		if (!seg)
			return tvm_seterr(err, "%s: out of memory", s->path);
		/* note descriptors are read from the file again by offset later */
		int rc = insp_read(s, p->p_offset, seg, p->p_filesz, "the PT_NOTE contents", err);
		if (rc == 0)
			rc = parse_notes(s, e, seg, p->p_filesz, p->p_offset, err);
		free(seg);
		if (rc < 0)
			return -1;
	}
	if (!e->nnotes)
		return tvm_seterr(err, "%s: no ELF notes (no PT_NOTE, or an empty one)", s->path);
	return file_ranges_disjoint(s, e, err);
}

int insp_note_desc(const struct insp_src *s, const struct insp_note *n, void *buf, uint32_t want, const char *what,
		   struct tvm_err *err)
{
	if (n->descsz != want)
		return tvm_seterr(err, "%s: %s note at offset 0x%" PRIx64 " has descsz 0x%x, expected 0x%x", s->path, what,
				  n->off, n->descsz, want);
	return insp_read(s, n->desc_off, buf, want, what, err);
}

/* ---------------------------------------------------------- guest dump */

static int elf_read_phys(const struct insp_src *s, const struct insp_elf *e, uint64_t gpa, uint64_t len, uint8_t *buf,
			 struct tvm_err *err)
{
	uint64_t done = 0;
	while (done < len) {
		uint64_t a = gpa + done;
		const Elf64_Phdr *hit = NULL;
		for (unsigned i = 0; i < e->phnum && !hit; i++) {
			const Elf64_Phdr *p = &e->ph[i];
			if (p->p_type == PT_LOAD && a >= p->p_paddr && a - p->p_paddr < p->p_memsz)
				hit = p;
		}
		if (!hit)
			return tvm_seterr(err, "%s: guest-physical address 0x%" PRIx64 " is not in any PT_LOAD of the dump",
					  s->path, a);
		uint64_t rel = a - hit->p_paddr;
		uint64_t chunk = hit->p_memsz - rel;
		if (chunk > len - done)
			chunk = len - done;
		if (rel < hit->p_filesz) {
			uint64_t infile = hit->p_filesz - rel < chunk ? hit->p_filesz - rel : chunk;
			if (insp_read(s, hit->p_offset + rel, buf + done, infile, "PT_LOAD data", err) < 0)
				return -1;
			memset(buf + done + infile, 0, chunk - infile);
		} else {
			memset(buf + done, 0, chunk);
		}
		done += chunk;
	}
	return 0;
}

/* Which notes a guest dump holds, for messages. */
#define GUEST_NOTES "CORE NT_PRSTATUS, QEMU, VMCOREINFO"
#define APP_NOTES "CORE NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FPREGSET, NT_FILE, LINUX NT_X86_XSTATE"

int insp_guest_elf(const struct insp_src *s, const struct insp_elf *e, const struct inspect_opts *o, FILE *out,
		   struct tvm_err *err)
{
	unsigned nload = 0, npr = 0, nq = 0, nvmci = 0;
	uint64_t total = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if (p->p_type != PT_LOAD)
			continue;
		nload++;
		if (p->p_paddr > GPA_LIMIT || p->p_memsz > GPA_LIMIT - p->p_paddr)
			return tvm_seterr(err, "%s: PT_LOAD (program header %u at 0x%" PRIx64 ") guest-physical range [0x%" PRIx64 ", +0x%" PRIx64 ") goes beyond 2^52, the largest x86-64 guest-physical address; the dump is damaged",
					  s->path, i, insp_phoff(e, i), p->p_paddr, p->p_memsz);
		if (add_overflows(total, p->p_memsz, &total)) /* cannot happen once disjoint below 2^52 */
			return tvm_seterr(err, "%s: the PT_LOADs' sizes add up to more than 2^64 bytes", s->path);
	}
	if (!nload)
		return tvm_seterr(err, "%s: guest dump has no PT_LOAD (no memory)", s->path);
	if (insp_elf_no_overlap(s, e, true, err) < 0)
		return -1;
	/* Validate every note before printing anything. */
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct insp_note *n = &e->notes[i];
		if (n->kind == INSP_NOTE_PRSTATUS) {
			uint8_t pr[TVM_PRSTATUS_SIZE];
			if (insp_note_desc(s, n, pr, TVM_PRSTATUS_SIZE, "NT_PRSTATUS", err) < 0)
				return -1;
			npr++;
		} else if (n->kind == INSP_NOTE_QEMU) {
			uint8_t hd[8];
			if (n->descsz < TVM_QEMU_CPUSTATE_MIN)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " has descsz 0x%x, smaller than QEMUCPUState (0x%x)",
						  s->path, n->off, n->descsz, TVM_QEMU_CPUSTATE_MIN);
			if (insp_read(s, n->desc_off, hd, 8, "QEMU note", err) < 0)
				return -1;
			if (insp_get32(hd, 0) != 1)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " has version %u, expected 1", s->path,
						  n->off, insp_get32(hd, 0));
			if (insp_get32(hd, 4) != n->descsz)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " says size 0x%x but its descsz is 0x%x",
						  s->path, n->desc_off + 4, insp_get32(hd, 4), n->descsz);
			nq++;
		} else if (n->kind == INSP_NOTE_VMCOREINFO) {
			if (++nvmci > 1)
				return tvm_seterr(err, "%s: a second VMCOREINFO note at offset 0x%" PRIx64 "; a guest dump has at most one",
						  s->path, n->off);
		} else {
			return tvm_seterr(err, "%s: note %zu at offset 0x%" PRIx64 " (owner name \"%s\", type 0x%x) is not one a guest dump holds (" GUEST_NOTES ")",
					  s->path, i, n->off, n->shown, n->type);
		}
	}
	if (!npr)
		return tvm_seterr(err, "%s: guest dump has no NT_PRSTATUS note", s->path);
	if (nq && nq != npr)
		return tvm_seterr(err, "%s: guest dump has %u NT_PRSTATUS notes but %u QEMU notes (one each per vCPU)", s->path,
				  npr, nq);

	if (o && o->read_phys) {
		if (insp_check_read_opts(o, s->path, err) < 0)
			return -1;
		uint8_t *buf = malloc(o->read_phys_len);
		if (!buf)
			return tvm_seterr(err, "%s: out of memory", s->path);
		int rc = elf_read_phys(s, e, o->read_phys_gpa, o->read_phys_len, buf, err);
		if (rc == 0)
			rc = insp_emit(out, buf, o->read_phys_len, err);
		free(buf);
		return rc;
	}

	char sz[32];
	fprintf(out, "%s: trialvm/QEMU guest-physical ELF dump\n", s->path);
	fprintf(out, "  file: %" PRIu64 " bytes, %" PRIu64 " bytes allocated\n", s->size, s->blocks);
	fprintf(out, "  ELF64 LSB ET_CORE EM_X86_64, %u program headers at 0x%" PRIx64 "\n", e->phnum, e->eh.e_phoff);
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if (p->p_type == PT_NOTE) {
			fprintf(out, "  PT_NOTE  offset 0x%" PRIx64 " size 0x%" PRIx64 "\n", p->p_offset, p->p_filesz);
		} else if (p->p_type == PT_LOAD) {
			insp_mib(sz, sizeof sz, p->p_memsz);
			fprintf(out, "  PT_LOAD  paddr 0x%016" PRIx64 " size 0x%" PRIx64 " (%s) offset 0x%" PRIx64 "%s\n",
				p->p_paddr, p->p_memsz, sz, p->p_offset,
				p->p_filesz < p->p_memsz ? " (tail not in file: zero)" : "");
		} else {
			fprintf(out, "  type 0x%x (ignored)\n", p->p_type);
		}
	}
	insp_mib(sz, sizeof sz, total);
	fprintf(out, "  guest RAM in dump: %s\n", sz);
	fprintf(out, "  notes (%zu):\n", e->nnotes);
	unsigned ipr = 0, iq = 0;
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct insp_note *n = &e->notes[i];
		if (n->kind == INSP_NOTE_PRSTATUS) {
			uint8_t pr[TVM_PRSTATUS_SIZE];
			if (insp_note_desc(s, n, pr, TVM_PRSTATUS_SIZE, "NT_PRSTATUS", err) < 0)
				return -1;
			fprintf(out, "    CORE NT_PRSTATUS #%u: pid %u  rip 0x%016" PRIx64 "  rsp 0x%016" PRIx64 "  rflags 0x%" PRIx64 "\n",
				ipr++, insp_get32(pr, 0x20), insp_get64(pr, 0x70 + 16 * 8), insp_get64(pr, 0x70 + 19 * 8),
				insp_get64(pr, 0x70 + 18 * 8));
		} else if (n->kind == INSP_NOTE_QEMU) {
			uint8_t q[TVM_QEMU_CPUSTATE_MIN];
			if (insp_read(s, n->desc_off, q, sizeof q, "QEMU note", err) < 0)
				return -1;
			fprintf(out, "    QEMU CPU state #%u (size 0x%x): rip 0x%016" PRIx64 "  cr0 0x%" PRIx64 "  cr3 0x%" PRIx64
				     "  cr4 0x%" PRIx64 "  idt 0x%" PRIx64 "  cs 0x%x\n",
				iq++, n->descsz, insp_get64(q, 0x88), insp_get64(q, 0x188), insp_get64(q, 0x188 + 24),
				insp_get64(q, 0x188 + 32), insp_get64(q, 0x98 + 9 * 24 + 16), insp_get32(q, 0x98));
		} else if (n->kind == INSP_NOTE_VMCOREINFO) {
			/* The guest kernel's text: its first lines, escaped. */
			fprintf(out, "    VMCOREINFO (%u bytes)\n", n->descsz);
			uint64_t want = n->descsz < 4096 ? n->descsz : 4096;
			char text[4096];
			if (insp_read(s, n->desc_off, text, want, "VMCOREINFO note", err) < 0)
				return -1;
			const char *p = text, *end = text + want;
			for (int line = 0; line < 5 && p < end && *p; line++) {
				const char *nl = memchr(p, '\n', (size_t)(end - p));
				size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
				char l[160];
				fprintf(out, "      %s\n", insp_esc(l, sizeof l, p, ll < 120 ? ll : 120));
				if (!nl)
					break;
				p = nl + 1;
			}
		}
	}
	return 0;
}

/* ------------------------------------------------- which ELF core it is */

static const char *kind_name(enum insp_note_kind k)
{
	switch (k) {
	case INSP_NOTE_PRSTATUS: return "CORE NT_PRSTATUS";
	case INSP_NOTE_QEMU: return "QEMU";
	case INSP_NOTE_VMCOREINFO: return "VMCOREINFO";
	case INSP_NOTE_PRPSINFO: return "CORE NT_PRPSINFO";
	case INSP_NOTE_SIGINFO: return "CORE NT_SIGINFO";
	case INSP_NOTE_AUXV: return "CORE NT_AUXV";
	case INSP_NOTE_FPREGSET: return "CORE NT_FPREGSET";
	case INSP_NOTE_FILE: return "CORE NT_FILE";
	case INSP_NOTE_XSTATE: return "LINUX NT_X86_XSTATE";
	case INSP_NOTE_UNKNOWN: break;
	}
	return "?";
}

int insp_elf(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	struct insp_elf e = { 0 };
	int rc = insp_elf_load(s, &e, err);
	if (rc == 0) {
		/* Every note must be one of the two formats', and the notes of
		 * one file from one format only: a guest dump has QEMU and
		 * VMCOREINFO notes (or NT_PRSTATUS alone), a process core
		 * NT_PRPSINFO and the others. */
		const struct insp_note *guest = NULL, *app = NULL;
		for (size_t i = 0; i < e.nnotes && rc == 0; i++) {
			const struct insp_note *n = &e.notes[i];
			switch (n->kind) {
			case INSP_NOTE_UNKNOWN:
				rc = tvm_seterr(err, "%s: note %zu at offset 0x%" PRIx64 " (owner name \"%s\", type 0x%x) is not a note of a guest dump (" GUEST_NOTES ") or of an application core (" APP_NOTES "); the file is damaged",
						s->path, i, n->off, n->shown, n->type);
				break;
			case INSP_NOTE_PRSTATUS: break;
			case INSP_NOTE_QEMU:
			case INSP_NOTE_VMCOREINFO:
				guest = guest ? guest : n;
				break;
			default:
				app = app ? app : n;
				break;
			}
		}
		if (rc == 0 && guest && app)
			rc = tvm_seterr(err, "%s: the %s note at offset 0x%" PRIx64 " belongs in a guest dump but the %s note at offset 0x%" PRIx64 " in an application core; one file cannot be both: it is damaged",
					s->path, kind_name(guest->kind), guest->off, kind_name(app->kind), app->off);
		if (rc == 0)
			rc = app ? insp_app_core(s, &e, o, out, err) : insp_guest_elf(s, &e, o, out, err);
	}
	insp_elf_free(&e);
	return rc;
}
