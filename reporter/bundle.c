/* reporter/bundle.c - report bundles (bundle.h): made from a report
 * directory against the vendor's master, read back, shown and rebuilt. */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "../vmm/fileio.h"
#include "../vmm/snapfile.h"
#include "../vmm/snapshot.h"
#include "../vmm/text.h"
#include "../vmm/util.h"

#define PG 4096u
#define ZLEVEL 3
#define MAP_MAGIC "TVMBMAP1"
#define LAY_MAGIC "TVMSLAY1"
#define LAY_END 0xffffffffu
enum { K_ZERO = 0, K_MASTER = 1, K_STORE = 2 };
enum { L_VERBATIM = 0, L_RUNS = 1 };
#define LAY_PREFIX_MAX 4096 /* a disk section's name and size */
#define N_MAX ((1u << 30) - 1) /* positions in one map entry */

/* ------------------------------------------------------------- helpers */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static int buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 65536;
		while (cap - b->len < n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int buf_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4];
	le_put32(x, v);
	return buf_put(b, x, 4);
}

static int buf_u64(struct buf *b, uint64_t v)
{
	uint8_t x[8];
	le_put64(x, v);
	return buf_put(b, x, 8);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w)
			return false;
	}
	return true;
}

static bool hex64_ok(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* sha256 through a context kept for it (EVP's one-shot form looks the
 * digest up at every call: too slow for every page of guest memory). */
struct hasher {
	EVP_MD_CTX *ctx;
	EVP_MD *md;
};

static int hasher_init(struct hasher *h)
{
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	h->ctx = EVP_MD_CTX_new();
	return h->md && h->ctx ? 0 : -1;
}

static void hasher_free(struct hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
}

static void hash_begin(struct hasher *h) { EVP_DigestInit_ex2(h->ctx, h->md, NULL); }
static void hash_more(struct hasher *h, const void *p, size_t n) { EVP_DigestUpdate(h->ctx, p, n); }
static void hash_end(struct hasher *h, uint8_t md[32]) { EVP_DigestFinal_ex(h->ctx, md, NULL); }

static void hash_once(struct hasher *h, const void *p, size_t n, uint8_t md[32])
{
	hash_begin(h);
	hash_more(h, p, n);
	hash_end(h, md);
}

/* Progress on stderr for long work, a line at most every half second. */
struct progress {
	bool on;
	const char *what;
	uint64_t done, total, last_ns;
};

static void progress_add(struct progress *pr, uint64_t n)
{
	pr->done += n;
	if (!pr->on || !pr->total)
		return;
	uint64_t now = now_ns();
	if (now - pr->last_ns < 500000000ull && pr->done < pr->total)
		return;
	pr->last_ns = now;
	fprintf(stderr, "\rtrialvm: %s: %3llu%% of %llu MiB", pr->what,
		(unsigned long long)(pr->done * 100 / pr->total), (unsigned long long)(pr->total >> 20));
	if (pr->done >= pr->total)
		fputc('\n', stderr);
}

/* A table of page hashes: sha256 -> a 64-bit value (open addressing). */
struct hent {
	uint8_t h[32];
	uint64_t v;
	bool used;
};
struct htab {
	struct hent *e;
	uint64_t cap, n;
};

static struct hent *ht_slot(const struct htab *t, const uint8_t h[32])
{
	uint64_t i;
	memcpy(&i, h, 8);
	for (i &= t->cap - 1;; i = (i + 1) & (t->cap - 1))
		if (!t->e[i].used || !memcmp(t->e[i].h, h, 32))
			return &t->e[i];
}

static bool ht_get(const struct htab *t, const uint8_t h[32], uint64_t *v)
{
	if (!t->cap)
		return false;
	struct hent *e = ht_slot(t, h);
	if (!e->used)
		return false;
	*v = e->v;
	return true;
}

/* Add h -> v unless h is there already. -1 when out of memory. */
static int ht_add(struct htab *t, const uint8_t h[32], uint64_t v)
{
	if ((t->n + 1) * 2 > t->cap) {
		struct htab n = { calloc(t->cap ? t->cap * 2 : 4096, sizeof(struct hent)), t->cap ? t->cap * 2 : 4096, 0 };
		if (!n.e)
			return -1;
		for (uint64_t i = 0; i < t->cap; i++)
			if (t->e[i].used) {
				*ht_slot(&n, t->e[i].h) = t->e[i];
				n.n++;
			}
		free(t->e);
		*t = n;
	}
	struct hent *e = ht_slot(t, h);
	if (!e->used) {
		memcpy(e->h, h, 32);
		e->v = v;
		e->used = true;
		t->n++;
	}
	return 0;
}

/* ---------------------------------------------------------- the master */

/* The master's pages by number: the RAM file, then each part. */
struct master_io {
	const struct bundle_master *m;
	int ram_fd;
	int fd[BUNDLE_MASTER_PARTS];
	uint64_t first[BUNDLE_MASTER_PARTS + 1]; /* each part's first page; first[nparts]: the total */
};

static uint64_t pages_of(uint64_t bytes) { return bytes / PG + (bytes % PG != 0); }

static void master_close(struct master_io *mi)
{
	if (mi->ram_fd >= 0)
		close(mi->ram_fd);
	for (int i = 0; mi->m && i < mi->m->nparts; i++)
		if (mi->fd[i] >= 0)
			close(mi->fd[i]);
}

static int master_open(struct master_io *mi, const struct bundle_master *m, struct tvm_err *err)
{
	memset(mi, 0, sizeof(*mi));
	mi->ram_fd = -1;
	for (int i = 0; i < BUNDLE_MASTER_PARTS; i++)
		mi->fd[i] = -1;
	mi->m = m;
	if (!m)
		return 0;
	struct stat st;
	if (m->ram_path[0]) {
		if ((mi->ram_fd = open_regular(m->ram_path, &st, err)) < 0)
			return -1;
		if ((uint64_t)st.st_size != m->ram_size || m->ram_size % PG)
			return tvm_seterr(err, "the master's memory %s is %lld bytes, not %llu", m->ram_path,
					  (long long)st.st_size, (unsigned long long)m->ram_size);
	}
	uint64_t at = m->ram_size / PG;
	for (int i = 0; i < m->nparts; i++) {
		if ((mi->fd[i] = open_regular(m->parts[i].path, &st, err)) < 0)
			return -1;
		if ((uint64_t)st.st_size != m->parts[i].size)
			return tvm_seterr(err, "the master's part %s (%s) is %lld bytes, not %llu", m->parts[i].name,
					  m->parts[i].path, (long long)st.st_size, (unsigned long long)m->parts[i].size);
		mi->first[i] = at;
		at += pages_of(m->parts[i].size);
	}
	mi->first[m->nparts] = at;
	return 0;
}

static uint64_t master_pages(const struct master_io *mi) { return mi->m ? mi->first[mi->m->nparts] : 0; }

/* Master page p into out (PG bytes). */
static int master_page(const struct master_io *mi, uint64_t p, uint8_t *out, struct tvm_err *err)
{
	int fd = -1;
	uint64_t off = 0, size = 0;
	if (p < mi->m->ram_size / PG) {
		fd = mi->ram_fd, off = p * PG, size = mi->m->ram_size;
	} else {
		for (int i = 0; i < mi->m->nparts; i++)
			if (p >= mi->first[i] && p < mi->first[i + 1])
				fd = mi->fd[i], off = (p - mi->first[i]) * PG, size = mi->m->parts[i].size;
	}
	if (fd < 0)
		return tvm_seterr(err, "master page %llu does not exist", (unsigned long long)p);
	size_t n = size - off < PG ? (size_t)(size - off) : PG;
	memset(out + n, 0, PG - n);
	int r = pread_all(fd, out, n, off);
	return r < 0 ? tvm_seterr(err, "cannot read the master: %s", strerror(-r)) : 0;
}

/* ============================================================ creating */

struct creator {
	const char *dir;   /* the temporary bundle directory */
	struct master_io mi;
	struct htab master_ix, store_ix;
	uint64_t npages;   /* in the store */
	struct buf store;  /* pages not yet in a chunk */
	json_t *page_chunks, *chunks;
	ZSTD_CCtx *cc;
	struct progress pr;
	struct hasher page_h, file_h;
	uint8_t *zbuf;     /* compression output */
	size_t zcap;
};

/* Compress raw into a chunk file named by its sha256 (once); its name
 * into name. */
static int put_chunk(struct creator *c, const void *raw, size_t len, char name[65], struct tvm_err *err)
{
	size_t bound = ZSTD_compressBound(len);
	if (bound > c->zcap) {
		free(c->zbuf);
		if (!(c->zbuf = malloc(bound)))
			return tvm_seterr(err, "out of memory");
		c->zcap = bound;
	}
	size_t z = ZSTD_compressCCtx(c->cc, c->zbuf, bound, raw, len, ZLEVEL);
	if (ZSTD_isError(z))
		return tvm_seterr(err, "zstd: %s", ZSTD_getErrorName(z));
	uint8_t md[32];
	hash_once(&c->page_h, c->zbuf, z, md);
	sha256_hex(md, name);
	if (json_object_get(c->chunks, name))
		return 0;
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/chunks/%s", c->dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = fd < 0 ? -errno : write_all(fd, c->zbuf, z);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		return tvm_seterr(err, "cannot write %s: %s", path, strerror(-r));
	json_object_set_new(c->chunks, name, json_integer((json_int_t)z));
	return 0;
}

static int flush_store(struct creator *c, struct tvm_err *err)
{
	if (!c->store.len)
		return 0;
	char name[65];
	if (put_chunk(c, c->store.p, c->store.len, name, err) < 0)
		return -1;
	json_array_append_new(c->page_chunks, json_string(name));
	c->store.len = 0;
	return 0;
}

/* A stream (a map or a layout) cut into chunks as it grows. */
struct stream {
	struct buf b;
	json_t *names;
};

static int stream_flush(struct creator *c, struct stream *s, bool all, struct tvm_err *err)
{
	while (s->b.len >= BUNDLE_PIECE || (all && s->b.len)) {
		size_t n = s->b.len < BUNDLE_PIECE ? s->b.len : BUNDLE_PIECE;
		char name[65];
		if (put_chunk(c, s->b.p, n, name, err) < 0)
			return -1;
		json_array_append_new(s->names, json_string(name));
		memmove(s->b.p, s->b.p + n, s->b.len - n);
		s->b.len -= n;
	}
	return 0;
}

/* A block map being written: the open entry merges consecutive pages. */
struct mapw {
	struct stream s;
	uint64_t positions;
	int kind;        /* of the open entry; -1 none */
	uint32_t n;
	uint64_t first;
};

static int map_close_entry(struct creator *c, struct mapw *m, struct tvm_err *err)
{
	if (m->kind < 0)
		return 0;
	if (buf_u32(&m->s.b, (uint32_t)m->kind << 30 | m->n) < 0 ||
	    (m->kind != K_ZERO && buf_u64(&m->s.b, m->first) < 0))
		return tvm_seterr(err, "out of memory");
	m->kind = -1;
	return stream_flush(c, &m->s, false, err);
}

static int map_add(struct creator *c, struct mapw *m, int kind, uint64_t index, struct tvm_err *err)
{
	m->positions++;
	if (m->kind == kind && m->n < N_MAX && (kind == K_ZERO || index == m->first + m->n)) {
		m->n++;
		return 0;
	}
	if (map_close_entry(c, m, err) < 0)
		return -1;
	m->kind = kind;
	m->n = 1;
	m->first = index;
	return 0;
}

/* One page of a file into the map: zero, the master's, or the store's
 * (added when new). */
static int add_page(struct creator *c, struct mapw *m, const uint8_t *page, struct tvm_err *err)
{
	if (is_zero(page, PG))
		return map_add(c, m, K_ZERO, 0, err);
	uint8_t h[32];
	uint64_t v;
	hash_once(&c->page_h, page, PG, h);
	if (ht_get(&c->master_ix, h, &v))
		return map_add(c, m, K_MASTER, v, err);
	if (!ht_get(&c->store_ix, h, &v)) {
		v = c->npages++;
		if (ht_add(&c->store_ix, h, v) < 0 || buf_put(&c->store, page, PG) < 0)
			return tvm_seterr(err, "out of memory");
		if (c->store.len == (size_t)BUNDLE_PAGES_PER_CHUNK * PG && flush_store(c, err) < 0)
			return -1;
	}
	return map_add(c, m, K_STORE, v, err);
}

static int map_begin(struct mapw *m, struct tvm_err *err)
{
	memset(m, 0, sizeof(*m));
	m->kind = -1;
	m->s.names = json_array();
	if (!m->s.names || buf_put(&m->s.b, MAP_MAGIC, 8) < 0)
		return tvm_seterr(err, "out of memory");
	return 0;
}

static int map_end(struct creator *c, struct mapw *m, uint64_t want, struct tvm_err *err)
{
	if (map_close_entry(c, m, err) < 0 || stream_flush(c, &m->s, true, err) < 0)
		return -1;
	if (m->positions != want)
		return tvm_seterr(err, "internal: a block map of %llu positions for %llu", (unsigned long long)m->positions,
				  (unsigned long long)want);
	return 0;
}

static void map_free(struct mapw *m)
{
	free(m->s.b.p);
	json_decref(m->s.names);
}

/* Index every non-zero page of the master by its sha256. */
static int index_master(struct creator *c, struct tvm_err *err)
{
	uint64_t n = master_pages(&c->mi);
	uint8_t *page = malloc(PG);
	if (!page)
		return tvm_seterr(err, "out of memory");
	struct progress pr = { c->pr.on, "indexing the master", 0, n * PG, 0 };
	int rc = 0;
	for (uint64_t p = 0; rc == 0 && p < n; p++) {
		if ((rc = master_page(&c->mi, p, page, err)) < 0)
			break;
		progress_add(&pr, PG);
		if (is_zero(page, PG))
			continue;
		uint8_t h[32];
		hash_once(&c->page_h, page, PG, h);
		if (ht_add(&c->master_ix, h, p) < 0)
			rc = tvm_seterr(err, "out of memory");
	}
	free(page);
	return rc;
}

/* A plain file as blocks: its map, size and sha256 into f. */
static int add_blocks(struct creator *c, const char *path, json_t *f, struct tvm_err *err)
{
	struct stat st;
	int fd = open_regular(path, &st, err);
	if (fd < 0)
		return -1;
	uint64_t size = (uint64_t)st.st_size, blocks = pages_of(size);
	struct mapw m;
	struct hasher *sh = &c->file_h;
	hash_begin(sh);
	uint8_t *chunk = malloc(1u << 20);
	int rc = chunk ? map_begin(&m, err) : tvm_seterr(err, "out of memory");
	for (uint64_t off = 0; rc == 0 && off < size;) {
		/* Holes of sparse dumps are skipped without reading them. */
		off_t data = lseek(fd, (off_t)off, SEEK_DATA);
		uint64_t next = data < 0 ? size : (uint64_t)data & ~(uint64_t)(PG - 1);
		while (rc == 0 && off < next) {
			static const uint8_t zero[1u << 16];
			uint64_t k = next - off < sizeof(zero) ? next - off : sizeof(zero);
			hash_more(sh, zero, k);
			for (uint64_t b = 0; rc == 0 && b < k; b += PG)
				rc = map_add(c, &m, K_ZERO, 0, err);
			off += k;
			progress_add(&c->pr, k);
		}
		if (rc < 0 || off >= size)
			break;
		size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
		int r = pread_all(fd, chunk, n, off);
		if (r < 0) {
			rc = tvm_seterr(err, "cannot read %s: %s", path, strerror(-r));
			break;
		}
		hash_more(sh, chunk, n);
		for (size_t b = 0; rc == 0 && b < n; b += PG) {
			uint8_t page[PG];
			size_t k = n - b < PG ? n - b : PG;
			memcpy(page, chunk + b, k);
			memset(page + k, 0, PG - k);
			rc = add_page(c, &m, page, err);
		}
		off += n;
		progress_add(&c->pr, n);
	}
	close(fd);
	free(chunk);
	if (rc == 0)
		rc = map_end(c, &m, blocks, err);
	if (rc == 0) {
		uint8_t md[32];
		char hex[65];
		hash_end(sh, md);
		sha256_hex(md, hex);
		json_object_set_new(f, "size", json_integer((json_int_t)size));
		json_object_set_new(f, "sha256", json_string(hex));
		json_object_set_new(f, "recipe", json_string("blocks"));
		json_object_set(f, "map", m.s.names);
	}
	map_free(&m);
	return rc;
}

/* A snapshot: its layout and the map of its data runs' pages. */
struct snapctx {
	struct creator *c;
	struct mapw *m;
	struct stream *lay;
	uint64_t nruns;
	struct buf runs;
};

static int snap_run_cb(void *arg, const struct snap_run *run, const uint8_t *pages, struct tvm_err *err)
{
	struct snapctx *x = arg;
	if (buf_u64(&x->runs, run->gpa) < 0 || buf_u32(&x->runs, run->npages) < 0 || buf_u32(&x->runs, run->flags) < 0 ||
	    buf_u32(&x->runs, run->clen) < 0 || buf_u32(&x->runs, run->crc) < 0)
		return tvm_seterr(err, "out of memory");
	x->nruns++;
	for (uint32_t i = 0; pages && i < run->npages; i++)
		if (add_page(x->c, x->m, pages + (size_t)i * PG, err) < 0)
			return -1;
	progress_add(&x->c->pr, (uint64_t)run->clen);
	return 0;
}

static int add_snapshot(struct creator *c, const char *path, json_t *f, struct tvm_err *err)
{
	struct snap_reader *r;
	if (snap_open(path, snap_any_type, 0, &r, err) < 0)
		return -1;
	const struct snap_header *h = snap_header_of(r);
	struct stream lay = { { 0 }, json_array() };
	struct mapw m;
	struct snapctx x = { c, &m, &lay, 0, { 0 } };
	uint8_t *payload = NULL;
	int rc = map_begin(&m, err);
	if (rc == 0 && (buf_put(&lay.b, LAY_MAGIC, 8) < 0 || buf_u32(&lay.b, h->format_version) < 0 ||
			buf_put(&lay.b, h->trialvm_version, 32) < 0 || buf_put(&lay.b, h->id, 16) < 0 ||
			buf_put(&lay.b, h->parent, 16) < 0 || buf_u32(&lay.b, h->nimages) < 0))
		rc = tvm_seterr(err, "out of memory");
	for (uint32_t i = 0; rc == 0 && i < h->nimages; i++) {
		uint8_t e[8] = { h->images[i].role };
		le_put32(e + 4, h->images[i].index);
		if (buf_put(&lay.b, e, 8) < 0 || buf_put(&lay.b, h->images[i].sha256, 32) < 0)
			rc = tvm_seterr(err, "out of memory");
	}
	struct snap_section s;
	while (rc == 0 && snap_next(r, &s) == 1) {
		if (buf_u32(&lay.b, s.type) < 0 || buf_put(&lay.b, &(uint16_t){ s.version }, 2) < 0 ||
		    buf_put(&lay.b, &(uint16_t){ s.flags }, 2) < 0) {
			rc = tvm_seterr(err, "out of memory");
			break;
		}
		if ((s.type == SNAP_SEC_MEMORY || s.type == SNAP_SEC_DISK) && s.known) {
			/* Runs: a disk's name and size first (disk sections). */
			uint64_t plen = 0;
			x.nruns = 0;
			x.runs.len = 0;
			free(payload);
			payload = NULL;
			if ((rc = snapshot_runs_prefix(r, &s, &plen, err)) < 0 || !(payload = malloc(plen + 1)) ||
			    (rc = snap_read(r, &s, 0, payload, plen, err)) < 0 ||
			    (rc = snapshot_memory_runs(r, &s, snap_run_cb, &x, err)) < 0) {
				rc = rc < 0 ? rc : tvm_seterr(err, "out of memory");
				break;
			}
			if (buf_u32(&lay.b, L_RUNS) < 0 || buf_u32(&lay.b, (uint32_t)plen) < 0 ||
			    buf_put(&lay.b, payload, (size_t)plen) < 0 || buf_u64(&lay.b, x.nruns) < 0 ||
			    buf_put(&lay.b, x.runs.p, x.runs.len) < 0)
				rc = tvm_seterr(err, "out of memory");
		} else {
			free(payload);
			if (s.length > SIZE_MAX || !(payload = malloc(s.length ? (size_t)s.length : 1)))
				rc = tvm_seterr(err, "out of memory for a %llu-byte section", (unsigned long long)s.length);
			else if ((rc = snap_read(r, &s, 0, payload, s.length, err)) == 0 &&
				 (buf_u32(&lay.b, L_VERBATIM) < 0 || buf_u64(&lay.b, s.length) < 0 ||
				  buf_put(&lay.b, payload, (size_t)s.length) < 0))
				rc = tvm_seterr(err, "out of memory");
			progress_add(&c->pr, s.length);
		}
		if (rc == 0)
			rc = stream_flush(c, &lay, false, err);
	}
	if (rc == 0 && buf_u32(&lay.b, LAY_END) < 0)
		rc = tvm_seterr(err, "out of memory");
	if (rc == 0)
		rc = stream_flush(c, &lay, true, err);
	if (rc == 0)
		rc = map_end(c, &m, m.positions, err);
	snap_close(r);
	free(payload);
	free(x.runs.p);
	uint8_t md[32];
	char hex[65];
	struct tvm_err herr = { "" };
	struct stat st;
	if (rc == 0 && (rc = sha256_path(path, md, &herr)) < 0)
		tvm_seterr(err, "%s", herr.msg);
	if (rc == 0 && stat(path, &st) == 0) {
		sha256_hex(md, hex);
		json_object_set_new(f, "size", json_integer((json_int_t)st.st_size));
		json_object_set_new(f, "sha256", json_string(hex));
		json_object_set_new(f, "recipe", json_string("snapshot"));
		json_object_set(f, "map", m.s.names);
		json_object_set(f, "layout", lay.names);
	}
	map_free(&m);
	free(lay.b.p);
	json_decref(lay.names);
	return rc;
}

static int load_json(const char *path, size_t max, json_t **out, struct tvm_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (read_file(path, max, &data, &len, err) < 0)
		return -1;
	json_error_t je;
	*out = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	free(data);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return tvm_seterr(err, "%s is not a JSON object (line %d: %s)", path, je.line, je.text);
	}
	return 0;
}

/* A report's files: report.json and those it lists (plain names in the
 * report directory), the snapshots it names with their parents, and its
 * event log segment (named snapshots/BASENAME in the bundle). */
struct rfile {
	char name[192];
	char path[PATH_MAX];
	bool snapshot;
};

static bool plain_name(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 128 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '_' || *p == '-'))
			return false;
	return true;
}

static int add_rfile(struct rfile *f, int *nf, const char *name, const char *path, bool snapshot, struct tvm_err *err)
{
	for (int i = 0; i < *nf; i++)
		if (!strcmp(f[i].name, name)) {
			if (!strcmp(f[i].path, path))
				return 0;
			return tvm_seterr(err, "two files of the report would be %s in the bundle: %s and %s", name, f[i].path,
					  path);
		}
	if (*nf == BUNDLE_MAX_FILES)
		return tvm_seterr(err, "the report has more than %d files", BUNDLE_MAX_FILES);
	if ((size_t)snprintf(f[*nf].name, sizeof(f[*nf].name), "%s", name) >= sizeof(f[*nf].name) ||
	    (size_t)snprintf(f[*nf].path, sizeof(f[*nf].path), "%s", path) >= sizeof(f[*nf].path))
		return tvm_seterr(err, "%s: path too long", path);
	f[*nf].snapshot = snapshot;
	++*nf;
	return 0;
}

/* snapshots/BASENAME of a path the report names. */
static int snap_name(const char *path, char *name, size_t cap, struct tvm_err *err)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	if (!plain_name(b) || (size_t)snprintf(name, cap, "snapshots/%s", b) >= cap)
		return tvm_seterr(err, "report.json names a snapshot file \"%.200s\" whose name is not a plain file name",
				  path);
	return 0;
}

static int collect(const char *report_dir, json_t *rep, struct rfile *f, int *nf, struct tvm_err *err)
{
	char path[PATH_MAX + 256], name[256];
	snprintf(path, sizeof(path), "%s/report.json", report_dir);
	if (add_rfile(f, nf, "report.json", path, false, err) < 0)
		return -1;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(rep, "files"), k, v) {
		if (!plain_name(k) || !strcmp(k, "report.json"))
			return tvm_seterr(err, "report.json lists a file \"%.100s\" that is not a plain file name", k);
		snprintf(path, sizeof(path), "%s/%s", report_dir, k);
		if (add_rfile(f, nf, k, path, false, err) < 0)
			return -1;
	}
	json_t *snaps = json_object_get(rep, "snapshots");
	const char *which[2] = { "before_crash", "crash" };
	for (int w = 0; w < 2; w++) {
		const char *file = json_string_value(json_object_get(json_object_get(snaps, which[w]), "file"));
		if (!file)
			continue;
		struct snap_reader **chain;
		char **paths;
		int n;
		if (snapshot_open_chain(file, &chain, &paths, &n, err) < 0)
			return tvm_seterr(err, "the %s snapshot report.json names: %.3000s", which[w], err->msg);
		int rc = 0;
		for (int i = 0; i < n; i++) {
			if (rc == 0 && (rc = snap_name(paths[i], name, sizeof(name), err)) == 0)
				rc = add_rfile(f, nf, name, paths[i], true, err);
			snap_close(chain[i]);
			free(paths[i]);
		}
		free(chain);
		free(paths);
		if (rc < 0)
			return -1;
	}
	const char *log = json_string_value(json_object_get(json_object_get(snaps, "event_log"), "file"));
	if (log && (snap_name(log, name, sizeof(name), err) < 0 || add_rfile(f, nf, name, log, false, err) < 0))
		return -1;
	return 0;
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *master_json(const struct bundle_master *m)
{
	if (!m)
		return json_null();
	json_t *parts = json_array();
	for (int i = 0; i < m->nparts; i++)
		json_array_append_new(parts, json_pack("{s:s,s:I,s:s}", "name", m->parts[i].name, "size",
						       (json_int_t)m->parts[i].size, "sha256", m->parts[i].sha256));
	return json_pack("{s:{s:s,s:s,s:s,s:s},s:I,s:o,s:o}", "package", "name", m->package_name, "version",
			 m->package_version, "sha256", m->package_sha256, "vendor_fingerprint", m->vendor_fingerprint,
			 "ram", (json_int_t)m->ram_size, "checkpoint_sha256",
			 m->checkpoint_sha256[0] ? json_string(m->checkpoint_sha256) : json_null(), "parts", parts);
}

static int write_fsync(const char *path, const void *p, size_t n, struct tvm_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = fd < 0 ? -errno : write_all(fd, p, n);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	return r < 0 ? tvm_seterr(err, "cannot write %s: %s", path, strerror(-r)) : 0;
}

int bundle_create(const char *report_dir, const struct bundle_master *master, const char *comment, const char *out,
		  const char *parent, bool progress, char *path, size_t cap, char id[65], struct tvm_err *err)
{
	if (comment && strlen(comment) > BUNDLE_COMMENT_MAX)
		return tvm_seterr(err, "the comment is longer than %u bytes", BUNDLE_COMMENT_MAX);
	json_t *comment_j = comment ? json_string(comment) : json_null();
	if (!comment_j)
		return tvm_seterr(err, "the comment is not UTF-8 text");
	char rpath[PATH_MAX + 32];
	snprintf(rpath, sizeof(rpath), "%s/report.json", report_dir);
	json_t *rep = NULL;
	if (load_json(rpath, 64u << 20, &rep, err) < 0) {
		json_decref(comment_j);
		return -1;
	}
	struct creator c = { 0 };
	struct rfile *files = calloc(BUNDLE_MAX_FILES, sizeof(*files));
	json_t *fj = json_array();
	char tmp[PATH_MAX + 64] = "";
	int nf = 0, rc = -1;
	c.page_chunks = json_array();
	c.chunks = json_object();
	c.cc = ZSTD_createCCtx();
	c.mi.ram_fd = -1;
	for (int i = 0; i < BUNDLE_MASTER_PARTS; i++)
		c.mi.fd[i] = -1;
	if (!files || !fj || !c.page_chunks || !c.chunks || !c.cc || hasher_init(&c.page_h) < 0 ||
	    hasher_init(&c.file_h) < 0) {
		tvm_seterr(err, "out of memory");
		goto out;
	}
	if (collect(report_dir, rep, files, &nf, err) < 0 || master_open(&c.mi, master, err) < 0)
		goto out;
	/* The work, for progress: each file's bytes and the master's. */
	c.pr = (struct progress){ progress, "bundling the report", 0, 0, 0 };
	for (int i = 0; i < nf; i++) {
		struct stat st;
		if (stat(files[i].path, &st) == 0)
			c.pr.total += (uint64_t)st.st_size;
	}
	if (index_master(&c, err) < 0)
		goto out;
	/* The temporary directory. */
	int n = out ? snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", out)
		    : snprintf(tmp, sizeof(tmp), "%s/.partial-XXXXXX", parent);
	if (n < 0 || (size_t)n >= sizeof(tmp) - 16 || !mkdtemp(tmp)) {
		tvm_seterr(err, "cannot create a directory for the bundle beside %s: %s", out ? out : parent,
			   strerror(errno));
		tmp[0] = 0;
		goto out;
	}
	char sub[PATH_MAX + 80];
	snprintf(sub, sizeof(sub), "%s/chunks", tmp);
	if (mkdir(sub, 0700) < 0) {
		tvm_seterr(err, "cannot create %s: %s", sub, strerror(errno));
		goto out;
	}
	c.dir = tmp;
	for (int i = 0; i < nf; i++) {
		json_t *f = json_pack("{s:s}", "name", files[i].name);
		json_array_append_new(fj, f);
		if ((files[i].snapshot ? add_snapshot(&c, files[i].path, f, err) : add_blocks(&c, files[i].path, f, err)) < 0) {
			tvm_seterr(err, "%s: %.3000s", files[i].name, err->msg);
			goto out;
		}
	}
	if (flush_store(&c, err) < 0)
		goto out;
	json_t *cause = json_object_get(rep, "cause");
	json_t *man = json_object();
	json_object_set_new(man, "format", json_string(BUNDLE_FORMAT));
	json_object_set_new(man, "version", json_integer(BUNDLE_VERSION));
	char created[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(man, "created", json_string(created));
	json_object_set_new(man, "trialvm_version", json_string(TRIALVM_VERSION));
	json_object_set_new(man, "zstd_version", json_string(ZSTD_versionString()));
	json_object_set_new(man, "report",
			    json_pack("{s:o,s:o,s:o,s:o}", "id", str_or_null(json_string_value(json_object_get(rep, "id"))),
				      "kind", str_or_null(json_string_value(json_object_get(cause, "kind"))), "summary",
				      str_or_null(json_string_value(json_object_get(cause, "summary"))), "time",
				      str_or_null(json_string_value(json_object_get(rep, "time")))));
	json_object_set(man, "comment", comment_j);
	json_object_set_new(man, "master", master_json(master));
	json_object_set_new(man, "pages", json_pack("{s:I,s:O}", "count", (json_int_t)c.npages, "chunks", c.page_chunks));
	json_object_set(man, "files", fj);
	json_object_set(man, "chunks", c.chunks);
	char *text = json_dumps(man, JSON_INDENT(1));
	json_decref(man);
	if (!text) {
		tvm_seterr(err, "out of memory");
		goto out;
	}
	uint8_t md[32];
	hash_once(&c.file_h, text, strlen(text), md);
	sha256_hex(md, id);
	snprintf(sub, sizeof(sub), "%s/manifest.json", tmp);
	int w = write_fsync(sub, text, strlen(text), err);
	free(text);
	if (w < 0)
		goto out;
	snprintf(sub, sizeof(sub), "%s/chunks", tmp);
	if (fsync_dir(sub) < 0 || fsync_dir(tmp) < 0) {
		tvm_seterr(err, "cannot flush %s: %s", tmp, strerror(errno));
		goto out;
	}
	n = out ? snprintf(path, cap, "%s", out) : snprintf(path, cap, "%s/%s.tvb", parent, id);
	if (n < 0 || (size_t)n >= cap) {
		tvm_seterr(err, "the bundle's path is too long");
		goto out;
	}
	if (rename(tmp, path) < 0) {
		if (!out && (errno == EEXIST || errno == ENOTEMPTY)) { /* the same bundle is there already */
			rc = 0;
			goto out;
		}
		tvm_seterr(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	tmp[0] = 0;
	fsync_parent(path);
	rc = 0;
out:
	if (tmp[0])
		remove_tree(tmp);
	master_close(&c.mi);
	free(c.master_ix.e);
	free(c.store_ix.e);
	free(c.store.p);
	free(c.zbuf);
	ZSTD_freeCCtx(c.cc);
	hasher_free(&c.page_h);
	hasher_free(&c.file_h);
	json_decref(c.page_chunks);
	json_decref(c.chunks);
	json_decref(fj);
	json_decref(rep);
	json_decref(comment_j);
	free(files);
	return rc;
}

/* ============================================================= reading */

struct bchunk {
	char name[65];
	uint64_t size;
};

struct bfile {
	char name[192];
	uint64_t size;
	char sha256[65];
	bool snapshot;
	int nmap, nlay;
	const char **map, **lay; /* chunk names (in the manifest) */
};

struct bundle {
	char dir[PATH_MAX];
	char id[65];
	json_t *man;
	uint64_t manifest_bytes;
	int nchunks;
	struct bchunk *chunk;
	uint64_t npages;
	int npchunks;
	const char **pchunk;
	int nfiles;
	struct bfile file[BUNDLE_MAX_FILES];
	bool has_master;
	struct bundle_master master; /* names, sizes and hashes only (no paths) */
};

static int bad(const struct bundle *b, struct tvm_err *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(const struct bundle *b, struct tvm_err *err, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return tvm_seterr(err, "%s is not a report bundle this trialvm reads: %s", b->dir, why);
}

static const char *bjstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* A string member that is a string (or null, when allowed) of at most max bytes. */
static bool str_ok(json_t *o, const char *k, size_t max, bool null_ok)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return null_ok;
	return json_is_string(v) && json_string_length(v) <= max && strlen(json_string_value(v)) == json_string_length(v);
}

static bool int_in(json_t *v, uint64_t lo, uint64_t hi)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && (uint64_t)json_integer_value(v) >= lo &&
	       (uint64_t)json_integer_value(v) <= hi;
}

static bool bundle_file_name_ok(const char *s)
{
	return !strncmp(s, "snapshots/", 10) ? plain_name(s + 10) : plain_name(s);
}

static int chunk_cmp(const void *a, const void *b)
{
	return strcmp(((const struct bchunk *)a)->name, ((const struct bchunk *)b)->name);
}

/* The chunk list is sorted by name (bundle_open). */
static int chunk_index(const struct bundle *b, const char *name)
{
	struct bchunk key;
	snprintf(key.name, sizeof(key.name), "%s", name);
	const struct bchunk *c = bsearch(&key, b->chunk, (size_t)b->nchunks, sizeof(key), chunk_cmp);
	return c ? (int)(c - b->chunk) : -1;
}

/* A list of chunk names, each one of the bundle's; *out points into the manifest. */
static int chunk_list(struct bundle *b, json_t *a, bool nonempty, const char ***out, int *n, const char *what,
		      struct tvm_err *err)
{
	if (!json_is_array(a) || (nonempty && !json_array_size(a)) || json_array_size(a) > (1u << 20))
		return bad(b, err, "%s is not a list of chunks", what);
	*n = (int)json_array_size(a);
	if (!(*out = calloc(*n ? (size_t)*n : 1, sizeof(char *))))
		return tvm_seterr(err, "out of memory");
	for (int i = 0; i < *n; i++) {
		const char *s = json_string_value(json_array_get(a, (size_t)i));
		if (!hex64_ok(s) || chunk_index(b, s) < 0)
			return bad(b, err, "%s names a chunk that is not in its chunk list", what);
		(*out)[i] = s;
	}
	return 0;
}

static int read_master(struct bundle *b, json_t *m, struct tvm_err *err)
{
	if (!m || json_is_null(m))
		return 0;
	json_t *pk = json_object_get(m, "package"), *parts = json_object_get(m, "parts");
	struct bundle_master *bm = &b->master;
	if (!json_is_object(pk) || !str_ok(pk, "name", sizeof(bm->package_name) - 1, false) ||
	    !str_ok(pk, "version", sizeof(bm->package_version) - 1, false) || !hex64_ok(bjstr(pk, "sha256")) ||
	    !hex64_ok(bjstr(pk, "vendor_fingerprint")) || !int_in(json_object_get(m, "ram"), 0, 1ull << 40) ||
	    json_integer_value(json_object_get(m, "ram")) % PG ||
	    !(json_is_null(json_object_get(m, "checkpoint_sha256")) || hex64_ok(bjstr(m, "checkpoint_sha256"))) ||
	    !json_is_array(parts) || json_array_size(parts) > BUNDLE_MASTER_PARTS)
		return bad(b, err, "its master (the package it is a delta of) is malformed");
	snprintf(bm->package_name, sizeof(bm->package_name), "%s", bjstr(pk, "name"));
	snprintf(bm->package_version, sizeof(bm->package_version), "%s", bjstr(pk, "version"));
	snprintf(bm->package_sha256, sizeof(bm->package_sha256), "%s", bjstr(pk, "sha256"));
	snprintf(bm->vendor_fingerprint, sizeof(bm->vendor_fingerprint), "%s", bjstr(pk, "vendor_fingerprint"));
	if (bjstr(m, "checkpoint_sha256"))
		snprintf(bm->checkpoint_sha256, sizeof(bm->checkpoint_sha256), "%s", bjstr(m, "checkpoint_sha256"));
	bm->ram_size = (uint64_t)json_integer_value(json_object_get(m, "ram"));
	size_t i;
	json_t *p;
	json_array_foreach(parts, i, p) {
		struct bundle_master_part *mp = &bm->parts[bm->nparts++];
		if (!str_ok(p, "name", sizeof(mp->name) - 1, false) || !int_in(json_object_get(p, "size"), 0, BUNDLE_FILE_MAX) ||
		    !hex64_ok(bjstr(p, "sha256")))
			return bad(b, err, "its master's part %zu is malformed", i);
		snprintf(mp->name, sizeof(mp->name), "%s", bjstr(p, "name"));
		snprintf(mp->sha256, sizeof(mp->sha256), "%s", bjstr(p, "sha256"));
		mp->size = (uint64_t)json_integer_value(json_object_get(p, "size"));
	}
	b->has_master = true;
	return 0;
}

static int read_files(struct bundle *b, json_t *files, struct tvm_err *err)
{
	if (!json_is_array(files) || !json_array_size(files) || json_array_size(files) > BUNDLE_MAX_FILES)
		return bad(b, err, "its file list is missing, empty or longer than %d", BUNDLE_MAX_FILES);
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f) {
		struct bfile *bf = &b->file[b->nfiles];
		const char *name = bjstr(f, "name"), *recipe = bjstr(f, "recipe");
		if (!str_ok(f, "name", sizeof(bf->name) - 1, false) || !bundle_file_name_ok(name))
			return bad(b, err, "file %zu has no plain name (NAME or snapshots/NAME)", i);
		for (int k = 0; k < b->nfiles; k++)
			if (!strcmp(b->file[k].name, name))
				return bad(b, err, "it holds %.200s twice", name);
		snprintf(bf->name, sizeof(bf->name), "%s", name);
		if (!int_in(json_object_get(f, "size"), 0, BUNDLE_FILE_MAX) || !hex64_ok(bjstr(f, "sha256")) || !recipe ||
		    (strcmp(recipe, "blocks") && strcmp(recipe, "snapshot")))
			return bad(b, err, "file %.200s lacks a size, sha256 or known recipe", name);
		bf->size = (uint64_t)json_integer_value(json_object_get(f, "size"));
		snprintf(bf->sha256, sizeof(bf->sha256), "%s", bjstr(f, "sha256"));
		bf->snapshot = !strcmp(recipe, "snapshot");
		if (chunk_list(b, json_object_get(f, "map"), true, &bf->map, &bf->nmap, "a file's block map", err) < 0)
			return -1;
		if (bf->snapshot &&
		    chunk_list(b, json_object_get(f, "layout"), true, &bf->lay, &bf->nlay, "a snapshot's layout", err) < 0)
			return -1;
		b->nfiles++;
	}
	return 0;
}

int bundle_open(const char *dir, struct bundle **out, struct tvm_err *err)
{
	struct bundle *b = calloc(1, sizeof(*b));
	if (!b)
		return tvm_seterr(err, "out of memory");
	if ((size_t)snprintf(b->dir, sizeof(b->dir), "%s", dir) >= sizeof(b->dir)) {
		free(b);
		return tvm_seterr(err, "%s: path too long", dir);
	}
	char path[PATH_MAX + 32];
	struct stat st;
	uint8_t *text = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tvm_seterr(err, "%s is not a report bundle (a directory with manifest.json and chunks/)", dir);
		goto fail;
	}
	if (read_file(path, BUNDLE_MANIFEST_MAX, &text, &len, err) < 0)
		goto fail;
	b->manifest_bytes = len;
	uint8_t md[32];
	struct hasher h;
	if (hasher_init(&h) < 0) {
		hasher_free(&h);
		tvm_seterr(err, "out of memory");
		goto fail;
	}
	hash_once(&h, text, len, md);
	hasher_free(&h);
	sha256_hex(md, b->id);
	json_error_t je;
	b->man = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &je);
	free(text);
	text = NULL;
	if (!b->man || !json_is_object(b->man)) {
		bad(b, err, "its manifest.json is not a JSON object (line %d: %s)", je.line, je.text);
		goto fail;
	}
	json_t *m = b->man, *ver = json_object_get(m, "version");
	if (!bjstr(m, "format") || strcmp(bjstr(m, "format"), BUNDLE_FORMAT)) {
		bad(b, err, "its manifest's format is not \"%s\"", BUNDLE_FORMAT);
		goto fail;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) != BUNDLE_VERSION) {
		tvm_seterr(err, "%s is a report bundle of format version %lld; this trialvm reads version %d%s", dir,
			   json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL, BUNDLE_VERSION,
			   json_is_integer(ver) && json_integer_value(ver) > BUNDLE_VERSION ? ": update trialvm" : "");
		goto fail;
	}
	json_t *chunks = json_object_get(m, "chunks"), *pages = json_object_get(m, "pages"), *rep = json_object_get(m, "report");
	if (!json_is_object(chunks) || json_object_size(chunks) > (1u << 16)) {
		bad(b, err, "it has no chunk list");
		goto fail;
	}
	b->chunk = calloc(json_object_size(chunks) + 1, sizeof(*b->chunk));
	if (!b->chunk) {
		tvm_seterr(err, "out of memory");
		goto fail;
	}
	const char *k;
	json_t *v;
	json_object_foreach(chunks, k, v) {
		if (!hex64_ok(k) || !int_in(v, 1, BUNDLE_CHUNK_MAX)) {
			bad(b, err, "its chunk list has an entry that is not a sha256 with a size of 1 to %u bytes",
			    BUNDLE_CHUNK_MAX);
			goto fail;
		}
		memcpy(b->chunk[b->nchunks].name, k, 65);
		b->chunk[b->nchunks++].size = (uint64_t)json_integer_value(v);
	}
	qsort(b->chunk, (size_t)b->nchunks, sizeof(*b->chunk), chunk_cmp);
	if (!json_is_object(rep) || !str_ok(rep, "id", 256, true) || !str_ok(rep, "kind", 64, true) ||
	    !str_ok(rep, "summary", 4096, true) || !str_ok(rep, "time", 64, true) ||
	    !str_ok(m, "comment", BUNDLE_COMMENT_MAX, true) || !str_ok(m, "created", 64, true)) {
		bad(b, err, "its report or comment fields are malformed");
		goto fail;
	}
	if (!json_is_object(pages) || !int_in(json_object_get(pages, "count"), 0, 1ull << 34)) {
		bad(b, err, "its page store is malformed");
		goto fail;
	}
	b->npages = (uint64_t)json_integer_value(json_object_get(pages, "count"));
	if (chunk_list(b, json_object_get(pages, "chunks"), false, &b->pchunk, &b->npchunks, "the page store", err) < 0)
		goto fail;
	if ((uint64_t)b->npchunks != (b->npages + BUNDLE_PAGES_PER_CHUNK - 1) / BUNDLE_PAGES_PER_CHUNK) {
		bad(b, err, "its page store has %d chunks for %llu pages", b->npchunks, (unsigned long long)b->npages);
		goto fail;
	}
	if (read_master(b, json_object_get(m, "master"), err) < 0 || read_files(b, json_object_get(m, "files"), err) < 0)
		goto fail;
	*out = b;
	return 0;
fail:
	free(text);
	bundle_close(b);
	return -1;
}

void bundle_close(struct bundle *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->nfiles + (b->nfiles < BUNDLE_MAX_FILES); i++) {
		free(b->file[i].map);
		free(b->file[i].lay);
	}
	free(b->pchunk);
	free(b->chunk);
	json_decref(b->man);
	free(b);
}

const char *bundle_id(const struct bundle *b) { return b->id; }
int bundle_nchunks(const struct bundle *b) { return b->nchunks; }

void bundle_chunk(const struct bundle *b, int i, const char **name, uint64_t *size)
{
	*name = b->chunk[i].name;
	*size = b->chunk[i].size;
}

uint64_t bundle_bytes(const struct bundle *b)
{
	uint64_t n = b->manifest_bytes;
	for (int i = 0; i < b->nchunks; i++)
		n += b->chunk[i].size;
	return n;
}

bool bundle_master_of(const struct bundle *b, struct bundle_master *m)
{
	if (!b->has_master)
		return false;
	*m = b->master;
	return true;
}

/* Chunk NAME whole (its size and sha256 checked) into a malloc'd buffer. */
static int load_chunk(const struct bundle *b, const char *name, uint8_t **data, size_t *len, struct tvm_err *err)
{
	int ci = chunk_index(b, name);
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/chunks/%s", b->dir, name);
	if (ci < 0)
		return tvm_seterr(err, "%s: chunk %s is not in its chunk list", b->dir, name);
	if (read_file(path, BUNDLE_CHUNK_MAX, data, len, err) < 0)
		return -1;
	uint8_t md[32];
	char hex[65];
	struct hasher h;
	if (hasher_init(&h) < 0) {
		hasher_free(&h);
		free(*data);
		return tvm_seterr(err, "out of memory");
	}
	hash_once(&h, *data, *len, md);
	hasher_free(&h);
	sha256_hex(md, hex);
	if (*len != b->chunk[ci].size || strcmp(hex, name)) {
		free(*data);
		*data = NULL;
		return tvm_seterr(err, "%s: chunk %s is damaged (%zu bytes, sha256 %.16s...; the manifest says %llu bytes "
				       "and its name is its sha256)", b->dir, name, *len, hex,
				  (unsigned long long)b->chunk[ci].size);
	}
	return 0;
}

const char *bundle_dir(const struct bundle *b) { return b->dir; }
bool bundle_has_chunk(const struct bundle *b, const char *name) { return hex64_ok(name) && chunk_index(b, name) >= 0; }

int bundle_read_chunk(const struct bundle *b, const char *name, uint8_t **data, size_t *len, struct tvm_err *err)
{
	return load_chunk(b, name, data, len, err);
}

int bundle_check_chunks(const struct bundle *b, struct tvm_err *err)
{
	for (int i = 0; i < b->nchunks; i++) {
		uint8_t *d;
		size_t n;
		if (load_chunk(b, b->chunk[i].name, &d, &n, err) < 0)
			return -1;
		free(d);
	}
	return 0;
}

/* Chunk NAME decompressed into out (at most cap bytes): its length, or -1. */
static int64_t unpack_chunk(const struct bundle *b, const char *name, uint8_t *out, size_t cap, struct tvm_err *err)
{
	uint8_t *d;
	size_t n;
	if (load_chunk(b, name, &d, &n, err) < 0)
		return -1;
	unsigned long long want = ZSTD_getFrameContentSize(d, n);
	size_t got = want <= cap ? ZSTD_decompress(out, cap, d, n) : 0;
	free(d);
	if (want > cap || ZSTD_isError(got) || got != want)
		return tvm_seterr(err, "%s: chunk %s is not one zstd frame of at most %zu bytes", b->dir, name, cap);
	return (int64_t)got;
}

static void show_text(FILE *out, const char *label, const char *s)
{
	char *e = s ? tvm_escape_dup(s, strlen(s), TVM_ESC_TERMINAL) : NULL;
	fprintf(out, "  %-10s %s\n", label, e ? e : "(none)");
	free(e);
}

void bundle_show(const struct bundle *b, FILE *out)
{
	json_t *rep = json_object_get(b->man, "report");
	fprintf(out, "report bundle %s\n", b->id);
	show_text(out, "report", bjstr(rep, "id"));
	show_text(out, "crash", bjstr(rep, "kind"));
	show_text(out, "summary", bjstr(rep, "summary"));
	show_text(out, "time", bjstr(rep, "time"));
	show_text(out, "comment", bjstr(b->man, "comment"));
	if (b->has_master) {
		char pk[256];
		snprintf(pk, sizeof(pk), "%s %s", b->master.package_name, b->master.package_version);
		show_text(out, "package", pk);
		fprintf(out, "  %-10s sha256 %s, vendor key %s%s\n", "", b->master.package_sha256,
			b->master.vendor_fingerprint, b->master.checkpoint_sha256[0] ? ", from its checkpoint" : "");
	} else {
		fprintf(out, "  %-10s none: every page that is not zero is in the bundle\n", "master");
	}
	fprintf(out, "files (as the tester's machine has them; rebuilt from the pages below and the master):\n");
	for (int i = 0; i < b->nfiles; i++)
		fprintf(out, "  %-28s %14llu bytes  %s\n", b->file[i].name, (unsigned long long)b->file[i].size,
			b->file[i].snapshot ? "snapshot" : "");
	fprintf(out, "pages not in the master: %llu (%llu KiB before compression)\n", (unsigned long long)b->npages,
		(unsigned long long)(b->npages * 4));
	fprintf(out, "to send: %llu bytes in %d chunks and the manifest\n", (unsigned long long)bundle_bytes(b),
		b->nchunks);
}

/* ========================================================== rebuilding */

/* A stream over a list of chunks (a block map or a layout). */
struct sreader {
	const struct bundle *b;
	const char **names;
	int n, next;
	uint8_t *buf;
	size_t len, pos;
	const char *what, *file;
};

static int sr_init(struct sreader *r, const struct bundle *b, const char **names, int n, const char *what,
		   const char *file, struct tvm_err *err)
{
	*r = (struct sreader){ b, names, n, 0, malloc(BUNDLE_PIECE), 0, 0, what, file };
	return r->buf ? 0 : tvm_seterr(err, "out of memory");
}

/* Raw bytes that may still come (an upper bound). */
static uint64_t sr_left(const struct sreader *r) { return (uint64_t)(r->n - r->next) * BUNDLE_PIECE + (r->len - r->pos); }

static int sr_read(struct sreader *r, void *out, size_t n, struct tvm_err *err)
{
	uint8_t *o = out;
	while (n) {
		if (r->pos == r->len) {
			if (r->next == r->n)
				return tvm_seterr(err, "%s: its %s ends early", r->file, r->what);
			int64_t got = unpack_chunk(r->b, r->names[r->next++], r->buf, BUNDLE_PIECE, err);
			if (got < 0)
				return -1;
			r->len = (size_t)got;
			r->pos = 0;
			continue;
		}
		size_t k = n < r->len - r->pos ? n : r->len - r->pos;
		memcpy(o, r->buf + r->pos, k);
		r->pos += k;
		o += k;
		n -= k;
	}
	return 0;
}

static int sr_u32(struct sreader *r, uint32_t *v, struct tvm_err *err)
{
	uint8_t x[4];
	if (sr_read(r, x, 4, err) < 0)
		return -1;
	*v = le_get32(x);
	return 0;
}

static int sr_u64(struct sreader *r, uint64_t *v, struct tvm_err *err)
{
	uint8_t x[8];
	if (sr_read(r, x, 8, err) < 0)
		return -1;
	*v = le_get64(x);
	return 0;
}

/* Nothing more in the stream (empty pieces aside). */
static int sr_end(struct sreader *r, struct tvm_err *err)
{
	while (r->pos == r->len && r->next < r->n) {
		int64_t got = unpack_chunk(r->b, r->names[r->next++], r->buf, BUNDLE_PIECE, err);
		if (got < 0)
			return -1;
		r->len = (size_t)got;
		r->pos = 0;
	}
	if (r->pos != r->len)
		return tvm_seterr(err, "%s: its %s goes on past its end", r->file, r->what);
	return 0;
}

struct mreader {
	struct sreader s;
	int kind;
	uint64_t left, idx, master_pages, store_pages;
};

static int mr_init(struct mreader *m, const struct bundle *b, const struct bfile *f, uint64_t master_pages,
		   struct tvm_err *err)
{
	memset(m, 0, sizeof(*m));
	m->master_pages = master_pages;
	m->store_pages = b->npages;
	char magic[8];
	if (sr_init(&m->s, b, f->map, f->nmap, "block map", f->name, err) < 0 || sr_read(&m->s, magic, 8, err) < 0)
		return -1;
	if (memcmp(magic, MAP_MAGIC, 8))
		return tvm_seterr(err, "%s: its block map does not start with %s", f->name, MAP_MAGIC);
	return 0;
}

static int mr_next(struct mreader *m, int *kind, uint64_t *index, struct tvm_err *err)
{
	if (!m->left) {
		uint32_t head;
		uint64_t idx = 0, end;
		if (sr_u32(&m->s, &head, err) < 0)
			return -1;
		int k = (int)(head >> 30);
		uint32_t n = head & N_MAX;
		if (k > K_STORE || !n)
			return tvm_seterr(err, "%s: its block map has an entry of kind %d for %u pages", m->s.file, k, n);
		if (k != K_ZERO && sr_u64(&m->s, &idx, err) < 0)
			return -1;
		if (k != K_ZERO && (add_overflows(idx, n, &end) || end > (k == K_MASTER ? m->master_pages : m->store_pages)))
			return tvm_seterr(err, "%s: its block map names %s pages %llu+%u, of %llu", m->s.file,
					  k == K_MASTER ? "master" : "stored", (unsigned long long)idx, n,
					  (unsigned long long)(k == K_MASTER ? m->master_pages : m->store_pages));
		m->kind = k;
		m->left = n;
		m->idx = idx;
	}
	*kind = m->kind;
	*index = m->idx;
	if (m->kind != K_ZERO)
		m->idx++;
	m->left--;
	return 0;
}

static int mr_end(struct mreader *m, struct tvm_err *err)
{
	if (m->left)
		return tvm_seterr(err, "%s: its block map holds more pages than the file", m->s.file);
	return sr_end(&m->s, err);
}

static void mr_free(struct mreader *m) { free(m->s.buf); }

struct rebuilder {
	const struct bundle *b;
	struct master_io mi;
	int cached[2];        /* page store chunks held, -1 none */
	uint8_t *cache[2];
	int lru;
	struct hasher h;
	struct progress pr;
};

/* A page of kind/index into out (PG bytes). */
static int get_page(struct rebuilder *rb, int kind, uint64_t idx, uint8_t *out, struct tvm_err *err)
{
	if (kind == K_ZERO) {
		memset(out, 0, PG);
		return 0;
	}
	if (kind == K_MASTER)
		return master_page(&rb->mi, idx, out, err);
	int k = (int)(idx / BUNDLE_PAGES_PER_CHUNK), slot = rb->cached[0] == k ? 0 : rb->cached[1] == k ? 1 : -1;
	if (slot < 0) {
		slot = rb->lru;
		rb->cached[slot] = -1;
		uint64_t want = (k == rb->b->npchunks - 1 ? rb->b->npages - (uint64_t)k * BUNDLE_PAGES_PER_CHUNK
							  : BUNDLE_PAGES_PER_CHUNK) * PG;
		int64_t got = unpack_chunk(rb->b, rb->b->pchunk[k], rb->cache[slot], (size_t)BUNDLE_PAGES_PER_CHUNK * PG, err);
		if (got < 0)
			return -1;
		if ((uint64_t)got != want)
			return tvm_seterr(err, "%s: page store chunk %d holds %lld bytes, not %llu", rb->b->dir, k,
					  (long long)got, (unsigned long long)want);
		rb->cached[slot] = k;
	}
	rb->lru = !slot;
	memcpy(out, rb->cache[slot] + (idx % BUNDLE_PAGES_PER_CHUNK) * PG, PG);
	return 0;
}

static int check_sha(struct rebuilder *rb, const struct bfile *f, const uint8_t md[32], struct tvm_err *err)
{
	char hex[65];
	sha256_hex(md, hex);
	(void)rb;
	if (strcmp(hex, f->sha256))
		return tvm_seterr(err, "%s came out with sha256 %s, not the tester's %s: the bundle or the master is "
				       "not the one it was made with", f->name, hex, f->sha256);
	return 0;
}

static int rebuild_blocks(struct rebuilder *rb, const struct bfile *f, const char *path, struct tvm_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return tvm_seterr(err, "cannot create %s: %s", path, strerror(errno));
	struct mreader m;
	uint8_t page[PG], md[32];
	static const uint8_t zero[PG];
	int rc = mr_init(&m, rb->b, f, master_pages(&rb->mi), err);
	hash_begin(&rb->h);
	uint64_t blocks = pages_of(f->size);
	for (uint64_t pos = 0; rc == 0 && pos < blocks; pos++) {
		int kind;
		uint64_t idx;
		size_t n = f->size - pos * PG < PG ? (size_t)(f->size - pos * PG) : PG;
		if ((rc = mr_next(&m, &kind, &idx, err)) < 0)
			break;
		if (kind == K_ZERO) { /* a hole */
			hash_more(&rb->h, zero, n);
		} else if ((rc = get_page(rb, kind, idx, page, err)) == 0) {
			hash_more(&rb->h, page, n);
			int r = pwrite_all(fd, page, n, pos * PG);
			if (r < 0)
				rc = tvm_seterr(err, "cannot write %s: %s", path, strerror(-r));
		}
		progress_add(&rb->pr, n);
	}
	if (rc == 0)
		rc = mr_end(&m, err);
	if (rc == 0 && (ftruncate(fd, (off_t)f->size) < 0 || fsync(fd) < 0))
		rc = tvm_seterr(err, "cannot write %s: %s", path, strerror(errno));
	if (close(fd) < 0 && rc == 0)
		rc = tvm_seterr(err, "cannot write %s: %s", path, strerror(errno));
	mr_free(&m);
	hash_end(&rb->h, md);
	return rc == 0 ? check_sha(rb, f, md, err) : -1;
}

static int rebuild_snapshot(struct rebuilder *rb, const struct bfile *f, const char *path, struct tvm_err *err)
{
	struct sreader lay;
	struct mreader m;
	struct snap_header h;
	struct snap_writer *w = NULL;
	struct snap_memsec *ms = snap_memsec_new();
	uint8_t *pages = malloc((size_t)SNAP_RUN_MAX_PAGES * PG), *payload = NULL, magic[8], md[32];
	memset(&h, 0, sizeof(h));
	memset(&m, 0, sizeof(m));
	int rc = ms && pages ? 0 : tvm_seterr(err, "out of memory");
	if (rc == 0)
		rc = sr_init(&lay, rb->b, f->lay, f->nlay, "layout", f->name, err);
	else
		lay.buf = NULL;
	if (rc == 0)
		rc = mr_init(&m, rb->b, f, master_pages(&rb->mi), err);
	if (rc == 0 && (sr_read(&lay, magic, 8, err) < 0 || sr_u32(&lay, &h.format_version, err) < 0 ||
			sr_read(&lay, h.trialvm_version, 32, err) < 0 || sr_read(&lay, h.id, 16, err) < 0 ||
			sr_read(&lay, h.parent, 16, err) < 0 || sr_u32(&lay, &h.nimages, err) < 0))
		rc = -1;
	if (rc == 0 && (memcmp(magic, LAY_MAGIC, 8) || h.format_version != SNAP_FORMAT_VERSION ||
			h.nimages > SNAP_MAX_IMAGES))
		rc = tvm_seterr(err, "%s: its layout is not one of a snapshot file of format %u with at most %u images",
				f->name, SNAP_FORMAT_VERSION, SNAP_MAX_IMAGES);
	h.trialvm_version[31] = 0;
	for (uint32_t i = 0; rc == 0 && i < h.nimages; i++) {
		uint8_t e[8];
		if ((rc = sr_read(&lay, e, 8, err)) == 0 && (rc = sr_read(&lay, h.images[i].sha256, 32, err)) == 0) {
			h.images[i].role = e[0];
			h.images[i].index = le_get32(e + 4);
		}
	}
	if (rc == 0)
		rc = snap_create(path, &h, &w, err);
	for (;;) {
		uint32_t type, kind;
		uint16_t vf[2];
		if (rc < 0 || (rc = sr_u32(&lay, &type, err)) < 0 || type == LAY_END)
			break;
		if ((rc = sr_read(&lay, vf, 4, err)) < 0 || (rc = sr_u32(&lay, &kind, err)) < 0)
			break;
		if (kind == L_VERBATIM) {
			uint64_t len;
			if ((rc = sr_u64(&lay, &len, err)) < 0)
				break;
			if (len > sr_left(&lay) || len > SIZE_MAX) {
				rc = tvm_seterr(err, "%s: its layout claims a %llu-byte section it does not hold", f->name,
						(unsigned long long)len);
				break;
			}
			free(payload);
			if (!(payload = malloc(len ? (size_t)len : 1))) {
				rc = tvm_seterr(err, "out of memory");
				break;
			}
			if ((rc = sr_read(&lay, payload, (size_t)len, err)) < 0 ||
			    (rc = snap_add(w, type, vf[0], vf[1], payload, len, err)) < 0)
				break;
			progress_add(&rb->pr, len);
			continue;
		}
		uint64_t nruns;
		uint32_t plen = 0;
		uint8_t prefix[LAY_PREFIX_MAX];
		if (kind != L_RUNS || (type != SNAP_SEC_MEMORY && type != SNAP_SEC_DISK) ||
		    (rc = sr_u32(&lay, &plen, err)) < 0 || plen > LAY_PREFIX_MAX ||
		    (type == SNAP_SEC_MEMORY && plen) || (rc = sr_read(&lay, prefix, plen, err)) < 0 ||
		    (rc = sr_u64(&lay, &nruns, err)) < 0 || nruns > sr_left(&lay) / 24 ||
		    snap_memsec_prefix(ms, prefix, plen) < 0) {
			rc = rc < 0 ? rc : tvm_seterr(err, "%s: its layout has a section of kind %u, type %u that it "
							   "cannot hold", f->name, kind, type);
			break;
		}
		for (uint64_t i = 0; rc == 0 && i < nruns; i++) {
			struct snap_run run;
			uint8_t x[24];
			if ((rc = sr_read(&lay, x, 24, err)) < 0)
				break;
			run = (struct snap_run){ le_get64(x), le_get32(x + 8), le_get32(x + 12), le_get32(x + 16),
						 le_get32(x + 20) };
			bool zero = run.flags & SNAP_RUN_ZERO;
			if (!zero && run.npages > SNAP_RUN_MAX_PAGES) {
				rc = tvm_seterr(err, "%s: a memory run of %u pages", f->name, run.npages);
				break;
			}
			for (uint32_t j = 0; !zero && rc == 0 && j < run.npages; j++) {
				int k;
				uint64_t idx;
				if ((rc = mr_next(&m, &k, &idx, err)) == 0)
					rc = get_page(rb, k, idx, pages + (size_t)j * PG, err);
			}
			if (rc == 0 && (rc = snap_memsec_add(ms, &run, zero ? NULL : pages, err)) < 0)
				tvm_seterr(err, "%s: %.3000s", f->name, err->msg);
			progress_add(&rb->pr, run.clen);
		}
		if (rc == 0)
			rc = snap_memsec_write(ms, w, type, vf[0], vf[1], err);
	}
	if (rc == 0 && (rc = sr_end(&lay, err)) == 0)
		rc = mr_end(&m, err);
	if (w) {
		if (rc == 0)
			rc = snap_commit(w, err);
		else
			snap_abandon(w);
	}
	free(lay.buf);
	mr_free(&m);
	free(payload);
	free(pages);
	snap_memsec_free(ms);
	struct tvm_err herr = { "" };
	if (rc == 0 && sha256_path(path, md, &herr) < 0)
		rc = tvm_seterr(err, "%s", herr.msg);
	return rc == 0 ? check_sha(rb, f, md, err) : -1;
}

static bool master_matches(const struct bundle_master *want, const struct bundle_master *have, char *why, size_t cap)
{
	if (want->ram_size != have->ram_size || strcmp(want->checkpoint_sha256, have->checkpoint_sha256)) {
		snprintf(why, cap, "its checkpoint is another (the bundle's: %s, %llu bytes of RAM)",
			 want->checkpoint_sha256[0] ? want->checkpoint_sha256 : "none", (unsigned long long)want->ram_size);
		return false;
	}
	if (want->nparts != have->nparts) {
		snprintf(why, cap, "it has %d parts, the bundle's master %d", have->nparts, want->nparts);
		return false;
	}
	for (int i = 0; i < want->nparts; i++)
		if (strcmp(want->parts[i].name, have->parts[i].name) || want->parts[i].size != have->parts[i].size ||
		    strcmp(want->parts[i].sha256, have->parts[i].sha256)) {
			snprintf(why, cap, "its part %s is not the bundle's (sha256 %s)", have->parts[i].name,
				 want->parts[i].sha256);
			return false;
		}
	return true;
}

int bundle_rebuild(const struct bundle *b, const struct bundle_master *master, const char *out_dir, bool progress,
		   struct tvm_err *err)
{
	char why[512];
	if (b->has_master && !master)
		return tvm_seterr(err, "%s is a delta against %s %s (package sha256 %s): give that package", b->dir,
				  b->master.package_name, b->master.package_version, b->master.package_sha256);
	if (b->has_master && !master_matches(&b->master, master, why, sizeof(why)))
		return tvm_seterr(err, "the package given is not the master %s was made against (%s %s, sha256 %s): %s",
				  b->dir, b->master.package_name, b->master.package_version, b->master.package_sha256, why);
	struct rebuilder rb = { .b = b, .cached = { -1, -1 } };
	char tmp[PATH_MAX + 32], path[PATH_MAX + 256];
	int rc = -1;
	rb.mi.ram_fd = -1;
	for (int i = 0; i < BUNDLE_MASTER_PARTS; i++)
		rb.mi.fd[i] = -1;
	rb.cache[0] = malloc((size_t)BUNDLE_PAGES_PER_CHUNK * PG);
	rb.cache[1] = malloc((size_t)BUNDLE_PAGES_PER_CHUNK * PG);
	rb.pr = (struct progress){ progress, "rebuilding the report", 0, 0, 0 };
	for (int i = 0; i < b->nfiles; i++)
		rb.pr.total += b->file[i].size;
	tmp[0] = 0;
	if (!rb.cache[0] || !rb.cache[1] || hasher_init(&rb.h) < 0) {
		tvm_seterr(err, "out of memory");
		goto out;
	}
	if (master_open(&rb.mi, b->has_master ? master : NULL, err) < 0)
		goto out;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", out_dir) >= sizeof(tmp) || !mkdtemp(tmp)) {
		tvm_seterr(err, "cannot create a directory beside %s: %s", out_dir, strerror(errno));
		tmp[0] = 0;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/snapshots", tmp);
	if (mkdir(path, 0700) < 0) {
		tvm_seterr(err, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	for (int i = 0; i < b->nfiles; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, b->file[i].name);
		if ((b->file[i].snapshot ? rebuild_snapshot(&rb, &b->file[i], path, err)
					 : rebuild_blocks(&rb, &b->file[i], path, err)) < 0)
			goto out;
	}
	snprintf(path, sizeof(path), "%s/snapshots", tmp);
	if (fsync_dir(path) < 0 || fsync_dir(tmp) < 0 || rename(tmp, out_dir) < 0) {
		tvm_seterr(err, "cannot move the rebuilt report to %s: %s", out_dir, strerror(errno));
		goto out;
	}
	tmp[0] = 0;
	fsync_parent(out_dir);
	rc = 0;
out:
	if (tmp[0])
		remove_tree(tmp);
	master_close(&rb.mi);
	free(rb.cache[0]);
	free(rb.cache[1]);
	hasher_free(&rb.h);
	return rc;
}
