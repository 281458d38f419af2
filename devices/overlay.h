/* devices/overlay.h - a copy-on-write disk: a read-only master image plus an
 * overlay that holds every cluster the guest changed.
 *
 * The master is opened O_RDONLY and is never written. The overlay is two
 * files:
 *   PATH      the data file: sparse, exactly the master's size; a changed
 *             cluster lives at the same offset as in the master.
 *   PATH.map  the map: which clusters PATH holds (format below). It is only
 *             ever replaced whole: written to a new PATH.map.XXXXXX
 *             (random, O_EXCL), fsync'ed, renamed over PATH.map, directory
 *             fsync'ed. A map on disk is therefore never half-written, and
 *             no file that exists is truncated or removed.
 *
 * Durability: writes go to PATH at once but count only after overlay_flush():
 * it fdatasync()s PATH, then replaces PATH.map. After a crash (kill -9,
 * power loss) the next open sees exactly the clusters of the last flush;
 * a cluster first written after it reads from the master again (its bytes
 * in PATH are ignored and are overwritten whole on its next write).
 * Rewrites of a cluster that was already in the map before the flush land
 * in place, so after a crash they may or may not be visible, as on a real
 * disk with a volatile write cache (the guest sees VIRTIO_BLK_F_FLUSH).
 *
 * Map format, version 1 (all integers little-endian):
 *   off  size  field
 *     0     8  magic "TVMOVMAP"
 *     8     4  version = 1
 *    12     4  header size = 128 (the bitmap starts here)
 *    16     4  cluster size in bytes = 65536 (OVERLAY_CLUSTER)
 *    20     4  flags = 0 (reserved; any other value is rejected)
 *    24     8  disk size in bytes (= master size)
 *    32     8  number of clusters = ceil(disk size / cluster size)
 *    40     8  generation: 1 when created, +1 on every flush that wrote a map
 *    48    32  master identity: SHA-256 over le64(master size) followed by
 *              17 samples of the master: for k = 0..15 the bytes
 *              [o, min(o + 65536, size)) with o = (k * (size / 16)) rounded
 *              down to 65536, then the last min(65536, size) bytes.
 *              (About 1 MiB read at open; robust to copying and renaming,
 *              unlike mtime/inode; catches a different or re-built image,
 *              though not a change confined to unsampled bytes.)
 *    80    44  reserved, zero
 *   124     4  CRC-32 (zlib) of bytes 0..123
 *   128     n  bitmap, n = ceil(clusters / 8): bit (i % 8) of byte i / 8
 *              set = cluster i is in the data file; bits past the last
 *              cluster are zero
 * 128+n     4  CRC-32 (zlib) of the whole file before it (header + bitmap)
 * The file is exactly 128 + n + 4 bytes. Anything else (short, long, bad
 * magic, unknown version, bad CRC, different cluster size, disk size or
 * master identity, stray bits) is refused with a sentence naming PATH.map.
 *
 * An overlay is used by one process at a time: the data file carries a
 * flock() (exclusive for writers, shared for OVERLAY_INSPECT).
 *
 * Not thread-safe: callers serialise (virtio-blk calls it under the
 * transport's lock). I/O calls return 0 or a negative errno.
 */
#ifndef TVM_OVERLAY_H
#define TVM_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../vmm/vm.h"

#define OVERLAY_CLUSTER (64u * 1024u)
#define OVERLAY_MAP_MAGIC "TVMOVMAP"
#define OVERLAY_MAP_VERSION 1u
#define OVERLAY_MAP_HDR 128u
/* Largest master accepted: 16 TiB (a 32 MiB bitmap). */
#define OVERLAY_MAX_SIZE (16ull << 40)

struct overlay;

enum overlay_flags {
	/* Create PATH (O_EXCL, sparse, the master's size, fsync'ed) and an
	 * empty PATH.map (tmp + rename) when PATH does not exist; refused if
	 * PATH.map exists without PATH. Without it a missing PATH is an error. */
	OVERLAY_CREATE = 1u << 0,
	/* Open an existing overlay read-only, for inspection (diff, commit,
	 * crash reports): nothing is ever written, writes fail with -EROFS. */
	OVERLAY_INSPECT = 1u << 1,
};

/* Open `master` (O_RDONLY) and the overlay at `overlay_path`.
 * overlay_path NULL: read-only mode, every read comes from the master and
 * every write fails with -EROFS (flags are ignored).
 * Errors (-1, one sentence in *err naming the file at fault): master
 * missing/unreadable/not a regular file or block device/empty/larger than
 * OVERLAY_MAX_SIZE; overlay missing without OVERLAY_CREATE; PATH present but
 * PATH.map missing; PATH of the wrong size; a map that is truncated,
 * corrupt, of another version, for another master or another disk size;
 * the overlay locked by another process. */
int overlay_open(const char *master, const char *overlay_path, unsigned flags, struct overlay **out,
		 struct tvm_err *err);

/* Flush (unless read-only/inspect) and free everything. 0, or -1 with *err
 * when the final flush failed (the map on disk is then the previous one).
 * `ov` is freed in both cases; NULL is a no-op. */
int overlay_close(struct overlay *ov, struct tvm_err *err);

/* Free everything without flushing (a discard overlay about to be deleted,
 * or an error path): what was written since the last flush does not count.
 * NULL is a no-op. */
void overlay_abandon(struct overlay *ov);

/* Disk size in bytes (= the master's size). */
uint64_t overlay_size(const struct overlay *ov);
/* True when writes are refused (no overlay, or OVERLAY_INSPECT). */
bool overlay_readonly(const struct overlay *ov);
/* The data file's path (NULL without an overlay), and the master's. */
const char *overlay_path(const struct overlay *ov);
const char *overlay_master_path(const struct overlay *ov);

/* Read [off, off+len) of the merged disk into buf. -EINVAL when the range
 * is not inside the disk; -EIO (or the errno of a failed pread) otherwise. */
int overlay_read(struct overlay *ov, uint64_t off, void *buf, size_t len);

/* Write [off, off+len). The first write to a cluster copies it: the whole
 * cluster is read from the master, merged with buf and written to the data
 * file, then marked changed (in memory until the next flush).
 * -EINVAL out of range, -EROFS read-only, -EIO (or the pwrite errno) on
 * failure; after a failed fdatasync the overlay refuses all further writes
 * and flushes with -EIO (the state of the data file is no longer known). */
int overlay_write(struct overlay *ov, uint64_t off, const void *buf, size_t len);

/* Make [off, off+len) read as zeroes. Whole clusters become holes in the
 * data file (fallocate PUNCH_HOLE, else written zeroes); partial clusters
 * are copied and zeroed. Same errors as overlay_write. */
int overlay_write_zeroes(struct overlay *ov, uint64_t off, uint64_t len);

/* fdatasync the data file, then replace PATH.map (tmp + fsync + rename +
 * directory fsync) when the map changed since the last flush. 0 on
 * success (also when read-only), negative errno otherwise. */
int overlay_flush(struct overlay *ov);

/* ---- changed clusters (the state in memory, flushed or not) ---- */
uint64_t overlay_clusters(const struct overlay *ov);       /* clusters in the disk */
uint64_t overlay_changed_count(const struct overlay *ov);  /* of which changed */
/* Clusters written since the last take (snapshots: what changed since the
 * parent), one bit each in bitmaps of overlay_bitmap_bytes() bytes: ORed
 * into `into`, then forgotten. */
size_t overlay_bitmap_bytes(const struct overlay *ov);
void overlay_take_written(struct overlay *ov, uint8_t *into);
/* The first changed cluster with index >= from; -1 when there is none.
 *   for (int64_t c = overlay_next_changed(ov, 0); c >= 0; c = overlay_next_changed(ov, c + 1)) */
int64_t overlay_next_changed(const struct overlay *ov, uint64_t from);
/* Byte range of cluster idx: offset idx * 64 KiB, length 64 KiB except for
 * a shorter last cluster when the size is not a multiple. */
void overlay_cluster_extent(const struct overlay *ov, uint64_t idx, uint64_t *off, uint64_t *len);

/* ---- the map format, exposed for tests and the fuzzer ---- */
/* Check a map image against the expected disk size and master identity
 * (identity NULL: not checked). On success fills bitmap (which must hold
 * ceil(ceil(disk_size / OVERLAY_CLUSTER) / 8) bytes; may be NULL) and
 * *generation (may be NULL). -1 with *why (static string) otherwise. */
int overlay_map_decode(const uint8_t *buf, size_t len, uint64_t disk_size, const uint8_t identity[32],
		       uint8_t *bitmap, uint64_t *generation, const char **why);

#endif
