/* monitor/crash.c - the diagnosis of a crash event. This is the single place
 * every crash source ends up; crash reports and dumps hook in here. */
#include "crash.h"

#include <stdio.h>
#include <string.h>

#include "../devices/hcall.h"
#include "../vmm/util.h"
#include "guestmem.h"
#include "symbols.h"

static const char *const sig_names[32] = {
	[1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL", [5] = "SIGTRAP",
	[6] = "SIGABRT", [7] = "SIGBUS", [8] = "SIGFPE", [9] = "SIGKILL", [10] = "SIGUSR1",
	[11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
	[16] = "SIGSTKFLT", [17] = "SIGCHLD", [18] = "SIGCONT", [19] = "SIGSTOP", [20] = "SIGTSTP",
	[21] = "SIGTTIN", [22] = "SIGTTOU", [23] = "SIGURG", [24] = "SIGXCPU", [25] = "SIGXFSZ",
	[26] = "SIGVTALRM", [27] = "SIGPROF", [28] = "SIGWINCH", [29] = "SIGIO", [30] = "SIGPWR",
	[31] = "SIGSYS",
};

const char *signal_name(unsigned signo) { return signo < 32 ? sig_names[signo] : NULL; }

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

static void print_bytes(const char *label, const uint8_t *b, int n)
{
	char line[128];
	int p = snprintf(line, sizeof(line), "  %s", label);
	if (n == 0)
		p += snprintf(line + p, sizeof(line) - (size_t)p, " (not readable)");
	for (int i = 0; i < n && p < (int)sizeof(line) - 4; i++)
		p += snprintf(line + p, sizeof(line) - (size_t)p, " %02x", b[i]);
	fprintf(stderr, "%s\n", line);
}

static void describe_app_fault(const struct app_fault *af, const struct crash_ctx *ctx)
{
	const struct tvm_fault *f = &af->f;
	const struct tvm_user_regs *r = &f->regs;
	const char *sname = signal_name(f->signo);
	const char *code = si_code_name(f->signo, f->si_code);
	struct symtab *st = symtab_load(ctx->app_path);
	struct guest_mem gm = ctx->vm ? vm_guest_mem(ctx->vm) : (struct guest_mem){ NULL, 0 };

	fprintf(stderr, "trialvm: the application %s crashed: %s (%s)", f->app_name[0] ? f->app_name : "?",
		sname ? sname : "unknown signal", signal_meaning(f->signo));
	if (code)
		fprintf(stderr, ", %s", code);
	if (f->vector != TVM_FAULT_NO_VECTOR)
		fprintf(stderr, " at address 0x%llx (CPU exception %u, error code 0x%llx)", (unsigned long long)f->addr,
			f->vector, (unsigned long long)f->error_code);
	fprintf(stderr, "\n");

	uint64_t off;
	const char *fn = symtab_lookup(st, r->rip - f->load_bias, &off);
	if (fn)
		fprintf(stderr, "  RIP 0x%llx in %s+0x%llx\n", (unsigned long long)r->rip, fn, (unsigned long long)off);
	else
		fprintf(stderr, "  RIP 0x%llx\n", (unsigned long long)r->rip);

	/* The caller, through the frame pointer when the code keeps one. */
	uint64_t frame[2];
	if (ctx->vm && r->rbp && guest_read_virt(&gm, f->page_table_root, r->rbp, frame, sizeof(frame)) ==
				      sizeof(frame)) {
		const char *caller = symtab_lookup(st, frame[1] - f->load_bias, &off);
		if (caller)
			fprintf(stderr, "  called from 0x%llx in %s+0x%llx\n", (unsigned long long)frame[1], caller,
				(unsigned long long)off);
	}
	if (ctx->vm) {
		uint8_t code_bytes[16];
		int n = (int)guest_read_virt(&gm, f->page_table_root, r->rip, code_bytes, sizeof(code_bytes));
		print_bytes("code at RIP:", code_bytes, n);
	}
	fprintf(stderr,
		"  RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n"
		"  RSI %016llx RDI %016llx RBP %016llx RSP %016llx\n"
		"  R8  %016llx R9  %016llx R10 %016llx R11 %016llx\n"
		"  R12 %016llx R13 %016llx R14 %016llx R15 %016llx\n"
		"  RFLAGS %08llx FS_BASE %016llx\n",
		(unsigned long long)r->rax, (unsigned long long)r->rbx, (unsigned long long)r->rcx,
		(unsigned long long)r->rdx, (unsigned long long)r->rsi, (unsigned long long)r->rdi,
		(unsigned long long)r->rbp, (unsigned long long)r->rsp, (unsigned long long)r->r8,
		(unsigned long long)r->r9, (unsigned long long)r->r10, (unsigned long long)r->r11,
		(unsigned long long)r->r12, (unsigned long long)r->r13, (unsigned long long)r->r14,
		(unsigned long long)r->r15, (unsigned long long)r->eflags, (unsigned long long)r->fs_base);
	symtab_free(st);
}

static void describe_vcpu(const struct tvm_event *ev, const struct crash_ctx *ctx)
{
	const struct vcpu_snapshot *s = &ev->regs;
	if (!s->valid) {
		fprintf(stderr, "  (the registers of vCPU %d could not be read)\n", ev->vcpu);
		return;
	}
	struct symtab *st = symtab_load(ctx->kernel_path);
	uint64_t off;
	const char *fn = symtab_lookup(st, s->rip, &off);
	fprintf(stderr, "  RIP 0x%llx", (unsigned long long)s->rip);
	if (fn)
		fprintf(stderr, " in %s+0x%llx", fn, (unsigned long long)off);
	fprintf(stderr, " (CS 0x%x, CPL %d, %s mode)\n", s->cs, s->cpl,
		s->long_mode ? "64-bit" : (s->cr0 & 1) ? "protected" : "real");
	symtab_free(st);
	print_bytes("instruction bytes at RIP:", s->insn, s->insn_len);
	const uint64_t *g = s->gpr;
	fprintf(stderr,
		"  RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n"
		"  RSI %016llx RDI %016llx RBP %016llx RSP %016llx\n"
		"  R8  %016llx R9  %016llx R10 %016llx R11 %016llx\n"
		"  R12 %016llx R13 %016llx R14 %016llx R15 %016llx\n"
		"  RFLAGS %08llx CR0 %08llx CR2 %016llx CR3 %016llx CR4 %08llx EFER %llx\n",
		(unsigned long long)g[0], (unsigned long long)g[3], (unsigned long long)g[1],
		(unsigned long long)g[2], (unsigned long long)g[6], (unsigned long long)g[7],
		(unsigned long long)g[5], (unsigned long long)g[4], (unsigned long long)g[8],
		(unsigned long long)g[9], (unsigned long long)g[10], (unsigned long long)g[11],
		(unsigned long long)g[12], (unsigned long long)g[13], (unsigned long long)g[14],
		(unsigned long long)g[15], (unsigned long long)s->rflags, (unsigned long long)s->cr0,
		(unsigned long long)s->cr2, (unsigned long long)s->cr3, (unsigned long long)s->cr4,
		(unsigned long long)s->efer);
	if (ev->kind == TVM_EV_INTERNAL_ERROR && (ev->data[0] || ev->data[1]))
		fprintf(stderr, "  KVM internal error data: %llx %llx %llx %llx\n", (unsigned long long)ev->data[0],
			(unsigned long long)ev->data[1], (unsigned long long)ev->data[2],
			(unsigned long long)ev->data[3]);
}

int crash_handle_event(const struct tvm_event *ev, const struct crash_ctx *ctx)
{
	switch (ev->kind) {
	case TVM_EV_POWEROFF:
		tvm_debug("%s", ev->detail);
		return ev->exit_code;
	case TVM_EV_RESET:
		tvm_log("%s; trialvm does not reboot guests, so the run ends here", ev->detail);
		return 0;
	case TVM_EV_SIGNAL:
		tvm_log("%s; the guest was stopped", ev->detail);
		return 128 + (int)ev->reason;
	case TVM_EV_VMM_ERROR:
		tvm_log("error: %s", ev->detail);
		return TVM_EXIT_ERROR;
	case TVM_EV_APP_FAULT:
		if (ev->payload && ev->payload_len == sizeof(struct app_fault))
			describe_app_fault(ev->payload, ctx);
		else
			tvm_log("%s", ev->detail);
		return TVM_EXIT_CRASHED;
	case TVM_EV_PANIC:
	case TVM_EV_TRIPLE_FAULT:
	case TVM_EV_INTERNAL_ERROR:
	case TVM_EV_FAIL_ENTRY:
	case TVM_EV_UNKNOWN_EXIT:
		fprintf(stderr, "trialvm: guest crashed on vCPU %d: %s.\n", ev->vcpu, ev->detail);
		describe_vcpu(ev, ctx);
		return TVM_EXIT_CRASHED;
	case TVM_EV_NONE:
		break;
	}
	tvm_log("error: the run ended for no known reason");
	return TVM_EXIT_ERROR;
}
