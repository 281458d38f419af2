/* vmm/iothread.h - one thread for the file-system work a guest can ask for.
 *
 * The vCPU threads run the code most exposed to the guest, so their
 * sandbox class may not open, rename, unlink or truncate files. What a
 * guest request needs of that kind (the virtio-blk overlay map flush:
 * write a new map, fsync, rename it over the old one) runs on this thread,
 * which has its own class (SANDBOX_IO) and runs only trialvm's own code:
 * the vCPU hands it a function and waits for the result.
 */
#ifndef TVM_IOTHREAD_H
#define TVM_IOTHREAD_H

#include "vm.h"

/* Start the thread (once per process; later calls do nothing). Call it
 * before the main thread enters its sandbox. 0, or -1 with *err. */
int iothread_start(struct tvm_err *err);

/* Run fn(arg) on the I/O thread and return its result; one call at a time
 * (callers queue). Without a started thread (unit tests, tools), fn runs on
 * the calling thread. */
int iothread_call(int (*fn)(void *), void *arg);

/* True when the calling thread is the I/O thread. */
bool iothread_is_current(void);

#endif
