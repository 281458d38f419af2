/* vmm/evlog.h - the event log of a recorded run (issue "Record and
 * replay"): every input the guest received, in the order it received it.
 * One file per segment; a segment starts at a snapshot (or at boot) and
 * names it. Append-only, little-endian:
 *
 *   header (32 bytes): char magic[8] "TVMEVLG1"; u32 version (1);
 *                      u32 flags (bit 0: one vCPU, exactly replayable);
 *                      u8 snapshot id[16] (zero: the segment starts at boot)
 *   records:           u32 len (of the body, EVLOG_MIN_BODY..EVLOG_MAX_BODY);
 *                      u32 crc32 (zlib's, of the body); body
 *   body:              u8 type; u8 vcpu; u16 src (DATA) or 0; u32 0;
 *                      u64 seq (the vCPU's exit number, from 1); then
 *     EVLOG_EXIT:  u8 bus (1 port I/O, 2 MMIO); u8 dir (0 read, 1 write);
 *                  u16 size (1-8); u32 count (port I/O's rep count, else 1);
 *                  u64 address; size*count bytes: what a read returned to
 *                  the guest, what a write gave
 *     EVLOG_DATA:  the bytes a device took from a nondeterministic source
 *                  during exit `seq` (src: enum evlog_src); they precede
 *                  the exit's own record
 *     EVLOG_END:   u32 why (0: the run ended; 1: a crash; 2: the next
 *                  snapshot's segment follows); u32 0; u64 records before
 *
 * Durability: records are buffered and written when the buffer fills;
 * the file is fsync'ed when the segment ends (a snapshot, a crash, the
 * run's end). After a kill -9 the file may end in a torn record: the
 * reader cuts it at the last whole record and says so. A bad record with
 * whole records after it is corruption, and is refused. */
#ifndef TVM_VMM_EVLOG_H
#define TVM_VMM_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define EVLOG_MAGIC "TVMEVLG1"
#define EVLOG_VERSION 1u
#define EVLOG_HDR 32u
#define EVLOG_FRAME 8u
#define EVLOG_MIN_BODY 16u
#define EVLOG_MAX_BODY (16u + 16u + 65536u)
#define EVLOG_FLAG_EXACT 1u

enum evlog_type { EVLOG_EXIT = 1, EVLOG_DATA = 2, EVLOG_END = 3 };
/* EVLOG_SRC_DISK: not input but a check: a virtio-blk read's u64 byte
 * offset, u32 length and u32 CRC-32 of the bytes (which the snapshot and
 * the images reproduce); a replay compares its own. */
enum evlog_src { EVLOG_SRC_CLOCK = 1, EVLOG_SRC_RANDOM = 2, EVLOG_SRC_RNG = 3, EVLOG_SRC_DISK = 4, EVLOG_SRC_MAX = 4 };
enum evlog_end { EVLOG_END_RUN = 0, EVLOG_END_CRASH = 1, EVLOG_END_SNAPSHOT = 2, EVLOG_END_MAX = 2 };
const char *evlog_src_name(unsigned src);

/* ---- writing (the vCPU threads append; the main thread ends segments) */
struct evlog;
/* Create PATH (which must not exist) for a segment starting at snapshot
 * `id` (NULL: at boot). */
struct evlog *evlog_create(const char *path, const uint8_t id[16], bool exact, struct tvm_err *err);
/* Thread-safe. A write error is said once on stderr; recording stops and
 * evlog_close reports it. */
void evlog_exit(struct evlog *l, int vcpu, uint64_t seq, unsigned bus, bool write, unsigned size, uint32_t count,
		uint64_t addr, const void *data);
void evlog_data(struct evlog *l, int vcpu, uint64_t seq, unsigned src, const void *data, size_t len);
/* Write an END record, flush, fsync, close (l is freed); counts (may be
 * NULL) gets the segment's records and bytes, the END's included. -1 +
 * err when anything of the segment was not written. */
int evlog_close(struct evlog *l, unsigned why, uint64_t counts[2], struct tvm_err *err);
/* Records and bytes so far. */
void evlog_counts(const struct evlog *l, uint64_t *records, uint64_t *bytes);

/* ---- reading (hostile files) ---- */
struct evlog_rec {
	uint8_t type, vcpu;
	uint16_t src;
	uint64_t seq;
	/* EXIT */
	uint8_t bus, dir;
	uint16_t size;
	uint32_t count;
	uint64_t addr;
	/* EXIT and DATA: the bytes (valid until the next evlog_next) */
	const uint8_t *data;
	uint32_t len;
	/* END */
	uint32_t why;
	uint64_t before;
	uint64_t index;  /* this record's number in the file, from 0 */
	uint64_t offset; /* its frame's offset in the file */
};
struct evlog_reader {
	/* The source: a file (evlog_open) or a memory image (evlog_open_mem). */
	int fd;
	bool own_fd;
	const uint8_t *mem;
	uint64_t size, off, index;
	uint32_t version, flags;
	uint8_t id[16];
	bool torn;        /* the file ended in a torn record, cut there */
	uint64_t torn_at; /* its offset */
	bool ended;       /* an END record was read */
	uint64_t last_seq[64]; /* per vCPU: the last exit's number (each exit
	                          is the one after it; data belongs to the next) */
	uint8_t *body;    /* EVLOG_MAX_BODY bytes */
};
/* Open a segment (a regular file) and check its header. */
int evlog_open(const char *path, struct evlog_reader *r, struct tvm_err *err);
/* The same over an open descriptor of `size` bytes (not closed by the
 * reader; `what` names it in messages). */
int evlog_open_fd(int fd, uint64_t size, const char *what, struct evlog_reader *r, struct tvm_err *err);
/* The same over len bytes at buf (the fuzz harness, tests). */
int evlog_open_mem(const uint8_t *buf, size_t len, struct evlog_reader *r, struct tvm_err *err);
/* The next record: 1, 0 at the end (r->torn set when a torn tail was
 * cut), -1 + err for a corrupt file (which record, where, what). */
int evlog_next(struct evlog_reader *r, struct evlog_rec *rec, struct tvm_err *err);
void evlog_reader_close(struct evlog_reader *r);

#endif
