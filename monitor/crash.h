/* monitor/crash.h - turning the event that ended a run into a diagnosis. */
#ifndef TVM_CRASH_H
#define TVM_CRASH_H

#include "../vmm/vm.h"

struct overlay;

struct report_snapshots;
struct crash_ctx {
	struct vm *vm;
	const char *kernel_path; /* booted kernel (its symbols name kernel RIPs) */
	const char *symbols_path;/* --kernel-symbols, when the kernel has none */
	const char *initrd_path;
	const char *cpio_path;
	const char *app_path;    /* trialos application, for its symbols */
	const char *app_file;    /* ...its absolute path (app.core NT_FILE), or NULL */
	const char *report_dir;  /* where reports go; NULL: none */
	struct overlay **disks;  /* the disks' overlays (entries may be NULL) */
	const char **disk_masters;
	int ndisks;
	/* --image (a Linux guest): the serial port carries the kernel's log,
	 * hvc0 the program's output; reports keep each tail apart. */
	bool linux_image;
	/* run --snapshot-every: writes the crash snapshot and says which files
	 * (monitor/snapshots.h snapshots_crash); NULL: none. */
	void (*crash_snapshot)(void *arg, struct report_snapshots *out);
	void *crash_snapshot_arg;
};

/* For an event that ends the run: when it is a crash, capture every vCPU and
 * the guest's memory, print a one-screen summary (cause, RIP with symbol,
 * disassembly, registers) and write the report directory; print the other
 * events' one-line reason. Returns the exit status of `trialvm run`. The VM
 * must be stopped (vm_run returned). */
int crash_handle_event(const struct tvm_event *ev, const struct crash_ctx *ctx);

/* A crash-style report of the running VM, without ending it (control
 * `report`, run --report-every): every vCPU paused at an exit boundary,
 * the machine captured as at a crash (report.json kind "live", the
 * summary naming `why`), the report written, the vCPUs resumed. The guest
 * is paused until the report is on disk; *pause_ms says how long. 0 with
 * the report's path in path[cap], or -1 with err (the VM runs on either
 * way). On vm_run's thread (its main hook or event loop). */
int crash_live_report(const struct crash_ctx *ctx, const char *why, char *path, size_t cap, double *pause_ms,
		      struct tvm_err *err);


#endif
