/* devices/console.c - guest console output: stdout, log file, crash tail. */
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/sandbox.h"
#include "../vmm/util.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The last CONSOLE_TAIL bytes: of everything, and of each device. */
struct tail_ring {
	uint8_t b[CONSOLE_TAIL];
	size_t pos; /* next write index */
	bool full;
};
static struct tail_ring all_tail, source_tail[CONSOLE_NSOURCES];
static bool quiet, started;
static int log_fd = -1;
static int log_errno;

/* stdout goes through a ring drained by the console writer thread. A slow
 * reader gets everything (the guest waits for room while the writer makes
 * progress); a reader that stopped reading (a full pipe nobody drains, a
 * suspended terminal) never blocks a vCPU for more than STALL_MS, nor stops
 * trialvm from ending: once the writer made no progress for STALL_MS, what
 * does not fit is dropped and counted until it moves again, and the count
 * is said at the end. */
#define RING (1u << 20)
#define STALL_MS 1000u
#define WRITE_MAX 4096u /* per write(2), so that progress on a pipe is seen */
static uint8_t ring[RING];
static uint64_t ring_head, ring_tail; /* bytes queued, bytes written (under lock) */
static uint64_t dropped;
static int out_errno;
static bool writer_running, stalled;
static pthread_cond_t have_data = PTHREAD_COND_INITIALIZER, progress = PTHREAD_COND_INITIALIZER;

/* Write all of p[0..n) to fd; the first error is kept in *err. */
static void write_keep_err(int fd, const uint8_t *p, size_t n, int *err)
{
	int rc = write_all(fd, p, n);
	if (rc < 0 && err && !*err)
		*err = -rc;
}

static void *writer_main(void *unused)
{
	(void)unused;
	struct tvm_err err;
	if (sandbox_enter(SANDBOX_CONSOLE, &err) < 0)
		tvm_log("error: %s", err.msg); /* then it runs without: nothing else depends on it */
	pthread_mutex_lock(&lock);
	for (;;) {
		while (ring_tail == ring_head)
			pthread_cond_wait(&have_data, &lock);
		/* One contiguous piece of the ring, written without the lock. */
		size_t at = (size_t)(ring_tail % RING);
		size_t n = (size_t)(ring_head - ring_tail);
		if (n > RING - at)
			n = RING - at;
		if (n > WRITE_MAX)
			n = WRITE_MAX;
		pthread_mutex_unlock(&lock);
		ssize_t r = out_errno ? (ssize_t)n : write(1, ring + at, n);
		pthread_mutex_lock(&lock);
		if (r < 0 && errno != EINTR && errno != EAGAIN) {
			out_errno = errno; /* EPIPE, EIO: stdout is gone; drop from now on */
			r = (ssize_t)n;
		} else if (r <= 0) { /* a non-blocking stdout that is full: wait, do not spin */
			pthread_mutex_unlock(&lock);
			usleep(1000);
			pthread_mutex_lock(&lock);
		}
		if (r > 0) {
			ring_tail += (uint64_t)r;
			stalled = false;
		}
		pthread_cond_broadcast(&progress);
	}
	return NULL;
}

int console_open(const char *log_path, bool q, struct tvm_err *err)
{
	quiet = q;
	if (log_path) {
		log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (log_fd < 0)
			return tvm_seterr(err, "--console-log %s: %s", log_path, strerror(errno));
	}
	if (!quiet && !writer_running) {
		int r = start_thread_nosignals(NULL, writer_main, NULL, true);
		if (r != 0)
			return tvm_seterr(err, "cannot start the console writer thread: %s", strerror(r));
		writer_running = true;
	}
	return 0;
}

/* Wait (lock held) until the writer makes progress; false when it made
 * none for STALL_MS (the reader stalled). */
static bool wait_progress_locked(void)
{
	uint64_t before = ring_tail;
	struct timespec ts;
	deadline_after_ms(STALL_MS, &ts);
	int r = 0;
	while (ring_tail == before && r == 0)
		r = pthread_cond_timedwait(&progress, &lock, &ts);
	return ring_tail != before;
}

/* Queue guest output for stdout (lock held). */
static void queue_locked(const uint8_t *buf, size_t len)
{
	if (!writer_running) { /* no console_open (unit tests): write directly */
		int e = 0;
		write_keep_err(1, buf, len, &e);
		return;
	}
	while (len) {
		size_t room = (size_t)(RING - (ring_head - ring_tail));
		if (room == 0) {
			if (stalled || !wait_progress_locked()) {
				stalled = true;
				dropped += len;
				return;
			}
			continue;
		}
		size_t n = len < room ? len : room;
		for (size_t i = 0; i < n; i++)
			ring[(ring_head + i) % RING] = buf[i];
		ring_head += n;
		buf += n;
		len -= n;
		pthread_cond_signal(&have_data);
	}
}

/* console_watch: the needle and its KMP failure table, the match so far. */
static struct {
	uint8_t needle[CONSOLE_WATCH_MAX];
	unsigned fail[CONSOLE_WATCH_MAX];
	unsigned len, matched;
	bool armed, skip_cr; /* the needle holds no '\r': the output's are skipped */
	void (*fn)(void *);
	void *arg;
} watch;

int console_watch(const char *needle, void (*fn)(void *), void *arg)
{
	size_t n = strlen(needle);
	if (n == 0 || n > CONSOLE_WATCH_MAX)
		return -1;
	pthread_mutex_lock(&lock);
	memcpy(watch.needle, needle, n);
	watch.len = (unsigned)n;
	watch.fail[0] = 0;
	for (unsigned i = 1, k = 0; i < n; i++) {
		while (k && watch.needle[i] != watch.needle[k])
			k = watch.fail[k - 1];
		if (watch.needle[i] == watch.needle[k])
			k++;
		watch.fail[i] = k;
	}
	watch.matched = 0;
	watch.skip_cr = !memchr(needle, '\r', n);
	watch.fn = fn;
	watch.arg = arg;
	watch.armed = true;
	pthread_mutex_unlock(&lock);
	return 0;
}

void console_unwatch(void)
{
	pthread_mutex_lock(&lock);
	watch.armed = false;
	pthread_mutex_unlock(&lock);
}

/* Lock held: true when buf completes the needle (the watch is disarmed). */
static bool watch_feed_locked(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; watch.armed && i < len; i++) {
		if (buf[i] == '\r' && watch.skip_cr) /* a terminal's "\r\n" for the guest's "\n" */
			continue;
		while (watch.matched && buf[i] != watch.needle[watch.matched])
			watch.matched = watch.fail[watch.matched - 1];
		if (buf[i] == watch.needle[watch.matched])
			watch.matched++;
		if (watch.matched == watch.len) {
			watch.armed = false;
			return true;
		}
	}
	return false;
}

static void ring_put(struct tail_ring *r, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		r->b[r->pos++] = buf[i];
		if (r->pos == CONSOLE_TAIL) {
			r->pos = 0;
			r->full = true;
		}
	}
}

/* The newest bytes of r, at most max, oldest first (lock held). */
static size_t ring_copy(const struct tail_ring *r, uint8_t *buf, size_t max)
{
	size_t n = r->full ? CONSOLE_TAIL : r->pos;
	if (n > max)
		n = max;
	size_t start = (r->pos + CONSOLE_TAIL - n) % CONSOLE_TAIL;
	for (size_t i = 0; i < n; i++)
		buf[i] = r->b[(start + i) % CONSOLE_TAIL];
	return n;
}

void console_put(enum console_source src, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&lock);
	bool fire = watch.armed && watch_feed_locked(buf, len);
	void (*fn)(void *) = watch.fn;
	void *arg = watch.arg;
	started = started || len > 0;
	ring_put(&all_tail, buf, len);
	if ((unsigned)src < CONSOLE_NSOURCES)
		ring_put(&source_tail[src], buf, len);
	if (log_fd >= 0)
		write_keep_err(log_fd, buf, len, &log_errno);
	if (!quiet)
		queue_locked(buf, len);
	pthread_mutex_unlock(&lock);
	if (fire)
		fn(arg);
}

/* Wait (lock held) until the ring is written out, or until the writer made
 * no progress for STALL_MS. */
static void drain_locked(void)
{
	while (writer_running && !out_errno && ring_tail != ring_head)
		if (!wait_progress_locked())
			return;
}

void console_flush(void)
{
	pthread_mutex_lock(&lock);
	drain_locked();
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
	size_t n = ring_copy(&all_tail, buf, max);
	pthread_mutex_unlock(&lock);
	return n;
}

size_t console_source_tail(enum console_source src, uint8_t *buf, size_t max)
{
	if ((unsigned)src >= CONSOLE_NSOURCES)
		return 0;
	pthread_mutex_lock(&lock);
	size_t n = ring_copy(&source_tail[src], buf, max);
	pthread_mutex_unlock(&lock);
	return n;
}

int console_close(struct tvm_err *err)
{
	pthread_mutex_lock(&lock);
	drain_locked();
	/* What the reader never took: counted, not waited for. */
	uint64_t lost = dropped + (ring_head - ring_tail);
	if (lost)
		tvm_log("warning: %llu bytes of guest console output did not reach stdout: %s (--console-log "
			"FILE keeps all of it)", (unsigned long long)lost,
			out_errno ? strerror(out_errno) : "nothing was reading it");
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
