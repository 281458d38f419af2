/* devices/virtio_blk.h - virtio-blk request format and the pure request
 * parser (used by devices/virtio_blk.c and tests/fuzz/fuzz_blk.c).
 * Facts from the virtio 1.x specification, "Block Device". */
#ifndef TVM_VIRTIO_BLK_H
#define TVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "devices.h"
#include "virtio.h"

#define VIRTIO_ID_BLOCK 2

/* Feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

/* Status byte. */
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define BLK_SECTOR 512u
#define BLK_HDR_LEN 16u       /* le32 type, le32 reserved, le64 sector */
#define BLK_ID_BYTES 20u
/* Largest data transfer of one request (Linux sends at most a few MiB). */
#define BLK_MAX_DATA (1ull << 30)
/* Data segments per request (config seg_max): the queue size less the
 * header and status descriptors. */
#define BLK_SEG_MAX (VIRTQ_MAX_SIZE - 2)
/* WRITE_ZEROES limits (config max_write_zeroes_seg / _sectors). */
#define BLK_WZ_MAX_SEG 16u
#define BLK_WZ_MAX_SECTORS (1u << 22) /* 2 GiB */
#define BLK_WZ_SEG_LEN 16u     /* le64 sector, le32 num_sectors, le32 flags */
#define BLK_WZ_F_UNMAP 1u

/* Device configuration space as trialvm fills it (offsets per the spec). */
#define BLK_CFG_CAPACITY 0           /* le64, in 512-byte sectors */
#define BLK_CFG_SEG_MAX 12           /* le32 */
#define BLK_CFG_BLK_SIZE 20          /* le32 */
#define BLK_CFG_NUM_QUEUES 34        /* le16 */
#define BLK_CFG_MAX_WZ_SECTORS 48    /* le32 */
#define BLK_CFG_MAX_WZ_SEG 52        /* le32 */
#define BLK_CFG_WZ_MAY_UNMAP 56      /* u8 */
#define BLK_CFG_SIZE 60

struct blk_range {
	uint64_t off, len; /* bytes on the disk */
	bool unmap;
};

/* One request, parsed and validated. Offsets into the chain count bytes
 * of the readable side (out) or the writable side (in), as virtq_read()/
 * virtq_write() take them. */
struct blk_req {
	uint32_t type;
	uint64_t sector;
	uint64_t off;         /* IN/OUT: first byte on the disk (sector * 512) */
	uint64_t len;         /* IN/OUT: data bytes; GET_ID: id bytes to write */
	uint64_t data_off;    /* OUT: where the data starts on the out side
	                         (BLK_HDR_LEN); IN/GET_ID: 0 on the in side */
	uint64_t status_off;  /* the status byte: the last byte of the in side */
	uint8_t status;       /* VIRTIO_BLK_S_OK: execute the request; else
	                         complete it at once with this status */
	unsigned nranges;     /* WRITE_ZEROES */
	struct blk_range ranges[BLK_WZ_MAX_SEG];
	const char *why;      /* static text: why status != OK, or why -1 */
};

/* Parse the chain `e` of a virtio-blk request. Pure: it reads guest memory
 * through m (gmem_ptr) and nothing else, and trusts nothing in e (segment
 * counts, totals and addresses are all checked).
 * Returns 0 when a status byte can be written: out->status is OK for a
 * request to execute (its ranges checked against capacity_sectors with
 * checked arithmetic), else IOERR (header too short, sector * 512
 * overflows, offset + length beyond the disk, length not a multiple of
 * 512, write on a read-only disk, more than BLK_MAX_DATA) or UNSUPP (an
 * unknown type, DISCARD, WRITE_ZEROES on a read-only disk or with reserved
 * flags set).
 * Returns -1 when the chain is malformed (no writable byte for the status,
 * segment counts/totals inconsistent, a segment outside RAM): the device
 * cannot answer and should fail (virtio_fail) with out->why. */
int blk_parse_request(const struct virtq_elem *e, const struct guest_mem *m, uint64_t capacity_sectors, bool ro,
		      struct blk_req *out);

/* For unit tests and fuzzers: virtio_blk_add() without registering on the
 * bus; drive it with virtio_mmio_init(t, mem, virtio_blk_ops(b), b). */
int virtio_blk_open(const struct disk_spec *d, enum disk_mode mode, struct virtio_blk **out, struct tvm_err *err);
const struct virtio_dev_ops *virtio_blk_ops(struct virtio_blk *b);
/* virtio_blk_finish(b, false, ...) and free b: only for a device that no
 * transport uses any more (tests; the VMM keeps its devices to the end). */
void virtio_blk_free(struct virtio_blk *b);

#endif
