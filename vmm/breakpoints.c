/* vmm/breakpoints.c - execution breakpoints for --crash-on: hardware
 * (DR0-3), int3 with KVM_GUESTDBG_USE_SW_BP, or a port write, chosen by a
 * probe of what this machine's KVM delivers (vm.h), and the vCPU exits they
 * cause. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../guests/include/trialvm_abi.h"
#include "util.h"
#include "vm.h"
#include "vm_internal.h"

#define TSS_ADDR 0xfffbd000ull
_Static_assert(TVM_BP_PORT == TVM_PORT_DEBUG_BP, "the breakpoint port is the ABI's");

int swbp_at(const struct vm *vm, uint64_t pc)
{
	for (int i = 0; i < vm->nswbp; i++)
		if (vm->swbp[i].vaddr == pc)
			return i;
	return -1;
}

unsigned swbp_bytes(enum tvm_bp_kind k, uint8_t out[2])
{
	out[0] = k == TVM_BP_INT3 ? 0xcc : k == TVM_BP_ICEBP ? 0xf1 : 0xe6; /* int3, icebp, or out imm8, al */
	out[1] = TVM_BP_PORT;
	return k == TVM_BP_PIO ? 2 : 1;
}

/* A hit on breakpoint i of this vCPU (its RIP is on the breakpoint). */
static void sw_breakpoint_hit(struct vcpu *c, int i, uint32_t exception)
{
	struct tvm_event ev = { .kind = TVM_EV_BREAKPOINT, .reason = exception };
	ev.data[0] = c->vm->swbp[i].vaddr;
	snprintf(ev.detail, sizeof(ev.detail), "the guest reached breakpoint address 0x%llx",
		 (unsigned long long)ev.data[0]);
	vm_raise(c->vm, c->index, &ev);
}

/* With int3 breakpoints armed every #BP exits to trialvm; one that is not
 * trialvm's goes back to the guest as the exception it raised. */
static void give_back_exception(struct vcpu *c, uint32_t nr)
{
	struct kvm_vcpu_events e;
	if (ioctl(c->fd, KVM_GET_VCPU_EVENTS, &e) == 0) {
		e.exception.injected = 1;
		e.exception.nr = (uint8_t)nr;
		e.exception.has_error_code = 0;
		e.exception.error_code = 0;
		e.flags = 0;
		if (ioctl(c->fd, KVM_SET_VCPU_EVENTS, &e) == 0)
			return;
	}
	struct tvm_event ev = { .kind = TVM_EV_VMM_ERROR, .reason = KVM_EXIT_DEBUG };
	snprintf(ev.detail, sizeof(ev.detail), "vCPU %d: cannot hand the guest's own exception %u back to it: %s",
		 c->index, nr, strerror(errno));
	vm_raise(c->vm, c->index, &ev);
}

void vcpu_debug_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	struct vm *vm = c->vm;
	uint64_t pc = run->debug.arch.pc;
	if (vm->nswbp > 0 && vm->swbp_kind == TVM_BP_INT3 && run->debug.arch.exception == 3) {
		int i = swbp_at(vm, pc);
		if (i < 0)
			give_back_exception(c, 3); /* the guest's own int3 */
		else if (vm->dbg.on)
			vcpu_debug_stop(c, TVM_DBG_SWBREAK, pc, false);
		else
			sw_breakpoint_hit(c, i, 3);
		return;
	}
	if (vm->dbg.on && vm->nswbp > 0 && vm->swbp_kind == TVM_BP_ICEBP && run->debug.arch.exception == 1) {
		/* icebp's #DB is a trap: KVM reports the address after it */
		int i = swbp_at(vm, pc - 1);
		if (i < 0)
			i = swbp_at(vm, pc);
		if (i >= 0) {
			vcpu_debug_stop(c, TVM_DBG_SWBREAK, vm->swbp[i].vaddr, false);
			return;
		}
	}
	if (vm->dbg.on) {
		uint64_t dr6 = run->debug.arch.dr6;
		if (run->debug.arch.exception == 1 && (dr6 & 0xf))
			vcpu_debug_stop(c, TVM_DBG_HWBREAK, pc, false);
		else if (run->debug.arch.exception == 1 && (dr6 & (1u << 14))) /* DR6.BS: a single step */
			vcpu_debug_stop(c, TVM_DBG_STEP, pc, false);
		else
			give_back_exception(c, run->debug.arch.exception); /* the guest's own #DB or #BP */
		return;
	}
	struct tvm_event ev = { .kind = TVM_EV_BREAKPOINT, .reason = run->debug.arch.exception };
	ev.data[0] = pc;
	ev.data[1] = run->debug.arch.dr6;
	snprintf(ev.detail, sizeof(ev.detail), "the guest reached breakpoint address 0x%llx", (unsigned long long)pc);
	vm_raise(vm, c->index, &ev);
}

bool vcpu_pio_breakpoint(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	struct vm *vm = c->vm;
	if (vm->swbp_kind != TVM_BP_PIO || run->io.size != 1 || run->io.count != 1 ||
	    run->io.direction != KVM_EXIT_IO_OUT)
		return false;
	struct kvm_regs r;
	int i = ioctl(c->fd, KVM_GET_REGS, &r) == 0 ? swbp_at(vm, r.rip) : -1;
	if (i < 0)
		return false; /* the guest's own write to the port: the bus has it */
	if (vm->dbg.on)
		vcpu_debug_stop(c, TVM_DBG_SWBREAK, r.rip, false);
	else
		sw_breakpoint_hit(c, i, 0);
	return true;
}

int vm_set_hw_breakpoints(struct vm *vm, const uint64_t *addrs, int n, struct tvm_err *err)
{
	if (n < 0 || n > 4)
		return tvm_seterr(err, "at most 4 hardware breakpoints can be armed (got %d)", n);
	struct kvm_guest_debug dbg;
	memset(&dbg, 0, sizeof(dbg));
	if (n > 0) {
		dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
		for (int i = 0; i < n; i++) {
			dbg.arch.debugreg[i] = addrs[i];
			dbg.arch.debugreg[7] |= 1ull << (2 * i); /* Li: local enable, RW=00 (execute), LEN=00 */
		}
		dbg.arch.debugreg[7] |= 1ull << 10; /* reserved bit 10 reads as 1 */
	}
	for (int i = 0; i < vm->ncpus; i++)
		if (ioctl(vm->cpus[i].fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
			return tvm_seterr(err, "KVM_SET_GUEST_DEBUG on vCPU %d failed: %s", i, strerror(errno));
	return 0;
}

/* One probe of breakpoint kind k (HW or INT3) in a throwaway one-page
 * real-mode VM: "nop; X; out 0x80, al" where X is a nop with a hardware
 * breakpoint on it, or int3. 1 when it exits to trialvm as KVM_EXIT_DEBUG
 * at X, 0 when it does not, -1 with *err if the probe failed. */
static int probe_breakpoint(enum tvm_bp_kind k, struct tvm_err *err)
{
	int kvm = -1, vmfd = -1, cpu = -1, rc = -1;
	const size_t memsz = 0x2000, gpa_code = 0x1000;
	uint8_t *mem = MAP_FAILED;
	struct kvm_run *run = MAP_FAILED;
	long runsz = 0;
	uint8_t code[] = { 0x90, 0x90, 0xe6, 0x80, 0xf4 };
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE };
	dbg.arch.debugreg[7] = 1ull << 10; /* reserved bit 10 reads as 1 */
	if (k == TVM_BP_HW) {
		dbg.control |= KVM_GUESTDBG_USE_HW_BP;
		dbg.arch.debugreg[0] = gpa_code + 1;
		dbg.arch.debugreg[7] |= 1;
	} else if (k == TVM_BP_ICEBP) {
		dbg.control |= KVM_GUESTDBG_USE_HW_BP; /* #DB intercepted, no breakpoint armed */
		code[1] = 0xf1;
	} else {
		dbg.control |= KVM_GUESTDBG_USE_SW_BP;
		code[1] = 0xcc;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0 || (vmfd = ioctl(kvm, KVM_CREATE_VM, 0)) < 0) {
		tvm_seterr(err, "breakpoint probe: cannot create a VM: %s", strerror(errno));
		goto out;
	}
	mem = mmap(NULL, memsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		tvm_seterr(err, "breakpoint probe: out of memory");
		goto out;
	}
	memcpy(mem + gpa_code, code, sizeof(code));
	/* Every real-mode interrupt vector leads to "out 0x81, al; hlt", so an
	 * int3 the guest takes itself ends in an exit too, never in a loop. */
	static const uint8_t handler[] = { 0xe6, 0x81, 0xf4 };
	const uint16_t handler_at = 0x1100;
	memcpy(mem + handler_at, handler, sizeof(handler));
	for (int v = 0; v < 256; v++) {
		uint16_t ivt[2] = { handler_at, 0 }; /* offset, segment */
		memcpy(mem + 4 * v, ivt, sizeof(ivt));
	}
	struct kvm_userspace_memory_region mr = { .slot = 0, .guest_phys_addr = 0, .memory_size = memsz,
						  .userspace_addr = (uint64_t)(uintptr_t)mem };
	(void)ioctl(vmfd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR); /* real mode without unrestricted guest */
	runsz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &mr) < 0 || (cpu = ioctl(vmfd, KVM_CREATE_VCPU, 0)) < 0 ||
	    runsz < (long)sizeof(struct kvm_run) ||
	    (run = mmap(NULL, (size_t)runsz, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0)) == MAP_FAILED) {
		tvm_seterr(err, "breakpoint probe: cannot set up its vCPU: %s", strerror(errno));
		goto out;
	}
	struct kvm_sregs sr;
	struct kvm_regs r = { .rip = gpa_code, .rflags = 2, .rsp = 0x1f00 };
	if (ioctl(cpu, KVM_GET_SREGS, &sr) < 0) {
		tvm_seterr(err, "breakpoint probe: KVM_GET_SREGS: %s", strerror(errno));
		goto out;
	}
	sr.cs.base = 0;
	sr.cs.selector = 0;
	if (ioctl(cpu, KVM_SET_SREGS, &sr) < 0 || ioctl(cpu, KVM_SET_REGS, &r) < 0 ||
	    ioctl(cpu, KVM_SET_GUEST_DEBUG, &dbg) < 0) {
		tvm_seterr(err, "breakpoint probe: cannot set its registers: %s", strerror(errno));
		goto out;
	}
	int n;
	do
		n = ioctl(cpu, KVM_RUN, 0);
	while (n < 0 && (errno == EINTR || errno == EAGAIN));
	if (n < 0) {
		tvm_seterr(err, "breakpoint probe: KVM_RUN: %s", strerror(errno));
		goto out;
	}
	rc = run->exit_reason == KVM_EXIT_DEBUG &&
	     (run->debug.arch.pc == gpa_code + 1 || (k == TVM_BP_ICEBP && run->debug.arch.pc == gpa_code + 2));
	tvm_debug("breakpoint probe: %s: exit reason %u", vm_breakpoint_kind_name(k), run->exit_reason);
out:
	if (run != MAP_FAILED)
		munmap(run, (size_t)runsz);
	if (cpu >= 0)
		close(cpu);
	if (vmfd >= 0)
		close(vmfd);
	if (kvm >= 0)
		close(kvm);
	if (mem != MAP_FAILED)
		munmap(mem, memsz);
	return rc;
}

const char *vm_breakpoint_kind_name(enum tvm_bp_kind k)
{
	switch (k) {
	case TVM_BP_HW: return "hardware breakpoints";
	case TVM_BP_INT3: return "software breakpoints (int3)";
	case TVM_BP_ICEBP: return "software breakpoints (icebp, its #DB intercepted)";
	default: return "software breakpoints (a port write, out 0xcc, al)";
	}
}

/* Whether breakpoints of kind k (HW or INT3) fire on this KVM: probed once
 * per process. 1, 0, or -1 with *err. */
static int breakpoint_fires(enum tvm_bp_kind k, struct tvm_err *err)
{
	static int known[4] = { -1, -1, -1, -1 };
	if (known[k] < 0) {
		int r = probe_breakpoint(k, err);
		if (r < 0)
			return -1;
		tvm_debug("breakpoint probe: %s %s on this KVM", vm_breakpoint_kind_name(k), r ? "work" : "do not fire");
		known[k] = r;
	}
	return known[k];
}

int vm_breakpoint_kind(enum tvm_bp_kind *out, struct tvm_err *err)
{
	enum tvm_bp_kind k;
	for (k = TVM_BP_HW; k < TVM_BP_PIO; k++) { /* the port write always exits */
		int r = breakpoint_fires(k, err);
		if (r < 0)
			return -1;
		if (r)
			break;
	}
	*out = k;
	return 0;
}

int vm_sw_breakpoint_kind(enum tvm_bp_kind *out, struct tvm_err *err)
{
	int r = breakpoint_fires(TVM_BP_INT3, err);
	if (r < 0)
		return -1;
	if (r) {
		*out = TVM_BP_INT3;
		return 0;
	}
	if ((r = breakpoint_fires(TVM_BP_ICEBP, err)) < 0)
		return -1;
	*out = r ? TVM_BP_ICEBP : TVM_BP_PIO;
	return 0;
}

int vm_hw_breakpoints_fire(bool *out, struct tvm_err *err)
{
	int r = breakpoint_fires(TVM_BP_HW, err);
	if (r < 0)
		return -1;
	*out = r;
	return 0;
}

int vm_set_sw_breakpoints(struct vm *vm, enum tvm_bp_kind kind, const uint64_t *vaddrs, const uint64_t *gpas, int n,
			  struct tvm_err *err)
{
	if (kind != TVM_BP_INT3 && kind != TVM_BP_PIO)
		return tvm_seterr(err, "internal error: %s are not software breakpoints", vm_breakpoint_kind_name(kind));
	uint8_t bytes[2];
	const unsigned len = swbp_bytes(kind, bytes);
	if (n < 0 || n > TVM_MAX_SW_BREAKPOINTS)
		return tvm_seterr(err, "at most %d software breakpoints can be armed (got %d)", TVM_MAX_SW_BREAKPOINTS, n);
	vm_clear_sw_breakpoints(vm);
	for (int i = 0; i < n; i++) {
		uint8_t *p = gpa_ptr(vm, GPA(gpas[i]), len);
		if (!p) {
			vm_clear_sw_breakpoints(vm);
			return tvm_seterr(err, "the breakpoint at 0x%llx would go to guest-physical 0x%llx, which is not guest RAM",
					  (unsigned long long)vaddrs[i], (unsigned long long)gpas[i]);
		}
		bool clash = false; /* the same place twice, or overlapping port writes */
		for (int j = 0; j < i; j++)
			clash |= vm->swbp[j].armed && gpas[i] < vm->swbp[j].gpa + len && vm->swbp[j].gpa < gpas[i] + len;
		vm->swbp[i].vaddr = vaddrs[i];
		vm->swbp[i].gpa = gpas[i];
		vm->swbp[i].armed = !clash;
		vm->swbp_kind = kind;
		if (!clash) {
			memcpy(vm->swbp[i].orig, p, len);
			memcpy(p, bytes, len);
		}
		vm->nswbp = i + 1;
	}
	struct kvm_guest_debug dbg;
	memset(&dbg, 0, sizeof(dbg));
	if (n > 0 && kind == TVM_BP_INT3)
		dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP; /* every #BP exits */
	for (int i = 0; kind == TVM_BP_INT3 && i < vm->ncpus; i++)
		if (ioctl(vm->cpus[i].fd, KVM_SET_GUEST_DEBUG, &dbg) < 0) {
			int e = errno;
			vm_clear_sw_breakpoints(vm);
			return tvm_seterr(err, "KVM_SET_GUEST_DEBUG on vCPU %d failed: %s", i, strerror(e));
		}
	return 0;
}

void vm_clear_sw_breakpoints(struct vm *vm)
{
	uint8_t bytes[2];
	const unsigned len = swbp_bytes(vm->swbp_kind, bytes);
	for (int i = 0; i < vm->nswbp; i++) {
		uint8_t *p = gpa_ptr(vm, GPA(vm->swbp[i].gpa), len);
		bool ours = vm->swbp[i].armed && p && memcmp(p, bytes, len) == 0; /* unless the guest rewrote it */
		if (ours)
			memcpy(p, vm->swbp[i].orig, len);
		vm->swbp[i].cleared = ours;
		vm->swbp[i].armed = false;
	}
}

void vm_rearm_sw_breakpoints(struct vm *vm)
{
	uint8_t bytes[2];
	const unsigned len = swbp_bytes(vm->swbp_kind, bytes);
	for (int i = 0; i < vm->nswbp; i++) {
		uint8_t *p = vm->swbp[i].cleared ? gpa_ptr(vm, GPA(vm->swbp[i].gpa), len) : NULL;
		if (p) {
			memcpy(vm->swbp[i].orig, p, len);
			memcpy(p, bytes, len);
			vm->swbp[i].armed = true;
		}
		vm->swbp[i].cleared = false;
	}
}

