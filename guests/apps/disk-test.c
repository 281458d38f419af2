/* disk-test: block-device checks on /dev/vda (virtio-blk under trialos).
 *
 *   disk-test             write a pattern at several offsets (aligned,
 *                         unaligned, across a 64 KiB cluster boundary, a
 *                         multi-request run, the last bytes of the disk),
 *                         fsync, read back, verify; prints "disk-test: ok"
 *   disk-test check       only verify that pattern (persistence across runs):
 *                         exit 0 if present, 3 if absent
 *   disk-test beyond      write past the end: exit 0 only if that fails
 *                         with an error (printed with its errno)
 *   disk-test loop N [K]  write N 64 KiB clusters from 1 MiB on, fsync every
 *                         K (default 4) writes, printing "flushed I" (I =
 *                         clusters written and flushed so far) after each
 *   disk-test loopcheck I verify that the first I loop clusters are intact:
 *                         exit 0 if so, 3 if not
 *   disk-test crash       the write test, then a write through NULL (a
 *                         crash whose report holds a changed disk)
 * Other exit statuses: 1 an I/O error, 2 usage. DEV=/path overrides the
 * device (environment variable; trialos has none, so argv: -d PATH first).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLKGETSIZE64_ _IOR(0x12, 114, size_t)
#define CLUSTER 65536u
#define LOOP_BASE (1u << 20)

static const char *dev = "/dev/vda";

static uint8_t pat(uint64_t pos, uint32_t seed)
{
	uint64_t x = (pos + 1) * 0x9e3779b97f4a7c15ull ^ seed;
	x ^= x >> 29;
	return (uint8_t)(x ^ (x >> 17));
}

static void fill(uint8_t *b, uint64_t pos, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(pos + i, seed);
}

static long bad_at(const uint8_t *b, uint64_t pos, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(pos + i, seed))
			return (long)i;
	return -1;
}

static int xpwrite(int fd, const void *b, size_t n, off_t off)
{
	ssize_t r = pwrite(fd, b, n, off);
	if (r != (ssize_t)n) {
		printf("disk-test: pwrite(%zu @ %lld) = %zd (%s)\n", n, (long long)off, r, r < 0 ? strerror(errno) : "short");
		return -1;
	}
	return 0;
}

static int xpread(int fd, void *b, size_t n, off_t off)
{
	ssize_t r = pread(fd, b, n, off);
	if (r != (ssize_t)n) {
		printf("disk-test: pread(%zu @ %lld) = %zd (%s)\n", n, (long long)off, r, r < 0 ? strerror(errno) : "short");
		return -1;
	}
	return 0;
}

struct region { uint64_t off; size_t len; };

#define SEED 0x7e57d15cu

static int regions(uint64_t size, struct region *r)
{
	int n = 0;
	const struct region want[] = {
		{ 0, 4096 },                         /* aligned, first sectors */
		{ 4096 + 100, 5000 },                /* unaligned both ends */
		{ 65536 * 3 - 10, 8192 },            /* across a cluster boundary */
		{ 65536 * 5 + 7, 3 },                /* inside one sector */
		{ 1u << 19, 200 * 1024 + 512 },      /* several 64 KiB requests */
	};
	for (unsigned i = 0; i < sizeof want / sizeof want[0]; i++)
		if (want[i].off + want[i].len <= size)
			r[n++] = want[i];
	if (size >= 2u << 20)
		r[n++] = (struct region){ size - 3000, 3000 };   /* up to the last byte */
	return n;
}

static int verify(int fd, uint64_t size, bool quiet)
{
	struct region r[8];
	int n = regions(size, r);
	uint8_t *b = malloc(256 * 1024);
	for (int i = 0; i < n; i++) {
		/* odd buffer offset: user pages not sector aligned */
		uint8_t *p = b + 1;
		if (xpread(fd, p, r[i].len, r[i].off) < 0)
			return 1;
		long bad = bad_at(p, r[i].off, r[i].len, SEED);
		if (bad >= 0) {
			if (!quiet)
				printf("disk-test: mismatch at %llu (region %d, byte %ld): %02x != %02x\n",
				       (unsigned long long)(r[i].off + bad), i, bad, p[bad], pat(r[i].off + bad, SEED));
			return 3;
		}
	}
	free(b);
	return 0;
}

static int open_dev(int flags, uint64_t *size)
{
	int fd = open(dev, flags);
	if (fd < 0) {
		printf("disk-test: open %s: %s\n", dev, strerror(errno));
		exit(1);
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISBLK(st.st_mode)) {
		printf("disk-test: %s is not a block device\n", dev);
		exit(1);
	}
	uint64_t sz = 0;
	if (ioctl(fd, BLKGETSIZE64_, &sz) < 0)
		sz = (uint64_t)st.st_size;
	else if (sz != (uint64_t)st.st_size)
		printf("disk-test: note: BLKGETSIZE64 %llu != st_size %lld\n", (unsigned long long)sz, (long long)st.st_size);
	off_t end = lseek(fd, 0, SEEK_END);
	if (end != (off_t)sz) {
		printf("disk-test: lseek(SEEK_END) = %lld, size %llu\n", (long long)end, (unsigned long long)sz);
		exit(1);
	}
	lseek(fd, 0, SEEK_SET);
	*size = sz;
	return fd;
}

static int do_write_test(void)
{
	uint64_t size;
	int fd = open_dev(O_RDWR, &size);
	printf("disk-test: %s: %llu bytes\n", dev, (unsigned long long)size);
	struct region r[8];
	int n = regions(size, r);
	uint8_t *b = malloc(256 * 1024);
	for (int i = 0; i < n; i++) {
		uint8_t *p = b + 3;
		fill(p, r[i].off, r[i].len, SEED);
		if (i % 2 == 0) {
			if (xpwrite(fd, p, r[i].len, r[i].off) < 0)
				return 1;
		} else {   /* lseek + write */
			if (lseek(fd, r[i].off, SEEK_SET) != (off_t)r[i].off || write(fd, p, r[i].len) != (ssize_t)r[i].len) {
				printf("disk-test: lseek/write @ %llu: %s\n", (unsigned long long)r[i].off, strerror(errno));
				return 1;
			}
			if (lseek(fd, 0, SEEK_CUR) != (off_t)(r[i].off + r[i].len)) {
				printf("disk-test: file offset not advanced\n");
				return 1;
			}
		}
	}
	if (fsync(fd) < 0) {
		printf("disk-test: fsync: %s\n", strerror(errno));
		return 1;
	}
	int v = verify(fd, size, false);
	if (v)
		return v;
	/* read at the end: 0 bytes; read across the end: short */
	char c[1024];
	if (pread(fd, c, 1, size) != 0 || pread(fd, c, sizeof c, size - 100) != 100) {
		printf("disk-test: reads at/over the end are wrong\n");
		return 1;
	}
	if (close(fd) < 0) {
		printf("disk-test: close: %s\n", strerror(errno));
		return 1;
	}
	printf("disk-test: ok\n");
	return 0;
}

static int do_check(void)
{
	uint64_t size;
	int fd = open_dev(O_RDONLY, &size);
	int v = verify(fd, size, false);
	printf("disk-test: check: pattern %s\n", v == 0 ? "present" : v == 3 ? "absent" : "unreadable");
	return v;
}

static int do_beyond(void)
{
	uint64_t size;
	int fd = open_dev(O_RDWR, &size);
	uint8_t b[1024];
	fill(b, size - 512, sizeof b, SEED);   /* keeps the pattern that "check" looks for */
	ssize_t r = pwrite(fd, b, sizeof b, size - 512);
	printf("disk-test: write of 1024 bytes at end-512 = %zd%s\n", r, r == 512 ? " (short, as Linux)" : "");
	r = pwrite(fd, b, 512, size);
	if (r >= 0) {
		printf("disk-test: write beyond the end returned %zd (no error)\n", r);
		return 1;
	}
	int e = errno;
	printf("disk-test: write beyond the end failed: errno %d (%s)\n", e, strerror(e));
	r = pwrite(fd, b, 512, size + (1 << 20));
	printf("disk-test: write far beyond the end: %zd errno %d\n", r, r < 0 ? errno : 0);
	return 0;
}

static void loop_fill(uint8_t *b, unsigned i)
{
	fill(b, (uint64_t)LOOP_BASE + (uint64_t)i * CLUSTER, CLUSTER, SEED ^ 0x100f);
}

static int do_loop(unsigned n, unsigned k)
{
	uint64_t size;
	int fd = open_dev(O_RDWR, &size);
	if (LOOP_BASE + (uint64_t)n * CLUSTER > size) {
		printf("disk-test: loop %u: disk too small\n", n);
		return 1;
	}
	uint8_t *b = malloc(CLUSTER);
	for (unsigned i = 0; i < n; i++) {
		loop_fill(b, i);
		if (xpwrite(fd, b, CLUSTER, LOOP_BASE + (off_t)i * CLUSTER) < 0)
			return 1;
		if ((i + 1) % k == 0 || i + 1 == n) {
			if (fsync(fd) < 0) {
				printf("disk-test: fsync: %s\n", strerror(errno));
				return 1;
			}
			printf("flushed %u\n", i + 1);
			fflush(stdout);
		}
	}
	printf("disk-test: loop done %u\n", n);
	return 0;
}

static int do_loopcheck(unsigned n)
{
	uint64_t size;
	int fd = open_dev(O_RDONLY, &size);
	uint8_t *b = malloc(CLUSTER), *want = malloc(CLUSTER);
	for (unsigned i = 0; i < n; i++) {
		if (LOOP_BASE + (uint64_t)(i + 1) * CLUSTER > size || xpread(fd, b, CLUSTER, LOOP_BASE + (off_t)i * CLUSTER) < 0)
			return 1;
		loop_fill(want, i);
		if (memcmp(b, want, CLUSTER)) {
			printf("disk-test: loopcheck: cluster %u is not intact\n", i);
			return 3;
		}
	}
	printf("disk-test: loopcheck: %u clusters intact\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int a = 1;
	if (argc > 2 && !strcmp(argv[1], "-d")) {
		dev = argv[2];
		a = 3;
	}
	const char *mode = a < argc ? argv[a] : "";
	if (!*mode)
		return do_write_test();
	if (!strcmp(mode, "check"))
		return do_check();
	if (!strcmp(mode, "beyond"))
		return do_beyond();
	if (!strcmp(mode, "loop") && a + 1 < argc) {
		unsigned k = a + 2 < argc ? (unsigned)atoi(argv[a + 2]) : 4;
		return do_loop((unsigned)atoi(argv[a + 1]), k ? k : 1);
	}
	if (!strcmp(mode, "loopcheck") && a + 1 < argc)
		return do_loopcheck((unsigned)atoi(argv[a + 1]));
	if (!strcmp(mode, "crash")) {
		int r = do_write_test();
		*(volatile int *)(uintptr_t)(r * 0) = 1;
		return r;
	}
	fprintf(stderr, "usage: disk-test [-d DEV] [check | beyond | loop N [K] | loopcheck N | crash]\n");
	return 2;
}
