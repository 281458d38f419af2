/* vmm/vm_internal.h - struct vm, for vmm/ only. */
#ifndef TVM_VM_INTERNAL_H
#define TVM_VM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>

#include "bus.h"
#include "vm.h"

#define TVM_MAX_IO_RANGES 64

struct io_range {
	uint64_t base, len;
	bus_handler fn;
	void *dev;
	const char *name;
};

struct io_bus {
	int n;
	struct io_range r[TVM_MAX_IO_RANGES];
};

struct vcpu {
	struct vm *vm;
	int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;        /* created and not yet joined (vm_run's thread only) */
	bool alive;                 /* atomic, under vm->kick_lock: may be signalled (set at
	                               creation, cleared by the thread before it exits) */
	uint64_t exits;             /* atomic: exits handled */
	uint64_t exits_pio, exits_mmio; /* written by this vCPU's thread only */
	uint64_t io_seq;            /* port I/O and MMIO exits since the event log's
	                               segment began (own thread; vm_set_evlog resets it) */
	/* The pause barrier (vm_pause): holders under vm->pause_lock;
	 * `parked` set by the thread while it waits (its state is then
	 * consistent), with the RIP, CPL and MP state it parked at. */
	int pause_holders;          /* atomic reads outside the lock */
	bool parked;
	uint64_t park_rip;
	int park_cpl;
	int park_mp;
	/* The registers at the last exit (KVM_CAP_SYNC_REGS), for when KVM
	 * loses the state (AMD after a SHUTDOWN intercept). Own thread only. */
	bool seen_valid;
	uint64_t seen_exit;         /* exit number (1 = the first) */
	uint32_t seen_reason;       /* its KVM exit reason */
	struct kvm_regs seen_regs;
	struct kvm_sregs seen_sregs;
};

struct vm {
	int kvm_fd, vm_fd;
	int run_size;
	uint64_t ram_size;
	uint8_t *ram;
	int nregions;
	struct mem_region regions[TVM_MAX_REGIONS];
	int ncpus;
	struct vcpu cpus[TVM_MAX_VCPUS];
	struct io_bus bus[2];
	uint64_t sync_regs;         /* KVM_SYNC_X86_* bits kept at each exit (0: no KVM_CAP_SYNC_REGS) */
	uint64_t unclaimed;
	bool running;
	uint64_t start_ns;

	struct evlog *evlog;        /* atomic: the event log being recorded (vm_set_evlog), or NULL */
	const struct vm_replay_ops *replay; /* vm_set_replay, before the vCPUs start */
	void *replay_ctx;

	int nswbp;                  /* software breakpoints (vm_set_sw_breakpoints, vm_debug_insert) */
	enum tvm_bp_kind swbp_kind;
	struct { uint64_t vaddr, gpa; uint8_t orig[2]; bool armed, cleared; } swbp[TVM_DBG_MAX_BREAKPOINTS]; /* cleared: by vm_clear_sw_breakpoints */

	struct vm_dbg {             /* debug.c: the debugger (vm_debug_start) */
		bool on;
		bool hw_works;          /* DR0-3 breakpoints fire on this KVM */
		bool blockirq;          /* KVM_GUESTDBG_BLOCKIRQ offered */
		int nhw;
		uint64_t hw[4];         /* its hardware breakpoints */
		/* Under pause_lock: */
		uint64_t held;          /* vCPUs the debugger holds */
		bool pending;           /* a stop was asked for; the vCPUs are parking */
		bool stopped;           /* reported by vm_debug_poll, until vm_debug_resume */
		struct vm_debug_stop stop;
		bool int_at_exit;       /* atomic: replay's Ctrl-C, taken at the next exit */
		uint64_t int_asked_ns;
	} dbg;

	int (*main_hook)(struct vm *, void *); /* vm_set_main_hook */
	void *main_hook_arg;
	pthread_mutex_t pause_lock; /* the barrier; taken after ev_lock, never before */
	pthread_cond_t pause_cond;
	bool pause_asked;           /* atomic: vm_request_pause until vm_resume */
	bool dirty_log;             /* vm_dirty_log_start done */
	uint32_t *snap_msrs, snap_nmsrs; /* snapshot.c: the MSRs that read, once probed */
	uint64_t *kvm_dirty[TVM_MAX_REGIONS]; /* KVM_GET_DIRTY_LOG's buffers */
	int ndevices;
	struct vm_dev_entry { char name[TVM_DEVICE_NAME]; const struct vm_device_ops *ops; void *dev; } devices[TVM_MAX_DEVICES];

	void (*stop_hook)(void *); /* vm_set_stop_hook */
	void *stop_hook_arg;
	pthread_mutex_t kick_lock;  /* vcpu.alive vs pthread_kill; taken after ev_lock, never before */
	pthread_mutex_t ev_lock;
	bool stopping;
	int threads_done;
	struct tvm_event event;
	int evfd;                   /* eventfd: wakes vm_run's loop (an event, a thread's end, a pause asked) */
	struct evloop *loop;        /* vm_set_loop (borrowed), or NULL: vm_run makes its own */
};

/* breakpoints.c: a KVM_EXIT_DEBUG of vCPU c (a breakpoint, or the guest's
 * own int3 given back to it); and a port write to TVM_BP_PORT, true when it
 * was a breakpoint hit (the event is raised), false for the bus. */
void vcpu_debug_exit(struct vcpu *c);
bool vcpu_pio_breakpoint(struct vcpu *c);
/* The bytes of a software breakpoint of kind k (INT3 or PIO) and their
 * number; the breakpoint of the table at guest-virtual pc, or -1. */
unsigned swbp_bytes(enum tvm_bp_kind k, uint8_t out[2]);
int swbp_at(const struct vm *vm, uint64_t pc);

/* debug.c: vCPU c stops for the debugger (its own thread, in an exit):
 * every vCPU is held, vm_run's loop woken. */
void vcpu_debug_stop(struct vcpu *c, enum vm_debug_why why, uint64_t pc, bool at_exit);
/* vm.c's pause barrier, for debug.c (pause_lock held for hold_locked). */
void vm_hold_locked(struct vm *vm, uint64_t mask, int delta);
void vm_kick_mask(struct vm *vm, uint64_t mask);
void vm_wake_main(struct vm *vm);
uint64_t vm_all_mask(const struct vm *vm);

/* Destroy the devices the VM owns, newest first (vm_destroy; test VMs). */
void vm_destroy_devices(struct vm *vm);

/* Split vm->ram (vm->ram_size bytes) into the RAM regions of vm.h's layout. */
void vm_layout_ram(struct vm *vm);

#endif
