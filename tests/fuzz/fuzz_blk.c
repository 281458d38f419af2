/* tests/fuzz/fuzz_blk.c - libFuzzer harness for the virtio-blk request
 * parser, blk_parse_request() (devices/virtio_blk_req.c): the input is a
 * descriptor chain description followed by a guest memory image. The chain
 * is given to the parser as the transport would hand it over, except that
 * nothing in it is trusted (addresses may lie outside RAM, the totals may
 * be wrong). After parsing, the harness checks the parser's promises
 * (virtio_blk.h) and aborts on any broken one.
 *
 * Input layout (little-endian):
 *   0  u8  flags        bit 0: read-only disk; bit 1: keep the totals
 *                       as given below instead of computing them
 *   1  u8  n_out        readable segments (taken modulo 9)
 *   2  u8  n_in         writable segments (taken modulo 9)
 *   3  u8  reserved
 *   4  u64 capacity     disk capacity in 512-byte sectors
 *  12  u64 out_len      (used with flags bit 1)
 *  20  u64 in_len
 *  28  n_out + n_in x { u64 gpa, u32 len }   out segments, then in
 *   .. memory image: guest RAM at gpa 0 (at most 64 KiB), its own
 *      exact-size allocation so ASan sees any access past its end
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_blk.h"

#define HDR 28
#define SEG 12
#define MAX_MEM (64u * 1024)

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static struct virtq_elem e;

#define REQUIRE(c)                  \
	do {                        \
		if (!(c))           \
			abort();    \
	} while (0)

static bool in_disk(uint64_t off, uint64_t len, uint64_t cap)
{
	uint64_t cap_bytes, end;
	if (__builtin_mul_overflow(cap, 512, &cap_bytes))
		cap_bytes = UINT64_MAX;
	return !__builtin_add_overflow(off, len, &end) && end <= cap_bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < HDR)
		return 0;
	bool ro = data[0] & 1, raw_totals = data[0] & 2;
	unsigned n_out = data[1] % 9, n_in = data[2] % 9;
	uint64_t cap = rd64(data + 4);
	size_t need = HDR + (size_t)(n_out + n_in) * SEG;
	if (len < need)
		return 0;
	memset(&e, 0, sizeof(e));
	e.n_out = n_out;
	e.n_in = n_in;
	const uint8_t *s = data + HDR;
	for (unsigned i = 0; i < n_out; i++, s += SEG) {
		e.out[i] = (struct virtq_seg){ rd64(s), rd32(s + 8) };
		e.out_len += e.out[i].len;
	}
	for (unsigned i = 0; i < n_in; i++, s += SEG) {
		e.in[i] = (struct virtq_seg){ rd64(s), rd32(s + 8) };
		e.in_len += e.in[i].len;
	}
	uint64_t true_out = e.out_len, true_in = e.in_len;
	if (raw_totals) {
		e.out_len = rd64(data + 12);
		e.in_len = rd64(data + 20);
	}
	size_t memlen = len - need;
	if (memlen > MAX_MEM)
		memlen = MAX_MEM;
	uint8_t *ram = malloc(memlen ? memlen : 1);
	if (!ram)
		abort();
	memcpy(ram, data + need, memlen);
	struct mem_region r = { 0, memlen, ram };
	struct guest_mem m = { &r, memlen ? 1 : 0 };

	struct blk_req q;
	int rc = blk_parse_request(&e, &m, cap, ro, &q);
	if (rc < 0) {
		REQUIRE(q.why != NULL);
	} else {
		REQUIRE(rc == 0);
		REQUIRE(e.out_len == true_out && e.in_len == true_in);
		REQUIRE(true_in >= 1 && q.status_off == true_in - 1);
		REQUIRE(q.status == VIRTIO_BLK_S_OK || q.status == VIRTIO_BLK_S_IOERR ||
			q.status == VIRTIO_BLK_S_UNSUPP);
		REQUIRE(q.status == VIRTIO_BLK_S_OK || q.why != NULL);
		if (q.status == VIRTIO_BLK_S_OK) {
			switch (q.type) {
			case VIRTIO_BLK_T_OUT:
				REQUIRE(!ro);
				REQUIRE(q.data_off == BLK_HDR_LEN && q.data_off + q.len == true_out);
				/* fallthrough */
			case VIRTIO_BLK_T_IN:
				REQUIRE(q.len % BLK_SECTOR == 0 && q.len <= BLK_MAX_DATA);
				REQUIRE(q.off / BLK_SECTOR == q.sector && q.off % BLK_SECTOR == 0);
				REQUIRE(in_disk(q.off, q.len, cap));
				if (q.type == VIRTIO_BLK_T_IN)
					REQUIRE(q.data_off == 0 && q.len == true_in - 1);
				break;
			case VIRTIO_BLK_T_FLUSH:
				break;
			case VIRTIO_BLK_T_GET_ID:
				REQUIRE(q.len <= BLK_ID_BYTES && q.len <= q.status_off);
				break;
			case VIRTIO_BLK_T_WRITE_ZEROES:
				REQUIRE(!ro && q.nranges >= 1 && q.nranges <= BLK_WZ_MAX_SEG);
				for (unsigned i = 0; i < q.nranges; i++)
					REQUIRE(in_disk(q.ranges[i].off, q.ranges[i].len, cap) &&
						q.ranges[i].len <= (uint64_t)BLK_WZ_MAX_SECTORS * BLK_SECTOR);
				break;
			default:
				abort(); /* OK for a type the device does not know */
			}
		}
	}
	free(ram);
	return 0;
}
