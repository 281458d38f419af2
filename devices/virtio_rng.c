/* devices/virtio_rng.c - virtio entropy device (virtio 1.x "Entropy
 * Device", device ID 4): one request queue; the device fills each chain's
 * writable buffers with random bytes from entropy_fill(). */
#include "devices.h"

#include "virtio.h"

/* At most this many bytes per request; the driver asks again for more. */
#define RNG_MAX_REQUEST (64u * 1024)
#define RNG_CHUNK 4096u

static void rng_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
	(void)dev;
	if (q != 0)
		return;
	struct virtq_elem e;
	bool pushed = false;
	/* At most one queue's worth per notification: every buffer the driver
	 * adds later comes with a notification of its own (we never suppress
	 * them), so nothing is left behind, and a driver refilling the ring
	 * from another vCPU cannot keep us here. */
	for (unsigned n = 0; n < t->q[0].size; n++) {
		if (virtio_pop(t, 0, &e) <= 0)
			break;
		uint64_t want = e.in_len < RNG_MAX_REQUEST ? e.in_len : RNG_MAX_REQUEST;
		uint64_t done = 0;
		uint8_t buf[RNG_CHUNK];
		while (done < want) {
			uint64_t n2 = want - done < RNG_CHUNK ? want - done : RNG_CHUNK;
			entropy_fill(buf, n2);
			uint64_t w = virtq_write(&e, &t->mem, done, buf, n2);
			done += w;
			if (w < n2)
				break;
		}
		virtio_push(t, 0, e.head, (uint32_t)done);
		pushed = true;
	}
	if (pushed)
		virtio_interrupt(t);
}

const struct virtio_dev_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = 4,
	.features = 0,
	.num_queues = 1,
	.queue_max = VIRTQ_MAX_SIZE,
	.config_size = 0,
	.notify = rng_notify,
};

int virtio_rng_init(struct vm *vm, struct tvm_err *err)
{
	return virtio_mmio_create(vm, virtio_mmio_count(), &virtio_rng_ops, NULL, NULL, err);
}
