/* virtio-mmio (version 2 only) devices: probing, the init handshake, split
 * virtqueues polled without interrupts, and three drivers:
 *   virtio-blk      /dev/vda, /dev/vdb ... (fs.c turns fds into blk_rw())
 *   virtio-console  /dev/hvc0, write only (the transmit queue)
 *   virtio-rng      the source of getrandom()/AT_RANDOM when present
 *
 * Where devices are: under trialvm (TVM signature on port 0x510) in slots of
 * TVM_VIRTIO_MMIO_STRIDE from TVM_VIRTIO_MMIO_BASE, filled from 0 without
 * gaps (probing stops at the first slot without the magic). Elsewhere the
 * QEMU microvm layout: 24 transports of 0x200 bytes from 0xfeb00000 (8 when
 * QEMU runs microvm with ioapic2=off), empty ones reading DeviceID 0; QEMU
 * hands them out from the top, so they are probed downwards to keep the
 * command-line order (first -device = vda). Legacy (version 1) transports are
 * ignored; with QEMU use -global virtio-mmio.force-legacy=false.
 *
 * Cost model: ring-0 code is emulated on the CI platform (~2 us per
 * instruction), so requests are zero-copy: descriptors point straight at the
 * application's physical pages (coalesced when contiguous); only partial
 * 512-byte sectors go through a bounce buffer (read-modify-write). One chain
 * in flight per device, always in descriptors 0.., completion by polling the
 * used ring (interrupts stay off; avail->flags asks for none), bounded by the
 * TSC and an iteration count; a device that does not answer or sets
 * DEVICE_NEEDS_RESET gives -EIO and is reset and re-initialised. */
#include "virtio.h"

#define EPERM 1
#define EIO 5
#define ENXIO 6
#define EFAULT 14
#define EINVAL 22
#define ENOSPC 28

#define MICROVM_VIRTIO_BASE 0xfeb00000ull
#define MICROVM_VIRTIO_SIZE 0x200u
#define MICROVM_VIRTIO_COUNT 24u

struct vdev vdevs[MAX_VDEVS];
unsigned nr_vdevs;
static struct vdev *blks[26];
static unsigned nr_blks;
static struct vdev *hvc, *rngdev;

static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* ---- transport ---- */

void vdev_reset(struct vdev *d)
{
	d->ok = false;
	vw32(d, VMMIO_STATUS, 0);
	for (int i = 0; i < 1000 && vr32(d, VMMIO_STATUS) != 0; i++)
		__asm__ volatile("pause");
}

/* ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK (checked). */
bool vdev_negotiate(struct vdev *d, u64 want)
{
	vw32(d, VMMIO_STATUS, VST_ACK);
	vw32(d, VMMIO_STATUS, VST_ACK | VST_DRIVER);
	vw32(d, VMMIO_DEV_FEATURES_SEL, 0);
	u64 offered = vr32(d, VMMIO_DEV_FEATURES);
	vw32(d, VMMIO_DEV_FEATURES_SEL, 1);
	offered |= (u64)vr32(d, VMMIO_DEV_FEATURES) << 32;
	if (!(offered & VF_VERSION_1))
		goto fail;
	u64 acc = (offered & want) | VF_VERSION_1;
	vw32(d, VMMIO_DRV_FEATURES_SEL, 0);
	vw32(d, VMMIO_DRV_FEATURES, (u32)acc);
	vw32(d, VMMIO_DRV_FEATURES_SEL, 1);
	vw32(d, VMMIO_DRV_FEATURES, (u32)(acc >> 32));
	vw32(d, VMMIO_STATUS, VST_ACK | VST_DRIVER | VST_FEATURES_OK);
	if (!(vr32(d, VMMIO_STATUS) & VST_FEATURES_OK))
		goto fail;
	d->features = acc;
	return true;
fail:
	vw32(d, VMMIO_STATUS, VST_ACK | VST_DRIVER | VST_FAILED);
	return false;
}

/* Program queue `index` and set QueueReady; true if the device kept it
 * ready and did not ask for a reset. */
bool vq_setup_regs(struct vdev *d, u16 index, u16 size, u64 desc_pa, u64 avail_pa, u64 used_pa)
{
	vw32(d, VMMIO_QUEUE_SEL, index);
	if (vr32(d, VMMIO_QUEUE_READY) != 0)
		return false;
	vw32(d, VMMIO_QUEUE_NUM, size);
	vw32(d, VMMIO_QUEUE_DESC, (u32)desc_pa);
	vw32(d, VMMIO_QUEUE_DESC + 4, (u32)(desc_pa >> 32));
	vw32(d, VMMIO_QUEUE_AVAIL, (u32)avail_pa);
	vw32(d, VMMIO_QUEUE_AVAIL + 4, (u32)(avail_pa >> 32));
	vw32(d, VMMIO_QUEUE_USED, (u32)used_pa);
	vw32(d, VMMIO_QUEUE_USED + 4, (u32)(used_pa >> 32));
	vw32(d, VMMIO_QUEUE_READY, 1);
	return vr32(d, VMMIO_QUEUE_READY) == 1 && !(vr32(d, VMMIO_STATUS) & VST_NEEDS_RESET);
}

void vq_layout(struct vq *q, u16 index, u16 size, void *desc, void *avail, void *used)
{
	q->index = index;
	q->size = size;
	q->desc = desc;
	q->avail = avail;
	q->used = used;
	q->desc_pa = virt_to_phys(desc);
	q->avail_pa = virt_to_phys(avail);
	q->used_pa = virt_to_phys(used);
	q->avail_idx = q->last_used = 0;
	q->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	q->avail[1] = 0;
	((volatile u16 *)q->used)[0] = 0;
	((volatile u16 *)q->used)[1] = 0;
}

static u64 blk_read_capacity(struct vdev *d)
{
	u64 cap = 0;
	for (int tries = 0; tries < 8; tries++) {
		u32 g = vr32(d, VMMIO_CONFIG_GEN);
		cap = vr32(d, VMMIO_CONFIG) | (u64)vr32(d, VMMIO_CONFIG + 4) << 32;
		if (vr32(d, VMMIO_CONFIG_GEN) == g)
			break;
	}
	return cap > (1ull << 54) ? 1ull << 54 : cap;   /* keep capacity*512 far from 2^64 */
}

/* Reset and bring the device up for normal use. */
bool vdev_setup(struct vdev *d)
{
	vdev_reset(d);
	u64 want = 0;
	if (d->device_id == VDEV_BLK)
		want = VBLK_F_RO | VBLK_F_BLK_SIZE | VBLK_F_FLUSH | VBLK_F_SEG_MAX;
	if (!vdev_negotiate(d, want))
		return false;
	u16 qi = d->device_id == VDEV_CONSOLE ? 1 : 0;    /* console: transmitq0 */
	vw32(d, VMMIO_QUEUE_SEL, qi);
	u32 max = vr32(d, VMMIO_QUEUE_NUM_MAX);
	if (max == 0)
		goto fail;
	u16 size = 1;
	while (size * 2 <= max && size * 2 <= VQ_WANT_SIZE)
		size *= 2;
	u8 *p = d->ring_page;
	vq_layout(&d->vq, qi, size, p, p + 16 * size, p + ALIGN_UP(16 * size + 6 + 2 * size, 4));
	if (!vq_setup_regs(d, qi, size, d->vq.desc_pa, d->vq.avail_pa, d->vq.used_pa))
		goto fail;
	if (d->device_id == VDEV_BLK) {
		d->capacity = blk_read_capacity(d);
		d->seg_max = 0;
		if (d->features & VBLK_F_SEG_MAX)
			d->seg_max = vr32(d, VMMIO_CONFIG + 12);
	}
	vw32(d, VMMIO_STATUS, VST_ACK | VST_DRIVER | VST_FEATURES_OK | VST_DRIVER_OK);
	if (vr32(d, VMMIO_STATUS) & (VST_NEEDS_RESET | VST_FAILED))
		goto fail;
	d->ok = true;
	return true;
fail:
	vw32(d, VMMIO_STATUS, vr32(d, VMMIO_STATUS) | VST_FAILED);
	return false;
}

/* ---- virtqueue ---- */

void vq_fill(struct vq *q, const struct seg *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		q->desc[i].addr = s[i].addr;
		q->desc[i].len = s[i].len;
		q->desc[i].flags = (s[i].write ? VRING_F_WRITE : 0) | (i + 1 < n ? VRING_F_NEXT : 0);
		q->desc[i].next = i + 1 < n ? i + 1 : 0;
	}
}

/* Put `head` in the next avail slot, advance avail->idx by idx_advance
 * (1 normally) and notify. */
void vq_post(struct vdev *d, struct vq *q, u16 head, u16 idx_advance)
{
	u16 slot = q->size ? q->avail_idx % q->size : 0;
	q->avail[2 + slot] = head;
	barrier();
	q->avail_idx += idx_advance;
	q->avail[1] = q->avail_idx;
	__asm__ volatile("mfence" ::: "memory");
	vw32(d, VMMIO_QUEUE_NOTIFY, q->index);
}

/* Wait for the next used entry (which must be for head 0). */
int vq_wait(struct vdev *d, struct vq *q, u64 tsc_limit, u32 *len)
{
	u64 t0 = rdtsc();
	for (u64 i = 0;; i++) {
		u16 ui = ((volatile u16 *)q->used)[1];
		if (ui != q->last_used) {
			barrier();
			u16 slot = q->size ? q->last_used % q->size : 0;
			volatile u32 *e = (volatile u32 *)(q->used + 4 + 8 * (u64)slot);
			u32 id = e[0];
			*len = e[1];
			q->last_used++;
			return id == 0 ? VQ_DONE : VQ_BAD_USED;
		}
		if ((i & 255) == 255) {
			if (vr32(d, VMMIO_STATUS) & VST_NEEDS_RESET)
				return VQ_NEEDS_RESET;
			if (rdtsc() - t0 > tsc_limit || i >= (1ull << 32))
				return VQ_TIMEOUT;
		}
		__asm__ volatile("pause");
	}
}

/* Submit a chain on the device's normal queue and wait; on any failure the
 * device is reset and re-initialised. */
static int vdev_run(struct vdev *d, const struct seg *s, unsigned n, u32 *len)
{
	if (!d->ok || n == 0 || n > d->vq.size)
		return -1;
	vq_fill(&d->vq, s, n);
	vq_post(d, &d->vq, 0, 1);
	int r = vq_wait(d, &d->vq, POLL_TSC_NORMAL, len);
	if (r != VQ_DONE) {
		kprintf("trialos: %s: device %s, resetting it\n", d->name,
			r == VQ_NEEDS_RESET ? "needs a reset" : r == VQ_TIMEOUT ? "did not answer" : "returned a bad used entry");
		vdev_setup(d);
		return -1;
	}
	return 0;
}

/* ---- virtio-blk ---- */

int blk_request(struct vdev *d, u32 type, u64 sector, const struct seg *data, unsigned n)
{
	struct seg s[VQ_WANT_SIZE];
	if (n + 2 > d->vq.size)
		return -1;
	struct blk_hdr *h = (struct blk_hdr *)(d->req + REQ_HDR);
	h->type = type;
	h->reserved = 0;
	h->sector = sector;
	volatile u8 *st = d->req + REQ_STATUS;
	*st = 0xff;
	s[0] = (struct seg){ d->req_pa + REQ_HDR, sizeof *h, false };
	for (unsigned i = 0; i < n; i++)
		s[1 + i] = data[i];
	s[n + 1] = (struct seg){ d->req_pa + REQ_STATUS, 1, true };
	u32 len;
	if (vdev_run(d, s, n + 2, &len) < 0)
		return -1;
	u8 status = *st;
	if (status != VBLK_S_OK) {
		if (vr32(d, VMMIO_STATUS) & VST_NEEDS_RESET)
			vdev_setup(d);
		return status == 0xff ? -1 : status;
	}
	return 0;
}

/* Up to max segments covering the user range [ubuf, ubuf+len) by physical
 * pages; *covered = bytes described. -EFAULT on an unmapped page. */
static int user_segs(u64 ubuf, u64 len, bool dev_writes, struct seg *s, unsigned max, u64 *covered)
{
	unsigned n = 0;
	u64 done = 0, *pte = NULL;
	while (done < len) {
		u64 va = ubuf + done;
		u64 chunk = PAGE_SIZE - (va & (PAGE_SIZE - 1));
		if (chunk > len - done)
			chunk = len - done;
		/* one table walk per 2 MiB (ring 0 is slow on the CI platform) */
		if (!pte || !(va & ((1ull << 21) - 1)))
			pte = pte_get(va, false);
		else
			pte++;
		if (!pte || (*pte & (PTE_P | PTE_U)) != (PTE_P | PTE_U))
			return -EFAULT;
		u64 pa = (*pte & PTE_ADDR) | (va & (PAGE_SIZE - 1));
		if (n && s[n - 1].addr + s[n - 1].len == pa && s[n - 1].len + chunk <= (1u << 22)) {
			s[n - 1].len += chunk;
		} else {
			if (n == max)
				break;
			s[n++] = (struct seg){ pa, (u32)chunk, dev_writes };
		}
		done += chunk;
	}
	*covered = done;
	return n;
}

#define BLK_MAX_BYTES (64u * 1024)

static struct vdev *blk_dev(int i)
{
	return i >= 0 && (unsigned)i < nr_blks ? blks[i] : NULL;
}

int blk_find(const char *name)
{
	for (unsigned i = 0; i < nr_blks; i++)
		if (!strcmp(blks[i]->name, name))
			return i;
	return -1;
}

u64 blk_bytes(int i)
{
	struct vdev *d = blk_dev(i);
	return d ? d->capacity * 512 : 0;
}

bool blk_readonly(int i)
{
	struct vdev *d = blk_dev(i);
	return !d || (d->features & VBLK_F_RO);
}

/* Read or write [off, off+len) of block device i from/to the (validated)
 * user buffer. Linux block-device semantics: reads at or past the end give
 * 0, writes there -ENOSPC, a request crossing the end is cut short. */
i64 blk_rw(int i, bool write, u64 ubuf, u64 len, u64 off)
{
	struct vdev *d = blk_dev(i);
	if (!d)
		return -ENXIO;
	if (write && (d->features & VBLK_F_RO))
		return -EPERM;
	if (len == 0)
		return 0;
	u64 size = d->capacity * 512;
	if (off >= size)
		return write ? -ENOSPC : 0;
	if (len > size - off)
		len = size - off;
	if (!d->ok && !vdev_setup(d))
		return -EIO;
	u64 done = 0;
	while (done < len) {
		u64 pos = off + done, sector = pos / 512;
		unsigned in = pos % 512;
		u64 n;
		int st;
		if (in || len - done < 512) {
			/* partial sector: read it, patch or copy out, write back */
			n = 512 - in;
			if (n > len - done)
				n = len - done;
			struct seg b = { d->req_pa + REQ_BOUNCE, 512, true };
			st = blk_request(d, VBLK_T_IN, sector, &b, 1);
			if (st == 0 && write) {
				memcpy(d->req + REQ_BOUNCE + in, (const void *)(ubuf + done), n);
				b.write = false;
				st = blk_request(d, VBLK_T_OUT, sector, &b, 1);
			} else if (st == 0) {
				memcpy((void *)(ubuf + done), d->req + REQ_BOUNCE + in, n);
			}
		} else {
			struct seg s[VQ_WANT_SIZE];
			unsigned max = d->vq.size - 2;
			if (d->seg_max && d->seg_max < max)
				max = d->seg_max;
			u64 want = ALIGN_DOWN(len - done, 512);
			if (want > BLK_MAX_BYTES)
				want = BLK_MAX_BYTES;
			int ns = user_segs(ubuf + done, want, !write, s, max, &n);
			if (ns < 0)
				return done ? (i64)done : ns;
			u64 trim = n % 512;   /* whole sectors only */
			n -= trim;
			while (trim) {
				u32 cut = trim < s[ns - 1].len ? (u32)trim : s[ns - 1].len;
				s[ns - 1].len -= cut;
				trim -= cut;
				if (!s[ns - 1].len)
					ns--;
			}
			if (n == 0 || ns == 0)
				return done ? (i64)done : -EIO;
			st = blk_request(d, write ? VBLK_T_OUT : VBLK_T_IN, sector, s, ns);
		}
		if (st != 0)
			return done ? (i64)done : -EIO;
		done += n;
	}
	return done;
}

i64 blk_flush(int i)
{
	struct vdev *d = blk_dev(i);
	if (!d)
		return -ENXIO;
	if (!(d->features & VBLK_F_FLUSH))
		return 0;
	if (!d->ok && !vdev_setup(d))
		return -EIO;
	return blk_request(d, VBLK_T_FLUSH, 0, NULL, 0) == 0 ? 0 : -EIO;
}

void blk_flush_all(void)
{
	for (unsigned i = 0; i < nr_blks; i++)
		if (!(blks[i]->features & VBLK_F_RO))
			blk_flush(i);
}

/* ---- virtio-console (transmit only) ---- */

bool hvc_present(void) { return hvc != NULL; }

i64 hvc_write(u64 ubuf, u64 len)
{
	if (!hvc)
		return -ENXIO;
	if (!hvc->ok && !vdev_setup(hvc))
		return -EIO;
	u64 done = 0;
	while (done < len) {
		struct seg s[VQ_WANT_SIZE];
		u64 n;
		u64 want = len - done < BLK_MAX_BYTES ? len - done : BLK_MAX_BYTES;
		int ns = user_segs(ubuf + done, want, false, s, hvc->vq.size, &n);
		if (ns <= 0)
			return done ? (i64)done : ns < 0 ? ns : -EIO;
		u32 ulen;
		if (vdev_run(hvc, s, ns, &ulen) < 0)
			return done ? (i64)done : -EIO;
		done += n;
	}
	return done;
}

/* ---- virtio-rng ---- */

/* Fill buf (kernel memory or a validated user range) from virtio-rng as far
 * as it goes; returns the bytes filled (0 without a device). */
size_t virtio_rng_fill(void *buf, size_t n)
{
	if (!rngdev)
		return 0;
	size_t done = 0;
	unsigned empty = 0;
	while (done < n && empty < 4) {
		if (!rngdev->ok && !vdev_setup(rngdev))
			break;
		u64 va = (u64)buf + done, chunk;
		struct seg s[VQ_WANT_SIZE];
		int ns = 1;
		if (va < USER_TOP) {   /* a validated user range: its pages, up to 64 KiB */
			ns = user_segs(va, n - done < BLK_MAX_BYTES ? n - done : BLK_MAX_BYTES, true, s,
				       rngdev->vq.size, &chunk);
			if (ns <= 0)
				break;
		} else {               /* kernel memory is physically contiguous */
			chunk = n - done < PAGE_SIZE ? n - done : PAGE_SIZE;
			s[0] = (struct seg){ virt_to_phys((void *)va), (u32)chunk, true };
		}
		u32 got;
		if (vdev_run(rngdev, s, ns, &got) < 0)
			break;
		if (got > chunk)
			got = (u32)chunk;
		if (got == 0)
			empty++;
		done += got;
	}
	return done;
}

/* ---- probing ---- */

static void add_device(u64 pa, unsigned slot, bool stop_on_missing, bool *stop)
{
	*stop = false;
	struct vdev *d = &vdevs[nr_vdevs];
	d->regs = mmio_map(pa);
	if (!d->regs) {
		*stop = true;
		return;
	}
	if (vr32(d, VMMIO_MAGIC) != VIRTIO_MAGIC_VALUE) {
		*stop = stop_on_missing;
		return;
	}
	u32 version = vr32(d, VMMIO_VERSION);
	u32 id = vr32(d, VMMIO_DEVICE_ID);
	if (id == 0)
		return;
	if (version != 2) {
		kprintf("trialos: virtio-mmio at 0x%lx: version %u (legacy) ignored\n", pa, version);
		return;
	}
	if (id != VDEV_BLK && id != VDEV_CONSOLE && id != VDEV_RNG)
		return;
	d->pa = pa;
	d->slot = slot;
	d->device_id = id;
	if ((id == VDEV_BLK && nr_blks == 26) || (id == VDEV_CONSOLE && hvc) || (id == VDEV_RNG && rngdev))
		return;
	d->ring_page = phys_to_virt(alloc_page());
	u64 rp = alloc_page();
	d->req = phys_to_virt(rp);
	d->req_pa = rp;
	if (id == VDEV_BLK)
		ksnprintf(d->name, sizeof d->name, "vd%c", 'a' + nr_blks);
	else
		memcpy(d->name, id == VDEV_CONSOLE ? "hvc0" : "rng", id == VDEV_CONSOLE ? 5 : 4);
	nr_vdevs++;
	if (!vdev_setup(d)) {
		kprintf("trialos: virtio %s at 0x%lx: initialisation failed\n", d->name, pa);
		/* keep the slot: the name stays bound to this device */
	}
	if (id == VDEV_BLK)
		blks[nr_blks++] = d;
	else if (id == VDEV_CONSOLE)
		hvc = d;
	else
		rngdev = d;
}

void virtio_init(void)
{
	bool stop;
	if (under_trialvm) {
		for (unsigned s = 0; s < TVM_VIRTIO_MMIO_SLOTS && nr_vdevs < MAX_VDEVS; s++) {
			add_device(TVM_VIRTIO_MMIO_BASE + (u64)s * TVM_VIRTIO_MMIO_STRIDE, s, true, &stop);
			if (stop)
				break;
		}
	} else {
		for (int s = MICROVM_VIRTIO_COUNT - 1; s >= 0 && nr_vdevs < MAX_VDEVS; s--) {
			add_device(MICROVM_VIRTIO_BASE + (u64)s * MICROVM_VIRTIO_SIZE, s, false, &stop);
			if (stop)
				break;
		}
	}
}
