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
 * reports include. */
#define CONSOLE_TAIL (64 * 1024)
int console_open(const char *log_path, bool quiet, struct tvm_err *err);
void console_put(const uint8_t *buf, size_t len);
void console_flush(void);
/* Copy the kept tail (oldest first) into buf; returns its length. */
size_t console_tail(uint8_t *buf, size_t max);
/* Close the log (flushed); -1 + err if the log could not be written fully. */
int console_close(struct tvm_err *err);
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

#endif
