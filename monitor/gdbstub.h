/* monitor/gdbstub.h - `--gdb [ADDR:]PORT`: the GDB remote serial protocol
 * over TCP, for `run` and `replay` (README "Debugging with gdb").
 *
 * One debugger at a time; each VM of the run starts stopped until it
 * continues. All-stop: a breakpoint, a finished step or Ctrl-C stops every
 * vCPU (vm.h, "the debugger"); each vCPU is a thread (id = index + 1).
 * Everything runs on the main thread's event loop, never blocking it
 * longer than a send to a slow client (SEND_TIMEOUT_S). What the client
 * sends is hostile: bad checksums are NAKed, oversized or malformed
 * packets answered with an error or the client dropped; no request
 * reaches guest memory but through the page walk and the checked
 * accessors. */
#ifndef TVM_GDBSTUB_H
#define TVM_GDBSTUB_H

#include <stddef.h>
#include <stdint.h>

#include "../vmm/evloop.h"
#include "../vmm/vm.h"

#define GDB_PACKET_MAX 0x4000 /* PacketSize offered in qSupported */

struct gdbstub;
/* Listen on spec, "PORT" (127.0.0.1) or "ADDR:PORT" (IPv4); port 0 picks
 * one. Says where on stderr. Before the sandbox. */
struct gdbstub *gdbstub_open(const char *spec, struct evloop *loop, struct tvm_err *err);
void gdbstub_close(struct gdbstub *g);
/* A VM is about to run: the debugger owns its breakpoints and it starts
 * stopped. kernel: the loaded kernel's segments, for its addresses while
 * paging is still off (NULL: none, a restored VM). Before the sandbox. */
int gdbstub_attach(struct gdbstub *g, struct vm *vm, const struct boot_entry *kernel, struct tvm_err *err);
/* vm_run's main hook: report a stop; the wait in ms until it wants to be
 * called again (-1: at the next wake-up). */
int gdbstub_poll(struct gdbstub *g);
/* The VM ended with ev: gdb is told (exited or killed) and let go. */
void gdbstub_vm_gone(struct gdbstub *g, const struct tvm_event *ev);

/* The protocol on its own, for the fuzzer and unit tests: feed bytes as
 * they came from the client; replies go to out (appended, at most cap
 * bytes kept). No VM: every request that needs one gets an error. */
struct gdb_conn;
struct gdb_conn *gdb_conn_new(void);
void gdb_conn_free(struct gdb_conn *c);
size_t gdb_conn_feed(struct gdb_conn *c, const uint8_t *data, size_t len, uint8_t *out, size_t cap);

#endif
