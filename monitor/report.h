/* monitor/report.h - the crash report directory.
 *
 * DIR/ID/ with report.json, core.elf, memory.dmp, app.core (application
 * faults), console.log. ID sorts by time: 20261121T010203.123Z-PID-N.
 * Every file is written into DIR/.ID.partial/, flushed, and the directory
 * is renamed to DIR/ID only when all of it is on disk; a report that could
 * not be completed is removed, never left looking complete.
 */
#ifndef TVM_REPORT_H
#define TVM_REPORT_H

#include <stddef.h>

#include "../reporter/crash_state.h"
#include "disasm.h"

/* The snapshots of a crashed VM (run --snapshot-every): the crash-time
 * state, and the last periodic one before it ("just before the crash"). */
struct report_snapshots {
	bool have_crash, have_last;
	char crash_id[33], last_id[33];      /* hex */
	char crash_file[4096], last_file[4096];
	/* The event log segment that ends at the crash (since the last
	 * periodic snapshot, or the run's start). */
	bool have_log, log_exact;
	char log_file[4096];
	uint64_t log_records, log_bytes;
};

struct report_inputs {
	const struct crash_state *cs;
	const char *dir;                 /* parent directory (created if missing) */
	const char *kernel, *initrd, *cpio;
	const char *app;                 /* trialos application, or NULL */
	const struct disasm_insn *dis;   /* disassembly around RIP */
	int ndis;
	const char *dis_space;           /* "guest-virtual", "guest-physical" */
	uint64_t stack_rsp;
	const uint64_t *stack;           /* top stack words */
	int nstack;
	const char *rip_symbol;          /* "crash_here+0x17" or NULL */
	struct overlay *const *disks;    /* disk overlays (flushed first), may hold NULL */
	const char *const *disk_masters;
	int ndisks;
	const struct report_snapshots *snaps; /* NULL: none */
};

/* Write the report; on success its path is in out_path. */
int report_write(const struct report_inputs *in, char *out_path, size_t cap, struct tvm_err *err);

/* Remove DIR/.ID.partial directories (reports being written) whose
 * trialvm process is gone (a kill -9, a power loss), saying so on stderr
 * for each; those of running processes are left alone. The count. */
int report_clean_partials(const char *dir);

/* The event log segment a report.json names (snapshots.event_log.file),
 * into out; -1 + err when it names none or is not a report. */
int report_event_log(const char *report_json, char *out, size_t cap, struct tvm_err *err);

#define REPORT_SCHEMA "trialvm-report"
#define REPORT_VERSION 1

#endif
