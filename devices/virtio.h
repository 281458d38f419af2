/* devices/virtio.h - virtio 1.x: the split virtqueue and the virtio-mmio
 * transport (version 2 register layout), shared by every virtio device.
 *
 * The guest is hostile. Rules (DESIGN.md, "Virtqueues"):
 *  - queue size: a power of two, 1..VIRTQ_MAX_SIZE, <= the device's max;
 *  - ring addresses checked over their whole length in guest RAM when the
 *    driver sets QueueReady (desc 16*size, avail 6+2*size, used 6+8*size),
 *    with the alignment virtio requires (16, 2, 4);
 *  - avail->idx may run ahead of the device by at most the queue size;
 *  - head index < queue size; chains capped at queue-size hops (a loop is
 *    a violation); each descriptor copied once, then validated; every
 *    buffer [addr, addr+len) lies in RAM (checked arithmetic); writable
 *    descriptors only after readable ones; INDIRECT is not offered, and a
 *    descriptor carrying it is a violation;
 * A violation makes the device set DEVICE_NEEDS_RESET, raise a
 * configuration interrupt and stop processing until the driver resets it;
 * it is logged once per device (rate-limited). The VMM keeps running and
 * other devices keep working.
 *
 * Guest memory is reached only through struct guest_mem (vmm/vm.h), so the
 * walker can be fuzzed over plain host buffers.
 */
#ifndef TVM_VIRTIO_H
#define TVM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vmm/vm.h"

/* ------------------------------------------------------------ virtqueue */

#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_SEGS VIRTQ_MAX_SIZE

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

struct virtq {
	uint16_t size;        /* QueueNum as the driver set it */
	bool ready;           /* QueueReady */
	uint64_t desc, avail, used; /* guest-physical ring addresses */
	uint16_t last_avail;  /* next avail ring slot to consume */
	uint16_t used_idx;    /* the device's used->idx */
};

/* One buffer of a chain, validated: [gpa, gpa+len) is guest RAM. */
struct virtq_seg {
	uint64_t gpa;
	uint32_t len;
};

/* One descriptor chain, copied out of the ring and validated. Readable
 * (driver -> device) segments come first, then writable ones. */
struct virtq_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len;            /* byte totals */
	struct virtq_seg out[VIRTQ_MAX_SEGS];
	struct virtq_seg in[VIRTQ_MAX_SEGS];
};

/* When the driver sets QueueReady: check size and ring addresses. 0 ok,
 * -1 with a reason in *why (a static string). */
int virtq_check(const struct virtq *q, const struct guest_mem *m, uint16_t max_size, const char **why);
/* Take the next available chain. 1: *e filled; 0: nothing available;
 * -1: the driver violated the protocol (*why says how). */
int virtq_pop(struct virtq *q, const struct guest_mem *m, struct virtq_elem *e, const char **why);
/* Return a chain to the driver with `written` bytes written to its
 * writable segments. -1 if the used ring is no longer valid RAM. */
int virtq_push(struct virtq *q, const struct guest_mem *m, uint16_t head, uint32_t written);
/* Copy between a chain's segments and a host buffer, starting `off` bytes
 * into the readable (out) or writable (in) side. Returns bytes copied. */
uint64_t virtq_read(const struct virtq_elem *e, const struct guest_mem *m, uint64_t off, void *buf, uint64_t len);
uint64_t virtq_write(const struct virtq_elem *e, const struct guest_mem *m, uint64_t off, const void *buf,
		     uint64_t len);

/* --------------------------------------------------- virtio-mmio transport */

#define VIRTIO_F_VERSION_1 32

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

struct virtio_mmio;

/* What a device tells the transport. Callbacks run with the transport's
 * lock held, on the vCPU thread that made the access. */
struct virtio_dev_ops {
	const char *name;        /* "virtio-blk" */
	uint32_t device_id;      /* 1 net, 2 blk, 3 console, 4 rng */
	uint64_t features;       /* offered; VIRTIO_F_VERSION_1 is added */
	unsigned num_queues;     /* <= VIRTIO_MAX_QUEUES */
	uint16_t queue_max;      /* <= VIRTQ_MAX_SIZE */
	uint32_t config_size;    /* bytes of device config space */
	/* Config space access at [off, off+len) within config_size. */
	void (*config_read)(void *dev, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const void *buf, uint32_t len);
	/* The driver notified queue q (ready, checked). Process what is
	 * available with virtio_pop()/virtio_push(). */
	void (*notify)(void *dev, struct virtio_mmio *t, unsigned q);
	/* The driver reset the device (status 0). */
	void (*reset)(void *dev);
};

#define VIRTIO_MAX_QUEUES 4

struct virtio_mmio {
	struct vm *vm;
	struct guest_mem mem;
	const struct virtio_dev_ops *ops;
	void *dev;
	unsigned slot, irq;
	uint64_t base;
	pthread_mutex_t lock;
	uint32_t status;
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t interrupt_status;
	uint32_t config_generation;
	bool failed_logged;
	uint64_t completed;      /* chains returned to the driver (--stats) */
	int cur_vcpu;            /* the vCPU of the access being handled (-1: none) */
	struct virtq q[VIRTIO_MAX_QUEUES];
};

/* Create and register the device in slot `slot` (its MMIO window and IRQ
 * from trialvm_abi.h). */
int virtio_mmio_create(struct vm *vm, unsigned slot, const struct virtio_dev_ops *ops, void *dev,
		       struct virtio_mmio **out, struct tvm_err *err);
/* Initialise a transport that is not on any bus (t->vm NULL: interrupts
 * only set InterruptStatus). virtio_mmio_create uses it; unit tests and
 * fuzzers call it directly over a fake guest memory. Resets the device. */
void virtio_mmio_init(struct virtio_mmio *t, const struct guest_mem *m, const struct virtio_dev_ops *ops,
		      void *dev);
/* The register file: one access at `off` of `size` bytes (the bus handler;
 * exported for tests and the fuzzer). */
void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, unsigned size, bool is_write);

/* For devices, inside notify (lock held; a device working from another
 * thread takes t->lock around these itself): */
int virtio_pop(struct virtio_mmio *t, unsigned q, struct virtq_elem *e);  /* 1, 0, or -1 (device failed) */
void virtio_push(struct virtio_mmio *t, unsigned q, uint16_t head, uint32_t written);
/* Raise the used-buffer interrupt for queue q (after one or more pushes). */
void virtio_interrupt(struct virtio_mmio *t);
/* The one "pop, process, push, interrupt" loop of every device: serve at
 * most one queue's worth of chains from queue q (every buffer the driver
 * adds later comes with a notification of its own, which is never
 * suppressed, so nothing is left behind, and a driver refilling the ring
 * from another vCPU cannot keep a vCPU here). For each chain (in *e, the
 * caller's storage) fn returns the bytes written to its writable side, to
 * push, or -1 to stop without pushing it (it called virtio_fail). One
 * interrupt at the end if anything was pushed. */
typedef int64_t (*virtio_serve_fn)(void *ctx, struct virtio_mmio *t, struct virtq_elem *e);
void virtio_serve(struct virtio_mmio *t, unsigned q, struct virtq_elem *e, virtio_serve_fn fn, void *ctx);
/* Mark the device broken by the driver: DEVICE_NEEDS_RESET, config
 * interrupt, one log line; processing stops until reset. */
void virtio_fail(struct virtio_mmio *t, const char *why);

/* The Linux command-line fragment describing every registered device
 * ("virtio_mmio.device=4K@0xd0000000:5 ..."), empty when none. */
void virtio_mmio_cmdline(char *buf, size_t cap);
/* "virtio-blk (slot 0): 12 requests; ..." for --stats; empty when none. */
void virtio_mmio_stats(char *buf, size_t cap);
/* Number of devices registered so far (the next free slot). */
unsigned virtio_mmio_count(void);
void virtio_mmio_reset_registry(void);

/* ------------------------------------------ devices on this transport
 * Their state is static (one of each per VMM process; re-created for each
 * VM); `dev` is unused (NULL). Exported for unit tests and fuzzers; the VMM
 * uses virtio_console_init()/virtio_rng_init() from devices.h. */
extern const struct virtio_dev_ops virtio_rng_ops;
extern const struct virtio_dev_ops virtio_console_ops;

#endif
