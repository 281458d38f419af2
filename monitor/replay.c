/* monitor/replay.c - replay of event log segments (replay.h). Each vCPU
 * reads the log through its own cursor, and its hooks run on its own
 * thread, in its exit order: with one vCPU that is the recorded order
 * exactly; with more, each vCPU's exits are checked in their own order and
 * the order between vCPUs is not reproduced (best-effort). At a segment's
 * end at a snapshot the cursor goes on into the next segment of the same
 * directory (start-N.tvl is followed by snap-N.tvl, snap-N.tvl by
 * snap-N+1.tvl), whose exit numbers start again at 1. The segments are
 * opened before the run (the vCPU threads' sandbox opens no files); the
 * cursors read them through the shared descriptors (pread). */
#include "replay.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../vmm/cpu_state.h"
#include "../vmm/evlog.h"
#include "../vmm/fileio.h"
#include "../vmm/util.h"

/* What one exit's data records may hold in all (a notify serves every
 * request the guest queued: virtio-rng 64 KiB each, in 4 KiB records). */
#define QUEUE_BYTES_MAX (64u << 20)
#define REPLAY_MAX_VCPUS 64
#define REPLAY_MAX_SEGMENTS 256

/* One vCPU's place in the log; only its own thread touches it. */
struct cursor {
	struct evlog_reader r;
	bool open;
	int seg;              /* the segment it reads (replay.segs) */
	const char *path;     /* its name */
	uint64_t base;        /* the vCPU's exits before that segment */
	/* The exit being handled (its number in the segment), its bytes. */
	uint64_t seq;
	uint32_t exit_len;
	uint8_t *exit_data;   /* EVLOG_MAX_BODY */
	/* The data records before it, in order, and how much of each the
	 * devices took so far. */
	struct qent { uint16_t src; uint32_t len, used; uint8_t *bytes; } *q;
	int nq, iq, capq;
	uint64_t qbytes;
	uint64_t exits;       /* matched, in all segments */
	unsigned segments;    /* segments it went on into */
	bool done;            /* its records ended; it waits for the others */
};

struct replay {
	struct vm *vm;
	int ncpus;
	bool exact;           /* one vCPU */
	const char *first;    /* the first segment */
	/* The segments the replay may go through, in order, opened. */
	struct seg { char *path; int fd; uint64_t size; } segs[REPLAY_MAX_SEGMENTS];
	int nsegs;
	struct tvm_err chain_end; /* why no segment follows the last one */
	struct cursor *cur;   /* one per vCPU */
	pthread_mutex_t lock; /* ndone */
	int ndone;
	uint64_t inputs, input_bytes; /* atomic */
	uint64_t until;       /* --until exit N (of vCPU 0), or 0 */
	bool until_snapshot;  /* --until snapshot: the first segment only */
	bool stopped;         /* atomic: diverged, or at the log's end */
	bool diverged;
	char report[1024];
};

static void clear_queue(struct cursor *k)
{
	for (int i = 0; i < k->nq; i++)
		free(k->q[i].bytes);
	k->nq = k->iq = 0;
	k->qbytes = 0;
}

static uint64_t total_exits(const struct replay *rp)
{
	uint64_t n = 0;
	for (int i = 0; i < rp->ncpus; i++)
		n += __atomic_load_n(&rp->cur[i].exits, __ATOMIC_RELAXED);
	return n;
}

/* "port 0x3f8 write, 1 byte: 41" */
static void describe(char *buf, size_t cap, unsigned bus, bool write, unsigned size, uint32_t count, uint64_t addr,
		     const uint8_t *data, size_t len)
{
	int n = snprintf(buf, cap, "%s 0x%llx %s, %u byte%s%s", bus == 1 ? "port" : "MMIO", (unsigned long long)addr,
			 write ? "write" : "read", size, size == 1 ? "" : "s", count > 1 ? " x " : "");
	if (count > 1 && n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, "%u", count);
	if (write && data && n > 0 && (size_t)n < cap) {
		n += snprintf(buf + n, cap - (size_t)n, ":");
		for (size_t i = 0; i < len && i < 16 && n > 0 && (size_t)n < cap; i++)
			n += snprintf(buf + n, cap - (size_t)n, " %02x", data[i]);
		if (len > 16 && n > 0 && (size_t)n < cap)
			snprintf(buf + n, cap - (size_t)n, " ...");
	}
}

static void describe_rec(char *buf, size_t cap, const struct evlog_rec *rec)
{
	char what[160];
	switch (rec->type) {
	case EVLOG_EXIT:
		describe(what, sizeof(what), rec->bus, rec->dir, rec->size, rec->count, rec->addr, rec->data, rec->len);
		snprintf(buf, cap, "exit %llu of vCPU %u, %s", (unsigned long long)rec->seq, rec->vcpu, what);
		break;
	case EVLOG_DATA:
		snprintf(buf, cap, "%u bytes of %s during exit %llu of vCPU %u", rec->len, evlog_src_name(rec->src),
			 (unsigned long long)rec->seq, rec->vcpu);
		break;
	default:
		snprintf(buf, cap, "its end (%s)",
			 rec->why == EVLOG_END_CRASH ? "the recorded run crashed there"
			 : rec->why == EVLOG_END_RUN ? "the recorded run ended there"
						     : "the next snapshot's segment follows");
	}
}

/* Stop the run: kind TVM_EV_DIVERGED with the report, or the end. The
 * first caller wins. */
static void vstop(struct replay *rp, int vcpu, enum tvm_event_kind kind, const char *fmt, va_list ap)
{
	if (__atomic_exchange_n(&rp->stopped, true, __ATOMIC_ACQ_REL))
		return;
	rp->diverged = kind == TVM_EV_DIVERGED;
	vsnprintf(rp->report, sizeof(rp->report), fmt, ap);
	struct tvm_event ev = { .kind = kind };
	snprintf(ev.detail, sizeof(ev.detail), "%.*s", (int)sizeof(ev.detail) - 1,
		 kind == TVM_EV_DIVERGED ? "replay: the guest diverged from the event log (the report follows)" : rp->report);
	vm_raise(rp->vm, vcpu, &ev);
}

static void stop(struct replay *rp, int vcpu, enum tvm_event_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stop(struct replay *rp, int vcpu, enum tvm_event_kind kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vstop(rp, vcpu, kind, fmt, ap);
	va_end(ap);
}

static bool stopped(struct replay *rp) { return __atomic_load_n(&rp->stopped, __ATOMIC_ACQUIRE); }

static void diverge_at(struct replay *rp, int vcpu, const struct evlog_rec *rec, const char *guest, uint64_t rip)
{
	char logside[300];
	describe_rec(logside, sizeof(logside), rec);
	char ripbuf[40] = "unknown";
	if (rip)
		snprintf(ripbuf, sizeof(ripbuf), "0x%llx", (unsigned long long)rip);
	stop(rp, vcpu, TVM_EV_DIVERGED,
	     "replay diverged at record %llu (offset %llu) of %s, after %llu exits matched: the log has %s; the guest "
	     "made %s; the guest's RIP %s",
	     (unsigned long long)rec->index, (unsigned long long)rec->offset, rp->cur[vcpu].path,
	     (unsigned long long)total_exits(rp), logside, guest, ripbuf);
}

/* What the devices left of the last exit's data: all of it must be taken. */
static bool queue_taken(struct replay *rp, int vcpu)
{
	struct cursor *k = &rp->cur[vcpu];
	for (int i = 0; i < k->nq; i++)
		if (k->q[i].used < k->q[i].len) {
			stop(rp, vcpu, TVM_EV_DIVERGED,
			     "replay diverged after %llu exits matched (%s): the log has %u bytes of %s during exit %llu "
			     "of vCPU %d that the guest's devices did not take",
			     (unsigned long long)total_exits(rp), k->path, k->q[i].len - k->q[i].used,
			     evlog_src_name(k->q[i].src), (unsigned long long)k->seq, vcpu);
			return false;
		}
	return true;
}

/* The segment after k's: start-N.tvl -> snap-N.tvl, snap-N.tvl ->
 * snap-N+1.tvl in the same directory. 0, or -1 when the name is not one
 * trialvm writes (nothing follows it then). */
static int next_segment_path(const char *path, char *out, size_t cap)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	int dirlen = (int)(base - path);
	unsigned n;
	char again[64];
	bool start = sscanf(base, "start-%u", &n) == 1;
	if (!start && sscanf(base, "snap-%u", &n) != 1)
		return -1;
	snprintf(again, sizeof(again), start ? "start-%06u.tvl" : "snap-%06u.tvl", n);
	if (strcmp(again, base) || (!start && n == UINT32_MAX))
		return -1;
	int w = snprintf(out, cap, "%.*ssnap-%06u.tvl", dirlen, path, start ? n : n + 1);
	return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* At k's END record of a snapshot: go on into the next segment (true),
 * or say why not (false). */
static bool next_segment(struct replay *rp, int vcpu, uint64_t seq, struct tvm_err *why)
{
	struct cursor *k = &rp->cur[vcpu];
	if (rp->until_snapshot) {
		tvm_seterr(why, "--until snapshot");
		return false;
	}
	if (k->seg + 1 >= rp->nsegs) {
		*why = rp->chain_end;
		return false;
	}
	const struct seg *n = &rp->segs[k->seg + 1];
	struct evlog_reader nr;
	if (evlog_open_fd(n->fd, n->size, n->path, &nr, why) < 0)
		return false;
	evlog_reader_close(&k->r);
	k->r = nr;
	k->seg++;
	k->path = n->path;
	k->base = seq - 1; /* this exit is the new segment's first */
	k->segments++;
	if (vcpu == 0)
		tvm_log("replay: %llu exits of vCPU 0 matched so far; going on into %s", (unsigned long long)k->exits,
			n->path);
	return true;
}

/* Open the segments after rp->segs[0] as far as they go (named as
 * trialvm names them, of a run with the same vCPU count, each starting at
 * a snapshot); rp->chain_end says where and why the chain ends. */
static void open_chain(struct replay *rp)
{
	static const uint8_t zero[16];
	while (rp->nsegs < REPLAY_MAX_SEGMENTS) {
		const struct seg *last = &rp->segs[rp->nsegs - 1];
		char next[4096];
		const char *name;
		if (next_segment_path(last->path, next, sizeof(next)) < 0) {
			tvm_seterr(&rp->chain_end, "%s is not named as trialvm names segments, so none follows it", last->path);
			return;
		}
		name = strrchr(next, '/') ? strrchr(next, '/') + 1 : next;
		struct stat st;
		if (stat(next, &st) < 0) {
			tvm_seterr(&rp->chain_end, "no next segment %s beside it", name);
			return;
		}
		struct tvm_err err = { "" };
		struct seg *sg = &rp->segs[rp->nsegs];
		if ((sg->fd = open_regular(next, &st, &err)) < 0) {
			tvm_seterr(&rp->chain_end, "the next segment cannot be read: %s", err.msg);
			return;
		}
		sg->size = (uint64_t)st.st_size;
		struct evlog_reader r;
		const char *bad = NULL;
		if (evlog_open_fd(sg->fd, sg->size, next, &r, &err) < 0)
			bad = err.msg;
		else if (!memcmp(r.id, zero, 16))
			bad = "it starts at a boot, not at a snapshot";
		else if ((r.flags & EVLOG_FLAG_EXACT) != (rp->exact ? EVLOG_FLAG_EXACT : 0))
			bad = "it was recorded with another vCPU count";
		if (bad) {
			tvm_seterr(&rp->chain_end, "the next segment %s is not this run's: %s", name, bad);
			if (err.msg[0] == 0)
				evlog_reader_close(&r);
			close(sg->fd);
			return;
		}
		evlog_reader_close(&r);
		if (!(sg->path = strdup(next))) {
			tvm_seterr(&rp->chain_end, "out of memory");
			close(sg->fd);
			return;
		}
		rp->nsegs++;
	}
	tvm_seterr(&rp->chain_end, "the replay goes through %d segments at most; replay on from the next one's snapshot",
		   REPLAY_MAX_SEGMENTS);
}

/* k's records ended at this exit: with one vCPU (or the last one there)
 * the replay ends: the divergence at endrec, or else `kind` with the
 * message; the others wait for it, held. */
static void cursor_done(struct replay *rp, int vcpu, const struct evlog_rec *endrec, const char *guest, uint64_t rip,
			enum tvm_event_kind kind, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void cursor_done(struct replay *rp, int vcpu, const struct evlog_rec *endrec, const char *guest, uint64_t rip,
			enum tvm_event_kind kind, const char *fmt, ...)
{
	struct cursor *k = &rp->cur[vcpu];
	if (k->done)
		return; /* another exit while it parks */
	k->done = true;
	pthread_mutex_lock(&rp->lock);
	bool last = ++rp->ndone == rp->ncpus;
	pthread_mutex_unlock(&rp->lock);
	if (!last) {
		tvm_log("replay: vCPU %d's recorded exits end here (%llu matched, %s); it waits for the other vCPUs",
			vcpu, (unsigned long long)k->exits, k->path);
		vm_hold_vcpu(rp->vm, vcpu);
		return;
	}
	if (endrec) {
		diverge_at(rp, vcpu, endrec, guest, rip);
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vstop(rp, vcpu, kind, fmt, ap);
	va_end(ap);
}

static bool exit_check(void *ctx, int vcpu, uint64_t vseq, unsigned bus, bool write, unsigned size, uint32_t count,
		       uint64_t addr, const uint8_t *data, uint64_t rip)
{
	struct replay *rp = ctx;
	if (vcpu < 0 || vcpu >= rp->ncpus || stopped(rp))
		return false;
	struct cursor *k = &rp->cur[vcpu];
	if (k->done)
		return false; /* past its records: held */
	if (!queue_taken(rp, vcpu))
		return false;
	clear_queue(k);
	size_t len = (size_t)size * count;
	char guest[300], what[200];
	describe(what, sizeof(what), bus, write, size, count, addr, data, len);
	for (;;) {
		uint64_t seq = vseq - k->base;
		snprintf(guest, sizeof(guest), "exit %llu of vCPU %d, %s", (unsigned long long)seq, vcpu, what);
		struct evlog_rec rec;
		struct tvm_err err = { "" };
		int rc = evlog_next(&k->r, &rec, &err);
		if (rc < 0) {
			stop(rp, vcpu, TVM_EV_VMM_ERROR, "replay: %s: %s", k->path, err.msg);
			return false;
		}
		if (rc == 0) {
			cursor_done(rp, vcpu, NULL, NULL, 0, TVM_EV_REPLAY_END,
				    "replay: %s ends after %llu exits without an END record (the recording was killed%s); the "
				    "guest is stopped at its next exit",
				    k->path, (unsigned long long)total_exits(rp), k->r.torn ? ", its last record torn" : "");
			return false;
		}
		if (rec.type == EVLOG_END) {
			if (rec.why != EVLOG_END_SNAPSHOT) {
				/* The recorded run ended here; the guest went on. */
				cursor_done(rp, vcpu, &rec, guest, rip, TVM_EV_DIVERGED, "diverged");
				return false;
			}
			struct tvm_err why = { "" };
			if (next_segment(rp, vcpu, vseq, &why))
				continue;
			if (k->segments == 0)
				cursor_done(rp, vcpu, NULL, NULL, 0, TVM_EV_REPLAY_END,
					    "replay: all %llu exits of %s matched; it ends at the next snapshot, where the guest "
					    "is stopped (%s)", (unsigned long long)total_exits(rp), k->path, why.msg);
			else
				cursor_done(rp, vcpu, NULL, NULL, 0, TVM_EV_REPLAY_END,
					    "replay: all %llu exits from %s through %s matched; it ends at the next snapshot, "
					    "where the guest is stopped (%s)", (unsigned long long)total_exits(rp), rp->first,
					    k->path, why.msg);
			return false;
		}
		if (rec.vcpu != vcpu) {
			if (!rp->exact && rec.vcpu < rp->ncpus)
				continue; /* another vCPU's, read by its own cursor */
			diverge_at(rp, vcpu, &rec, guest, rip);
			return false;
		}
		if (rec.seq != seq) {
			diverge_at(rp, vcpu, &rec, guest, rip);
			return false;
		}
		if (rec.type == EVLOG_DATA) {
			if (k->nq == k->capq) {
				int cap = k->capq ? 2 * k->capq : 64;
				struct qent *nq = realloc(k->q, (size_t)cap * sizeof(*nq));
				if (nq) {
					k->q = nq;
					k->capq = cap;
				}
			}
			k->qbytes += rec.len;
			if (k->nq == k->capq || k->qbytes > QUEUE_BYTES_MAX || !(k->q[k->nq].bytes = malloc(rec.len))) {
				stop(rp, vcpu, TVM_EV_VMM_ERROR, "replay: %s: more data for exit %llu than %u MiB (or out of memory)",
				     k->path, (unsigned long long)seq, QUEUE_BYTES_MAX >> 20);
				return false;
			}
			memcpy(k->q[k->nq].bytes, rec.data, rec.len);
			k->q[k->nq].src = rec.src;
			k->q[k->nq].len = rec.len;
			k->q[k->nq].used = 0;
			k->nq++;
			continue;
		}
		if (rec.bus != bus || rec.dir != write || rec.size != size || rec.count != count || rec.addr != addr ||
		    (write && memcmp(rec.data, data, len))) {
			diverge_at(rp, vcpu, &rec, guest, rip);
			return false;
		}
		k->seq = seq;
		k->exit_len = rec.len;
		memcpy(k->exit_data, rec.data, rec.len);
		__atomic_add_fetch(&k->exits, 1, __ATOMIC_RELAXED);
		if (rp->until && vcpu == 0 && vseq == rp->until) { /* this exit is handled, then the run or gdb stops */
			if (vm_debug_on(rp->vm)) {
				tvm_log("replay: exit %llu reached (--until): stopping for the debugger", (unsigned long long)vseq);
				vm_debug_interrupt(rp->vm);
			} else {
				stop(rp, vcpu, TVM_EV_REPLAY_END, "replay: stopped after exit %llu of %s as --until asked; every exit "
				     "matched", (unsigned long long)vseq, rp->first);
			}
		}
		return true;
	}
}

static void exit_fill(void *ctx, int vcpu, uint8_t *data, size_t len)
{
	struct replay *rp = ctx;
	if (vcpu < 0 || vcpu >= rp->ncpus || stopped(rp))
		return;
	struct cursor *k = &rp->cur[vcpu];
	if (len == k->exit_len)
		memcpy(data, k->exit_data, len);
}

static void input(void *ctx, int vcpu, uint64_t vseq, unsigned src, void *data, size_t len)
{
	struct replay *rp = ctx;
	uint8_t *p = data;
	size_t got = 0;
	struct cursor *k = vcpu >= 0 && vcpu < rp->ncpus ? &rp->cur[vcpu] : NULL;
	while (k && !stopped(rp) && got < len) {
		if (k->iq < k->nq && k->q[k->iq].used == k->q[k->iq].len) {
			k->iq++;
			continue;
		}
		if (k->iq >= k->nq || k->q[k->iq].src != src) {
			stop(rp, vcpu, TVM_EV_DIVERGED,
			     "replay diverged after %llu exits matched (%s): during exit %llu of vCPU %d a device took %zu bytes "
			     "of %s; the log has %s",
			     (unsigned long long)total_exits(rp), k->path, (unsigned long long)(vseq - k->base), vcpu, len,
			     evlog_src_name(src), k->iq < k->nq ? "other data there" : "no more for that exit");
			break;
		}
		uint32_t n = k->q[k->iq].len - k->q[k->iq].used;
		if (n > len - got)
			n = (uint32_t)(len - got);
		memcpy(p + got, k->q[k->iq].bytes + k->q[k->iq].used, n);
		k->q[k->iq].used += n;
		got += n;
	}
	if (got < len)
		memset(p + got, 0, len - got); /* the run is ending: nothing of the host's */
	__atomic_add_fetch(&rp->inputs, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&rp->input_bytes, got, __ATOMIC_RELAXED);
}

void replay_set_until(struct replay *rp, uint64_t exit_no, bool snapshot)
{
	rp->until = exit_no;
	rp->until_snapshot = snapshot;
}

static const struct vm_replay_ops replay_ops = { exit_check, exit_fill, input };

/* A log of more than one vCPU, read once through before the run: the
 * highest vCPU its records name. -1 + err when it cannot be read. */
static int scan_vcpus(const char *log, struct tvm_err *err)
{
	struct evlog_reader r;
	if (evlog_open(log, &r, err) < 0)
		return -1;
	int top = 0, rc;
	struct evlog_rec rec;
	while ((rc = evlog_next(&r, &rec, err)) > 0)
		if (rec.type != EVLOG_END && rec.vcpu > top)
			top = rec.vcpu;
	evlog_reader_close(&r);
	return rc < 0 ? -1 : top;
}

void replay_close(struct replay *rp)
{
	if (!rp)
		return;
	for (int i = 0; rp->cur && i < rp->ncpus; i++) {
		struct cursor *k = &rp->cur[i];
		clear_queue(k);
		free(k->q);
		free(k->exit_data);
		if (k->open)
			evlog_reader_close(&k->r);
	}
	free(rp->cur);
	for (int i = 0; i < rp->nsegs; i++) {
		close(rp->segs[i].fd);
		free(rp->segs[i].path);
	}
	pthread_mutex_destroy(&rp->lock);
	free(rp);
}

struct replay *replay_open(const char *log, const uint8_t *start_id, int ncpus, struct tvm_err *err)
{
	if (ncpus < 1 || ncpus > REPLAY_MAX_VCPUS) {
		tvm_seterr(err, "replay takes 1 to %d vCPUs", REPLAY_MAX_VCPUS);
		return NULL;
	}
	struct replay *rp = calloc(1, sizeof(*rp));
	if (!rp || !(rp->cur = calloc((size_t)ncpus, sizeof(*rp->cur)))) {
		free(rp);
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&rp->lock, NULL);
	rp->ncpus = ncpus;
	struct stat st;
	struct seg *s0 = &rp->segs[0];
	if ((s0->fd = open_regular(log, &st, err)) < 0) {
		replay_close(rp);
		return NULL;
	}
	s0->size = (uint64_t)st.st_size;
	if (!(s0->path = strdup(log))) {
		close(s0->fd);
		tvm_seterr(err, "out of memory");
		replay_close(rp);
		return NULL;
	}
	rp->nsegs = 1;
	rp->first = s0->path;
	for (int i = 0; i < ncpus; i++) {
		struct cursor *k = &rp->cur[i];
		k->path = s0->path;
		if (!(k->exit_data = malloc(EVLOG_MAX_BODY))) {
			tvm_seterr(err, "out of memory");
			replay_close(rp);
			return NULL;
		}
		if (evlog_open_fd(s0->fd, s0->size, log, &k->r, err) < 0) {
			replay_close(rp);
			return NULL;
		}
		k->open = true;
	}
	const struct evlog_reader *r = &rp->cur[0].r;
	rp->exact = r->flags & EVLOG_FLAG_EXACT;
	static const uint8_t zero[16];
	bool from_start = !memcmp(r->id, zero, 16);
	char id[33];
	hex_bytes(r->id, 16, id);
	int top = rp->exact ? 0 : scan_vcpus(log, err);
	if (top < 0) {
		/* err says it */
	} else if (rp->exact && ncpus != 1) {
		tvm_seterr(err, "%s was recorded with one vCPU, and the machine has %d: replay it with --cpus 1", log, ncpus);
	} else if (top >= ncpus) {
		tvm_seterr(err, "%s has records of vCPU %d, and the machine has %d vCPU%s: replay it with the recorded run's "
				"--cpus", log, top, ncpus, ncpus == 1 ? "" : "s");
	} else if (from_start && start_id) {
		tvm_seterr(err, "%s starts at the start of a run, not at a snapshot: replay it by booting the run's images "
				"(no --restore)", log);
	} else if (!from_start && !start_id) {
		tvm_seterr(err, "%s starts at snapshot %s: replay it from that snapshot (--restore, the .tvs file beside "
				"it)", log, id);
	} else if (!from_start && memcmp(start_id, r->id, 16)) {
		char have[33];
		hex_bytes(start_id, 16, have);
		tvm_seterr(err, "%s starts at snapshot %s, and the snapshot restored is %s: give the one it names", log, id,
			   have);
	} else {
		open_chain(rp);
		if (!rp->exact)
			tvm_log("replay: %s was recorded with %d vCPUs; the order of one vCPU's exits against another's "
				"is not in the log, so this replay is best-effort: each vCPU's exits are checked in their "
				"own order, and a divergence is reported", log, ncpus);
		return rp;
	}
	replay_close(rp);
	return NULL;
}

void replay_attach(struct replay *rp, struct vm *vm)
{
	rp->vm = vm;
	vm_set_replay(vm, &replay_ops, rp);
}

void replay_summary(const struct replay *rp)
{
	if (rp->diverged) { /* the other ends were said as the run's event */
		tvm_log("%s", rp->report);
		return;
	}
	unsigned segs = 0;
	const char *last = rp->first;
	for (int i = 0; i < rp->ncpus; i++)
		if (rp->cur[i].segments > segs) {
			segs = rp->cur[i].segments;
			last = rp->cur[i].path;
		}
	char more[4200] = "", per[1024] = "";
	if (segs)
		snprintf(more, sizeof(more), " and the %u segment%s after it (to %s)", segs, segs == 1 ? "" : "s", last);
	for (int i = 0, n = 0; rp->ncpus > 1 && i < rp->ncpus && n >= 0 && (size_t)n < sizeof(per); i++)
		n += snprintf(per + n, sizeof(per) - (size_t)n, "%svCPU %d: %llu", i ? ", " : " (", i,
			      (unsigned long long)rp->cur[i].exits);
	if (rp->ncpus > 1 && strlen(per) + 2 < sizeof(per))
		strcat(per, ")");
	tvm_log("replay: %llu exits matched %s%s%s; %llu inputs (%llu bytes) came from it",
		(unsigned long long)total_exits(rp), rp->first, more, per, (unsigned long long)rp->inputs,
		(unsigned long long)rp->input_bytes);
}

int replay_state_hash(struct vm *vm, char hex[65], struct tvm_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return tvm_seterr(err, "state hash: no sha256");
	}
	int rc = 0;
	struct cpu_state *cs = malloc(sizeof(*cs));
	for (int i = 0; cs && rc == 0 && i < vm_ncpus(vm); i++) {
		if (vm_capture_cpu(vm, i, cs, err) < 0) {
			rc = -1;
			break;
		}
		/* Named fields, in a fixed order (no padding, nothing that
		 * moves by itself, such as the TSC). */
		uint64_t v[40];
		int n = 0;
		for (int r = 0; r < 16; r++)
			v[n++] = cs->gpr[r];
		v[n++] = cs->rip, v[n++] = cs->rflags, v[n++] = cs->cr0, v[n++] = cs->cr3, v[n++] = cs->cr4;
		v[n++] = cs->efer, v[n++] = cs->msr_fs_base, v[n++] = cs->msr_gs_base, v[n++] = cs->msr_kernel_gs_base;
		const struct seg_state *sg[] = { &cs->cs, &cs->ds, &cs->es, &cs->fs, &cs->gs, &cs->ss };
		for (size_t k = 0; k < sizeof(sg) / sizeof(sg[0]); k++)
			v[n++] = sg[k]->selector, v[n++] = sg[k]->base;
		EVP_DigestUpdate(ctx, v, (size_t)n * sizeof(v[0]));
	}
	if (!cs)
		rc = tvm_seterr(err, "out of memory");
	free(cs);
	const struct mem_region *rg;
	int nr = vm_regions(vm, &rg);
	for (int i = 0; rc == 0 && i < nr; i++)
		EVP_DigestUpdate(ctx, rg[i].host, rg[i].size);
	uint8_t md[32];
	unsigned mdlen = 0;
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = tvm_seterr(err, "state hash: sha256 failed");
	EVP_MD_CTX_free(ctx);
	if (rc == 0)
		sha256_hex(md, hex);
	return rc;
}
