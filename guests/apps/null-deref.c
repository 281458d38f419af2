/* Dies with SIGSEGV (SEGV_MAPERR, address 0) inside crash_here(), called
 * from main(). crash_here is kept a non-leaf function so that it sets up a
 * frame pointer and the caller shows in a frame-pointer backtrace. */
#include <stdio.h>

int *volatile null_pointer;

__attribute__((noinline, noipa)) void before_crash(void)
{
	fflush(stdout);
}

__attribute__((noinline, noipa)) int crash_here(int value)
{
	before_crash();
	int *p = null_pointer;
	*p = value;
	return *p;
}

int main(void)
{
	printf("about to dereference NULL\n");
	int r = crash_here(42);
	printf("survived: %d\n", r);
	return 0;
}
