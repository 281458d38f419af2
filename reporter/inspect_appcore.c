/* reporter/inspect_appcore.c - the application core (app.core) for
 * `trialvm inspect`: an ELF process core as Linux writes one. */
#include "inspect_int.h"

#include <inttypes.h>

#include "../vmm/util.h"
#include "elfdump.h"


static void print_regs(FILE *out, const uint8_t *r /* user_regs_struct */)
{
	static const char *const n[27] = { "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
		"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
		"gs_base", "ds", "es", "fs", "gs" };
	static const int order[] = { 16, 19, 4, 18, 10, 5, 11, 12, 13, 14, 9, 8, 7, 6, 3, 2, 1, 0, 17, 20, 21, 22 };
	for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
		fprintf(out, "%s    %-8s 0x%016" PRIx64 "", i % 3 == 0 ? (i ? "\n" : "") : "", n[order[i]],
			insp_get64(r, 8u * (unsigned)order[i]));
	fprintf(out, "\n");
}

/* Count the notes of kind k; the first in *first. */
static unsigned count(const struct insp_elf *e, enum insp_note_kind k, const struct insp_note **first)
{
	unsigned n = 0;
	*first = NULL;
	for (size_t i = 0; i < e->nnotes; i++)
		if (e->notes[i].kind == k && !n++)
			*first = &e->notes[i];
	return n;
}

int insp_app_core(const struct insp_src *s, const struct insp_elf *e, const struct inspect_opts *o, FILE *out,
		  struct tvm_err *err)
{
	if (o && o->read_phys)
		return tvm_seterr(err, "%s: an application core holds user virtual memory, not guest-physical memory", s->path);
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct insp_note *n = &e->notes[i];
		if (n->kind == INSP_NOTE_UNKNOWN || n->kind == INSP_NOTE_QEMU || n->kind == INSP_NOTE_VMCOREINFO)
			return tvm_seterr(err, "%s: note %zu at offset 0x%" PRIx64 " (owner name \"%s\", type 0x%x) is not one an application core holds",
					  s->path, i, n->off, n->shown, n->type);
	}
	const struct insp_note *pr, *ps, *si, *av, *fp, *nf, *xs;
	unsigned npr = count(e, INSP_NOTE_PRSTATUS, &pr), nps = count(e, INSP_NOTE_PRPSINFO, &ps),
		 nsi = count(e, INSP_NOTE_SIGINFO, &si), nav = count(e, INSP_NOTE_AUXV, &av),
		 nfp = count(e, INSP_NOTE_FPREGSET, &fp), nnf = count(e, INSP_NOTE_FILE, &nf),
		 nxs = count(e, INSP_NOTE_XSTATE, &xs);
	if (!npr)
		return tvm_seterr(err, "%s: application core has no NT_PRSTATUS note (the registers)", s->path);
	if (!ps)
		return tvm_seterr(err, "%s: application core has no NT_PRPSINFO note (its other notes, from offset 0x%" PRIx64 ", are a process core's): the file is damaged",
				  s->path, e->notes[0].off);
	/* One process: one NT_PRPSINFO, NT_SIGINFO, NT_AUXV and NT_FILE; one
	 * NT_PRSTATUS per thread and at most one NT_FPREGSET and xstate each. */
	const struct {
		unsigned n, max;
		const char *what;
	} lim[] = { { nps, 1, "NT_PRPSINFO" }, { nsi, 1, "NT_SIGINFO" }, { nav, 1, "NT_AUXV" }, { nnf, 1, "NT_FILE" },
		    { nfp, npr, "NT_FPREGSET" }, { nxs, npr, "NT_X86_XSTATE" } };
	for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
		if (lim[i].n > lim[i].max)
			return tvm_seterr(err, "%s: application core has %u %s notes, at most %u expected (%u NT_PRSTATUS): the file is damaged",
					  s->path, lim[i].n, lim[i].what, lim[i].max, npr);
	uint8_t prb[TVM_PRSTATUS_SIZE], psb[0x88], sib[128], fpb[512];
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct insp_note *n = &e->notes[i];
		if ((n->kind == INSP_NOTE_PRSTATUS && insp_note_desc(s, n, prb, sizeof prb, "NT_PRSTATUS", err) < 0) ||
		    (n->kind == INSP_NOTE_FPREGSET && insp_note_desc(s, n, fpb, sizeof fpb, "NT_FPREGSET", err) < 0))
			return -1;
	}
	if (insp_note_desc(s, pr, prb, sizeof prb, "NT_PRSTATUS", err) < 0 ||
	    insp_note_desc(s, ps, psb, sizeof psb, "NT_PRPSINFO", err) < 0 ||
	    (si && insp_note_desc(s, si, sib, sizeof sib, "NT_SIGINFO", err) < 0) ||
	    (fp && insp_note_desc(s, fp, fpb, sizeof fpb, "NT_FPREGSET", err) < 0))
		return -1;
	if (av && (av->descsz % 16))
		return tvm_seterr(err, "%s: NT_AUXV note at offset 0x%" PRIx64 " has size %u, not a multiple of 16", s->path,
				  av->off, av->descsz);
	unsigned sig = insp_get16(prb, 0x0c);
	if (si && insp_get32(sib, 0) != sig)
		return tvm_seterr(err, "%s: NT_SIGINFO si_signo %u at offset 0x%" PRIx64 " differs from NT_PRSTATUS pr_cursig %u at offset 0x%" PRIx64 ": the file is damaged",
				  s->path, insp_get32(sib, 0), si->desc_off, sig, pr->desc_off + 0x0c);
	if (insp_elf_no_overlap(s, e, false, err) < 0)
		return -1;
	/* pr_fname and pr_psargs come from the guest: escaped. */
	char fname[16 * 10 + 1], args[80 * 10 + 1];
	insp_esc(fname, sizeof fname, psb + 0x28, 16);
	insp_esc(args, sizeof args, psb + 0x38, 80);
	fprintf(out, "%s: application core (ELF process core)\n", s->path);
	fprintf(out, "  file: %" PRIu64 " bytes, %" PRIu64 " bytes allocated\n", s->size, s->blocks);
	fprintf(out, "  process: %s (pid %u), command line: %s\n", fname, insp_get32(prb, 0x20), args);
	if (npr > 1)
		fprintf(out, "  threads: %u (the first one's state follows)\n", npr);
	fprintf(out, "  signal: %u (%s)", sig, signal_name(sig) ? signal_name(sig) : "SIG?");
	if (si)
		fprintf(out, ", si_code %d, si_addr 0x%" PRIx64, (int)insp_get32(sib, 8), insp_get64(sib, 16));
	fprintf(out, "\n  registers:\n");
	print_regs(out, prb + 0x70);
	if (fp)
		fprintf(out, "  fpu: fcw 0x%04x mxcsr 0x%08x\n", insp_get16(fpb, 0), insp_get32(fpb, 24));
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
