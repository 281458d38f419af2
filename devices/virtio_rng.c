/* devices/virtio_rng.c - virtio entropy device (virtio 1.x "Entropy
 * Device", device ID 4): one request queue; the device fills each chain's
 * writable buffers with random bytes from entropy_fill(). */
#include "devices.h"

#include "../vmm/evlog.h"
#include "virtio.h"

/* At most this many bytes per request; the driver asks again for more. */
#define RNG_MAX_REQUEST (64u * 1024)
#define RNG_CHUNK 4096u

/* One request: up to RNG_MAX_REQUEST random bytes into its writable side. */
static int64_t rng_serve(void *ctx, struct virtio_mmio *t, struct virtq_elem *e)
{
	(void)ctx;
	uint64_t want = e->in_len < RNG_MAX_REQUEST ? e->in_len : RNG_MAX_REQUEST;
	uint64_t done = 0;
	uint8_t buf[RNG_CHUNK];
	while (done < want) {
		uint64_t n = want - done < RNG_CHUNK ? want - done : RNG_CHUNK;
		entropy_fill(buf, n);
		vm_nondet_input(t->vm, t->cur_vcpu, EVLOG_SRC_RNG, buf, n);
		uint64_t w = virtq_write(e, &t->mem, done, buf, n);
		done += w;
		if (w < n)
			break;
	}
	return (int64_t)done;
}

static void rng_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
	(void)dev;
	struct virtq_elem e;
	if (q == 0)
		virtio_serve(t, 0, &e, rng_serve, NULL);
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
