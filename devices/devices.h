/* devices/devices.h - the devices trialvm emulates, and the console sink.
 * Devices reach the VM only through vmm/ accessors: bus_register(),
 * gpa_ptr()/gpa_read()/gpa_write(), vm_irq_line() and vm_raise(). */
#ifndef TVM_DEVICES_H
#define TVM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../vmm/vm.h"

/* ---- console: where guest console output goes ----
 * Every byte goes to stdout (unless quiet), to the --console-log file when
 * one is open, and into a ring of the last CONSOLE_TAIL bytes that crash
 * reports include; each device's bytes also into a ring of their own (a
 * Linux guest's kernel log is on the serial port, its program's output on
 * hvc0). */
#define CONSOLE_TAIL (64 * 1024)
enum console_source { CONSOLE_SERIAL, CONSOLE_HVC0, CONSOLE_NSOURCES };
int console_open(const char *log_path, bool quiet, struct tvm_err *err);
void console_put(enum console_source src, const uint8_t *buf, size_t len);
void console_flush(void);
/* Copy the kept tail (oldest first) into buf; returns its length. */
size_t console_tail(uint8_t *buf, size_t max);
/* The same for what one device wrote. */
size_t console_source_tail(enum console_source src, uint8_t *buf, size_t max);
/* Close the log (flushed); -1 + err if the log could not be written fully. */
int console_close(struct tvm_err *err);
/* Call fn(arg) once, on the thread that wrote it, as soon as the console
 * output contains `needle` (1 to CONSOLE_WATCH_MAX bytes, matched across
 * writes; a '\r' in the output is skipped unless the needle holds one, so
 * "ready\n" matches a Linux terminal's "ready\r\n"): how `snapshot
 * checkpoint --at-console` stops at the app's "ready" line. One watch at a
 * time; -1 for an empty or long needle. */
#define CONSOLE_WATCH_MAX 256
int console_watch(const char *needle, void (*fn)(void *), void *arg);
void console_unwatch(void);
/* True once the guest wrote anything. */
bool console_started(void);

/* ---- 8250 UART on COM1 (0x3f8, IRQ 4) ---- */
int uart_init(struct vm *vm, struct tvm_err *err);
/* Start feeding stdin to the UART when stdin is a terminal or a pipe. */
void uart_start_input(void);

/* ---- system ports: power-off (0x501), reset (0xcf9, i8042 0xfe),
 *      pvpanic (0x505), POST diagnostics (0x80) ---- */
int sysdev_init(struct vm *vm, struct tvm_err *err);

/* ---- the trialvm hypercall port (0x510): clock, random, app faults ---- */
int hcall_init(struct vm *vm, struct tvm_err *err);

/* ---- entropy: every random byte given to the guest comes from here ---- */
void entropy_fill(void *buf, size_t len);

/* ---- virtio devices on the virtio-mmio transport (devices/virtio.h) ----
 * Each takes the next free slot (virtio_mmio_count()); register in the
 * order trialvm_abi.h gives: the disks, then the console, then rng. */
/* virtio-console (ID 3): guest output to console_put(); no input. */
int virtio_console_init(struct vm *vm, struct tvm_err *err);
/* virtio-rng (ID 4): random bytes from entropy_fill(). */
int virtio_rng_init(struct vm *vm, struct tvm_err *err);
/* The core channel (devices/core_channel.c): a second virtio-console
 * device over which a Linux image's /init sends a crashed process's core;
 * a whole one raises TVM_EV_GUEST_CORE with a struct guest_core. */
#define CORE_CHANNEL_MAX (256ull << 20)
struct guest_core {
	uint32_t signo, pid;
	uint64_t len;
	char comm[16];       /* NUL-terminated, hostile text */
	const uint8_t *data; /* len bytes, the device's, valid until vm_destroy */
};
int core_channel_init(struct vm *vm, struct tvm_err *err);
/* The frame parser (exported for tests): feed it the guest's bytes in any
 * pieces; buf holds cap bytes (a frame's core at most cap). 1 when this
 * call completed the frame (info valid, info.data = buf; bytes after it in
 * the same call break the stream, st says so), 0 when more is needed, -1
 * when the stream is broken (*why set by the call that broke it: a bad
 * magic, a length of 0 or over cap, a signal outside 1-64, bytes after the
 * core; everything after is ignored). */
#define CORE_FRAME_HDR 40u
enum { CORE_FRAME_RECEIVING, CORE_FRAME_DONE, CORE_FRAME_BROKEN };
struct core_frame {
	uint8_t hdr[CORE_FRAME_HDR];
	uint64_t got, cap;
	uint8_t *buf;
	int st;
	struct guest_core info;
};
int core_frame_feed(struct core_frame *f, const uint8_t *p, uint64_t n, const char **why);

/* ---- virtio-blk disks (devices/virtio_blk.c, devices/overlay.h) ----
 * --disk FILE[,ro][,overlay=PATH]. FILE (the master image) is opened
 * read-only and never written; what the guest writes goes to a
 * copy-on-write overlay (devices/overlay.h). */
struct disk_spec {
	const char *path;    /* the master image */
	bool ro;             /* ",ro": the guest gets a read-only disk */
	const char *overlay; /* ",overlay=PATH", or NULL */
	char *storage;       /* owned: the strings above point into it */
};
/* Parse FILE[,ro][,overlay=PATH] (FILE non-empty, options at most once,
 * PATH non-empty). -1 + err (a usage error: exit TVM_EXIT_USAGE) otherwise.
 * Release with disk_spec_free(). */
int disk_spec_parse(const char *arg, struct disk_spec *out, struct tvm_err *err);
void disk_spec_free(struct disk_spec *d);

enum disk_mode {
	/* A fresh overlay every run, deleted at exit (kept after a crash).
	 * With overlay=PATH it is created at PATH, which must not exist;
	 * else in a new directory $TMPDIR/trialvm-disk-XXXXXX (TMPDIR unset:
	 * /tmp) as BASENAME.overlay. */
	DISK_DISCARD,
	/* The overlay survives runs: opened if it exists, else created;
	 * PATH defaults to ./BASENAME.overlay. */
	DISK_PERSIST,
};
struct virtio_blk;
/* Open the disk and register a virtio-blk device in the next free
 * virtio-mmio slot (virtio_mmio_count()). ",ro" without overlay: the
 * master alone, read-only; ",ro,overlay=PATH": an existing overlay seen
 * read-only (mode ignored in both). Errors (bad image, bad/foreign overlay,
 * no free slot) -> -1 + err naming the file: exit TVM_EXIT_ERROR. */
int virtio_blk_add(struct vm *vm, const struct disk_spec *d, enum disk_mode mode, struct virtio_blk **out,
		   struct tvm_err *err);
/* At exit, after every vCPU stopped. Saves the overlay (flush: data
 * fdatasync'ed, map replaced atomically), or in DISK_DISCARD mode with
 * keep=false deletes it. keep=true (the run crashed) keeps a discard
 * overlay. *kept_path (may be NULL) receives the overlay's path when it
 * was kept (persist, or keep), else NULL; it stays valid until exit.
 * Prints nothing. -1 + err if the overlay could not be saved. Later
 * requests from the guest fail with IOERR; calling it twice is a no-op. */
int virtio_blk_finish(struct virtio_blk *dev, bool keep, const char **kept_path, struct tvm_err *err);
/* The device's overlay (NULL after finish): for crash reports, which list
 * its changed clusters (overlay_next_changed). */
struct overlay *virtio_blk_overlay(struct virtio_blk *dev);

/* ---- `trialvm disk ...` (devices/disk_cli.c): argv[0] is "disk".
 * Returns the exit status: 0, TVM_EXIT_ERROR or TVM_EXIT_USAGE. */
int disk_cli_main(int argc, char **argv);

#endif
