/* vmm/evloop.c - epoll with a callback per descriptor (evloop.h). */
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util.h"

struct watch {
	int fd;          /* -1: free */
	uint32_t gen;    /* bumped at each reuse: stale readiness is ignored */
	evloop_fn fn;
	void *arg;
};

struct evloop {
	int epfd;
	struct watch w[EVLOOP_MAX_WATCHES];
};

struct evloop *evloop_new(struct tvm_err *err)
{
	struct evloop *l = calloc(1, sizeof(*l));
	if (!l) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		tvm_seterr(err, "cannot create the event loop (epoll_create1): %s", strerror(errno));
		free(l);
		return NULL;
	}
	for (int i = 0; i < EVLOOP_MAX_WATCHES; i++)
		l->w[i].fd = -1;
	return l;
}

void evloop_free(struct evloop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l);
}

static struct watch *find(struct evloop *l, int fd)
{
	for (int i = 0; i < EVLOOP_MAX_WATCHES; i++)
		if (l->w[i].fd == fd)
			return &l->w[i];
	return NULL;
}

int evloop_add(struct evloop *l, int fd, evloop_fn fn, void *arg, struct tvm_err *err)
{
	if (fd < 0 || find(l, fd))
		return tvm_seterr(err, "internal error: descriptor %d cannot be watched twice", fd);
	struct watch *w = find(l, -1);
	if (!w)
		return tvm_seterr(err, "the event loop watches %d descriptors already", EVLOOP_MAX_WATCHES);
	w->gen++;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)w->gen << 32 | (uint64_t)(w - l->w) };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return tvm_seterr(err, "cannot watch descriptor %d (epoll_ctl): %s", fd, strerror(errno));
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	return 0;
}

void evloop_del(struct evloop *l, int fd)
{
	struct watch *w = fd >= 0 ? find(l, fd) : NULL;
	if (!w)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->fd = -1;
	w->gen++;
}

int evloop_wait(struct evloop *l, int timeout_ms)
{
	struct epoll_event ev[EVLOOP_MAX_WATCHES];
	int n = epoll_wait(l->epfd, ev, EVLOOP_MAX_WATCHES, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	int called = 0;
	for (int i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)ev[i].data.u64, gen = (uint32_t)(ev[i].data.u64 >> 32);
		if (slot >= EVLOOP_MAX_WATCHES)
			continue;
		struct watch *w = &l->w[slot];
		if (w->fd < 0 || w->gen != gen) /* removed (or replaced) by an earlier callback */
			continue;
		w->fn(w->arg, w->fd, ev[i].events);
		called++;
	}
	return called;
}
