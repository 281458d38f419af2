/* tests/fuzz/fuzz_evlog.c - libFuzzer harness for the event log reader
 * (vmm/evlog.c), over memory and through `trialvm inspect`: a log is a
 * file trialvm reads (replay, inspect), hence hostile. The input is the
 * whole file. Beyond ASan's checks: records come back one after another
 * (each frame starts where the last ended, numbered from 0), an exit's
 * data is its size times its count, a log read to its end without a cut
 * was consumed exactly, a cut is where the last whole record ended, and a
 * refusal has a message (inspect's: with no terminal control in it). */
#include "fuzz_inspect_common.h"
#include "vmm/evlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct evlog_reader r;
	struct tvm_err err = { "" };
	if (evlog_open_mem(data, len, &r, &err) == 0) {
		uint64_t at = EVLOG_HDR, idx = 0;
		struct evlog_rec rec;
		int rc;
		while ((rc = evlog_next(&r, &rec, &err)) == 1) {
			uint64_t body = r.off - rec.offset - EVLOG_FRAME;
			if (rec.offset != at || rec.index != idx || body < EVLOG_MIN_BODY || body > EVLOG_MAX_BODY ||
			    r.off > len)
				abort();
			if (rec.type == EVLOG_EXIT && ((uint64_t)rec.size * rec.count != rec.len || rec.len + 32 != body))
				abort();
			if (rec.type == EVLOG_DATA && (rec.len == 0 || rec.len + 16 != body || !evlog_src_name(rec.src)))
				abort();
			if (rec.len && (rec.data < r.body || rec.data + rec.len > r.body + EVLOG_MAX_BODY))
				abort();
			at = r.off;
			idx++;
		}
		if (rc < 0 && !err.msg[0])
			abort();
		if (rc == 0 && (r.torn ? r.torn_at != at : at != len))
			abort();
		evlog_reader_close(&r);
	} else if (!err.msg[0]) {
		abort();
	}
	struct insp_src s;
	fz_load(&s, "events.tvl", data, len);
	fz_inspect(insp_evlog, &s, 0);
	return 0;
}
