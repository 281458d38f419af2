/* vmm/vm.c - KVM VM and vCPUs: creation, guest RAM, CPUID/MSR/FPU/LAPIC
 * setup, boot registers, the vCPU run loop and the one event path. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../guests/include/trialvm_abi.h"
#include "bus.h"
#include "cpu_state.h"
#include "evlog.h"
#include "evloop.h"
#include "sandbox.h"
#include "stopsig.h"
#include "util.h"
#include "vm_internal.h"

#define KICK_SIGNAL SIGUSR1
#define TSS_ADDR 0xfffbd000ull
#define IDENTITY_MAP_ADDR 0xfffbc000ull

/* ------------------------------------------------------------- creation */

static int kvm_check_cap(struct vm *vm, long cap) { return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap); }

static int setup_cpuid(struct vm *vm, struct vcpu *c, struct tvm_err *err)
{
	int nent = 128;
	struct kvm_cpuid2 *cpuid;
	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + (size_t)nent * sizeof(struct kvm_cpuid_entry2));
		if (!cpuid)
			return tvm_seterr(err, "out of memory");
		cpuid->nent = (uint32_t)nent;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		int e = errno;
		free(cpuid);
		if (e != E2BIG || nent >= 4096)
			return tvm_seterr(err, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(e));
		nent *= 2;
	}
	/* The mask (README "CPUID"): start from what KVM supports, never the
	 * host's own CPUID, and hide what trialvm does not virtualise. */
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | ((uint32_t)c->index << 24) |
				 ((uint32_t)vm->ncpus << 16);
			e->ecx &= ~(1u << 5);  /* VMX: no nested virtualisation */
			e->ecx &= ~(1u << 3);  /* MONITOR/MWAIT: not emulated */
			e->ecx &= ~(1u << 30); /* RDRAND: random bytes no exit sees (record/replay) */
			e->ecx |= 1u << 31;    /* running under a hypervisor */
			if (vm->ncpus > 1)
				e->edx |= 1u << 28; /* HTT: CPUs count in EBX[23:16] valid */
			break;
		case 7:
			if (e->index == 0)
				e->ebx &= ~(1u << 18); /* RDSEED: as RDRAND */
			break;
		case 0xa:                      /* no performance counters (no vPMU) */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		case 0xb:
		case 0x1f:
			e->edx = (uint32_t)c->index; /* x2APIC id */
			break;
		case 0x80000001:
			e->ecx &= ~(1u << 2);  /* SVM: no nested virtualisation */
			break;
		}
	}
	int r = ioctl(c->fd, KVM_SET_CPUID2, cpuid);
	int e = errno;
	free(cpuid);
	if (r < 0)
		return tvm_seterr(err, "KVM_SET_CPUID2 on vCPU %d failed: %s", c->index, strerror(e));
	return 0;
}

static int setup_msrs(struct vcpu *c, struct tvm_err *err)
{
	static const struct { uint32_t index; uint64_t value; const char *name; } init[] = {
		{ 0x1a0, 1, "IA32_MISC_ENABLE" },      /* fast strings */
		{ 0x174, 0, "IA32_SYSENTER_CS" },
		{ 0x175, 0, "IA32_SYSENTER_ESP" },
		{ 0x176, 0, "IA32_SYSENTER_EIP" },
		{ 0xc0000081, 0, "STAR" },
		{ 0xc0000082, 0, "LSTAR" },
		{ 0xc0000083, 0, "CSTAR" },
		{ 0xc0000084, 0, "SFMASK" },
		{ 0xc0000102, 0, "KERNEL_GS_BASE" },
		{ 0x2ff, (1u << 11) | 6, "IA32_MTRR_DEF_TYPE" }, /* MTRRs on, write-back */
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[N];
	} m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = N;
	for (int i = 0; i < N; i++) {
		m.e[i].index = init[i].index;
		m.e[i].data = init[i].value;
	}
	int r = ioctl(c->fd, KVM_SET_MSRS, &m);
	if (r < 0)
		return tvm_seterr(err, "KVM_SET_MSRS on vCPU %d failed: %s", c->index, strerror(errno));
	if (r != N)
		return tvm_seterr(err, "KVM refused MSR %s (0x%x) on vCPU %d", init[r].name, init[r].index, c->index);
	return 0;
}

static int setup_fpu_lapic(struct vcpu *c, struct tvm_err *err)
{
	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(c->fd, KVM_SET_FPU, &fpu) < 0)
		return tvm_seterr(err, "KVM_SET_FPU on vCPU %d failed: %s", c->index, strerror(errno));

	/* LINT0 = ExtINT (the PIC), LINT1 = NMI, as a PC's BIOS leaves them. */
	struct kvm_lapic_state lapic;
	if (ioctl(c->fd, KVM_GET_LAPIC, &lapic) < 0)
		return tvm_seterr(err, "KVM_GET_LAPIC on vCPU %d failed: %s", c->index, strerror(errno));
	uint32_t *lint0 = (uint32_t *)&lapic.regs[0x350];
	uint32_t *lint1 = (uint32_t *)&lapic.regs[0x360];
	*lint0 = (*lint0 & ~0x700u & ~(1u << 16)) | (7u << 8);
	*lint1 = (*lint1 & ~0x700u & ~(1u << 16)) | (4u << 8);
	if (ioctl(c->fd, KVM_SET_LAPIC, &lapic) < 0)
		return tvm_seterr(err, "KVM_SET_LAPIC on vCPU %d failed: %s", c->index, strerror(errno));
	return 0;
}

static int create_vcpu(struct vm *vm, int index, struct tvm_err *err)
{
	struct vcpu *c = &vm->cpus[index];
	c->vm = vm;
	c->index = index;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (c->fd < 0)
		return tvm_seterr(err, "cannot create vCPU %d: %s", index, strerror(errno));
	c->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED) {
		c->run = NULL;
		return tvm_seterr(err, "cannot map the run structure of vCPU %d: %s", index, strerror(errno));
	}
	if (setup_cpuid(vm, c, err) < 0 || setup_msrs(c, err) < 0 || setup_fpu_lapic(c, err) < 0)
		return -1;
	return 0;
}

static void kick_handler(int sig) { (void)sig; }

struct vm *vm_create(const struct vm_config *cfg, struct tvm_err *err)
{
	if (cfg->ram_size < TVM_MIN_RAM || cfg->ram_size > TVM_MAX_RAM) {
		tvm_seterr(err, "guest memory of %llu bytes is outside what trialvm supports, 2M to 1T (--mem)",
			   (unsigned long long)cfg->ram_size);
		return NULL;
	}
	if (cfg->ram_size & 0xfff) {
		tvm_seterr(err, "guest memory size %llu is not a multiple of 4 KiB (--mem)",
			   (unsigned long long)cfg->ram_size);
		return NULL;
	}
	if (cfg->ncpus < 1 || cfg->ncpus > TVM_MAX_VCPUS) {
		tvm_seterr(err, "--cpus %d: trialvm supports 1 to %d vCPUs", cfg->ncpus, TVM_MAX_VCPUS);
		return NULL;
	}
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	vm->vm_fd = -1;
	vm->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&vm->ev_lock, NULL);
	pthread_mutex_init(&vm->kick_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	for (int i = 0; i < TVM_MAX_VCPUS; i++)
		vm->cpus[i].fd = -1;
	if (vm->evfd < 0) {
		tvm_seterr(err, "cannot create the VM's eventfd: %s", strerror(errno));
		goto fail;
	}

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int e = errno;
		if (e == ENOENT)
			tvm_seterr(err, "/dev/kvm does not exist: this machine offers no KVM (enable virtualisation "
					"in the firmware or nested virtualisation in the host, and load kvm_intel or kvm_amd)");
		else if (e == EACCES || e == EPERM)
			tvm_seterr(err, "/dev/kvm: permission denied (add your user to the 'kvm' group, or run as root)");
		else
			tvm_seterr(err, "cannot open /dev/kvm: %s", strerror(e));
		goto fail;
	}
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api < 0) {
		tvm_seterr(err, "/dev/kvm does not answer KVM requests (%s): it is not a KVM device", strerror(errno));
		goto fail;
	}
	if (api != KVM_API_VERSION) {
		tvm_seterr(err, "/dev/kvm speaks KVM API version %d; trialvm needs version %d", api, KVM_API_VERSION);
		goto fail;
	}
	static const struct { long cap; const char *name; } caps[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (kvm_check_cap(vm, caps[i].cap) <= 0) {
			tvm_seterr(err, "this kernel's KVM lacks %s, which trialvm needs", caps[i].name);
			goto fail;
		}
	int maxcpus = kvm_check_cap(vm, KVM_CAP_MAX_VCPUS);
	if (maxcpus > 0 && cfg->ncpus > maxcpus) {
		tvm_seterr(err, "--cpus %d: this KVM allows at most %d vCPUs", cfg->ncpus, maxcpus);
		goto fail;
	}
	int sync = kvm_check_cap(vm, KVM_CAP_SYNC_REGS);
	if (sync > 0 && (sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) == (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS))
		vm->sync_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		tvm_seterr(err, "KVM_GET_VCPU_MMAP_SIZE failed");
		goto fail;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		tvm_seterr(err, "KVM_CREATE_VM failed: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0) {
		tvm_seterr(err, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
		goto fail;
	}
	uint64_t idmap = IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		tvm_seterr(err, "KVM_SET_IDENTITY_MAP_ADDR failed: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		tvm_seterr(err, "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));
		goto fail;
	}
	/* Both 8259s start masked: the ACPI tables say hardware-reduced, so
	 * Linux never programs them, and an unprogrammed PIC (vector base 0)
	 * would turn ISA interrupts into exceptions through LINT0 (ExtINT).
	 * A guest that does use the PIC writes its own masks. */
	for (uint32_t chip_id = KVM_IRQCHIP_PIC_MASTER; chip_id <= KVM_IRQCHIP_PIC_SLAVE; chip_id++) {
		struct kvm_irqchip chip = { .chip_id = chip_id };
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0) {
			tvm_seterr(err, "KVM_GET_IRQCHIP failed: %s", strerror(errno));
			goto fail;
		}
		chip.chip.pic.imr = 0xff;
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0) {
			tvm_seterr(err, "KVM_SET_IRQCHIP failed: %s", strerror(errno));
			goto fail;
		}
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		tvm_seterr(err, "KVM_CREATE_PIT2 failed: %s", strerror(errno));
		goto fail;
	}

	/* Guest RAM: one host mapping, split around the MMIO hole below 4 GiB. */
	vm->ram_size = cfg->ram_size;
	int ram_fd = -1;
	if (cfg->ram_file) {
		struct stat st;
		ram_fd = open(cfg->ram_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (ram_fd < 0 || fstat(ram_fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != cfg->ram_size) {
			tvm_seterr(err, "guest memory image %s: %s", cfg->ram_file,
				   ram_fd < 0 ? strerror(errno) : "not a regular file of the guest's memory size");
			if (ram_fd >= 0)
				close(ram_fd);
			goto fail;
		}
	}
	vm->ram = mmap(NULL, cfg->ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_NORESERVE | (ram_fd < 0 ? MAP_ANONYMOUS : 0), ram_fd, 0);
	if (ram_fd >= 0)
		close(ram_fd);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		tvm_seterr(err, "cannot allocate %llu MiB of guest memory: %s (try a smaller --mem)",
			   (unsigned long long)(cfg->ram_size >> 20), strerror(errno));
		goto fail;
	}
	madvise(vm->ram, cfg->ram_size, MADV_DONTFORK);
	vm_layout_ram(vm);
	for (int i = 0; i < vm->nregions; i++) {
		struct kvm_userspace_memory_region mr = {
			.slot = (uint32_t)i,
			.guest_phys_addr = vm->regions[i].gpa,
			.memory_size = vm->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->regions[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
			tvm_seterr(err, "KVM_SET_USER_MEMORY_REGION failed: %s", strerror(errno));
			goto fail;
		}
	}

	vm->ncpus = cfg->ncpus;
	for (int i = 0; i < cfg->ncpus; i++)
		if (create_vcpu(vm, i, err) < 0)
			goto fail;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(KICK_SIGNAL, &sa, NULL);
	return vm;
fail:
	vm_destroy(vm);
	return NULL;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	vm_destroy_devices(vm);
	for (int i = 0; i < TVM_MAX_VCPUS; i++) {
		if (vm->cpus[i].run)
			munmap(vm->cpus[i].run, (size_t)vm->run_size);
		if (vm->cpus[i].fd >= 0)
			close(vm->cpus[i].fd);
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->evfd >= 0)
		close(vm->evfd);
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	for (int i = 0; i < TVM_MAX_REGIONS; i++) {
		free(vm->regions[i].vmm_dirty);
		free(vm->kvm_dirty[i]);
	}
	free(vm->snap_msrs);
	free(vm->event.payload);
	free(vm);
}

/* --------------------------------------------------------- boot registers */

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = code64;
	s->db = db;
	s->g = 1;
}

int vm_set_boot_entry(struct vm *vm, const struct boot_entry *entry, struct tvm_err *err)
{
	struct vcpu *c = &vm->cpus[0];
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	if (ioctl(c->fd, KVM_GET_SREGS, &sregs) < 0)
		return tvm_seterr(err, "KVM_GET_SREGS failed: %s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = entry->rip;

	if (entry->mode == BOOT_PVH32) {
		seg(&sregs.cs, 0x8, 0xb, false, true);
		seg(&sregs.ds, 0x10, 0x3, false, true);
		sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
		sregs.cr0 = 0x11; /* PE | ET */
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = entry->arg;
	} else {
		/* GDT: 0x10 = 64-bit code, 0x18 = data, as Linux's boot protocol asks. */
		static const uint64_t gdt[4] = { 0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull };
		if (gpa_write(vm, GPA(TVM_BOOT_GDT), gdt, sizeof(gdt)) < 0)
			return tvm_seterr(err, "no guest RAM for the boot GDT");
		/* Identity map of the first 4 GiB with 2 MiB pages. */
		uint64_t *pml4 = gpa_ptr(vm, GPA(TVM_BOOT_PML4), 6 * 4096);
		if (!pml4)
			return tvm_seterr(err, "no guest RAM for the boot page tables");
		memset(pml4, 0, 6 * 4096);
		uint64_t *pdpt = pml4 + 512, *pd = pml4 + 1024;
		pml4[0] = (TVM_BOOT_PML4 + 0x1000) | 0x3;
		for (uint64_t i = 0; i < 4; i++) {
			pdpt[i] = (TVM_BOOT_PML4 + 0x2000 + i * 0x1000) | 0x3;
			for (uint64_t j = 0; j < 512; j++)
				pd[i * 512 + j] = ((i << 30) | (j << 21)) | 0x83; /* present, rw, 2 MiB */
		}
		seg(&sregs.cs, 0x10, 0xb, true, false);
		seg(&sregs.ds, 0x18, 0x3, false, true);
		sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
		sregs.gdt.base = TVM_BOOT_GDT;
		sregs.gdt.limit = sizeof(gdt) - 1;
		sregs.idt.base = 0;
		sregs.idt.limit = 0;
		sregs.cr3 = TVM_BOOT_PML4;
		sregs.cr4 = 0x20;        /* PAE */
		sregs.cr0 = 0x80000011;  /* PG | ET | PE */
		sregs.efer = 0x500;      /* LME | LMA */
		regs.rsi = entry->arg;
	}
	if (ioctl(c->fd, KVM_SET_SREGS, &sregs) < 0)
		return tvm_seterr(err, "KVM_SET_SREGS failed: %s", strerror(errno));
	if (ioctl(c->fd, KVM_SET_REGS, &regs) < 0)
		return tvm_seterr(err, "KVM_SET_REGS failed: %s", strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------- events */

/* Signal vCPU c's thread out of KVM_RUN, only while it is alive: a thread
 * clears `alive` under kick_lock before it exits, so no signal ever goes to
 * a thread that vm_run may be joining or has joined. */
static void kick_one(struct vm *vm, struct vcpu *c)
{
	pthread_mutex_lock(&vm->kick_lock);
	if (c->alive && !pthread_equal(c->thread, pthread_self()))
		pthread_kill(c->thread, KICK_SIGNAL);
	pthread_mutex_unlock(&vm->kick_lock);
}

/* Wake vm_run's event loop (any thread; a full counter is awake already). */
void vm_wake_main(struct vm *vm)
{
	uint64_t one = 1;
	if (vm->evfd >= 0 && write(vm->evfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the loop will wake anyway */
	}
}

static void kick_all(struct vm *vm)
{
	for (int i = 0; i < vm->ncpus; i++) {
		struct vcpu *c = &vm->cpus[i];
		if (c->run)
			__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		kick_one(vm, c);
	}
}

void vm_raise(struct vm *vm, int vcpu, struct tvm_event *ev)
{
	ev->vcpu = vcpu;
	ev->raised_ns = now_ns();
	pthread_mutex_lock(&vm->ev_lock);
	if (vm->event.kind == TVM_EV_NONE) {
		vm->event = *ev;
		ev->payload = NULL;
	}
	vm->stopping = true;
	kick_all(vm);
	vm_wake_main(vm);
	pthread_mutex_lock(&vm->pause_lock); /* paused vCPUs end too */
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	pthread_mutex_unlock(&vm->ev_lock);
	free(ev->payload);
	ev->payload = NULL;
}

static int stop_signal; /* atomic */

void vm_request_stop(struct vm *vm, int signo)
{
	/* The vCPU threads raise the event (TVM_EV_SIGNAL). */
	__atomic_store_n(&stop_signal, signo, __ATOMIC_RELEASE);
	kick_all(vm);
}

bool vm_stop_pending(struct vm *vm)
{
	return vm && (__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE) || __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE));
}

/* --------------------------------------------------------------- run loop */

static void vcpu_exit_event(struct vcpu *c, enum tvm_event_kind kind, uint32_t reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void vcpu_exit_event(struct vcpu *c, enum tvm_event_kind kind, uint32_t reason, const char *fmt, ...)
{
	struct tvm_event ev = { .kind = kind, .reason = reason };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev.detail, sizeof(ev.detail), fmt, ap);
	va_end(ap);
	if (kind == TVM_EV_INTERNAL_ERROR) {
		uint32_t nd = c->run->internal.ndata;
		for (uint32_t i = 0; i < nd && i < 4 && i < sizeof(c->run->internal.data) / 8; i++)
			ev.data[i] = c->run->internal.data[i];
	}
	vm_raise(c->vm, c->index, &ev);
}

static const char *internal_suberror(uint32_t s)
{
	switch (s) {
	case KVM_INTERNAL_ERROR_EMULATION: return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	default: return "internal error";
	}
}

/* After a SHUTDOWN intercept AMD's KVM re-initialises the VMCB (the
 * architecture leaves it undefined), so the vCPU reads as just reset:
 * CS f000:fff0 with base 0xffff0000, real mode. Intel keeps the state. */
static bool cpu_state_was_reset(struct vcpu *c)
{
	struct kvm_regs r;
	struct kvm_sregs sr;
	if (ioctl(c->fd, KVM_GET_REGS, &r) < 0 || ioctl(c->fd, KVM_GET_SREGS, &sr) < 0)
		return false;
	return r.rip == 0xfff0 && sr.cs.selector == 0xf000 && sr.cs.base == 0xffff0000ull && !(sr.cr0 & 1) &&
	       !(sr.efer & 0x400);
}

/* The guest's RIP at this exit, when KVM hands the registers over at
 * each exit (KVM_CAP_SYNC_REGS); 0 otherwise. */
static uint64_t exit_rip(const struct vcpu *c) { return c->seen_valid ? c->seen_regs.rip : 0; }

/* Record/replay around a port I/O or MMIO exit: io_begin numbers it and,
 * on replay, checks it against the log before the devices see it (false:
 * not handled: the replay raised the run's event or holds the vCPU); io_end, after them,
 * puts a replayed read's recorded bytes in place, or records the exit. */
static bool io_begin(struct vcpu *c, unsigned bus, bool write, unsigned size, uint32_t count, uint64_t addr,
		     uint8_t *data)
{
	struct vm *vm = c->vm;
	c->io_seq++;
	if (!vm->replay ||
	    vm->replay->exit_check(vm->replay_ctx, c->index, c->io_seq, bus, write, size, count, addr, data, exit_rip(c)))
		return true;
	if (!write) /* not handled: a read completes with the bus floating, nothing of the host's */
		memset(data, 0xff, (size_t)size * count);
	return false;
}

static void io_end(struct vcpu *c, unsigned bus, bool write, unsigned size, uint32_t count, uint64_t addr,
		   uint8_t *data)
{
	struct vm *vm = c->vm;
	struct evlog *log = __atomic_load_n(&vm->evlog, __ATOMIC_ACQUIRE);
	if (vm->replay && !write)
		vm->replay->exit_fill(vm->replay_ctx, c->index, data, (size_t)size * count);
	else if (log)
		evlog_exit(log, c->index, c->io_seq, bus, write, size, count, addr, data);
}

/* A debugger's interrupt on replay is taken here, at a recorded exit. */
static void debug_at_exit(struct vcpu *c)
{
	if (__atomic_load_n(&c->vm->dbg.int_at_exit, __ATOMIC_ACQUIRE))
		vcpu_debug_stop(c, TVM_DBG_INTERRUPT, exit_rip(c), true);
}

static void handle_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	struct vm *vm = c->vm;
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		c->exits_pio++;
		uint64_t size = run->io.size, count = run->io.count, total;
		if ((size != 1 && size != 2 && size != 4) || mul_overflows(size, count, &total) ||
		    run->io.data_offset > (uint64_t)vm->run_size || total > (uint64_t)vm->run_size - run->io.data_offset) {
			vcpu_exit_event(c, TVM_EV_VMM_ERROR, run->exit_reason, "malformed port I/O exit from KVM");
			return;
		}
		uint8_t *data = (uint8_t *)run + run->io.data_offset;
		if (vm->nswbp > 0 && run->io.port == TVM_BP_PORT && vcpu_pio_breakpoint(c))
			return;
		bool out = run->io.direction == KVM_EXIT_IO_OUT;
		if (!io_begin(c, 1, out, (unsigned)size, (uint32_t)count, run->io.port, data))
			return;
		for (uint64_t i = 0; i < count && !vm->stopping; i++)
			bus_access(vm, BUS_PIO, c->index, run->io.port, data + i * size, (unsigned)size, out);
		io_end(c, 1, out, (unsigned)size, (uint32_t)count, run->io.port, data);
		debug_at_exit(c);
		return;
	}
	case KVM_EXIT_MMIO: {
		c->exits_mmio++;
		unsigned len = run->mmio.len;
		if (len == 0 || len > 8) {
			vcpu_exit_event(c, TVM_EV_VMM_ERROR, run->exit_reason, "malformed MMIO exit from KVM");
			return;
		}
		if (!io_begin(c, 2, run->mmio.is_write, len, 1, run->mmio.phys_addr, run->mmio.data))
			return;
		bus_access(vm, BUS_MMIO, c->index, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
		io_end(c, 2, run->mmio.is_write, len, 1, run->mmio.phys_addr, run->mmio.data);
		debug_at_exit(c);
		return;
	}
	case KVM_EXIT_SHUTDOWN: {
		struct tvm_event ev = { .kind = TVM_EV_TRIPLE_FAULT, .reason = run->exit_reason };
		snprintf(ev.detail, sizeof(ev.detail),
			 "the guest triple-faulted (an exception while handling a double fault): KVM_EXIT_SHUTDOWN");
		if (cpu_state_was_reset(c)) {
			ev.data[0] = 1;
			ev.data[1] = c->seen_valid ? c->seen_exit : 0;
		}
		vm_raise(vm, c->index, &ev);
		return;
	}
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_exit_event(c, TVM_EV_FAIL_ENTRY, (uint32_t)run->fail_entry.hardware_entry_failure_reason,
				"the CPU refused to enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x%llx): "
				"its register state is invalid",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_exit_event(c, TVM_EV_INTERNAL_ERROR, run->internal.suberror,
				"KVM could not continue the guest: %s (KVM_EXIT_INTERNAL_ERROR, suberror %u)",
				internal_suberror(run->internal.suberror), run->internal.suberror);
		return;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN: {
			struct tvm_event ev = { .kind = TVM_EV_POWEROFF, .exit_code = 0 };
			snprintf(ev.detail, sizeof(ev.detail), "the guest shut down");
			vm_raise(vm, c->index, &ev);
			return;
		}
		case KVM_SYSTEM_EVENT_RESET: {
			struct tvm_event ev = { .kind = TVM_EV_RESET };
			snprintf(ev.detail, sizeof(ev.detail), "the guest asked for a reset");
			vm_raise(vm, c->index, &ev);
			return;
		}
		case KVM_SYSTEM_EVENT_CRASH:
			vcpu_exit_event(c, TVM_EV_PANIC, run->system_event.type, "the guest reported a crash");
			return;
		}
		vcpu_exit_event(c, TVM_EV_UNKNOWN_EXIT, run->exit_reason, "unknown system event %u",
				run->system_event.type);
		return;
	case KVM_EXIT_INTR:
		return;
	case KVM_EXIT_DEBUG:
		vcpu_debug_exit(c);
		return;
	case KVM_EXIT_HLT:
		vcpu_exit_event(c, TVM_EV_UNKNOWN_EXIT, run->exit_reason,
				"the guest halted with no way to wake up (KVM_EXIT_HLT)");
		return;
	default:
		vcpu_exit_event(c, TVM_EV_UNKNOWN_EXIT, run->exit_reason,
				"KVM returned exit reason %u, which trialvm does not handle", run->exit_reason);
		return;
	}
}

struct evlog *vm_set_evlog(struct vm *vm, struct evlog *log)
{
	for (int i = 0; i < vm->ncpus; i++)
		vm->cpus[i].io_seq = 0;
	return __atomic_exchange_n(&vm->evlog, log, __ATOMIC_ACQ_REL);
}

void vm_set_replay(struct vm *vm, const struct vm_replay_ops *ops, void *ctx)
{
	vm->replay = ops;
	vm->replay_ctx = ctx;
	for (int i = 0; i < vm->ncpus; i++)
		vm->cpus[i].io_seq = 0;
}

void vm_nondet_input(struct vm *vm, int vcpu, unsigned src, void *data, size_t len)
{
	if (!vm || vcpu < 0 || vcpu >= vm->ncpus || !len)
		return;
	/* The exit the vCPU is handling (counted before its devices run). */
	uint64_t seq = vm->cpus[vcpu].io_seq;
	if (vm->replay) {
		vm->replay->input(vm->replay_ctx, vcpu, seq, src, data, len);
		return;
	}
	struct evlog *log = __atomic_load_n(&vm->evlog, __ATOMIC_ACQUIRE);
	if (log)
		evlog_data(log, vcpu, seq, src, data, len);
}

bool vm_nondet_active(struct vm *vm)
{
	return vm && (vm->replay || __atomic_load_n(&vm->evlog, __ATOMIC_ACQUIRE));
}

bool vm_nondet_check(struct vm *vm, int vcpu, unsigned src, const void *data, size_t len, const char *what)
{
	if (!vm || vcpu < 0 || vcpu >= vm->ncpus || !len || len > 64)
		return true;
	uint64_t seq = vm->cpus[vcpu].io_seq;
	if (!vm->replay) {
		struct evlog *log = __atomic_load_n(&vm->evlog, __ATOMIC_ACQUIRE);
		if (log)
			evlog_data(log, vcpu, seq, src, data, len);
		return true;
	}
	uint8_t rec[64];
	vm->replay->input(vm->replay_ctx, vcpu, seq, src, rec, len);
	if (memcmp(rec, data, len) == 0 || vm_stop_pending(vm)) /* equal, or the replay already stopped */
		return true;
	struct tvm_event ev = { .kind = TVM_EV_DIVERGED };
	snprintf(ev.detail, sizeof(ev.detail),
		 "replay diverged during exit %llu of vCPU %d: %s differs from the recording's (an image changed "
		 "since it was recorded?)", (unsigned long long)seq, vcpu, what);
	vm_raise(vm, vcpu, &ev);
	return false;
}

uint64_t vm_exit_count(struct vm *vm, int idx)
{
	return __atomic_load_n(&vm->cpus[idx].exits, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------- pause barrier */

static bool vm_ending(struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE) || __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE);
}

/* On vCPU c's own thread, at the top of its loop, while someone holds it:
 * finish what KVM left pending for the last exit (KVM_RUN with
 * immediate_exit set completes it and returns EINTR before any guest
 * instruction runs; a string instruction may need another exit, handled
 * as usual), note where it stopped, and wait for the holders to let go. */
static void vcpu_park(struct vcpu *c)
{
	struct vm *vm = c->vm;
	bool settled = false;
	for (int round = 0; round < 64 && !vm_ending(vm); round++) {
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		int r = ioctl(c->fd, KVM_RUN, 0);
		if (r < 0) {
			settled = errno == EINTR || errno == EAGAIN;
			break;
		}
		__atomic_fetch_add(&c->exits, 1, __ATOMIC_RELAXED);
		handle_exit(c);
	}
	__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (!settled) /* a stop, or a very long string instruction: try again at the next exit */
		return;
	struct kvm_regs r;
	struct kvm_sregs sr;
	struct kvm_mp_state mp;
	if (ioctl(c->fd, KVM_GET_REGS, &r) == 0 && ioctl(c->fd, KVM_GET_SREGS, &sr) == 0) {
		c->park_rip = r.rip;
		c->park_cpl = sr.cs.dpl;
	}
	c->park_mp = ioctl(c->fd, KVM_GET_MP_STATE, &mp) == 0 ? (int)mp.mp_state : 0;
	pthread_mutex_lock(&vm->pause_lock);
	c->parked = true;
	pthread_cond_broadcast(&vm->pause_cond);
	while (c->pause_holders > 0 && !vm_ending(vm)) {
		struct timespec ts;
		deadline_after_ms(50, &ts);
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	c->parked = false;
	pthread_mutex_unlock(&vm->pause_lock);
}

/* Add delta holders to every vCPU in mask (pause_lock held). */
void vm_hold_locked(struct vm *vm, uint64_t mask, int delta)
{
	for (int i = 0; i < vm->ncpus; i++)
		if (mask & (1ull << i))
			__atomic_store_n(&vm->cpus[i].pause_holders, vm->cpus[i].pause_holders + delta, __ATOMIC_RELEASE);
	if (delta < 0)
		pthread_cond_broadcast(&vm->pause_cond);
}

void vm_hold_vcpu(struct vm *vm, int idx)
{
	if (idx < 0 || idx >= vm->ncpus)
		return;
	pthread_mutex_lock(&vm->pause_lock);
	vm_hold_locked(vm, 1ull << idx, +1);
	pthread_mutex_unlock(&vm->pause_lock);
	vm_kick_mask(vm, 1ull << idx);
}

uint64_t vm_all_mask(const struct vm *vm) { return vm->ncpus >= 64 ? ~0ull : (1ull << vm->ncpus) - 1; }

void vm_kick_mask(struct vm *vm, uint64_t mask)
{
	for (int i = 0; i < vm->ncpus; i++)
		if (mask & (1ull << i)) {
			__atomic_store_n(&vm->cpus[i].run->immediate_exit, 1, __ATOMIC_SEQ_CST);
			kick_one(vm, &vm->cpus[i]);
		}
}

/* Hold the vCPUs in mask and wait until each is parked or gone. */
static int pause_mask(struct vm *vm, uint64_t mask, unsigned timeout_ms)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm_hold_locked(vm, mask, +1);
	pthread_mutex_unlock(&vm->pause_lock);
	vm_kick_mask(vm, mask);
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	pthread_mutex_lock(&vm->pause_lock);
	for (;;) {
		bool all = true;
		for (int i = 0; i < vm->ncpus; i++)
			if ((mask & (1ull << i)) && !vm->cpus[i].parked && __atomic_load_n(&vm->cpus[i].alive, __ATOMIC_ACQUIRE))
				all = false;
		if (all)
			break;
		if (now_ns() >= deadline) {
			vm_hold_locked(vm, mask, -1);
			pthread_mutex_unlock(&vm->pause_lock);
			return -1;
		}
		struct timespec ts;
		deadline_after_ms(5, &ts);
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
		pthread_mutex_unlock(&vm->pause_lock);
		vm_kick_mask(vm, mask); /* a vCPU may have been between its check and KVM_RUN */
		pthread_mutex_lock(&vm->pause_lock);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	return 0;
}

int vm_pause(struct vm *vm, unsigned timeout_ms, struct tvm_err *err)
{
	if (pause_mask(vm, vm_all_mask(vm), timeout_ms) < 0)
		return tvm_seterr(err, "the vCPUs did not pause within %u ms (one is busy in a device)", timeout_ms);
	return 0;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (__atomic_load_n(&vm->pause_asked, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&vm->pause_asked, false, __ATOMIC_RELEASE);
		vm_hold_locked(vm, vm_all_mask(vm), -1);
	}
	vm_hold_locked(vm, vm_all_mask(vm), -1);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_request_pause(struct vm *vm)
{
	bool first = false;
	pthread_mutex_lock(&vm->pause_lock);
	if (!__atomic_load_n(&vm->pause_asked, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&vm->pause_asked, true, __ATOMIC_RELEASE);
		vm_hold_locked(vm, vm_all_mask(vm), +1);
		first = true;
	}
	pthread_mutex_unlock(&vm->pause_lock);
	if (!first)
		return;
	vm_kick_mask(vm, vm_all_mask(vm));
	vm_wake_main(vm);
}

void vm_pause_request_cancel(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (__atomic_load_n(&vm->pause_asked, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&vm->pause_asked, false, __ATOMIC_RELEASE);
		vm_hold_locked(vm, vm_all_mask(vm), -1);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_pause_requested(struct vm *vm) { return __atomic_load_n(&vm->pause_asked, __ATOMIC_ACQUIRE); }

void vm_set_main_hook(struct vm *vm, int (*fn)(struct vm *, void *), void *arg)
{
	vm->main_hook = fn;
	vm->main_hook_arg = arg;
}

int vm_sample_rip(struct vm *vm, int idx, unsigned timeout_ms, uint64_t *rip, int *cpl, int *mp_state)
{
	if (idx < 0 || idx >= vm->ncpus)
		return -1;
	struct vcpu *c = &vm->cpus[idx];
	if (!__atomic_load_n(&c->alive, __ATOMIC_ACQUIRE))
		return -1;
	pthread_mutex_lock(&vm->pause_lock);
	bool held = c->pause_holders > 0; /* a snapshot or a control client pauses it */
	pthread_mutex_unlock(&vm->pause_lock);
	if (pause_mask(vm, 1ull << idx, timeout_ms) < 0)
		return -1;
	pthread_mutex_lock(&vm->pause_lock);
	bool ok = c->parked;
	*rip = c->park_rip;
	*cpl = c->park_cpl;
	*mp_state = held ? -1 : c->park_mp;
	vm_hold_locked(vm, 1ull << idx, -1);
	pthread_mutex_unlock(&vm->pause_lock);
	return ok ? 0 : -1;
}

/* ----------------------------------------------------------- dirty pages */

int vm_dirty_log_start(struct vm *vm, struct tvm_err *err)
{
	if (vm->dirty_log)
		return 0;
	for (int i = 0; i < vm->nregions; i++) {
		size_t words = vm_bitmap_words(vm->regions[i].size);
		vm->kvm_dirty[i] = calloc(words, 8);
		uint64_t *mine = calloc(words, 8);
		if (!vm->kvm_dirty[i] || !mine) {
			free(mine);
			return tvm_seterr(err, "out of memory for the dirty page bitmaps");
		}
		struct kvm_userspace_memory_region mr = {
			.slot = (uint32_t)i,
			.flags = KVM_MEM_LOG_DIRTY_PAGES,
			.guest_phys_addr = vm->regions[i].gpa,
			.memory_size = vm->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->regions[i].host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
			free(mine);
			return tvm_seterr(err, "cannot turn on KVM's dirty page log: %s", strerror(errno));
		}
		__atomic_store_n(&vm->regions[i].vmm_dirty, mine, __ATOMIC_RELEASE);
	}
	vm->dirty_log = true;
	return 0;
}

int vm_dirty_log_fetch(struct vm *vm, uint64_t *const *bitmaps, struct tvm_err *err)
{
	if (!vm->dirty_log)
		return tvm_seterr(err, "dirty page logging is off");
	for (int i = 0; i < vm->nregions; i++) {
		size_t words = vm_bitmap_words(vm->regions[i].size);
		struct kvm_dirty_log dl = { .slot = (uint32_t)i, .dirty_bitmap = vm->kvm_dirty[i] };
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &dl) < 0)
			return tvm_seterr(err, "KVM_GET_DIRTY_LOG failed: %s", strerror(errno));
		for (size_t w = 0; w < words; w++)
			bitmaps[i][w] |= vm->kvm_dirty[i][w] |
					 __atomic_exchange_n(&vm->regions[i].vmm_dirty[w], 0, __ATOMIC_ACQ_REL);
	}
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops->bulk_fetch)
			vm->devices[i].ops->bulk_fetch(vm->devices[i].dev);
	return 0;
}

void vm_dirty_log_committed(struct vm *vm)
{
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops->bulk_commit)
			vm->devices[i].ops->bulk_commit(vm->devices[i].dev);
}

/* --------------------------------------------------------------- devices */

void vm_destroy_devices(struct vm *vm)
{
	for (int i = vm->ndevices - 1; i >= 0; i--)
		if (vm->devices[i].ops->destroy)
			vm->devices[i].ops->destroy(vm->devices[i].dev);
	vm->ndevices = 0;
}

int vm_add_device(struct vm *vm, const char *name, const struct vm_device_ops *ops, void *dev, struct tvm_err *err)
{
	int bad = 0;
	if (vm->ndevices == TVM_MAX_DEVICES)
		bad = tvm_seterr(err, "more than %d devices", TVM_MAX_DEVICES);
	else if (strlen(name) >= TVM_DEVICE_NAME)
		bad = tvm_seterr(err, "device name '%s' is too long", name);
	for (int i = 0; !bad && i < vm->ndevices; i++)
		if (!strcmp(vm->devices[i].name, name))
			bad = tvm_seterr(err, "two devices are named '%s'", name);
	if (bad) {
		if (ops->destroy)
			ops->destroy(dev);
		return -1;
	}
	struct vm_dev_entry *d = &vm->devices[vm->ndevices++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ops = ops;
	d->dev = dev;
	return 0;
}

int vm_device_count(const struct vm *vm) { return vm->ndevices; }

const char *vm_device_at(const struct vm *vm, int i, const struct vm_device_ops **ops, void **dev)
{
	if (i < 0 || i >= vm->ndevices)
		return NULL;
	*ops = vm->devices[i].ops;
	*dev = vm->devices[i].dev;
	return vm->devices[i].name;
}

void vm_exit_stats(struct vm *vm, struct vm_exit_stats *o)
{
	*o = (struct vm_exit_stats){ 0 };
	for (int i = 0; i < vm->ncpus; i++) {
		o->total += __atomic_load_n(&vm->cpus[i].exits, __ATOMIC_RELAXED);
		o->pio += vm->cpus[i].exits_pio;
		o->mmio += vm->cpus[i].exits_mmio;
	}
}

uint64_t vm_uptime_ns(const struct vm *vm) { return vm->start_ns ? now_ns() - vm->start_ns : 0; }

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	struct tvm_err serr;
	if (sandbox_enter(SANDBOX_VCPU, &serr) < 0) { /* before the first KVM_RUN; on failure the VM stops */
		struct tvm_event ev = { .kind = TVM_EV_VMM_ERROR };
		snprintf(ev.detail, sizeof(ev.detail), "vCPU %d: %.200s", c->index, serr.msg);
		vm_raise(vm, c->index, &ev);
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE)) {
		int sig = __atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE);
		if (sig) {
			struct tvm_event ev = { .kind = TVM_EV_SIGNAL, .reason = (uint32_t)sig };
			snprintf(ev.detail, sizeof(ev.detail), "trialvm was interrupted by signal %d", sig);
			vm_raise(vm, c->index, &ev);
			break;
		}
		if (__atomic_load_n(&c->pause_holders, __ATOMIC_ACQUIRE) > 0) {
			vcpu_park(c);
			continue;
		}
		c->run->kvm_valid_regs = vm->sync_regs;
		int r = ioctl(c->fd, KVM_RUN, 0);
		if (r == 0 && vm->sync_regs && c->run->exit_reason != KVM_EXIT_SHUTDOWN) {
			c->seen_regs = c->run->s.regs.regs;
			c->seen_sregs = c->run->s.regs.sregs;
			c->seen_exit = __atomic_load_n(&c->exits, __ATOMIC_RELAXED) + 1;
			c->seen_reason = c->run->exit_reason;
			c->seen_valid = true;
		}
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			int e = errno;
			struct tvm_event ev = { .kind = TVM_EV_VMM_ERROR, .reason = (uint32_t)e };
			snprintf(ev.detail, sizeof(ev.detail), "KVM_RUN on vCPU %d failed: %s", c->index, strerror(e));
			vm_raise(vm, c->index, &ev);
			break;
		}
		__atomic_fetch_add(&c->exits, 1, __ATOMIC_RELAXED);
		handle_exit(c);
	}
	pthread_mutex_lock(&vm->kick_lock);
	__atomic_store_n(&c->alive, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->kick_lock);
	pthread_mutex_lock(&vm->ev_lock);
	vm->threads_done++;
	pthread_mutex_unlock(&vm->ev_lock);
	vm_wake_main(vm);
	return NULL;
}

void vm_set_stop_hook(struct vm *vm, void (*fn)(void *), void *arg)
{
	vm->stop_hook = fn;
	vm->stop_hook_arg = arg;
}

/* vm_run's loop: every started thread ended? *stopping: a stop was
 * raised; its kick is repeated (a stop raised before every thread existed
 * must reach them all, and a thread may have been between its check and
 * KVM_RUN). */
static bool run_ended(struct vm *vm, int started, bool *stopping)
{
	pthread_mutex_lock(&vm->ev_lock);
	bool done = vm->threads_done >= started;
	*stopping = vm->stopping;
	if (*stopping && !done)
		kick_all(vm);
	pthread_mutex_unlock(&vm->ev_lock);
	return done;
}

/* Loop callbacks: they consume what woke the loop; the state it announces
 * is read by the loop itself. */
static void drain_fd(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)events;
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another wake-up consumed it */
	}
}

static void drain_signals(void *arg, int fd, uint32_t events)
{
	(void)arg;
	(void)fd;
	(void)events;
	stop_signal_pending();
}

void vm_set_loop(struct vm *vm, struct evloop *loop) { vm->loop = loop; }

int vm_run(struct vm *vm, struct tvm_event *ev, struct tvm_err *err)
{
	/* vCPU threads take only the kick signal; SIGINT/SIGTERM go to the caller. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	vm->running = true;
	if (!vm->start_ns)
		vm->start_ns = now_ns();
	int started = 0;
	for (int i = 0; i < vm->ncpus; i++) {
		/* kick_lock: the thread cannot clear `alive` before it is set. */
		pthread_mutex_lock(&vm->kick_lock);
		int r = pthread_create(&vm->cpus[i].thread, NULL, vcpu_thread, &vm->cpus[i]);
		if (r == 0)
			__atomic_store_n(&vm->cpus[i].alive, true, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&vm->kick_lock);
		if (r != 0) {
			struct tvm_event e = { .kind = TVM_EV_VMM_ERROR };
			snprintf(e.detail, sizeof(e.detail), "cannot start the thread of vCPU %d: %s", i, strerror(r));
			vm_raise(vm, -1, &e);
			break;
		}
		vm->cpus[i].thread_started = true;
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	struct evloop *own = NULL, *loop = vm->loop;
	if (!loop && !(loop = own = evloop_new(err))) {
		struct tvm_event e = { .kind = TVM_EV_VMM_ERROR };
		snprintf(e.detail, sizeof(e.detail), "%.200s", err->msg);
		vm_raise(vm, -1, &e);
	}
	/* The loop wakes for the VM's eventfd and the stop signals; the
	 * callbacks only drain them, the state is read below. */
	struct tvm_err werr = { "" };
	int sfd = stop_signal_fd();
	bool watch_ev = loop && evloop_add(loop, vm->evfd, drain_fd, NULL, &werr) == 0;
	bool watch_sig = loop && sfd >= 0 && evloop_add(loop, sfd, drain_signals, NULL, &werr) == 0;
	if (loop && (!watch_ev || (sfd >= 0 && !watch_sig))) {
		struct tvm_event e = { .kind = TVM_EV_VMM_ERROR };
		snprintf(e.detail, sizeof(e.detail), "%.200s", werr.msg);
		vm_raise(vm, -1, &e);
	}
	for (;;) {
		bool stopping;
		if (run_ended(vm, started, &stopping))
			break;
		/* SIGINT/SIGTERM/SIGHUP arrive here, through the signalfd. */
		int sig = stop_signal_pending();
		if (sig && !__atomic_load_n(&stop_signal, __ATOMIC_ACQUIRE)) {
			vm_request_stop(vm, sig);
			continue;
		}
		int wait_ms = -1;
		if (vm->main_hook && !stopping) {
			wait_ms = vm->main_hook(vm, vm->main_hook_arg);
			if (run_ended(vm, started, &stopping))
				break;
		}
		if (stopping && (wait_ms < 0 || wait_ms > 50))
			wait_ms = 50; /* the kick in run_ended is retried until every thread ended */
		if (!loop || evloop_wait(loop, wait_ms) < 0) {
			struct timespec ts = { 0, 10 * 1000000L }; /* no loop: poll */
			nanosleep(&ts, NULL);
		}
	}
	if (watch_ev)
		evloop_del(loop, vm->evfd);
	if (watch_sig)
		evloop_del(loop, sfd);
	evloop_free(own);
	if (vm->stop_hook) /* e.g. the hang watcher: gone before anything is joined */
		vm->stop_hook(vm->stop_hook_arg);
	for (int i = 0; i < vm->ncpus; i++)
		if (vm->cpus[i].thread_started) {
			pthread_join(vm->cpus[i].thread, NULL);
			vm->cpus[i].thread_started = false;
		}
	vm->running = false;
	*ev = vm->event;
	vm->event.payload = NULL;
	if (ev->kind == TVM_EV_NONE)
		return tvm_seterr(err, "the VM stopped without a reason");
	return 0;
}

void vm_irq_line(struct vm *vm, unsigned irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };
	ioctl(vm->vm_fd, KVM_IRQ_LINE, &l);
}
