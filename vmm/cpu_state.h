/* vmm/cpu_state.h - the complete state of one vCPU, as captured by
 * vm_capture_cpu() for crash dumps and reports. Plain data: no KVM types. */
#ifndef TVM_CPU_STATE_H
#define TVM_CPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

struct seg_state {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct dtable_state {
	uint64_t base;
	uint16_t limit;
};

/* One vCPU, complete. */
struct cpu_state {
	int index;
	/* General registers in this order: rax rcx rdx rbx rsp rbp rsi rdi r8..r15 */
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct seg_state cs, ds, es, fs, gs, ss, tr, ldt;
	struct dtable_state gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
	/* FPU/SSE: the 512-byte FXSAVE image (x87, MXCSR at 24, XMM0-15). */
	uint8_t fxsave[512];
	/* XSAVE area when KVM offers it (4096 bytes), else xsave_valid = false. */
	bool xsave_valid;
	uint8_t xsave[4096];
	uint64_t xcr0;
	uint64_t dr[8]; /* dr0-dr3, (dr4, dr5 unused = 0), dr6, dr7 */
	/* MSRs that matter for a post-mortem. */
	uint64_t msr_star, msr_lstar, msr_cstar, msr_sfmask;
	uint64_t msr_fs_base, msr_gs_base, msr_kernel_gs_base, msr_tsc;
	uint64_t msr_sysenter_cs, msr_sysenter_esp, msr_sysenter_eip, msr_pat;
	bool lapic_valid;
	uint8_t lapic[1024]; /* KVM's kvm_lapic_state.regs */
	uint32_t mp_state;   /* KVM_MP_STATE_* */
};

/* The in-kernel interrupt controllers and timer, VM-wide. */
struct irqchip_state {
	bool valid;
	struct {
		uint8_t irr, imr, isr, irq_base, elcr;
		bool init4, auto_eoi, special_mask;
	} pic[2];              /* master, slave */
	uint32_t ioapic_id;
	uint64_t ioapic_base;
	uint32_t ioapic_irr;
	uint64_t redirtbl[24]; /* IOAPIC redirection entries */
	bool pit_valid;
	struct {
		uint32_t count;
		uint8_t mode, gate;
	} pit[3];
};

#endif
