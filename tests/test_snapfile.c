/* tests/test_snapfile.c - the snapshot file container (vmm/snapfile.c):
 * a round trip, the compatibility rules (unknown optional sections skipped,
 * unknown required ones and newer versions refused), and a hostile file:
 * every truncation and every flipped byte of a valid snapshot refused with
 * a message, a FIFO refused, nothing left behind by the writer. Also the
 * state records inside sections (vmm/vmstate.c): round trip, unknown
 * fields, wrong lengths, truncation. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/snapfile.h"
#include "../vmm/vmstate.h"
#include "check.h"

static char dir[] = "/tmp/tvm-snapfile-test.XXXXXX";
static char path[300];

static const struct snap_known known[] = { { 10, 2, "memory" }, { 11, 1, "vcpu" } };
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static struct snap_header header(void)
{
	struct snap_header h = { .nimages = 2 };
	snprintf(h.trialvm_version, sizeof h.trialvm_version, "0.1.0");
	memset(h.id, 0xab, 16);
	h.images[0] = (struct snap_image){ .role = SNAP_IMG_KERNEL };
	memset(h.images[0].sha256, 0x11, 32);
	h.images[1] = (struct snap_image){ .role = SNAP_IMG_DISK, .index = 3 };
	memset(h.images[1].sha256, 0x22, 32);
	return h;
}

/* A snapshot with a memory section, an unknown optional one, a vCPU one;
 * extra (type, version, flags) appended when extra_type != 0. */
static int write_snap(uint32_t extra_type, uint16_t extra_version, uint16_t extra_flags, struct tvm_err *err)
{
	struct snap_header h = header();
	struct snap_writer *w;
	if (snap_create(path, &h, &w, err) < 0)
		return -1;
	static uint8_t mem[3000];
	for (size_t i = 0; i < sizeof mem; i++)
		mem[i] = (uint8_t)(i * 7 + 1);
	if (snap_add(w, 10, 2, SNAP_SECTION_REQUIRED, mem, sizeof mem, err) < 0 ||
	    snap_add(w, 500, 1, 0, "optional data", 13, err) < 0 ||
	    snap_add(w, 11, 1, SNAP_SECTION_REQUIRED, "cpu", 3, err) < 0 ||
	    (extra_type && snap_add(w, extra_type, extra_version, extra_flags, "x", 1, err) < 0)) {
		snap_abandon(w);
		return -1;
	}
	return snap_commit(w, err);
}

static uint8_t *slurp(size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*len);
	if (b && fread(b, 1, *len, f) != *len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static void spit(const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(b, 1, len, f);
		fclose(f);
	}
}

static bool no_temporaries(void)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "ls %s/*.?????? 2>/dev/null | grep -q .", dir);
	return system(cmd) != 0;
}

static void test_round_trip(void)
{
	struct tvm_err err = { "" };
	CHECKF("write", write_snap(0, 0, 0, &err) == 0, "%s", err.msg);
	CHECK("write-no-temporary", no_temporaries());
	struct snap_reader *r;
	int rc = snap_open(path, known, NKNOWN, &r, &err);
	CHECKF("open", rc == 0, "%s", err.msg);
	if (rc < 0)
		return;
	const struct snap_header *h = snap_header_of(r);
	CHECK("header", h->format_version == SNAP_FORMAT_VERSION && !strcmp(h->trialvm_version, "0.1.0") &&
				h->nimages == 2 && h->images[1].role == SNAP_IMG_DISK && h->images[1].index == 3 &&
				h->images[1].sha256[31] == 0x22 && h->id[15] == 0xab && h->parent[0] == 0);
	struct snap_section s[4];
	int n = 0;
	while (n < 4 && snap_next(r, &s[n]) == 1)
		n++;
	CHECK("sections-in-order", n == 3 && s[0].type == 10 && s[0].known && s[1].type == 500 && !s[1].known &&
					   s[2].type == 11 && s[2].length == 3);
	uint8_t buf[3000];
	CHECKF("read-payload", snap_read(r, &s[0], 0, buf, sizeof buf, &err) == 0 && buf[2999] == (uint8_t)(2999 * 7 + 1),
	       "%s", err.msg);
	CHECK("read-past-section-refused", snap_read(r, &s[2], 2, buf, 2, &err) < 0 && strstr(err.msg, "past the end"));
	snap_close(r);
}

static void test_compat(void)
{
	struct tvm_err err = { "" };
	struct snap_reader *r = NULL;
	write_snap(900, 1, SNAP_SECTION_REQUIRED, &err);
	int rc = snap_open(path, known, NKNOWN, &r, &err);
	CHECKF("unknown-required-refused", rc < 0 && strstr(err.msg, "needs section type 900") &&
						  strstr(err.msg, "newer"), "rc %d: %s", rc, err.msg);
	write_snap(901, 7, 0, &err);
	rc = snap_open(path, known, NKNOWN, &r, &err);
	CHECKF("unknown-optional-skipped", rc == 0, "%s", err.msg);
	if (rc == 0)
		snap_close(r);
	write_snap(11, 2, SNAP_SECTION_REQUIRED, &err); /* vcpu version 2; this reader knows 1 */
	rc = snap_open(path, known, NKNOWN, &r, &err);
	CHECKF("newer-section-version-refused", rc < 0 && strstr(err.msg, "section vcpu is version 2") &&
						       strstr(err.msg, "up to version 1"), "rc %d: %s", rc, err.msg);
}

static void test_hostile(void)
{
	struct tvm_err err = { "" };
	write_snap(0, 0, 0, &err);
	size_t len;
	uint8_t *good = slurp(&len);
	CHECK("hostile-read", good != NULL && len > 100);
	if (!good)
		return;
	struct snap_reader *r = NULL;
	/* Every truncation: refused, with a message. */
	int bad = -1;
	for (size_t cut = 0; cut < len && bad < 0; cut++) {
		spit(good, cut);
		err.msg[0] = 0;
		if (snap_open(path, known, NKNOWN, &r, &err) == 0) {
			snap_close(r);
			bad = (int)cut;
		} else if (!err.msg[0]) {
			bad = (int)cut;
		}
	}
	CHECKF("every-truncation-refused", bad < 0, "a snapshot cut to %d bytes was accepted or gave no message", bad);
	/* Every flipped byte: refused (each byte is under a checksum). */
	bad = -1;
	uint8_t *b = malloc(len);
	for (size_t i = 0; b && i < len && bad < 0; i++) {
		memcpy(b, good, len);
		b[i] ^= 0x5a;
		spit(b, len);
		if (snap_open(path, known, NKNOWN, &r, &err) == 0) {
			snap_close(r);
			bad = (int)i;
		}
	}
	CHECKF("every-flipped-byte-refused", bad < 0, "byte %d flipped was accepted", bad);
	/* Trailing bytes after END. */
	memcpy(b, good, len);
	spit(b, len);
	FILE *f = fopen(path, "ab");
	if (f) {
		fputs("junk", f);
		fclose(f);
	}
	CHECKF("trailing-bytes-refused",
	       snap_open(path, known, NKNOWN, &r, &err) < 0 && strstr(err.msg, "4 bytes follow its END"), "%s", err.msg);
	/* A newer format version. */
	memcpy(b, good, len);
	b[8] = 2;
	spit(b, len);
	CHECKF("newer-format-refused", snap_open(path, known, NKNOWN, &r, &err) < 0 && strstr(err.msg, "format version 2"),
	       "%s", err.msg);
	free(b);
	free(good);
	/* Not a snapshot; a FIFO (refused at once, never waited on). */
	static const char not_snap[] = "hello, this is not a snapshot at all, but it is long enough to have a header "
				       "of some kind and then some more bytes";
	spit((const uint8_t *)not_snap, sizeof not_snap - 1);
	CHECKF("not-a-snapshot", snap_open(path, known, NKNOWN, &r, &err) < 0 && strstr(err.msg, "not a trialvm snapshot"),
	       "%s", err.msg);
	char fifo[320];
	snprintf(fifo, sizeof fifo, "%s/fifo", dir);
	mkfifo(fifo, 0600);
	CHECKF("fifo-refused", snap_open(fifo, known, NKNOWN, &r, &err) < 0 && strstr(err.msg, "not a regular file"),
	       "%s", err.msg);
	unlink(fifo);
}

static void test_writer(void)
{
	struct tvm_err err = { "" };
	/* An abandoned snapshot leaves the old file as it was and no temporary. */
	write_snap(0, 0, 0, &err);
	size_t l0, l1;
	uint8_t *before = slurp(&l0);
	struct snap_header h = header();
	struct snap_writer *w;
	if (snap_create(path, &h, &w, &err) == 0) {
		snap_add(w, 10, 1, 0, "partial", 7, &err);
		snap_abandon(w);
	}
	uint8_t *after = slurp(&l1);
	CHECK("abandon-keeps-old", before && after && l0 == l1 && memcmp(before, after, l0) == 0 && no_temporaries());
	free(before);
	free(after);
	CHECK("end-type-refused", snap_create(path, &h, &w, &err) == 0 && snap_add(w, 0, 1, 0, "", 0, &err) < 0);
	snap_abandon(w);
	h.nimages = SNAP_MAX_IMAGES + 1;
	CHECK("too-many-images-refused", snap_create(path, &h, &w, &err) < 0 && no_temporaries());
}

static void test_vmstate(void)
{
	struct tvm_err err = { "" };
	struct vs_out o = { 0 };
	uint8_t regs[7] = { 1, 2, 3, 4, 5, 6, 7 };
	vs_put(&o, 1, regs, sizeof regs);
	vs_put_u32(&o, 2, 0xdeadbeef);
	vs_put_u64(&o, 40, 77); /* unknown to the reader, optional */
	vs_put(&o, 3, NULL, 0);
	CHECK("vmstate-put", vs_out_error(&o, &err) == 0 && o.len == 8 + 7 + 8 + 4 + 8 + 8 + 8);
	struct vs_in in = { .p = o.buf, .len = o.len, .what = "the test" };
	static const uint16_t known[] = { 1, 2, 3 };
	CHECK("vmstate-check", vs_check(&in, known, 3, &err) == 0);
	uint8_t got[7] = { 0 };
	uint32_t v = 0;
	CHECK("vmstate-get", vs_get(&in, 1, got, sizeof got, "regs", &err) == 0 && !memcmp(got, regs, 7) &&
				     vs_get_u32(&in, 2, &v, "v", &err) == 0 && v == 0xdeadbeef);
	uint64_t w = 0;
	CHECKF("vmstate-wrong-length", vs_get_u64(&in, 2, &w, "v", &err) < 0 && strstr(err.msg, "4 bytes") &&
						strstr(err.msg, "the test"), "%s", err.msg);
	CHECKF("vmstate-missing", vs_get_u32(&in, 9, &v, "field nine", &err) < 0 && strstr(err.msg, "lacks field nine"),
	       "%s", err.msg);
	uint32_t opt = 5;
	CHECK("vmstate-optional-absent", vs_get_opt(&in, 9, &opt, 4, "x", &err) == 0 && opt == 5);
	/* A required field this reader does not know: refused, named. */
	vs_put_required(&o, 41, "x", 1);
	in = (struct vs_in){ .p = o.buf, .len = o.len, .what = "the test" };
	CHECKF("vmstate-unknown-required", vs_check(&in, known, 3, &err) < 0 && strstr(err.msg, "required field 41"),
	       "%s", err.msg);
	/* Every truncation is refused by vs_check or leaves lookups in bounds. */
	int bad = 0;
	for (size_t cut = 1; cut < o.len; cut++) {
		struct vs_in t = { .p = o.buf, .len = cut, .what = "cut" };
		const void *d;
		uint32_t l;
		if (vs_check(&t, known, 3, &err) == 0 && vs_find(&t, 41, &d, &l))
			bad++;
		for (uint16_t tag = 1; tag < 42; tag++)
			if (vs_find(&t, tag, &d, &l) && (const uint8_t *)d + l > o.buf + cut)
				bad++;
	}
	CHECKF("vmstate-truncations", bad == 0, "%d truncations read past the end", bad);
	/* A field claiming more than there is. */
	uint8_t lie[8] = { 1, 0, 0, 0, 0xff, 0xff, 0, 0 };
	struct vs_in l = { .p = lie, .len = sizeof lie, .what = "lie" };
	CHECKF("vmstate-overlong", vs_check(&l, known, 3, &err) < 0 && strstr(err.msg, "past its end"), "%s", err.msg);
	vs_out_free(&o);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(path, sizeof path, "%s/snap", dir);
	test_round_trip();
	test_compat();
	test_hostile();
	test_writer();
	test_vmstate();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("note: could not remove %s\n", dir);
	return failures ? 1 : 0;
}
