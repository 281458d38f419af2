/* devices/console.c - guest console output: stdout, log file, crash tail. */
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../vmm/util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t tail[CONSOLE_TAIL];
static size_t tail_pos;   /* next write index */
static bool tail_full;
static bool quiet, out_tty, started;
static int log_fd = -1;
static int log_errno;
static uint8_t outbuf[4096];
static size_t outlen;

static void write_all(int fd, const uint8_t *p, size_t n, int *err)
{
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (err && !*err)
				*err = r < 0 ? errno : EIO;
			return;
		}
		p += r;
		n -= (size_t)r;
	}
}

int console_open(const char *log_path, bool q, struct tvm_err *err)
{
	quiet = q;
	out_tty = isatty(1);
	if (log_path) {
		log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (log_fd < 0)
			return tvm_seterr(err, "--console-log %s: %s", log_path, strerror(errno));
	}
	return 0;
}

static void flush_locked(void)
{
	if (outlen && !quiet) {
		int e = 0;
		write_all(1, outbuf, outlen, &e);
	}
	outlen = 0;
}

void console_put(const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&lock);
	started = started || len > 0;
	for (size_t i = 0; i < len; i++) {
		tail[tail_pos++] = buf[i];
		if (tail_pos == CONSOLE_TAIL) {
			tail_pos = 0;
			tail_full = true;
		}
	}
	if (log_fd >= 0)
		write_all(log_fd, buf, len, &log_errno);
	if (!quiet) {
		/* A terminal sees every byte at once; a pipe or file gets lines. */
		for (size_t i = 0; i < len; i++) {
			outbuf[outlen++] = buf[i];
			if (outlen == sizeof(outbuf) || buf[i] == '\n' || out_tty)
				flush_locked();
		}
	}
	pthread_mutex_unlock(&lock);
}

void console_flush(void)
{
	pthread_mutex_lock(&lock);
	flush_locked();
	pthread_mutex_unlock(&lock);
}

bool console_started(void)
{
	pthread_mutex_lock(&lock);
	bool s = started;
	pthread_mutex_unlock(&lock);
	return s;
}

size_t console_tail(uint8_t *buf, size_t max)
{
	pthread_mutex_lock(&lock);
	size_t n = tail_full ? CONSOLE_TAIL : tail_pos;
	if (n > max)
		n = max;
	/* The newest n bytes, oldest first. */
	size_t start = (tail_pos + CONSOLE_TAIL - n) % CONSOLE_TAIL;
	for (size_t i = 0; i < n; i++)
		buf[i] = tail[(start + i) % CONSOLE_TAIL];
	pthread_mutex_unlock(&lock);
	return n;
}

int console_close(struct tvm_err *err)
{
	pthread_mutex_lock(&lock);
	flush_locked();
	int e = log_errno;
	if (log_fd >= 0) {
		if (fsync(log_fd) < 0 && !e && errno != EINVAL)
			e = errno;
		if (close(log_fd) < 0 && !e)
			e = errno;
		log_fd = -1;
	}
	pthread_mutex_unlock(&lock);
	if (e)
		return tvm_seterr(err, "the console log could not be written completely: %s", strerror(e));
	return 0;
}
