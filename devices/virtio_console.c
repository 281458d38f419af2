/* devices/virtio_console.c - virtio console (virtio 1.x "Console Device",
 * device ID 3), a single port without VIRTIO_CONSOLE_F_MULTIPORT:
 * queue 0 (receiveq, host -> guest) and queue 1 (transmitq, guest -> host).
 * What the guest transmits goes to console_put(), the same sink as the
 * UART. There is no input: receive buffers stay with the device unused.
 * VIRTIO_CONSOLE_F_EMERG_WRITE is offered: a write to emerg_wr prints one
 * character, usable before the queues are set up. */
#include "devices.h"

#include <string.h>

#include "../vmm/util.h"
#include "virtio.h"

#define CONSOLE_F_EMERG_WRITE 2
#define RXQ 0
#define TXQ 1
/* One chain transmits at most this much; the rest is dropped (logged): a
 * guest cannot hold the device lock for gigabytes. */
#define TX_MAX_CHAIN (1u << 20)
#define TX_CHUNK 4096u

/* struct virtio_console_config { u16 cols, rows; u32 max_nr_ports, emerg_wr; } */
#define CFG_SIZE 12
#define CFG_EMERG_WR 8

static struct ratelimit tx_rl = RATELIMIT_INIT(5, 1000);

static void console_config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	(void)dev;
	(void)off;
	memset(buf, 0, len); /* cols/rows 0 (no VIRTIO_CONSOLE_F_SIZE), no ports */
}

static void console_config_write(void *dev, uint32_t off, const void *buf, uint32_t len)
{
	(void)dev;
	if (off == CFG_EMERG_WR && len >= 1) {
		uint8_t c = *(const uint8_t *)buf;
		console_put(CONSOLE_HVC0, &c, 1);
	}
}

/* One transmit buffer: its bytes (at most TX_MAX_CHAIN) to the console. */
static int64_t console_serve(void *ctx, struct virtio_mmio *t, struct virtq_elem *e)
{
	(void)ctx;
	uint64_t want = e->out_len < TX_MAX_CHAIN ? e->out_len : TX_MAX_CHAIN;
	if (want < e->out_len)
		tvm_log_limited(&tx_rl, "virtio-console: %llu-byte transmit buffer cut to %u bytes",
				(unsigned long long)e->out_len, TX_MAX_CHAIN);
	uint8_t buf[TX_CHUNK];
	for (uint64_t done = 0; done < want;) {
		uint64_t n = want - done < TX_CHUNK ? want - done : TX_CHUNK;
		uint64_t r = virtq_read(e, &t->mem, done, buf, n);
		console_put(CONSOLE_HVC0, buf, r);
		done += r;
		if (r < n)
			break;
	}
	return 0;
}

static void console_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
	(void)dev;
	struct virtq_elem e;
	if (q == TXQ) /* receive buffers are kept: there is no input */
		virtio_serve(t, TXQ, &e, console_serve, NULL);
}

const struct virtio_dev_ops virtio_console_ops = {
	.name = "virtio-console",
	.device_id = 3,
	.features = 1ull << CONSOLE_F_EMERG_WRITE,
	.num_queues = 2,
	.queue_max = VIRTQ_MAX_SIZE,
	.config_size = CFG_SIZE,
	.config_read = console_config_read,
	.config_write = console_config_write,
	.notify = console_notify,
};

int virtio_console_init(struct vm *vm, struct tvm_err *err)
{
	return virtio_mmio_create(vm, virtio_mmio_count(), &virtio_console_ops, NULL, NULL, err);
}
