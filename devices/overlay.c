/* devices/overlay.c - copy-on-write disk over a read-only master (overlay.h). */
#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../vmm/fileio.h"
#include "../vmm/util.h"

#define CL OVERLAY_CLUSTER
#define MAP_CRC_OFF 124u

struct overlay {
	char *master_path, *path, *map_path, *dir_path;
	int mfd, dfd;
	uint64_t size, nclusters, changed, generation;
	size_t bm_bytes;
	uint8_t *bm;
	uint8_t *written; /* clusters written since overlay_take_written (snapshots) */
	uint8_t ident[32];
	bool ro;          /* no overlay at all */
	bool inspect;     /* overlay opened for reading only */
	bool map_dirty;   /* bitmap differs from PATH.map */
	bool data_dirty;  /* data written since the last fdatasync */
	bool broken;      /* an fdatasync failed: refuse writes and flushes */
	uint8_t *cbuf;    /* one cluster, for copy-on-write */
};

/* ------------------------------------------------------------ helpers */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t crc(const uint8_t *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

/* 0, or a negative errno; a read that ends early (EOF) is -EIO. */

/* pread_all, with a file that ends early (a truncated overlay) as -EIO. */
static int overlay_pread(int fd, void *buf, size_t len, uint64_t off)
{
	int rc = pread_all(fd, buf, len, off);
	return rc == -ENODATA ? -EIO : rc;
}

static bool bit(const struct overlay *ov, uint64_t c) { return ov->bm[c / 8] & (1u << (c % 8)); }

static void set_bit(struct overlay *ov, uint64_t c)
{
	ov->written[c / 8] |= (uint8_t)(1u << (c % 8));
	if (!bit(ov, c)) {
		ov->bm[c / 8] |= (uint8_t)(1u << (c % 8));
		ov->changed++;
		ov->map_dirty = true;
	}
}

static uint64_t cluster_len(const struct overlay *ov, uint64_t c)
{
	uint64_t off = c * CL;
	return ov->size - off < CL ? ov->size - off : CL;
}

static bool range_ok(const struct overlay *ov, uint64_t off, uint64_t len)
{
	uint64_t end;
	return !add_overflows(off, len, &end) && end <= ov->size;
}

/* SHA-256 identity of the master (overlay.h, "master identity"). */
static int master_identity(int fd, uint64_t size, uint8_t out[32])
{
	uint8_t *buf = malloc(CL);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -ENOMEM;
	if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	uint8_t le[8];
	put_le64(le, size);
	EVP_DigestUpdate(ctx, le, 8);
	for (int k = 0; k <= 16; k++) {
		uint64_t o, n;
		if (k < 16) {
			o = ((uint64_t)k * (size / 16)) / CL * CL;
			n = size - o < CL ? size - o : CL;
		} else {
			n = size < CL ? size : CL;
			o = size - n;
		}
		rc = overlay_pread(fd, buf, (size_t)n, o);
		if (rc < 0)
			goto out;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	unsigned mdlen = 0;
	EVP_DigestFinal_ex(ctx, out, &mdlen);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

static char *cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);
	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* ------------------------------------------------------------ the map */

static size_t map_len(size_t bm_bytes) { return OVERLAY_MAP_HDR + bm_bytes + 4; }

int overlay_map_decode(const uint8_t *buf, size_t len, uint64_t disk_size, const uint8_t identity[32],
		       uint8_t *bitmap, uint64_t *generation, const char **why)
{
	uint64_t nclusters = disk_size / CL + (disk_size % CL != 0);
	uint64_t bm_bytes = nclusters / 8 + (nclusters % 8 != 0);
	if (len < OVERLAY_MAP_HDR)
		return *why = "truncated (shorter than its header)", -1;
	if (memcmp(buf, OVERLAY_MAP_MAGIC, 8) != 0)
		return *why = "not an overlay map (bad magic)", -1;
	if (get_le32(buf + MAP_CRC_OFF) != crc(buf, MAP_CRC_OFF))
		return *why = "corrupt (header checksum mismatch)", -1;
	if (get_le32(buf + 8) != OVERLAY_MAP_VERSION)
		return *why = "unsupported map version", -1;
	if (get_le32(buf + 12) != OVERLAY_MAP_HDR)
		return *why = "unsupported header size", -1;
	if (get_le32(buf + 16) != CL)
		return *why = "unsupported cluster size (this trialvm uses 64 KiB)", -1;
	if (get_le32(buf + 20) != 0)
		return *why = "unknown flags set", -1;
	if (get_le64(buf + 24) != disk_size)
		return *why = "made for a disk of a different size than this master", -1;
	if (get_le64(buf + 32) != nclusters)
		return *why = "corrupt (cluster count does not match the disk size)", -1;
	for (unsigned i = 80; i < MAP_CRC_OFF; i++)
		if (buf[i])
			return *why = "corrupt (reserved header bytes are not zero)", -1;
	if (len < map_len(bm_bytes))
		return *why = "truncated (bitmap incomplete)", -1;
	if (len > map_len(bm_bytes))
		return *why = "corrupt (trailing bytes after the bitmap)", -1;
	size_t body = OVERLAY_MAP_HDR + (size_t)bm_bytes;
	if (get_le32(buf + body) != crc(buf, body))
		return *why = "corrupt (bitmap checksum mismatch)", -1;
	if (identity && memcmp(buf + 48, identity, 32) != 0)
		return *why = "made for a different master image (identity mismatch)", -1;
	if (nclusters % 8 && (buf[body - 1] >> (nclusters % 8)))
		return *why = "corrupt (bits set past the last cluster)", -1;
	if (bitmap)
		memcpy(bitmap, buf + OVERLAY_MAP_HDR, (size_t)bm_bytes);
	if (generation)
		*generation = get_le64(buf + 40);
	return 0;
}

static uint8_t *map_encode(const struct overlay *ov, uint64_t generation, size_t *len)
{
	size_t n = map_len(ov->bm_bytes);
	uint8_t *b = calloc(1, n);
	if (!b)
		return NULL;
	memcpy(b, OVERLAY_MAP_MAGIC, 8);
	put_le32(b + 8, OVERLAY_MAP_VERSION);
	put_le32(b + 12, OVERLAY_MAP_HDR);
	put_le32(b + 16, CL);
	put_le64(b + 24, ov->size);
	put_le64(b + 32, ov->nclusters);
	put_le64(b + 40, generation);
	memcpy(b + 48, ov->ident, 32);
	put_le32(b + MAP_CRC_OFF, crc(b, MAP_CRC_OFF));
	memcpy(b + OVERLAY_MAP_HDR, ov->bm, ov->bm_bytes);
	put_le32(b + OVERLAY_MAP_HDR + ov->bm_bytes, crc(b, OVERLAY_MAP_HDR + ov->bm_bytes));
	*len = n;
	return b;
}


/* Replace PATH.map with the bitmap in memory: a new temporary file with an
 * unpredictable name (PATH.map.XXXXXX, O_EXCL: nothing that exists is ever
 * truncated or removed), fsync, rename over PATH.map, directory fsync. */
static int write_map(struct overlay *ov, uint64_t generation)
{
	size_t len;
	uint8_t *b = map_encode(ov, generation, &len);
	if (!b)
		return -ENOMEM;
	int rc;
	char *tmp = cat(ov->map_path, ".XXXXXX");
	if (!tmp) {
		free(b);
		return -ENOMEM;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = fchmod(fd, 0644) < 0 ? -errno : 0;
	if (rc == 0)
		rc = pwrite_all(fd, b, len, 0);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, ov->map_path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	else
		rc = fsync_dir(ov->dir_path);
out:
	free(tmp);
	free(b);
	return rc;
}

/* ------------------------------------------------------------ open/close */

static void ov_free(struct overlay *ov)
{
	if (!ov)
		return;
	if (ov->mfd >= 0)
		close(ov->mfd);
	if (ov->dfd >= 0)
		close(ov->dfd);
	free(ov->master_path);
	free(ov->path);
	free(ov->map_path);
	free(ov->dir_path);
	free(ov->bm);
	free(ov->written);
	free(ov->cbuf);
	free(ov);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Refuse any overlay file name that is the master itself. */
static int check_not_master(const char *p, const struct stat *mst, struct tvm_err *err)
{
	struct stat st;
	if (stat(p, &st) == 0 && same_file(&st, mst))
		return tvm_seterr(err, "%s is the master image itself; the master is never written", p);
	return 0;
}

static int open_data_new(struct overlay *ov, struct tvm_err *err)
{
	if (access(ov->map_path, F_OK) == 0)
		return tvm_seterr(err, "%s exists but %s does not; refusing to start a new overlay over an old map",
				  ov->map_path, ov->path);
	ov->dfd = open(ov->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (ov->dfd < 0)
		return tvm_seterr(err, "cannot create overlay %s: %s", ov->path, strerror(errno));
	int rc = 0;
	if (flock(ov->dfd, LOCK_EX | LOCK_NB) < 0)
		rc = -errno;
	if (rc == 0 && ftruncate(ov->dfd, (off_t)ov->size) < 0)
		rc = -errno;
	if (rc == 0 && fsync(ov->dfd) < 0)
		rc = -errno;
	if (rc == 0)
		rc = write_map(ov, 1);
	if (rc < 0) {
		unlink(ov->path);
		unlink(ov->map_path);
		return tvm_seterr(err, "cannot create overlay %s: %s", ov->path, strerror(-rc));
	}
	ov->generation = 1;
	return 0;
}

static int open_data_existing(struct overlay *ov, const struct stat *mst, struct tvm_err *err)
{
	ov->dfd = open(ov->path, (ov->inspect ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
	if (ov->dfd < 0)
		return tvm_seterr(err, "cannot open overlay %s: %s", ov->path, strerror(errno));
	struct stat st;
	if (fstat(ov->dfd, &st) < 0)
		return tvm_seterr(err, "cannot stat overlay %s: %s", ov->path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return tvm_seterr(err, "overlay %s is not a regular file", ov->path);
	if (same_file(&st, mst))
		return tvm_seterr(err, "overlay %s is the master image itself; the master is never written",
				  ov->path);
	if (!S_ISREG(st.st_mode))
		return tvm_seterr(err, "overlay %s is not a regular file", ov->path);
	if (flock(ov->dfd, (ov->inspect ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		return tvm_seterr(err, "overlay %s is in use by another process (%s)", ov->path,
				  errno == EWOULDBLOCK ? "locked" : strerror(errno));

	uint8_t *map = NULL;
	size_t len = 0;
	struct tvm_err e2;
	if (access(ov->map_path, F_OK) != 0 && errno == ENOENT)
		return tvm_seterr(err, "overlay %s has no map %s (left by an interrupted first run?); remove %s to start afresh",
				  ov->path, ov->map_path, ov->path);
	if (read_file(ov->map_path, map_len(ov->bm_bytes) + 1, &map, &len, &e2) < 0)
		return tvm_seterr(err, "overlay map of %s: %s", ov->path, e2.msg);
	const char *why = NULL;
	int rc = overlay_map_decode(map, len, ov->size, ov->ident, ov->bm, &ov->generation, &why);
	free(map);
	if (rc < 0)
		return tvm_seterr(err, "overlay map %s is %s (master %s)", ov->map_path, why, ov->master_path);
	if ((uint64_t)st.st_size != ov->size)
		return tvm_seterr(err, "overlay %s is %llu bytes but the disk is %llu bytes (truncated or not this disk's overlay)",
				  ov->path, (unsigned long long)st.st_size, (unsigned long long)ov->size);
	for (size_t i = 0; i < ov->bm_bytes; i++)
		ov->changed += (uint64_t)__builtin_popcount(ov->bm[i]);
	return 0;
}

int overlay_open(const char *master, const char *overlay_path, unsigned flags, struct overlay **out,
		 struct tvm_err *err)
{
	struct overlay *ov = calloc(1, sizeof(*ov));
	if (!ov)
		return tvm_seterr(err, "out of memory");
	ov->mfd = ov->dfd = -1;
	ov->master_path = strdup(master);
	if (!ov->master_path)
		goto nomem;
	struct stat mst;
	ov->mfd = open_input(master, &mst);
	if (ov->mfd < 0) {
		tvm_seterr(err, "cannot open disk image %s: %s", master, strerror(errno));
		goto fail;
	}
	if (S_ISREG(mst.st_mode)) {
		ov->size = (uint64_t)mst.st_size;
	} else if (S_ISBLK(mst.st_mode)) {
		uint64_t sz = 0;
		if (ioctl(ov->mfd, BLKGETSIZE64, &sz) < 0) {
			tvm_seterr(err, "cannot get the size of %s: %s", master, strerror(errno));
			goto fail;
		}
		ov->size = sz;
	} else {
		tvm_seterr(err, "disk image %s is not a regular file or block device", master);
		goto fail;
	}
	if (ov->size == 0) {
		tvm_seterr(err, "disk image %s is empty", master);
		goto fail;
	}
	if (ov->size > OVERLAY_MAX_SIZE) {
		tvm_seterr(err, "disk image %s is too large (%llu bytes; the limit is 16 TiB)", master,
			   (unsigned long long)ov->size);
		goto fail;
	}
	ov->nclusters = ov->size / CL + (ov->size % CL != 0);
	ov->bm_bytes = (size_t)(ov->nclusters / 8 + (ov->nclusters % 8 != 0));
	ov->bm = calloc(1, ov->bm_bytes);
	ov->written = calloc(1, ov->bm_bytes ? ov->bm_bytes : 1);
	if (!ov->bm || !ov->written)
		goto nomem;

	if (!overlay_path) {
		ov->ro = true;
		*out = ov;
		return 0;
	}
	ov->inspect = flags & OVERLAY_INSPECT;
	ov->path = strdup(overlay_path);
	ov->map_path = cat(overlay_path, ".map");
	ov->dir_path = dir_of(overlay_path);
	ov->cbuf = malloc(CL);
	if (!ov->path || !ov->map_path || !ov->dir_path || !ov->cbuf)
		goto nomem;
	if (check_not_master(ov->path, &mst, err) < 0 || check_not_master(ov->map_path, &mst, err) < 0)
		goto fail;
	int rc = master_identity(ov->mfd, ov->size, ov->ident);
	if (rc < 0) {
		tvm_seterr(err, "cannot read disk image %s: %s", master, strerror(-rc));
		goto fail;
	}
	struct stat st;
	if (lstat(ov->path, &st) < 0 && errno == ENOENT) {
		if (!(flags & OVERLAY_CREATE) || ov->inspect) {
			tvm_seterr(err, "overlay %s does not exist", ov->path);
			goto fail;
		}
		if (open_data_new(ov, err) < 0)
			goto fail;
	} else if (open_data_existing(ov, &mst, err) < 0) {
		goto fail;
	}
	*out = ov;
	return 0;
nomem:
	tvm_seterr(err, "out of memory opening %s", master);
fail:
	ov_free(ov);
	return -1;
}

int overlay_close(struct overlay *ov, struct tvm_err *err)
{
	if (!ov)
		return 0;
	int rc = overlay_flush(ov);
	if (rc < 0)
		tvm_seterr(err, "cannot save overlay %s: %s", ov->path, strerror(-rc));
	ov_free(ov);
	return rc < 0 ? -1 : 0;
}

void overlay_abandon(struct overlay *ov) { ov_free(ov); }

/* ------------------------------------------------------------ accessors */

uint64_t overlay_size(const struct overlay *ov) { return ov->size; }
bool overlay_readonly(const struct overlay *ov) { return ov->ro || ov->inspect; }
const char *overlay_path(const struct overlay *ov) { return ov->path; }
const char *overlay_master_path(const struct overlay *ov) { return ov->master_path; }
uint64_t overlay_clusters(const struct overlay *ov) { return ov->nclusters; }
uint64_t overlay_changed_count(const struct overlay *ov) { return ov->changed; }

size_t overlay_bitmap_bytes(const struct overlay *ov) { return ov->bm_bytes; }

void overlay_take_written(struct overlay *ov, uint8_t *into)
{
	for (size_t i = 0; i < ov->bm_bytes; i++)
		into[i] |= ov->written[i];
	memset(ov->written, 0, ov->bm_bytes);
}

int64_t overlay_next_changed(const struct overlay *ov, uint64_t from)
{
	uint64_t c = from;
	while (c < ov->nclusters) {
		uint8_t byte = ov->bm[c / 8] >> (c % 8);
		if (byte)
			return (int64_t)(c + (uint64_t)__builtin_ctz(byte));
		c = (c / 8 + 1) * 8;
	}
	return -1;
}

void overlay_cluster_extent(const struct overlay *ov, uint64_t idx, uint64_t *off, uint64_t *len)
{
	if (idx >= ov->nclusters) {
		*off = ov->size;
		*len = 0;
		return;
	}
	*off = idx * CL;
	*len = cluster_len(ov, idx);
}

/* ------------------------------------------------------------ I/O */

int overlay_read(struct overlay *ov, uint64_t off, void *buf, size_t len)
{
	if (!range_ok(ov, off, len))
		return -EINVAL;
	uint8_t *p = buf;
	while (len) {
		/* One pread per run of clusters that come from the same file. */
		uint64_t c = off / CL;
		bool in_ovl = !ov->ro && bit(ov, c);
		uint64_t n = (c + 1) * CL - off;
		for (uint64_t d = c + 1; n < len && d < ov->nclusters && (!ov->ro && bit(ov, d)) == in_ovl; d++)
			n += CL;
		if (n > len)
			n = len;
		int rc = overlay_pread(in_ovl ? ov->dfd : ov->mfd, p, (size_t)n, off);
		if (rc < 0)
			return rc;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_check(struct overlay *ov, uint64_t off, uint64_t len)
{
	if (!range_ok(ov, off, len))
		return -EINVAL;
	if (ov->ro || ov->inspect)
		return -EROFS;
	if (ov->broken)
		return -EIO;
	return 0;
}

/* Write [within, within+n) of cluster c: src NULL writes zeroes. */
static int write_in_cluster(struct overlay *ov, uint64_t c, uint64_t within, const uint8_t *src, uint64_t n)
{
	uint64_t coff = c * CL, clen = cluster_len(ov, c);
	int rc;
	if (!src && within == 0 && n == clen) {
		/* A whole cluster of zeroes: a hole in the data file. */
		if (fallocate(ov->dfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)coff, (off_t)clen) == 0) {
			ov->data_dirty = true;
			set_bit(ov, c);
			return 0;
		}
		memset(ov->cbuf, 0, clen);
		rc = pwrite_all(ov->dfd, ov->cbuf, clen, coff);
	} else if (bit(ov, c) || (within == 0 && n == clen)) {
		if (src) {
			rc = pwrite_all(ov->dfd, src, n, coff + within);
		} else {
			memset(ov->cbuf, 0, n);
			rc = pwrite_all(ov->dfd, ov->cbuf, n, coff + within);
		}
	} else {
		/* Copy on write: the whole cluster from the master, merged. */
		rc = overlay_pread(ov->mfd, ov->cbuf, clen, coff);
		if (rc < 0)
			return rc;
		if (src)
			memcpy(ov->cbuf + within, src, n);
		else
			memset(ov->cbuf + within, 0, n);
		rc = pwrite_all(ov->dfd, ov->cbuf, clen, coff);
	}
	if (rc < 0)
		return rc;
	ov->data_dirty = true;
	set_bit(ov, c);
	return 0;
}

static int write_range(struct overlay *ov, uint64_t off, const uint8_t *src, uint64_t len)
{
	int rc = write_check(ov, off, len);
	if (rc < 0)
		return rc;
	while (len) {
		uint64_t c = off / CL, within = off % CL;
		uint64_t n = cluster_len(ov, c) - within;
		if (n > len)
			n = len;
		rc = write_in_cluster(ov, c, within, src, n);
		if (rc < 0)
			return rc;
		if (src)
			src += n;
		off += n;
		len -= n;
	}
	return 0;
}

int overlay_write(struct overlay *ov, uint64_t off, const void *buf, size_t len)
{
	return write_range(ov, off, buf, len);
}

int overlay_write_zeroes(struct overlay *ov, uint64_t off, uint64_t len)
{
	return write_range(ov, off, NULL, len);
}

int overlay_flush(struct overlay *ov)
{
	if (ov->ro || ov->inspect)
		return 0;
	if (ov->broken)
		return -EIO;
	if (ov->data_dirty) {
		if (fdatasync(ov->dfd) < 0) {
			/* Linux may have dropped the failed pages: nothing
			 * written since the last flush can be trusted. */
			ov->broken = true;
			return -errno;
		}
		ov->data_dirty = false;
	}
	if (ov->map_dirty) {
		int rc = write_map(ov, ov->generation + 1);
		if (rc < 0)
			return rc;
		ov->generation++;
		ov->map_dirty = false;
	}
	return 0;
}
