/* vmm/vm.h - the VM: KVM file descriptors, guest memory, vCPUs.
 *
 * Guest-physical memory layout (x86-64):
 *   [0, low_end)           RAM, low_end = min(ram_size, TVM_MMIO_HOLE_START)
 *   [TVM_MMIO_HOLE_START, 4 GiB)  MMIO hole (LAPIC, IOAPIC, virtio-mmio...)
 *   [4 GiB, 4 GiB + rest)  RAM above the hole when ram_size > hole start
 * The host backs all RAM with one anonymous mapping, `ram`, in that order.
 * Only vmm/ issues KVM ioctls. Everything else reaches guest memory through
 * the checked accessors below.
 */
#ifndef TVM_VM_H
#define TVM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TVM_MMIO_HOLE_START 0xc0000000ull
#define TVM_4G 0x100000000ull
#define TVM_MAX_VCPUS 64
#define TVM_MAX_REGIONS 2
#define TVM_MIN_RAM (2ull << 20)
#define TVM_MAX_RAM (1ull << 40)

/* A guest-physical address: a distinct type so it is never dereferenced. */
typedef struct { uint64_t v; } gpa_t;
static inline gpa_t GPA(uint64_t v) { return (gpa_t){ v }; }

struct mem_region {
	uint64_t gpa;     /* guest-physical start */
	uint64_t size;
	uint8_t *host;    /* host mapping of the region */
	/* While dirty logging is on (vm_dirty_log_start): one bit per page
	 * that trialvm itself may have written (KVM's log has only the
	 * guest's writes). Set by gmem_ptr/gpa_ptr/gpa_write; NULL: off. */
	uint64_t *vmm_dirty;
};

/* A read view of guest RAM without the VM: what dump writers and the page
 * walker use (they make no KVM calls). */
struct guest_mem {
	const struct mem_region *r;
	int n;
};
/* Host pointer for [gpa, gpa+len) when it lies inside one region, else
 * NULL. The pages count as written by trialvm (vmm_dirty): anything that
 * may write through the pointer uses it. */
void *gmem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* The same for reading only: the pages are not marked. */
const void *gmem_ptr_ro(const struct guest_mem *m, uint64_t gpa, uint64_t len);

struct vm;

/* Error reporting for setup code: functions return -1 and fill `err`
 * with one human-readable sentence (no trailing newline). tvm_seterr may
 * be given e->msg as an argument, to add context to a callee's error. */
struct tvm_err { char msg[512]; };
int tvm_seterr(struct tvm_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- guest memory (the one checked accessor) ---- */

/* Host pointer for [gpa, gpa+len) when that range lies entirely inside one
 * RAM region, else NULL. Overflow-safe; len 0 is valid inside RAM. Marks
 * the pages written by trialvm while dirty logging is on (gmem_ptr). */
void *gpa_ptr(struct vm *vm, gpa_t gpa, uint64_t len);
/* Copy to/from guest memory; -1 when the range is not all RAM. */
int gpa_read(struct vm *vm, gpa_t gpa, void *dst, uint64_t len);
int gpa_write(struct vm *vm, gpa_t gpa, const void *src, uint64_t len);

uint64_t vm_ram_size(const struct vm *vm);
struct guest_mem vm_guest_mem(const struct vm *vm);
int vm_regions(const struct vm *vm, const struct mem_region **out);

/* The e820 map of this VM: RAM regions, with [0x9fc00, 0x100000) reserved
 * (EBDA/ROM area, as PCs have it). Returns the number of entries written. */
struct e820_entry { uint64_t addr, size; uint32_t type; };
int vm_e820(const struct vm *vm, struct e820_entry *out, int max);
int vm_ncpus(const struct vm *vm);

/* ---- boot ----
 * Low memory used by trialvm's boot code (guest physical):
 *   0x0500-0x05ff  GDT for BOOT_LINUX64 (vm_set_boot_entry)
 *   0x5000-0x6fff  PVH start info, module list, memmap, command line
 *   0x7000-0x7fff  Linux boot_params (zero page)
 *   0x9000-0xefff  identity page tables for BOOT_LINUX64 (vm_set_boot_entry)
 *   0x20000-       Linux command line
 *   0x9fc00-       MP table (reserved in the e820 map)
 *   0xe0000-0xeffff ACPI tables: RSDP, RSDT/XSDT, FADT, DSDT, MADT (reserved)
 */
#define TVM_BOOT_GDT 0x500u
#define TVM_BOOT_PML4 0x9000u

enum boot_mode {
	BOOT_PVH32,    /* 32-bit protected mode, paging off, EBX = arg */
	BOOT_LINUX64,  /* 64-bit long mode, VMM identity-maps the first 4 GiB
	                  and builds a GDT (__BOOT_CS 0x10, __BOOT_DS 0x18),
	                  RSI = arg (boot_params) */
};
/* Where the loader put the kernel: each loaded ELF segment's virtual and
 * physical start (the kernel's own view before it relocates itself; empty
 * for a bzImage left to decompress itself in the guest). */
#define TVM_MAX_KSEGS 16
struct kernel_seg { uint64_t vaddr, paddr, size; };
struct boot_entry {
	enum boot_mode mode;
	uint64_t rip;
	uint64_t arg;
	int nsegs;
	struct kernel_seg segs[TVM_MAX_KSEGS];
};
/* The guest-physical address of kernel virtual address va by e's segments:
 * 0, or -1 when va is in none of them. */
int boot_entry_virt_to_phys(const struct boot_entry *e, uint64_t va, uint64_t *pa);

/* ---- lifecycle ---- */

struct vm_config {
	uint64_t ram_size;
	int ncpus;
	/* NULL: RAM starts zero (anonymous memory). Else a regular file of
	 * exactly ram_size bytes, the RAM regions' contents back to back (a
	 * restore's materialised memory, vmm/snapshot.h): mapped privately,
	 * so pages load when the guest touches them and its writes stay in
	 * this process. */
	const char *ram_file;
};
/* Open /dev/kvm, check the API and capabilities, create the VM, its RAM,
 * in-kernel irqchip and PIT, and the vCPUs (CPUID, MSRs, FPU, LAPIC). */
struct vm *vm_create(const struct vm_config *cfg, struct tvm_err *err);
void vm_destroy(struct vm *vm);

/* Set the boot vCPU's registers for `entry`. */
int vm_set_boot_entry(struct vm *vm, const struct boot_entry *entry, struct tvm_err *err);

/* ---- events: how a run ends ----
 * Every way a run can end goes through vm_raise(): the first event stops
 * all vCPUs; vm_run() returns it. The crash monitor reads it from there. */
enum tvm_event_kind {
	TVM_EV_NONE,
	TVM_EV_POWEROFF,       /* the guest powered off; exit_code is its status */
	TVM_EV_RESET,          /* the guest asked for a reset */
	TVM_EV_APP_FAULT,      /* trialos reported an application crash */
	TVM_EV_PANIC,          /* the guest kernel panicked (pvpanic) */
	TVM_EV_TRIPLE_FAULT,   /* KVM_EXIT_SHUTDOWN; data[0] = 1 when KVM lost the CPU
	                          state (AMD resets the vCPU), data[1] = the last exit
	                          whose state vm_last_seen_cpu() has (0: none) */
	TVM_EV_INTERNAL_ERROR, /* KVM_EXIT_INTERNAL_ERROR, emulation failure included */
	TVM_EV_FAIL_ENTRY,     /* KVM_EXIT_FAIL_ENTRY */
	TVM_EV_UNKNOWN_EXIT,   /* an exit reason trialvm does not handle */
	TVM_EV_VMM_ERROR,      /* trialvm itself failed (KVM_RUN error, ...) */
	TVM_EV_SIGNAL,         /* trialvm was interrupted (SIGINT/SIGTERM) */
	TVM_EV_BREAKPOINT,     /* a --crash-on breakpoint was hit; data[0] = address,
	                          reason = the exception (1: hardware, 3: int3) */
	TVM_EV_HANG,           /* the guest made no progress (--hang-timeout) */
	TVM_EV_CHECKPOINT,     /* `snapshot checkpoint` wrote its snapshot: the run ends */
	TVM_EV_QUIT,           /* a control client asked for the end (run --control) */
	TVM_EV_GUEST_CORE,     /* a Linux guest's process crashed; payload: struct guest_core (devices.h) */
	TVM_EV_DIVERGED,       /* replay: the guest did not do what the event log says */
	TVM_EV_REPLAY_END,     /* replay: the guest went on past the log's end (the next segment's) */
};

struct tvm_event {
	enum tvm_event_kind kind;
	int vcpu;
	int exit_code;          /* TVM_EV_POWEROFF */
	uint32_t reason;        /* KVM exit reason / suberror / hw reason / signal */
	uint64_t data[4];       /* kind-specific (internal error data, pvpanic value) */
	char detail[256];       /* one sentence */
	uint64_t raised_ns;     /* now_ns() when it was raised */
	void *payload;          /* kind-specific, malloc'ed (struct tvm_fault for APP_FAULT) */
	size_t payload_len;
};

/* Raise an event from a vCPU thread (vcpu >= 0) or elsewhere (vcpu = -1).
 * Takes ownership of ev->payload. Only the first event of a run counts. */
void vm_raise(struct vm *vm, int vcpu, struct tvm_event *ev);

/* fn(arg), called by vm_run on its own thread once every vCPU thread has
 * finished, before they are joined: stop what still looks at the vCPUs
 * (the hang watcher). One hook; NULL removes it. */
void vm_set_stop_hook(struct vm *vm, void (*fn)(void *), void *arg);

/* Run all vCPUs until an event; *ev receives it (caller frees payload). */
int vm_run(struct vm *vm, struct tvm_event *ev, struct tvm_err *err);

/* Ask a running VM to stop (any thread; not from a signal handler: stop
 * signals come through vmm/stopsig.h, which vm_run polls). */
void vm_request_stop(struct vm *vm, int signo);

/* True once the VM is stopping (an event was raised, or a stop signal came):
 * long device work (a large disk request) checks it between bounded steps
 * and gives up. Any thread; vm NULL: false. */
bool vm_stop_pending(struct vm *vm);

/* ---- inspection (all vCPUs stopped, after vm_run returned, or paused: vm_pause) ---- */
struct cpu_state;
/* The complete state of vCPU idx (registers, FPU/XSAVE, XCRs, debug
 * registers, MSRs, LAPIC, MP state). */
int vm_capture_cpu(struct vm *vm, int idx, struct cpu_state *out, struct tvm_err *err);
struct irqchip_state;
/* The registers and system registers of vCPU idx as they were at its last
 * exit before the current stop (KVM_CAP_SYNC_REGS): what trialvm last saw
 * when KVM has lost the state since (TVM_EV_TRIPLE_FAULT with data[0] = 1).
 * FPU, MSRs, LAPIC are not kept (zero). *exit_no counts from 1; -1 when
 * nothing was seen (no exit yet, or no KVM_CAP_SYNC_REGS). */
int vm_last_seen_cpu(struct vm *vm, int idx, struct cpu_state *out, uint64_t *exit_no, uint32_t *exit_reason);
/* The PICs, IOAPIC and PIT of the in-kernel irqchip. */
int vm_capture_irqchip(struct vm *vm, struct irqchip_state *out, struct tvm_err *err);
/* Nanoseconds since vm_run first started the vCPUs. */
uint64_t vm_uptime_ns(const struct vm *vm);

/* ---- debugging and progress ---- */
/* Arm up to 4 hardware execution breakpoints (guest-virtual addresses) on
 * every vCPU; a hit raises TVM_EV_BREAKPOINT. */
int vm_set_hw_breakpoints(struct vm *vm, const uint64_t *addrs, int n, struct tvm_err *err);
/* Which kind of execution breakpoint to use on this machine's KVM, by
 * probing in a throwaway one-page VM: hardware breakpoints (DR0-3) where
 * they fire, else int3 with KVM_GUESTDBG_USE_SW_BP where #BP exits, else a
 * two-byte port write "out 0xcc, al" (TVM_BP_PORT), which always exits.
 * QEMU's emulated AMD-V neither fires hardware breakpoints nor intercepts
 * int3, so there it is the port write. Kept for the process. -1 with *err
 * when a probe itself failed. */
#define TVM_BP_PORT 0xcc
/* TVM_BP_ICEBP: the debugger's only (vm_sw_breakpoint_kind): "icebp"
 * (int1, 0xf1), whose #DB KVM intercepts while it debugs the guest; it
 * works in ring 3, where the port write faults. */
enum tvm_bp_kind { TVM_BP_HW, TVM_BP_INT3, TVM_BP_PIO, TVM_BP_ICEBP };
int vm_breakpoint_kind(enum tvm_bp_kind *out, struct tvm_err *err);
const char *vm_breakpoint_kind_name(enum tvm_bp_kind k);
/* The software kind alone (INT3 where #BP exits, else ICEBP where its #DB
 * exits, else PIO: ring 0 only), and whether
 * hardware breakpoints fire: the same probes, kept for the process. */
int vm_sw_breakpoint_kind(enum tvm_bp_kind *out, struct tvm_err *err);
int vm_hw_breakpoints_fire(bool *out, struct tvm_err *err);
/* Arm up to TVM_MAX_SW_BREAKPOINTS software breakpoints of kind (INT3 or
 * PIO): int3 (1 byte) or "out 0xcc, al" (2 bytes) written at guest-physical
 * gpas[i] (through the checked accessor), for the instruction at
 * guest-virtual vaddrs[i]. A hit at one of vaddrs raises TVM_EV_BREAKPOINT
 * with the vCPU's RIP on the breakpoint; the guest's own int3 goes back to
 * it, and its own writes to port 0xcc elsewhere reach the bus as usual.
 * The run is meant to end at the first hit: a port-write breakpoint covers
 * two bytes, so code that jumps to the second one runs a broken
 * instruction. The original bytes are kept for vm_clear_sw_breakpoints. */
#define TVM_MAX_SW_BREAKPOINTS 4
int vm_set_sw_breakpoints(struct vm *vm, enum tvm_bp_kind kind, const uint64_t *vaddrs, const uint64_t *gpas, int n,
			  struct tvm_err *err);
/* Put the original bytes back where trialvm's breakpoint byte is still in
 * place (all vCPUs stopped): done before any capture, so no dump, report or
 * disassembly shows it. Idempotent. */
void vm_clear_sw_breakpoints(struct vm *vm);
/* Put back the breakpoints the last vm_clear_sw_breakpoints took out
 * (a live report of a paused VM, which then runs on). */
void vm_rearm_sw_breakpoints(struct vm *vm);
/* ---- the debugger (monitor/gdbstub.c): all-stop, per-vCPU stepping ----
 * vm_debug_start hands the VM's breakpoints and stops to a debugger
 * (--crash-on must not be armed). A stop (a breakpoint, a finished step, an
 * interrupt, the start) holds every vCPU at an exit boundary through the
 * pause barrier until vm_debug_resume; vm_debug_poll on vm_run's thread
 * reports it once every vCPU is parked. Registers and memory are read and
 * written only while stopped. Breakpoints: int3 where #BP exits, else the
 * port write of vm_breakpoint_kind (2 bytes); hardware ones in DR0-3 where
 * they fire, else served as software ones. Memory reads through
 * vm_debug_read never show the breakpoint bytes. */
enum vm_debug_why { TVM_DBG_START, TVM_DBG_STEP, TVM_DBG_SWBREAK, TVM_DBG_HWBREAK, TVM_DBG_INTERRUPT };
struct vm_debug_stop {
	enum vm_debug_why why;
	int vcpu;       /* the vCPU that stopped (the one gdb should look at) */
	uint64_t pc;    /* its RIP */
	bool at_exit;   /* an interrupt on replay: taken at a recorded exit, so
	                   a place the log names */
	uint64_t exit_no; /* at_exit: that exit's number in the segment */
};
/* Before vm_run: debugger mode on; stop_at_start: the vCPUs start held
 * (a TVM_DBG_START stop). */
int vm_debug_start(struct vm *vm, bool stop_at_start, struct tvm_err *err);
bool vm_debug_on(const struct vm *vm);
/* vm_run's thread: true once for each stop, when every vCPU is parked;
 * *wait_ms: when to poll again (-1: after the next wake-up). */
bool vm_debug_poll(struct vm *vm, struct vm_debug_stop *out, int *wait_ms);
/* True while stopped (after vm_debug_poll reported it, before resume). */
bool vm_debug_stopped(const struct vm *vm);
/* Ctrl-C: stop as soon as possible; on replay at the vCPU's next port I/O
 * or MMIO exit (deterministic), or anywhere after a second without one. */
void vm_debug_interrupt(struct vm *vm);
/* While stopped: run again; step_vcpu >= 0: that vCPU executes one
 * instruction (interrupts blocked where KVM can) and the others stay held. */
int vm_debug_resume(struct vm *vm, int step_vcpu, struct tvm_err *err);
/* While stopped: a breakpoint at guest-virtual vaddr, whose instruction is at
 * guest-physical gpa; hw: a hardware one (see above). */
#define TVM_DBG_MAX_BREAKPOINTS 32
int vm_debug_insert(struct vm *vm, bool hw, uint64_t vaddr, uint64_t gpa, struct tvm_err *err);
int vm_debug_remove(struct vm *vm, bool hw, uint64_t vaddr);
/* Remove every breakpoint the debugger set (detach). */
void vm_debug_remove_all(struct vm *vm);
/* While stopped: guest-physical memory as the guest would read it without
 * the breakpoints; a write keeps them in place. -1 unless all RAM. */
int vm_debug_read(struct vm *vm, uint64_t gpa, void *buf, uint64_t len);
int vm_debug_write(struct vm *vm, uint64_t gpa, const void *buf, uint64_t len);
/* While stopped: set vCPU idx's general registers, RIP, RFLAGS, FS/GS
 * bases, CR0/2/3/4/8, EFER and FXSAVE image from *cpu (the other fields
 * are ignored; read the rest with vm_capture_cpu). */
int vm_debug_set_cpu(struct vm *vm, int idx, const struct cpu_state *cpu, struct tvm_err *err);

/* Record/replay (vmm/evlog.h): from now on every port I/O and MMIO exit,
 * with what the guest read or wrote, goes to `log` (NULL: none); each
 * vCPU's exit numbers start again at 1. Call with the vCPUs paused or
 * not yet started. Returns the log it replaces (the caller closes it). */
struct evlog;
struct evlog *vm_set_evlog(struct vm *vm, struct evlog *log);
/* Replay (monitor/replay.h): each port I/O and MMIO exit goes to
 * exit_check before the devices see it (false: the vCPU does not handle
 * it; the hook raised the run's event), and a read's bytes, after the
 * devices, to exit_fill, which puts the recorded ones in their place; what
 * devices take from nondeterministic sources goes to input instead of the
 * log. Set before the vCPUs start; exit numbers start again at 1. */
struct vm_replay_ops {
	bool (*exit_check)(void *ctx, int vcpu, uint64_t seq, unsigned bus, bool write, unsigned size, uint32_t count,
			   uint64_t addr, const uint8_t *data, uint64_t rip);
	void (*exit_fill)(void *ctx, int vcpu, uint8_t *data, size_t len);
	void (*input)(void *ctx, int vcpu, uint64_t seq, unsigned src, void *data, size_t len);
};
void vm_set_replay(struct vm *vm, const struct vm_replay_ops *ops, void *ctx);
/* Keep vCPU idx parked from its next loop on until the run ends (a
 * replay's vCPU past its recorded exits waits there for the others); an
 * exit it was in that exit_check refused completes a read with all-ones. */
void vm_hold_vcpu(struct vm *vm, int idx);
/* A device took len bytes at data from a nondeterministic source (enum
 * evlog_src) while vCPU `vcpu` was in an exit: recorded (vm_set_evlog),
 * or, on replay, replaced by the recorded bytes. */
void vm_nondet_input(struct vm *vm, int vcpu, unsigned src, void *data, size_t len);
/* True while recording or replaying: worth computing a check for. */
bool vm_nondet_active(struct vm *vm);
/* A check of what a device did during vCPU vcpu's exit (len <= 64 bytes,
 * e.g. a disk read's CRC): recorded, or on replay compared with the
 * recorded one; a difference raises TVM_EV_DIVERGED naming `what` and
 * returns false. */
bool vm_nondet_check(struct vm *vm, int vcpu, unsigned src, const void *data, size_t len, const char *what);
/* While the VM runs (from another thread): the number of exits vCPU idx
 * has taken so far, and a fresh sample of its RIP, CPL and KVM MP state
 * (0 = runnable; -1 = trialvm itself holds it paused, a snapshot or a
 * control client: no guest progress is expected), taken through the pause
 * barrier; -1 if it did not answer within timeout_ms. */
uint64_t vm_exit_count(struct vm *vm, int idx);
/* Exits taken by all vCPUs so far: total, port I/O, MMIO. */
struct vm_exit_stats { uint64_t total, pio, mmio; };
void vm_exit_stats(struct vm *vm, struct vm_exit_stats *out);
int vm_sample_rip(struct vm *vm, int idx, unsigned timeout_ms, uint64_t *rip, int *cpl, int *mp_state);

/* ---- dirty pages (incremental snapshots) ----
 * KVM's dirty log (one bitmap per memory slot, KVM_GET_DIRTY_LOG; the
 * dirty ring was not chosen: see vmm/snapshot.h) has the pages the guest
 * wrote; trialvm's own writes into guest memory (virtio completions,
 * hypercall results, breakpoints) are not in it and are kept in each
 * region's vmm_dirty. vm_dirty_log_fetch ORs both into bitmaps[region]
 * (one bit per 4 KiB page of each region, vm_regions order) and clears
 * them: every vCPU paused or stopped. */
int vm_dirty_log_start(struct vm *vm, struct tvm_err *err);
int vm_dirty_log_fetch(struct vm *vm, uint64_t *const *bitmaps, struct tvm_err *err);
/* What the last fetches gave the devices' bulk contents (vm_device_ops
 * bulk_fetch) is now in a snapshot on disk: they forget it. A fetch whose
 * snapshot failed is not committed, so the next one holds it too. */
void vm_dirty_log_committed(struct vm *vm);
/* Words of a region's bitmap. */
static inline uint64_t vm_bitmap_words(uint64_t region_size) { return (region_size / 4096 + 63) / 64; }

/* ---- the pause barrier ----
 * vm_pause() stops every vCPU at an exit boundary: the exit it was
 * handling is finished, and the operation KVM left pending for it (a port
 * or MMIO read's value, a string instruction's next step) is completed by
 * one KVM_RUN with immediate_exit set, so the vCPU state read while paused
 * is consistent (KVM API, "KVM_RUN ... immediate_exit"). Paused vCPUs wait
 * until vm_resume(). Pauses nest (the hang watcher pausing one vCPU while
 * a snapshot pauses all); a vCPU runs when nobody holds it. A VM that is
 * stopping releases every paused vCPU so it can end.
 * Call from any thread but a vCPU's, while vm_run runs. 0 when every
 * living vCPU is paused; -1 with err after timeout_ms (the pause is then
 * released: a vCPU stuck in a device for that long). */
int vm_pause(struct vm *vm, unsigned timeout_ms, struct tvm_err *err);
void vm_resume(struct vm *vm);
/* Ask for a pause without waiting (any thread, a vCPU's included: a
 * device that saw what a checkpoint waits for). Every vCPU stops at its
 * next exit boundary until vm_pause()+vm_resume() on vm_run's thread
 * release it; vm_run's main hook is woken at once. */
void vm_request_pause(struct vm *vm);
/* Drop a vm_request_pause() that no vm_pause()+vm_resume() took up. */
void vm_pause_request_cancel(struct vm *vm);
/* True after vm_request_pause() until the next vm_resume() (the main hook
 * uses it to see that a device asked). */
bool vm_pause_requested(struct vm *vm);
/* fn(vm, arg), called on vm_run's thread while the vCPUs run, each time
 * its event loop wakes (at once after vm_request_pause()); it returns the
 * milliseconds after which it wants to be called again (-1: only when
 * something happens). Snapshots, checkpoints and the control socket's
 * work run from it (vm_pause, capture, vm_resume). NULL removes it. */
void vm_set_main_hook(struct vm *vm, int (*fn)(struct vm *, void *), void *arg);
/* The event loop vm_run waits in (vmm/evloop.h): the caller's, with its
 * own descriptors (the control socket) served while the VM runs; NULL:
 * vm_run makes one for itself. */
struct evloop;
void vm_set_loop(struct vm *vm, struct evloop *loop);

/* ---- devices owned by the VM ----
 * Every device with guest-visible state registers itself here: the VM
 * destroys it with the VM, and snapshots save and restore it by name
 * (vmm/snapshot.h) as a state record (vmm/vmstate.h) of its own version. */
struct vs_out;
struct vs_in;
struct vm_device_ops {
	uint16_t version;   /* of the state record save() writes */
	/* All vCPUs paused (or not started). */
	int (*save)(void *dev, struct vs_out *o, struct tvm_err *err);
	/* Before the vCPUs start: the record is framed (vs_check'ed) but its
	 * values are hostile; version <= ops->version. */
	int (*load)(void *dev, const struct vs_in *in, uint16_t version, struct tvm_err *err);
	void (*destroy)(void *dev); /* at vm_destroy; may be NULL */
	/* Optional (NULL: none), for a device holding bulk contents (a disk's
	 * changes over its master): snapshots keep them in their own disk
	 * sections (vmm/snapshot.h), an incremental snapshot only what changed
	 * since its parent, and a restore writes them back through bulk_load.
	 * Every call but bulk_commit with every vCPU paused (or not started). */
	uint64_t (*bulk_size)(void *dev); /* bytes of contents (a disk's size) */
	/* Periodic snapshots (vm_dirty_log_fetch): what changed since the last
	 * fetch joins the pending set. */
	void (*bulk_fetch)(void *dev);
	/* Hand put() every extent to save (byte offset and bytes; data that
	 * lives only until put returns): incremental, the pending set; full,
	 * everything the device holds. 0, or -1 with err (put's or its own). */
	int (*bulk_save)(void *dev, bool incremental, int (*put)(void *ctx, uint64_t off, const void *data, uint64_t len),
			 void *ctx, struct tvm_err *err);
	/* The pending set is in a snapshot on disk (vm_dirty_log_committed). */
	void (*bulk_commit)(void *dev);
	/* Restore, oldest snapshot first, before load(): [off, off + len) of
	 * the contents, data NULL for zeroes; off and len checked against
	 * bulk_size, the bytes hostile. */
	int (*bulk_load)(void *dev, uint64_t off, const void *data, uint64_t len, struct tvm_err *err);
};
#define TVM_MAX_DEVICES 32
#define TVM_DEVICE_NAME 32
/* name: unique in the VM, shorter than TVM_DEVICE_NAME. On failure the
 * device is destroyed (ops->destroy) and -1 returned. */
int vm_add_device(struct vm *vm, const char *name, const struct vm_device_ops *ops, void *dev, struct tvm_err *err);
int vm_device_count(const struct vm *vm);
/* Device i (in registration order): its name, ops and object. */
const char *vm_device_at(const struct vm *vm, int i, const struct vm_device_ops **ops, void **dev);

/* ---- interrupts ---- */
/* Set an ISA IRQ line (in-kernel PIC + IOAPIC) to `level`. */
void vm_irq_line(struct vm *vm, unsigned irq, int level);

#endif
