/* Dies with SIGSEGV (SEGV_MAPERR, address 0) inside crash_here(), called
 * from main(). crash_here is kept a non-leaf function so that it sets up a
 * frame pointer and the caller shows in a frame-pointer backtrace. Just
 * before the fault it loads ymm0 (xmm0 where AVX is not usable) with the
 * dwords 0x11110000 + i, i = 0..7 (0..3), for the core's vector state;
 * it prints "avx: yes" or "avx: no" first. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>

int *volatile null_pointer;
static int avx;
static const uint32_t pattern[8] __attribute__((aligned(32))) = {
	0x11110000, 0x11110001, 0x11110002, 0x11110003, 0x11110004, 0x11110005, 0x11110006, 0x11110007,
};

/* AVX and the OS saving its state (CPUID.1:ECX AVX and OSXSAVE, XCR0 SSE|AVX). */
static int avx_usable(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28)))
		return 0;
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

__attribute__((noinline, noipa)) void before_crash(void)
{
	fflush(stdout);
}

__attribute__((noinline, noipa)) int crash_here(int value)
{
	before_crash();
	if (avx)
		__asm__ volatile("vmovdqa %0, %%ymm0" ::"m"(pattern) : "xmm0");
	else
		__asm__ volatile("movdqa %0, %%xmm0" ::"m"(pattern) : "xmm0");
	int *p = null_pointer;
	*p = value;
	return *p;
}

int main(void)
{
	avx = avx_usable();
	printf("avx: %s\n", avx ? "yes" : "no");
	printf("about to dereference NULL\n");
	int r = crash_here(42);
	printf("survived: %d\n", r);
	return 0;
}
