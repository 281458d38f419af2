/* vmm/stopsig.h - SIGINT, SIGTERM and SIGHUP, taken through a signalfd.
 *
 * No signal handler runs for them: stop_signals_init() blocks them (every
 * thread created afterwards inherits the mask) and the main loop reads
 * them (vm_run polls while the VM runs), so stopping a VM never touches
 * thread handles or locks from a signal handler.
 */
#ifndef TVM_STOPSIG_H
#define TVM_STOPSIG_H

#include "vm.h"

/* Block the stop signals in the calling thread and open the signalfd.
 * Call before any other thread exists. 0, or -1 with *err. */
int stop_signals_init(struct tvm_err *err);

/* The first stop signal received so far (read without waiting), or 0:
 * once one arrived, every later call returns it. 0 before init. */
int stop_signal_pending(void);

/* The signalfd, for an event loop to wait on (-1 before init). */
int stop_signal_fd(void);

/* Wait until a stop signal arrives (returns at once if one did). */
int stop_signal_wait(void);

#endif
