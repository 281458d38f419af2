/* guests/linux/crash-test.c - the vendor's program of the tests' Linux
 * image: dynamically linked (glibc), so that booting it proves the image's
 * root file system, its libraries and trialvm's /init work together.
 *
 *   crash-test exit N    print "crash-test: exit N" and exit with status N
 *   crash-test segv      die of SIGSEGV (a write through NULL in crash_here)
 *   crash-test abort     die of SIGABRT (abort())
 *   crash-test fpe       die of SIGFPE (an integer division by zero)
 *   crash-test panic     panic the kernel (writes 'c' to /proc/sysrq-trigger)
 * It prints "crash-test: running on Linux RELEASE, N CPUs" first. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

int *volatile null_pointer;
volatile int zero;

__attribute__((noinline)) static int crash_here(const char *how)
{
	if (!strcmp(how, "segv"))
		*null_pointer = 1;
	else if (!strcmp(how, "abort"))
		abort();
	else if (!strcmp(how, "fpe"))
		return 1 / zero;
	return 0;
}

int main(int argc, char **argv)
{
	struct utsname u;
	uname(&u);
	printf("crash-test: running on Linux %s, %ld CPUs\n", u.release, sysconf(_SC_NPROCESSORS_ONLN));
	fflush(stdout);
	if (argc > 2 && !strcmp(argv[1], "exit")) {
		printf("crash-test: exit %d\n", atoi(argv[2]));
		return atoi(argv[2]);
	}
	if (argc > 1 && !strcmp(argv[1], "panic")) {
		FILE *f = fopen("/proc/sysrq-trigger", "w");
		if (!f || fputc('c', f) == EOF || fclose(f) == EOF)
			perror("crash-test: /proc/sysrq-trigger");
		return 3;
	}
	if (argc > 1) {
		int r = crash_here(argv[1]);
		printf("crash-test: survived %s (%d)\n", argv[1], r);
		return 0;
	}
	fprintf(stderr, "usage: crash-test exit N | segv | abort | fpe | panic\n");
	return 2;
}
