/* vmm/debug.c - the debugger's side of the VM (vm.h, "the debugger"):
 * stops that hold every vCPU through the pause barrier, single steps of
 * one vCPU, breakpoints in breakpoints.c's table (and DR0-3), and reads
 * and writes of a stopped guest. The protocol is monitor/gdbstub.c's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpu_state.h"
#include "util.h"
#include "vm.h"
#include "vm_internal.h"

/* Hold every vCPU the debugger does not hold yet (pause_lock held);
 * returns the ones newly held, to be kicked once the lock is dropped. */
static uint64_t hold_all_locked(struct vm *vm)
{
	uint64_t mask = vm_all_mask(vm) & ~vm->dbg.held;
	vm_hold_locked(vm, mask, +1);
	vm->dbg.held |= mask;
	return mask;
}

/* Ask for a stop (pause_lock held): the first one asked is the one kept. */
static void ask_stop_locked(struct vm *vm, enum vm_debug_why why, int vcpu, uint64_t pc, bool at_exit)
{
	__atomic_store_n(&vm->dbg.int_at_exit, false, __ATOMIC_RELEASE);
	if (!vm->dbg.pending && !vm->dbg.stopped) {
		vm->dbg.pending = true;
		vm->dbg.stop = (struct vm_debug_stop){ .why = why, .vcpu = vcpu, .pc = pc, .at_exit = at_exit };
	}
}

int vm_debug_start(struct vm *vm, bool stop_at_start, struct tvm_err *err)
{
	if (vm->nswbp > 0)
		return tvm_seterr(err, "--crash-on breakpoints are armed: a debugger cannot share the VM's breakpoints");
	enum tvm_bp_kind k;
	bool hw;
	if (vm_sw_breakpoint_kind(&k, err) < 0 || vm_hw_breakpoints_fire(&hw, err) < 0)
		return -1;
	vm->swbp_kind = k;
	vm->dbg.hw_works = hw;
	int caps = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_GUEST_DEBUG2);
	vm->dbg.blockirq = caps > 0 && (caps & KVM_GUESTDBG_BLOCKIRQ);
	/* Port-write breakpoints fire in a trialos application through its
	 * TSS I/O bitmap. QEMU's emulated CPU (the only kind of machine without
	 * an int3 exit) consults the bitmap only while TR's cached type is
	 * "available" (9), as its own LTR leaves it; a restored TR carries the
	 * busy type (11) KVM reports, and every ring-3 port write would fault.
	 * The cached type is invisible to a 64-bit guest (no task switches),
	 * so it is made 9 here. */
	for (int i = 0; k == TVM_BP_PIO && i < vm->ncpus; i++) {
		struct kvm_sregs sr;
		if (ioctl(vm->cpus[i].fd, KVM_GET_SREGS, &sr) == 0 && (sr.efer & 0x400) && sr.tr.type == 11) {
			sr.tr.type = 9;
			if (ioctl(vm->cpus[i].fd, KVM_SET_SREGS, &sr) < 0)
				tvm_debug("debugger: vCPU %d: TR type not changed: %s", i, strerror(errno));
		}
	}
	vm->dbg.on = true;
	tvm_debug("debugger: %s; hardware breakpoints %s", vm_breakpoint_kind_name(k),
		  hw ? "fire" : "do not fire (served as software ones)");
	if (stop_at_start) {
		pthread_mutex_lock(&vm->pause_lock);
		ask_stop_locked(vm, TVM_DBG_START, 0, 0, false);
		hold_all_locked(vm); /* before vm_run: the threads park before their first KVM_RUN */
		pthread_mutex_unlock(&vm->pause_lock);
	}
	return 0;
}

bool vm_debug_on(const struct vm *vm) { return vm->dbg.on; }

void vcpu_debug_stop(struct vcpu *c, enum vm_debug_why why, uint64_t pc, bool at_exit)
{
	struct vm *vm = c->vm;
	pthread_mutex_lock(&vm->pause_lock);
	if (why == TVM_DBG_INTERRUPT && !__atomic_load_n(&vm->dbg.int_at_exit, __ATOMIC_ACQUIRE)) {
		pthread_mutex_unlock(&vm->pause_lock); /* taken by the fallback already */
		return;
	}
	ask_stop_locked(vm, why, c->index, pc, at_exit);
	if (at_exit && vm->dbg.stop.vcpu == c->index)
		vm->dbg.stop.exit_no = c->io_seq;
	uint64_t mask = hold_all_locked(vm);
	pthread_mutex_unlock(&vm->pause_lock);
	vm_kick_mask(vm, mask); /* this vCPU parks at the top of its loop */
	vm_wake_main(vm);
}

/* Stop every vCPU wherever it is (vm_run's thread). */
static void interrupt_now(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	ask_stop_locked(vm, TVM_DBG_INTERRUPT, 0, 0, false);
	uint64_t mask = hold_all_locked(vm);
	pthread_mutex_unlock(&vm->pause_lock);
	vm_kick_mask(vm, mask);
}

void vm_debug_interrupt(struct vm *vm)
{
	if (!vm->dbg.on)
		return;
	if (!vm->replay) {
		interrupt_now(vm);
		return;
	}
	pthread_mutex_lock(&vm->pause_lock);
	if (!vm->dbg.pending && !vm->dbg.stopped && !vm->dbg.int_at_exit) {
		vm->dbg.int_asked_ns = now_ns();
		__atomic_store_n(&vm->dbg.int_at_exit, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_debug_poll(struct vm *vm, struct vm_debug_stop *out, int *wait_ms)
{
	*wait_ms = -1;
	if (!vm->dbg.on)
		return false;
	pthread_mutex_lock(&vm->pause_lock);
	if (!vm->dbg.pending) {
		bool asked = __atomic_load_n(&vm->dbg.int_at_exit, __ATOMIC_ACQUIRE);
		uint64_t waited = asked ? now_ns() - vm->dbg.int_asked_ns : 0;
		pthread_mutex_unlock(&vm->pause_lock);
		if (!asked)
			return false;
		if (waited < 1000000000ull) { /* no exit for a second: the guest spins; stop it anywhere */
			*wait_ms = (int)((1000000000ull - waited) / 1000000ull) + 1;
			return false;
		}
		tvm_log("gdb: no port I/O or MMIO exit within a second of the interrupt; stopping the replay "
			"where it is (this place may differ between replays)");
		interrupt_now(vm);
		pthread_mutex_lock(&vm->pause_lock);
	}
	bool all = true;
	for (int i = 0; i < vm->ncpus; i++)
		if ((vm->dbg.held & (1ull << i)) && !vm->cpus[i].parked &&
		    __atomic_load_n(&vm->cpus[i].alive, __ATOMIC_ACQUIRE))
			all = false;
	uint64_t held = vm->dbg.held;
	if (!all) {
		pthread_mutex_unlock(&vm->pause_lock);
		vm_kick_mask(vm, held); /* one may have been between its check and KVM_RUN */
		*wait_ms = 5;
		return false;
	}
	vm->dbg.pending = false;
	vm->dbg.stopped = true;
	struct vm_debug_stop st = vm->dbg.stop;
	pthread_mutex_unlock(&vm->pause_lock);
	/* The PC of the stop: a port-write breakpoint's OUT was completed by the
	 * park (RIP past it), and some KVMs report an int3 after it: back onto
	 * the breakpoint, so that the guest runs the original instruction. */
	struct kvm_regs r;
	if (ioctl(vm->cpus[st.vcpu].fd, KVM_GET_REGS, &r) == 0) {
		uint8_t b[2];
		unsigned len = swbp_bytes(vm->swbp_kind, b);
		if (st.why == TVM_DBG_SWBREAK && r.rip == st.pc + len && swbp_at(vm, st.pc) >= 0) {
			r.rip = st.pc;
			if (ioctl(vm->cpus[st.vcpu].fd, KVM_SET_REGS, &r) < 0)
				tvm_log("gdb: cannot put vCPU %d back on its breakpoint: %s", st.vcpu, strerror(errno));
		}
		st.pc = r.rip;
	}
	vm->dbg.stop = st;
	*out = st;
	return true;
}

bool vm_debug_stopped(const struct vm *vm) { return vm->dbg.on && vm->dbg.stopped; }

int vm_debug_resume(struct vm *vm, int step, struct tvm_err *err)
{
	if (!vm_debug_stopped(vm))
		return tvm_seterr(err, "the VM is not stopped");
	if (step >= vm->ncpus)
		return tvm_seterr(err, "no vCPU %d", step);
	bool sw = vm->nswbp > 0 && vm->swbp_kind == TVM_BP_INT3;
	bool icebp = vm->nswbp > 0 && vm->swbp_kind == TVM_BP_ICEBP; /* #DB intercepted */
	for (int i = 0; i < vm->ncpus; i++) {
		struct kvm_guest_debug d;
		memset(&d, 0, sizeof(d));
		if (sw || icebp || vm->dbg.nhw || i == step) {
			d.control = KVM_GUESTDBG_ENABLE;
			if (sw)
				d.control |= KVM_GUESTDBG_USE_SW_BP;
			if (vm->dbg.nhw || icebp)
				d.control |= KVM_GUESTDBG_USE_HW_BP;
			for (int j = 0; j < vm->dbg.nhw; j++) {
				d.arch.debugreg[j] = vm->dbg.hw[j];
				d.arch.debugreg[7] |= 1ull << (2 * j); /* local enable, execute, 1 byte */
			}
			d.arch.debugreg[7] |= 1ull << 10;
			if (i == step)
				d.control |= KVM_GUESTDBG_SINGLESTEP | (vm->dbg.blockirq ? KVM_GUESTDBG_BLOCKIRQ : 0);
		}
		if (ioctl(vm->cpus[i].fd, KVM_SET_GUEST_DEBUG, &d) < 0)
			return tvm_seterr(err, "KVM_SET_GUEST_DEBUG on vCPU %d failed: %s", i, strerror(errno));
	}
	pthread_mutex_lock(&vm->pause_lock);
	uint64_t mask = step >= 0 ? vm->dbg.held & (1ull << step) : vm->dbg.held;
	vm_hold_locked(vm, mask, -1);
	vm->dbg.held &= ~mask;
	vm->dbg.stopped = false;
	pthread_mutex_unlock(&vm->pause_lock);
	return 0;
}

int vm_debug_insert(struct vm *vm, bool hw, uint64_t vaddr, uint64_t gpa, struct tvm_err *err)
{
	if (!vm_debug_stopped(vm))
		return tvm_seterr(err, "the VM is not stopped");
	if (hw && vm->dbg.hw_works) {
		for (int j = 0; j < vm->dbg.nhw; j++)
			if (vm->dbg.hw[j] == vaddr)
				return 0;
		if (vm->dbg.nhw >= 4)
			return tvm_seterr(err, "all four debug registers hold breakpoints already");
		vm->dbg.hw[vm->dbg.nhw++] = vaddr;
		return 0;
	}
	if (swbp_at(vm, vaddr) >= 0)
		return 0;
	if (vm->nswbp >= TVM_DBG_MAX_BREAKPOINTS)
		return tvm_seterr(err, "at most %d breakpoints can be set", TVM_DBG_MAX_BREAKPOINTS);
	uint8_t bytes[2];
	unsigned len = swbp_bytes(vm->swbp_kind, bytes);
	if (len > 1 && (vaddr & 0xfff) > 0x1000 - len)
		return tvm_seterr(err, "a breakpoint here is a %u-byte port write, and 0x%llx is the last byte of its page",
				  len, (unsigned long long)vaddr);
	uint8_t *p = gpa_ptr(vm, GPA(gpa), len);
	if (!p)
		return tvm_seterr(err, "0x%llx is at guest-physical 0x%llx, which is not RAM", (unsigned long long)vaddr,
				  (unsigned long long)gpa);
	for (int i = 0; i < vm->nswbp; i++)
		if (gpa < vm->swbp[i].gpa + len && vm->swbp[i].gpa < gpa + len)
			return tvm_seterr(err, "a breakpoint here is a %u-byte port write, and one at 0x%llx overlaps it", len,
					  (unsigned long long)vm->swbp[i].vaddr);
	int i = vm->nswbp++;
	vm->swbp[i].vaddr = vaddr;
	vm->swbp[i].gpa = gpa;
	vm->swbp[i].armed = true;
	vm->swbp[i].cleared = false;
	memcpy(vm->swbp[i].orig, p, len);
	memcpy(p, bytes, len);
	return 0;
}

/* Take software breakpoint i out of memory (where its bytes are still
 * trialvm's) and out of the table. */
static void remove_sw(struct vm *vm, int i)
{
	uint8_t bytes[2];
	unsigned len = swbp_bytes(vm->swbp_kind, bytes);
	uint8_t *p = vm->swbp[i].armed ? gpa_ptr(vm, GPA(vm->swbp[i].gpa), len) : NULL;
	if (p && memcmp(p, bytes, len) == 0)
		memcpy(p, vm->swbp[i].orig, len);
	memmove(&vm->swbp[i], &vm->swbp[i + 1], (size_t)(vm->nswbp - i - 1) * sizeof(vm->swbp[0]));
	vm->nswbp--;
}

int vm_debug_remove(struct vm *vm, bool hw, uint64_t vaddr)
{
	if (hw && vm->dbg.hw_works) {
		for (int j = 0; j < vm->dbg.nhw; j++)
			if (vm->dbg.hw[j] == vaddr) {
				vm->dbg.hw[j] = vm->dbg.hw[--vm->dbg.nhw];
				return 0;
			}
		return -1;
	}
	int i = swbp_at(vm, vaddr);
	if (i < 0)
		return -1;
	remove_sw(vm, i);
	return 0;
}

void vm_debug_remove_all(struct vm *vm)
{
	while (vm->dbg.on && vm->nswbp > 0)
		remove_sw(vm, vm->nswbp - 1);
	vm->dbg.nhw = 0;
}

int vm_debug_read(struct vm *vm, uint64_t gpa, void *buf, uint64_t len)
{
	struct guest_mem m = vm_guest_mem(vm);
	const uint8_t *p = gmem_ptr_ro(&m, gpa, len);
	if (!p)
		return -1;
	memcpy(buf, p, len);
	uint8_t bytes[2];
	unsigned blen = swbp_bytes(vm->swbp_kind, bytes);
	for (int i = 0; i < vm->nswbp; i++)
		for (unsigned k = 0; vm->swbp[i].armed && k < blen; k++) {
			uint64_t a = vm->swbp[i].gpa + k;
			if (a >= gpa && a - gpa < len && p[a - gpa] == bytes[k])
				((uint8_t *)buf)[a - gpa] = vm->swbp[i].orig[k];
		}
	return 0;
}

int vm_debug_write(struct vm *vm, uint64_t gpa, const void *buf, uint64_t len)
{
	uint8_t *p = gpa_ptr(vm, GPA(gpa), len);
	if (!p)
		return -1;
	memcpy(p, buf, len);
	uint8_t bytes[2];
	unsigned blen = swbp_bytes(vm->swbp_kind, bytes);
	for (int i = 0; i < vm->nswbp; i++)
		for (unsigned k = 0; vm->swbp[i].armed && k < blen; k++) {
			uint64_t a = vm->swbp[i].gpa + k;
			if (a >= gpa && a - gpa < len) { /* the new byte is the original; the breakpoint stays */
				vm->swbp[i].orig[k] = p[a - gpa];
				p[a - gpa] = bytes[k];
			}
		}
	return 0;
}

int vm_debug_set_cpu(struct vm *vm, int idx, const struct cpu_state *cpu, struct tvm_err *err)
{
	if (!vm_debug_stopped(vm))
		return tvm_seterr(err, "the VM is not stopped");
	if (idx < 0 || idx >= vm->ncpus)
		return tvm_seterr(err, "no vCPU %d", idx);
	int fd = vm->cpus[idx].fd;
	struct kvm_regs r;
	struct kvm_sregs sr;
	struct kvm_fpu f;
	if (ioctl(fd, KVM_GET_REGS, &r) < 0 || ioctl(fd, KVM_GET_SREGS, &sr) < 0 || ioctl(fd, KVM_GET_FPU, &f) < 0)
		return tvm_seterr(err, "cannot read the registers of vCPU %d: %s", idx, strerror(errno));
	__u64 *g[16] = { &r.rax, &r.rcx, &r.rdx, &r.rbx, &r.rsp, &r.rbp, &r.rsi, &r.rdi,
			    &r.r8, &r.r9, &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15 };
	for (int i = 0; i < 16; i++)
		*g[i] = cpu->gpr[i];
	r.rip = cpu->rip;
	r.rflags = cpu->rflags;
	if (ioctl(fd, KVM_SET_REGS, &r) < 0)
		return tvm_seterr(err, "KVM refused the registers: %s", strerror(errno));
	if (sr.fs.base != cpu->fs.base || sr.gs.base != cpu->gs.base || sr.cr0 != cpu->cr0 || sr.cr2 != cpu->cr2 ||
	    sr.cr3 != cpu->cr3 || sr.cr4 != cpu->cr4 || sr.cr8 != cpu->cr8 || sr.efer != cpu->efer) {
		sr.fs.base = cpu->fs.base;
		sr.gs.base = cpu->gs.base;
		sr.cr0 = cpu->cr0;
		sr.cr2 = cpu->cr2;
		sr.cr3 = cpu->cr3;
		sr.cr4 = cpu->cr4;
		sr.cr8 = cpu->cr8;
		sr.efer = cpu->efer;
		if (ioctl(fd, KVM_SET_SREGS, &sr) < 0)
			return tvm_seterr(err, "KVM refused the system registers: %s", strerror(errno));
	}
	const uint8_t *fx = cpu->fxsave; /* FXSAVE layout (vm_capture.c) */
	memcpy(&f.fcw, fx + 0, 2);
	memcpy(&f.fsw, fx + 2, 2);
	f.ftwx = fx[4];
	memcpy(&f.last_opcode, fx + 6, 2);
	memcpy(&f.last_ip, fx + 8, 8);
	memcpy(&f.last_dp, fx + 16, 8);
	memcpy(&f.mxcsr, fx + 24, 4);
	for (int i = 0; i < 8; i++)
		memcpy(f.fpr[i], fx + 32 + 16 * i, 16);
	for (int i = 0; i < 16; i++)
		memcpy(f.xmm[i], fx + 160 + 16 * i, 16);
	if (ioctl(fd, KVM_SET_FPU, &f) < 0)
		return tvm_seterr(err, "KVM refused the FPU registers: %s", strerror(errno));
	return 0;
}
