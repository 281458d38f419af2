/* reporter/inspect_elf.c - ELF core files for `trialvm inspect`: the checked
 * ELF/program header/note parser shared with inspect_appcore.c, the choice
 * between a guest dump and an application core, and the guest-physical
 * dump (core.elf). */
#include "inspect_int.h"

#include <inttypes.h>
#include <stdlib.h>

#include "../vmm/util.h"
#include "elfdump.h"

#define NOTE_SEG_MAX (64u << 20)

void insp_elf_free(struct insp_elf *e)
{
	free(e->ph);
	free(e->notes);
	free(e->notedata);
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
		if (e->nnotes == e->cap) {
			size_t cap = e->cap ? e->cap * 2 : 16;
			struct insp_note *n = realloc(e->notes, cap * sizeof *n);
			if (!n)
				return tvm_seterr(err, "%s: out of memory", s->path);
			e->notes = n;
			e->cap = cap;
		}
		struct insp_note *n = &e->notes[e->nnotes++];
		insp_printable(n->name, sizeof n->name, buf + name_off, namesz);
		n->type = type;
		n->desc_off = base + desc_off;
		n->descsz = descsz;
		uint64_t next = desc_off + ((descsz + 3ull) & ~3ull);
		pos = next > len ? len : next;
	}
	return 0;
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
	if (insp_read(s, h->e_phoff, e->ph, (uint64_t)e->phnum * sizeof *e->ph, "the program header table", err) < 0)
		return -1;
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		uint64_t phoff = h->e_phoff + (uint64_t)i * sizeof *p;
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
				return tvm_seterr(err, "%s: PT_LOAD (program header %u at 0x%" PRIx64 ") address range wraps around",
						  s->path, i, phoff);
			continue;
		}
		if (p->p_offset & 3)
			return tvm_seterr(err, "%s: PT_NOTE (program header %u at 0x%" PRIx64 ") offset 0x%" PRIx64 " is not 4-byte aligned",
					  s->path, i, phoff, p->p_offset);
		if (p->p_filesz > NOTE_SEG_MAX || e->notedata_len + p->p_filesz > NOTE_SEG_MAX)
			return tvm_seterr(err, "%s: PT_NOTE (program header %u at 0x%" PRIx64 ") is larger than %u bytes",
					  s->path, i, phoff, NOTE_SEG_MAX);
		uint8_t *nd = realloc(e->notedata, e->notedata_len + p->p_filesz + 1);
		if (!nd)
			return tvm_seterr(err, "%s: out of memory", s->path);
		e->notedata = nd;
		uint8_t *seg = nd + e->notedata_len;
		if (insp_read(s, p->p_offset, seg, p->p_filesz, "the PT_NOTE contents", err) < 0)
			return -1;
		/* note descriptors are read from the file again by offset later */
		if (parse_notes(s, e, seg, p->p_filesz, p->p_offset, err) < 0)
			return -1;
		e->notedata_len += p->p_filesz;
	}
	if (!e->nnotes)
		return tvm_seterr(err, "%s: no ELF notes (no PT_NOTE, or an empty one)", s->path);
	return 0;
}

int insp_note_desc(const struct insp_src *s, const struct insp_note *n, void *buf, uint32_t want, const char *what,
		     struct tvm_err *err)
{
	if (n->descsz != want)
		return tvm_seterr(err, "%s: %s note at offset 0x%" PRIx64 " has descsz 0x%x, expected 0x%x", s->path, what,
				  n->desc_off, n->descsz, want);
	return insp_read(s, n->desc_off, buf, want, what, err);
}


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

int insp_guest_elf(const struct insp_src *s, const struct insp_elf *e, const struct inspect_opts *o, FILE *out,
			     struct tvm_err *err)
{
	unsigned nload = 0, npr = 0, nq = 0;
	for (unsigned i = 0; i < e->phnum; i++)
		nload += e->ph[i].p_type == PT_LOAD;
	if (!nload)
		return tvm_seterr(err, "%s: guest dump has no PT_LOAD (no memory)", s->path);
	/* Validate every note before printing anything. */
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct insp_note *n = &e->notes[i];
		if (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS) {
			uint8_t pr[TVM_PRSTATUS_SIZE];
			if (insp_note_desc(s, n, pr, TVM_PRSTATUS_SIZE, "NT_PRSTATUS", err) < 0)
				return -1;
			npr++;
		} else if (!strcmp(n->name, "QEMU")) {
			uint8_t hd[8];
			if (n->descsz < TVM_QEMU_CPUSTATE_MIN)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " has descsz 0x%x, smaller than QEMUCPUState (0x%x)",
						  s->path, n->desc_off, n->descsz, TVM_QEMU_CPUSTATE_MIN);
			if (insp_read(s, n->desc_off, hd, 8, "QEMU note", err) < 0)
				return -1;
			if (insp_get32(hd, 0) != 1)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " has version %u, expected 1", s->path,
						  n->desc_off, insp_get32(hd, 0));
			if (insp_get32(hd, 4) != n->descsz)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " says size 0x%x but its descsz is 0x%x",
						  s->path, n->desc_off + 4, insp_get32(hd, 4), n->descsz);
			nq++;
		}
	}
	if (!npr)
		return tvm_seterr(err, "%s: guest dump has no NT_PRSTATUS note", s->path);
	if (nq && nq != npr)
		return tvm_seterr(err, "%s: guest dump has %u NT_PRSTATUS notes but %u QEMU notes", s->path, npr, nq);

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
	uint64_t total = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if (p->p_type == PT_NOTE) {
			fprintf(out, "  PT_NOTE  offset 0x%" PRIx64 " size 0x%" PRIx64 "\n", p->p_offset, p->p_filesz);
		} else if (p->p_type == PT_LOAD) {
			insp_mib(sz, sizeof sz, p->p_memsz);
			total += p->p_memsz;
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
		if (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS) {
			uint8_t pr[TVM_PRSTATUS_SIZE];
			if (insp_note_desc(s, n, pr, TVM_PRSTATUS_SIZE, "NT_PRSTATUS", err) < 0)
				return -1;
			fprintf(out, "    CORE NT_PRSTATUS #%u: pid %u  rip 0x%016" PRIx64 "  rsp 0x%016" PRIx64 "  rflags 0x%" PRIx64 "\n",
				ipr++, insp_get32(pr, 0x20), insp_get64(pr, 0x70 + 16 * 8), insp_get64(pr, 0x70 + 19 * 8),
				insp_get64(pr, 0x70 + 18 * 8));
		} else if (!strcmp(n->name, "QEMU")) {
			uint8_t q[TVM_QEMU_CPUSTATE_MIN];
			if (insp_read(s, n->desc_off, q, sizeof q, "QEMU note", err) < 0)
				return -1;
			fprintf(out, "    QEMU CPU state #%u (size 0x%x): rip 0x%016" PRIx64 "  cr0 0x%" PRIx64 "  cr3 0x%" PRIx64
				     "  cr4 0x%" PRIx64 "  idt 0x%" PRIx64 "  cs 0x%x\n",
				iq++, n->descsz, insp_get64(q, 0x88), insp_get64(q, 0x188), insp_get64(q, 0x188 + 24), insp_get64(q, 0x188 + 32),
				insp_get64(q, 0x98 + 9 * 24 + 16), insp_get32(q, 0x98));
		} else if (!strcmp(n->name, "VMCOREINFO")) {
			fprintf(out, "    VMCOREINFO (%u bytes)\n", n->descsz);
			uint64_t want = n->descsz < 4096 ? n->descsz : 4096;
			char text[4097];
			if (insp_read(s, n->desc_off, text, want, "VMCOREINFO note", err) < 0)
				return -1;
			text[want] = 0;
			const char *p = text;
			for (int line = 0; line < 5 && p < text + want && *p; line++) {
				char l[128];
				insp_printable(l, sizeof l, p, (size_t)(text + want - p));
				fprintf(out, "      %s\n", l);
				const char *nl = memchr(p, '\n', (size_t)(text + want - p));
				if (!nl)
					break;
				p = nl + 1;
			}
		} else {
			fprintf(out, "    %s type %u (%u bytes)\n", n->name, n->type, n->descsz);
		}
	}
	return 0;
}

int insp_elf(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	struct insp_elf e = { 0 };
	int rc = insp_elf_load(s, &e, err);
	if (rc == 0) {
		bool qemu = false, prpsinfo = false;
		for (size_t i = 0; i < e.nnotes; i++) {
			qemu |= !strcmp(e.notes[i].name, "QEMU");
			prpsinfo |= !strcmp(e.notes[i].name, "CORE") && e.notes[i].type == NT_PRPSINFO;
		}
		rc = (prpsinfo && !qemu) ? insp_app_core(s, &e, o, out, err) : insp_guest_elf(s, &e, o, out, err);
	}
	insp_elf_free(&e);
	return rc;
}
