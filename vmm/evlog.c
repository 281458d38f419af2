/* vmm/evlog.c - the event log of a recorded run (evlog.h). */
#include "evlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fileio.h"
#include "util.h"

#define BUF_CAP (256u << 10)

const char *evlog_src_name(unsigned src)
{
	switch (src) {
	case EVLOG_SRC_CLOCK: return "clock";
	case EVLOG_SRC_RANDOM: return "random";
	case EVLOG_SRC_RNG: return "virtio-rng";
	case EVLOG_SRC_DISK: return "disk-read checks";
	default: return NULL;
	}
}

/* ---------------------------------------------------------------- writer */

struct evlog {
	pthread_mutex_t lock;
	int fd;
	char path[4096];
	uint8_t *buf;
	size_t used;
	uint64_t records, bytes;
	int error; /* the first write's errno, 0 when none */
};


static int flush_locked(struct evlog *l)
{
	int w;
	if (l->used && !l->error && (w = write_all(l->fd, l->buf, l->used)) < 0) {
		l->error = -w;
		tvm_log("warning: event log %s: %s; recording stopped (the log ends before this point)", l->path,
			strerror(l->error));
	}
	l->used = 0;
	return l->error ? -1 : 0;
}

struct evlog *evlog_create(const char *path, const uint8_t id[16], bool exact, struct tvm_err *err)
{
	struct evlog *l = calloc(1, sizeof(*l));
	if (!l || !(l->buf = malloc(BUF_CAP))) {
		free(l);
		tvm_seterr(err, "out of memory for the event log");
		return NULL;
	}
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (l->fd < 0) {
		tvm_seterr(err, "cannot create the event log %s: %s", path, strerror(errno));
		free(l->buf);
		free(l);
		return NULL;
	}
	uint8_t h[EVLOG_HDR] = { 0 };
	memcpy(h, EVLOG_MAGIC, 8);
	le_put32(h + 8, EVLOG_VERSION);
	le_put32(h + 12, exact ? EVLOG_FLAG_EXACT : 0);
	if (id)
		memcpy(h + 16, id, 16);
	/* The header at once: a segment killed before its first flush still
	 * reads as one (with no records). */
	int w = write_all(l->fd, h, sizeof(h));
	if (w < 0) {
		tvm_seterr(err, "cannot write the event log %s: %s", path, strerror(-w));
		close(l->fd);
		unlink(path);
		free(l->buf);
		free(l);
		return NULL;
	}
	l->bytes = sizeof(h);
	pthread_mutex_init(&l->lock, NULL);
	return l;
}

/* Frame and body head, then the payload: one record under the lock. */
static void append(struct evlog *l, const uint8_t *head, size_t hlen, const void *data, size_t dlen)
{
	size_t body = hlen + dlen;
	if (body > EVLOG_MAX_BODY)
		return; /* callers keep their payloads smaller */
	uint8_t frame[EVLOG_FRAME];
	uLong crc = crc32(0, head, (uInt)hlen);
	if (dlen)
		crc = crc32(crc, data, (uInt)dlen);
	le_put32(frame, (uint32_t)body);
	le_put32(frame + 4, (uint32_t)crc);
	pthread_mutex_lock(&l->lock);
	if (!l->error) {
		if (l->used + EVLOG_FRAME + body > BUF_CAP)
			flush_locked(l);
		if (!l->error) {
			memcpy(l->buf + l->used, frame, EVLOG_FRAME);
			memcpy(l->buf + l->used + EVLOG_FRAME, head, hlen);
			if (dlen)
				memcpy(l->buf + l->used + EVLOG_FRAME + hlen, data, dlen);
			l->used += EVLOG_FRAME + body;
			l->records++;
			l->bytes += EVLOG_FRAME + body;
		}
	}
	pthread_mutex_unlock(&l->lock);
}

static void head16(uint8_t *h, unsigned type, int vcpu, unsigned src, uint64_t seq)
{
	memset(h, 0, 16);
	h[0] = (uint8_t)type;
	h[1] = (uint8_t)vcpu;
	le_put16(h + 2, (uint16_t)src);
	le_put64(h + 8, seq);
}

void evlog_exit(struct evlog *l, int vcpu, uint64_t seq, unsigned bus, bool write, unsigned size, uint32_t count,
		uint64_t addr, const void *data)
{
	uint8_t h[32];
	head16(h, EVLOG_EXIT, vcpu, 0, seq);
	h[16] = (uint8_t)bus;
	h[17] = write;
	le_put16(h + 18, (uint16_t)size);
	le_put32(h + 20, count);
	le_put64(h + 24, addr);
	append(l, h, sizeof(h), data, (size_t)size * count);
}

void evlog_data(struct evlog *l, int vcpu, uint64_t seq, unsigned src, const void *data, size_t len)
{
	uint8_t h[16];
	const uint8_t *p = data;
	/* A large read goes in pieces, each a record of its own. */
	do {
		size_t n = len < 65536 ? len : 65536;
		head16(h, EVLOG_DATA, vcpu, src, seq);
		append(l, h, sizeof(h), p, n);
		p += n, len -= n;
	} while (len);
}

void evlog_counts(const struct evlog *l, uint64_t *records, uint64_t *bytes)
{
	*records = l->records;
	*bytes = l->bytes;
}

int evlog_close(struct evlog *l, unsigned why, uint64_t counts[2], struct tvm_err *err)
{
	uint8_t h[32] = { 0 };
	head16(h, EVLOG_END, 0, 0, 0);
	le_put32(h + 16, why);
	le_put64(h + 24, l->records);
	append(l, h, sizeof(h), NULL, 0);
	pthread_mutex_lock(&l->lock);
	int r = flush_locked(l);
	if (r == 0 && fsync(l->fd) < 0) {
		l->error = errno;
		r = -1;
	}
	pthread_mutex_unlock(&l->lock);
	if (counts) {
		counts[0] = l->records;
		counts[1] = l->bytes;
	}
	if (r < 0)
		tvm_seterr(err, "event log %s: %s", l->path, strerror(l->error));
	else if (fsync_parent(l->path) < 0)
		r = tvm_seterr(err, "event log %s: cannot sync its directory: %s", l->path, strerror(errno));
	close(l->fd);
	pthread_mutex_destroy(&l->lock);
	free(l->buf);
	free(l);
	return r;
}

/* ---------------------------------------------------------------- reader */

static int src_read(struct evlog_reader *r, uint64_t off, void *buf, size_t len)
{
	if (off > r->size || len > r->size - off)
		return -1;
	if (r->mem) {
		memcpy(buf, r->mem + off, len);
		return 0;
	}
	int rc = pread_all(r->fd, buf, len, off);
	if (rc < 0)
		errno = -rc;
	return rc;
}

static int reader_start(struct evlog_reader *r, const char *what, struct tvm_err *err)
{
	uint8_t h[EVLOG_HDR];
	r->body = malloc(EVLOG_MAX_BODY);
	if (!r->body)
		return tvm_seterr(err, "out of memory");
	if (r->size < EVLOG_HDR || src_read(r, 0, h, sizeof(h)) < 0)
		return tvm_seterr(err, "%s: %llu bytes, too short for an event log's %u-byte header", what,
				  (unsigned long long)r->size, EVLOG_HDR);
	if (memcmp(h, EVLOG_MAGIC, 8))
		return tvm_seterr(err, "%s: not a trialvm event log (no %s magic)", what, EVLOG_MAGIC);
	r->version = le_get32(h + 8);
	r->flags = le_get32(h + 12);
	if (r->version != EVLOG_VERSION)
		return tvm_seterr(err, "%s: event log format version %u; this trialvm reads version %u", what, r->version,
				  EVLOG_VERSION);
	if (r->flags & ~EVLOG_FLAG_EXACT)
		return tvm_seterr(err, "%s: unknown header flags 0x%x", what, r->flags);
	memcpy(r->id, h + 16, 16);
	r->off = EVLOG_HDR;
	return 0;
}

int evlog_open(const char *path, struct evlog_reader *r, struct tvm_err *err)
{
	memset(r, 0, sizeof(*r));
	struct stat st;
	r->fd = open_regular(path, &st, err);
	if (r->fd < 0)
		return -1;
	r->own_fd = true;
	r->size = (uint64_t)st.st_size;
	if (reader_start(r, path, err) < 0) {
		evlog_reader_close(r);
		return -1;
	}
	return 0;
}

int evlog_open_fd(int fd, uint64_t size, const char *what, struct evlog_reader *r, struct tvm_err *err)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->size = size;
	if (reader_start(r, what, err) < 0) {
		evlog_reader_close(r);
		return -1;
	}
	return 0;
}

int evlog_open_mem(const uint8_t *buf, size_t len, struct evlog_reader *r, struct tvm_err *err)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->mem = buf;
	r->size = len;
	if (reader_start(r, "event log", err) < 0) {
		evlog_reader_close(r);
		return -1;
	}
	return 0;
}

void evlog_reader_close(struct evlog_reader *r)
{
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->body);
	r->body = NULL;
}

/* Everything from off to the end is zero bytes (space the file system
 * allocated for a write that never landed). */
static bool zero_tail(struct evlog_reader *r, uint64_t off)
{
	uint8_t b[4096];
	while (off < r->size) {
		size_t n = r->size - off < sizeof(b) ? (size_t)(r->size - off) : sizeof(b);
		if (src_read(r, off, b, n) < 0)
			return false;
		for (size_t i = 0; i < n; i++)
			if (b[i])
				return false;
		off += n;
	}
	return true;
}

static int cut(struct evlog_reader *r)
{
	r->torn = true;
	r->torn_at = r->off;
	r->off = r->size;
	return 0;
}

int evlog_next(struct evlog_reader *r, struct evlog_rec *rec, struct tvm_err *err)
{
	if (r->off >= r->size)
		return 0;
	uint64_t at = r->off, left = r->size - at;
	unsigned long long idx = (unsigned long long)r->index, off = (unsigned long long)at;
	if (left < EVLOG_FRAME)
		return cut(r);
	uint8_t frame[EVLOG_FRAME];
	if (src_read(r, at, frame, sizeof(frame)) < 0)
		return tvm_seterr(err, "record %llu at offset %llu: cannot read: %s", idx, off, strerror(errno));
	uint32_t len = le_get32(frame), crc = le_get32(frame + 4);
	if (len < EVLOG_MIN_BODY || len > EVLOG_MAX_BODY) {
		if (zero_tail(r, at))
			return cut(r);
		return tvm_seterr(err, "record %llu at offset %llu: length %u is outside %u-%u", idx, off, len,
				  EVLOG_MIN_BODY, EVLOG_MAX_BODY);
	}
	if (len > left - EVLOG_FRAME)
		return cut(r);
	if (src_read(r, at + EVLOG_FRAME, r->body, len) < 0)
		return tvm_seterr(err, "record %llu at offset %llu: cannot read: %s", idx, off, strerror(errno));
	if ((uint32_t)crc32(0, r->body, len) != crc) {
		if (at + EVLOG_FRAME + len == r->size)
			return cut(r);
		return tvm_seterr(err, "record %llu at offset %llu: checksum mismatch (the file is corrupt)", idx, off);
	}
	if (r->ended)
		return tvm_seterr(err, "record %llu at offset %llu: a record after the log's END record", idx, off);
	const uint8_t *b = r->body;
	memset(rec, 0, sizeof(*rec));
	rec->type = b[0];
	rec->vcpu = b[1];
	rec->src = le_get16(b + 2);
	rec->seq = le_get64(b + 8);
	rec->index = r->index;
	rec->offset = at;
	const char *bad = NULL;
	if (le_get32(b + 4))
		bad = "reserved bytes are not zero";
	else if (rec->vcpu >= 64)
		bad = "a vCPU number over 63";
	else if (rec->type == EVLOG_EXIT) {
		if (len < 32)
			bad = "an exit record shorter than 32 bytes";
		else {
			rec->bus = b[16];
			rec->dir = b[17];
			rec->size = le_get16(b + 18);
			rec->count = le_get32(b + 20);
			rec->addr = le_get64(b + 24);
			rec->data = b + 32;
			rec->len = len - 32;
			if (rec->src)
				bad = "an exit record with a source";
			else if (rec->seq == 0)
				bad = "exit number 0";
			else if (rec->bus != 1 && rec->bus != 2)
				bad = "a bus other than port I/O (1) and MMIO (2)";
			else if (rec->dir > 1)
				bad = "a direction other than read (0) and write (1)";
			else if (rec->size == 0 || rec->size > 8 || rec->count == 0 ||
				 (uint64_t)rec->size * rec->count != rec->len)
				bad = "an access size and count that do not match its data";
			else if (rec->bus == 1 && (rec->addr > 0xffff || (rec->size != 1 && rec->size != 2 && rec->size != 4)))
				bad = "a port I/O exit outside ports 0-0xffff or of a size other than 1, 2 and 4";
			else if (rec->bus == 2 && rec->count != 1)
				bad = "an MMIO exit with a repeat count";
		}
	} else if (rec->type == EVLOG_DATA) {
		rec->data = b + 16;
		rec->len = len - 16;
		if (!evlog_src_name(rec->src))
			bad = "an unknown data source";
		else if (rec->seq == 0)
			bad = "exit number 0";
		else if (rec->len == 0)
			bad = "no data";
	} else if (rec->type == EVLOG_END) {
		if (len != 32)
			bad = "an END record that is not 32 bytes";
		else {
			rec->why = le_get32(b + 16);
			rec->before = le_get64(b + 24);
			if (rec->src || rec->seq || rec->vcpu || le_get32(b + 20))
				bad = "reserved bytes are not zero";
			else if (rec->why > EVLOG_END_MAX)
				bad = "an unknown reason";
			else if (rec->before != r->index)
				bad = "a record count that is not the number of records before it";
		}
		r->ended = true;
	} else
		bad = "an unknown record type";
	if (!bad && (rec->type == EVLOG_EXIT || rec->type == EVLOG_DATA) && rec->seq != r->last_seq[rec->vcpu] + 1)
		return tvm_seterr(err, "record %llu at offset %llu: exit %llu of vCPU %u follows exit %llu (exits are numbered one after another)",
				  idx, off, (unsigned long long)rec->seq, rec->vcpu, (unsigned long long)r->last_seq[rec->vcpu]);
	if (bad)
		return tvm_seterr(err, "record %llu at offset %llu (type %u): %s", idx, off, rec->type, bad);
	if (rec->type == EVLOG_EXIT)
		r->last_seq[rec->vcpu] = rec->seq;
	r->off = at + EVLOG_FRAME + len;
	r->index++;
	return 1;
}
