/* reporter/inspect_appcore.c - the application core (app.core) for
 * `trialvm inspect`: an ELF process core as Linux writes one. */
#include "inspect_int.h"

#include <inttypes.h>

#include "../vmm/util.h"
#include "elfdump.h"

static const char *sig_name(unsigned sig)
{
	static const char *const names[32] = { "0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT",
		"SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
		"SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
		"SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS" };
	return sig < 32 ? names[sig] : "SIG?";
}


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

int insp_app_core(const struct insp_src *s, const struct insp_elf *e, const struct inspect_opts *o, FILE *out,
			    struct tvm_err *err)
{
	if (o && o->read_phys)
		return tvm_seterr(err, "%s: an application core holds user virtual memory, not guest-physical memory", s->path);
	const struct insp_note *pr = NULL, *ps = NULL, *si = NULL, *av = NULL, *fp = NULL;
	for (size_t i = 0; i < e->nnotes; i++) {
		const struct insp_note *n = &e->notes[i];
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
	if (insp_note_desc(s, pr, prb, sizeof prb, "NT_PRSTATUS", err) < 0 ||
	    insp_note_desc(s, ps, psb, sizeof psb, "NT_PRPSINFO", err) < 0 ||
	    (si && insp_note_desc(s, si, sib, sizeof sib, "NT_SIGINFO", err) < 0) ||
	    (fp && insp_note_desc(s, fp, fpb, sizeof fpb, "NT_FPREGSET", err) < 0))
		return -1;
	if (av && (av->descsz % 16))
		return tvm_seterr(err, "%s: NT_AUXV note at offset 0x%" PRIx64 " has size %u, not a multiple of 16", s->path,
				  av->desc_off, av->descsz);
	char fname[17], args[81];
	insp_printable(fname, sizeof fname, psb + 0x28, 16);
	insp_printable(args, sizeof args, psb + 0x38, 80);
	unsigned sig = insp_get16(prb, 0x0c);
	fprintf(out, "%s: application core (ELF process core)\n", s->path);
	fprintf(out, "  file: %" PRIu64 " bytes, %" PRIu64 " bytes allocated\n", s->size, s->blocks);
	fprintf(out, "  process: %s (pid %u), command line: %s\n", fname, insp_get32(prb, 0x20), args);
	fprintf(out, "  signal: %u (%s)", sig, sig_name(sig));
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
