/* monitor/replay.c - replay of an event log segment (replay.h). One vCPU:
 * every hook runs on its thread, in exit order. */
#include "replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../vmm/cpu_state.h"
#include "../vmm/evlog.h"
#include "../vmm/fileio.h"
#include "../vmm/util.h"

/* What one exit's data records may hold in all (a notify serves every
 * request the guest queued: virtio-rng 64 KiB each, in 4 KiB records). */
#define QUEUE_BYTES_MAX (64u << 20)

struct replay {
	struct vm *vm;
	char path[4096];
	struct evlog_reader r;
	/* The exit being handled: its record and bytes. */
	uint64_t seq;
	uint32_t exit_len;
	uint8_t exit_data[EVLOG_MAX_BODY];
	/* The data records before it, in order, and how much of each the
	 * devices took so far. */
	struct qent { uint16_t src; uint32_t len, used; uint8_t *bytes; } *q;
	int nq, iq, capq;
	uint64_t qbytes;
	uint64_t exits, inputs, input_bytes;
	uint64_t until;          /* --until exit N, or 0 */
	bool stopped;            /* diverged, or at the log's end */
	bool diverged;
	char report[1024];
};

static void clear_queue(struct replay *rp)
{
	for (int i = 0; i < rp->nq; i++)
		free(rp->q[i].bytes);
	rp->nq = rp->iq = 0;
	rp->qbytes = 0;
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

/* Stop the run: kind TVM_EV_DIVERGED with the report, or the end. */
static void stop(struct replay *rp, int vcpu, enum tvm_event_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stop(struct replay *rp, int vcpu, enum tvm_event_kind kind, const char *fmt, ...)
{
	if (rp->stopped)
		return;
	rp->stopped = true;
	rp->diverged = kind == TVM_EV_DIVERGED;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rp->report, sizeof(rp->report), fmt, ap);
	va_end(ap);
	struct tvm_event ev = { .kind = kind };
	snprintf(ev.detail, sizeof(ev.detail), "%.*s", (int)sizeof(ev.detail) - 1,
		 kind == TVM_EV_DIVERGED ? "replay: the guest diverged from the event log (the report follows)" : rp->report);
	vm_raise(rp->vm, vcpu, &ev);
}

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
	     (unsigned long long)rec->index, (unsigned long long)rec->offset, rp->path, (unsigned long long)rp->exits,
	     logside, guest, ripbuf);
}

/* What the devices left of the last exit's data: all of it must be taken. */
static bool queue_taken(struct replay *rp, int vcpu)
{
	for (int i = 0; i < rp->nq; i++)
		if (rp->q[i].used < rp->q[i].len) {
			stop(rp, vcpu, TVM_EV_DIVERGED,
			     "replay diverged after %llu exits matched (%s): the log has %u bytes of %s during exit %llu "
			     "that the guest's devices did not take",
			     (unsigned long long)rp->exits, rp->path, rp->q[i].len - rp->q[i].used,
			     evlog_src_name(rp->q[i].src), (unsigned long long)rp->seq);
			return false;
		}
	return true;
}

static bool exit_check(void *ctx, int vcpu, uint64_t seq, unsigned bus, bool write, unsigned size, uint32_t count,
		       uint64_t addr, const uint8_t *data, uint64_t rip)
{
	struct replay *rp = ctx;
	if (rp->stopped || !queue_taken(rp, vcpu))
		return false;
	clear_queue(rp);
	size_t len = (size_t)size * count;
	char guest[300], what[200];
	describe(what, sizeof(what), bus, write, size, count, addr, data, len);
	snprintf(guest, sizeof(guest), "exit %llu of vCPU %d, %s", (unsigned long long)seq, vcpu, what);
	for (;;) {
		struct evlog_rec rec;
		struct tvm_err err = { "" };
		int rc = evlog_next(&rp->r, &rec, &err);
		if (rc < 0) {
			stop(rp, vcpu, TVM_EV_VMM_ERROR, "replay: %s: %s", rp->path, err.msg);
			return false;
		}
		if (rc == 0) {
			stop(rp, vcpu, TVM_EV_REPLAY_END,
			     "replay: %s ends after %llu exits without an END record (the recording was killed%s); the "
			     "guest is stopped at its next exit",
			     rp->path, (unsigned long long)rp->exits, rp->r.torn ? ", its last record torn" : "");
			return false;
		}
		if (rec.type == EVLOG_END) {
			if (rec.why == EVLOG_END_SNAPSHOT)
				stop(rp, vcpu, TVM_EV_REPLAY_END,
				     "replay: all %llu exits of %s matched; it ends at the next snapshot, where the guest is "
				     "stopped", (unsigned long long)rp->exits, rp->path);
			else
				diverge_at(rp, vcpu, &rec, guest, rip);
			return false;
		}
		if (rec.vcpu != vcpu || rec.seq != seq) {
			diverge_at(rp, vcpu, &rec, guest, rip);
			return false;
		}
		if (rec.type == EVLOG_DATA) {
			if (rp->nq == rp->capq) {
				int cap = rp->capq ? 2 * rp->capq : 64;
				struct qent *nq = realloc(rp->q, (size_t)cap * sizeof(*nq));
				if (nq) {
					rp->q = nq;
					rp->capq = cap;
				}
			}
			rp->qbytes += rec.len;
			if (rp->nq == rp->capq || rp->qbytes > QUEUE_BYTES_MAX ||
			    !(rp->q[rp->nq].bytes = malloc(rec.len))) {
				stop(rp, vcpu, TVM_EV_VMM_ERROR, "replay: %s: more data for exit %llu than %u MiB (or out of memory)",
				     rp->path, (unsigned long long)seq, QUEUE_BYTES_MAX >> 20);
				return false;
			}
			memcpy(rp->q[rp->nq].bytes, rec.data, rec.len);
			rp->q[rp->nq].src = rec.src;
			rp->q[rp->nq].len = rec.len;
			rp->q[rp->nq].used = 0;
			rp->nq++;
			continue;
		}
		if (rec.bus != bus || rec.dir != write || rec.size != size || rec.count != count || rec.addr != addr ||
		    (write && memcmp(rec.data, data, len))) {
			diverge_at(rp, vcpu, &rec, guest, rip);
			return false;
		}
		rp->seq = seq;
		rp->exit_len = rec.len;
		memcpy(rp->exit_data, rec.data, rec.len);
		rp->exits++;
		if (rp->until && seq == rp->until) { /* this exit is handled, then the run or gdb stops */
			if (vm_debug_on(rp->vm)) {
				tvm_log("replay: exit %llu reached (--until): stopping for the debugger", (unsigned long long)seq);
				vm_debug_interrupt(rp->vm);
			} else {
				stop(rp, vcpu, TVM_EV_REPLAY_END, "replay: stopped after exit %llu of %s as --until asked; every exit "
				     "matched", (unsigned long long)seq, rp->path);
			}
		}
		return true;
	}
}

static void exit_fill(void *ctx, int vcpu, uint8_t *data, size_t len)
{
	struct replay *rp = ctx;
	(void)vcpu;
	if (!rp->stopped && len == rp->exit_len)
		memcpy(data, rp->exit_data, len);
}

static void input(void *ctx, int vcpu, uint64_t seq, unsigned src, void *data, size_t len)
{
	struct replay *rp = ctx;
	uint8_t *p = data;
	size_t got = 0;
	while (!rp->stopped && got < len) {
		if (rp->iq < rp->nq && rp->q[rp->iq].used == rp->q[rp->iq].len) {
			rp->iq++;
			continue;
		}
		if (rp->iq >= rp->nq || rp->q[rp->iq].src != src) {
			stop(rp, vcpu, TVM_EV_DIVERGED,
			     "replay diverged after %llu exits matched (%s): during exit %llu of vCPU %d a device took %zu bytes "
			     "of %s; the log has %s",
			     (unsigned long long)rp->exits, rp->path, (unsigned long long)seq, vcpu, len, evlog_src_name(src),
			     rp->iq < rp->nq ? "other data there" : "no more for that exit");
			break;
		}
		uint32_t n = rp->q[rp->iq].len - rp->q[rp->iq].used;
		if (n > len - got)
			n = (uint32_t)(len - got);
		memcpy(p + got, rp->q[rp->iq].bytes + rp->q[rp->iq].used, n);
		rp->q[rp->iq].used += n;
		got += n;
	}
	if (got < len)
		memset(p + got, 0, len - got); /* the run is ending: nothing of the host's */
	rp->inputs++;
	rp->input_bytes += got;
}

void replay_set_until(struct replay *rp, uint64_t exit_no) { rp->until = exit_no; }

static const struct vm_replay_ops replay_ops = { exit_check, exit_fill, input };

struct replay *replay_open(const char *log, const uint8_t *start_id, int ncpus, struct tvm_err *err)
{
	struct replay *rp = calloc(1, sizeof(*rp));
	if (!rp) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	snprintf(rp->path, sizeof(rp->path), "%s", log);
	if (evlog_open(log, &rp->r, err) < 0) {
		free(rp);
		return NULL;
	}
	static const uint8_t zero[16];
	bool from_start = !memcmp(rp->r.id, zero, 16);
	char id[33];
	hex_bytes(rp->r.id, 16, id);
	if (!(rp->r.flags & EVLOG_FLAG_EXACT) || ncpus != 1) {
		tvm_seterr(err, "%s: %s; replay takes a one-vCPU recording of a one-vCPU machine (with more, the order of "
				"the vCPUs' exits is not recorded)",
			   log, !(rp->r.flags & EVLOG_FLAG_EXACT) ? "recorded with more than one vCPU" : "the machine has more than one vCPU");
	} else if (from_start && start_id) {
		tvm_seterr(err, "%s starts at the start of a run, not at a snapshot: replay it by booting the run's images "
				"(no --restore)", log);
	} else if (!from_start && !start_id) {
		tvm_seterr(err, "%s starts at snapshot %s: replay it from that snapshot (--restore, the .tvs file beside "
				"it)", log, id);
	} else if (!from_start && memcmp(start_id, rp->r.id, 16)) {
		char have[33];
		hex_bytes(start_id, 16, have);
		tvm_seterr(err, "%s starts at snapshot %s, and the snapshot restored is %s: give the one it names", log, id,
			   have);
	} else {
		return rp;
	}
	evlog_reader_close(&rp->r);
	free(rp);
	return NULL;
}

void replay_attach(struct replay *rp, struct vm *vm)
{
	rp->vm = vm;
	vm_set_replay(vm, &replay_ops, rp);
}

void replay_summary(const struct replay *rp)
{
	if (rp->diverged) /* the other ends were said as the run's event */
		tvm_log("%s", rp->report);
	if (!rp->diverged)
		tvm_log("replay: %llu exits matched %s; %llu inputs (%llu bytes) came from it",
			(unsigned long long)rp->exits, rp->path, (unsigned long long)rp->inputs,
			(unsigned long long)rp->input_bytes);
}

void replay_close(struct replay *rp)
{
	if (!rp)
		return;
	clear_queue(rp);
	free(rp->q);
	evlog_reader_close(&rp->r);
	free(rp);
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
