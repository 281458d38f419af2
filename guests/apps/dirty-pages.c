/* dirty-pages PAGES MS ROUNDS [spin]: fill 64 MiB with non-zero data,
 * print "ready", then ROUNDS times write one byte into each of PAGES
 * distinct pages (a different stretch each round) and wait MS ms; print
 * "done" and exit 0, or with "spin" keep going forever (for QEMU). The
 * guest of the snapshot benchmark (ci/bench-snap.sh): about PAGES pages
 * dirty between snapshots taken every MS ms. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB 64u
#define PAGES (MIB * 256u)

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	unsigned pages = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1000;
	unsigned ms = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 100;
	unsigned long rounds = argc > 3 ? strtoul(argv[3], NULL, 10) : 20;
	int spin = argc > 4 && !strcmp(argv[4], "spin");
	if (pages > PAGES)
		pages = PAGES;
	uint8_t *p = malloc((size_t)MIB << 20);
	if (!p)
		return 1;
	for (size_t i = 0; i < (size_t)MIB << 20; i++)
		p[i] = (uint8_t)(i * 31 + 7) | 1;
	printf("ready\n");
	fflush(stdout);
	unsigned next = 0;
	for (unsigned long r = 0; spin || r < rounds; r++) {
		for (unsigned k = 0; k < pages; k++, next = (next + 1) % PAGES)
			p[(size_t)next * 4096 + (r % 4096)]++;
		uint64_t t0 = now_ms();
		while (now_ms() - t0 < ms)
			;
	}
	printf("done\n");
	return 0;
}
