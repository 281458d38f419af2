/* tests/fuzz/fuzz_virtqueue.c - libFuzzer harness for the split virtqueue
 * (devices/virtqueue.c): the input is a little header with the queue
 * parameters followed by a guest memory image that holds the rings and
 * buffers the walker must survive.
 *
 * Input layout (little-endian):
 *   0  u16 size         QueueNum
 *   2  u16 max_size     the device's QueueNumMax
 *   4  u32 desc         ring addresses (guest-physical; RAM starts at 0)
 *   8  u32 avail
 *  12  u32 used
 *  16  u16 last_avail   device indices at start (as after many requests)
 *  18  u16 used_idx
 *  20  u32 split        RAM is split in two regions here: [0, split) at
 *                       gpa 0 and the rest at gpa 4 GiB
 *  24  u32 io_off       offset for virtq_read/virtq_write
 *  28  ...              memory image
 * Each region is its own exact-size allocation, so ASan sees any access
 * past a region's end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio.h"

#define HDR 28
#define MAX_MEM (256u * 1024)
#define HIGH_GPA 0x100000000ull

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < HDR)
		return 0;
	size_t memlen = len - HDR;
	if (memlen > MAX_MEM)
		memlen = MAX_MEM;
	size_t split = rd32(data + 20);
	if (split > memlen)
		split = memlen;
	/* malloc(0) may return NULL; regions of size 0 are left out. */
	uint8_t *lo = malloc(split ? split : 1), *hi = malloc(memlen - split ? memlen - split : 1);
	if (!lo || !hi)
		abort();
	memcpy(lo, data + HDR, split);
	memcpy(hi, data + HDR + split, memlen - split);
	struct mem_region r[2];
	int n = 0;
	if (split)
		r[n++] = (struct mem_region){ .gpa = 0, .size = split, .host = lo };
	if (memlen - split)
		r[n++] = (struct mem_region){ .gpa = HIGH_GPA, .size = memlen - split, .host = hi };
	struct guest_mem m = { r, n };

	struct virtq q = {
		.size = rd16(data),
		.desc = rd32(data + 4),
		.avail = rd32(data + 8),
		.used = rd32(data + 12),
		.last_avail = rd16(data + 16),
		.used_idx = rd16(data + 18),
	};
	/* Addresses with bit 31 set point into the high region. */
	if (q.desc & 0x80000000u)
		q.desc = HIGH_GPA + (q.desc & 0x7fffffffu);
	if (q.avail & 0x80000000u)
		q.avail = HIGH_GPA + (q.avail & 0x7fffffffu);
	if (q.used & 0x80000000u)
		q.used = HIGH_GPA + (q.used & 0x7fffffffu);
	uint16_t max_size = rd16(data + 2);
	uint32_t io_off = rd32(data + 24);
	const char *why = NULL;
	if (virtq_check(&q, &m, max_size, &why) == 0) {
		q.ready = true;
		static struct virtq_elem e;
		static uint8_t buf[8192];
		/* As a device would: until empty or refused, bounded. */
		for (unsigned i = 0; i < 2u * VIRTQ_MAX_SIZE; i++) {
			int r2 = virtq_pop(&q, &m, &e, &why);
			if (r2 <= 0)
				break;
			if (e.n_out + e.n_in > q.size || e.n_out > VIRTQ_MAX_SEGS || e.n_in > VIRTQ_MAX_SEGS)
				abort();
			uint64_t got = virtq_read(&e, &m, 0, buf, sizeof(buf));
			if (got > e.out_len)
				abort();
			virtq_read(&e, &m, io_off, buf, sizeof(buf));
			uint64_t w = virtq_write(&e, &m, io_off % 64, buf, sizeof(buf));
			if (w > e.in_len)
				abort();
			if (virtq_push(&q, &m, e.head, (uint32_t)w) < 0)
				abort(); /* the used ring was checked at ready and memory does not move */
		}
	}
	free(lo);
	free(hi);
	return 0;
}
