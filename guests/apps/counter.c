/* Prints "count N" for N = 1..LIMIT (argv[1], default 100), spinning
 * SPIN iterations (argv[2], default 200000) and at least MS milliseconds
 * of CLOCK_MONOTONIC (argv[3], default 0) between lines, and fills a
 * 2 MiB buffer as it goes; ends with the buffer's checksum and "done".
 * Its whole output depends only on its arguments: a run snapshotted and
 * restored mid-way must print exactly what a run straight through prints
 * (tests/snapshot.sh). With argv[4] "rnd" it also fills a page of its own
 * with getrandom() bytes at each line (pages it wrote once at the start and
 * never again: only the VMM writes them, through virtio-rng) and prints
 * each page's checksum ("rnd N X") before "done": a restore must bring
 * back what trialvm wrote into guest memory, not only what the guest
 * wrote (the pages filled before the snapshot must read the same). With
 * "crash" in argv[4] it dies of SIGSEGV (a null write in crash_at_end)
 * after "done": a report whose crash snapshots restore into the same crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static unsigned char buf[2 << 20];
static unsigned char rnd[256][4096] __attribute__((aligned(4096)));

__attribute__((noinline)) static void crash_at_end(volatile int *p)
{
	*p = 1;
}

int main(int argc, char **argv)
{
	long limit = argc > 1 ? atol(argv[1]) : 100;
	long spin = argc > 2 ? atol(argv[2]) : 200000;
	long ms = argc > 3 ? atol(argv[3]) : 0;
	int use_rnd = argc > 4 && strstr(argv[4], "rnd");
	int crash = argc > 4 && strstr(argv[4], "crash");
	if (limit > 256 && use_rnd)
		limit = 256;
	if (use_rnd)
		memset(rnd, 1, sizeof(rnd));
	volatile unsigned long sink = 0;
	for (long n = 1; n <= limit; n++) {
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do {
			for (long i = 0; i < spin; i++)
				sink += (unsigned long)i ^ (unsigned long)n;
			clock_gettime(CLOCK_MONOTONIC, &t);
		} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
		for (size_t i = (size_t)n * 4093 % sizeof(buf), k = 0; k < 4096; k++, i = (i + 7919) % sizeof(buf))
			buf[i] = (unsigned char)(buf[i] * 31 + n + k);
		if (use_rnd && getrandom(rnd[n - 1], sizeof(rnd[0]), 0) != (ssize_t)sizeof(rnd[0]))
			return 2;
		printf("count %ld\n", n);
		fflush(stdout);
	}
	/* A pause of 10 lines' time before the checksums: snapshots taken in
	 * it restore into a run that prints every page's checksum. */
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 10 * ms);
	unsigned long sum = 0;
	for (size_t i = 0; i < sizeof(buf); i++)
		sum = sum * 131 + buf[i];
	for (long n = 0; use_rnd && n < limit; n++) {
		unsigned long r = 0;
		for (size_t i = 0; i < sizeof(rnd[0]); i++)
			r = r * 131 + rnd[n][i];
		printf("rnd %ld %lx\n", n + 1, r);
	}
	printf("sum %lx\ndone\n", sum);
	fflush(stdout);
	if (crash)
		crash_at_end((volatile int *)(uintptr_t)(sum & 0));
	return 0;
}
