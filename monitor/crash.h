/* monitor/crash.h - turning the event that ended a run into a diagnosis. */
#ifndef TVM_CRASH_H
#define TVM_CRASH_H

#include "../vmm/vm.h"

struct crash_ctx {
	struct vm *vm;
	const char *kernel_path; /* for kernel symbols (may lack them) */
	const char *app_path;    /* trialos application, for its symbols */
};

/* Print the diagnosis of `ev` on stderr (nothing for a normal power-off)
 * and return the exit status `trialvm run` ends with. */
int crash_handle_event(const struct tvm_event *ev, const struct crash_ctx *ctx);

/* Linux name of a signal ("SIGSEGV"), or NULL. */
const char *signal_name(unsigned signo);

#endif
