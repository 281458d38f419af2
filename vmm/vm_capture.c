/* vmm/vm_capture.c - the state of a stopped VM, for crash reports: every
 * vCPU's registers, FPU/XSAVE, MSRs, LAPIC and MP state, the last state
 * seen at an exit (KVM_CAP_SYNC_REGS), the in-kernel interrupt controllers.
 * Split from vm.c, which creates and runs the VM. */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpu_state.h"
#include "util.h"
#include "vm_internal.h"

static void seg_out(struct seg_state *o, const struct kvm_segment *s)
{
	*o = (struct seg_state){ .base = s->base, .limit = s->limit, .selector = s->selector, .type = s->type,
				 .present = s->present, .dpl = s->dpl, .db = s->db, .s = s->s, .l = s->l,
				 .g = s->g, .avl = s->avl, .unusable = s->unusable };
}

/* KVM's struct kvm_fpu, laid out as the 512-byte FXSAVE image. */
static void fpu_to_fxsave(const struct kvm_fpu *f, uint8_t fx[512])
{
	memset(fx, 0, 512);
	memcpy(fx + 0, &f->fcw, 2);
	memcpy(fx + 2, &f->fsw, 2);
	fx[4] = f->ftwx;
	memcpy(fx + 6, &f->last_opcode, 2);
	memcpy(fx + 8, &f->last_ip, 8);
	memcpy(fx + 16, &f->last_dp, 8);
	memcpy(fx + 24, &f->mxcsr, 4);
	uint32_t mxcsr_mask = 0xffff;
	memcpy(fx + 28, &mxcsr_mask, 4);
	for (int i = 0; i < 8; i++)
		memcpy(fx + 32 + 16 * i, f->fpr[i], 16);
	for (int i = 0; i < 16; i++)
		memcpy(fx + 160 + 16 * i, f->xmm[i], 16);
}

/* Registers and system registers into *o (the rest of it untouched). */
static void regs_to_state(const struct kvm_regs *r, const struct kvm_sregs *sr, struct cpu_state *o)
{
	uint64_t g[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
			   r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	memcpy(o->gpr, g, sizeof(g));
	o->rip = r->rip;
	o->rflags = r->rflags;
	seg_out(&o->cs, &sr->cs);
	seg_out(&o->ds, &sr->ds);
	seg_out(&o->es, &sr->es);
	seg_out(&o->fs, &sr->fs);
	seg_out(&o->gs, &sr->gs);
	seg_out(&o->ss, &sr->ss);
	seg_out(&o->tr, &sr->tr);
	seg_out(&o->ldt, &sr->ldt);
	o->gdt = (struct dtable_state){ sr->gdt.base, sr->gdt.limit };
	o->idt = (struct dtable_state){ sr->idt.base, sr->idt.limit };
	o->cr0 = sr->cr0;
	o->cr2 = sr->cr2;
	o->cr3 = sr->cr3;
	o->cr4 = sr->cr4;
	o->cr8 = sr->cr8;
	o->efer = sr->efer;
	o->apic_base = sr->apic_base;
}

int vm_last_seen_cpu(struct vm *vm, int idx, struct cpu_state *o, uint64_t *exit_no, uint32_t *exit_reason)
{
	if (idx < 0 || idx >= vm->ncpus || vm->cpus[idx].thread_started || !vm->cpus[idx].seen_valid)
		return -1;
	const struct vcpu *c = &vm->cpus[idx];
	memset(o, 0, sizeof(*o));
	o->index = idx;
	regs_to_state(&c->seen_regs, &c->seen_sregs, o);
	*exit_no = c->seen_exit;
	*exit_reason = c->seen_reason;
	return 0;
}

int vm_capture_cpu(struct vm *vm, int idx, struct cpu_state *o, struct tvm_err *err)
{
	if (idx < 0 || idx >= vm->ncpus)
		return tvm_seterr(err, "no vCPU %d", idx);
	struct vcpu *c = &vm->cpus[idx];
	pthread_mutex_lock(&vm->pause_lock);
	bool running = c->thread_started && __atomic_load_n(&c->alive, __ATOMIC_ACQUIRE) && !c->parked;
	pthread_mutex_unlock(&vm->pause_lock);
	if (running)
		return tvm_seterr(err, "vCPU %d is running (neither stopped nor paused)", idx);
	int fd = c->fd;
	struct kvm_regs r;
	struct kvm_sregs sr;
	struct kvm_fpu fpu;
	memset(o, 0, sizeof(*o));
	o->index = idx;
	if (ioctl(fd, KVM_GET_REGS, &r) < 0 || ioctl(fd, KVM_GET_SREGS, &sr) < 0 || ioctl(fd, KVM_GET_FPU, &fpu) < 0)
		return tvm_seterr(err, "cannot read the registers of vCPU %d: %s", idx, strerror(errno));
	regs_to_state(&r, &sr, o);
	fpu_to_fxsave(&fpu, o->fxsave);

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		struct kvm_xsave xs;
		if (ioctl(fd, KVM_GET_XSAVE, &xs) == 0) {
			memcpy(o->xsave, xs.region, sizeof(o->xsave));
			o->xsave_valid = true;
			/* The XSAVE legacy area is the FXSAVE image; KVM_GET_FPU
			 * leaves MXCSR zero on some kernels, this one is exact. */
			memcpy(o->fxsave, o->xsave, sizeof(o->fxsave));
		}
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		struct kvm_xcrs xcrs;
		if (ioctl(fd, KVM_GET_XCRS, &xcrs) == 0)
			for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
				if (xcrs.xcrs[i].xcr == 0)
					o->xcr0 = xcrs.xcrs[i].value;
	}
	struct kvm_debugregs dr;
	if (ioctl(fd, KVM_GET_DEBUGREGS, &dr) == 0) {
		for (int i = 0; i < 4; i++)
			o->dr[i] = dr.db[i];
		o->dr[6] = dr.dr6;
		o->dr[7] = dr.dr7;
	}
	static const uint32_t idx_list[] = { 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100,
					     0xc0000101, 0xc0000102, 0x10, 0x174, 0x175, 0x176, 0x277 };
	enum { NM = sizeof(idx_list) / sizeof(idx_list[0]) };
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[NM];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = NM;
	for (int i = 0; i < NM; i++)
		m.e[i].index = idx_list[i];
	int got = ioctl(fd, KVM_GET_MSRS, &m);
	uint64_t *dst[NM] = { &o->msr_star, &o->msr_lstar, &o->msr_cstar, &o->msr_sfmask, &o->msr_fs_base,
			      &o->msr_gs_base, &o->msr_kernel_gs_base, &o->msr_tsc, &o->msr_sysenter_cs,
			      &o->msr_sysenter_esp, &o->msr_sysenter_eip, &o->msr_pat };
	for (int i = 0; i < got && i < NM; i++)
		*dst[i] = m.e[i].data;
	struct kvm_lapic_state lapic;
	if (ioctl(fd, KVM_GET_LAPIC, &lapic) == 0) {
		memcpy(o->lapic, lapic.regs, sizeof(o->lapic));
		o->lapic_valid = true;
	}
	struct kvm_mp_state mp;
	if (ioctl(fd, KVM_GET_MP_STATE, &mp) == 0)
		o->mp_state = mp.mp_state;
	return 0;
}

int vm_capture_irqchip(struct vm *vm, struct irqchip_state *o, struct tvm_err *err)
{
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < 2; i++) {
		struct kvm_irqchip chip = { .chip_id = (uint32_t)i };
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return tvm_seterr(err, "KVM_GET_IRQCHIP (PIC %d) failed: %s", i, strerror(errno));
		const struct kvm_pic_state *p = &chip.chip.pic;
		o->pic[i].irr = p->irr;
		o->pic[i].imr = p->imr;
		o->pic[i].isr = p->isr;
		o->pic[i].irq_base = p->irq_base;
		o->pic[i].elcr = p->elcr;
		o->pic[i].init4 = p->init4;
		o->pic[i].auto_eoi = p->auto_eoi;
		o->pic[i].special_mask = p->special_mask;
	}
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
		return tvm_seterr(err, "KVM_GET_IRQCHIP (IOAPIC) failed: %s", strerror(errno));
	o->ioapic_id = chip.chip.ioapic.id;
	o->ioapic_base = chip.chip.ioapic.base_address;
	o->ioapic_irr = chip.chip.ioapic.irr;
	for (int i = 0; i < 24 && i < KVM_IOAPIC_NUM_PINS; i++)
		o->redirtbl[i] = chip.chip.ioapic.redirtbl[i].bits;
	o->valid = true;
	struct kvm_pit_state2 pit;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) == 0) {
		for (int i = 0; i < 3; i++) {
			o->pit[i].count = pit.channels[i].count;
			o->pit[i].mode = pit.channels[i].mode;
			o->pit[i].gate = pit.channels[i].gate;
		}
		o->pit_valid = true;
	}
	return 0;
}
