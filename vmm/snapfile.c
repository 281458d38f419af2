/* vmm/snapfile.c - the snapshot file container (snapfile.h).
 *
 * Layout, little-endian:
 *   header   0 magic "TVMSNAP\0"   8 u32 format version   12 u32 header size
 *            16 id[16]   32 parent[16]   48 trialvm version[32] (NUL padded)
 *            80 u32 image count   84 u32 0   88 u64 0
 *            96 images, 40 bytes each: u8 role, 3 x u8 0, u32 index, sha256[32]
 *            then u32 CRC-32 of everything before it in the header
 *   section  u32 type, u16 version, u16 flags, u64 payload length,
 *            u32 CRC-32 of the payload, u32 CRC-32 of these first 20 bytes;
 *            then the payload
 *   END      type 0, version 1, required, length 0: the last section;
 *            nothing may follow it.
 */
#include "snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fileio.h"
#include "util.h"

#define HDR_FIXED 96u
#define IMG_SIZE 40u
#define SEC_HDR 24u
#define SEC_END 0u
#define VERIFY_AT_OPEN (64ull << 20) /* payloads up to this size are checked by snap_open */


static uint32_t crc(uint32_t c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
		c = (uint32_t)crc32(c, b, k);
		b += k;
		n -= k;
	}
	return c;
}

/* ------------------------------------------------------------- writing */

struct snap_writer {
	int fd;
	uint64_t pos;
	char *path, *tmp;
};

static int w_put(struct snap_writer *w, const void *p, uint64_t n, struct tvm_err *err)
{
	int rc = n > SIZE_MAX ? -EFBIG : pwrite_all(w->fd, p, (size_t)n, w->pos);
	if (rc < 0)
		return tvm_seterr(err, "cannot write snapshot %s: %s", w->path, strerror(-rc));
	w->pos += n;
	return 0;
}

int snap_create(const char *path, const struct snap_header *h, struct snap_writer **out, struct tvm_err *err)
{
	if (h->nimages > SNAP_MAX_IMAGES)
		return tvm_seterr(err, "snapshot %s: %u images (at most %u)", path, h->nimages, SNAP_MAX_IMAGES);
	struct snap_writer *w = calloc(1, sizeof(*w));
	size_t pl = strlen(path);
	if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(pl + 8))) {
		if (w)
			free(w->path);
		free(w);
		return tvm_seterr(err, "out of memory");
	}
	memcpy(w->tmp, path, pl);
	memcpy(w->tmp + pl, ".XXXXXX", 8);
	w->fd = mkostemp(w->tmp, O_CLOEXEC);
	if (w->fd < 0) {
		tvm_seterr(err, "cannot create a temporary file next to %s: %s", path, strerror(errno));
		free(w->tmp);
		free(w->path);
		free(w);
		return -1;
	}
	uint32_t size = HDR_FIXED + IMG_SIZE * h->nimages + 4;
	uint8_t b[HDR_FIXED + IMG_SIZE * SNAP_MAX_IMAGES + 4];
	memset(b, 0, sizeof(b));
	memcpy(b, SNAP_MAGIC, 8);
	le_put32(b + 8, SNAP_FORMAT_VERSION);
	le_put32(b + 12, size);
	memcpy(b + 16, h->id, 16);
	memcpy(b + 32, h->parent, 16);
	memcpy(b + 48, h->trialvm_version, strnlen(h->trialvm_version, 31)); /* NUL padded (b is zeroed) */
	le_put32(b + 80, h->nimages);
	for (uint32_t i = 0; i < h->nimages; i++) {
		uint8_t *e = b + HDR_FIXED + IMG_SIZE * i;
		e[0] = h->images[i].role;
		le_put32(e + 4, h->images[i].index);
		memcpy(e + 8, h->images[i].sha256, 32);
	}
	le_put32(b + size - 4, crc(0, b, size - 4));
	if (w_put(w, b, size, err) < 0) {
		snap_abandon(w);
		return -1;
	}
	*out = w;
	return 0;
}

int snap_add(struct snap_writer *w, uint32_t type, uint16_t version, uint16_t flags, const void *data, uint64_t len,
	     struct tvm_err *err)
{
	if (type == SEC_END)
		return tvm_seterr(err, "snapshot %s: section type 0 is the end marker", w->path);
	if (len > SNAP_MAX_SECTION)
		return tvm_seterr(err, "snapshot %s: a %" PRIu64 "-byte section is larger than the format allows",
				  w->path, len);
	uint8_t h[SEC_HDR];
	le_put32(h, type);
	le_put16(h + 4, version);
	le_put16(h + 6, flags);
	le_put64(h + 8, len);
	le_put32(h + 16, crc(0, data, (size_t)len));
	le_put32(h + 20, crc(0, h, 20));
	return w_put(w, h, SEC_HDR, err) < 0 ? -1 : w_put(w, data, len, err);
}

void snap_abandon(struct snap_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlink(w->tmp);
	free(w->tmp);
	free(w->path);
	free(w);
}

int snap_commit(struct snap_writer *w, struct tvm_err *err)
{
	uint8_t h[SEC_HDR] = { 0 };
	le_put16(h + 4, 1);
	le_put16(h + 6, SNAP_SECTION_REQUIRED);
	le_put32(h + 16, crc(0, NULL, 0));
	le_put32(h + 20, crc(0, h, 20));
	int rc = w_put(w, h, SEC_HDR, err);
	if (rc == 0 && fsync(w->fd) < 0)
		rc = tvm_seterr(err, "cannot flush snapshot %s: %s", w->path, strerror(errno));
	if (close(w->fd) < 0 && rc == 0)
		rc = tvm_seterr(err, "cannot write snapshot %s: %s", w->path, strerror(errno));
	w->fd = -1;
	if (rc == 0 && rename(w->tmp, w->path) < 0)
		rc = tvm_seterr(err, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
	if (rc == 0) {
		int d = fsync_parent(w->path);
		if (d < 0)
			rc = tvm_seterr(err, "cannot flush the directory of %s: %s", w->path, strerror(-d));
		free(w->tmp);
		free(w->path);
		free(w);
		return rc;
	}
	snap_abandon(w);
	return -1;
}

/* ------------------------------------------------------------- reading */

struct snap_reader {
	int fd;
	char *path;
	uint64_t size;
	struct snap_header h;
	struct snap_section *sec;
	size_t nsec, next;
};

static int r_get(const struct snap_reader *r, uint64_t off, void *buf, uint64_t len, const char *what,
		 struct tvm_err *err)
{
	uint64_t end;
	if (add_overflows(off, len, &end) || end > r->size)
		return tvm_seterr(err, "snapshot %s is truncated: %s at offset %" PRIu64 " (%" PRIu64
				       " bytes) goes past its end (%" PRIu64 " bytes)",
				  r->path, what, off, len, r->size);
	int rc = len > SIZE_MAX ? -EFBIG : pread_all(r->fd, buf, (size_t)len, off);
	if (rc < 0)
		return tvm_seterr(err, "cannot read snapshot %s at offset %" PRIu64 ": %s", r->path, off,
				  rc == -ENODATA ? "it shrank while being read" : strerror(-rc));
	return 0;
}

/* CRC-32 of a payload, read in pieces. */
static int payload_crc(const struct snap_reader *r, uint64_t off, uint64_t len, uint32_t *out, struct tvm_err *err)
{
	static __thread uint8_t buf[1 << 16];
	uint32_t c = crc(0, NULL, 0);
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);
		if (r_get(r, off + done, buf, n, "a section's payload", err) < 0)
			return -1;
		c = crc(c, buf, (size_t)n);
		done += n;
	}
	*out = c;
	return 0;
}

static int read_header(struct snap_reader *r, struct tvm_err *err)
{
	uint8_t b[HDR_FIXED + IMG_SIZE * SNAP_MAX_IMAGES + 4];
	if (r->size < HDR_FIXED + 4)
		return tvm_seterr(err, "%s is not a trialvm snapshot (%" PRIu64 " bytes, shorter than a header)",
				  r->path, r->size);
	if (r_get(r, 0, b, HDR_FIXED, "the header", err) < 0)
		return -1;
	if (memcmp(b, SNAP_MAGIC, 8) != 0)
		return tvm_seterr(err, "%s is not a trialvm snapshot (no TVMSNAP magic at offset 0)", r->path);
	uint32_t ver = le_get32(b + 8), size = le_get32(b + 12), n = le_get32(b + 80);
	if (ver != SNAP_FORMAT_VERSION)
		return tvm_seterr(err, "snapshot %s has format version %u; this trialvm (%s) reads version %u%s", r->path,
				  ver, TRIALVM_VERSION, SNAP_FORMAT_VERSION,
				  ver > SNAP_FORMAT_VERSION ? ": use the trialvm that wrote it, or a newer one" : "");
	if (n > SNAP_MAX_IMAGES || size != HDR_FIXED + IMG_SIZE * n + 4)
		return tvm_seterr(err, "snapshot %s: corrupt header (%u images, header size %u)", r->path, n, size);
	if (r_get(r, HDR_FIXED, b + HDR_FIXED, size - HDR_FIXED, "the header's image list", err) < 0)
		return -1;
	if (le_get32(b + size - 4) != crc(0, b, size - 4))
		return tvm_seterr(err, "snapshot %s: corrupt header (checksum mismatch)", r->path);
	if (le_get32(b + 84) || le_get64(b + 88) || memchr(b + 48, 0, 32) == NULL)
		return tvm_seterr(err, "snapshot %s: corrupt header (reserved bytes set or version string unterminated)",
				  r->path);
	r->h.format_version = ver;
	memcpy(r->h.id, b + 16, 16);
	memcpy(r->h.parent, b + 32, 16);
	memcpy(r->h.trialvm_version, b + 48, 32);
	r->h.nimages = n;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = b + HDR_FIXED + IMG_SIZE * i;
		if (e[0] < SNAP_IMG_KERNEL || e[0] > SNAP_IMG_DISK || e[1] || e[2] || e[3])
			return tvm_seterr(err, "snapshot %s: corrupt header (image %u has role %u)", r->path, i, e[0]);
		r->h.images[i].role = e[0];
		r->h.images[i].index = le_get32(e + 4);
		memcpy(r->h.images[i].sha256, e + 8, 32);
	}
	return (int)size;
}

const struct snap_known snap_any_type[1] = { { 0, 0, "(any)" } };

static const struct snap_known *find_known(const struct snap_known *k, size_t n, uint32_t type)
{
	for (size_t i = 0; i < n; i++)
		if (k[i].type == type)
			return &k[i];
	return NULL;
}

/* Read and check every section frame from off up to END. */
static int read_sections(struct snap_reader *r, uint64_t off, const struct snap_known *known, size_t nknown,
			 struct tvm_err *err)
{
	size_t cap = 0;
	for (;;) {
		uint8_t h[SEC_HDR];
		if (off == r->size)
			return tvm_seterr(err, "snapshot %s is truncated: it ends at offset %" PRIu64
					       " without its END section (an interrupted write?)",
					  r->path, off);
		if (r_get(r, off, h, SEC_HDR, "a section header", err) < 0)
			return -1;
		if (le_get32(h + 20) != crc(0, h, 20))
			return tvm_seterr(err, "snapshot %s: corrupt section header at offset %" PRIu64 " (checksum mismatch)",
					  r->path, off);
		struct snap_section s = { .type = le_get32(h), .version = le_get16(h + 4), .flags = le_get16(h + 6),
					  .offset = off + SEC_HDR, .length = le_get64(h + 8) };
		uint64_t end;
		if (s.length > SNAP_MAX_SECTION || add_overflows(s.offset, s.length, &end) || end > r->size)
			return tvm_seterr(err, "snapshot %s is truncated or corrupt: the section at offset %" PRIu64
					       " says %" PRIu64 " bytes, past the end of the file (%" PRIu64 " bytes)",
					  r->path, off, s.length, r->size);
		if (s.flags & ~SNAP_SECTION_REQUIRED)
			return tvm_seterr(err, "snapshot %s: the section at offset %" PRIu64 " has unknown flags 0x%x",
					  r->path, off, s.flags);
		if (s.type == SEC_END) {
			if (s.length || s.version != 1 || !(s.flags & SNAP_SECTION_REQUIRED))
				return tvm_seterr(err, "snapshot %s: corrupt END section at offset %" PRIu64, r->path, off);
			if (end != r->size)
				return tvm_seterr(err, "snapshot %s: %" PRIu64 " bytes follow its END section at offset %" PRIu64,
						  r->path, r->size - end, off);
			return 0;
		}
		const struct snap_known *k = find_known(known, nknown, s.type);
		bool any = known == snap_any_type;
		if (!k && (s.flags & SNAP_SECTION_REQUIRED) && !any)
			return tvm_seterr(err, "snapshot %s needs section type %u (version %u, at offset %" PRIu64
					       "), which this trialvm (%s) does not know: it was written by a newer one (%s)",
					  r->path, s.type, s.version, off, TRIALVM_VERSION, r->h.trialvm_version);
		if (k && s.version > k->max_version)
			return tvm_seterr(err, "snapshot %s: section %s is version %u, this trialvm (%s) reads up to version %u",
					  r->path, k->name, s.version, TRIALVM_VERSION, k->max_version);
		s.known = k != NULL || any;
		if (s.length <= VERIFY_AT_OPEN) {
			uint32_t c;
			if (payload_crc(r, s.offset, s.length, &c, err) < 0)
				return -1;
			if (c != le_get32(h + 16))
				return tvm_seterr(err, "snapshot %s: section %s at offset %" PRIu64 " is corrupt (checksum mismatch)",
						  r->path, k ? k->name : "(unknown)", off);
		}
		if (r->nsec == SNAP_MAX_SECTIONS)
			return tvm_seterr(err, "snapshot %s has more than %u sections", r->path, SNAP_MAX_SECTIONS);
		if (r->nsec == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct snap_section *ns = realloc(r->sec, ncap * sizeof(*ns));
			if (!ns)
				return tvm_seterr(err, "out of memory reading %s", r->path);
			r->sec = ns;
			cap = ncap;
		}
		r->sec[r->nsec++] = s;
		off = end;
	}
}

int snap_open(const char *path, const struct snap_known *known, size_t nknown, struct snap_reader **out,
	      struct tvm_err *err)
{
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return tvm_seterr(err, "out of memory");
	}
	r->fd = -1;
	struct stat st;
	r->fd = open_input(path, &st);
	if (r->fd < 0) {
		tvm_seterr(err, "cannot open snapshot %s: %s", path, strerror(errno));
		snap_close(r);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		tvm_seterr(err, "snapshot %s is not a regular file", path);
		snap_close(r);
		return -1;
	}
	r->size = (uint64_t)st.st_size;
	int hs = read_header(r, err);
	if (hs < 0 || read_sections(r, (uint64_t)hs, known, nknown, err) < 0) {
		snap_close(r);
		return -1;
	}
	*out = r;
	return 0;
}

const struct snap_header *snap_header_of(const struct snap_reader *r) { return &r->h; }

void snap_rewind(struct snap_reader *r) { r->next = 0; }

int snap_next(struct snap_reader *r, struct snap_section *s)
{
	if (r->next >= r->nsec)
		return 0;
	*s = r->sec[r->next++];
	return 1;
}

int snap_read(struct snap_reader *r, const struct snap_section *s, uint64_t off, void *buf, uint64_t len,
	      struct tvm_err *err)
{
	uint64_t end;
	if (add_overflows(off, len, &end) || end > s->length)
		return tvm_seterr(err, "snapshot %s: read of %" PRIu64 " bytes at %" PRIu64 " past the end of a %" PRIu64
				       "-byte section",
				  r->path, len, off, s->length);
	return r_get(r, s->offset + off, buf, len, "a section's payload", err);
}

void snap_close(struct snap_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->sec);
	free(r->path);
	free(r);
}
