/* guests/linux/crash-test.c - the vendor's program of the tests' Linux
 * image: dynamically linked (glibc), so that booting it proves the image's
 * root file system, its libraries and trialvm's /init work together.
 *
 *   crash-test exit N    print "crash-test: exit N" and exit with status N
 *   crash-test segv      die of SIGSEGV (a write through NULL in crash_here)
 *   crash-test abort     die of SIGABRT (abort())
 *   crash-test fpe       die of SIGFPE (an integer division by zero)
 *   crash-test panic     panic the kernel (writes 'c' to /proc/sysrq-trigger)
 *   crash-test args A..  print each argument as "crash-test: arg [A]"
 *   crash-test kernel KO MODE [SYSCTL=VALUE...]  load the kernel module KO
 *                        (tests/guests/kmod: the vendor's buggy driver) and
 *                        write MODE (oops, softlockup, hardlockup) to its
 *                        /proc/tvm_fault
 *   crash-test work PRE POST  fill PRE MiB of memory (half of it random
 *                        bytes), print "crash-test: ready", wait a second,
 *                        change POST MiB of it, write POST / 2 MiB of it
 *                        to /crash-test.work (fsync'ed), then die of
 *                        SIGSEGV (a loaded program, its checkpoint, its
 *                        work after it: make bench's report bundles)
 *   crash-test hang [SYSCTL=VALUE...]  block for good in the kernel (D
 *                        state): freeze the root file system (FIFREEZE),
 *                        then create a file on it
 * SYSCTL=VALUE (kernel/watchdog_thresh=1) is written to /proc/sys/SYSCTL
 * first: a detector made that sensitive only now, not during the boot,
 * where a slow (emulated) machine would trip it.
 * It prints "crash-test: running on Linux RELEASE, N CPUs" first. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int *volatile null_pointer;
volatile int zero, one = 1;

__attribute__((noinline)) static int crash_here(const char *how)
{
	if (!strcmp(how, "segv"))
		*null_pointer = 1;
	else if (!strcmp(how, "abort"))
		abort();
	else if (!strcmp(how, "fpe"))
		return one / zero; /* both volatile: a real idiv (1 / x compiles to a compare) */
	return 0;
}

/* argv[from...]: SYSCTL=VALUE, each written to /proc/sys/SYSCTL. */
static int set_sysctls(int argc, char **argv, int from)
{
	for (int i = from; i < argc; i++) {
		char path[256];
		const char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || strstr(argv[i], "..") ||
		    snprintf(path, sizeof(path), "/proc/sys/%.*s", (int)(eq - argv[i]), argv[i]) >= (int)sizeof(path)) {
			fprintf(stderr, "crash-test: %s: give SYSCTL=VALUE\n", argv[i]);
			return -1;
		}
		FILE *f = fopen(path, "w");
		if (!f || fputs(eq + 1, f) == EOF || fclose(f) == EOF) {
			fprintf(stderr, "crash-test: %s: %s\n", path, strerror(errno));
			return -1;
		}
		printf("crash-test: %s = %s\n", path, eq + 1);
	}
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
	if (argc > 1 && !strcmp(argv[1], "args")) {
		for (int i = 2; i < argc; i++)
			printf("crash-test: arg [%s]\n", argv[i]);
		return 0;
	}
	if (argc > 3 && !strcmp(argv[1], "kernel")) {
		if (set_sysctls(argc, argv, 4) < 0)
			return 3;
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0) {
			fprintf(stderr, "crash-test: cannot load %s: %s\n", argv[2], strerror(errno));
			return 3;
		}
		close(fd);
		printf("crash-test: %s loaded; %s\n", argv[2], argv[3]);
		fflush(stdout);
		FILE *f = fopen("/proc/tvm_fault", "w");
		if (!f || fputs(argv[3], f) == EOF || fclose(f) == EOF)
			perror("crash-test: /proc/tvm_fault");
		return 3;
	}
	if (argc > 1 && !strcmp(argv[1], "hang")) {
		if (set_sysctls(argc, argv, 2) < 0)
			return 3;
		int fd = open("/", O_RDONLY | O_DIRECTORY);
		if (fd < 0 || ioctl(fd, FIFREEZE, 0) < 0) {
			perror("crash-test: FIFREEZE /");
			return 3;
		}
		printf("crash-test: / is frozen; writing to it\n");
		fflush(stdout);
		open("/crash-test.hang", O_WRONLY | O_CREAT, 0644); /* waits for the thaw, which never comes */
		perror("crash-test: /crash-test.hang");
		return 3;
	}
	if (argc > 3 && !strcmp(argv[1], "work")) {
		size_t pre = (size_t)atol(argv[2]) << 20, post = (size_t)atol(argv[3]) << 20;
		unsigned char *m = malloc(pre > post ? pre : post ? post : 1);
		unsigned x = 2463534242u;
		/* Half of every 8 KiB random, half counting: what a loaded program holds. */
		for (size_t i = 0; m && i < pre; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			m[i] = (i / 4096) % 2 ? (unsigned char)x : (unsigned char)(i / 4096);
		}
		printf("crash-test: ready\n");
		fflush(stdout);
		sleep(1);
		for (size_t i = 0; m && i < post; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			m[i] = (i / 4096) % 2 ? (unsigned char)x : (unsigned char)~(i / 4096);
		}
		int fd = open("/crash-test.work", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (!m || fd < 0 || write(fd, m, post / 2) != (ssize_t)(post / 2) || fsync(fd) < 0)
			perror("crash-test: work");
		printf("crash-test: worked (%zu MiB)\n", post >> 20);
		fflush(stdout);
		crash_here("segv");
		return 3;
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
	fprintf(stderr, "usage: crash-test exit N | segv | abort | fpe | panic | hang | work PRE POST | kernel KO MODE | args A...\n");
	return 2;
}
