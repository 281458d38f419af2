/* trialos virtio: virtio-mmio (version 2) transport, split virtqueues polled
 * without interrupts, and the blk / console / rng drivers (virtio.c); the
 * hostile-driver test suite (evil.c). Internal to trialos. */
#ifndef TRIALOS_VIRTIO_H
#define TRIALOS_VIRTIO_H

#include "kernel.h"

/* virtio-mmio registers (virtio 1.x, "version 2") */
#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_VENDOR_ID 0x00c
#define VMMIO_DEV_FEATURES 0x010
#define VMMIO_DEV_FEATURES_SEL 0x014
#define VMMIO_DRV_FEATURES 0x020
#define VMMIO_DRV_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INT_STATUS 0x060
#define VMMIO_INT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC 0x080   /* low, high at +4 */
#define VMMIO_QUEUE_AVAIL 0x090
#define VMMIO_QUEUE_USED 0x0a0
#define VMMIO_CONFIG_GEN 0x0fc
#define VMMIO_CONFIG 0x100

#define VIRTIO_MAGIC_VALUE 0x74726976u /* "virt" */

#define VST_ACK 1
#define VST_DRIVER 2
#define VST_DRIVER_OK 4
#define VST_FEATURES_OK 8
#define VST_NEEDS_RESET 64
#define VST_FAILED 128

#define VF_VERSION_1 (1ull << 32)

#define VDEV_NET 1
#define VDEV_BLK 2
#define VDEV_CONSOLE 3
#define VDEV_RNG 4

#define VRING_F_NEXT 1
#define VRING_F_WRITE 2
#define VRING_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* virtio-blk */
#define VBLK_F_SIZE_MAX (1ull << 1)
#define VBLK_F_SEG_MAX (1ull << 2)
#define VBLK_F_RO (1ull << 5)
#define VBLK_F_BLK_SIZE (1ull << 6)
#define VBLK_F_FLUSH (1ull << 9)
#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_S_UNSUPP 2

struct vring_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

struct blk_hdr {
	u32 type, reserved;
	u64 sector;
};

/* One split virtqueue. The driver keeps at most one chain in flight, always
 * in descriptors 0.. (so no free list). */
struct vq {
	u16 size, index;
	volatile struct vring_desc *desc;
	volatile u16 *avail;      /* flags, idx, ring[size], used_event */
	volatile u8 *used;        /* u16 flags, u16 idx, {u32 id, u32 len}[size] */
	u64 desc_pa, avail_pa, used_pa;
	u16 avail_idx, last_used;
};

struct seg {
	u64 addr;
	u32 len;
	bool write;           /* device-writable */
};

struct vdev {
	volatile u8 *regs;
	u64 pa;
	unsigned slot;
	u32 device_id;
	bool ok;                  /* initialised and usable */
	u64 features;             /* negotiated */
	struct vq vq;             /* the queue in use (blk 0, console tx 1, rng 0) */
	u8 *ring_page;            /* kernel page for the queue (size <= 128) */
	u8 *req;                  /* kernel page: header, status, bounce sector */
	u64 req_pa;
	/* blk */
	u64 capacity;             /* in 512-byte sectors */
	u32 seg_max;
	char name[8];             /* "vda", "hvc0", "rng" */
};

/* request page layout */
#define REQ_HDR 0
#define REQ_STATUS 64
#define REQ_BOUNCE 512     /* 512 bytes */
#define REQ_SCRATCH 1024   /* rest of the page: evil-mode tables */

#define VQ_WANT_SIZE 64
#define POLL_TSC_NORMAL (1ull << 35)   /* ~10 s at 3 GHz */
#define POLL_TSC_SHORT (1ull << 30)    /* ~0.3 s: evil mode's "ignored" */

enum { VQ_DONE = 0, VQ_TIMEOUT = -1, VQ_NEEDS_RESET = -2, VQ_BAD_USED = -3 };

#define MAX_VDEVS 24
extern struct vdev vdevs[MAX_VDEVS];
extern unsigned nr_vdevs;

static inline u32 vr32(struct vdev *d, u32 off) { return *(volatile u32 *)(d->regs + off); }
static inline void vw32(struct vdev *d, u32 off, u32 v) { *(volatile u32 *)(d->regs + off) = v; }
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

/* transport */
void vdev_reset(struct vdev *d);
bool vdev_negotiate(struct vdev *d, u64 want);
bool vq_setup_regs(struct vdev *d, u16 index, u16 size, u64 desc_pa, u64 avail_pa, u64 used_pa);
void vq_layout(struct vq *q, u16 index, u16 size, void *desc, void *avail, void *used);
bool vdev_setup(struct vdev *d);          /* reset + full init for normal use */
void vq_post(struct vdev *d, struct vq *q, u16 head, u16 idx_advance);
int vq_wait(struct vdev *d, struct vq *q, u64 tsc_limit, u32 *len);
void vq_fill(struct vq *q, const struct seg *s, unsigned n);
/* blk: one request on the normal queue; returns the status byte, or -1 when
 * the device did not complete it (the device is then reset). */
int blk_request(struct vdev *d, u32 type, u64 sector, const struct seg *data, unsigned n);

void evil_run(const char *target);

#endif
