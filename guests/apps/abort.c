/* Dies with SIGABRT: crash_here() (called from main()) calls abort(). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline, noipa)) void crash_here(void)
{
	fflush(stdout);
	abort();
}

int main(void)
{
	printf("about to abort\n");
	crash_here();
	printf("survived\n");
	return 0;
}
