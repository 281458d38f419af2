/* devices/uart.c - 8250/16550A UART on COM1 (0x3f8, IRQ 4).
 *
 * Enough for Linux's 8250 driver (autoconfig with loopback and FIFO
 * detection, THRE and receive interrupts) and for earlyprintk=serial.
 * Output is instant: THR is always empty. Input comes from stdin when it is
 * a terminal or a pipe.
 */
#include "devices.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/sandbox.h"
#include "../vmm/util.h"
#include "../vmm/vmstate.h"

#define UART_IRQ 4
#define RX_SIZE 4096

enum { IER_RDI = 1, IER_THRI = 2 };
enum { LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40 };
enum { MCR_DTR = 1, MCR_RTS = 2, MCR_OUT1 = 4, MCR_OUT2 = 8, MCR_LOOP = 0x10 };
enum { LCR_DLAB = 0x80 };

/* One per VM, owned by it (vm_add_device). */
struct uart {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thri_pending;
	int irq_level;
	uint8_t rx[RX_SIZE];
	unsigned rx_head, rx_count;
};

/* The UART stdin feeds: the current VM's (NULL between VMs). */
static pthread_mutex_t input_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uart *input_uart;


static uint8_t iir_locked(struct uart *up)
{
	uint8_t fifo = (up->fcr & 1) ? 0xc0 : 0;
	if ((up->ier & IER_RDI) && up->rx_count)
		return fifo | 0x04;
	if ((up->ier & IER_THRI) && up->thri_pending)
		return fifo | 0x02;
	return fifo | 0x01;
}

static void update_irq_locked(struct uart *up)
{
	int level = !(iir_locked(up) & 1);
	if (level != up->irq_level) {
		up->irq_level = level;
		vm_irq_line(up->vm, UART_IRQ, level);
	}
}

static void rx_push_locked(struct uart *up, uint8_t b)
{
	if (up->rx_count == RX_SIZE)
		return;
	up->rx[(up->rx_head + up->rx_count) % RX_SIZE] = b;
	up->rx_count++;
}

static void uart_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct uart *up = dev;
	(void)vcpu;
	if (size != 1) { /* the 8250 has byte registers only */
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	uint8_t out = 0;
	bool have_out = false;
	pthread_mutex_lock(&up->lock);
	bool dlab = up->lcr & LCR_DLAB;
	if (is_write) {
		uint8_t v = data[0];
		switch (off) {
		case 0:
			if (dlab) {
				up->dll = v;
			} else if (up->mcr & MCR_LOOP) {
				rx_push_locked(up, v);
				up->thri_pending = true;
			} else {
				out = v;
				have_out = true;
				up->thri_pending = true;
			}
			break;
		case 1:
			if (dlab) {
				up->dlm = v;
			} else {
				/* Enabling THRI while THR is empty raises it at once. */
				if ((v & IER_THRI) && !(up->ier & IER_THRI))
					up->thri_pending = true;
				up->ier = v & 0x0f;
			}
			break;
		case 2:
			up->fcr = v & 0xc9;
			if (v & 2) { /* clear the receive FIFO */
				up->rx_count = 0;
				up->rx_head = 0;
			}
			break;
		case 3: up->lcr = v; break;
		case 4: up->mcr = v & 0x1f; break;
		case 5: break; /* LSR: writes ignored */
		case 6: break; /* MSR: read only */
		case 7: up->scr = v; break;
		}
	} else {
		uint8_t v = 0;
		switch (off) {
		case 0:
			if (dlab) {
				v = up->dll;
			} else if (up->rx_count) {
				v = up->rx[up->rx_head];
				up->rx_head = (up->rx_head + 1) % RX_SIZE;
				up->rx_count--;
			}
			break;
		case 1: v = dlab ? up->dlm : up->ier; break;
		case 2:
			v = iir_locked(up);
			if ((v & 0x0f) == 0x02)
				up->thri_pending = false; /* reading IIR acknowledges THRE */
			break;
		case 3: v = up->lcr; break;
		case 4: v = up->mcr; break;
		case 5: v = LSR_THRE | LSR_TEMT | (up->rx_count ? LSR_DR : 0); break;
		case 6:
			if (up->mcr & MCR_LOOP)
				v = (uint8_t)(((up->mcr & MCR_RTS) ? 0x10 : 0) | ((up->mcr & MCR_DTR) ? 0x20 : 0) |
					      ((up->mcr & MCR_OUT1) ? 0x40 : 0) | ((up->mcr & MCR_OUT2) ? 0x80 : 0));
			else
				v = 0xb0; /* DCD, DSR, CTS: a terminal is connected */
			break;
		case 7: v = up->scr; break;
		}
		data[0] = v;
	}
	update_irq_locked(up);
	pthread_mutex_unlock(&up->lock);
	if (have_out)
		console_put(CONSOLE_SERIAL, &out, 1);
}

/* ---- state (vm_device_ops) ---- */

enum { UT_REGS = 1, UT_THRI = 2, UT_IRQ = 3, UT_RX = 4 };

static int uart_save(void *dev, struct vs_out *o, struct tvm_err *err)
{
	struct uart *up = dev;
	pthread_mutex_lock(&up->lock);
	uint8_t regs[7] = { up->ier, up->lcr, up->mcr, up->scr, up->fcr, up->dll, up->dlm };
	vs_put(o, UT_REGS, regs, sizeof(regs));
	vs_put_u8(o, UT_THRI, up->thri_pending);
	vs_put_u8(o, UT_IRQ, (uint8_t)up->irq_level);
	uint8_t rx[RX_SIZE];
	for (unsigned i = 0; i < up->rx_count; i++)
		rx[i] = up->rx[(up->rx_head + i) % RX_SIZE];
	vs_put(o, UT_RX, rx, up->rx_count);
	pthread_mutex_unlock(&up->lock);
	return vs_out_error(o, err);
}

static int uart_load(void *dev, const struct vs_in *in, uint16_t version, struct tvm_err *err)
{
	struct uart *up = dev;
	(void)version;
	uint8_t regs[7], thri, irq;
	const void *rx;
	uint32_t rx_len = 0;
	if (vs_get(in, UT_REGS, regs, sizeof(regs), "its registers", err) < 0 ||
	    vs_get_u8(in, UT_THRI, &thri, "THRE pending", err) < 0 || vs_get_u8(in, UT_IRQ, &irq, "its IRQ line", err) < 0)
		return -1;
	if (!vs_find(in, UT_RX, &rx, &rx_len))
		rx_len = 0;
	if (rx_len > RX_SIZE)
		return tvm_seterr(err, "the UART's receive buffer holds %u bytes, more than its %u", rx_len, RX_SIZE);
	if (thri > 1 || irq > 1)
		return tvm_seterr(err, "the UART's state has flags other than 0 or 1");
	pthread_mutex_lock(&up->lock);
	up->ier = regs[0] & 0x0f;
	up->lcr = regs[1];
	up->mcr = regs[2] & 0x1f;
	up->scr = regs[3];
	up->fcr = regs[4] & 0xc9;
	up->dll = regs[5];
	up->dlm = regs[6];
	up->thri_pending = thri;
	if (rx_len)
		memcpy(up->rx, rx, rx_len);
	up->rx_head = 0;
	up->rx_count = rx_len;
	/* KVM's irqchip state holds what the line delivered; the line itself
	 * is re-asserted so that lowering it later works as before. */
	up->irq_level = 0;
	update_irq_locked(up);
	pthread_mutex_unlock(&up->lock);
	return 0;
}

static void uart_destroy(void *dev)
{
	struct uart *up = dev;
	pthread_mutex_lock(&input_lock);
	if (input_uart == up)
		input_uart = NULL;
	pthread_mutex_unlock(&input_lock);
	pthread_mutex_destroy(&up->lock);
	free(up);
}

static const struct vm_device_ops uart_ops = { .version = 1, .save = uart_save, .load = uart_load,
					       .destroy = uart_destroy };

int uart_init(struct vm *vm, struct tvm_err *err)
{
	struct uart *up = calloc(1, sizeof(*up));
	if (!up)
		return tvm_seterr(err, "out of memory");
	pthread_mutex_init(&up->lock, NULL);
	up->vm = vm;
	up->lcr = 0x03;
	up->mcr = MCR_OUT2;
	if (vm_add_device(vm, "uart-com1", &uart_ops, up, err) < 0)
		return -1;
	if (bus_register(vm, BUS_PIO, TVM_PORT_COM1, 8, uart_io, up, "uart-com1", err) < 0)
		return -1;
	pthread_mutex_lock(&input_lock);
	input_uart = up;
	pthread_mutex_unlock(&input_lock);
	return 0;
}

static void *stdin_thread(void *arg)
{
	(void)arg;
	struct tvm_err err;
	if (sandbox_enter(SANDBOX_STDIN, &err) < 0) {
		tvm_log("error: %s; the guest gets no input", err.msg);
		return NULL;
	}
	uint8_t buf[256];
	for (;;) {
		ssize_t n = read(0, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NULL;
		for (ssize_t i = 0; i < n;) {
			pthread_mutex_lock(&input_lock);
			struct uart *up = input_uart;
			if (up) {
				pthread_mutex_lock(&up->lock);
				while (i < n && up->rx_count < RX_SIZE)
					rx_push_locked(up, buf[i++]);
				update_irq_locked(up);
				pthread_mutex_unlock(&up->lock);
			}
			pthread_mutex_unlock(&input_lock);
			if (i < n)
				usleep(1000); /* the guest has not read its input yet */
		}
	}
}

void uart_start_input(void)
{
	struct stat st;
	if (fstat(0, &st) < 0)
		return;
	if (!isatty(0) && !S_ISFIFO(st.st_mode))
		return;
	start_thread_nosignals(NULL, stdin_thread, NULL, true);
}
