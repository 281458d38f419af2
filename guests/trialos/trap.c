/* GDT/TSS/IDT setup, exception dispatch, the CI-platform syscall path, and
 * application fault reporting. */
#include "kernel.h"

extern u64 gdt_tss[2];
extern char trap_stubs[];
extern char kstack_top[];

struct tss {
	u32 reserved0;
	u64 rsp0, rsp1, rsp2;
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3, iomap_base;
} __attribute__((packed));

/* The TSS and its I/O permission bitmap, which opens one port to ring 3:
 * TVM_PORT_DEBUG_BP, the debugger's breakpoints (trialvm_abi.h). The CPU
 * reads two bytes of the bitmap for a port, so it ends with an 0xff byte
 * past the port's. */
static struct {
	struct tss t;
	u8 iomap[TVM_PORT_DEBUG_BP / 8 + 2];
} __attribute__((packed)) tss_io;
static struct idt_gate { u16 off0, sel; u8 ist, type; u16 off1; u32 off2, zero; } idt[32] __attribute__((aligned(16)));

void trap_init(void)
{
	tss_io.t.rsp0 = (u64)kstack_top;
	tss_io.t.iomap_base = sizeof tss_io.t;
	for (unsigned i = 0; i < sizeof tss_io.iomap; i++)
		tss_io.iomap[i] = 0xff;
	tss_io.iomap[TVM_PORT_DEBUG_BP / 8] &= (u8)~(1u << (TVM_PORT_DEBUG_BP % 8));
	u64 base = (u64)&tss_io, limit = sizeof tss_io - 1;
	gdt_tss[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		     ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
	gdt_tss[1] = base >> 32;
	__asm__ volatile("ltr %w0" ::"r"(TSS_SEL));

	for (int v = 0; v < 32; v++) {
		u64 h = (u64)trap_stubs + 16 * v;
		u8 dpl = (v == 3 || v == 4) ? 3 : 0;   /* int3 / into usable from ring 3 */
		idt[v] = (struct idt_gate){ (u16)h, KERNEL_CS, 0, (u8)(0x8e | dpl << 5), (u16)(h >> 16),
					    (u32)(h >> 32), 0 };
	}
	struct { u16 limit; u64 base; } __attribute__((packed)) idtr = { sizeof idt - 1, (u64)idt };
	__asm__ volatile("lidt %0" ::"m"(idtr));

	wrmsr(MSR_STAR, ((u64)(0x20 | 3) << 48) | ((u64)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_FMASK, 0x47700);   /* TF DF IF IOPL NT AC */
}

static const char *const signames[32] = {
	"0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
	"SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
	"SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
	"SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
};

static struct tvm_fault fault __attribute__((aligned(64)));
static struct tvm_mapping fault_maps[TVM_FAULT_MAX_MAPS] __attribute__((aligned(64)));

_Noreturn void user_crash(struct trapframe *tf, u32 vector, u32 signo, int code, u64 addr)
{
	struct tvm_fault *f = &fault;
	f->magic = TVM_FAULT_MAGIC;
	f->version = TVM_ABI_VERSION;
	f->vector = vector;
	f->signo = signo;
	f->si_code = code;
	f->error_code = vector == TVM_FAULT_NO_VECTOR ? 0 : tf->err;
	f->addr = addr;
	f->load_bias = load_bias;
	struct tvm_user_regs *r = &f->regs;
	r->r15 = tf->r15; r->r14 = tf->r14; r->r13 = tf->r13; r->r12 = tf->r12;
	r->rbp = tf->rbp; r->rbx = tf->rbx; r->r11 = tf->r11; r->r10 = tf->r10;
	r->r9 = tf->r9; r->r8 = tf->r8; r->rax = tf->rax; r->rcx = tf->rcx;
	r->rdx = tf->rdx; r->rsi = tf->rsi; r->rdi = tf->rdi;
	r->orig_rax = vector == TVM_FAULT_NO_VECTOR ? tf->rax : ~0ull;
	r->rip = tf->rip; r->cs = USER_CS; r->eflags = tf->rflags;
	r->rsp = tf->rsp; r->ss = USER_DS;
	r->fs_base = rdmsr(MSR_FS_BASE);
	r->gs_base = rdmsr(MSR_GS_BASE);
	r->ds = r->es = r->fs = r->gs = 0;
	unsigned n = nr_vmas < TVM_FAULT_MAX_MAPS ? nr_vmas : TVM_FAULT_MAX_MAPS;
	for (unsigned i = 0; i < n; i++)
		fault_maps[i] = (struct tvm_mapping){ vmas[i].start, vmas[i].end, vmas[i].prot, vmas[i].kind };
	f->nr_mappings = n;
	f->mappings_gpa = virt_to_phys(fault_maps);
	f->page_table_root = read_cr3() & PTE_ADDR;
	size_t nl = strnlen(app_name, sizeof f->app_name - 1);
	memcpy(f->app_name, app_name, nl);
	f->app_name[nl] = 0;
	f->auxv_gva = user_auxv_gva;
	f->auxv_len = user_auxv_len;
	f->argv_gva = user_argv_gva;
	f->argc = user_argc;
	if (under_trialvm)
		hcall(TVM_HC_FAULT, virt_to_phys(f), 0, NULL, NULL);
	kprintf("trialos: %s killed by signal %u (%s) code %d at rip 0x%lx addr 0x%lx\n", f->app_name,
		signo, signo < 32 ? signames[signo] : "SIGRT", code, tf->rip, addr);
	poweroff(128 + (signo & 127));
}

static int fpe_code(u32 status)
{
	if (status & 0x01) return 7;   /* FPE_FLTINV */
	if (status & 0x04) return 3;   /* FPE_FLTDIV */
	if (status & 0x08) return 4;   /* FPE_FLTOVF */
	if (status & 0x12) return 5;   /* FPE_FLTUND */
	if (status & 0x20) return 6;   /* FPE_FLTRES */
	return 0;
}

/* Under trialvm, CR4.TSD makes the application's RDTSC and RDTSCP fault
 * (#GP); their value is served here from the hypercall clock (a 1 GHz
 * counter of CLOCK_MONOTONIC), which trialvm records and replays like any
 * input. True when tf was such an instruction, now emulated. */
static bool emulate_tsc(struct trapframe *tf)
{
	if (!under_trialvm || !user_ok(tf->rip, 2, false))
		return false;
	const volatile u8 *ip = (const volatile u8 *)tf->rip;
	unsigned len;
	if (ip[0] == 0x0f && ip[1] == 0x31)
		len = 2; /* rdtsc */
	else if (ip[0] == 0x0f && ip[1] == 0x01 && user_ok(tf->rip, 3, false) && ip[2] == 0xf9)
		len = 3; /* rdtscp */
	else
		return false;
	u64 s = 0, ns = 0;
	if (hcall(TVM_HC_CLOCK, 1, 0, &s, &ns) < 0)
		return false;
	u64 t = s * 1000000000ull + ns;
	tf->rax = (u32)t;
	tf->rdx = t >> 32;
	if (len == 3)
		tf->rcx = 0; /* IA32_TSC_AUX: CPU 0 */
	tf->rip += len;
	return true;
}

void trap_handler(struct trapframe *tf);
void trap_handler(struct trapframe *tf)
{
	if (tf->vector == VEC_SYSCALL) {
		do_syscall(tf);
		return;
	}
	bool user = (tf->cs & 3) == 3;
	if ((tf->vector == 13 || tf->vector == 14) && user && tf->rip == (u64)syscall_entry) {
		/* CI platform: SYSCALL stayed in ring 3 and faulted at the entry:
		 * #PF fetching the supervisor-only entry page, or #GP on its first
		 * privileged instruction if that page were user-accessible. */
		do_syscall(tf);
		return;
	}
	if (!user)
		panic("exception %lu in kernel at rip 0x%lx (error 0x%lx, cr2 0x%lx)", tf->vector, tf->rip,
		      tf->err, read_cr2());
	u64 v = tf->vector;
	switch (v) {
	case 0: user_crash(tf, v, 8, 1, tf->rip);                      /* SIGFPE FPE_INTDIV */
	case 1: user_crash(tf, v, 5, 2, tf->rip);                      /* SIGTRAP TRAP_TRACE */
	case 3: user_crash(tf, v, 5, 0x80, 0);                         /* SIGTRAP SI_KERNEL */
	case 4: case 5: user_crash(tf, v, 11, 0x80, 0);                /* SIGSEGV SI_KERNEL */
	case 6: user_crash(tf, v, 4, 2, tf->rip);                      /* SIGILL ILL_ILLOPN */
	case 7: user_crash(tf, v, 11, 0x80, 0);
	case 10: user_crash(tf, v, 11, 0x80, 0);
	case 11: case 12: user_crash(tf, v, 7, 0x80, 0);               /* SIGBUS SI_KERNEL */
	case 13:
		if (emulate_tsc(tf))
			return;
		user_crash(tf, v, 11, 0x80, 0);                         /* SIGSEGV SI_KERNEL */
	case 14: {
		u64 cr2 = read_cr2();
		if (!(tf->err & 1) && stack_grow(cr2, tf->rsp))
			return;
		int code = (tf->err & 1) || vma_find(cr2) ? 2 : 1;      /* SEGV_ACCERR : SEGV_MAPERR */
		user_crash(tf, v, 11, code, cr2);
	}
	case 16: {
		u16 sw = 0, cw = 0;
		__asm__ volatile("fnstsw %0; fnstcw %1; fnclex" : "=m"(sw), "=m"(cw));
		user_crash(tf, v, 8, fpe_code(sw & ~cw & 0x3f), tf->rip);
	}
	case 17: user_crash(tf, v, 7, 1, 0);                           /* SIGBUS BUS_ADRALN */
	case 19: {
		u32 mx = 0;
		__asm__ volatile("stmxcsr %0" : "=m"(mx));
		user_crash(tf, v, 8, fpe_code(mx & ~(mx >> 7) & 0x3f), tf->rip);
	}
	default:
		user_crash(tf, v, 11, 0x80, 0);
	}
}
