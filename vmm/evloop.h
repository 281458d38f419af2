/* vmm/evloop.h - the main thread's event loop.
 *
 * One epoll set; each watched file descriptor has a callback, called on
 * the loop's thread when the descriptor is readable (or hung up). vm_run
 * waits in it (vm_set_loop): the VM's eventfd (vCPUs: an event raised, a
 * thread ended, a pause asked for), the stop signals' signalfd, and what
 * the monitor adds (the control socket and its clients). One loop serves
 * every VM of a run (an --on-crash restart keeps the control clients).
 * Single-threaded: every call on the loop's own thread.
 */
#ifndef TVM_EVLOOP_H
#define TVM_EVLOOP_H

#include <stdint.h>

#include "vm.h"

#define EVLOOP_MAX_WATCHES 32

struct evloop;
/* events: EPOLLIN, EPOLLHUP, EPOLLERR bits as epoll reports them. */
typedef void (*evloop_fn)(void *arg, int fd, uint32_t events);

struct evloop *evloop_new(struct tvm_err *err);
void evloop_free(struct evloop *l);
/* Watch fd for input; -1 with err when it is already watched or the
 * table (EVLOOP_MAX_WATCHES) is full. */
int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *arg, struct tvm_err *err);
/* Stop watching fd (before closing it); a callback for it that was
 * pending in the current round is not called. Unknown fds: nothing. */
void evloop_del(struct evloop *l, int fd);
/* Wait up to timeout_ms (-1: without limit) and call the callbacks of
 * the descriptors that are ready. The number of callbacks called (0 on a
 * timeout or an interrupted wait), or -1 when epoll itself failed. */
int evloop_wait(struct evloop *l, int timeout_ms);

#endif
