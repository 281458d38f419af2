/* vmm/sandbox.h - the seccomp sandbox of a running VMM.
 *
 * Every thread of `trialvm run` belongs to one class, and once its setup
 * is done it installs that class's seccomp-bpf allowlist; any system call
 * outside it kills the whole process (SIGSYS, exit status 159 from a
 * shell). Filters are per thread, inherited by threads created later, and
 * stack (the strictest verdict wins), so the order is:
 *
 *   stdin thread   installs STDIN as it starts (it exists before MAIN's);
 *   main thread    installs MAIN after setup, before the first vm_run
 *                  (the broad one: the event loop vm_run waits in, serving
 *                  the control socket; it captures crashes, writes reports
 *                  and snapshots, and may build a new VM for --on-crash
 *                  restart); epoll is allowed to it alone;
 *   vCPU threads   inherit MAIN and add VCPU as they start, before KVM_RUN;
 *   hang watcher   inherits MAIN and adds WATCH as it starts;
 *   I/O thread     installs IO as it starts (before MAIN, with the disks);
 *   console writer installs CONSOLE as it starts (before MAIN).
 *
 * The allowlists, with who needs each call, are the tables in sandbox.c.
 */
#ifndef TVM_SANDBOX_H
#define TVM_SANDBOX_H

#include <stdbool.h>

#include "vm.h"

enum sandbox_class {
	SANDBOX_MAIN,   /* main thread: event loop, control socket, crash capture, reports, restart */
	SANDBOX_VCPU,   /* a vCPU thread: KVM_RUN and device emulation */
	SANDBOX_STDIN,  /* the thread feeding stdin to the UART */
	SANDBOX_WATCH,  /* the hang watcher (--hang-timeout) */
	SANDBOX_IO,     /* the I/O thread (vmm/iothread.h) */
	SANDBOX_CONSOLE, /* the console writer (devices/console.c: guest output to stdout) */
	SANDBOX_NCLASSES
};

/* Set by --no-sandbox before any thread starts: sandbox_enter() then
 * installs nothing and the first call prints a warning on stderr. */
extern bool sandbox_disabled;

/* Install class c's filter on the calling thread. Idempotent per thread
 * and class (a restart does not stack MAIN again). 0 on success (or when
 * the sandbox is disabled); -1 with `err` filled (err may be NULL).
 *
 * Test build only (vmm/sandbox.c compiled with -DTVM_TEST_HOOKS into
 * build/tests/trialvm-hooks; never in build/trialvm): with
 * TRIALVM_TEST_FORBIDDEN_SYSCALL=main|vcpu|stdin|watch|io|console in the
 * environment, the thread of that class then attempts socket(2), which no
 * class allows: the sandbox must kill the process. */
int sandbox_enter(enum sandbox_class c, struct tvm_err *err);

/* The class's name ("main", "vcpu", "stdin", "watch", "io", "console"). */
const char *sandbox_class_name(enum sandbox_class c);

#endif
