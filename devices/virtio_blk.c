/* devices/virtio_blk.c - virtio block device (virtio 1.x "Block Device",
 * device ID 2) over a copy-on-write overlay (overlay.h), and the --disk
 * specification. One request queue; requests are served synchronously in
 * the notify callback (the driver polls the used ring after notifying). */
#include "devices.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "../vmm/evlog.h"
#include "../vmm/iothread.h"
#include "../vmm/util.h"
#include "../vmm/vmstate.h"
#include "overlay.h"
#include "virtio.h"
#include "virtio_blk.h"

#define BOUNCE_LEN (256u * 1024)
/* A write-zeroes range is done in steps of this size (holes punched or
 * zeroes written), a read or write in BOUNCE_LEN steps; between steps the
 * request gives up (-EINTR, the guest sees an I/O error) when the VM is
 * stopping, so a 1 GiB request never holds up the end of a run. */
#define ZERO_STEP (16ull << 20)

struct virtio_blk {
	struct virtio_dev_ops ops;
	struct virtio_mmio *t;
	struct overlay *ov;
	enum disk_mode mode;
	bool ro;
	bool finished;
	char *ovl_path;  /* the overlay's data file (NULL: master alone) */
	char *tmp_dir;   /* a directory made for a discard overlay, or NULL */
	uint64_t capacity;
	uint8_t config[BLK_CFG_SIZE];
	char id[BLK_ID_BYTES];
	uint8_t *bounce;
	struct virtq_elem elem;
	struct blk_req req;
	struct ratelimit rl;
	uint8_t *snap_pending; /* clusters changed since the last periodic snapshot on disk */
	bool bulk_loaded;      /* a restore wrote the snapshot's contents (bulk_load) */
};

/* ------------------------------------------------------------ --disk */

int disk_spec_parse(const char *arg, struct disk_spec *out, struct tvm_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!arg || !*arg || *arg == ',')
		return tvm_seterr(err, "--disk needs a file: --disk FILE[,ro][,overlay=PATH]");
	char *s = strdup(arg);
	if (!s)
		return tvm_seterr(err, "out of memory");
	out->storage = s;
	out->path = strsep(&s, ",");
	bool seen_ro = false;
	while (s) {
		char *opt = strsep(&s, ",");
		if (strcmp(opt, "ro") == 0) {
			if (seen_ro)
				goto dup;
			seen_ro = out->ro = true;
		} else if (strncmp(opt, "overlay=", 8) == 0) {
			if (out->overlay)
				goto dup;
			out->overlay = opt + 8;
			if (!*out->overlay) {
				tvm_seterr(err, "--disk %s: overlay= needs a path", arg);
				goto fail;
			}
		} else {
			tvm_seterr(err, "--disk %s: unknown option '%s' (expected ro or overlay=PATH)", arg, opt);
			goto fail;
		}
		continue;
dup:
		tvm_seterr(err, "--disk %s: option '%s' given twice", arg, opt);
		goto fail;
	}
	return 0;
fail:
	disk_spec_free(out);
	return -1;
}

void disk_spec_free(struct disk_spec *d)
{
	free(d->storage);
	memset(d, 0, sizeof(*d));
}

/* ------------------------------------------------------------ requests */

static void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_le32(uint8_t *p, uint32_t v) { put_le16(p, (uint16_t)v); put_le16(p + 2, (uint16_t)(v >> 16)); }
static void put_le64(uint8_t *p, uint64_t v) { put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }

static void blk_config_read(void *opaque, uint32_t off, void *buf, uint32_t len)
{
	struct virtio_blk *b = opaque;
	if (off > BLK_CFG_SIZE || len > BLK_CFG_SIZE - off) {
		memset(buf, 0, len);
		return;
	}
	memcpy(buf, b->config + off, len);
}

static void blk_config_write(void *opaque, uint32_t off, const void *buf, uint32_t len)
{
	(void)opaque, (void)off, (void)buf, (void)len; /* nothing is writable (no CONFIG_WCE) */
}

/* A flush writes the overlay map (a new file renamed over the old one):
 * file-system work that the vCPU's sandbox forbids, done on the I/O thread. */
static int flush_on_io_thread(void *ov) { return overlay_flush(ov); }

/* Execute a parsed request; returns the status and sets *prefix to the
 * bytes written from the start of the writable side. */
static uint8_t blk_execute(struct virtio_blk *b, struct virtio_mmio *t, const struct virtq_elem *e,
			   const struct blk_req *r, uint64_t *prefix)
{
	int rc = 0;
	*prefix = 0;
	if (!b->ov)
		return VIRTIO_BLK_S_IOERR; /* finished */
	switch (r->type) {
	case VIRTIO_BLK_T_IN: {
		bool check = vm_nondet_active(t->vm); /* record/replay: the bytes' CRC */
		uint32_t crc = 0;
		for (uint64_t done = 0; done < r->len;) {
			if (done && vm_stop_pending(t->vm)) {
				rc = -EINTR;
				break;
			}
			uint64_t n = r->len - done < BOUNCE_LEN ? r->len - done : BOUNCE_LEN;
			rc = overlay_read(b->ov, r->off + done, b->bounce, (size_t)n);
			if (rc < 0)
				break;
			if (virtq_write(e, &t->mem, r->data_off + done, b->bounce, n) != n) {
				rc = -EFAULT;
				break;
			}
			if (check)
				crc = (uint32_t)crc32(crc, b->bounce, (uInt)n);
			done += n;
			*prefix = done;
		}
		if (check && rc == 0) {
			uint8_t rec[16];
			char what[96];
			le_put64(rec, r->off);
			le_put32(rec + 8, (uint32_t)r->len);
			le_put32(rec + 12, crc);
			snprintf(what, sizeof(what), "the disk read of %llu bytes at byte %llu", (unsigned long long)r->len,
				 (unsigned long long)r->off);
			vm_nondet_check(t->vm, t->cur_vcpu, EVLOG_SRC_DISK, rec, sizeof(rec), what);
		}
		break;
	}
	case VIRTIO_BLK_T_OUT:
		for (uint64_t done = 0; done < r->len;) {
			if (done && vm_stop_pending(t->vm)) {
				rc = -EINTR;
				break;
			}
			uint64_t n = r->len - done < BOUNCE_LEN ? r->len - done : BOUNCE_LEN;
			if (virtq_read(e, &t->mem, r->data_off + done, b->bounce, n) != n) {
				rc = -EFAULT;
				break;
			}
			rc = overlay_write(b->ov, r->off + done, b->bounce, (size_t)n);
			if (rc < 0)
				break;
			done += n;
		}
		break;
	case VIRTIO_BLK_T_FLUSH:
		rc = iothread_call(flush_on_io_thread, b->ov);
		break;
	case VIRTIO_BLK_T_GET_ID:
		*prefix = virtq_write(e, &t->mem, 0, b->id, r->len);
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		for (unsigned i = 0; i < r->nranges && rc == 0; i++)
			for (uint64_t done = 0; done < r->ranges[i].len && rc == 0;) {
				if ((i || done) && vm_stop_pending(t->vm)) {
					rc = -EINTR;
					break;
				}
				uint64_t n = r->ranges[i].len - done < ZERO_STEP ? r->ranges[i].len - done : ZERO_STEP;
				rc = overlay_write_zeroes(b->ov, r->ranges[i].off + done, n);
				done += n;
			}
		break;
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
	if (rc < 0) {
		tvm_log_limited(&b->rl, "virtio-blk %s: request type %u at sector %llu failed: %s",
				overlay_master_path(b->ov), r->type, (unsigned long long)r->sector, strerror(-rc));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* One request: parse, execute, status byte; the bytes written from the
 * start of the writable side. -1 when the driver broke the device. */
static int64_t blk_serve(void *opaque, struct virtio_mmio *t, struct virtq_elem *e)
{
	struct virtio_blk *b = opaque;
	struct blk_req *r = &b->req;
	if (blk_parse_request(e, &t->mem, b->capacity, b->ro, r) < 0) {
		virtio_fail(t, r->why);
		return -1;
	}
	uint64_t prefix = 0;
	uint8_t status = r->status;
	if (status == VIRTIO_BLK_S_OK)
		status = blk_execute(b, t, e, r, &prefix);
	else if (status == VIRTIO_BLK_S_IOERR)
		tvm_log_limited(&b->rl, "virtio-blk: bad request from the guest: %s", r->why);
	if (virtq_write(e, &t->mem, r->status_off, &status, 1) != 1) {
		virtio_fail(t, "status byte not writable");
		return -1;
	}
	/* len = bytes written from the start of the writable side. */
	uint64_t written = prefix == r->status_off ? r->status_off + 1 : prefix;
	return written > INT64_MAX ? INT64_MAX : (int64_t)written;
}

static void blk_notify(void *opaque, struct virtio_mmio *t, unsigned q)
{
	struct virtio_blk *b = opaque;
	if (q == 0)
		virtio_serve(t, 0, &b->elem, blk_serve, b);
}

static void blk_reset(void *opaque)
{
	(void)opaque; /* no per-driver state: requests complete synchronously */
}

/* ------------------------------------------------------------ setup */

/* The serial number (GET_ID): "trialvm-vd" + the letter Linux and trialos
 * give the disk (the disks take the first slots, in order). */
static void set_id(struct virtio_blk *b, unsigned slot)
{
	char id[BLK_ID_BYTES + 1];
	snprintf(id, sizeof(id), "trialvm-vd%c", slot < 26 ? 'a' + slot : 'z');
	memset(b->id, 0, sizeof(b->id));
	memcpy(b->id, id, strlen(id)); /* NUL-padded, as the spec allows */
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void blk_free(struct virtio_blk *b)
{
	if (!b)
		return;
	free(b->ovl_path);
	free(b->tmp_dir);
	free(b->bounce);
	free(b->snap_pending);
	free(b);
}

/* Delete a discard overlay: the data file, its map, the directory made for it. */
static void remove_overlay_files(struct virtio_blk *b)
{
	if (!b->ovl_path)
		return;
	char p[PATH_MAX + 16];
	unlink(b->ovl_path);
	snprintf(p, sizeof(p), "%s.map", b->ovl_path);
	unlink(p);
	if (b->tmp_dir)
		rmdir(b->tmp_dir);
}

int virtio_blk_open(const struct disk_spec *d, enum disk_mode mode, struct virtio_blk **out, struct tvm_err *err)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b || !(b->bounce = malloc(BOUNCE_LEN))) {
		free(b);
		return tvm_seterr(err, "out of memory");
	}
	b->rl = (struct ratelimit)RATELIMIT_INIT(5, 1000);
	b->mode = mode;
	b->ro = d->ro;
	unsigned flags = OVERLAY_CREATE;
	const char *path = d->overlay;
	char buf[PATH_MAX];
	if (d->ro) {
		flags = OVERLAY_INSPECT;
	} else if (mode == DISK_PERSIST) {
		if (!path) {
			if (snprintf(buf, sizeof(buf), "./%s.overlay", base_name(d->path)) >= (int)sizeof(buf))
				goto toolong;
			path = buf;
		}
	} else if (path) {
		struct stat st;
		if (lstat(path, &st) == 0) {
			tvm_seterr(err, "overlay %s already exists; --disk-mode discard starts a fresh overlay every run: remove it, or use --disk-mode persist to continue it",
				   path);
			goto fail;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		if (!tmp || !*tmp)
			tmp = "/tmp";
		if (snprintf(buf, sizeof(buf), "%s/trialvm-disk-XXXXXX", tmp) >= (int)sizeof(buf))
			goto toolong;
		if (!mkdtemp(buf)) {
			tvm_seterr(err, "cannot create a directory for the overlay of %s in %s: %s", d->path, tmp,
				   strerror(errno));
			goto fail;
		}
		b->tmp_dir = strdup(buf);
		size_t l = strlen(buf);
		if (snprintf(buf + l, sizeof(buf) - l, "/%s.overlay", base_name(d->path)) >= (int)(sizeof(buf) - l))
			goto toolong;
		path = buf;
	}
	if (path && !(b->ovl_path = strdup(path))) {
		tvm_seterr(err, "out of memory");
		goto fail;
	}
	if (overlay_open(d->path, path, flags, &b->ov, err) < 0) {
		b->ovl_path = (free(b->ovl_path), NULL); /* nothing was created: delete nothing */
		goto fail;
	}
	uint64_t size = overlay_size(b->ov);
	b->capacity = size / BLK_SECTOR;
	if (b->capacity == 0) {
		tvm_seterr(err, "disk image %s is smaller than one 512-byte sector", d->path);
		goto fail_open;
	}
	if (size % BLK_SECTOR)
		tvm_log("disk image %s: its last %llu bytes are not a whole sector; the guest does not see them",
			d->path, (unsigned long long)(size % BLK_SECTOR));

	put_le64(b->config + BLK_CFG_CAPACITY, b->capacity);
	put_le32(b->config + BLK_CFG_SEG_MAX, BLK_SEG_MAX);
	put_le32(b->config + BLK_CFG_BLK_SIZE, BLK_SECTOR);
	put_le16(b->config + BLK_CFG_NUM_QUEUES, 1);
	put_le32(b->config + BLK_CFG_MAX_WZ_SECTORS, BLK_WZ_MAX_SECTORS);
	put_le32(b->config + BLK_CFG_MAX_WZ_SEG, BLK_WZ_MAX_SEG);
	b->config[BLK_CFG_WZ_MAY_UNMAP] = 1;
	set_id(b, 0);

	b->ops = (struct virtio_dev_ops){
		.name = "virtio-blk",
		.device_id = VIRTIO_ID_BLOCK,
		.features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
			    (1ull << VIRTIO_BLK_F_FLUSH) |
			    (b->ro ? 1ull << VIRTIO_BLK_F_RO : 1ull << VIRTIO_BLK_F_WRITE_ZEROES),
		.num_queues = 1,
		.queue_max = VIRTQ_MAX_SIZE,
		.config_size = BLK_CFG_SIZE,
		.config_read = blk_config_read,
		.config_write = blk_config_write,
		.notify = blk_notify,
		.reset = blk_reset,
	};
	*out = b;
	return 0;
toolong:
	tvm_seterr(err, "overlay path for %s is too long", d->path);
	goto fail;
fail_open:
	overlay_abandon(b->ov);
	if (flags & OVERLAY_CREATE)
		remove_overlay_files(b);
fail:
	if (b->tmp_dir)
		rmdir(b->tmp_dir);
	blk_free(b);
	return -1;
}

const struct virtio_dev_ops *virtio_blk_ops(struct virtio_blk *b) { return &b->ops; }

/* ---- state (vm_device_ops): what the guest wrote, for snapshots ----
 * Record version 2: the capacity; the overlay's changed clusters go into
 * the snapshot's disk sections (bulk_*, vmm/snapshot.h), an incremental
 * snapshot holding only the clusters written since its parent. A restore
 * writes them into a fresh overlay, which then holds exactly what the disk
 * held. The transport (queues, features) is saved by virtio-mmio.
 * Version 1 (trialvm 0.1.0 before disk sections) held every changed
 * cluster in the record itself, as one zstd frame of (u64 cluster index,
 * the cluster's bytes) entries with a CRC-32, at most BLK_STATE_MAX bytes
 * of clusters; it is still read. */
#define BLK_STATE_MAX (48u << 20)
enum { BS_CAPACITY = 1, BS_COUNT = 2, BS_RAW = 3, BS_CRC = 4, BS_DATA = 5 };

static int blk_save(void *dev, struct vs_out *o, struct tvm_err *err)
{
	struct virtio_blk *b = dev;
	vs_put_u64(o, BS_CAPACITY, b->capacity);
	return vs_out_error(o, err);
}

static uint64_t blk_bulk_size(void *dev)
{
	struct virtio_blk *b = dev;
	return b->ov ? overlay_size(b->ov) : 0;
}

static void blk_bulk_fetch(void *dev)
{
	struct virtio_blk *b = dev;
	if (!b->ov || overlay_readonly(b->ov))
		return;
	size_t n = overlay_bitmap_bytes(b->ov);
	if (!b->snap_pending && !(b->snap_pending = calloc(1, n ? n : 1)))
		return; /* out of memory: the next fetch gets them (they stay in the overlay's set) */
	overlay_take_written(b->ov, b->snap_pending);
}

static void blk_bulk_commit(void *dev)
{
	struct virtio_blk *b = dev;
	if (b->snap_pending)
		memset(b->snap_pending, 0, overlay_bitmap_bytes(b->ov));
}

static int blk_bulk_save(void *dev, bool incremental, int (*put)(void *ctx, uint64_t off, const void *data, uint64_t len),
			 void *ctx, struct tvm_err *err)
{
	struct virtio_blk *b = dev;
	if (!b->ov || overlay_readonly(b->ov))
		return 0;
	const uint8_t *pend = b->snap_pending;
	if (incremental && !pend)
		return tvm_seterr(err, "internal error: an incremental snapshot of a disk without a fetched change set");
	uint8_t *buf = malloc(OVERLAY_CLUSTER);
	if (!buf)
		return tvm_seterr(err, "out of memory");
	int rc = 0;
	for (int64_t idx = overlay_next_changed(b->ov, 0); rc == 0 && idx >= 0;
	     idx = overlay_next_changed(b->ov, (uint64_t)idx + 1)) {
		uint64_t i = (uint64_t)idx, off, len;
		if (incremental && !(pend[i / 8] >> (i % 8) & 1))
			continue;
		overlay_cluster_extent(b->ov, i, &off, &len);
		int r = overlay_read(b->ov, off, buf, (size_t)len);
		if (r < 0)
			rc = tvm_seterr(err, "cannot read cluster %llu of the overlay: %s", (unsigned long long)i, strerror(-r));
		else
			rc = put(ctx, off, buf, len);
	}
	free(buf);
	return rc;
}

/* A restore into an overlay that already holds changes would mix them. */
static int blk_fresh(struct virtio_blk *b, struct tvm_err *err)
{
	if (b->ov && overlay_changed_count(b->ov))
		return tvm_seterr(err, "its overlay %s already holds changes; a restore needs a fresh one (--disk-mode "
				       "discard, or a new overlay=PATH)", b->ovl_path ? b->ovl_path : "");
	return 0;
}

static int blk_bulk_load(void *dev, uint64_t off, const void *data, uint64_t len, struct tvm_err *err)
{
	struct virtio_blk *b = dev;
	if (!b->ov || overlay_readonly(b->ov))
		return tvm_seterr(err, "the snapshot holds changes to this disk, which is read-only here");
	if (!b->bulk_loaded && blk_fresh(b, err) < 0)
		return -1;
	b->bulk_loaded = true;
	int r = data ? overlay_write(b->ov, off, data, (size_t)len) : overlay_write_zeroes(b->ov, off, len);
	if (r < 0)
		return tvm_seterr(err, "cannot write %llu bytes at %llu into the overlay: %s", (unsigned long long)len,
				  (unsigned long long)off, strerror(-r));
	return 0;
}

static int blk_load_v1(struct virtio_blk *b, const struct vs_in *in, struct tvm_err *err)
{
	uint64_t cap, count, raw;
	uint32_t crc;
	const void *z;
	uint32_t zl;
	if (vs_get_u64(in, BS_CAPACITY, &cap, "its capacity", err) < 0 || vs_get_u64(in, BS_COUNT, &count, "its cluster count", err) < 0 ||
	    vs_get_u64(in, BS_RAW, &raw, "its size", err) < 0 || vs_get_u32(in, BS_CRC, &crc, "its checksum", err) < 0)
		return -1;
	if (!vs_find(in, BS_DATA, &z, &zl))
		return tvm_seterr(err, "the disk's changes are missing");
	if (cap != b->capacity)
		return tvm_seterr(err, "the snapshot's disk has %llu sectors, this one %llu", (unsigned long long)cap,
				  (unsigned long long)b->capacity);
	if (count > BLK_STATE_MAX / OVERLAY_CLUSTER || raw > count * (8 + OVERLAY_CLUSTER))
		return tvm_seterr(err, "the disk's changes claim %llu clusters in %llu bytes", (unsigned long long)count,
				  (unsigned long long)raw);
	if (count && (!b->ov || overlay_readonly(b->ov)))
		return tvm_seterr(err, "the snapshot holds changes to this disk, which is read-only here");
	if (blk_fresh(b, err) < 0)
		return -1;
	uint8_t *buf = malloc(raw ? raw : 1);
	if (!buf)
		return tvm_seterr(err, "out of memory");
	size_t got = ZSTD_decompress(buf, raw, z, zl);
	int rc = 0;
	if (ZSTD_isError(got) || got != raw || (uint32_t)crc32(0, buf, (uInt)raw) != crc)
		rc = tvm_seterr(err, "the disk's changes do not decompress to their size and checksum");
	uint64_t p = 0, prev = 0;
	for (uint64_t k = 0; rc == 0 && k < count; k++) {
		uint64_t idx, off, len;
		if (raw - p < 8) {
			rc = tvm_seterr(err, "the disk's changes end inside entry %llu", (unsigned long long)k);
			break;
		}
		memcpy(&idx, buf + p, 8);
		if (idx >= overlay_clusters(b->ov) || (k && idx <= prev)) {
			rc = tvm_seterr(err, "the disk's changes name cluster %llu out of order or past the disk",
					(unsigned long long)idx);
			break;
		}
		overlay_cluster_extent(b->ov, idx, &off, &len);
		if (raw - p - 8 < len) {
			rc = tvm_seterr(err, "the disk's changes end inside cluster %llu", (unsigned long long)idx);
			break;
		}
		int r = overlay_write(b->ov, off, buf + p + 8, (size_t)len);
		if (r < 0)
			rc = tvm_seterr(err, "cannot write cluster %llu into the overlay: %s", (unsigned long long)idx,
					strerror(-r));
		p += 8 + len;
		prev = idx;
	}
	if (rc == 0 && p != raw)
		rc = tvm_seterr(err, "the disk's changes have %llu bytes past their last cluster", (unsigned long long)(raw - p));
	free(buf);
	return rc;
}


static int blk_load(void *dev, const struct vs_in *in, uint16_t version, struct tvm_err *err)
{
	struct virtio_blk *b = dev;
	if (version == 1)
		return b->bulk_loaded ? tvm_seterr(err, "a version 1 disk record comes with disk sections") :
					blk_load_v1(b, in, err);
	uint64_t cap;
	if (vs_get_u64(in, BS_CAPACITY, &cap, "its capacity", err) < 0)
		return -1;
	if (cap != b->capacity)
		return tvm_seterr(err, "the snapshot's disk has %llu sectors, this one %llu", (unsigned long long)cap,
				  (unsigned long long)b->capacity);
	return b->bulk_loaded ? 0 : blk_fresh(b, err); /* no changes in the snapshot: the overlay must have none */
}

/* The VM does not own the device (run_once frees it after the VM stopped):
 * no destroy; save and load run only while the VM exists. */
static const struct vm_device_ops blk_state_ops = {
	.version = 2, .save = blk_save, .load = blk_load, .bulk_size = blk_bulk_size, .bulk_fetch = blk_bulk_fetch,
	.bulk_save = blk_bulk_save, .bulk_commit = blk_bulk_commit, .bulk_load = blk_bulk_load,
};

int virtio_blk_add(struct vm *vm, const struct disk_spec *d, enum disk_mode mode, struct virtio_blk **out,
		   struct tvm_err *err)
{
	struct virtio_blk *b;
	if (virtio_blk_open(d, mode, &b, err) < 0)
		return -1;
	unsigned slot = virtio_mmio_count();
	set_id(b, slot);
	char name[TVM_DEVICE_NAME];
	snprintf(name, sizeof(name), "virtio-blk.%u", slot);
	if (virtio_mmio_create(vm, slot, &b->ops, b, &b->t, err) < 0 ||
	    vm_add_device(vm, name, &blk_state_ops, b, err) < 0) {
		virtio_blk_finish(b, false, NULL, NULL);
		blk_free(b);
		return -1;
	}
	*out = b;
	return 0;
}

int virtio_blk_finish(struct virtio_blk *b, bool keep, const char **kept_path, struct tvm_err *err)
{
	if (kept_path)
		*kept_path = NULL;
	if (!b || b->finished)
		return 0;
	b->finished = true;
	struct overlay *ov = b->ov;
	b->ov = NULL;
	if (!b->ovl_path) { /* master alone, read-only */
		overlay_abandon(ov);
		return 0;
	}
	if (b->mode == DISK_DISCARD && !b->ro && !keep) {
		overlay_abandon(ov);
		remove_overlay_files(b);
		return 0;
	}
	if (kept_path)
		*kept_path = b->ovl_path;
	return overlay_close(ov, err);
}

struct overlay *virtio_blk_overlay(struct virtio_blk *b) { return b ? b->ov : NULL; }

void virtio_blk_free(struct virtio_blk *b)
{
	virtio_blk_finish(b, false, NULL, NULL);
	blk_free(b);
}
