/* console-in: prints what CPUID says of RDRAND and RDSEED ("cpuid rdrand R
 * rdseed S"; trialvm hides both: their bytes would reach no exit and no
 * event log), then reads one line of console input (trialos polls the
 * UART) and prints "got [LINE]", or "got nothing" after 50 empty reads.
 * A recorded run and its replay print the same (tests/record.sh). */
#include <cpuid.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	unsigned a, b, c, d;
	__cpuid(1, a, b, c, d);
	int rdrand = (c >> 30) & 1;
	__cpuid_count(7, 0, a, b, c, d);
	int rdseed = (b >> 18) & 1;
	printf("cpuid rdrand %d rdseed %d\n", rdrand, rdseed);
	fflush(stdout);
	char line[128];
	size_t n = 0;
	for (int tries = 0; tries < 50 && n < sizeof(line) - 1; tries++) {
		ssize_t r = read(0, line + n, sizeof(line) - 1 - n);
		if (r > 0) {
			n += (size_t)r;
			if (line[n - 1] == '\n')
				break;
		}
	}
	if (n && line[n - 1] == '\n')
		n--;
	line[n] = 0;
	if (n)
		printf("got [%s]\n", line);
	else
		printf("got nothing\n");
	return 0;
}
