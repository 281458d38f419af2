/* blk-bench: sequential block-device throughput on /dev/vda.
 *
 *   blk-bench [BS|all [TOTAL_MIB [read|write|rw [DEV]]]]
 *
 * Writes (then reads) TOTAL_MIB (default 32, at most the device size) from
 * offset 0 in BS-byte pwrite/pread calls (default: both 4096 and 65536); the
 * write figure includes the final fsync. One machine-readable line per case:
 *   blk-bench: write 4096 MiB/s=12.3 requests=8192 bytes=33554432 ns=...
 * "requests" counts system calls (each becomes one or more virtio requests
 * of at most 64 KiB). Timing: clock_gettime(CLOCK_MONOTONIC). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run(int fd, int write_it, size_t bs, uint64_t total, uint8_t *buf)
{
	uint64_t reqs = 0, done = 0;
	uint64_t t0 = now_ns();
	while (done < total) {
		size_t n = total - done < bs ? (size_t)(total - done) : bs;
		ssize_t r = write_it ? pwrite(fd, buf, n, (off_t)done) : pread(fd, buf, n, (off_t)done);
		if (r != (ssize_t)n) {
			printf("blk-bench: %s %zu at %llu: %zd (%s)\n", write_it ? "write" : "read", n,
			       (unsigned long long)done, r, r < 0 ? strerror(errno) : "short");
			return 1;
		}
		reqs++;
		done += n;
	}
	if (write_it && fsync(fd) < 0) {
		printf("blk-bench: fsync: %s\n", strerror(errno));
		return 1;
	}
	uint64_t ns = now_ns() - t0;
	if (!ns)
		ns = 1;
	double mibs = (double)done / (1024.0 * 1024.0) / ((double)ns / 1e9);
	printf("blk-bench: %s %zu MiB/s=%.1f requests=%llu bytes=%llu ns=%llu\n", write_it ? "write" : "read", bs, mibs,
	       (unsigned long long)reqs, (unsigned long long)done, (unsigned long long)ns);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *bsarg = argc > 1 ? argv[1] : "all";
	uint64_t total = (argc > 2 ? strtoull(argv[2], NULL, 0) : 32) << 20;
	const char *what = argc > 3 ? argv[3] : "rw";
	const char *dev = argc > 4 ? argv[4] : "/dev/vda";
	int do_w = strcmp(what, "read") != 0, do_r = strcmp(what, "write") != 0;
	int fd = open(dev, do_w ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		printf("blk-bench: open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		printf("blk-bench: fstat: %s\n", strerror(errno));
		return 1;
	}
	if (total > (uint64_t)st.st_size)
		total = (uint64_t)st.st_size;
	size_t sizes[2] = { 4096, 65536 };
	int nsizes = 2;
	if (strcmp(bsarg, "all")) {
		sizes[0] = (size_t)strtoull(bsarg, NULL, 0);
		nsizes = 1;
		if (!sizes[0]) {
			fprintf(stderr, "usage: blk-bench [BS|all [TOTAL_MIB [read|write|rw [DEV]]]]\n");
			return 2;
		}
	}
	size_t maxbs = sizes[nsizes - 1] > sizes[0] ? sizes[nsizes - 1] : sizes[0];
	uint8_t *buf = aligned_alloc(4096, (maxbs + 4095) & ~(size_t)4095);
	for (size_t i = 0; i < maxbs; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	printf("blk-bench: device %s size=%lld total=%llu\n", dev, (long long)st.st_size, (unsigned long long)total);
	int rc = 0;
	for (int i = 0; i < nsizes && !rc; i++) {
		if (do_w)
			rc |= run(fd, 1, sizes[i], total, buf);
		if (do_r && !rc)
			rc |= run(fd, 0, sizes[i], total, buf);
	}
	return rc;
}
