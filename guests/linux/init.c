/* guests/linux/init.c - /init of the initramfs `trialvm image linux` builds
 * (static, musl). The vendor changes nothing: this program is trialvm's.
 *
 *   1. mounts devtmpfs, proc and sysfs;
 *   2. loads the kernel modules listed in /trialvm/modules.list (one path per
 *      line, in dependency order; finit_module, "already loaded" is fine);
 *   3. waits (up to 30 s) for /dev/vda, mounts it (ext4) and makes it the root;
 *   4. runs the vendor's program (/trialvm/argv in the initramfs: argv, each
 *      NUL-terminated; the words after TVM_INIT_ARGS_MARKER in its own argv,
 *      from the kernel command line, replace the arguments) as a child,
 *      stdio on /dev/hvc0 (else /dev/console),
 *      environment PATH, HOME=/root, TERM=linux, and reaps every orphan
 *      meanwhile (it is PID 1);
 *      Before that it makes itself the kernel's core_pattern helper
 *      (copied to /run/trialvm/init, a tmpfs): a process that dies of a
 *      signal has its core, as Linux writes it, piped to
 *      "init core PID SIGNAL COMM", which sends it to trialvm over the core
 *      channel (/dev/hvc1, raw; devices/core_channel.c has the frame);
 *   5. when the program ends: sync, then powers off through trialvm's
 *      power-off port with the program's exit status (128 + signal when a
 *      signal killed it), or, outside trialvm, reboot(POWER_OFF).
 * Every failure of its own prints "trialvm-init: ..." on the console and
 * powers off with status 120 (the image or its setup is broken). */
#define _GNU_SOURCE /* mremap */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../include/trialvm_abi.h"

#define BROKEN 120 /* exit status: the image or the guest setup is broken */
#define ARGV_MAX 65536
#define MAX_ARGS 256

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (write(fd >= 0 ? fd : 2, buf, (size_t)n) < 0) {
		/* nowhere to say it */
	}
	if (fd >= 0)
		close(fd);
}

static void power_off(int status) __attribute__((noreturn));
static void power_off(int status)
{
	sync();
	if (ioperm(TVM_PORT_HCALL, 4, 1) == 0 && ioperm(TVM_PORT_POWEROFF, 1, 1) == 0 &&
	    inl(TVM_PORT_HCALL) == TVM_SIGNATURE)
		outb((unsigned char)status, TVM_PORT_POWEROFF);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	char buf[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	say("trialvm-init: %s", buf);
	power_off(BROKEN);
}

static void mount_or_die(const char *src, const char *dst, const char *type, unsigned long fl, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, fl, data) < 0 && errno != EBUSY)
		die("cannot mount %s on %s: %s", type ? type : src, dst, strerror(errno));
}

static void load_modules(void)
{
	FILE *f = fopen("/trialvm/modules.list", "re");
	if (!f)
		return; /* a kernel with everything built in */
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!line[0])
			continue;
		int fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("module %s: %s", line, strerror(errno));
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
			die("cannot load module %s: %s", line, strerror(errno));
		close(fd);
	}
	fclose(f);
}

static void wait_for(const char *path, int seconds)
{
	struct stat st;
	for (int i = 0; i < seconds * 100; i++) {
		if (stat(path, &st) == 0)
			return;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	die("%s did not appear within %d s (is the image's disk attached?)", path, seconds);
}

/* argv from /trialvm/argv (before the root changes). */
static char **read_argv(void)
{
	static char buf[ARGV_MAX + 1];
	static char *args[MAX_ARGS + 1];
	int fd = open("/trialvm/argv", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("/trialvm/argv: %s (not an image trialvm built?)", strerror(errno));
	ssize_t n = read(fd, buf, ARGV_MAX);
	close(fd);
	if (n <= 0 || buf[n - 1] != 0)
		die("/trialvm/argv is empty or not NUL-terminated");
	int k = 0;
	for (ssize_t i = 0; i < n && k < MAX_ARGS; i += (ssize_t)strlen(buf + i) + 1)
		args[k++] = buf + i;
	args[k] = NULL;
	return args;
}

#define CORE_MAX (256u << 20) /* devices/core_channel.c's CORE_CHANNEL_MAX */

static int write_full(int fd, const void *p, size_t n)
{
	for (const char *c = p; n;) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w, n -= (size_t)w;
	}
	return 0;
}

/* The core_pattern helper: the core on stdin to the core channel. */
static int send_core(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	/* Page-aligned (mmap, mremap), so that the core's page-aligned
	 * segments lie in this copy page for page as in the process: a report
	 * bundle then stores them once (trialvm reads this memory too). */
	size_t cap = 1u << 20, len = 0;
	char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (;;) {
		if (buf == MAP_FAILED)
			return 1;
		if (len == cap) {
			if (cap >= CORE_MAX) {
				say("trialvm-init: the core of %s is larger than %u MiB; not sent", argv[4], CORE_MAX >> 20);
				return 1;
			}
			buf = mremap(buf, cap, cap * 2, MREMAP_MAYMOVE);
			cap *= 2;
			continue;
		}
		ssize_t n = read(0, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 1;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	int fd = open("/dev/hvc1", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		say("trialvm-init: no core channel (/dev/hvc1: %s); the core of %s is lost", strerror(errno), argv[4]);
		return 1;
	}
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	uint8_t h[40] = "TVMCORE1";
	uint32_t pid = (uint32_t)strtoul(argv[2], NULL, 10), sig = (uint32_t)strtoul(argv[3], NULL, 10);
	uint64_t l = len;
	memcpy(h + 8, &sig, 4);
	memcpy(h + 12, &pid, 4);
	memcpy(h + 16, &l, 8);
	strncpy((char *)h + 24, argv[4], 15);
	int r = write_full(fd, h, sizeof h) == 0 && write_full(fd, buf, len) == 0 ? 0 : 1;
	tcdrain(fd);
	close(fd);
	return r;
}

/* /run as a tmpfs holding a copy of this program, the core_pattern helper. */
static void install_core_helper(void)
{
	mkdir("/run", 0755);
	if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 || mkdir("/run/trialvm", 0755) < 0) {
		say("trialvm-init: no tmpfs for the core helper (%s): crashed processes leave no core", strerror(errno));
		return;
	}
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int out = open("/run/trialvm/init", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	char b[65536];
	ssize_t n;
	bool ok = in >= 0 && out >= 0;
	while (ok && (n = read(in, b, sizeof b)) > 0)
		ok = write_full(out, b, (size_t)n) == 0;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	int fd = ok ? open("/proc/sys/kernel/core_pattern", O_WRONLY | O_CLOEXEC) : -1;
	static const char pat[] = "|/run/trialvm/init core %P %s %e";
	ok = fd >= 0 && write_full(fd, pat, sizeof pat - 1) == 0;
	if (fd >= 0)
		close(fd);
	/* the dying process's exit waits for the helper: the core is sent
	 * before the program's status can end the run */
	fd = open("/proc/sys/kernel/core_pipe_limit", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ok = ok && write_full(fd, "1", 1) == 0;
		close(fd);
	}
	if (!ok)
		say("trialvm-init: cannot install the core helper: crashed processes leave no core");
}

int main(int argc, char **argv_in)
{
	if (getpid() != 1 && argc > 1 && !strcmp(argv_in[1], "core"))
		return send_core(argc, argv_in);
	if (getpid() != 1)
		die("this is trialvm's /init for Linux images; it runs as PID 1 only");
	mount_or_die("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_or_die("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_or_die("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	char **argv = read_argv();
	/* `trialvm run --image DIR -- ARGS`: the words after the marker (the
	 * kernel gave them to init) replace the image's arguments. */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv_in[i], TVM_INIT_ARGS_MARKER)) {
			static char *run_args[MAX_ARGS + 1];
			int k = 0;
			run_args[k++] = argv[0];
			for (int j = i + 1; j < argc && k < MAX_ARGS; j++)
				run_args[k++] = argv_in[j];
			run_args[k] = NULL;
			argv = run_args;
			break;
		}
	load_modules();
	wait_for("/dev/vda", 30);
	mount_or_die("/dev/vda", "/newroot", "ext4", 0, NULL);
	const char *const moves[] = { "/dev", "/proc", "/sys" };
	for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
		char dst[64];
		snprintf(dst, sizeof dst, "/newroot%s", moves[i]);
		mkdir(dst, 0755);
		if (mount(moves[i], dst, NULL, MS_MOVE, NULL) < 0)
			die("cannot move %s into the root file system: %s", moves[i], strerror(errno));
	}
	if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		die("cannot switch to the root file system: %s", strerror(errno));
	mkdir("/tmp", 01777);
	mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	install_core_helper();

	const char *tty = access("/dev/hvc0", F_OK) == 0 ? "/dev/hvc0" : "/dev/console";
	pid_t app = fork();
	if (app < 0)
		die("fork: %s", strerror(errno));
	if (app == 0) {
		setsid();
		int fd = open(tty, O_RDWR);
		if (fd < 0)
			die("%s: %s", tty, strerror(errno));
		ioctl(fd, TIOCSCTTY, 0);
		dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
		if (fd > 2)
			close(fd);
		char *envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
				 "TERM=linux", NULL };
		setrlimit(RLIMIT_CORE, &(struct rlimit){ RLIM_INFINITY, RLIM_INFINITY });
		execve(argv[0], argv, envp);
		die("cannot run %s: %s", argv[0], strerror(errno));
	}
	for (;;) {
		int st;
		pid_t p = wait(&st);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			die("wait: %s", strerror(errno));
		if (p != app)
			continue; /* an orphan */
		if (WIFEXITED(st))
			power_off(WEXITSTATUS(st));
		say("trialvm-init: %s was killed by signal %d", argv[0], WTERMSIG(st));
		power_off(128 + WTERMSIG(st));
	}
}
