/* devices/core_channel.c - the trialvm core channel: a second virtio-console
 * device (hvc1 in a Linux guest) over which the /init of trialvm's Linux
 * images sends the core of a crashed process (the kernel's core_pattern
 * pipe). One frame:
 *
 *   struct { char magic[8] "TVMCORE1"; u32 signo, pid; u64 length;
 *            char comm[16]; }  (40 bytes, little-endian)
 *   then `length` bytes: the core as Linux wrote it.
 *
 * When a frame is complete, the device raises TVM_EV_GUEST_CORE (payload:
 * struct guest_core, pointing into this device's buffer, valid until the VM
 * is destroyed): the run ends as an application crash whose report holds
 * the core as app.core. Everything is hostile: a bad magic, a length over
 * CORE_CHANNEL_MAX, bytes after the frame: the device ignores the rest of
 * what the guest sends (logged once) and raises nothing. The buffer is
 * reserved at creation (MAP_NORESERVE: pages only as the guest fills them),
 * so the vCPU threads never map memory. */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../vmm/util.h"
#include "../vmm/vmstate.h"
#include "virtio.h"

#define RXQ 0
#define TXQ 1
#define HDR 40u
#define CHUNK 65536u

enum state { RECEIVING, DONE, BROKEN };

struct core_channel {
	struct vm *vm;
	uint8_t hdr[HDR];
	uint64_t got;  /* bytes of the frame so far, header included */
	uint8_t *buf;  /* CORE_CHANNEL_MAX bytes, reserved */
	enum state st;
	struct guest_core info;
};

static void broken(struct core_channel *c, const char *why)
{
	if (c->st != BROKEN)
		tvm_log("warning: core channel: %s; the guest's core is ignored", why);
	c->st = BROKEN;
}

static void take(struct core_channel *c, const uint8_t *p, uint64_t n, int vcpu)
{
	while (n && c->st == RECEIVING) {
		if (c->got < HDR) {
			uint64_t k = HDR - c->got < n ? HDR - c->got : n;
			memcpy(c->hdr + c->got, p, k);
			c->got += k, p += k, n -= k;
			if (c->got < HDR)
				return;
			if (memcmp(c->hdr, "TVMCORE1", 8)) {
				broken(c, "a frame without the TVMCORE1 magic");
				return;
			}
			memcpy(&c->info.signo, c->hdr + 8, 4);
			memcpy(&c->info.pid, c->hdr + 12, 4);
			memcpy(&c->info.len, c->hdr + 16, 8);
			memcpy(c->info.comm, c->hdr + 24, 16);
			c->info.comm[sizeof(c->info.comm) - 1] = 0;
			if (c->info.len == 0 || c->info.len > CORE_CHANNEL_MAX || c->info.signo == 0 || c->info.signo > 64) {
				broken(c, "a frame with a core length of 0 or over the limit, or a bad signal");
				return;
			}
			continue;
		}
		uint64_t have = c->got - HDR, k = c->info.len - have < n ? c->info.len - have : n;
		memcpy(c->buf + have, p, k);
		c->got += k, p += k, n -= k;
		if (c->got - HDR == c->info.len) {
			c->st = DONE;
			c->info.data = c->buf;
			struct guest_core *gc = malloc(sizeof(*gc));
			if (!gc) {
				broken(c, "out of memory");
				return;
			}
			*gc = c->info;
			struct tvm_event ev = { .kind = TVM_EV_GUEST_CORE, .reason = gc->signo, .payload = gc,
						.payload_len = sizeof(*gc) };
			char comm[sizeof(gc->comm)];
			for (size_t i = 0; i < sizeof(comm); i++)
				comm[i] = gc->comm[i] && (gc->comm[i] < 0x20 || gc->comm[i] > 0x7e) ? '?' : gc->comm[i];
			const char *sn = signal_name(gc->signo);
			snprintf(ev.detail, sizeof(ev.detail), "the guest's process %s (pid %u) died of %s%s%u%s", comm,
				 gc->pid, sn ? sn : "signal ", sn ? " (" : "", gc->signo, sn ? ")" : "");
			vm_raise(c->vm, vcpu < 0 ? 0 : vcpu, &ev);
		}
	}
	if (n && c->st == DONE)
		broken(c, "bytes after the core");
}

static int64_t serve(void *ctx, struct virtio_mmio *t, struct virtq_elem *e)
{
	struct core_channel *c = ctx;
	static uint8_t chunk[CHUNK];
	for (uint64_t done = 0; done < e->out_len;) {
		uint64_t n = e->out_len - done < CHUNK ? e->out_len - done : CHUNK;
		uint64_t r = virtq_read(e, &t->mem, done, chunk, n);
		take(c, chunk, r, t->cur_vcpu);
		done += r;
		if (r < n)
			break;
	}
	return 0;
}

static void notify(void *dev, struct virtio_mmio *t, unsigned q)
{
	struct virtq_elem e;
	if (q == TXQ)
		virtio_serve(t, TXQ, &e, serve, dev);
}

static void config_read(void *dev, uint32_t off, void *buf, uint32_t len)
{
	(void)dev, (void)off;
	memset(buf, 0, len);
}

static const struct virtio_dev_ops channel_ops = {
	.name = "trialvm-core-channel",
	.device_id = 3,
	.num_queues = 2,
	.queue_max = VIRTQ_MAX_SIZE,
	.config_size = 12,
	.config_read = config_read,
	.notify = notify,
};

/* A frame in flight is not part of a snapshot: a restore starts a new one. */
static int save(void *dev, struct vs_out *o, struct tvm_err *err)
{
	(void)dev, (void)o, (void)err;
	return 0;
}
static int load(void *dev, const struct vs_in *in, uint16_t version, struct tvm_err *err)
{
	(void)in, (void)version, (void)err;
	struct core_channel *c = dev;
	c->got = 0;
	c->st = RECEIVING;
	return 0;
}
static void destroy(void *dev)
{
	struct core_channel *c = dev;
	munmap(c->buf, CORE_CHANNEL_MAX);
	free(c);
}
static const struct vm_device_ops channel_dev_ops = { .version = 1, .save = save, .load = load, .destroy = destroy };

int core_channel_init(struct vm *vm, struct tvm_err *err)
{
	struct core_channel *c = calloc(1, sizeof(*c));
	if (!c)
		return tvm_seterr(err, "out of memory");
	c->vm = vm;
	c->buf = mmap(NULL, CORE_CHANNEL_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->buf == MAP_FAILED) {
		int e = errno;
		free(c);
		return tvm_seterr(err, "cannot reserve the core channel's buffer: %s", strerror(e));
	}
	if (vm_add_device(vm, "core-channel", &channel_dev_ops, c, err) < 0) {
		destroy(c);
		return -1;
	}
	return virtio_mmio_create(vm, virtio_mmio_count(), &channel_ops, c, NULL, err);
}
