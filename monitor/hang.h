/* monitor/hang.h - hang detection (--hang-timeout). */
#ifndef TVM_HANG_H
#define TVM_HANG_H

#include "../vmm/vm.h"

/* Watch a running VM from a thread of its own: a vCPU that is runnable, takes
 * no exits and whose RIP samples stay in one 4 KiB region for timeout_ms is
 * hung; the watcher then raises TVM_EV_HANG (data[0] = the vCPU) with the
 * samples in the detail. hang_watch_stop() ends and joins the thread. */
struct hang_watch;
struct hang_watch *hang_watch_start(struct vm *vm, unsigned timeout_ms);
void hang_watch_stop(struct hang_watch *hw);
/* End and join the watcher thread without freeing it (idempotent; then
 * hang_watch_stop only frees): the vm_set_stop_hook of a VM it watches, so
 * that it is gone before the vCPU threads are joined. */
void hang_watch_halt(void *hw);

#endif
