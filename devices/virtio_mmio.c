/* devices/virtio_mmio.c - the virtio-mmio transport, version 2 register
 * layout (virtio 1.x, "Virtio Over MMIO"). See virtio.h.
 *
 * Every register is 32 bits wide and must be accessed with aligned 32-bit
 * loads and stores; the device-specific configuration space from 0x100 on
 * may be accessed with any width that fits. Anything else reads as zero,
 * is ignored when written, and is logged (rate-limited): a guest can never
 * crash the VMM through this file.
 */
#include "virtio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/util.h"
#include "../vmm/vmstate.h"

enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac,
	REG_SHM_LEN_LOW = 0x0b0,
	REG_SHM_LEN_HIGH = 0x0b4,
	REG_SHM_BASE_LOW = 0x0b8,
	REG_SHM_BASE_HIGH = 0x0bc,
	REG_QUEUE_RESET = 0x0c0,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

#define VIRTIO_MMIO_MAGIC 0x74726976u  /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x004d5654u /* "TVM" */
#define VIRTIO_MMIO_WINDOW 0x1000u

#define INT_USED_BUFFER 1u
#define INT_CONFIG_CHANGE 2u

static struct ratelimit bad_rl = RATELIMIT_INIT(10, 1000);

/* ------------------------------------------------------------ registry */

/* The current VM's transports by slot, for the command line and --stats.
 * Each transport is owned by its VM (vm_add_device), which frees it and
 * clears its slot here when it is destroyed. */
static struct {
	pthread_mutex_t lock;
	struct virtio_mmio *dev[TVM_VIRTIO_MMIO_SLOTS];
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---------------------------------------------------------- interrupts */

static void set_interrupt_locked(struct virtio_mmio *t, uint32_t new_status)
{
	bool was = t->interrupt_status != 0;
	t->interrupt_status = new_status;
	bool now = new_status != 0;
	if (was != now && t->vm)
		vm_irq_line(t->vm, t->irq, now);
}

void virtio_interrupt(struct virtio_mmio *t)
{
	set_interrupt_locked(t, t->interrupt_status | INT_USED_BUFFER);
}

void virtio_fail(struct virtio_mmio *t, const char *why)
{
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	if (!t->failed_logged) {
		t->failed_logged = true;
		tvm_log_limited(&bad_rl, "%s (virtio-mmio slot %u): driver error: %s; device needs a reset",
				t->ops->name, t->slot, why);
	}
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	set_interrupt_locked(t, t->interrupt_status | INT_CONFIG_CHANGE);
}

/* ---------------------------------------------------- queue operations */

/* Whether the device may process buffers now. */
static bool live(const struct virtio_mmio *t)
{
	return (t->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(t->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

int virtio_pop(struct virtio_mmio *t, unsigned q, struct virtq_elem *e)
{
	if (q >= t->ops->num_queues || q >= VIRTIO_MAX_QUEUES)
		return 0;
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return -1;
	if (!live(t) || !t->q[q].ready)
		return 0;
	const char *why = "?";
	int r = virtq_pop(&t->q[q], &t->mem, e, &why);
	if (r < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "queue %u: %s", q, why);
		virtio_fail(t, msg);
	}
	return r;
}

void virtio_push(struct virtio_mmio *t, unsigned q, uint16_t head, uint32_t written)
{
	if (q >= t->ops->num_queues || q >= VIRTIO_MAX_QUEUES || !live(t) || !t->q[q].ready)
		return;
	if (virtq_push(&t->q[q], &t->mem, head, written) < 0)
		virtio_fail(t, "used ring no longer in guest RAM");
	else
		t->completed++;
}

void virtio_serve(struct virtio_mmio *t, unsigned q, struct virtq_elem *e, virtio_serve_fn fn, void *ctx)
{
	if (q >= t->ops->num_queues || q >= VIRTIO_MAX_QUEUES)
		return;
	bool pushed = false;
	for (unsigned n = 0; n < t->q[q].size; n++) {
		if (virtio_pop(t, q, e) <= 0)
			break;
		int64_t written = fn(ctx, t, e);
		if (written < 0)
			break;
		virtio_push(t, q, e->head, written > UINT32_MAX ? UINT32_MAX : (uint32_t)written);
		pushed = true;
	}
	if (pushed)
		virtio_interrupt(t);
}

static void reset_locked(struct virtio_mmio *t)
{
	t->status = 0;
	t->dev_features_sel = t->drv_features_sel = 0;
	t->driver_features = 0;
	t->queue_sel = 0;
	t->failed_logged = false;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		t->q[i] = (struct virtq){ .size = i < t->ops->num_queues ? t->ops->queue_max : 0 };
	set_interrupt_locked(t, 0);
	if (t->ops->reset)
		t->ops->reset(t->dev);
}

static void notify_locked(struct virtio_mmio *t, unsigned q)
{
	if (t->ops->notify)
		t->ops->notify(t->dev, t, q);
}

/* -------------------------------------------------------- register file */

static uint64_t offered_features(const struct virtio_mmio *t)
{
	return t->ops->features | (1ull << VIRTIO_F_VERSION_1);
}

static struct virtq *cur_queue(struct virtio_mmio *t)
{
	if (t->queue_sel >= t->ops->num_queues || t->queue_sel >= VIRTIO_MAX_QUEUES)
		return NULL;
	return &t->q[t->queue_sel];
}

static uint32_t reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtq *q = cur_queue(t);
	switch (off) {
	case REG_MAGIC: return VIRTIO_MMIO_MAGIC;
	case REG_VERSION: return 2;
	case REG_DEVICE_ID: return t->ops->device_id;
	case REG_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		if (t->dev_features_sel > 1)
			return 0;
		return (uint32_t)(offered_features(t) >> (32 * t->dev_features_sel));
	case REG_QUEUE_NUM_MAX: return q ? t->ops->queue_max : 0;
	case REG_QUEUE_READY: return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS: return t->interrupt_status;
	case REG_STATUS: return t->status;
	/* No shared memory regions: a length of all-ones says so. */
	case REG_SHM_LEN_LOW: case REG_SHM_LEN_HIGH:
	case REG_SHM_BASE_LOW: case REG_SHM_BASE_HIGH: return 0xffffffffu;
	case REG_CONFIG_GENERATION: return t->config_generation;
	default: return 0; /* write-only and reserved registers */
	}
}

/* Queue registers may change only while the queue is not ready. */
static struct virtq *writable_queue(struct virtio_mmio *t, const char *reg_name)
{
	struct virtq *q = cur_queue(t);
	if (!q) {
		tvm_log_limited(&bad_rl, "%s: %s written for nonexistent queue %u (ignored)", t->ops->name, reg_name,
				t->queue_sel);
		return NULL;
	}
	if (q->ready) {
		tvm_log_limited(&bad_rl, "%s: %s written while queue %u is ready (ignored)", t->ops->name, reg_name,
				t->queue_sel);
		return NULL;
	}
	return q;
}

static void set_half(uint64_t *v, bool high, uint32_t x)
{
	if (high)
		*v = (*v & 0xffffffffull) | ((uint64_t)x << 32);
	else
		*v = (*v & ~0xffffffffull) | x;
}

static void write_status(struct virtio_mmio *t, uint32_t v)
{
	if (v == 0) {
		reset_locked(t);
		return;
	}
	uint32_t old = t->status;
	/* NEEDS_RESET is the device's bit: the driver cannot set or clear it. */
	v = (v & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = t->driver_features;
		if ((f & ~offered_features(t)) || !(f & (1ull << VIRTIO_F_VERSION_1))) {
			tvm_log_limited(&bad_rl, "%s: driver features 0x%llx not acceptable (offered 0x%llx)",
					t->ops->name, (unsigned long long)f, (unsigned long long)offered_features(t));
			v &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
		}
	}
	t->status = v;
	/* Buffers made available before DRIVER_OK are processed now. */
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) && live(t)) {
		for (unsigned i = 0; i < t->ops->num_queues && i < VIRTIO_MAX_QUEUES; i++)
			if (t->q[i].ready && live(t))
				notify_locked(t, i);
	}
}

static void reg_write(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	struct virtq *q;
	switch (off) {
	case REG_DEVICE_FEATURES_SEL: t->dev_features_sel = v; break;
	case REG_DRIVER_FEATURES:
		if (t->status & VIRTIO_STATUS_FEATURES_OK) {
			tvm_log_limited(&bad_rl, "%s: DriverFeatures written after FEATURES_OK (ignored)", t->ops->name);
			break;
		}
		if (t->drv_features_sel <= 1)
			set_half(&t->driver_features, t->drv_features_sel == 1, v);
		break;
	case REG_DRIVER_FEATURES_SEL: t->drv_features_sel = v; break;
	case REG_QUEUE_SEL: t->queue_sel = v; break;
	case REG_QUEUE_NUM:
		if ((q = writable_queue(t, "QueueNum")))
			q->size = v > 0xffff ? 0xffff : (uint16_t)v; /* an oversized value stays invalid */
		break;
	case REG_QUEUE_READY:
		if (!(q = cur_queue(t))) {
			tvm_log_limited(&bad_rl, "%s: QueueReady written for nonexistent queue %u (ignored)",
					t->ops->name, t->queue_sel);
			break;
		}
		if (v == 0) {
			q->ready = false;
		} else if (!q->ready) {
			const char *why = "?";
			if (t->status & VIRTIO_STATUS_NEEDS_RESET)
				break;
			if (virtq_check(q, &t->mem, t->ops->queue_max, &why) < 0) {
				char msg[128];
				snprintf(msg, sizeof(msg), "queue %u: %s", t->queue_sel, why);
				virtio_fail(t, msg);
				break;
			}
			q->last_avail = 0;
			q->used_idx = 0;
			q->ready = true;
		}
		break;
	case REG_QUEUE_NOTIFY:
		if (v >= t->ops->num_queues || v >= VIRTIO_MAX_QUEUES || !t->q[v].ready) {
			tvm_log_limited(&bad_rl, "%s: notify for queue %u, which is not set up (ignored)", t->ops->name,
					v);
			break;
		}
		if (live(t))
			notify_locked(t, v);
		break;
	case REG_INTERRUPT_ACK: set_interrupt_locked(t, t->interrupt_status & ~v); break;
	case REG_STATUS: write_status(t, v); break;
	case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
		if ((q = writable_queue(t, "QueueDesc")))
			set_half(&q->desc, off == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
		if ((q = writable_queue(t, "QueueDriver")))
			set_half(&q->avail, off == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
		if ((q = writable_queue(t, "QueueDevice")))
			set_half(&q->used, off == REG_QUEUE_DEVICE_HIGH, v);
		break;
	case REG_SHM_SEL: break;
	default:
		tvm_log_limited(&bad_rl, "%s: write to read-only or reserved register 0x%llx (ignored)", t->ops->name,
				(unsigned long long)off);
		break;
	}
}

static void access_from(struct virtio_mmio *t, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write);

void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	access_from(t, -1, off, data, size, is_write);
}

static void access_from(struct virtio_mmio *t, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	if (!is_write)
		memset(data, 0, size);
	if (size != 1 && size != 2 && size != 4 && size != 8) {
		tvm_log_limited(&bad_rl, "%s: %u-byte access at 0x%llx (ignored)", t->ops->name, size,
				(unsigned long long)off);
		return;
	}
	pthread_mutex_lock(&t->lock);
	t->cur_vcpu = vcpu;
	if (off >= REG_CONFIG && off < VIRTIO_MMIO_WINDOW) {
		uint64_t coff = off - REG_CONFIG;
		if (coff <= t->ops->config_size && size <= t->ops->config_size - coff) {
			if (is_write) {
				if (t->ops->config_write)
					t->ops->config_write(t->dev, (uint32_t)coff, data, size);
			} else if (t->ops->config_read) {
				t->ops->config_read(t->dev, (uint32_t)coff, data, size);
			}
		} else {
			tvm_log_limited(&bad_rl, "%s: config %s of %u bytes at 0x%llx outside its %u bytes (ignored)",
					t->ops->name, is_write ? "write" : "read", size, (unsigned long long)coff,
					t->ops->config_size);
		}
	} else if (size != 4 || (off & 3) || off >= VIRTIO_MMIO_WINDOW) {
		tvm_log_limited(&bad_rl, "%s: %u-byte %s at register 0x%llx (registers need aligned 32-bit access; ignored)",
				t->ops->name, size, is_write ? "write" : "read", (unsigned long long)off);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		reg_write(t, off, v);
	} else {
		uint32_t v = reg_read(t, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&t->lock);
}

static void mmio_handler(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	access_from(dev, vcpu, off, data, size, is_write);
}

/* ---------------------------------------------------------- lifecycle */

void virtio_mmio_init(struct virtio_mmio *t, const struct guest_mem *m, const struct virtio_dev_ops *ops, void *dev)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->mem = *m;
	t->ops = ops;
	t->dev = dev;
	pthread_mutex_lock(&t->lock);
	reset_locked(t);
	pthread_mutex_unlock(&t->lock);
}

/* ---------------------------------------------------------- state */

enum {
	VT_DEVICE_ID = 1,   /* which device this transport carries (checked on load) */
	VT_STATUS = 2,
	VT_FEATURES_SEL = 3, /* device, driver: u32 each */
	VT_DRIVER_FEATURES = 4,
	VT_QUEUE_SEL = 5,
	VT_INTERRUPT = 6,
	VT_CONFIG_GEN = 7,
	VT_COMPLETED = 8,
	VT_QUEUE0 = 16,     /* + q: struct saved_queue */
};

/* A queue as saved: 32 bytes, little-endian. */
struct saved_queue {
	uint16_t size;
	uint8_t ready, pad;
	uint16_t last_avail, used_idx;
	uint64_t desc, avail, used;
} __attribute__((packed));

static int transport_save(void *dev, struct vs_out *o, struct tvm_err *err)
{
	struct virtio_mmio *t = dev;
	pthread_mutex_lock(&t->lock);
	vs_put_u32(o, VT_DEVICE_ID, t->ops->device_id);
	vs_put_u32(o, VT_STATUS, t->status);
	uint32_t sel[2] = { t->dev_features_sel, t->drv_features_sel };
	vs_put(o, VT_FEATURES_SEL, sel, sizeof(sel));
	vs_put_u64(o, VT_DRIVER_FEATURES, t->driver_features);
	vs_put_u32(o, VT_QUEUE_SEL, t->queue_sel);
	vs_put_u32(o, VT_INTERRUPT, t->interrupt_status);
	vs_put_u32(o, VT_CONFIG_GEN, t->config_generation);
	vs_put_u64(o, VT_COMPLETED, t->completed);
	for (unsigned q = 0; q < t->ops->num_queues; q++) {
		const struct virtq *v = &t->q[q];
		struct saved_queue sq = { .size = v->size, .ready = v->ready, .last_avail = v->last_avail,
					  .used_idx = v->used_idx, .desc = v->desc, .avail = v->avail, .used = v->used };
		vs_put(o, (uint16_t)(VT_QUEUE0 + q), &sq, sizeof(sq));
	}
	pthread_mutex_unlock(&t->lock);
	return vs_out_error(o, err);
}

/* Every value is the guest's (through a file): checked as the register
 * writes that set it would check it, ring addresses against guest RAM. */
static int transport_load(void *dev, const struct vs_in *in, uint16_t version, struct tvm_err *err)
{
	struct virtio_mmio *t = dev;
	(void)version;
	uint32_t id, status, sel[2], qsel, isr, gen;
	uint64_t feat, completed = 0;
	if (vs_get_u32(in, VT_DEVICE_ID, &id, "its device id", err) < 0 ||
	    vs_get_u32(in, VT_STATUS, &status, "its status", err) < 0 ||
	    vs_get(in, VT_FEATURES_SEL, sel, sizeof(sel), "its feature selectors", err) < 0 ||
	    vs_get_u64(in, VT_DRIVER_FEATURES, &feat, "its driver features", err) < 0 ||
	    vs_get_u32(in, VT_QUEUE_SEL, &qsel, "its queue selector", err) < 0 ||
	    vs_get_u32(in, VT_INTERRUPT, &isr, "its interrupt status", err) < 0 ||
	    vs_get_u32(in, VT_CONFIG_GEN, &gen, "its configuration generation", err) < 0 ||
	    vs_get_opt(in, VT_COMPLETED, &completed, 8, "its request count", err) < 0)
		return -1;
	if (id != t->ops->device_id)
		return tvm_seterr(err, "slot %u holds device %u (%s) here, and device %u in the snapshot: the VM "
				       "has other devices than the one the snapshot was taken of", t->slot,
				  t->ops->device_id, t->ops->name, id);
	if (feat & ~offered_features(t))
		return tvm_seterr(err, "%s: the snapshot's driver features 0x%llx include some the device does not "
				       "offer", t->ops->name, (unsigned long long)feat);
	if (isr & ~(INT_USED_BUFFER | INT_CONFIG_CHANGE))
		return tvm_seterr(err, "%s: invalid interrupt status 0x%x in the snapshot", t->ops->name, isr);
	struct virtq q[VIRTIO_MAX_QUEUES] = { 0 };
	for (unsigned i = 0; i < t->ops->num_queues; i++) {
		struct saved_queue sq;
		char what[32];
		snprintf(what, sizeof(what), "queue %u", i);
		if (vs_get(in, (uint16_t)(VT_QUEUE0 + i), &sq, sizeof(sq), what, err) < 0)
			return -1;
		q[i] = (struct virtq){ .size = sq.size, .ready = sq.ready != 0, .desc = sq.desc, .avail = sq.avail,
				       .used = sq.used, .last_avail = sq.last_avail, .used_idx = sq.used_idx };
		if (sq.ready > 1)
			return tvm_seterr(err, "%s: queue %u has ready flag %u", t->ops->name, i, sq.ready);
		const char *why = "";
		if (q[i].size == 0 || q[i].size > t->ops->queue_max || (q[i].size & (q[i].size - 1)))
			return tvm_seterr(err, "%s: queue %u has size %u (the device takes powers of two up to %u)",
					  t->ops->name, i, q[i].size, t->ops->queue_max);
		if (q[i].ready && virtq_check(&q[i], &t->mem, t->ops->queue_max, &why) < 0)
			return tvm_seterr(err, "%s: queue %u in the snapshot: %s", t->ops->name, i, why);
	}
	pthread_mutex_lock(&t->lock);
	t->status = status;
	t->dev_features_sel = sel[0];
	t->drv_features_sel = sel[1];
	t->driver_features = feat;
	t->queue_sel = qsel;
	t->config_generation = gen;
	t->completed = completed;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		t->q[i] = q[i];
	t->interrupt_status = 0;
	set_interrupt_locked(t, isr);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void transport_destroy(void *dev)
{
	struct virtio_mmio *t = dev;
	pthread_mutex_lock(&reg.lock);
	if (t->slot < TVM_VIRTIO_MMIO_SLOTS && reg.dev[t->slot] == t)
		reg.dev[t->slot] = NULL;
	pthread_mutex_unlock(&reg.lock);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct vm_device_ops transport_ops = { .version = 1, .save = transport_save, .load = transport_load,
						    .destroy = transport_destroy };

int virtio_mmio_create(struct vm *vm, unsigned slot, const struct virtio_dev_ops *ops, void *dev,
		       struct virtio_mmio **out, struct tvm_err *err)
{
	if (!ops || !ops->name)
		return tvm_seterr(err, "virtio-mmio: device without a name");
	if (slot >= TVM_VIRTIO_MMIO_SLOTS)
		return tvm_seterr(err, "%s: no free virtio-mmio slot (at most %u devices)", ops->name,
				  TVM_VIRTIO_MMIO_SLOTS);
	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES || ops->queue_max == 0 ||
	    ops->queue_max > VIRTQ_MAX_SIZE || (ops->queue_max & (ops->queue_max - 1)) ||
	    ops->config_size > VIRTIO_MMIO_WINDOW - REG_CONFIG)
		return tvm_seterr(err, "%s: invalid virtio device description", ops->name);
	pthread_mutex_lock(&reg.lock);
	bool taken = reg.dev[slot] != NULL;
	pthread_mutex_unlock(&reg.lock);
	if (taken)
		return tvm_seterr(err, "%s: virtio-mmio slot %u is taken", ops->name, slot);
	struct virtio_mmio *t = calloc(1, sizeof(*t));
	if (!t)
		return tvm_seterr(err, "out of memory");
	struct guest_mem m = vm_guest_mem(vm);
	virtio_mmio_init(t, &m, ops, dev);
	t->vm = vm;
	t->slot = slot;
	t->irq = TVM_VIRTIO_IRQ(slot);
	t->base = TVM_VIRTIO_MMIO_BASE + (uint64_t)slot * TVM_VIRTIO_MMIO_STRIDE;
	char name[TVM_DEVICE_NAME];
	snprintf(name, sizeof(name), "virtio-mmio.%u", slot);
	if (vm_add_device(vm, name, &transport_ops, t, err) < 0) /* frees t on failure */
		return -1;
	if (bus_register(vm, BUS_MMIO, t->base, VIRTIO_MMIO_WINDOW, mmio_handler, t, ops->name, err) < 0)
		return -1; /* t stays the VM's until it is destroyed */
	pthread_mutex_lock(&reg.lock);
	reg.dev[slot] = t;
	pthread_mutex_unlock(&reg.lock);
	if (out)
		*out = t;
	return 0;
}

unsigned virtio_mmio_count(void)
{
	pthread_mutex_lock(&reg.lock);
	unsigned n = 0;
	while (n < TVM_VIRTIO_MMIO_SLOTS && reg.dev[n])
		n++;
	pthread_mutex_unlock(&reg.lock);
	return n;
}

void virtio_mmio_reset_registry(void)
{
	pthread_mutex_lock(&reg.lock);
	for (unsigned i = 0; i < TVM_VIRTIO_MMIO_SLOTS; i++)
		reg.dev[i] = NULL; /* the VM that owned them frees them */
	pthread_mutex_unlock(&reg.lock);
}

/* Describe every registered device into buf, entries separated by sep; an
 * entry that does not fit is left out whole, never truncated. */
static void describe_devices(char *buf, size_t cap, const char *sep,
			     int (*fmt)(char *out, size_t room, struct virtio_mmio *t))
{
	if (!cap)
		return;
	buf[0] = 0;
	size_t len = 0;
	pthread_mutex_lock(&reg.lock);
	for (unsigned i = 0; i < TVM_VIRTIO_MMIO_SLOTS; i++) {
		if (!reg.dev[i])
			continue;
		size_t s = len ? strlen(sep) : 0;
		if (s >= cap - len)
			break;
		int n = fmt(buf + len + s, cap - len - s, reg.dev[i]);
		if (n < 0 || (size_t)n >= cap - len - s) {
			buf[len] = 0;
			break;
		}
		memcpy(buf + len, sep, s);
		len += s + (size_t)n;
	}
	pthread_mutex_unlock(&reg.lock);
}

static int fmt_cmdline(char *out, size_t room, struct virtio_mmio *t)
{
	return snprintf(out, room, "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)t->base, t->irq);
}

void virtio_mmio_cmdline(char *buf, size_t cap) { describe_devices(buf, cap, " ", fmt_cmdline); }

static int fmt_stats(char *out, size_t room, struct virtio_mmio *t)
{
	pthread_mutex_lock(&t->lock);
	int n = snprintf(out, room, "%s (slot %u): %llu requests%s", t->ops->name, t->slot,
			 (unsigned long long)t->completed,
			 (t->status & VIRTIO_STATUS_NEEDS_RESET) ? ", needs reset" : "");
	pthread_mutex_unlock(&t->lock);
	return n;
}

void virtio_mmio_stats(char *buf, size_t cap) { describe_devices(buf, cap, "; ", fmt_stats); }
