/* flood: writes numbered lines to the console without end (or N lines with
 * an argument, then exits 0): a guest whose output nobody may be reading. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	for (unsigned long i = 0; n == 0 || i < n; i++)
		printf("flood line %lu .........................................................\n", i);
	return 0;
}
