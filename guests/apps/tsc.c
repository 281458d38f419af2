/* tsc: reads the time stamp counter with RDTSC and RDTSCP three times
 * each and prints the values (under trialvm, trialos serves them from the
 * recorded clock: a replay prints the same ones); exits 0 when they never
 * go backwards, 1 otherwise. */
#include <stdint.h>
#include <stdio.h>

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static uint64_t rdtscp(uint32_t *aux)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(*aux));
	return (uint64_t)hi << 32 | lo;
}

int main(void)
{
	uint64_t last = 0;
	int bad = 0;
	for (int i = 0; i < 3; i++) {
		uint32_t aux = 99;
		uint64_t a = rdtsc(), b = rdtscp(&aux);
		printf("tsc %llu tscp %llu aux %u\n", (unsigned long long)a, (unsigned long long)b, aux);
		if (a < last || b < a)
			bad = 1;
		last = b;
	}
	printf("%s\n", bad ? "went backwards" : "ok");
	return bad;
}
