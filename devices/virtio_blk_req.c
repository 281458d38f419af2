/* devices/virtio_blk_req.c - the virtio-blk request parser (virtio_blk.h).
 * Kept apart from the device so the fuzzer links it alone (it needs only
 * gmem_ptr). */
#include "virtio_blk.h"

#include <string.h>

#include "../vmm/util.h"

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* Copy [off, off+len) of a side (its segments) into buf; -1 if the side is
 * shorter or a segment is not RAM. */
static int gather(const struct virtq_seg *s, unsigned n, const struct guest_mem *m, uint64_t off, void *buf,
		  uint64_t len)
{
	uint8_t *p = buf;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		uint64_t take = s[i].len - off;
		if (take > len)
			take = len;
		uint64_t gpa;
		if (add_overflows(s[i].gpa, off, &gpa))
			return -1;
		const void *src = gmem_ptr_ro(m, gpa, take);
		if (!src)
			return -1;
		memcpy(p, src, take);
		p += take;
		len -= take;
		off = 0;
	}
	return len ? -1 : 0;
}

static int answer(struct blk_req *r, uint8_t status, const char *why)
{
	r->status = status;
	r->why = why;
	return 0;
}

/* [sector * 512, + len) inside the disk? */
static bool range_ok(uint64_t sector, uint64_t len, uint64_t cap_bytes, uint64_t *off)
{
	uint64_t end;
	if (mul_overflows(sector, BLK_SECTOR, off) || add_overflows(*off, len, &end))
		return false;
	return end <= cap_bytes;
}

int blk_parse_request(const struct virtq_elem *e, const struct guest_mem *m, uint64_t capacity_sectors, bool ro,
		      struct blk_req *r)
{
	memset(r, 0, sizeof(*r));
	r->status = VIRTIO_BLK_S_IOERR;
	if (e->n_out > VIRTQ_MAX_SEGS || e->n_in > VIRTQ_MAX_SEGS)
		return r->why = "too many segments", -1;
	uint64_t out_len = 0, in_len = 0;
	for (unsigned i = 0; i < e->n_out; i++)
		out_len += e->out[i].len; /* <= 256 * 4 GiB: no overflow */
	for (unsigned i = 0; i < e->n_in; i++)
		in_len += e->in[i].len;
	if (out_len != e->out_len || in_len != e->in_len)
		return r->why = "segment totals inconsistent", -1;
	if (in_len == 0)
		return r->why = "request without a writable status byte", -1;
	r->status_off = in_len - 1;
	uint8_t probe;
	if (gather(e->in, e->n_in, m, r->status_off, &probe, 1) < 0)
		return r->why = "status byte outside guest RAM", -1;

	uint64_t cap_bytes;
	if (mul_overflows(capacity_sectors, BLK_SECTOR, &cap_bytes))
		cap_bytes = UINT64_MAX;
	uint8_t hdr[BLK_HDR_LEN];
	if (out_len < BLK_HDR_LEN)
		return answer(r, VIRTIO_BLK_S_IOERR, "request header shorter than 16 bytes");
	if (gather(e->out, e->n_out, m, 0, hdr, BLK_HDR_LEN) < 0)
		return r->why = "request header outside guest RAM", -1;
	r->type = le32(hdr);
	r->sector = le64(hdr + 8);
	uint64_t data_len;

	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (r->type == VIRTIO_BLK_T_OUT) {
			if (ro)
				return answer(r, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
			data_len = out_len - BLK_HDR_LEN;
			r->data_off = BLK_HDR_LEN;
		} else {
			data_len = in_len - 1;
			r->data_off = 0;
		}
		if (data_len % BLK_SECTOR)
			return answer(r, VIRTIO_BLK_S_IOERR, "data length not a multiple of 512");
		if (data_len > BLK_MAX_DATA)
			return answer(r, VIRTIO_BLK_S_IOERR, "request larger than 1 GiB");
		if (!range_ok(r->sector, data_len, cap_bytes, &r->off))
			return answer(r, VIRTIO_BLK_S_IOERR, "sector range beyond the end of the disk");
		r->len = data_len;
		return answer(r, VIRTIO_BLK_S_OK, NULL);
	case VIRTIO_BLK_T_FLUSH:
		return answer(r, VIRTIO_BLK_S_OK, NULL);
	case VIRTIO_BLK_T_GET_ID:
		r->len = in_len - 1 < BLK_ID_BYTES ? in_len - 1 : BLK_ID_BYTES;
		return answer(r, VIRTIO_BLK_S_OK, NULL);
	case VIRTIO_BLK_T_WRITE_ZEROES: {
		if (ro)
			return answer(r, VIRTIO_BLK_S_UNSUPP, "write-zeroes on a read-only disk");
		data_len = out_len - BLK_HDR_LEN;
		if (data_len == 0 || data_len % BLK_WZ_SEG_LEN || data_len / BLK_WZ_SEG_LEN > BLK_WZ_MAX_SEG)
			return answer(r, VIRTIO_BLK_S_IOERR, "bad write-zeroes segment list");
		unsigned n = (unsigned)(data_len / BLK_WZ_SEG_LEN);
		uint8_t seg[BLK_WZ_MAX_SEG * BLK_WZ_SEG_LEN];
		if (gather(e->out, e->n_out, m, BLK_HDR_LEN, seg, data_len) < 0)
			return r->why = "write-zeroes segments outside guest RAM", -1;
		for (unsigned i = 0; i < n; i++) {
			const uint8_t *s = seg + i * BLK_WZ_SEG_LEN;
			uint64_t sector = le64(s);
			uint32_t nsec = le32(s + 8), flags = le32(s + 12);
			if (flags & ~BLK_WZ_F_UNMAP)
				return answer(r, VIRTIO_BLK_S_UNSUPP, "write-zeroes with reserved flags");
			if (nsec > BLK_WZ_MAX_SECTORS)
				return answer(r, VIRTIO_BLK_S_IOERR, "write-zeroes segment too large");
			struct blk_range *g = &r->ranges[i];
			g->len = (uint64_t)nsec * BLK_SECTOR;
			g->unmap = flags & BLK_WZ_F_UNMAP;
			if (!range_ok(sector, g->len, cap_bytes, &g->off))
				return answer(r, VIRTIO_BLK_S_IOERR, "write-zeroes range beyond the end of the disk");
		}
		r->nranges = n;
		return answer(r, VIRTIO_BLK_S_OK, NULL);
	}
	default:
		return answer(r, VIRTIO_BLK_S_UNSUPP, "unsupported request type");
	}
}
