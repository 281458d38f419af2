/* Dies with SIGFPE (FPE_INTDIV) inside divide_it(), called from main(). */
#include <stdio.h>

volatile int zero;

__attribute__((noinline, noipa)) void before_crash(void)
{
	fflush(stdout);
}

__attribute__((noinline, noipa)) int divide_it(int a, int b)
{
	before_crash();
	return a / b;
}

int main(void)
{
	printf("about to divide by zero\n");
	int r = divide_it(42, zero);
	printf("survived: %d\n", r);
	return 0;
}
