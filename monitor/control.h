/* monitor/control.h - `run --control SOCKET`: a UNIX socket (mode 0600)
 * speaking JSON lines, one request object per line, one reply line each
 * (README "Control socket"): status, pause, resume, snapshot, quit. Up to
 * CONTROL_MAX_CLIENTS clients at once; a malformed or oversized request
 * gets an error reply (an oversized one also closes that connection), and
 * the VM is never affected by one. Served from vm_run's main hook (every
 * 50 ms at most, and at once when the VM wakes it). */
#ifndef TVM_MONITOR_CONTROL_H
#define TVM_MONITOR_CONTROL_H

#include <stddef.h>

#include "../vmm/snapfile.h"
#include "../vmm/vm.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_MAX_REQUEST 4096

struct control;
/* Create the socket at PATH (it must not exist; removed at close), before
 * the sandbox: socket, bind and listen are not allowed after it. tmpl (the
 * images' hashes) and origin are what `snapshot` writes into its header
 * and origin section; they must outlive the control socket. */
struct control *control_open(const char *path, const struct snap_header *tmpl, const void *origin, size_t origin_len,
			     struct tvm_err *err);
/* Serve what is waiting, without blocking, for the running vm. */
void control_serve(struct control *c, struct vm *vm);
/* The VM ended: a pause a client held is gone with it. */
void control_vm_gone(struct control *c);
void control_close(struct control *c);

/* `trialvm ctl SOCKET COMMAND [ARG]`: the client. The exit status. */
int control_client_main(int argc, char **argv);

#endif
