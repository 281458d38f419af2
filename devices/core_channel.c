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
 * the core as app.core. Everything is hostile: a bad magic, a length of 0
 * or over CORE_CHANNEL_MAX, a bad signal: the device ignores the rest of
 * what the guest sends (logged once) and raises nothing; bytes after a
 * whole frame are ignored (logged once). The buffer is
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
#define CHUNK 65536u

struct core_channel {
	struct vm *vm;
	struct core_frame f;
	bool warned;
};

int core_frame_feed(struct core_frame *f, const uint8_t *p, uint64_t n, const char **why)
{
	int done = 0;
	while (n && f->st == CORE_FRAME_RECEIVING) {
		if (f->got < CORE_FRAME_HDR) {
			uint64_t k = CORE_FRAME_HDR - f->got < n ? CORE_FRAME_HDR - f->got : n;
			memcpy(f->hdr + f->got, p, k);
			f->got += k, p += k, n -= k;
			if (f->got < CORE_FRAME_HDR)
				return 0;
			memcpy(&f->info.signo, f->hdr + 8, 4);
			memcpy(&f->info.pid, f->hdr + 12, 4);
			memcpy(&f->info.len, f->hdr + 16, 8);
			memcpy(f->info.comm, f->hdr + 24, 16);
			f->info.comm[sizeof(f->info.comm) - 1] = 0;
			if (memcmp(f->hdr, "TVMCORE1", 8)) {
				*why = "a frame without the TVMCORE1 magic";
				f->st = CORE_FRAME_BROKEN;
			} else if (f->info.len == 0 || f->info.len > f->cap) {
				*why = "a frame with a core length of 0 or over the limit";
				f->st = CORE_FRAME_BROKEN;
			} else if (f->info.signo == 0 || f->info.signo > 64) {
				*why = "a frame with a signal number outside 1-64";
				f->st = CORE_FRAME_BROKEN;
			}
			continue;
		}
		uint64_t have = f->got - CORE_FRAME_HDR, k = f->info.len - have < n ? f->info.len - have : n;
		memcpy(f->buf + have, p, k);
		f->got += k, p += k, n -= k;
		if (have + k == f->info.len) {
			f->st = CORE_FRAME_DONE;
			f->info.data = f->buf;
			done = 1;
		}
	}
	if (n && f->st == CORE_FRAME_DONE) {
		*why = "bytes after the core";
		f->st = CORE_FRAME_BROKEN;
	}
	return done ? 1 : f->st == CORE_FRAME_BROKEN ? -1 : 0;
}

static void take(struct core_channel *c, const uint8_t *p, uint64_t n, int vcpu)
{
	const char *why = NULL;
	int r = core_frame_feed(&c->f, p, n, &why);
	if (c->f.st == CORE_FRAME_BROKEN && !c->warned) {
		c->warned = true;
		tvm_log("warning: core channel: %s; the guest's core is ignored", why ? why : "a broken frame");
	}
	if (r != 1)
		return;
	struct guest_core *gc = malloc(sizeof(*gc));
	if (!gc) {
		tvm_log("warning: core channel: out of memory; the guest's core is ignored");
		return;
	}
	*gc = c->f.info;
	struct tvm_event ev = { .kind = TVM_EV_GUEST_CORE, .reason = gc->signo, .payload = gc,
				.payload_len = sizeof(*gc) };
	char comm[sizeof(gc->comm)];
	for (size_t i = 0; i < sizeof(comm); i++)
		comm[i] = gc->comm[i] && (gc->comm[i] < 0x20 || gc->comm[i] > 0x7e) ? '?' : gc->comm[i];
	const char *sn = signal_name(gc->signo);
	snprintf(ev.detail, sizeof(ev.detail), "the guest's process %s (pid %u) died of %s%s%u%s", comm, gc->pid,
		 sn ? sn : "signal ", sn ? " (" : "", gc->signo, sn ? ")" : "");
	vm_raise(c->vm, vcpu < 0 ? 0 : vcpu, &ev);
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
	c->f.got = 0;
	c->f.st = CORE_FRAME_RECEIVING;
	return 0;
}
static void destroy(void *dev)
{
	struct core_channel *c = dev;
	munmap(c->f.buf, CORE_CHANNEL_MAX);
	free(c);
}
static const struct vm_device_ops channel_dev_ops = { .version = 1, .save = save, .load = load, .destroy = destroy };

int core_channel_init(struct vm *vm, struct tvm_err *err)
{
	struct core_channel *c = calloc(1, sizeof(*c));
	if (!c)
		return tvm_seterr(err, "out of memory");
	c->vm = vm;
	c->f.cap = CORE_CHANNEL_MAX;
	c->f.buf = mmap(NULL, CORE_CHANNEL_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->f.buf == MAP_FAILED) {
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
