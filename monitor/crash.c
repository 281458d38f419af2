/* monitor/crash.c - the diagnosis of a crash event. This is the single place
 * every crash source ends up; crash reports and dumps hook in here. */
#include "crash.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <string.h>

#include "../devices/devices.h"
#include "../devices/hcall.h"
#include "../reporter/crash_state.h"
#include "../vmm/util.h"
#include "../vmm/guestmem.h"
#include "../vmm/text.h"
#include "disasm.h"
#include "report.h"
#include "symbols.h"


static const char *signal_meaning(unsigned signo)
{
	switch (signo) {
	case 4: return "illegal instruction";
	case 5: return "trace/breakpoint trap";
	case 6: return "aborted";
	case 7: return "bus error";
	case 8: return "arithmetic exception";
	case 11: return "segmentation fault";
	default: return "fatal signal";
	}
}

static const char *si_code_name(unsigned signo, int code)
{
	if (code == 128)
		return "SI_KERNEL";
	if (code == -6)
		return "SI_TKILL";
	if (code == 0)
		return "SI_USER";
	switch (signo) {
	case 11: return code == 1 ? "SEGV_MAPERR" : code == 2 ? "SEGV_ACCERR" : NULL;
	case 8:
		switch (code) {
		case 1: return "FPE_INTDIV";
		case 2: return "FPE_INTOVF";
		case 3: return "FPE_FLTDIV";
		case 4: return "FPE_FLTOVF";
		case 5: return "FPE_FLTUND";
		case 6: return "FPE_FLTRES";
		case 7: return "FPE_FLTINV";
		}
		return NULL;
	case 4:
		switch (code) {
		case 1: return "ILL_ILLOPC";
		case 2: return "ILL_ILLOPN";
		case 5: return "ILL_PRVOPC";
		case 6: return "ILL_PRVREG";
		}
		return NULL;
	case 5: return code == 1 ? "TRAP_BRKPT" : code == 2 ? "TRAP_TRACE" : NULL;
	case 7: return code == 1 ? "BUS_ADRALN" : code == 2 ? "BUS_ADRERR" : NULL;
	}
	return NULL;
}


static void print_regs(const uint64_t *g, uint64_t rflags)
{
	fprintf(stderr,
		"  RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n"
		"  RSI %016llx RDI %016llx RBP %016llx RSP %016llx\n"
		"  R8  %016llx R9  %016llx R10 %016llx R11 %016llx\n"
		"  R12 %016llx R13 %016llx R14 %016llx R15 %016llx\n"
		"  RFLAGS %08llx",
		(unsigned long long)g[0], (unsigned long long)g[3], (unsigned long long)g[1], (unsigned long long)g[2],
		(unsigned long long)g[6], (unsigned long long)g[7], (unsigned long long)g[5], (unsigned long long)g[4],
		(unsigned long long)g[8], (unsigned long long)g[9], (unsigned long long)g[10], (unsigned long long)g[11],
		(unsigned long long)g[12], (unsigned long long)g[13], (unsigned long long)g[14], (unsigned long long)g[15],
		(unsigned long long)rflags);
}

/* Search guest RAM for the guest kernel's VMCOREINFO ELF note (Linux keeps
 * one: namesz 11, "VMCOREINFO", type 0, text starting OSRELEASE=). Pages the
 * guest never touched are skipped without reading them. */
static const char *find_vmcoreinfo(const struct guest_mem *m, size_t *len)
{
	static const char name[12] = "VMCOREINFO";
	long pg = sysconf(_SC_PAGESIZE);
	for (int i = 0; i < m->n; i++) {
		const uint8_t *base = m->r[i].host;
		uint64_t size = m->r[i].size;
		for (uint64_t off = 0; off < size; off += 1ull << 21) {
			uint64_t chunk = size - off < (1ull << 21) ? size - off : (1ull << 21);
			unsigned char vec[(1 << 21) / 4096];
			if (mincore((void *)(base + off), chunk, vec) < 0)
				continue;
			for (uint64_t p = 0; p < chunk; p += (uint64_t)pg) {
				if (!(vec[p / (uint64_t)pg] & 1))
					continue;
				const uint8_t *page = base + off + p;
				for (uint64_t o = 12; o + 12 + 10 <= (uint64_t)pg; o += 4) {
					if (memcmp(page + o, name, 12) != 0)
						continue;
					uint32_t hdr[3];
					memcpy(hdr, page + o - 12, 12);
					uint64_t at = off + p + o + 12;
					if (hdr[0] != 11 || hdr[2] != 0 || hdr[1] < 10 || hdr[1] > 65536 || at + hdr[1] > size)
						continue;
					if (memcmp(base + at, "OSRELEASE=", 10) != 0)
						continue;
					const char *text = (const char *)(base + at);
					*len = strnlen(text, hdr[1]);
					return text;
				}
			}
		}
	}
	return NULL;
}

static enum crash_kind kind_of(enum tvm_event_kind k, const char **name)
{
	switch (k) {
	case TVM_EV_APP_FAULT:
	case TVM_EV_GUEST_CORE: *name = "app-fault"; return CRASH_APP_FAULT;
	case TVM_EV_PANIC: *name = "panic"; return CRASH_PANIC;
	case TVM_EV_BREAKPOINT: *name = "breakpoint"; return CRASH_BREAKPOINT;
	case TVM_EV_TRIPLE_FAULT: *name = "triple-fault"; return CRASH_TRIPLE_FAULT;
	case TVM_EV_INTERNAL_ERROR: *name = "internal-error"; return CRASH_INTERNAL_ERROR;
	case TVM_EV_FAIL_ENTRY: *name = "fail-entry"; return CRASH_FAIL_ENTRY;
	case TVM_EV_HANG: *name = "hang"; return CRASH_HANG;
	default: *name = "unknown-exit"; return CRASH_UNKNOWN_EXIT;
	}
}

/* Disassemble around pc: from the enclosing function's start when it is
 * close, else from pc; keep a few instructions before pc and after it. */
static int disasm_around(const uint8_t *code, uint64_t code_len, uint64_t code_base, uint64_t pc, int bits,
			 const struct symtab *st, uint64_t bias, struct disasm_insn *out, int max)
{
	struct disasm_insn all[128];
	uint64_t start = pc;
	uint64_t off;
	if (st && symtab_lookup(st, pc - bias, &off) && off <= pc - code_base)
		start = pc - off;
	int n = disasm_range(code, code_len, code_base, start, pc, bits, st, bias, 4, all, 128);
	int cur = -1;
	for (int i = 0; i < n; i++)
		if (all[i].current)
			cur = i;
	if (cur < 0 && start != pc) /* pc was not on an instruction boundary from there */
		n = disasm_range(code, code_len, code_base, pc, pc, bits, st, bias, 4, all, 128), cur = 0;
	int first = cur > 6 ? cur - 6 : 0;
	int k = 0;
	for (int i = first; i < n && k < max; i++)
		out[k++] = all[i];
	return k;
}

/* Guest-supplied text (application names, summaries, symbol names from
 * guest files) for stderr: controls, bidirectional controls and invalid
 * UTF-8 escaped (vmm/text.h). Reads at most max bytes of s, which need not
 * be NUL-terminated; dst holds TERM_CAP(max) bytes, enough for all of it. */
#define TERM_CAP(max) ((max) * 9 + 1)
static const char *term_text(const char *s, size_t max, char *dst, size_t cap)
{
	tvm_escape(s, strnlen(s, max), TVM_ESC_TERMINAL, dst, cap);
	return dst;
}

static void print_disasm(const struct disasm_insn *d, int n)
{
	for (int i = 0; i < n; i++) {
		char bytes[16 * 3 + 1] = "";
		for (int b = 0; b < d[i].size && b < 10; b++)
			snprintf(bytes + 3 * b, 4, "%02x ", d[i].bytes[b]);
		char sym[TERM_CAP(sizeof d[i].symbol)];
		fprintf(stderr, "  %s %016llx  %-24s %-36s %s\n", d[i].current ? "=>" : "  ",
			(unsigned long long)d[i].address, bytes, d[i].text,
			term_text(d[i].symbol, sizeof d[i].symbol, sym, sizeof sym));
	}
}

/* A reader of guest-virtual memory: guest_read_virt by a CR3, or
 * guest_read_cpu by a vCPU's mode. */
struct vreader {
	const struct guest_mem *mem;
	const struct cpu_state *cpu; /* NULL: by cr3 */
	uint64_t cr3;
};
static uint64_t vread(const struct vreader *r, uint64_t va, void *dst, uint64_t len)
{
	return r->cpu ? guest_read_cpu(r->mem, r->cpu, va, dst, len) : guest_read_virt(r->mem, r->cr3, va, dst, len);
}

/* The code window around a guest-supplied pc: up to CODE_BEFORE bytes before
 * it and CODE_AFTER after, into code[cap] (cap >= CODE_BEFORE + CODE_AFTER),
 * starting at the first page that reads; never past 2^64. Returns the bytes
 * read (0: pc itself is not readable) and *base, the address of code[0]. */
#define CODE_BEFORE 512u
#define CODE_AFTER 64u
static uint64_t read_code_window(const struct vreader *r, uint64_t pc, uint8_t *code, size_t cap, uint64_t *base)
{
	uint64_t lo = pc >= CODE_BEFORE ? pc - CODE_BEFORE : 0;
	uint64_t end = pc > UINT64_MAX - CODE_AFTER ? UINT64_MAX : pc + CODE_AFTER; /* exclusive */
	*base = pc;
	for (uint64_t b = lo; b <= pc;) {
		uint64_t want = end - b;
		if (want > cap)
			want = cap;
		uint64_t n = vread(r, b, code, want);
		if (n > pc - b) {
			*base = b;
			return n;
		}
		uint64_t next = (b & ~0xfffull) + 0x1000;
		if (next <= b) /* the last page: no next one */
			break;
		b = next;
	}
	return 0;
}

static const char *exit_reason_name(uint32_t r)
{
	switch (r) {
	case 2: return "a port I/O exit";  /* KVM_EXIT_IO */
	case 6: return "an MMIO exit";     /* KVM_EXIT_MMIO */
	case 10: return "an interruption"; /* KVM_EXIT_INTR */
	default: return "a VM exit";
	}
}

/* KVM re-initialised the crashing vCPU (AMD after SHUTDOWN): never present
 * that reset state as the crash state. Use the last state trialvm saw, or
 * zeros, and say so. */
static void use_last_seen_state(struct vm *vm, struct crash_state *cs)
{
	int i = cs->crashing_cpu;
	uint64_t exit_no = 0;
	uint32_t reason = 0;
	struct cpu_state seen;
	static const char why[] = "KVM re-initialised the vCPU after the SHUTDOWN intercept (AMD's SVM leaves the "
				  "state undefined there; Intel keeps it)";
	if (vm_last_seen_cpu(vm, i, &seen, &exit_no, &reason) == 0) {
		cs->cpu[i] = seen;
		snprintf(cs->cpu_state_note, sizeof(cs->cpu_state_note),
			 "%s; the registers shown are the last ones trialvm saw, at the vCPU's exit %llu (%s), "
			 "before the fault",
			 why, (unsigned long long)exit_no, exit_reason_name(reason));
	} else {
		memset(&cs->cpu[i], 0, sizeof(cs->cpu[i]));
		cs->cpu[i].index = i;
		snprintf(cs->cpu_state_note, sizeof(cs->cpu_state_note),
			 "%s; trialvm saw no earlier state of this vCPU, so its registers are left zero", why);
	}
	cs->cpu_state_lost = true;
}

/* The exit status of an event that ends the run without a crash (its
 * one-line reason logged) in *status; false for a crash. */
static bool ended_without_crash(const struct tvm_event *ev, int *status)
{
	char detail[TERM_CAP(sizeof ev->detail)];
	term_text(ev->detail, sizeof ev->detail, detail, sizeof detail);
	switch (ev->kind) {
	case TVM_EV_POWEROFF:
		tvm_debug("%s", detail);
		*status = ev->exit_code;
		return true;
	case TVM_EV_RESET:
		tvm_log("%s; trialvm does not reboot guests, so the run ends here", detail);
		*status = 0;
		return true;
	case TVM_EV_SIGNAL:
		tvm_log("%s; the guest was stopped", detail);
		*status = 128 + (int)ev->reason;
		return true;
	case TVM_EV_VMM_ERROR:
		tvm_log("error: %s", detail);
		*status = TVM_EXIT_ERROR;
		return true;
	case TVM_EV_QUIT:
		tvm_log("%s", detail);
		*status = 0;
		return true;
	case TVM_EV_CHECKPOINT:
		tvm_debug("%s", detail);
		*status = 0;
		return true;
	case TVM_EV_DIVERGED:
		tvm_log("%s", detail);
		*status = TVM_EXIT_DIVERGED;
		return true;
	case TVM_EV_REPLAY_END:
		tvm_log("%s", detail);
		*status = 0;
		return true;
	case TVM_EV_NONE:
		tvm_log("error: the run ended for no known reason");
		*status = TVM_EXIT_ERROR;
		return true;
	case TVM_EV_APP_FAULT:
	case TVM_EV_GUEST_CORE:
	case TVM_EV_PANIC:
	case TVM_EV_BREAKPOINT:
	case TVM_EV_TRIPLE_FAULT:
	case TVM_EV_INTERNAL_ERROR:
	case TVM_EV_FAIL_ENTRY:
	case TVM_EV_UNKNOWN_EXIT:
	case TVM_EV_HANG:
		break;
	}
	return false;
}

/* The console tails a report keeps: everything, and (a Linux image) the
 * kernel's log and the program's output apart. */
struct console_tails {
	uint8_t all[CONSOLE_TAIL], serial[CONSOLE_TAIL], hvc0[CONSOLE_TAIL];
};

/* Capture the machine: every vCPU (stopped, or paused), the irqchip,
 * guest memory, the console tails (into *tails). cs->kind and the
 * event's fields are the caller's. 0, or -1 when out of memory; cs->cpu
 * is freed by the caller. */
static int capture_machine(struct vm *vm, struct crash_state *cs, struct console_tails *tails, bool linux_image)
{
	vm_clear_sw_breakpoints(vm); /* no dump shows trialvm's int3 */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	cs->time_unix_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	cs->uptime_ns = vm_uptime_ns(vm);
	cs->ncpus = vm_ncpus(vm);
	if (cs->crashing_cpu < 0 || cs->crashing_cpu >= cs->ncpus)
		cs->crashing_cpu = 0;
	cs->cpu = calloc((size_t)cs->ncpus, sizeof(*cs->cpu));
	if (!cs->cpu) {
		tvm_log("error: out of memory capturing the crash");
		return -1;
	}
	struct tvm_err err = { "" };
	for (int i = 0; i < cs->ncpus; i++)
		if (vm_capture_cpu(vm, i, &cs->cpu[i], &err) < 0)
			tvm_log("warning: %s", err.msg);
	cs->mem = vm_guest_mem(vm);
	if (vm_capture_irqchip(vm, &cs->irqchip, &err) < 0)
		tvm_log("warning: %s", err.msg);
	cs->vmcoreinfo = find_vmcoreinfo(&cs->mem, &cs->vmcoreinfo_len);
	cs->console_len = console_tail(tails->all, sizeof(tails->all));
	cs->console = tails->all;
	if (linux_image) {
		cs->kernel_log_len = console_source_tail(CONSOLE_SERIAL, tails->serial, sizeof(tails->serial));
		cs->kernel_log = tails->serial;
		cs->app_output_len = console_source_tail(CONSOLE_HVC0, tails->hvc0, sizeof(tails->hvc0));
		cs->app_output = tails->hvc0;
	}
	return 0;
}

/* Capture the crash (every vCPU stopped: vm_run returned), with the
 * application's fault record. As capture_machine. */
static int capture_crash(const struct tvm_event *ev, struct vm *vm, struct crash_state *cs,
			 struct console_tails *tails, bool linux_image)
{
	memset(cs, 0, sizeof(*cs));
	const char *kname;
	cs->kind = kind_of(ev->kind, &kname);
	snprintf(cs->kind_name, sizeof(cs->kind_name), "%s", kname);
	snprintf(cs->summary, sizeof(cs->summary), "%s", ev->detail);
	cs->crashing_cpu = ev->kind == TVM_EV_HANG ? (int)ev->data[0] : ev->vcpu;
	if (capture_machine(vm, cs, tails, linux_image) < 0)
		return -1;
	if (ev->kind == TVM_EV_TRIPLE_FAULT && ev->data[0])
		use_last_seen_state(vm, cs);
	if (ev->kind == TVM_EV_APP_FAULT && ev->payload && ev->payload_len == sizeof(struct app_fault))
		cs->app = ev->payload;
	if (ev->kind == TVM_EV_GUEST_CORE && ev->payload && ev->payload_len == sizeof(struct guest_core))
		cs->guest_core = ev->payload;
	return 0;
}

/* What the diagnosis knows about the point of the crash. */
struct crash_site {
	const struct cpu_state *cpu; /* the crashing vCPU */
	struct vreader rd;           /* how the guest sees its memory there */
	struct symtab *st;           /* symbols for pc (application or kernel), or NULL */
	uint64_t pc, sp, bias;       /* bias: added to the symbols' addresses */
	int bits;                    /* code size: 64, 32 or 16 */
	uint8_t code[CODE_BEFORE + CODE_AFTER];
	uint64_t code_base, code_len; /* code[0] is at code_base; 0: pc not readable */
	uint64_t stack[16];          /* the top stack words */
	int nstack;
	struct disasm_insn dis[16];
	int ndis;
	const char *fn;              /* the symbol containing pc, or NULL */
	char rip_sym[160];           /* "fn+0xOFF" (raw guest bytes) when fn */
	uint64_t ret_addr;           /* application: the return address in the frame at rbp */
	const char *caller;          /* ... and the symbol containing it, or NULL */
	uint64_t caller_off;
};

/* The crashing context's registers, its view of memory and its symbols. */
static void locate_site(const struct crash_state *cs, const struct crash_ctx *ctx, struct crash_site *s)
{
	s->cpu = &cs->cpu[cs->crashing_cpu];
	if (cs->app) {
		const struct tvm_fault *f = &cs->app->f;
		s->st = symtab_load(ctx->app_path);
		s->pc = f->regs.rip;
		s->sp = f->regs.rsp;
		s->bias = f->load_bias;
		s->bits = 64;
		s->rd = (struct vreader){ .mem = &cs->mem, .cr3 = f->page_table_root };
	} else {
		const struct cpu_state *cpu = s->cpu;
		s->st = symtab_load(ctx->symbols_path ? ctx->symbols_path : ctx->kernel_path);
		s->pc = cpu->rip;
		s->sp = cpu->gpr[4];
		s->bias = 0;
		s->bits = ((cpu->efer & 0x400) && cpu->cs.l) ? 64 : cpu->cs.db ? 32 : 16;
		s->rd = (struct vreader){ .mem = &cs->mem, .cpu = cpu };
	}
}

/* The code window around pc and the top of the stack, as the guest sees them. */
static void read_site(struct crash_site *s)
{
	s->code_len = read_code_window(&s->rd, s->pc, s->code, sizeof(s->code), &s->code_base);
	s->nstack = (int)(vread(&s->rd, s->sp, s->stack, sizeof(s->stack)) / 8);
}

/* Disassembly around pc and the symbols for pc (and, for an application,
 * for the return address of the frame at rbp). */
static void name_site(const struct crash_state *cs, struct crash_site *s)
{
	s->ndis = s->code_len ? disasm_around(s->code, s->code_len, s->code_base, s->pc, s->bits, s->st, s->bias,
					      s->dis, 12)
			      : 0;
	uint64_t off;
	s->fn = symtab_lookup(s->st, s->pc - s->bias, &off);
	if (s->fn)
		snprintf(s->rip_sym, sizeof(s->rip_sym), "%s+0x%llx", s->fn, (unsigned long long)off);
	if (cs->app) {
		uint64_t rbp = cs->app->f.regs.rbp, frame[2];
		if (rbp && vread(&s->rd, rbp, frame, sizeof(frame)) == sizeof(frame)) {
			s->ret_addr = frame[1];
			s->caller = symtab_lookup(s->st, frame[1] - s->bias, &s->caller_off);
		}
	}
}

/* The one-screen summary of an application fault. */
static void print_app_summary(const struct crash_state *cs, const struct crash_site *s)
{
	const struct tvm_fault *f = &cs->app->f;
	const char *sname = signal_name(f->signo);
	const char *code_name = si_code_name(f->signo, f->si_code);
	char name[TERM_CAP(sizeof f->app_name)], sym[TERM_CAP(sizeof s->rip_sym)];
	term_text(f->app_name, sizeof f->app_name, name, sizeof name);
	fprintf(stderr, "trialvm: the application %s crashed: %s (%s)", name[0] ? name : "?",
		sname ? sname : "unknown signal", signal_meaning(f->signo));
	if (code_name)
		fprintf(stderr, ", %s", code_name);
	if (f->vector != TVM_FAULT_NO_VECTOR)
		fprintf(stderr, " at address 0x%llx (CPU exception %u, error code 0x%llx)", (unsigned long long)f->addr,
			f->vector, (unsigned long long)f->error_code);
	fprintf(stderr, "\n  RIP 0x%llx%s%s\n", (unsigned long long)s->pc, s->fn ? " in " : "",
		term_text(s->rip_sym, sizeof s->rip_sym, sym, sizeof sym));
	if (s->caller) {
		char *caller = tvm_escape_dup(s->caller, strlen(s->caller), TVM_ESC_TERMINAL);
		fprintf(stderr, "  called from 0x%llx in %s+0x%llx\n", (unsigned long long)s->ret_addr,
			caller ? caller : "?", (unsigned long long)s->caller_off);
		free(caller);
	}
	const struct tvm_user_regs *r = &f->regs;
	uint64_t g[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
			   r->r8,  r->r9,  r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	print_disasm(s->dis, s->ndis);
	print_regs(g, r->eflags);
	fprintf(stderr, " FS_BASE %016llx\n", (unsigned long long)r->fs_base);
}

/* The one-screen summary of a guest (kernel) crash. */
static void print_guest_summary(const struct tvm_event *ev, const struct crash_state *cs, const struct crash_site *s)
{
	const struct cpu_state *cpu = s->cpu;
	char detail[TERM_CAP(sizeof ev->detail)], sym[TERM_CAP(sizeof s->rip_sym)];
	fprintf(stderr, "trialvm: guest crashed on vCPU %d: %s.\n", cs->crashing_cpu,
		term_text(ev->detail, sizeof ev->detail, detail, sizeof detail));
	if (cs->cpu_state_lost)
		fprintf(stderr, "  The CPU state at the fault was lost: %s.\n", cs->cpu_state_note);
	fprintf(stderr, "  RIP 0x%llx%s%s (CS 0x%x, CPL %d, %s)\n", (unsigned long long)s->pc, s->fn ? " in " : "",
		term_text(s->rip_sym, sizeof s->rip_sym, sym, sizeof sym), cpu->cs.selector, cpu->cs.dpl,
		s->bits == 64 ? "64-bit mode" : (cpu->cr0 & 1) ? "protected mode" : "real mode");
	if (s->ndis)
		print_disasm(s->dis, s->ndis);
	else
		fprintf(stderr, "  instruction bytes at RIP: (not readable)\n");
	char ib[16 * 3 + 1] = "";
	uint64_t at = s->pc - s->code_base;
	for (uint64_t b = 0; s->code_len && at + b < s->code_len && b < 16; b++)
		snprintf(ib + 3 * b, 4, " %02x", s->code[at + b]);
	fprintf(stderr, "  instruction bytes at RIP:%s\n", ib[0] ? ib : " (not readable)");
	print_regs(cpu->gpr, cpu->rflags);
	fprintf(stderr, " CR0 %08llx CR2 %016llx CR3 %016llx CR4 %08llx EFER %llx\n", (unsigned long long)cpu->cr0,
		(unsigned long long)cpu->cr2, (unsigned long long)cpu->cr3, (unsigned long long)cpu->cr4,
		(unsigned long long)cpu->efer);
	if (ev->kind == TVM_EV_INTERNAL_ERROR && (ev->data[0] || ev->data[1]))
		fprintf(stderr, "  KVM internal error data: %llx %llx %llx %llx\n", (unsigned long long)ev->data[0],
			(unsigned long long)ev->data[1], (unsigned long long)ev->data[2],
			(unsigned long long)ev->data[3]);
}

/* The report directory; its path in path[cap]. */
static int write_report(const struct crash_ctx *ctx, const struct crash_state *cs, const struct crash_site *s,
			const struct report_snapshots *rsn, char *path, size_t cap, struct tvm_err *err)
{
	struct report_inputs in = {
		.snaps = rsn, .cs = cs, .dir = ctx->report_dir, .kernel = ctx->kernel_path, .initrd = ctx->initrd_path,
		.cpio = ctx->cpio_path, .app = ctx->app_path, .dis = s->dis, .ndis = s->ndis,
		.dis_space = "guest-virtual", .stack_rsp = s->sp, .stack = s->stack, .nstack = s->nstack,
		.rip_symbol = s->fn ? s->rip_sym : NULL,
		.disks = ctx->disks, .disk_masters = ctx->disk_masters, .ndisks = ctx->ndisks,
	};
	return report_write(&in, path, cap, err);
}

/* The report directory, and a line naming it (or saying why there is none). */
static void write_crash_report(const struct tvm_event *ev, const struct crash_ctx *ctx, const struct crash_state *cs,
			       const struct crash_site *s, const struct report_snapshots *rsn)
{
	char path[4096];
	struct tvm_err err = { "" };
	if (write_report(ctx, cs, s, rsn, path, sizeof(path), &err) == 0)
		fprintf(stderr, "trialvm: crash report: %s (capture pause %.1f ms)\n", path,
			(now_ns() - ev->raised_ns) / 1e6);
	else
		fprintf(stderr, "trialvm: error: the crash report could not be written: %s\n", err.msg);
}

int crash_live_report(const struct crash_ctx *ctx, const char *why, char *path, size_t cap, double *pause_ms,
		      struct tvm_err *err)
{
	if (!ctx || !ctx->report_dir)
		return tvm_seterr(err, "this run writes no reports (--no-report)");
	uint64_t t0 = now_ns();
	if (vm_pause(ctx->vm, 2000, err) < 0)
		return -1;
	struct crash_state cs;
	memset(&cs, 0, sizeof(cs));
	cs.kind = CRASH_LIVE;
	snprintf(cs.kind_name, sizeof(cs.kind_name), "live");
	snprintf(cs.summary, sizeof(cs.summary), "no crash: %s while the guest ran", why);
	static struct console_tails tails;
	int rc = -1;
	if (capture_machine(ctx->vm, &cs, &tails, ctx->linux_image) < 0) {
		tvm_seterr(err, "out of memory capturing the machine");
	} else {
		struct crash_site s;
		memset(&s, 0, sizeof(s));
		locate_site(&cs, ctx, &s);
		read_site(&s);
		name_site(&cs, &s);
		rc = write_report(ctx, &cs, &s, NULL, path, cap, err);
		symtab_free(s.st);
	}
	vm_rearm_sw_breakpoints(ctx->vm); /* the guest goes on with them */
	vm_resume(ctx->vm);
	*pause_ms = (now_ns() - t0) / 1e6;
	free(cs.cpu);
	return rc;
}

int crash_handle_event(const struct tvm_event *ev, const struct crash_ctx *ctx)
{
	int status;
	if (ended_without_crash(ev, &status))
		return status;
	struct crash_state cs;
	static struct console_tails tails;
	if (capture_crash(ev, ctx->vm, &cs, &tails, ctx->linux_image) < 0)
		return TVM_EXIT_CRASHED;
	if (cs.app)
		cs.app_file = ctx->app_file;
	/* The crash-time machine, after capture_crash took trialvm's
	 * breakpoints out of guest memory. */
	static struct report_snapshots rsn;
	memset(&rsn, 0, sizeof(rsn));
	if (ctx->crash_snapshot)
		ctx->crash_snapshot(ctx->crash_snapshot_arg, &rsn);
	struct crash_site s;
	memset(&s, 0, sizeof(s));
	locate_site(&cs, ctx, &s);
	read_site(&s);
	name_site(&cs, &s);
	if (cs.app)
		print_app_summary(&cs, &s);
	else
		print_guest_summary(ev, &cs, &s);
	if (ctx->report_dir)
		write_crash_report(ev, ctx, &cs, &s, &rsn);
	symtab_free(s.st);
	free(cs.cpu);
	return TVM_EXIT_CRASHED;
}
