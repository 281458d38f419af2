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
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/sandbox.h"
#include "../vmm/util.h"

#define UART_IRQ 4
#define RX_SIZE 4096

enum { IER_RDI = 1, IER_THRI = 2 };
enum { LSR_DR = 0x01, LSR_THRE = 0x20, LSR_TEMT = 0x40 };
enum { MCR_DTR = 1, MCR_RTS = 2, MCR_OUT1 = 4, MCR_OUT2 = 8, MCR_LOOP = 0x10 };
enum { LCR_DLAB = 0x80 };

static struct uart {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thri_pending;
	int irq_level;
	uint8_t rx[RX_SIZE];
	unsigned rx_head, rx_count;
} u = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint8_t iir_locked(void)
{
	uint8_t fifo = (u.fcr & 1) ? 0xc0 : 0;
	if ((u.ier & IER_RDI) && u.rx_count)
		return fifo | 0x04;
	if ((u.ier & IER_THRI) && u.thri_pending)
		return fifo | 0x02;
	return fifo | 0x01;
}

static void update_irq_locked(void)
{
	int level = !(iir_locked() & 1);
	if (level != u.irq_level) {
		u.irq_level = level;
		vm_irq_line(u.vm, UART_IRQ, level);
	}
}

static void rx_push_locked(uint8_t b)
{
	if (u.rx_count == RX_SIZE)
		return;
	u.rx[(u.rx_head + u.rx_count) % RX_SIZE] = b;
	u.rx_count++;
}

static void uart_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	(void)vcpu;
	if (size != 1) { /* the 8250 has byte registers only */
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	uint8_t out = 0;
	bool have_out = false;
	pthread_mutex_lock(&u.lock);
	bool dlab = u.lcr & LCR_DLAB;
	if (is_write) {
		uint8_t v = data[0];
		switch (off) {
		case 0:
			if (dlab) {
				u.dll = v;
			} else if (u.mcr & MCR_LOOP) {
				rx_push_locked(v);
				u.thri_pending = true;
			} else {
				out = v;
				have_out = true;
				u.thri_pending = true;
			}
			break;
		case 1:
			if (dlab) {
				u.dlm = v;
			} else {
				/* Enabling THRI while THR is empty raises it at once. */
				if ((v & IER_THRI) && !(u.ier & IER_THRI))
					u.thri_pending = true;
				u.ier = v & 0x0f;
			}
			break;
		case 2:
			u.fcr = v & 0xc9;
			if (v & 2) { /* clear the receive FIFO */
				u.rx_count = 0;
				u.rx_head = 0;
			}
			break;
		case 3: u.lcr = v; break;
		case 4: u.mcr = v & 0x1f; break;
		case 5: break; /* LSR: writes ignored */
		case 6: break; /* MSR: read only */
		case 7: u.scr = v; break;
		}
	} else {
		uint8_t v = 0;
		switch (off) {
		case 0:
			if (dlab) {
				v = u.dll;
			} else if (u.rx_count) {
				v = u.rx[u.rx_head];
				u.rx_head = (u.rx_head + 1) % RX_SIZE;
				u.rx_count--;
			}
			break;
		case 1: v = dlab ? u.dlm : u.ier; break;
		case 2:
			v = iir_locked();
			if ((v & 0x0f) == 0x02)
				u.thri_pending = false; /* reading IIR acknowledges THRE */
			break;
		case 3: v = u.lcr; break;
		case 4: v = u.mcr; break;
		case 5: v = LSR_THRE | LSR_TEMT | (u.rx_count ? LSR_DR : 0); break;
		case 6:
			if (u.mcr & MCR_LOOP)
				v = (uint8_t)(((u.mcr & MCR_RTS) ? 0x10 : 0) | ((u.mcr & MCR_DTR) ? 0x20 : 0) |
					      ((u.mcr & MCR_OUT1) ? 0x40 : 0) | ((u.mcr & MCR_OUT2) ? 0x80 : 0));
			else
				v = 0xb0; /* DCD, DSR, CTS: a terminal is connected */
			break;
		case 7: v = u.scr; break;
		}
		data[0] = v;
	}
	update_irq_locked();
	pthread_mutex_unlock(&u.lock);
	if (have_out)
		console_put(&out, 1);
}

int uart_init(struct vm *vm, struct tvm_err *err)
{
	pthread_mutex_lock(&u.lock);
	u.vm = vm;
	u.ier = u.scr = u.fcr = u.dll = u.dlm = 0;
	u.thri_pending = false;
	u.irq_level = 0;
	u.lcr = 0x03;
	u.mcr = MCR_OUT2;
	pthread_mutex_unlock(&u.lock);
	return bus_register(vm, BUS_PIO, TVM_PORT_COM1, 8, uart_io, &u, "uart-com1", err);
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
			pthread_mutex_lock(&u.lock);
			while (i < n && u.rx_count < RX_SIZE)
				rx_push_locked(buf[i++]);
			update_irq_locked();
			pthread_mutex_unlock(&u.lock);
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
