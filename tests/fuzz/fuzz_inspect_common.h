/* tests/fuzz/fuzz_inspect_common.h - what the `trialvm inspect` harnesses
 * (fuzz_inspect_<format>.c) share: the input goes into one memfd, reused
 * for every run (truncated, written, inspected through its descriptor), and
 * each run checks what inspect promises:
 *   - a refusal always has a message;
 *   - neither the summary nor a message holds a terminal control (C0 but
 *     '\n' in the summary, DEL, C1, bidi controls): guest text is escaped;
 *   - an accepted --read-phys writes exactly the bytes asked for.
 * No descriptor or allocation outlives a run (LeakSanitizer checks). */
#ifndef FUZZ_INSPECT_COMMON_H
#define FUZZ_INSPECT_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reporter/inspect_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static int fz_fd = -1;

/* The input as a file: fz_fd holds exactly data[0..len). */
static void fz_load(struct insp_src *s, const char *path, const uint8_t *data, size_t len)
{
	if (fz_fd < 0 && (fz_fd = memfd_create("fuzz-inspect", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fz_fd, 0) < 0 || (len && pwrite(fz_fd, data, len, 0) != (ssize_t)len))
		abort();
	struct stat st;
	if (fstat(fz_fd, &st) < 0)
		abort();
	*s = (struct insp_src){ .fd = fz_fd, .path = path, .size = (uint64_t)st.st_size,
				.blocks = (uint64_t)st.st_blocks * 512 };
}

/* No terminal control in s[0..n) ('\n' allowed when nl). */
static void fz_clean(const char *s, size_t n, int nl)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n; i++) {
		if ((p[i] < 0x20 && !(nl && p[i] == '\n')) || p[i] == 0x7f)
			abort();
		if (i + 1 < n && p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
			abort();
		if (i + 2 < n && p[i] == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0x8e || p[i + 2] == 0x8f || (p[i + 2] >= 0xaa && p[i + 2] <= 0xae)))
			abort();
		if (i + 2 < n && p[i] == 0xe2 && p[i + 1] == 0x81 && p[i + 2] >= 0xa6 && p[i + 2] <= 0xa9)
			abort();
	}
}

typedef int (*fz_fn)(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err);

/* One inspection of s by fn (o NULL: the summary), with the checks. */
static int fz_run(fz_fn fn, const struct insp_src *s, const struct inspect_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (!out)
		abort();
	struct tvm_err err = { "" };
	int rc = fn(s, o, out, &err);
	if (fclose(out) != 0)
		abort();
	if (rc < 0) {
		if (!err.msg[0])
			abort();
		fz_clean(err.msg, strlen(err.msg), 0);
	} else if (rc != 0) {
		abort();
	} else if (o && o->read_phys) {
		if (len != o->read_phys_len)
			abort();
	} else {
		fz_clean(buf, len, 1);
	}
	free(buf);
	return rc;
}

/* The summary, then --read-phys at a few places (for the formats that hold
 * guest-physical memory). */
static void fz_inspect(fz_fn fn, const struct insp_src *s, int read_phys)
{
	if (fz_run(fn, s, NULL) != 0 || !read_phys)
		return;
	static const uint64_t probes[][2] = { { 0, 1 }, { 0xff8, 16 }, { 0x1000, 4096 }, { 0x3000, 0x2800 },
					      { 0xfffff000ull, 0x2000 }, { 0xfffffffffffff000ull, 0x1000 } };
	for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
		struct inspect_opts o = { true, probes[i][0], probes[i][1] };
		fz_run(fn, s, &o);
	}
}

#endif
