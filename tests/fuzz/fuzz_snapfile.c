/* tests/fuzz/fuzz_snapfile.c - libFuzzer harness for the snapshot file
 * reader (vmm/snapfile.c): the input is the whole file. snap_open must
 * accept it or refuse it with a message; an accepted file's sections are
 * all read back (up to 64 KiB each), and reads outside a section refused.
 * The file lives in one memfd, rewritten each run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/snapfile.h"

static const struct snap_known known[] = { { 10, 2, "memory" }, { 11, 1, "vcpu" }, { 12, 1, "devices" } };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz-snapfile", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, len, 0) != (ssize_t)len)
		abort();
	struct tvm_err err = { "" };
	struct snap_reader *r = NULL;
	if (snap_open(path, known, sizeof known / sizeof known[0], &r, &err) < 0) {
		if (!err.msg[0])
			abort(); /* a refusal must say why */
		return 0;
	}
	static uint8_t buf[1 << 16];
	struct snap_section s;
	while (snap_next(r, &s) == 1) {
		uint64_t n = s.length < sizeof buf ? s.length : sizeof buf;
		if (snap_read(r, &s, 0, buf, n, &err) < 0)
			abort(); /* inside the file: checked by snap_open */
		if (snap_read(r, &s, s.length, buf, 1, &err) == 0)
			abort(); /* past the section */
	}
	snap_close(r);
	return 0;
}
