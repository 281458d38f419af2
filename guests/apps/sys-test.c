/* Self-checking exercise of the trialos system-call subset. Prints one line
 * per failed check and "sys-test: ok" / "sys-test: N failures"; exits 0 only
 * when everything passed. With a path argument (a file in the cpio archive)
 * it also checks read/pread/lseek/mmap of that file against each other. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(cond) do { if (!(cond)) { printf("FAIL %s:%d: %s (errno %d)\n", __FILE__, __LINE__, #cond, errno); failures++; } } while (0)

static void check_memory(void)
{
	/* large malloc (mmap) and many small ones (brk) */
	size_t big = 8 << 20;
	unsigned char *p = malloc(big);
	CHECK(p != NULL);
	if (p) {
		for (size_t i = 0; i < big; i += 4096) {
			CHECK(p[i] == 0);
			p[i] = (unsigned char)(i >> 12);
		}
		free(p);
	}
	for (int round = 0; round < 3; round++) {
		void *ptrs[200];
		for (int i = 0; i < 200; i++) {
			ptrs[i] = malloc(100 + i * 50);
			CHECK(ptrs[i] != NULL);
			if (ptrs[i])
				memset(ptrs[i], i, 100 + i * 50);
		}
		for (int i = 0; i < 200; i++)
			free(ptrs[i]);
	}
	/* raw brk (musl's sbrk only supports sbrk(0)) */
	char *b0 = (char *)syscall(SYS_brk, 0);
	CHECK((char *)syscall(SYS_brk, b0 + 65536) == b0 + 65536);
	memset(b0, 0x5a, 65536);
	CHECK((char *)syscall(SYS_brk, b0) == b0);

	char *m = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	if (m != MAP_FAILED) {
		CHECK(m[0] == 0 && m[3 * 4096 - 1] == 0);
		strcpy(m, "hello");
		CHECK(mprotect(m, 4096, PROT_READ) == 0);
		CHECK(strcmp(m, "hello") == 0);
		char *f = mmap(m + 4096, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		CHECK(f == m + 4096);
		CHECK(munmap(m, 3 * 4096) == 0);
	}
	char *r = mmap(NULL, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(r != MAP_FAILED);
	if (r != MAP_FAILED) {
		CHECK(mprotect(r, 8192, PROT_READ | PROT_WRITE) == 0);
		r[0] = 1;
		r[8191] = 2;
		CHECK(r[0] == 1 && r[8191] == 2);
		CHECK(munmap(r, 1 << 20) == 0);
	}
	CHECK(mremap(NULL, 4096, 8192, 0) == MAP_FAILED);
}

static void check_misc(void)
{
	struct utsname u;
	CHECK(uname(&u) == 0 && strcmp(u.sysname, "Linux") == 0 && strcmp(u.machine, "x86_64") == 0);
	CHECK(getpid() > 0);
	CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0);
	struct timespec a, b;
	CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0 && clock_gettime(CLOCK_MONOTONIC, &b) == 0);
	CHECK(b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
	struct stat st;
	CHECK(fstat(1, &st) == 0 && S_ISCHR(st.st_mode));
	CHECK(fstatat(2, "", &st, AT_EMPTY_PATH) == 0 && S_ISCHR(st.st_mode));
	CHECK(!isatty(1));
	char cwd[64];
	CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0);
	char lnk[64];
	CHECK(readlink("/proc/self/exe", lnk, sizeof lnk) < 0);
	int fd = open("/dev/urandom", O_RDONLY);
	CHECK(fd >= 0);
	unsigned char rnd[32] = { 0 };
	int nz = 0;
	CHECK(read(fd, rnd, sizeof rnd) == (ssize_t)sizeof rnd);
	for (unsigned i = 0; i < sizeof rnd; i++)
		nz |= rnd[i];
	CHECK(nz);
	close(fd);
	CHECK(open("/no/such/file", O_RDONLY) < 0 && errno == ENOENT);
	CHECK(write(1, "", 0) == 0);
	fd = open("/dev/null", O_WRONLY);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1);
	CHECK(dup2(fd, 10) == 10 && close(10) == 0 && close(fd) == 0);
	CHECK(kill(getpid(), 0) == 0);
}

static void check_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
	size_t n = st.st_size;
	char *buf = malloc(n + 1);
	size_t got = 0;
	ssize_t r;
	while (buf && (r = read(fd, buf + got, n + 1 - got)) > 0)
		got += r;
	CHECK(got == n);
	CHECK(lseek(fd, 0, SEEK_END) == (off_t)n);
	if (n > 10) {
		char c;
		CHECK(pread(fd, &c, 1, 10) == 1 && c == buf[10]);
	}
	if (n) {
		char *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
		CHECK(m != MAP_FAILED && memcmp(m, buf, n) == 0);
		if (m != MAP_FAILED)
			munmap(m, n);
	}
	close(fd);
	free(buf);
	DIR *d = opendir("/");
	CHECK(d != NULL);
	int entries = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		entries++;
	CHECK(entries > 0);
	if (d)
		closedir(d);
}

int main(int argc, char **argv)
{
	check_memory();
	check_misc();
	if (argc > 1)
		check_file(argv[1]);
	if (failures)
		printf("sys-test: %d failures\n", failures);
	else
		printf("sys-test: ok\n");
	return failures ? 1 : 0;
}
