#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int tvm_verbose;

void deadline_after_ms(unsigned ms, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int start_thread_nosignals(pthread_t *t, void *(*fn)(void *), void *arg, bool detach)
{
	pthread_t local;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(t ? t : &local, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0 && detach)
		pthread_detach(t ? *t : local);
	return r;
}

static const char *const sig_names[32] = {
	[1] = "SIGHUP", [2] = "SIGINT", [3] = "SIGQUIT", [4] = "SIGILL", [5] = "SIGTRAP",
	[6] = "SIGABRT", [7] = "SIGBUS", [8] = "SIGFPE", [9] = "SIGKILL", [10] = "SIGUSR1",
	[11] = "SIGSEGV", [12] = "SIGUSR2", [13] = "SIGPIPE", [14] = "SIGALRM", [15] = "SIGTERM",
	[16] = "SIGSTKFLT", [17] = "SIGCHLD", [18] = "SIGCONT", [19] = "SIGSTOP", [20] = "SIGTSTP",
	[21] = "SIGTTIN", [22] = "SIGTTOU", [23] = "SIGURG", [24] = "SIGXCPU", [25] = "SIGXFSZ",
	[26] = "SIGVTALRM", [27] = "SIGPROF", [28] = "SIGWINCH", [29] = "SIGIO", [30] = "SIGPWR",
	[31] = "SIGSYS",
};

const char *signal_name(unsigned signo) { return signo < 32 ? sig_names[signo] : NULL; }

int tvm_seterr(struct tvm_err *e, const char *fmt, ...)
{
	if (e) {
		/* Through a copy: callers may pass e->msg itself as an argument
		 * to add context to an error a callee set. */
		char buf[sizeof(e->msg)];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		memcpy(e->msg, buf, sizeof(buf));
	}
	return -1;
}

static void vlog(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	/* One write() per message so lines from several threads do not mix. */
	char line[1100];
	int m = snprintf(line, sizeof(line), "trialvm: %.*s%s", n, buf,
			 (n > 0 && buf[n - 1] == '\n') ? "" : "\n");
	if (m > 0)
		(void)!write(2, line, (size_t)m < sizeof(line) ? (size_t)m : sizeof(line) - 1);
}

void tvm_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void tvm_debug(const char *fmt, ...)
{
	if (!tvm_verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool ratelimit_ok(struct ratelimit *rl)
{
	while (__atomic_exchange_n(&rl->lock, 1, __ATOMIC_ACQUIRE))
		;
	uint64_t now = now_ns() / 1000000;
	bool ok;
	if (now - rl->window_start_ms >= rl->interval_ms) {
		if (rl->suppressed)
			tvm_log("(%lu similar messages suppressed)", rl->suppressed);
		rl->window_start_ms = now;
		rl->in_window = 0;
		rl->suppressed = 0;
	}
	ok = rl->in_window < rl->burst;
	if (ok)
		rl->in_window++;
	else
		rl->suppressed++;
	__atomic_store_n(&rl->lock, 0, __ATOMIC_RELEASE);
	return ok;
}

void tvm_log_limited(struct ratelimit *rl, const char *fmt, ...)
{
	if (!ratelimit_ok(rl))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

int parse_size(const char *s, uint64_t *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	uint64_t mult = 1;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mult = 1ull << 10; break;
		case 'm': case 'M': mult = 1ull << 20; break;
		case 'g': case 'G': mult = 1ull << 30; break;
		case 't': case 'T': mult = 1ull << 40; break;
		default: return -1;
		}
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -1;
	}
	uint64_t r;
	if (mul_overflows(v, mult, &r))
		return -1;
	*out = r;
	return 0;
}

int open_input(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int open_regular(const char *path, struct stat *st, struct tvm_err *err)
{
	int fd = open_input(path, st);
	if (fd < 0)
		return tvm_seterr(err, "cannot open %s: %s", path, strerror(errno));
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return tvm_seterr(err, "%s is not a regular file", path);
	}
	return fd;
}

int read_file(const char *path, uint64_t max, uint8_t **data, size_t *len, struct tvm_err *err)
{
	struct stat st;
	int fd = open_regular(path, &st, err);
	if (fd < 0)
		return -1;
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return tvm_seterr(err, "%s is too large (%llu bytes; the limit is %llu)", path,
				  (unsigned long long)st.st_size, (unsigned long long)max);
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return tvm_seterr(err, "out of memory reading %s", path);
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : 0;
			free(buf);
			close(fd);
			return tvm_seterr(err, "cannot read %s: %s", path, e ? strerror(e) : "file shrank while reading");
		}
		got += (size_t)r;
	}
	close(fd);
	*data = buf;
	*len = n;
	return 0;
}

void hex_bytes(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

char *find_installed(const char *env, const char *const rel[], size_t n)
{
	const char *e = env ? getenv(env) : NULL;
	if (e && *e)
		return strdup(e);
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return NULL;
	exe[len] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%s", exe, rel[i]);
		if (access(path, R_OK) == 0)
			return strdup(path);
	}
	return NULL;
}

char *find_trialos(void)
{
	static const char *const rel[] = { "guests/trialos.elf", "../lib/trialvm/trialos.elf" };
	return find_installed("TRIALVM_TRIALOS", rel, sizeof(rel) / sizeof(rel[0]));
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "trialvm: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'trialvm %s --help'.\n", cmd);
	return TVM_EXIT_USAGE;
}

int user_dir(const char *override_env, const char *xdg_env, const char *home_rel, const char *sub, char *out,
	     size_t cap, struct tvm_err *err)
{
	const char *o = override_env ? getenv(override_env) : NULL, *x = getenv(xdg_env), *h = getenv("HOME");
	int n = o && *o	  ? snprintf(out, cap, "%s/%s", o, sub)
		: x && *x ? snprintf(out, cap, "%s/trialvm/%s", x, sub)
		: h && *h ? snprintf(out, cap, "%s/%s/trialvm/%s", h, home_rel, sub)
			  : -1;
	if (n < 0)
		return tvm_seterr(err, "no directory for %s: set HOME or %s%s%s", sub, xdg_env, override_env ? " or " : "",
				  override_env ? override_env : "");
	if ((size_t)n >= cap)
		return tvm_seterr(err, "the path of %s is too long", sub);
	return 0;
}
