/* tests/test_virtio.c - unit tests of the split virtqueue and the
 * virtio-mmio transport with the rng and console devices, over a fake guest
 * memory (two malloc'ed regions). A test "driver" sets the device up through
 * the register file and builds rings in that memory, well-formed and
 * hostile. Every hostile case must end with the device refusing
 * (DEVICE_NEEDS_RESET or the access ignored) and this process intact.
 * Also the core channel's frame parser (devices/core_channel.c), whole and
 * hostile frames in pieces of every size.
 * Prints "ok NAME" / "FAIL NAME: why"; exits 1 on any failure. The registry
 * part needs /dev/kvm (skipped without). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../devices/devices.h"
#include "../devices/virtio.h"
#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/util.h"
#include "../vmm/vm.h"

#include "check.h"
#include "fake_vm.c"

/* ------------------------------------------------------- fake guest RAM */

#define R0_SIZE (256u * 1024)       /* gpa 0 .. 256 KiB */
#define R1_GPA 0x100000000ull       /* 4 GiB */
#define R1_SIZE (64u * 1024)

static struct mem_region regions[2];
static struct guest_mem gm;

static void mem_init(void)
{
	static uint8_t *r0, *r1;
	if (!r0) {
		r0 = aligned_alloc(4096, R0_SIZE);
		r1 = aligned_alloc(4096, R1_SIZE);
	}
	memset(r0, 0, R0_SIZE);
	memset(r1, 0, R1_SIZE);
	regions[0] = (struct mem_region){ .gpa = 0, .size = R0_SIZE, .host = r0 };
	regions[1] = (struct mem_region){ .gpa = R1_GPA, .size = R1_SIZE, .host = r1 };
	gm = (struct guest_mem){ regions, 2 };
}

static uint8_t *G(uint64_t gpa) { return gmem_ptr(&gm, gpa, 1); }
static void put16(uint64_t gpa, uint16_t v) { memcpy(G(gpa), &v, 2); }
static void put32(uint64_t gpa, uint32_t v) { memcpy(G(gpa), &v, 4); }
static void put64(uint64_t gpa, uint64_t v) { memcpy(G(gpa), &v, 8); }
static uint16_t get16(uint64_t gpa) { uint16_t v; memcpy(&v, G(gpa), 2); return v; }
static uint32_t get32(uint64_t gpa) { uint32_t v; memcpy(&v, G(gpa), 4); return v; }

/* -------------------------------------------------------- test driver */

#define DESC 0x1000u
#define AVAIL 0x2000u
#define USED 0x3000u
#define QSIZE 8u

static struct virtio_mmio T;

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;
	virtio_mmio_access(&T, off, (uint8_t *)&v, 4, false);
	return v;
}
static void wr(uint64_t off, uint32_t v) { virtio_mmio_access(&T, off, (uint8_t *)&v, 4, true); }

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t d = DESC + 16ull * i;
	put64(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

/* Make chain `head` available in the next slot (driver's avail idx). */
static uint16_t drv_avail;
static void offer(uint16_t head)
{
	put16(AVAIL + 4 + 2 * (drv_avail % QSIZE), head);
	drv_avail++;
	put16(AVAIL + 2, drv_avail);
}
static uint16_t used_idx(void) { return get16(USED + 2); }
static bool needs_reset(void) { return rd(0x070) & VIRTIO_STATUS_NEEDS_RESET; }

/* Queue q of the current device: size, rings, ready. */
static void setup_queue(unsigned q, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(0x030, q);
	wr(0x038, size);
	wr(0x080, (uint32_t)desc);
	wr(0x084, (uint32_t)(desc >> 32));
	wr(0x090, (uint32_t)avail);
	wr(0x094, (uint32_t)(avail >> 32));
	wr(0x0a0, (uint32_t)used);
	wr(0x0a4, (uint32_t)(used >> 32));
	wr(0x044, 1);
}

/* The whole virtio 1.x initialisation up to DRIVER_OK, queue 0 (and 1 for
 * the console) at the standard rings. Returns false if a step failed. */
static bool bring_up(const struct virtio_dev_ops *ops)
{
	mem_init();
	drv_avail = 0;
	virtio_mmio_init(&T, &gm, ops, NULL);
	wr(0x070, 0);
	wr(0x070, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(0x014, 1);
	if (!(rd(0x010) & 1)) /* VERSION_1 */
		return false;
	wr(0x024, 1);
	wr(0x020, 1);
	wr(0x024, 0);
	wr(0x020, 0);
	wr(0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (!(rd(0x070) & VIRTIO_STATUS_FEATURES_OK))
		return false;
	setup_queue(0, QSIZE, DESC, AVAIL, USED);
	if (ops->num_queues > 1)
		setup_queue(1, QSIZE, DESC + 0x4000, AVAIL + 0x4000, USED + 0x4000);
	wr(0x070, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
			  VIRTIO_STATUS_DRIVER_OK);
	return rd(0x070) == 15 && rd(0x044) == 1;
}

/* A good rng request after a reset must work again: the device recovers. */
static bool rng_works_after_reset(void)
{
	if (!bring_up(&virtio_rng_ops))
		return false;
	set_desc(0, 0x10000, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(0x050, 0);
	return used_idx() == 1 && get32(USED + 4) == 0 && get32(USED + 8) == 64 && !needs_reset();
}

/* ------------------------------------------------------------- tests */

static void test_handshake(void)
{
	mem_init();
	virtio_mmio_init(&T, &gm, &virtio_rng_ops, NULL);
	CHECK("mmio-magic", rd(0x000) == 0x74726976);
	CHECK("mmio-version", rd(0x004) == 2);
	CHECK("mmio-device-id", rd(0x008) == 4);
	CHECK("mmio-vendor", rd(0x00c) == 0x4d5654);
	CHECK("mmio-queue-num-max", rd(0x034) == VIRTQ_MAX_SIZE);
	wr(0x030, 1);
	CHECK("mmio-queue-num-max-absent", rd(0x034) == 0);
	CHECK("mmio-shm-none", rd(0x0b0) == 0xffffffffu && rd(0x0b4) == 0xffffffffu);

	CHECK("handshake", bring_up(&virtio_rng_ops));
	/* Two chains: 100 + 28 bytes, and a single 4 KiB buffer at 4 GiB. */
	memset(G(0x10000), 0, 100);
	set_desc(0, 0x10000, 100, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, 0x20000, 28, VIRTQ_DESC_F_WRITE, 0);
	set_desc(5, R1_GPA, 4096, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	offer(5);
	wr(0x050, 0);
	CHECK("rng-used-idx", used_idx() == 2);
	CHECK("rng-used-elem0", get32(USED + 4) == 0 && get32(USED + 8) == 128);
	CHECK("rng-used-elem1", get32(USED + 12) == 5 && get32(USED + 16) == 4096);
	bool nonzero = false;
	for (int i = 0; i < 100; i++)
		nonzero |= G(0x10000)[i] != 0;
	CHECK("rng-bytes-written", nonzero);
	CHECK("rng-interrupt", rd(0x060) == 1);
	wr(0x064, 1);
	CHECK("rng-interrupt-ack", rd(0x060) == 0);
	/* A driver-readable buffer is simply not filled: written 0. */
	set_desc(2, 0x10000, 16, 0, 0);
	offer(2);
	wr(0x050, 0);
	CHECK("rng-readonly-chain", used_idx() == 3 && get32(USED + 4 + 16) == 2 && get32(USED + 8 + 16) == 0 &&
					    !needs_reset());
	/* Large request: capped at 64 KiB. */
	set_desc(3, 0x10000, 0x30000, VIRTQ_DESC_F_WRITE, 0);
	CHECK("rng-setup-big", gmem_ptr(&gm, 0x10000, 0x30000) != NULL);
	offer(3);
	wr(0x050, 0);
	CHECK("rng-capped", used_idx() == 4 && get32(USED + 8 + 24) == 65536);

	/* Status 0 resets everything. */
	wr(0x070, 0);
	CHECK("reset-status", rd(0x070) == 0 && rd(0x060) == 0);
	wr(0x030, 0);
	CHECK("reset-queue", rd(0x044) == 0 && !T.q[0].ready && T.q[0].size == VIRTQ_MAX_SIZE);
	CHECK("reset-features", T.driver_features == 0);
}

static void test_features(void)
{
	mem_init();
	virtio_mmio_init(&T, &gm, &virtio_rng_ops, NULL);
	wr(0x070, 3);
	wr(0x024, 0);
	wr(0x020, 0); /* no VERSION_1 */
	wr(0x070, 3 | VIRTIO_STATUS_FEATURES_OK);
	CHECK("features-need-version1", !(rd(0x070) & VIRTIO_STATUS_FEATURES_OK));
	wr(0x070, 0);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1 | 2); /* VERSION_1 + bit 33, not offered */
	wr(0x070, 3 | VIRTIO_STATUS_FEATURES_OK);
	CHECK("features-subset", !(rd(0x070) & VIRTIO_STATUS_FEATURES_OK));
	wr(0x070, 0);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1);
	wr(0x070, 3 | VIRTIO_STATUS_FEATURES_OK);
	CHECK("features-ok", rd(0x070) & VIRTIO_STATUS_FEATURES_OK);
	wr(0x020, 3);
	CHECK("features-frozen", T.driver_features == 1ull << 32);
	wr(0x070, 3 | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET);
	CHECK("driver-cannot-set-needs-reset", !needs_reset());
	wr(0x014, 7);
	CHECK("features-sel-high", rd(0x010) == 0);
}

/* One hostile chain: built by `build` after bring_up, then notified. */
static void hostile(const char *name, void (*build)(void))
{
	char n[96];
	bool up = bring_up(&virtio_rng_ops);
	build();
	wr(0x050, 0);
	bool refused = needs_reset() && used_idx() == 0 && (rd(0x060) & 2);
	snprintf(n, sizeof(n), "hostile-%s", name);
	CHECK(n, up && refused);
	/* Once failed, further notifications are ignored, even for good chains. */
	set_desc(7, 0x10000, 8, VIRTQ_DESC_F_WRITE, 0);
	put16(AVAIL + 4 + 2 * ((uint16_t)(drv_avail - 1) % QSIZE), 7);
	wr(0x050, 0);
	snprintf(n, sizeof(n), "hostile-%s-stays-failed", name);
	CHECK(n, needs_reset() && used_idx() == 0);
	snprintf(n, sizeof(n), "hostile-%s-recovers", name);
	CHECK(n, rng_works_after_reset());
}

static void b_loop(void)
{
	set_desc(0, 0x10000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, 0x10100, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	offer(0);
}
static void b_self_loop(void)
{
	set_desc(3, 0x10000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	offer(3);
}
static void b_long_loop(void)
{
	/* All 8 descriptors in one chain, the last pointing back: 9 hops. */
	for (unsigned i = 0; i < QSIZE; i++)
		set_desc(i, 0x10000 + 64 * i, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
	offer(0);
}
static void b_outside(void) { set_desc(0, 0x80000000ull, 8, VIRTQ_DESC_F_WRITE, 0), offer(0); }
static void b_straddle(void) { set_desc(0, R0_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0), offer(0); }
static void b_straddle_r1(void) { set_desc(0, R1_GPA + R1_SIZE - 1, 2, VIRTQ_DESC_F_WRITE, 0), offer(0); }
static void b_wrap(void) { set_desc(0, 0xfffffffffffffff0ull, 0x100, VIRTQ_DESC_F_WRITE, 0), offer(0); }
static void b_huge_len(void) { set_desc(0, 0x10000, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0), offer(0); }
static void b_zero_len_outside(void) { set_desc(0, 0x90000000ull, 0, VIRTQ_DESC_F_WRITE, 0), offer(0); }
static void b_write_then_read(void)
{
	set_desc(0, 0x10000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(1, 0x10100, 8, 0, 0);
	offer(0);
}
static void b_indirect(void) { set_desc(0, 0x10000, 32, VIRTQ_DESC_F_INDIRECT, 0), offer(0); }
static void b_head_oob(void) { offer(QSIZE); }
static void b_head_huge(void) { offer(0xffff); }
static void b_next_oob(void)
{
	set_desc(0, 0x10000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 200);
	offer(0);
}
static void b_avail_jump(void)
{
	set_desc(0, 0x10000, 8, VIRTQ_DESC_F_WRITE, 0);
	put16(AVAIL + 2, QSIZE + 1);
}
static void b_avail_backwards(void) { put16(AVAIL + 2, 0xffff); }

static void test_hostile_chains(void)
{
	hostile("loop", b_loop);
	hostile("self-loop", b_self_loop);
	hostile("chain-longer-than-queue", b_long_loop);
	hostile("addr-outside-ram", b_outside);
	hostile("straddles-ram-end", b_straddle);
	hostile("straddles-high-ram-end", b_straddle_r1);
	hostile("addr-len-wraps", b_wrap);
	hostile("len-4g", b_huge_len);
	hostile("zero-len-outside-ram", b_zero_len_outside);
	hostile("write-before-read", b_write_then_read);
	hostile("indirect", b_indirect);
	hostile("head-eq-size", b_head_oob);
	hostile("head-ffff", b_head_huge);
	hostile("next-beyond-size", b_next_oob);
	hostile("avail-idx-jump", b_avail_jump);
	hostile("avail-idx-backwards", b_avail_backwards);

	/* The longest legal chain (queue-size descriptors) is accepted, and
	 * exactly `size` pending chains are too. */
	bring_up(&virtio_rng_ops);
	for (unsigned i = 0; i < QSIZE; i++)
		set_desc(i, 0x10000 + 64 * i, 8, VIRTQ_DESC_F_WRITE | (i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0),
			 (uint16_t)(i + 1));
	offer(0);
	wr(0x050, 0);
	CHECK("chain-of-queue-size", used_idx() == 1 && get32(USED + 8) == 64 && !needs_reset());
	bring_up(&virtio_rng_ops);
	for (unsigned i = 0; i < QSIZE; i++) {
		set_desc(i, 0x10000 + 64 * i, 8, VIRTQ_DESC_F_WRITE, 0);
		offer((uint16_t)i);
	}
	wr(0x050, 0);
	CHECK("avail-exactly-size", used_idx() == QSIZE && !needs_reset());
}

/* One hostile ring layout: QueueReady must fail. */
static void bad_ring(const char *name, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	mem_init();
	virtio_mmio_init(&T, &gm, &virtio_rng_ops, NULL);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1);
	wr(0x070, 11);
	setup_queue(0, size, desc, avail, used);
	char n[96];
	snprintf(n, sizeof(n), "ring-%s", name);
	CHECK(n, rd(0x044) == 0 && needs_reset() && (rd(0x060) & 2));
	/* Notify on the refused queue: ignored. */
	wr(0x070, 15 | VIRTIO_STATUS_NEEDS_RESET);
	wr(0x050, 0);
	snprintf(n, sizeof(n), "ring-%s-recovers", name);
	CHECK(n, rng_works_after_reset());
}

static void test_hostile_rings(void)
{
	bad_ring("size-0", 0, DESC, AVAIL, USED);
	bad_ring("size-3", 3, DESC, AVAIL, USED);
	bad_ring("size-512", 512, DESC, AVAIL, USED);
	bad_ring("size-65536", 65536, DESC, AVAIL, USED);
	bad_ring("size-0x10100", 0x10100, DESC, AVAIL, USED);
	bad_ring("desc-misaligned", 8, DESC + 8, AVAIL, USED);
	bad_ring("avail-misaligned", 8, DESC, AVAIL + 1, USED);
	bad_ring("used-misaligned", 8, DESC, AVAIL, USED + 2);
	bad_ring("desc-outside", 8, 0x80000000ull, AVAIL, USED);
	bad_ring("desc-straddles", 8, R0_SIZE - 64, AVAIL, USED);
	bad_ring("avail-straddles", 8, DESC, R0_SIZE - 16, USED);
	bad_ring("used-straddles", 8, DESC, AVAIL, R1_GPA + R1_SIZE - 32);
	bad_ring("used-wraps", 8, DESC, AVAIL, 0xfffffffffffffff0ull);
	bad_ring("used-over-desc", 8, DESC, AVAIL, DESC + 64);
	bad_ring("avail-over-desc", 8, DESC, DESC + 16 * 8 - 2, USED);
	bad_ring("avail-over-used", 8, DESC, USED + 8, USED);
	bad_ring("all-same", 8, DESC, DESC, DESC);

	/* Rings in the high region and adjacent rings are fine. */
	mem_init();
	virtio_mmio_init(&T, &gm, &virtio_rng_ops, NULL);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1);
	wr(0x070, 11);
	setup_queue(0, 8, R1_GPA, R1_GPA + 128, R1_GPA + 128 + 24);
	CHECK("ring-adjacent-high", rd(0x044) == 1 && !needs_reset());
}

static void test_register_rules(void)
{
	CHECK("regs-bring-up", bring_up(&virtio_rng_ops));
	/* Queue registers are frozen while the queue is ready. */
	wr(0x030, 0);
	wr(0x038, 4);
	wr(0x080, 0x5000);
	wr(0x084, 1);
	wr(0x090, 0x6000);
	wr(0x0a0, 0x7000);
	CHECK("queue-regs-frozen", T.q[0].size == QSIZE && T.q[0].desc == DESC && T.q[0].avail == AVAIL &&
					   T.q[0].used == USED);
	/* Notifications for absent or unset queues are ignored. */
	wr(0x050, 1);
	wr(0x050, 4);
	wr(0x050, 0xffffffffu);
	CHECK("notify-absent-queue", !needs_reset() && rd(0x070) == 15);
	/* Queue 0 disabled, then notified: ignored. */
	wr(0x044, 0);
	set_desc(0, 0x10000, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(0x050, 0);
	CHECK("notify-unready-queue", used_idx() == 0 && !needs_reset());
	/* Re-enabled: indices restart; changes now allowed. */
	wr(0x038, 4);
	wr(0x044, 1);
	CHECK("queue-reenable", T.q[0].ready && T.q[0].size == 4 && T.q[0].last_avail == 0);

	/* Notify before DRIVER_OK is ignored, then served at DRIVER_OK. */
	mem_init();
	drv_avail = 0;
	virtio_mmio_init(&T, &gm, &virtio_rng_ops, NULL);
	wr(0x070, 3);
	wr(0x024, 1);
	wr(0x020, 1);
	wr(0x070, 11);
	setup_queue(0, QSIZE, DESC, AVAIL, USED);
	set_desc(0, 0x10000, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(0x050, 0);
	CHECK("notify-before-driver-ok", used_idx() == 0 && !needs_reset());
	wr(0x070, 15);
	CHECK("served-at-driver-ok", used_idx() == 1 && rd(0x060) == 1);

	/* Sub-width and misaligned accesses to registers read 0 and are
	 * ignored when written. */
	uint8_t b[8];
	memset(b, 0xaa, sizeof(b));
	virtio_mmio_access(&T, 0, b, 1, false);
	CHECK("byte-read-magic", b[0] == 0);
	memset(b, 0xaa, sizeof(b));
	virtio_mmio_access(&T, 0, b, 8, false);
	CHECK("qword-read-magic", memcmp(b, "\0\0\0\0\0\0\0\0", 8) == 0);
	memset(b, 0xaa, sizeof(b));
	virtio_mmio_access(&T, 2, b, 4, false);
	CHECK("misaligned-read", memcmp(b, "\0\0\0\0", 4) == 0);
	b[0] = 0;
	virtio_mmio_access(&T, 0x070, b, 1, true);
	CHECK("byte-write-status-ignored", rd(0x070) == 15);
	memset(b, 0, 8);
	virtio_mmio_access(&T, 0x070, b, 8, true);
	CHECK("qword-write-status-ignored", rd(0x070) == 15);
	wr(0x000, 0);
	wr(0x008, 99);
	CHECK("read-only-regs", rd(0x000) == 0x74726976 && rd(0x008) == 4);
	virtio_mmio_access(&T, 0x1000, b, 4, false);
	virtio_mmio_access(&T, 0xfffffffffffffffcull, b, 4, true);
	virtio_mmio_access(&T, 0x100, b, 3, false);
	CHECK("odd-accesses", rd(0x070) == 15);

	/* Every width at every offset, read and write: nothing may crash.
	 * Written values are a pattern; afterwards the device must still be
	 * resettable and work. */
	static const uint8_t pat[4][8] = { { 0 }, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
					   { 1, 0, 0, 0, 1, 0, 0, 0 }, { 0x0f, 0, 0, 0, 0, 0, 0, 0 } };
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	for (int p = 0; p < 4; p++)
		for (uint64_t off = 0; off <= 0x200; off++)
			for (int s = 0; s < 4; s++) {
				uint8_t d[8];
				virtio_mmio_access(&T, off, d, sizes[s], false);
				memcpy(d, pat[p], 8);
				virtio_mmio_access(&T, off, d, sizes[s], true);
			}
	CHECK("sweep-survived", rng_works_after_reset());
	/* The same sweep against the console (config space 12 bytes). */
	bring_up(&virtio_console_ops);
	for (int p = 0; p < 4; p++)
		for (uint64_t off = 0; off <= 0x200; off++)
			for (int s = 0; s < 4; s++) {
				uint8_t d[8];
				virtio_mmio_access(&T, off, d, sizes[s], false);
				memcpy(d, pat[p], 8);
				d[0] = p == 1 ? 'x' : d[0];
				virtio_mmio_access(&T, off, d, sizes[s], true);
			}
	CHECK("sweep-console-survived", rng_works_after_reset());
}

static bool tail_ends_with(const char *s)
{
	static uint8_t t[CONSOLE_TAIL];
	size_t n = console_tail(t, sizeof(t)), l = strlen(s);
	return n >= l && memcmp(t + n - l, s, l) == 0;
}

static void test_console(void)
{
	CHECK("console-bring-up", bring_up(&virtio_console_ops));
	CHECK("console-id", rd(0x008) == 3);
	uint8_t cfg[8];
	memset(cfg, 0xaa, sizeof(cfg));
	virtio_mmio_access(&T, 0x100, cfg, 8, false);
	CHECK("console-config-zero", memcmp(cfg, "\0\0\0\0\0\0\0\0", 8) == 0);
	memset(cfg, 0xaa, sizeof(cfg));
	virtio_mmio_access(&T, 0x10a, cfg, 4, false); /* 0x10a+4 > 0x10c */
	CHECK("console-config-beyond", memcmp(cfg, "\0\0\0\0", 4) == 0);
	uint32_t ch = '!';
	virtio_mmio_access(&T, 0x108, (uint8_t *)&ch, 4, true);
	CHECK("console-emerg-write", tail_ends_with("!"));

	/* transmitq (queue 1): two readable buffers in one chain. */
	const uint64_t d1 = DESC + 0x4000, a1 = AVAIL + 0x4000, u1 = USED + 0x4000;
	memcpy(G(0x10000), "hello ", 6);
	memcpy(G(R1_GPA + 100), "virtio\n", 7);
	put64(d1, 0x10000), put32(d1 + 8, 6), put16(d1 + 12, VIRTQ_DESC_F_NEXT), put16(d1 + 14, 1);
	put64(d1 + 16, R1_GPA + 100), put32(d1 + 24, 7), put16(d1 + 28, 0), put16(d1 + 30, 0);
	put16(a1 + 4, 0);
	put16(a1 + 2, 1);
	wr(0x050, 1);
	CHECK("console-tx", tail_ends_with("hello virtio\n") && get16(u1 + 2) == 1 && get32(u1 + 4) == 0 &&
				     get32(u1 + 8) == 0 && rd(0x060) == 1);
	/* receiveq buffers are kept (no input). */
	set_desc(0, 0x20000, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(0x050, 0);
	CHECK("console-rx-kept", used_idx() == 0 && !needs_reset());
	/* A hostile transmit chain fails the device; the process lives on. */
	put64(d1, 0x10000), put32(d1 + 8, 6), put16(d1 + 12, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT), put16(d1 + 14, 1);
	put16(d1 + 28, 0);
	put16(a1 + 6, 0);
	put16(a1 + 2, 2);
	wr(0x050, 1);
	CHECK("console-tx-write-then-read", needs_reset() && get16(u1 + 2) == 1);
}

/* The virtqueue functions directly: index wrap-around and copying. */
static void test_virtq_direct(void)
{
	mem_init();
	struct virtq q = { .size = 4, .ready = true, .desc = DESC, .avail = AVAIL, .used = USED };
	const char *why = NULL;
	CHECK("virtq-check-ok", virtq_check(&q, &gm, 256, &why) == 0);
	CHECK("virtq-check-max", virtq_check(&q, &gm, 2, &why) < 0 && why);
	q.last_avail = 0xfffe;
	q.used_idx = 0xfffe;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t d = DESC + 16 * i;
		put64(d, 0x10000 + 0x100 * i), put32(d + 8, 16), put16(d + 12, VIRTQ_DESC_F_WRITE), put16(d + 14, 0);
	}
	put16(AVAIL + 4 + 2 * 2, 1); /* slot 0xfffe & 3 = 2 */
	put16(AVAIL + 4 + 2 * 3, 2);
	put16(AVAIL + 4 + 2 * 0, 3);
	put16(AVAIL + 2, 1); /* 0xfffe, 0xffff, 0x0000 available */
	struct virtq_elem e;
	int got = 0;
	uint16_t heads[3];
	while (got < 4 && virtq_pop(&q, &gm, &e, &why) == 1) {
		if (got < 3)
			heads[got] = e.head;
		got++;
		virtq_push(&q, &gm, e.head, 16);
	}
	CHECK("virtq-wrap-pop", got == 3 && heads[0] == 1 && heads[1] == 2 && heads[2] == 3);
	CHECK("virtq-wrap-used", get16(USED + 2) == 1 && q.used_idx == 1 && get32(USED + 4 + 8 * 3) == 2);

	/* read/write across segments, with offsets. */
	memset(&e, 0, sizeof(e));
	e.n_out = 2;
	e.out[0] = (struct virtq_seg){ 0x10000, 3 };
	e.out[1] = (struct virtq_seg){ R1_GPA, 5 };
	memcpy(G(0x10000), "abc", 3);
	memcpy(G(R1_GPA), "defgh", 5);
	char buf[16] = { 0 };
	CHECK("virtq-read-all", virtq_read(&e, &gm, 0, buf, sizeof(buf)) == 8 && memcmp(buf, "abcdefgh", 8) == 0);
	CHECK("virtq-read-off", virtq_read(&e, &gm, 2, buf, 4) == 4 && memcmp(buf, "cdef", 4) == 0);
	CHECK("virtq-read-past", virtq_read(&e, &gm, 8, buf, 4) == 0 && virtq_read(&e, &gm, 100, buf, 4) == 0);
	e.n_in = 2;
	e.in[0] = (struct virtq_seg){ 0x20000, 2 };
	e.in[1] = (struct virtq_seg){ 0x20010, 2 };
	CHECK("virtq-write", virtq_write(&e, &gm, 1, "XYZW", 4) == 3 && memcmp(G(0x20000), "\0X", 2) == 0 &&
				     memcmp(G(0x20010), "YZ", 2) == 0);
	/* A segment that is (no longer) RAM stops the copy. */
	e.in[1] = (struct virtq_seg){ 0x90000000ull, 2 };
	CHECK("virtq-write-bad-seg", virtq_write(&e, &gm, 0, "XYZW", 4) == 2);
	/* pop on a queue that is not ready / has a bad size is a refusal. */
	struct virtq bad = { .size = 3, .ready = true, .desc = DESC, .avail = AVAIL, .used = USED };
	CHECK("virtq-pop-bad-size", virtq_pop(&bad, &gm, &e, &why) < 0);
	CHECK("virtq-push-bad-size", virtq_push(&bad, &gm, 0, 0) < 0);
}

/* The registry and the bus path: on a fake VM (no KVM), then on a real
 * one where /dev/kvm works. */
static void test_registry(bool real)
{
	virtio_mmio_reset_registry();
	char line[512];
	virtio_mmio_cmdline(line, sizeof(line));
	CHECK("registry-empty", virtio_mmio_count() == 0 && line[0] == 0);
	if (real && !kvm_usable()) {
		printf("skip registry-kvm: /dev/kvm is not usable (the same checks ran on a fake VM)\n");
		return;
	}
	struct tvm_err err;
	struct vm_config cfg = { .ram_size = 64ull << 20, .ncpus = 1 };
	for (int round = 0; round < 2; round++) { /* twice: --on-crash restart */
		virtio_mmio_reset_registry();
		struct vm *vm = real ? vm_create(&cfg, &err) : fake_vm_new(cfg.ram_size, 1);
		CHECK("registry-vm", vm != NULL);
		if (!vm) {
			printf("  %s\n", err.msg);
			return;
		}
		CHECK("registry-console", virtio_console_init(vm, &err) == 0);
		CHECK("registry-rng", virtio_rng_init(vm, &err) == 0);
		CHECK("registry-count", virtio_mmio_count() == 2);
		virtio_mmio_cmdline(line, sizeof(line));
		CHECK("registry-cmdline",
		      strcmp(line, "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6") == 0);
		char small[40];
		virtio_mmio_cmdline(small, sizeof(small));
		CHECK("registry-cmdline-short", strcmp(small, "virtio_mmio.device=4K@0xd0000000:5") == 0);
		uint32_t v = 0;
		bus_access(vm, BUS_MMIO, 0, TVM_VIRTIO_MMIO_BASE + 8, (uint8_t *)&v, 4, false);
		CHECK("registry-bus-console", v == 3);
		bus_access(vm, BUS_MMIO, 0, TVM_VIRTIO_MMIO_BASE + TVM_VIRTIO_MMIO_STRIDE + 8, (uint8_t *)&v, 4, false);
		CHECK("registry-bus-rng", v == 4);
		v = 0;
		bus_access(vm, BUS_MMIO, 0, TVM_VIRTIO_MMIO_BASE + 2 * TVM_VIRTIO_MMIO_STRIDE, (uint8_t *)&v, 4, false);
		CHECK("registry-next-slot-unclaimed", v != 0x74726976);
		struct virtio_mmio *t = NULL;
		CHECK("registry-slot-taken",
		      virtio_mmio_create(vm, 0, &virtio_rng_ops, NULL, &t, &err) < 0 && strstr(err.msg, "taken"));
		CHECK("registry-slot-beyond",
		      virtio_mmio_create(vm, TVM_VIRTIO_MMIO_SLOTS, &virtio_rng_ops, NULL, &t, &err) < 0);
		/* Fill every slot; the next init fails cleanly. */
		for (unsigned s = 2; s < TVM_VIRTIO_MMIO_SLOTS; s++)
			virtio_rng_init(vm, &err);
		CHECK("registry-full", virtio_rng_init(vm, &err) < 0 && virtio_mmio_count() == TVM_VIRTIO_MMIO_SLOTS);
		if (real)
			vm_destroy(vm);
		else
			fake_vm_free(vm);
	}
	virtio_mmio_reset_registry();
	CHECK("registry-reset", virtio_mmio_count() == 0);
}

/* ---------------------------------------- the core channel's frame parser */

/* A frame header: magic, signal, pid, length, name. */
static void frame_hdr(uint8_t h[CORE_FRAME_HDR], const char *magic, uint32_t sig, uint32_t pid, uint64_t len)
{
	memset(h, 0, CORE_FRAME_HDR);
	memcpy(h, magic, 8);
	memcpy(h + 8, &sig, 4);
	memcpy(h + 12, &pid, 4);
	memcpy(h + 16, &len, 8);
	memcpy(h + 24, "crash-test\x01xxxxxxxx", 16); /* no NUL of its own: the parser puts one */
}

/* Feed h then body (blen bytes) in pieces of `step`; the last result. */
static int feed(struct core_frame *f, const uint8_t *h, const uint8_t *body, size_t blen, size_t step, int *completions)
{
	static uint8_t all[CORE_FRAME_HDR + 256];
	memcpy(all, h, CORE_FRAME_HDR);
	memcpy(all + CORE_FRAME_HDR, body, blen);
	size_t n = CORE_FRAME_HDR + blen;
	int r = 0;
	bool said = false;
	*completions = 0;
	for (size_t at = 0; at < n; at += step) {
		const char *why = NULL;
		r = core_frame_feed(f, all + at, n - at < step ? n - at : step, &why);
		*completions += r == 1;
		said |= why != NULL;
		if (f->st == CORE_FRAME_BROKEN && !said)
			return -2; /* broken without a reason */
	}
	return r;
}

static void test_core_frames(void)
{
	static uint8_t buf[128];
	uint8_t h[CORE_FRAME_HDR], body[200];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(i * 7 + 1);
	int done;
	const size_t steps[] = { 1, 3, 40, 41, 1000 };
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		struct core_frame f = { .cap = sizeof(buf), .buf = buf };
		frame_hdr(h, "TVMCORE1", 11, 42, 100);
		int r = feed(&f, h, body, 100, steps[k], &done);
		char name[64];
		snprintf(name, sizeof(name), "core-frame-whole-step-%zu", steps[k]);
		CHECKF(name, r == 1 && done == 1 && f.info.signo == 11 && f.info.pid == 42 && f.info.len == 100 &&
				     f.info.data == buf && !memcmp(buf, body, 100) && !strcmp(f.info.comm, "crash-test\x01xxxx"),
		       "result %d, %d completions, signal %u pid %u len %llu comm '%s'", r, done, f.info.signo, f.info.pid,
		       (unsigned long long)f.info.len, f.info.comm);
	}
	static const struct { const char *name, *magic; uint32_t sig; uint64_t len; size_t blen; } bad[] = {
		{ "core-frame-bad-magic", "TVMCORE2", 11, 10, 10 },
		{ "core-frame-zero-length", "TVMCORE1", 11, 0, 0 },
		{ "core-frame-over-cap", "TVMCORE1", 11, 129, 129 },
		{ "core-frame-huge-length", "TVMCORE1", 11, UINT64_MAX, 8 },
		{ "core-frame-signal-0", "TVMCORE1", 0, 10, 10 },
		{ "core-frame-signal-65", "TVMCORE1", 65, 10, 10 },
		{ "core-frame-bytes-after", "TVMCORE1", 6, 10, 11 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(buf, 0xee, sizeof(buf));
		struct core_frame f = { .cap = sizeof(buf), .buf = buf };
		frame_hdr(h, bad[i].magic, bad[i].sig, 7, bad[i].len);
		int r = feed(&f, h, body, bad[i].blen, 3, &done);
		/* refused, and never a completion for a bad header; nothing past cap written */
		bool header_bad = i < 6;
		CHECKF(bad[i].name, f.st == CORE_FRAME_BROKEN && done == (header_bad ? 0 : 1) && (!header_bad || buf[0] == 0xee),
		       "result %d, state %d, %d completions", r, f.st, done);
		const char *why = NULL;
		char stays[64];
		snprintf(stays, sizeof(stays), "%s-stays-broken", bad[i].name);
		CHECKF(stays, core_frame_feed(&f, body, 5, &why) == -1, "accepted bytes after breaking");
	}
}

/* console_watch (snapshot checkpoint --at-console): matched across
 * writes, each source's '\r' skipped unless the needle holds one. */
static int watch_hits;
static void watch_hit(void *arg) { (void)arg, watch_hits++; }

static void test_console_watch(void)
{
	watch_hits = 0;
	console_watch("ready\n", watch_hit, NULL);
	console_put(CONSOLE_HVC0, (const uint8_t *)"almost rea", 10);
	console_put(CONSOLE_HVC0, (const uint8_t *)"dy\r", 3);
	CHECK("watch-not-yet", watch_hits == 0);
	console_put(CONSOLE_HVC0, (const uint8_t *)"\nready\n", 7);
	CHECK("watch-crlf-once", watch_hits == 1);
	watch_hits = 0;
	console_watch("ok\r\n", watch_hit, NULL);
	console_put(CONSOLE_SERIAL, (const uint8_t *)"ok\n", 3);
	CHECK("watch-cr-wanted", watch_hits == 0);
	console_put(CONSOLE_SERIAL, (const uint8_t *)"ok\r\n", 4);
	CHECK("watch-cr-matched", watch_hits == 1);
	console_unwatch();
}

int main(void)
{
	struct tvm_err err;
	console_open(NULL, true, &err); /* console output only into the tail */
	test_handshake();
	test_features();
	test_hostile_chains();
	test_hostile_rings();
	test_register_rules();
	test_console();
	test_console_watch();
	test_virtq_direct();
	test_core_frames();
	test_registry(false);
	test_registry(true);
	if (failures)
		printf("%d FAILED\n", failures);
	return failures ? 1 : 0;
}
