/* reporter/inspect_evlog.c - `trialvm inspect` of an event log segment
 * (vmm/evlog.h): every record read and checked by the log's own reader,
 * then a summary. */
#include <inttypes.h>

#include "../vmm/evlog.h"
#include "inspect_int.h"

int insp_evlog(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	if (o && o->read_phys)
		return tvm_seterr(err, "%s: an event log holds no guest memory (--read-phys is for core.elf and memory.dmp)",
				  s->path);
	struct evlog_reader r;
	if (evlog_open_fd(s->fd, s->size, s->path, &r, err) < 0)
		return -1;
	uint64_t n[4] = { 0 }, pio = 0, mmio = 0, src_bytes[EVLOG_SRC_MAX + 1] = { 0 }, exits_max = 0;
	struct evlog_rec rec, end = { 0 };
	unsigned vcpus = 0;
	int rc;
	while ((rc = evlog_next(&r, &rec, err)) == 1) {
		n[rec.type]++;
		if (rec.type == EVLOG_EXIT) {
			if (rec.bus == 1)
				pio++;
			else
				mmio++;
			if (rec.vcpu + 1u > vcpus)
				vcpus = rec.vcpu + 1u;
			if (rec.seq > exits_max)
				exits_max = rec.seq;
		} else if (rec.type == EVLOG_DATA) {
			src_bytes[rec.src] += rec.len;
		} else {
			end = rec;
		}
	}
	if (rc < 0) {
		char m[sizeof(err->msg)];
		snprintf(m, sizeof(m), "%s", err->msg);
		tvm_seterr(err, "%s: %s", s->path, m);
		evlog_reader_close(&r);
		return -1;
	}
	bool zero = true;
	for (int i = 0; i < 16; i++)
		zero = zero && !r.id[i];
	char id[33];
	hex_bytes(r.id, 16, id);
	fprintf(out, "%s: trialvm event log, format version %u, %s\n", s->path, r.version,
		(r.flags & EVLOG_FLAG_EXACT) ? "one vCPU (replays exactly)" : "more than one vCPU (trialvm replay does not take it)");
	fprintf(out, "  starts at      %s%s\n", zero ? "the start of the run" : "snapshot ", zero ? "" : id);
	fprintf(out, "  records        %" PRIu64 ": %" PRIu64 " exits (%" PRIu64 " port I/O, %" PRIu64 " MMIO), %" PRIu64
		" data\n", n[1] + n[2] + n[3], n[1], pio, mmio, n[2]);
	fprintf(out, "  exits          numbered up to %" PRIu64 " (the most of one vCPU), on %u vCPU%s\n", exits_max, vcpus,
		vcpus == 1 ? "" : "s");
	for (unsigned i = 1; i <= EVLOG_SRC_MAX; i++)
		if (src_bytes[i])
			fprintf(out, "  data           %" PRIu64 " bytes from %s\n", src_bytes[i], evlog_src_name(i));
	if (r.ended)
		fprintf(out, "  ends           %s\n",
			end.why == EVLOG_END_CRASH ? "at a crash" : end.why == EVLOG_END_SNAPSHOT ? "at the next snapshot"
											: "at the run's end");
	else if (r.torn)
		fprintf(out, "  ends           without an END record (the run was killed): a torn record at offset %" PRIu64
			" is cut\n", r.torn_at);
	else
		fprintf(out, "  ends           without an END record (the run was killed, or is still recording)\n");
	evlog_reader_close(&r);
	return 0;
}
