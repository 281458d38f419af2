/* reporter/crash_state.h - everything captured at a crash, in a form the
 * dump and report writers consume without KVM: the monitor fills it (from
 * KVM ioctls made in vmm/), the reporter only reads it.
 *
 * All guest memory is reached through `mem` (read-only host mappings of the
 * RAM regions) with gmem_ptr(), so a writer can never read outside RAM.
 */
#ifndef TVM_CRASH_STATE_H
#define TVM_CRASH_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../devices/devices.h"
#include "../devices/hcall.h"
#include "../vmm/cpu_state.h"
#include "../vmm/vm.h"

/* Why the run ended, in the terms of the dumps. */
enum crash_kind {
	CRASH_APP_FAULT,      /* application fault: trialos's (app) or a Linux guest's (guest_core) */
	CRASH_PANIC,          /* guest kernel panic (pvpanic) */
	CRASH_BREAKPOINT,     /* --crash-on SYMBOL was hit */
	CRASH_TRIPLE_FAULT,
	CRASH_INTERNAL_ERROR, /* KVM internal error / emulation failure */
	CRASH_FAIL_ENTRY,
	CRASH_UNKNOWN_EXIT,
	CRASH_HANG,           /* --hang-timeout */
	CRASH_LIVE,           /* no crash: a report of the running VM (control `report`, --report-every) */
};

struct crash_state {
	enum crash_kind kind;
	char kind_name[32];       /* "app-fault", "panic", ... (report.json "kind") */
	char summary[256];        /* one sentence */
	int crashing_cpu;         /* index into cpu[] */
	int ncpus;
	struct cpu_state *cpu;    /* ncpus entries */
	struct guest_mem mem;     /* guest RAM (read-only use) */
	struct irqchip_state irqchip; /* PICs, IOAPIC, PIT */
	uint64_t time_unix_ns;    /* wall clock at the event */
	uint64_t uptime_ns;       /* since the VM started */
	/* The guest's own VMCOREINFO note text ("KEY=value\n"...), when found
	 * in guest memory; NULL otherwise. */
	const char *vmcoreinfo;
	size_t vmcoreinfo_len;
	/* CRASH_APP_FAULT: the fault record and mappings trialos reported. */
	const struct app_fault *app;
	/* ...and the application's file on this host (absolute path; app.core's
	 * NT_FILE names it), NULL when unknown. */
	const char *app_file;
	/* A Linux guest's crashed process: its core as the guest's kernel wrote
	 * it, from the core channel (app.core holds it as it is); NULL else. */
	const struct guest_core *guest_core;
	/* The crashing vCPU's state at the event is gone (KVM re-initialised
	 * it: AMD after a triple fault); cpu[crashing_cpu] then holds the last
	 * state trialvm saw (or zeros), and cpu_state_note says which and why. */
	bool cpu_state_lost;
	char cpu_state_note[320];
	/* Console tail (oldest first). */
	const uint8_t *console;
	size_t console_len;
	/* A Linux image's run: the tail of the kernel's log (its console, the
	 * serial port) and of the program's output (hvc0), apart; NULL else. */
	const uint8_t *kernel_log, *app_output;
	size_t kernel_log_len, app_output_len;
};

/* BugCheckCode written into memory.dmp for each crash kind (README). */
static inline uint32_t crash_bugcheck_code(enum crash_kind k)
{
	switch (k) {
	case CRASH_APP_FAULT: return 0x7e7a0001u;
	case CRASH_PANIC: return 0x7e7a0002u;
	case CRASH_BREAKPOINT: return 0x7e7a0003u;
	case CRASH_TRIPLE_FAULT: return 0x7e7a0004u;
	case CRASH_INTERNAL_ERROR: return 0x7e7a0005u;
	case CRASH_FAIL_ENTRY: return 0x7e7a0006u;
	case CRASH_UNKNOWN_EXIT: return 0x7e7a0007u;
	case CRASH_HANG: return 0x7e7a0008u;
	case CRASH_LIVE: return 0x7e7a0009u;
	}
	return 0x7e7a0000u;
}

#endif
