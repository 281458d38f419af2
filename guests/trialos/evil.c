/* Hostile-driver test suite (option trialos.evil[=vdX]): protocol violations
 * aimed at a virtio-blk device, one line per case:
 *     evil: CASE: refused            the device set DEVICE_NEEDS_RESET,
 *                                    returned IOERR/UNSUPP, ignored the
 *                                    request, or (transport cases) kept
 *                                    working unharmed
 *     evil: CASE: ACCEPTED (bad)     the device processed it as valid
 * After each case the device is reset and one good read must work again,
 * else a second line "evil: CASE: recheck FAILED (bad)". Finally
 * "evil: done N cases". That the VMM survived is shown by the next case
 * running at all. The buffers the device is asked to write are placed so
 * that a device which skips a check would visibly "succeed". */
#include "virtio.h"

#define EVIL_QSIZE 8
#define EM_DESC 0x0000     /* up to 2048 descriptors */
#define EM_AVAIL 0x8000    /* up to 0x2000 bytes */
#define EM_USED 0xa000     /* up to 0x5000 bytes */
#define EM_SIZE 0x10000
#define EM_MAX_QSIZE 2048

static u8 evil_mem[EM_SIZE] __attribute__((aligned(4096)));
static struct vdev *ed;
static unsigned ncases;
static u64 ram_end;
static u64 blk_want;

#define HDR_PA (ed->req_pa + REQ_HDR)
#define ST_PA (ed->req_pa + REQ_STATUS)
#define DATA_PA (ed->req_pa + REQ_BOUNCE)          /* 512 bytes, then REQ_SCRATCH */
#define EXTRA_PA (ed->req_pa + REQ_SCRATCH + 512)  /* 16 readable bytes */
#define ITAB_OFF (REQ_SCRATCH + 1024)              /* indirect table */

static void ev_hdr(u32 type, u64 sector)
{
	struct blk_hdr *h = (struct blk_hdr *)(ed->req + REQ_HDR);
	h->type = type;
	h->reserved = 0;
	h->sector = sector;
	ed->req[REQ_STATUS] = 0xff;
}

static void ev_desc(volatile struct vring_desc *t, u16 i, u64 addr, u32 len, u16 flags, u16 next)
{
	t[i].addr = addr;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = next;
}

/* hdr -> data(len, device-writable) -> status, in descriptors 0..2 */
static void ev_chain3(struct vq *q, u64 data, u32 len)
{
	struct seg s[3] = { { HDR_PA, sizeof(struct blk_hdr), false }, { data, len, true }, { ST_PA, 1, true } };
	vq_fill(q, s, 3);
}

/* Reset and bring the device up with a queue in evil_mem; non-zero
 * addresses override what the device is told. false: refused at setup
 * (QueueReady not kept, NEEDS_RESET or FAILED). */
static bool ev_init(struct vq *q, u32 size, u64 desc_pa, u64 avail_pa, u64 used_pa)
{
	vdev_reset(ed);
	if (!vdev_negotiate(ed, blk_want))
		return false;
	vq_layout(q, 0, (u16)size, evil_mem + EM_DESC, evil_mem + EM_AVAIL, evil_mem + EM_USED);
	for (unsigned i = 0; i < 16; i++)
		ev_desc(q->desc, i, 0, 0, 0, 0);
	for (unsigned i = 0; i < EVIL_QSIZE; i++)
		q->avail[2 + i] = 0;
	if (!vq_setup_regs(ed, 0, (u16)size, desc_pa ? desc_pa : q->desc_pa, avail_pa ? avail_pa : q->avail_pa,
			   used_pa ? used_pa : q->used_pa))
		return false;
	vw32(ed, VMMIO_STATUS, VST_ACK | VST_DRIVER | VST_FEATURES_OK | VST_DRIVER_OK);
	return !(vr32(ed, VMMIO_STATUS) & (VST_NEEDS_RESET | VST_FAILED));
}

/* Post head (avail idx += adv), wait briefly, judge. true = refused. */
static bool ev_kick(struct vq *q, u16 head, u16 adv, bool has_status)
{
	vq_post(ed, q, head, adv);
	u32 len = 0;
	int r = vq_wait(ed, q, POLL_TSC_SHORT, &len);
	if (r == VQ_NEEDS_RESET || r == VQ_TIMEOUT)
		return true;
	if (r != VQ_DONE)
		return false;   /* a used entry for a head we never made valid */
	if (!has_status)
		return len == 0;
	u8 s = ed->req[REQ_STATUS];
	if (s == VBLK_S_IOERR || s == VBLK_S_UNSUPP)
		return true;
	if (s == 0xff)
		return len == 0;
	return false;
}

/* A plain good read of sector 0 on an initialised evil queue. */
static bool ev_good(struct vq *q)
{
	ev_hdr(VBLK_T_IN, 0);
	ev_chain3(q, DATA_PA, 512);
	return !ev_kick(q, 0, 1, true);
}

/* ---- cases (each returns true when refused) ---- */

static bool c_desc_loop(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	/* readable only, so that nothing but the loop itself is wrong */
	ev_hdr(VBLK_T_OUT, 0);
	ev_desc(q.desc, 0, HDR_PA, 16, VRING_F_NEXT, 1);
	ev_desc(q.desc, 1, DATA_PA, 512, VRING_F_NEXT, 0);
	return ev_kick(&q, 0, 1, true);
}

static bool c_chain_too_long(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_OUT, 0);
	ev_desc(q.desc, 0, HDR_PA, 16, VRING_F_NEXT, 1);
	for (u16 i = 1; i < EVIL_QSIZE; i++)   /* 7 x 64 readable bytes, the last back to 0 */
		ev_desc(q.desc, i, DATA_PA + 64 * (i - 1), 64, VRING_F_NEXT, (i + 1) % EVIL_QSIZE);
	return ev_kick(&q, 0, 1, true);
}

static bool c_next_out_of_range(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	ev_desc(q.desc, 0, HDR_PA, 16, VRING_F_NEXT, 1);
	ev_desc(q.desc, 1, DATA_PA, 512, VRING_F_WRITE | VRING_F_NEXT, EVIL_QSIZE);
	ev_desc(q.desc, EVIL_QSIZE, ST_PA, 1, VRING_F_WRITE, 0);   /* just past the table */
	return ev_kick(&q, 0, 1, true);
}

static bool bad_buffer(u64 addr, u32 len)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	ev_chain3(&q, addr, len);
	return ev_kick(&q, 0, 1, true);
}

static bool c_buf_outside_ram(void) { return bad_buffer(ram_end + (16ull << 20), 512); }
static bool c_buf_straddle(void) { return bad_buffer(ram_end - 256, 512); }
static bool c_len_wraps(void) { return bad_buffer(0ull - 256, 512); }
static bool c_len_beyond_ram(void) { return bad_buffer(DATA_PA, 0xfffffe00u); }

static bool c_write_before_read(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	struct seg s[4] = { { HDR_PA, 16, false }, { DATA_PA, 512, true }, { EXTRA_PA, 16, false }, { ST_PA, 1, true } };
	vq_fill(&q, s, 4);
	return ev_kick(&q, 0, 1, true);
}

static bool c_indirect(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	volatile struct vring_desc *t = (volatile struct vring_desc *)(ed->req + ITAB_OFF);
	ev_desc(t, 0, HDR_PA, 16, VRING_F_NEXT, 1);
	ev_desc(t, 1, DATA_PA, 512, VRING_F_WRITE | VRING_F_NEXT, 2);
	ev_desc(t, 2, ST_PA, 1, VRING_F_WRITE, 0);
	ev_desc(q.desc, 0, ed->req_pa + ITAB_OFF, 3 * 16, VRING_F_INDIRECT, 0);
	return ev_kick(&q, 0, 1, true);
}

static bool c_used_over_desc(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, virt_to_phys(evil_mem + EM_DESC)))
		return true;
	q.used = (volatile u8 *)q.desc;
	ev_hdr(VBLK_T_IN, 0);
	ev_chain3(&q, DATA_PA, 512);
	q.last_used = ((volatile u16 *)q.used)[1];   /* what desc 0 holds there now */
	return ev_kick(&q, 0, 1, true);
}

static bool c_ring_outside_ram(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, ram_end + (16ull << 20), 0, 0))
		return true;
	return !ev_good(&q);
}

static bool c_ring_misaligned(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, virt_to_phys(evil_mem + EM_DESC + 8), 0, 0))
		return true;
	q.desc = (volatile struct vring_desc *)(evil_mem + EM_DESC + 8);
	return !ev_good(&q);
}

static bool qsize_case(u32 size)
{
	struct vq q;
	if (!ev_init(&q, size, 0, 0, 0))
		return true;
	return !ev_good(&q);
}

static bool c_qsize_0(void) { return qsize_case(0); }
static bool c_qsize_3(void) { return qsize_case(3); }
static u32 too_big;
static bool c_qsize_too_big(void) { return qsize_case(too_big); }

static bool c_head_out_of_range(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	/* a valid chain just past the table, at index EVIL_QSIZE */
	ev_desc(q.desc, EVIL_QSIZE, HDR_PA, 16, VRING_F_NEXT, EVIL_QSIZE + 1);
	ev_desc(q.desc, EVIL_QSIZE + 1, DATA_PA, 512, VRING_F_WRITE | VRING_F_NEXT, EVIL_QSIZE + 2);
	ev_desc(q.desc, EVIL_QSIZE + 2, ST_PA, 1, VRING_F_WRITE, 0);
	return ev_kick(&q, EVIL_QSIZE, 1, true);
}

static bool c_avail_idx_jump(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	ev_chain3(&q, DATA_PA, 512);   /* every ring slot names head 0 */
	return ev_kick(&q, 0, EVIL_QSIZE + 1, true);
}

static bool c_notify_bad_queue(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	static const u32 bad[] = { 1, 3, 7, 0xffff, 0x10000, 0xffffffffu };
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
		vw32(ed, VMMIO_QUEUE_NOTIFY, bad[i]);
	if (vr32(ed, VMMIO_STATUS) & VST_NEEDS_RESET)
		return true;
	return ev_good(&q);   /* ignored, and the real queue still works */
}

/* Byte offsets of registers a driver may write (and the legacy ones). */
static bool reg_writable(unsigned off)
{
	static const u16 w[][2] = {
		{ 0x014, 0x018 }, { 0x020, 0x02c }, { 0x030, 0x034 }, { 0x038, 0x044 }, { 0x044, 0x048 },
		{ 0x050, 0x054 }, { 0x064, 0x068 }, { 0x070, 0x074 }, { 0x080, 0x088 }, { 0x090, 0x098 },
		{ 0x0a0, 0x0a8 }, { 0x0ac, 0x0b0 }, { 0x0c0, 0x0c4 },
	};
	for (unsigned i = 0; i < sizeof w / sizeof w[0]; i++)
		if (off >= w[i][0] && off < w[i][1])
			return true;
	return false;
}

static u64 mmio_rd(volatile u8 *p, unsigned w)
{
	switch (w) {
	case 1: return *(volatile u8 *)p;
	case 2: return *(volatile u16 *)p;
	case 4: return *(volatile u32 *)p;
	default: return *(volatile u64 *)p;
	}
}

static void mmio_wr(volatile u8 *p, unsigned w, u64 v)
{
	switch (w) {
	case 1: *(volatile u8 *)p = (u8)v; break;
	case 2: *(volatile u16 *)p = (u16)v; break;
	case 4: *(volatile u32 *)p = (u32)v; break;
	default: *(volatile u64 *)p = v; break;
	}
}

/* Every width at every offset 0..0x1ff: reads; writes of all-ones to
 * read-only/reserved registers, of the value read back to config space
 * (not on the console, whose emerg_wr would print). The device must keep
 * working without a reset. */
static bool regs_case(struct vdev *d)
{
	if (!vdev_setup(d))
		return true;
	static const unsigned widths[4] = { 1, 2, 4, 8 };
	u64 sink = 0;
	for (unsigned off = 0; off < 0x200; off++)
		for (unsigned k = 0; k < 4; k++)
			sink += mmio_rd(d->regs + off, widths[k]);
	for (unsigned off = 0; off < 0x200; off++) {
		for (unsigned k = 0; k < 4; k++) {
			unsigned w = widths[k];
			if (off + w > 0x200)
				continue;
			if (off < 0x100) {
				bool ok = off + w <= 0x100;
				for (unsigned b = off; b < off + w && ok; b++)
					ok = !reg_writable(b);
				if (ok)
					mmio_wr(d->regs + off, w, ~0ull);
			} else if (d->device_id != VDEV_CONSOLE) {
				mmio_wr(d->regs + off, w, mmio_rd(d->regs + off, w));
			}
		}
	}
	(void)sink;
	u32 st = vr32(d, VMMIO_STATUS);
	if (st & VST_NEEDS_RESET)
		return true;
	if (d->device_id == VDEV_BLK && d->ok) {
		struct seg b = { d->req_pa + REQ_BOUNCE, 512, true };
		return blk_request(d, VBLK_T_IN, 0, &b, 1) == 0;
	}
	return (st & VST_DRIVER_OK) && !(st & VST_FAILED);
}

static bool blk_case(u32 type, u64 sector, u32 len, bool data_writable)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(type, sector);
	struct seg s[3] = { { HDR_PA, 16, false }, { DATA_PA, len, data_writable }, { ST_PA, 1, true } };
	vq_fill(&q, s, 3);
	return ev_kick(&q, 0, 1, true);
}

static bool c_blk_sector_beyond(void) { return blk_case(VBLK_T_IN, ed->capacity, 512, true); }
static bool c_blk_sector_straddle(void) { return blk_case(VBLK_T_IN, ed->capacity - 1, 1024, true); }
static bool c_blk_sector_overflow(void) { return blk_case(VBLK_T_IN, 1ull << 55, 512, true); }
static bool c_blk_write_beyond(void) { return blk_case(VBLK_T_OUT, ed->capacity, 512, false); }
static bool c_blk_len_not_512(void) { return blk_case(VBLK_T_IN, 0, 100, true); }
static bool c_blk_bad_type(void) { return blk_case(0x12345, 0, 512, true); }

static bool c_blk_no_status(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	struct seg s = { HDR_PA, 16, false };
	vq_fill(&q, &s, 1);
	return ev_kick(&q, 0, 1, false);
}

static bool c_blk_short_header(void)
{
	struct vq q;
	if (!ev_init(&q, EVIL_QSIZE, 0, 0, 0))
		return true;
	ev_hdr(VBLK_T_IN, 0);
	struct seg s[3] = { { HDR_PA, 8, false }, { DATA_PA, 512, true }, { ST_PA, 1, true } };
	vq_fill(&q, s, 3);
	return ev_kick(&q, 0, 1, true);
}

/* ---- driver ---- */

static void recheck(struct vdev *d, const char *name)
{
	bool ok = vdev_setup(d);
	if (ok && d->device_id == VDEV_BLK) {
		struct seg b = { d->req_pa + REQ_BOUNCE, 512, true };
		ok = blk_request(d, VBLK_T_IN, 0, &b, 1) == 0;
	}
	if (!ok)
		kprintf("evil: %s: recheck FAILED (bad)\n", name);
}

static void run(const char *name, bool (*fn)(void))
{
	bool refused = fn();
	ncases++;
	kprintf("evil: %s: %s\n", name, refused ? "refused" : "ACCEPTED (bad)");
	recheck(ed, name);
}

void evil_run(const char *target)
{
	for (unsigned i = 0; i < nr_vdevs && !ed; i++)
		if (vdevs[i].device_id == VDEV_BLK && !strcmp(vdevs[i].name, target))
			ed = &vdevs[i];
	if (!ed || !ed->ok) {
		kprintf("evil: no usable virtio-blk device %s\n", target);
		kprintf("evil: done 0 cases\n");
		return;
	}
	ram_end = mm_ram_end();
	blk_want = ed->features & ~VF_VERSION_1;
	vw32(ed, VMMIO_QUEUE_SEL, 0);
	u32 max = vr32(ed, VMMIO_QUEUE_NUM_MAX);
	kprintf("evil: target %s (virtio-mmio 0x%lx, %lu sectors, QueueNumMax %u, RAM end 0x%lx)\n", ed->name,
		ed->pa, ed->capacity, max, ram_end);

	run("desc-loop", c_desc_loop);
	run("chain-too-long", c_chain_too_long);
	run("next-out-of-range", c_next_out_of_range);
	run("buf-outside-ram", c_buf_outside_ram);
	run("buf-straddles-ram-end", c_buf_straddle);
	run("len-wraps", c_len_wraps);
	run("len-beyond-ram", c_len_beyond_ram);
	run("write-before-read", c_write_before_read);
	run("indirect", c_indirect);
	run("used-over-desc", c_used_over_desc);
	run("ring-outside-ram", c_ring_outside_ram);
	run("ring-misaligned", c_ring_misaligned);
	run("qsize-0", c_qsize_0);
	run("qsize-3", c_qsize_3);
	too_big = 1;
	while (too_big <= max)
		too_big *= 2;
	if (too_big <= EM_MAX_QSIZE)
		run("qsize-too-big", c_qsize_too_big);
	else
		kprintf("evil: qsize-too-big: skipped (QueueNumMax %u)\n", max);
	run("head-out-of-range", c_head_out_of_range);
	run("avail-idx-jump", c_avail_idx_jump);
	run("notify-unset-queue", c_notify_bad_queue);
	for (unsigned i = 0; i < nr_vdevs; i++) {
		char name[24];
		ksnprintf(name, sizeof name, "regs-%s", vdevs[i].name);
		bool refused = regs_case(&vdevs[i]);
		ncases++;
		kprintf("evil: %s: %s\n", name, refused ? "refused" : "ACCEPTED (bad)");
		recheck(&vdevs[i], name);
	}
	run("blk-sector-beyond", c_blk_sector_beyond);
	run("blk-sector-straddles-end", c_blk_sector_straddle);
	run("blk-sector-overflow", c_blk_sector_overflow);
	run("blk-write-beyond", c_blk_write_beyond);
	run("blk-len-not-512", c_blk_len_not_512);
	run("blk-unknown-type", c_blk_bad_type);
	run("blk-no-status", c_blk_no_status);
	run("blk-short-header", c_blk_short_header);
	kprintf("evil: done %u cases\n", ncases);
}
