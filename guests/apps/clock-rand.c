/* Prints CLOCK_REALTIME, CLOCK_MONOTONIC and 16 getrandom() bytes; exits 0
 * only if they look plausible (time after 2020-01-01, monotonic clock not
 * going backwards, random bytes not all zero). */
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

int main(void)
{
	struct timespec rt, m1, m2;
	unsigned char rnd[16] = { 0 };
	int bad = 0;
	if (clock_gettime(CLOCK_REALTIME, &rt) != 0) {
		perror("clock_gettime(CLOCK_REALTIME)");
		bad |= 1;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &m1) != 0 || clock_gettime(CLOCK_MONOTONIC, &m2) != 0) {
		perror("clock_gettime(CLOCK_MONOTONIC)");
		bad |= 2;
	}
	ssize_t n = getrandom(rnd, sizeof rnd, 0);
	if (n != (ssize_t)sizeof rnd) {
		perror("getrandom");
		bad |= 4;
	}
	printf("realtime %lld.%09ld\n", (long long)rt.tv_sec, rt.tv_nsec);
	printf("monotonic %lld.%09ld %lld.%09ld\n", (long long)m1.tv_sec, m1.tv_nsec,
	       (long long)m2.tv_sec, m2.tv_nsec);
	printf("random ");
	int nonzero = 0;
	for (unsigned i = 0; i < sizeof rnd; i++) {
		printf("%02x", rnd[i]);
		nonzero |= rnd[i];
	}
	printf("\n");
	if (rt.tv_sec < 1577836800) /* 2020-01-01T00:00:00Z */
		bad |= 8;
	if (m2.tv_sec < m1.tv_sec || (m2.tv_sec == m1.tv_sec && m2.tv_nsec < m1.tv_nsec))
		bad |= 16;
	if (!nonzero)
		bad |= 32;
	printf("%s (%d)\n", bad ? "implausible" : "ok", bad);
	return bad ? 1 : 0;
}
