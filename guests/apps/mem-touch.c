/* mem-touch MIB [crash|spin]: fill MIB mebibytes with non-zero data, print
 * "touched", then dereference NULL (crash, the default) or spin forever
 * (spin) - the guest of the crash-dump benchmark. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int *volatile null_pointer; /* volatile: the compiler cannot prove it NULL */

static void __attribute__((noinline)) crash_now(void)
{
	*null_pointer = 1;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	int spin = argc > 2 && !strcmp(argv[2], "spin");
	size_t len = mib << 20;
	uint64_t *p = malloc(len);
	if (!p) {
		printf("mem-touch: cannot allocate %zu MiB\n", mib);
		return 1;
	}
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = x | 1;
	}
	printf("touched %zu MiB at %p\n", mib, (void *)p);
	fflush(stdout);
	if (spin)
		for (volatile int forever = 1; forever;)
			;
	crash_now();
	return 0;
}
