/* vmm/iothread.c - the I/O thread (iothread.h). */
#include "iothread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sandbox.h"
#include "util.h"

static struct {
	pthread_mutex_t lock;   /* the request slot below */
	pthread_cond_t cond;
	pthread_mutex_t callers; /* one call at a time */
	bool started;
	pthread_t thread;
	int (*fn)(void *);
	void *arg;
	int result;
	bool pending, done;
} io = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
	 .callers = PTHREAD_MUTEX_INITIALIZER };

static __thread bool on_io_thread;

bool iothread_is_current(void) { return on_io_thread; }

static void *io_main(void *unused)
{
	(void)unused;
	on_io_thread = true;
	struct tvm_err err;
	bool sandboxed = sandbox_enter(SANDBOX_IO, &err) == 0;
	if (!sandboxed)
		tvm_log("error: %s; disk flushes will fail", err.msg);
	pthread_mutex_lock(&io.lock);
	for (;;) {
		while (!io.pending)
			pthread_cond_wait(&io.cond, &io.lock);
		io.pending = false;
		int (*fn)(void *) = io.fn;
		void *arg = io.arg;
		pthread_mutex_unlock(&io.lock);
		int r = sandboxed ? fn(arg) : -EPERM;
		pthread_mutex_lock(&io.lock);
		io.result = r;
		io.done = true;
		pthread_cond_broadcast(&io.cond);
	}
	return NULL;
}

int iothread_start(struct tvm_err *err)
{
	if (io.started)
		return 0;
	int r = start_thread_nosignals(&io.thread, io_main, NULL, true);
	if (r != 0)
		return tvm_seterr(err, "cannot start the I/O thread: %s", strerror(r));
	io.started = true;
	return 0;
}

int iothread_call(int (*fn)(void *), void *arg)
{
	if (!io.started || on_io_thread)
		return fn(arg);
	pthread_mutex_lock(&io.callers);
	pthread_mutex_lock(&io.lock);
	io.fn = fn;
	io.arg = arg;
	io.done = false;
	io.pending = true;
	pthread_cond_broadcast(&io.cond);
	while (!io.done)
		pthread_cond_wait(&io.cond, &io.lock);
	int r = io.result;
	pthread_mutex_unlock(&io.lock);
	pthread_mutex_unlock(&io.callers);
	return r;
}
