/* reporter/inspect.c - validate and summarise crash artifacts.
 * Every read goes through src_read(), which checks the range against the
 * file size first; nothing here trusts a length or offset from the file. */
#include "inspect.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/util.h"
#include "elfdump.h"
#include "windump.h"

#define PAGE ((uint64_t)4096)
#define NOTE_SEG_MAX (64u << 20)
#define JSON_MAX (64u << 20)

struct src {
	int fd;
	const char *path;
	uint64_t size;
	uint64_t blocks; /* bytes allocated */
};

static int src_read(const struct src *s, uint64_t off, void *buf, uint64_t len, const char *what,
		    struct tvm_err *err)
{
	uint64_t end;
	if (add_overflows(off, len, &end) || end > s->size)
		return tvm_seterr(err, "%s: %s at offset 0x%" PRIx64 " (%" PRIu64 " bytes) extends past the end of the file (%" PRIu64 " bytes)",
				  s->path, what, off, len, s->size);
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(s->fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return tvm_seterr(err, "%s: cannot read %s at offset 0x%" PRIx64 ": %s", s->path, what, off,
					  n < 0 ? strerror(errno) : "unexpected end of file");
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static inline uint64_t get64(const uint8_t *b, size_t off) { uint64_t v; memcpy(&v, b + off, 8); return v; }
static inline uint32_t get32(const uint8_t *b, size_t off) { uint32_t v; memcpy(&v, b + off, 4); return v; }
static inline uint16_t get16(const uint8_t *b, size_t off) { uint16_t v; memcpy(&v, b + off, 2); return v; }

/* Printable copy of at most n bytes of s (stops at NUL or newline). */
static void printable(char *dst, size_t cap, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t j = 0;
	for (size_t i = 0; i < n && p[i] && p[i] != '\n' && j + 1 < cap; i++)
		dst[j++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	dst[j] = 0;
}

static void mib(char *buf, size_t cap, uint64_t v)
{
	if (v >= (1ull << 30) && !(v & ((1ull << 30) - 1)))
		snprintf(buf, cap, "%" PRIu64 " GiB", v >> 30);
	else if (v >= (1ull << 20) && !(v & ((1ull << 20) - 1)))
		snprintf(buf, cap, "%" PRIu64 " MiB", v >> 20);
	else if (v >= 1024 && !(v & 1023))
		snprintf(buf, cap, "%" PRIu64 " KiB", v >> 10);
	else
		snprintf(buf, cap, "%" PRIu64 " bytes", v);
}

static int emit(FILE *out, const void *buf, size_t len, struct tvm_err *err)
{
	if (len && fwrite(buf, 1, len, out) != len)
		return tvm_seterr(err, "cannot write the requested bytes: %s", strerror(errno));
	if (fflush(out) != 0)
		return tvm_seterr(err, "cannot write the requested bytes: %s", strerror(errno));
	return 0;
}

static int check_read_opts(const struct inspect_opts *o, const char *path, struct tvm_err *err)
{
	if (o->read_phys_len == 0 || o->read_phys_len > TVM_INSPECT_READ_MAX)
		return tvm_seterr(err, "%s: read length %" PRIu64 " must be between 1 and %u bytes", path,
				  o->read_phys_len, TVM_INSPECT_READ_MAX);
	uint64_t end;
	if (add_overflows(o->read_phys_gpa, o->read_phys_len, &end))
		return tvm_seterr(err, "%s: guest-physical range 0x%" PRIx64 " + %" PRIu64 " wraps around", path,
				  o->read_phys_gpa, o->read_phys_len);
	return 0;
}

/* ======================================================================
 * ELF: guest dump and application core
 * ====================================================================== */

struct note {
	char name[16];
	uint32_t type;
	uint64_t desc_off; /* file offset */
	uint32_t descsz;
};

struct elf {
	Elf64_Ehdr eh;
	Elf64_Phdr *ph;
	unsigned phnum;
	struct note *notes;
	size_t nnotes, cap;
	uint8_t *notedata; /* all PT_NOTE contents, concatenated */
	size_t notedata_len;
};

static void elf_free(struct elf *e)
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
static int parse_notes(const struct src *s, struct elf *e, const uint8_t *buf, uint64_t len, uint64_t base,
		       struct tvm_err *err)
{
	uint64_t pos = 0;
	while (pos < len) {
		if (len - pos < 12)
			return tvm_seterr(err, "%s: note header at offset 0x%" PRIx64 " is cut short by the end of its PT_NOTE",
					  s->path, base + pos);
		uint32_t namesz = get32(buf, pos), descsz = get32(buf, pos + 4), type = get32(buf, pos + 8);
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
			struct note *n = realloc(e->notes, cap * sizeof *n);
			if (!n)
				return tvm_seterr(err, "%s: out of memory", s->path);
			e->notes = n;
			e->cap = cap;
		}
		struct note *n = &e->notes[e->nnotes++];
		printable(n->name, sizeof n->name, buf + name_off, namesz);
		n->type = type;
		n->desc_off = base + desc_off;
		n->descsz = descsz;
		uint64_t next = desc_off + ((descsz + 3ull) & ~3ull);
		pos = next > len ? len : next;
	}
	return 0;
}

static int elf_load(const struct src *s, struct elf *e, struct tvm_err *err)
{
	if (src_read(s, 0, &e->eh, sizeof e->eh, "the ELF header", err) < 0)
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
	if (src_read(s, h->e_phoff, e->ph, (uint64_t)e->phnum * sizeof *e->ph, "the program header table", err) < 0)
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
		if (src_read(s, p->p_offset, seg, p->p_filesz, "the PT_NOTE contents", err) < 0)
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

static int note_desc(const struct src *s, const struct note *n, void *buf, uint32_t want, const char *what,
		     struct tvm_err *err)
{
	if (n->descsz != want)
		return tvm_seterr(err, "%s: %s note at offset 0x%" PRIx64 " has descsz 0x%x, expected 0x%x", s->path, what,
				  n->desc_off, n->descsz, want);
	return src_read(s, n->desc_off, buf, want, what, err);
}

static const char *sig_name(unsigned sig)
{
	static const char *const names[32] = { "0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT",
		"SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
		"SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
		"SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS" };
	return sig < 32 ? names[sig] : "SIG?";
}

/* Raw bytes of [gpa, gpa+len) from a guest ELF dump into buf. */
static int elf_read_phys(const struct src *s, const struct elf *e, uint64_t gpa, uint64_t len, uint8_t *buf,
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
			if (src_read(s, hit->p_offset + rel, buf + done, infile, "PT_LOAD data", err) < 0)
				return -1;
			memset(buf + done + infile, 0, chunk - infile);
		} else {
			memset(buf + done, 0, chunk);
		}
		done += chunk;
	}
	return 0;
}

static void print_regs(FILE *out, const uint8_t *r /* user_regs_struct */)
{
	static const char *const n[27] = { "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
		"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
		"gs_base", "ds", "es", "fs", "gs" };
	static const int order[] = { 16, 19, 4, 18, 10, 5, 11, 12, 13, 14, 9, 8, 7, 6, 3, 2, 1, 0, 17, 20, 21, 22 };
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		fprintf(out, "%s    %-8s 0x%016" PRIx64 "", i % 3 == 0 ? (i ? "\n" : "") : "", n[order[i]],
			get64(r, 8u * (unsigned)order[i]));
	fprintf(out, "\n");
}

static int inspect_guest_elf(const struct src *s, const struct elf *e, const struct inspect_opts *o, FILE *out,
			     struct tvm_err *err)
{
	unsigned nload = 0, npr = 0, nq = 0;
	for (unsigned i = 0; i < e->phnum; i++)
		nload += e->ph[i].p_type == PT_LOAD;
	if (!nload)
		return tvm_seterr(err, "%s: guest dump has no PT_LOAD (no memory)", s->path);
	/* Validate every note before printing anything. */
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct note *n = &e->notes[i];
		if (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS) {
			uint8_t pr[TVM_PRSTATUS_SIZE];
			if (note_desc(s, n, pr, TVM_PRSTATUS_SIZE, "NT_PRSTATUS", err) < 0)
				return -1;
			npr++;
		} else if (!strcmp(n->name, "QEMU")) {
			uint8_t hd[8];
			if (n->descsz < TVM_QEMU_CPUSTATE_MIN)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " has descsz 0x%x, smaller than QEMUCPUState (0x%x)",
						  s->path, n->desc_off, n->descsz, TVM_QEMU_CPUSTATE_MIN);
			if (src_read(s, n->desc_off, hd, 8, "QEMU note", err) < 0)
				return -1;
			if (get32(hd, 0) != 1)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " has version %u, expected 1", s->path,
						  n->desc_off, get32(hd, 0));
			if (get32(hd, 4) != n->descsz)
				return tvm_seterr(err, "%s: QEMU note at offset 0x%" PRIx64 " says size 0x%x but its descsz is 0x%x",
						  s->path, n->desc_off + 4, get32(hd, 4), n->descsz);
			nq++;
		}
	}
	if (!npr)
		return tvm_seterr(err, "%s: guest dump has no NT_PRSTATUS note", s->path);
	if (nq && nq != npr)
		return tvm_seterr(err, "%s: guest dump has %u NT_PRSTATUS notes but %u QEMU notes", s->path, npr, nq);

	if (o && o->read_phys) {
		if (check_read_opts(o, s->path, err) < 0)
			return -1;
		uint8_t *buf = malloc(o->read_phys_len);
		if (!buf)
			return tvm_seterr(err, "%s: out of memory", s->path);
		int rc = elf_read_phys(s, e, o->read_phys_gpa, o->read_phys_len, buf, err);
		if (rc == 0)
			rc = emit(out, buf, o->read_phys_len, err);
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
			mib(sz, sizeof sz, p->p_memsz);
			total += p->p_memsz;
			fprintf(out, "  PT_LOAD  paddr 0x%016" PRIx64 " size 0x%" PRIx64 " (%s) offset 0x%" PRIx64 "%s\n",
				p->p_paddr, p->p_memsz, sz, p->p_offset,
				p->p_filesz < p->p_memsz ? " (tail not in file: zero)" : "");
		} else {
			fprintf(out, "  type 0x%x (ignored)\n", p->p_type);
		}
	}
	mib(sz, sizeof sz, total);
	fprintf(out, "  guest RAM in dump: %s\n", sz);
	fprintf(out, "  notes (%zu):\n", e->nnotes);
	unsigned ipr = 0, iq = 0;
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct note *n = &e->notes[i];
		if (!strcmp(n->name, "CORE") && n->type == NT_PRSTATUS) {
			uint8_t pr[TVM_PRSTATUS_SIZE];
			if (note_desc(s, n, pr, TVM_PRSTATUS_SIZE, "NT_PRSTATUS", err) < 0)
				return -1;
			fprintf(out, "    CORE NT_PRSTATUS #%u: pid %u  rip 0x%016" PRIx64 "  rsp 0x%016" PRIx64 "  rflags 0x%" PRIx64 "\n",
				ipr++, get32(pr, 0x20), get64(pr, 0x70 + 16 * 8), get64(pr, 0x70 + 19 * 8),
				get64(pr, 0x70 + 18 * 8));
		} else if (!strcmp(n->name, "QEMU")) {
			uint8_t q[TVM_QEMU_CPUSTATE_MIN];
			if (src_read(s, n->desc_off, q, sizeof q, "QEMU note", err) < 0)
				return -1;
			fprintf(out, "    QEMU CPU state #%u (size 0x%x): rip 0x%016" PRIx64 "  cr0 0x%" PRIx64 "  cr3 0x%" PRIx64
				     "  cr4 0x%" PRIx64 "  idt 0x%" PRIx64 "  cs 0x%x\n",
				iq++, n->descsz, get64(q, 0x88), get64(q, 0x188), get64(q, 0x188 + 24), get64(q, 0x188 + 32),
				get64(q, 0x98 + 9 * 24 + 16), get32(q, 0x98));
		} else if (!strcmp(n->name, "VMCOREINFO")) {
			fprintf(out, "    VMCOREINFO (%u bytes)\n", n->descsz);
			uint64_t want = n->descsz < 4096 ? n->descsz : 4096;
			char text[4097];
			if (src_read(s, n->desc_off, text, want, "VMCOREINFO note", err) < 0)
				return -1;
			text[want] = 0;
			const char *p = text;
			for (int line = 0; line < 5 && p < text + want && *p; line++) {
				char l[128];
				printable(l, sizeof l, p, (size_t)(text + want - p));
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

static int inspect_app_core(const struct src *s, const struct elf *e, const struct inspect_opts *o, FILE *out,
			    struct tvm_err *err)
{
	if (o && o->read_phys)
		return tvm_seterr(err, "%s: an application core holds user virtual memory, not guest-physical memory", s->path);
	const struct note *pr = NULL, *ps = NULL, *si = NULL, *av = NULL, *fp = NULL;
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct note *n = &e->notes[i];
		if (strcmp(n->name, "CORE"))
			continue;
		if (n->type == NT_PRSTATUS && !pr) pr = n;
		else if (n->type == NT_PRPSINFO && !ps) ps = n;
		else if (n->type == NT_SIGINFO && !si) si = n;
		else if (n->type == NT_AUXV && !av) av = n;
		else if (n->type == NT_FPREGSET && !fp) fp = n;
	}
	if (!pr)
		return tvm_seterr(err, "%s: application core has no NT_PRSTATUS note", s->path);
	uint8_t prb[TVM_PRSTATUS_SIZE], psb[0x88], sib[128], fpb[512];
	if (!ps)
		return tvm_seterr(err, "%s: application core has no NT_PRPSINFO note", s->path);
	if (note_desc(s, pr, prb, sizeof prb, "NT_PRSTATUS", err) < 0 ||
	    note_desc(s, ps, psb, sizeof psb, "NT_PRPSINFO", err) < 0 ||
	    (si && note_desc(s, si, sib, sizeof sib, "NT_SIGINFO", err) < 0) ||
	    (fp && note_desc(s, fp, fpb, sizeof fpb, "NT_FPREGSET", err) < 0))
		return -1;
	if (av && (av->descsz % 16))
		return tvm_seterr(err, "%s: NT_AUXV note at offset 0x%" PRIx64 " has size %u, not a multiple of 16", s->path,
				  av->desc_off, av->descsz);
	char fname[17], args[81];
	printable(fname, sizeof fname, psb + 0x28, 16);
	printable(args, sizeof args, psb + 0x38, 80);
	unsigned sig = get16(prb, 0x0c);
	fprintf(out, "%s: application core (ELF process core)\n", s->path);
	fprintf(out, "  file: %" PRIu64 " bytes, %" PRIu64 " bytes allocated\n", s->size, s->blocks);
	fprintf(out, "  process: %s (pid %u), command line: %s\n", fname, get32(prb, 0x20), args);
	fprintf(out, "  signal: %u (%s)", sig, sig_name(sig));
	if (si)
		fprintf(out, ", si_code %d, si_addr 0x%" PRIx64, (int)get32(sib, 8), get64(sib, 16));
	fprintf(out, "\n  registers:\n");
	print_regs(out, prb + 0x70);
	if (fp)
		fprintf(out, "  fpu: fcw 0x%04x mxcsr 0x%08x\n", get16(fpb, 0), get32(fpb, 24));
	if (av)
		fprintf(out, "  auxv: %u entries\n", av->descsz / 16);
	fprintf(out, "  mappings:\n");
	for (unsigned i = 0; i < e->phnum; i++) {
		const Elf64_Phdr *p = &e->ph[i];
		if (p->p_type != PT_LOAD)
			continue;
		fprintf(out, "    0x%012" PRIx64 "-0x%012" PRIx64 " %c%c%c  in file 0x%" PRIx64 " bytes at 0x%" PRIx64 "\n",
			p->p_vaddr, p->p_vaddr + p->p_memsz, (p->p_flags & PF_R) ? 'r' : '-',
			(p->p_flags & PF_W) ? 'w' : '-', (p->p_flags & PF_X) ? 'x' : '-', p->p_filesz, p->p_offset);
	}
	return 0;
}

static int inspect_elf(const struct src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	struct elf e = { 0 };
	int rc = elf_load(s, &e, err);
	if (rc == 0) {
		bool qemu = false, prpsinfo = false;
		for (size_t i = 0; i < e.nnotes; i++) {
			qemu |= !strcmp(e.notes[i].name, "QEMU");
			prpsinfo |= !strcmp(e.notes[i].name, "CORE") && e.notes[i].type == NT_PRPSINFO;
		}
		rc = (prpsinfo && !qemu) ? inspect_app_core(s, &e, o, out, err) : inspect_guest_elf(s, &e, o, out, err);
	}
	elf_free(&e);
	return rc;
}

/* ======================================================================
 * Windows full dump
 * ====================================================================== */

static int inspect_windump(const struct src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	uint8_t h[TVM_WINDUMP_HEADER_SIZE];
	if (src_read(s, 0, h, sizeof h, "the DUMP_HEADER64", err) < 0)
		return -1;
	if (get32(h, 0x30) != 0x8664)
		return tvm_seterr(err, "%s: MachineImageType 0x%x at offset 0x30 is not 0x8664 (x64)", s->path, get32(h, 0x30));
	uint32_t type = get32(h, 0xf98);
	if (type != 1)
		return tvm_seterr(err, "%s: DumpType %u at offset 0xf98 is not a full dump (1)", s->path, type);
	uint32_t nruns = get32(h, 0x88);
	uint64_t npages = get64(h, 0x90);
	if (nruns == 0 || nruns > TVM_WINDUMP_MAX_RUNS)
		return tvm_seterr(err, "%s: NumberOfRuns %u at offset 0x88 is not between 1 and %d", s->path, nruns,
				  TVM_WINDUMP_MAX_RUNS);
	uint64_t sum = 0, prev_end = 0;
	for (uint32_t i = 0; i < nruns; i++) {
		uint64_t base = get64(h, 0x98 + 16 * i), cnt = get64(h, 0xa0 + 16 * i), end;
		if (cnt == 0 || base >= (1ull << 52) || add_overflows(base, cnt, &end) || end > (1ull << 52))
			return tvm_seterr(err, "%s: run %u at offset 0x%x (BasePage 0x%" PRIx64 ", PageCount 0x%" PRIx64 ") is empty or out of range",
					  s->path, i, 0x98 + 16 * i, base, cnt);
		if (base < prev_end)
			return tvm_seterr(err, "%s: run %u at offset 0x%x overlaps or precedes the run before it", s->path, i,
					  0x98 + 16 * i);
		prev_end = end;
		sum += cnt; /* < 2^52 * 43: no overflow */
	}
	if (sum != npages)
		return tvm_seterr(err, "%s: NumberOfPages %" PRIu64 " at offset 0x90 differs from the runs' total %" PRIu64,
				  s->path, npages, sum);
	uint64_t need = TVM_WINDUMP_HEADER_SIZE + npages * PAGE; /* npages < 2^52 * 43 < 2^58: may overflow */
	if (npages > (UINT64_MAX - TVM_WINDUMP_HEADER_SIZE) / PAGE)
		return tvm_seterr(err, "%s: NumberOfPages %" PRIu64 " at offset 0x90 is too large", s->path, npages);
	uint64_t req = get64(h, 0xfa0);
	if (req != need)
		return tvm_seterr(err, "%s: RequiredDumpSpace 0x%" PRIx64 " at offset 0xfa0 is not 0x2000 + %" PRIu64 " pages (0x%" PRIx64 ")",
				  s->path, req, npages, need);
	if (s->size < need)
		return tvm_seterr(err, "%s: the file is %" PRIu64 " bytes but RequiredDumpSpace at offset 0xfa0 says %" PRIu64 ": truncated",
				  s->path, s->size, need);
	const uint8_t *ctx = h + 0x348;
	if (get32(ctx, 0x34) != get32(ctx, 0x118))
		return tvm_seterr(err, "%s: CONTEXT MxCsr 0x%x at offset 0x37c differs from FltSave.MxCsr 0x%x at offset 0x460",
				  s->path, get32(ctx, 0x34), get32(ctx, 0x118));
	if (!(get32(ctx, 0x30) & 0x100000))
		return tvm_seterr(err, "%s: CONTEXT ContextFlags 0x%x at offset 0x378 lacks CONTEXT_AMD64", s->path,
				  get32(ctx, 0x30));

	if (o && o->read_phys) {
		if (check_read_opts(o, s->path, err) < 0)
			return -1;
		uint8_t *buf = malloc(o->read_phys_len);
		if (!buf)
			return tvm_seterr(err, "%s: out of memory", s->path);
		uint64_t done = 0;
		int rc = 0;
		while (rc == 0 && done < o->read_phys_len) {
			uint64_t a = o->read_phys_gpa + done, pfn = a / PAGE, before = 0;
			bool found = false;
			for (uint32_t i = 0; i < nruns && !found; i++) {
				uint64_t base = get64(h, 0x98 + 16 * i), cnt = get64(h, 0xa0 + 16 * i);
				if (pfn >= base && pfn - base < cnt) {
					uint64_t foff = TVM_WINDUMP_HEADER_SIZE + (before + (pfn - base)) * PAGE + (a & (PAGE - 1));
					uint64_t chunk = (base + cnt) * PAGE - a;
					if (chunk > o->read_phys_len - done)
						chunk = o->read_phys_len - done;
					rc = src_read(s, foff, buf + done, chunk, "page data", err);
					done += chunk;
					found = true;
				}
				before += cnt;
			}
			if (!found)
				rc = tvm_seterr(err, "%s: guest-physical address 0x%" PRIx64 " is not in any run of the dump", s->path, a);
		}
		if (rc == 0)
			rc = emit(out, buf, o->read_phys_len, err);
		free(buf);
		return rc;
	}

	char sz[32], when[64] = "?", comment[129];
	uint64_t ft = get64(h, 0xfa8);
	if (ft >= 116444736000000000ull) {
		time_t t = (time_t)((ft - 116444736000000000ull) / 10000000ull);
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printable(comment, sizeof comment, h + 0xfb0, 128);
	fprintf(out, "%s: Windows full memory dump (DUMP_HEADER64)\n", s->path);
	fprintf(out, "  file: %" PRIu64 " bytes, %" PRIu64 " bytes allocated\n", s->size, s->blocks);
	fprintf(out, "  version %u.%u, machine 0x%x, %u processors\n", get32(h, 8), get32(h, 12), get32(h, 0x30),
		get32(h, 0x34));
	fprintf(out, "  DirectoryTableBase 0x%" PRIx64 "\n", get64(h, 0x10));
	fprintf(out, "  BugCheckCode 0x%08x (0x%" PRIx64 ", 0x%" PRIx64 ", 0x%" PRIx64 ", 0x%" PRIx64 ")\n", get32(h, 0x38),
		get64(h, 0x40), get64(h, 0x48), get64(h, 0x50), get64(h, 0x58));
	fprintf(out, "  SystemTime %s, SystemUpTime %.3f s\n", when, (double)get64(h, 0x1030) / 1e7);
	fprintf(out, "  Comment \"%s\"\n", comment);
	mib(sz, sizeof sz, npages * PAGE);
	fprintf(out, "  %u runs, %" PRIu64 " pages (%s); RequiredDumpSpace 0x%" PRIx64 " = file size %s\n", nruns, npages, sz,
		need, s->size == need ? "(ok)" : "(file is larger)");
	for (uint32_t i = 0; i < nruns; i++)
		fprintf(out, "    run %u: gpa 0x%016" PRIx64 " + 0x%" PRIx64 "\n", i, get64(h, 0x98 + 16 * i) * PAGE,
			get64(h, 0xa0 + 16 * i) * PAGE);
	fprintf(out, "  context (flags 0x%x): rip 0x%016" PRIx64 " rsp 0x%016" PRIx64 " rbp 0x%016" PRIx64 " eflags 0x%x\n",
		get32(ctx, 0x30), get64(ctx, 0xf8), get64(ctx, 0x98), get64(ctx, 0xa0), get32(ctx, 0x44));
	fprintf(out, "    cs 0x%x ss 0x%x  cr3 (DirectoryTableBase) 0x%" PRIx64 "  MxCsr 0x%08x (matches FltSave)\n",
		get16(ctx, 0x38), get16(ctx, 0x42), get64(h, 0x10), get32(ctx, 0x34));
	fprintf(out, "  exception: code 0x%08x address 0x%016" PRIx64 "\n", get32(h, 0xf00), get64(h, 0xf10));
	return 0;
}

/* ======================================================================
 * report.json
 * ====================================================================== */

static bool is_hex(const char *s, size_t minlen, size_t maxlen)
{
	size_t n = strlen(s);
	if (n < minlen || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static bool is_iso8601_utc(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS[.fraction]Z */
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	for (size_t i = 0; i < sizeof pat - 1; i++) {
		if (!s[i])
			return false;
		if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
			return false;
	}
	const char *p = s + sizeof pat - 1;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p[0] == 'Z' && p[1] == 0;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

static const json_t *need_member(const struct src *s, const json_t *obj, const char *key, const char *where,
				 json_type t, struct tvm_err *err)
{
	const json_t *v = json_object_get(obj, key);
	static const char *const tn[] = { [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
		[JSON_STRING] = "a string", [JSON_INTEGER] = "an integer", [JSON_REAL] = "a number",
		[JSON_TRUE] = "a boolean", [JSON_FALSE] = "a boolean", [JSON_NULL] = "null" };
	if (!v) {
		tvm_seterr(err, "%s: required member \"%s%s\" is missing", s->path, where, key);
		return NULL;
	}
	if (json_typeof(v) != t) {
		tvm_seterr(err, "%s: member \"%s%s\" is %s, expected %s", s->path, where, key, json_kind(v), tn[t]);
		return NULL;
	}
	return v;
}

static int sha256_fd(int fd, char hex[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	static __thread uint8_t buf[1 << 16];
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rc = -1;
			break;
		}
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -1;
	EVP_MD_CTX_free(ctx);
	if (rc == 0)
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return rc;
}

static int check_files(const struct src *s, const json_t *files, FILE *out, struct tvm_err *err)
{
	/* The directory that holds report.json. */
	char dir[4096];
	const char *slash = strrchr(s->path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == s->path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->path), s->path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return tvm_seterr(err, "%s: cannot open its directory %s: %s", s->path, dir, strerror(errno));
	const char *name;
	const json_t *v;
	int rc = 0;
	json_object_foreach((json_t *)files, name, v) {
		char where[300];
		snprintf(where, sizeof where, "files.%.200s.", name);
		if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
			rc = tvm_seterr(err, "%s: member \"files\" lists \"%.200s\", which is not a plain file name", s->path, name);
			break;
		}
		if (!json_is_object(v)) {
			rc = tvm_seterr(err, "%s: member \"files.%.200s\" is %s, expected an object", s->path, name, json_kind(v));
			break;
		}
		const json_t *size = need_member(s, v, "size", where, JSON_INTEGER, err);
		/* sha256 is recorded for small files; the large sparse memory dumps
		 * carry only their size (hashing them would lengthen the capture). */
		const json_t *sha = json_object_get(v, "sha256");
		if (!size) {
			rc = -1;
			break;
		}
		if (sha && (!json_is_string(sha) || !is_hex(json_string_value(sha), 64, 64))) {
			rc = tvm_seterr(err, "%s: member \"files.%.200s.sha256\" is not 64 hex digits", s->path, name);
			break;
		}
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			rc = tvm_seterr(err, "%s: listed file %s/%.200s %s", s->path, dir, name,
					fd < 0 ? strerror(errno) : "is not a regular file");
			if (fd >= 0)
				close(fd);
			break;
		}
		json_int_t want = json_integer_value(size);
		if (want < 0 || (uint64_t)want != (uint64_t)st.st_size) {
			rc = tvm_seterr(err, "%s: listed file %.200s is %lld bytes, report.json says %lld", s->path, name,
					(long long)st.st_size, (long long)want);
			close(fd);
			break;
		}
		if (!sha) {
			close(fd);
			fprintf(out, "  file %-16s %12lld bytes  size ok (no sha256 recorded)\n", name, (long long)want);
			continue;
		}
		char hex[65];
		if (sha256_fd(fd, hex) < 0) {
			rc = tvm_seterr(err, "%s: cannot hash listed file %.200s: %s", s->path, name, strerror(errno));
			close(fd);
			break;
		}
		close(fd);
		if (strcasecmp(hex, json_string_value(sha))) {
			rc = tvm_seterr(err, "%s: listed file %.200s has sha256 %s, report.json says %s", s->path, name, hex,
					json_string_value(sha));
			break;
		}
		fprintf(out, "  file %-16s %12lld bytes  sha256 ok\n", name, (long long)want);
	}
	close(dfd);
	return rc;
}

static int inspect_json(const struct src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	if (o && o->read_phys)
		return tvm_seterr(err, "%s: a report.json holds no guest memory", s->path);
	if (s->size > JSON_MAX)
		return tvm_seterr(err, "%s: %" PRIu64 " bytes is too large for a report.json (limit %u)", s->path, s->size,
				  JSON_MAX);
	char *text = malloc(s->size + 1);
	if (!text)
		return tvm_seterr(err, "%s: out of memory", s->path);
	if (src_read(s, 0, text, s->size, "the JSON text", err) < 0) {
		free(text);
		return -1;
	}
	json_error_t je;
	json_t *root = json_loadb(text, s->size, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!root)
		return tvm_seterr(err, "%s: invalid JSON at byte %d (line %d, column %d): %s", s->path, je.position, je.line,
				  je.column, je.text);
	int rc = -1;
	const json_t *v, *cause, *vcpus, *files;
	if (!json_is_object(root)) {
		tvm_seterr(err, "%s: the top level is %s, expected an object", s->path, json_kind(root));
		goto out;
	}
	if (!(v = need_member(s, root, "schema", "", JSON_STRING, err)))
		goto out;
	if (strcmp(json_string_value(v), "trialvm-report")) {
		tvm_seterr(err, "%s: \"schema\" is \"%.100s\", expected \"trialvm-report\"", s->path, json_string_value(v));
		goto out;
	}
	if (!(v = need_member(s, root, "version", "", JSON_INTEGER, err)))
		goto out;
	if (json_integer_value(v) != 1) {
		tvm_seterr(err, "%s: \"version\" is %lld, this trialvm reads version 1", s->path,
			   (long long)json_integer_value(v));
		goto out;
	}
	if (!need_member(s, root, "id", "", JSON_STRING, err) ||
	    !need_member(s, root, "trialvm_version", "", JSON_STRING, err) ||
	    !(v = need_member(s, root, "time", "", JSON_STRING, err)))
		goto out;
	if (!is_iso8601_utc(json_string_value(v))) {
		tvm_seterr(err, "%s: \"time\" \"%.100s\" is not an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)", s->path,
			   json_string_value(v));
		goto out;
	}
	if (!(cause = need_member(s, root, "cause", "", JSON_OBJECT, err)) ||
	    !need_member(s, cause, "kind", "cause.", JSON_STRING, err) ||
	    !need_member(s, cause, "summary", "cause.", JSON_STRING, err) ||
	    !need_member(s, cause, "vcpu", "cause.", JSON_INTEGER, err) ||
	    !(vcpus = need_member(s, root, "vcpus", "", JSON_ARRAY, err)) ||
	    !need_member(s, root, "console_tail", "", JSON_STRING, err) ||
	    !(files = need_member(s, root, "files", "", JSON_OBJECT, err)))
		goto out;
	size_t i;
	const json_t *c;
	json_array_foreach(vcpus, i, c) {
		char where[48];
		snprintf(where, sizeof where, "vcpus[%zu].", i);
		if (!json_is_object(c)) {
			tvm_seterr(err, "%s: member \"vcpus[%zu]\" is %s, expected an object", s->path, i, json_kind(c));
			goto out;
		}
		if (!need_member(s, c, "index", where, JSON_INTEGER, err))
			goto out;
		static const char *const regs[] = { "rip", "rsp", "cr3" };
		for (int r = 0; r < 3; r++) {
			const json_t *rv = need_member(s, c, regs[r], where, JSON_STRING, err);
			if (!rv)
				goto out;
			const char *str = json_string_value(rv);
			if (strncmp(str, "0x", 2) || !is_hex(str + 2, 1, 16)) {
				tvm_seterr(err, "%s: member \"%s%s\" \"%.40s\" is not a 0x-prefixed hex number", s->path, where,
					   regs[r], str);
				goto out;
			}
		}
	}
	fprintf(out, "%s: trialvm report, schema version 1\n", s->path);
	fprintf(out, "  id %s, trialvm %s, time %s\n", json_string_value(json_object_get(root, "id")),
		json_string_value(json_object_get(root, "trialvm_version")),
		json_string_value(json_object_get(root, "time")));
	fprintf(out, "  cause: %s on vCPU %lld: %s\n", json_string_value(json_object_get(cause, "kind")),
		(long long)json_integer_value(json_object_get(cause, "vcpu")),
		json_string_value(json_object_get(cause, "summary")));
	json_array_foreach(vcpus, i, c)
		fprintf(out, "  vcpu %lld: rip %s rsp %s cr3 %s\n", (long long)json_integer_value(json_object_get(c, "index")),
			json_string_value(json_object_get(c, "rip")), json_string_value(json_object_get(c, "rsp")),
			json_string_value(json_object_get(c, "cr3")));
	fprintf(out, "  console tail: %zu bytes\n", json_string_length(json_object_get(root, "console_tail")));
	static const char *const optional[] = { "app", "disassembly", "stack", "images" };
	for (int k = 0; k < 4; k++)
		if (json_object_get(root, optional[k]))
			fprintf(out, "  %s: present (%s)\n", optional[k], json_kind(json_object_get(root, optional[k])));
	if (check_files(s, files, out, err) < 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ====================================================================== */

int inspect_file(const char *path, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	struct src s = { .path = path };
	struct stat st;
	s.fd = open_input(path, &st);
	if (s.fd < 0)
		return tvm_seterr(err, "cannot open %s: %s", path, strerror(errno));
	int rc = -1;
	if (!S_ISREG(st.st_mode)) {
		tvm_seterr(err, "%s is not a regular file", path);
		goto out;
	}
	s.size = (uint64_t)st.st_size;
	s.blocks = (uint64_t)st.st_blocks * 512;
	uint8_t magic[64] = { 0 };
	uint64_t n = s.size < sizeof magic ? s.size : sizeof magic;
	if (n == 0) {
		tvm_seterr(err, "%s is empty", path);
		goto out;
	}
	if (src_read(&s, 0, magic, n, "the file's first bytes", err) < 0)
		goto out;
	size_t ws = 0;
	while (ws < n && (magic[ws] == ' ' || magic[ws] == '\t' || magic[ws] == '\n' || magic[ws] == '\r'))
		ws++;
	if (n >= 4 && !memcmp(magic, ELFMAG, SELFMAG))
		rc = inspect_elf(&s, o, out, err);
	else if (n >= 8 && !memcmp(magic, "PAGEDU64", 8))
		rc = inspect_windump(&s, o, out, err);
	else if (n >= 8 && !memcmp(magic, "PAGEDUMP", 8))
		tvm_seterr(err, "%s: a 32-bit Windows dump (\"PAGEDUMP\"); only 64-bit dumps are supported", path);
	else if (ws < n && magic[ws] == '{')
		rc = inspect_json(&s, o, out, err);
	else
		tvm_seterr(err, "%s: unrecognised content at offset 0 (not an ELF core, a Windows dump or a report.json)", path);
out:
	close(s.fd);
	return rc;
}
