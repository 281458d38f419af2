/* monitor/control.h - `run --control SOCKET`: a UNIX socket (mode 0600)
 * speaking JSON lines, one request object per line, one reply line each
 * (README "Control socket"): status, pause, resume, snapshot, report,
 * quit. Up to CONTROL_MAX_CLIENTS clients at once; a malformed or
 * oversized request gets an error reply (an oversized one also closes
 * that connection), and the VM is never affected by one. Served by the
 * main thread's event loop (vmm/evloop.h), in which vm_run waits. */
#ifndef TVM_MONITOR_CONTROL_H
#define TVM_MONITOR_CONTROL_H

#include <stddef.h>

#include "../vmm/snapfile.h"
#include "../vmm/vm.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_MAX_REQUEST 4096

struct control;
struct crash_ctx;
struct evloop;
/* Create the socket at PATH (it must not exist; removed at close), before
 * the sandbox: socket, bind and listen are not allowed after it. tmpl (the
 * images' hashes) and origin are what `snapshot` writes into its header
 * and origin section; they must outlive the control socket. Its
 * connections are served by `loop`. */
struct control *control_open(const char *path, const struct snap_header *tmpl, const void *origin, size_t origin_len,
			     struct evloop *loop, struct tvm_err *err);
/* The VM that requests act on from now, and what a `report` needs (both
 * must live until control_vm_gone). */
void control_attach(struct control *c, struct vm *vm, const struct crash_ctx *ctx);
/* The VM ended: a pause a client held is gone with it. */
void control_vm_gone(struct control *c);
void control_close(struct control *c);

/* `trialvm ctl SOCKET COMMAND [ARG]`: the client. The exit status. */
int control_client_main(int argc, char **argv);

#endif
