/* spin: prints a line, then loops forever in user mode without a system
 * call - a hung application, for hang detection. */
#include <stdio.h>

volatile unsigned long counter;

static void __attribute__((noinline)) spin_forever(void)
{
	for (;;)
		counter++;
}

int main(void)
{
	printf("spinning\n");
	fflush(stdout);
	spin_forever();
	return 0;
}
