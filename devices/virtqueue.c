/* devices/virtqueue.c - the split virtqueue (virtio 1.x, "Split
 * Virtqueues"), device side. The rules are in virtio.h.
 *
 * Ring layout (all little-endian, as x86 is):
 *   descriptor table  size x { u64 addr; u32 len; u16 flags; u16 next; }
 *   available ring    u16 flags; u16 idx; u16 ring[size]; u16 used_event;
 *   used ring         u16 flags; u16 idx; { u32 id; u32 len; } ring[size]; u16 avail_event;
 * VIRTIO_F_EVENT_IDX is not offered, so used_event/avail_event are unused.
 *
 * The driver shares these rings with us and may change them at any moment,
 * from another vCPU. Every field is read once into a local and validated
 * there; every guest address goes through gmem_ptr() at the moment it is
 * used, with its length.
 */
#include "virtio.h"

#include <string.h>

#include "../vmm/util.h"

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
_Static_assert(sizeof(struct vring_desc) == 16, "descriptor layout");

/* Byte sizes of the three rings for a queue of n entries (n <= 0xffff, so
 * none of these can overflow 64 bits). */
static uint64_t desc_bytes(uint64_t n) { return 16 * n; }
static uint64_t avail_bytes(uint64_t n) { return 6 + 2 * n; }
static uint64_t used_bytes(uint64_t n) { return 6 + 8 * n; }

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	/* Both ranges are known to lie in RAM, so a+alen and b+blen do not wrap. */
	return a < b + blen && b < a + alen;
}

int virtq_check(const struct virtq *q, const struct guest_mem *m, uint16_t max_size, const char **why)
{
	uint64_t n = q->size;
	if (n == 0) {
		*why = "queue size 0";
		return -1;
	}
	if (n & (n - 1)) {
		*why = "queue size is not a power of two";
		return -1;
	}
	if (n > max_size || n > VIRTQ_MAX_SIZE) {
		*why = "queue size above QueueNumMax";
		return -1;
	}
	if ((q->desc & 15) || (q->avail & 1) || (q->used & 3)) {
		*why = "ring address misaligned";
		return -1;
	}
	if (!gmem_ptr_ro(m, q->desc, desc_bytes(n))) {
		*why = "descriptor table outside guest RAM";
		return -1;
	}
	if (!gmem_ptr_ro(m, q->avail, avail_bytes(n))) {
		*why = "available ring outside guest RAM";
		return -1;
	}
	if (!gmem_ptr_ro(m, q->used, used_bytes(n))) {
		*why = "used ring outside guest RAM";
		return -1;
	}
	if (ranges_overlap(q->desc, desc_bytes(n), q->avail, avail_bytes(n)) ||
	    ranges_overlap(q->desc, desc_bytes(n), q->used, used_bytes(n)) ||
	    ranges_overlap(q->avail, avail_bytes(n), q->used, used_bytes(n))) {
		*why = "rings overlap each other";
		return -1;
	}
	return 0;
}

/* Load a u16 the driver may be writing concurrently. */
static int load16(const struct guest_mem *m, uint64_t gpa, uint16_t *out)
{
	const uint16_t *p = gmem_ptr_ro(m, gpa, 2);
	if (!p || ((uintptr_t)p & 1))
		return -1;
	*out = __atomic_load_n(p, __ATOMIC_RELAXED);
	return 0;
}

int virtq_pop(struct virtq *q, const struct guest_mem *m, struct virtq_elem *e, const char **why)
{
	uint16_t size = q->size;
	if (!q->ready || size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1))) {
		*why = "queue not ready";
		return -1;
	}
	uint16_t avail_idx;
	if (load16(m, q->avail + 2, &avail_idx) < 0) {
		*why = "available ring no longer in guest RAM";
		return -1;
	}
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending == 0)
		return 0;
	if (pending > size) {
		*why = "available index ran ahead by more than the queue size";
		return -1;
	}
	/* The ring entry and the descriptors were written before avail->idx:
	 * read them only after it. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	uint16_t head;
	if (load16(m, q->avail + 4 + 2 * (uint64_t)(q->last_avail & (size - 1)), &head) < 0) {
		*why = "available ring no longer in guest RAM";
		return -1;
	}
	if (head >= size) {
		*why = "head index beyond the queue size";
		return -1;
	}

	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	uint16_t idx = head;
	for (unsigned hops = 0;; hops++) {
		if (hops >= size) {
			*why = "descriptor chain longer than the queue (a loop?)";
			return -1;
		}
		const void *dp = gmem_ptr_ro(m, q->desc + 16 * (uint64_t)idx, sizeof(struct vring_desc));
		if (!dp) {
			*why = "descriptor table no longer in guest RAM";
			return -1;
		}
		struct vring_desc d;
		memcpy(&d, dp, sizeof(d)); /* one copy; only the copy is used */
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			*why = "indirect descriptor (not offered)";
			return -1;
		}
		if (!gmem_ptr_ro(m, d.addr, d.len)) {
			*why = "descriptor buffer outside guest RAM";
			return -1;
		}
		struct virtq_seg s = { d.addr, d.len };
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			/* hops < size <= VIRTQ_MAX_SEGS, so there is room. */
			e->in[e->n_in++] = s;
			e->in_len += d.len;
		} else {
			if (e->n_in) {
				*why = "readable descriptor after a writable one";
				return -1;
			}
			e->out[e->n_out++] = s;
			e->out_len += d.len;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			break;
		if (d.next >= size) {
			*why = "next descriptor index beyond the queue size";
			return -1;
		}
		idx = d.next;
	}
	q->last_avail++;
	return 1;
}

int virtq_push(struct virtq *q, const struct guest_mem *m, uint16_t head, uint32_t written)
{
	uint16_t size = q->size;
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -1;
	uint64_t slot = q->used_idx & (size - 1);
	uint8_t *elem = gmem_ptr(m, q->used + 4 + 8 * slot, 8);
	uint16_t *idxp = gmem_ptr(m, q->used + 2, 2);
	if (!elem || !idxp || ((uintptr_t)idxp & 1))
		return -1;
	uint32_t id = head;
	memcpy(elem, &id, 4);
	memcpy(elem + 4, &written, 4);
	q->used_idx++;
	/* The element must be visible before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(idxp, q->used_idx, __ATOMIC_RELAXED);
	/* ... and the index before the interrupt the caller raises next. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return 0;
}

static uint64_t copy_segs(const struct virtq_seg *segs, unsigned n, const struct guest_mem *m, uint64_t off,
			  uint8_t *buf, uint64_t len, bool to_guest)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		uint64_t slen = segs[i].len;
		if (off >= slen) {
			off -= slen;
			continue;
		}
		uint64_t chunk = slen - off;
		if (chunk > len - done)
			chunk = len - done;
		uint64_t gpa;
		if (add_overflows(segs[i].gpa, off, &gpa))
			break;
		/* Checked again now: memory layout never changes while a VM
		 * exists, but the accessor is the one place that knows. */
		if (to_guest) {
			uint8_t *p = gmem_ptr(m, gpa, chunk);
			if (!p)
				break;
			memcpy(p, buf + done, chunk);
		} else {
			const uint8_t *p = gmem_ptr_ro(m, gpa, chunk);
			if (!p)
				break;
			memcpy(buf + done, p, chunk);
		}
		done += chunk;
		off = 0;
	}
	return done;
}

uint64_t virtq_read(const struct virtq_elem *e, const struct guest_mem *m, uint64_t off, void *buf, uint64_t len)
{
	unsigned n = e->n_out < VIRTQ_MAX_SEGS ? e->n_out : VIRTQ_MAX_SEGS;
	return copy_segs(e->out, n, m, off, buf, len, false);
}

uint64_t virtq_write(const struct virtq_elem *e, const struct guest_mem *m, uint64_t off, const void *buf,
		     uint64_t len)
{
	unsigned n = e->n_in < VIRTQ_MAX_SEGS ? e->n_in : VIRTQ_MAX_SEGS;
	return copy_segs(e->in, n, m, off, (uint8_t *)buf, len, true);
}
