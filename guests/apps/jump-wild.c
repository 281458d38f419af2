/* Calls through the address given as argv[1] (hex): a hostile or broken
 * program jumping to MAP_FAILED (0xffffffffffffffff), the last page of the
 * address space, or anywhere else. trialvm must report the fault, whatever
 * RIP the guest hands it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: jump-wild HEX-ADDRESS\n");
		return 2;
	}
	void (*fn)(void) = (void (*)(void))(uintptr_t)strtoull(argv[1], NULL, 16);
	printf("calling %p\n", (void *)fn);
	fflush(stdout);
	fn();
	return 0;
}
