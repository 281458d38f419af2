/* reporter/inspect_windump.c - the Windows full memory dump (memory.dmp,
 * DUMP_HEADER64) for `trialvm inspect`. */
#include "inspect_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "../vmm/util.h"
#include "windump.h"

/* x86-64 guest-physical addresses have at most 52 bits: 2^40 pages. */
#define GPA_PAGES (1ull << 40)

int insp_windump(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	uint8_t h[TVM_WINDUMP_HEADER_SIZE];
	if (insp_read(s, 0, h, sizeof h, "the DUMP_HEADER64", err) < 0)
		return -1;
	if (insp_get32(h, 0x30) != 0x8664)
		return tvm_seterr(err, "%s: MachineImageType 0x%x at offset 0x30 is not 0x8664 (x64)", s->path, insp_get32(h, 0x30));
	uint32_t type = insp_get32(h, 0xf98);
	if (type != 1)
		return tvm_seterr(err, "%s: DumpType %u at offset 0xf98 is not a full dump (1)", s->path, type);
	uint32_t nruns = insp_get32(h, 0x88);
	uint64_t npages = insp_get64(h, 0x90);
	if (nruns == 0 || nruns > TVM_WINDUMP_MAX_RUNS)
		return tvm_seterr(err, "%s: NumberOfRuns %u at offset 0x88 is not between 1 and %d", s->path, nruns,
				  TVM_WINDUMP_MAX_RUNS);
	uint64_t sum = 0, prev_end = 0;
	for (uint32_t i = 0; i < nruns; i++) {
		uint64_t base = insp_get64(h, 0x98 + 16 * i), cnt = insp_get64(h, 0xa0 + 16 * i), end;
		if (cnt == 0 || add_overflows(base, cnt, &end) || end > GPA_PAGES)
			return tvm_seterr(err, "%s: run %u at offset 0x%x (BasePage 0x%" PRIx64 ", PageCount 0x%" PRIx64 ") is %s; the dump is damaged",
					  s->path, i, 0x98 + 16 * i, base, cnt,
					  cnt ? "beyond 2^52 bytes, the largest x86-64 guest-physical address" : "empty");
		if (base < prev_end)
			return tvm_seterr(err, "%s: run %u at offset 0x%x overlaps or precedes the run before it", s->path, i,
					  0x98 + 16 * i);
		prev_end = end;
		if (add_overflows(sum, cnt, &sum)) /* cannot: disjoint runs below 2^40 pages */
			return tvm_seterr(err, "%s: the runs' page counts add up to more than 2^64", s->path);
	}
	if (sum != npages)
		return tvm_seterr(err, "%s: NumberOfPages %" PRIu64 " at offset 0x90 differs from the runs' total %" PRIu64,
				  s->path, npages, sum);
	uint64_t need;
	if (mul_overflows(npages, INSP_PAGE, &need) || add_overflows(need, TVM_WINDUMP_HEADER_SIZE, &need))
		return tvm_seterr(err, "%s: NumberOfPages %" PRIu64 " at offset 0x90 is too large", s->path, npages);
	uint64_t req = insp_get64(h, 0xfa0);
	if (req != need)
		return tvm_seterr(err, "%s: RequiredDumpSpace 0x%" PRIx64 " at offset 0xfa0 is not 0x2000 + %" PRIu64 " pages (0x%" PRIx64 ")",
				  s->path, req, npages, need);
	if (s->size < need)
		return tvm_seterr(err, "%s: the file is %" PRIu64 " bytes but RequiredDumpSpace at offset 0xfa0 says %" PRIu64 ": truncated",
				  s->path, s->size, need);
	if (insp_get32(h, 0x34) == 0)
		return tvm_seterr(err, "%s: NumberProcessors at offset 0x34 is 0; a dump has at least one", s->path);
	const uint8_t *ctx = h + 0x348;
	if (insp_get32(ctx, 0x34) != insp_get32(ctx, 0x118))
		return tvm_seterr(err, "%s: CONTEXT MxCsr 0x%x at offset 0x37c differs from FltSave.MxCsr 0x%x at offset 0x460",
				  s->path, insp_get32(ctx, 0x34), insp_get32(ctx, 0x118));
	if (!(insp_get32(ctx, 0x30) & 0x100000))
		return tvm_seterr(err, "%s: CONTEXT ContextFlags 0x%x at offset 0x378 lacks CONTEXT_AMD64", s->path,
				  insp_get32(ctx, 0x30));

	if (o && o->read_phys) {
		if (insp_check_read_opts(o, s->path, err) < 0)
			return -1;
		uint8_t *buf = malloc(o->read_phys_len);
		if (!buf)
			return tvm_seterr(err, "%s: out of memory", s->path);
		uint64_t done = 0;
		int rc = 0;
		while (rc == 0 && done < o->read_phys_len) {
			uint64_t a = o->read_phys_gpa + done, pfn = a / INSP_PAGE, before = 0;
			bool found = false;
			for (uint32_t i = 0; i < nruns && !found; i++) {
				uint64_t base = insp_get64(h, 0x98 + 16 * i), cnt = insp_get64(h, 0xa0 + 16 * i);
				if (pfn >= base && pfn - base < cnt) {
					/* disjoint runs below 2^40 pages (checked above): none of this wraps */
					uint64_t foff = TVM_WINDUMP_HEADER_SIZE + (before + (pfn - base)) * INSP_PAGE + (a & (INSP_PAGE - 1));
					uint64_t chunk = (base + cnt) * INSP_PAGE - a;
					if (chunk > o->read_phys_len - done)
						chunk = o->read_phys_len - done;
					rc = insp_read(s, foff, buf + done, chunk, "page data", err);
					done += chunk;
					found = true;
				}
				before += cnt;
			}
			if (!found)
				rc = tvm_seterr(err, "%s: guest-physical address 0x%" PRIx64 " is not in any run of the dump", s->path, a);
		}
		if (rc == 0)
			rc = insp_emit(out, buf, o->read_phys_len, err);
		free(buf);
		return rc;
	}

	char sz[32], when[64] = "?", comment[128 * 10 + 1];
	uint64_t ft = insp_get64(h, 0xfa8);
	if (ft >= 116444736000000000ull) {
		time_t t = (time_t)((ft - 116444736000000000ull) / 10000000ull);
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	insp_esc(comment, sizeof comment, h + 0xfb0, 128); /* anyone's bytes */
	fprintf(out, "%s: Windows full memory dump (DUMP_HEADER64)\n", s->path);
	fprintf(out, "  file: %" PRIu64 " bytes, %" PRIu64 " bytes allocated\n", s->size, s->blocks);
	fprintf(out, "  version %u.%u, machine 0x%x, %u processors\n", insp_get32(h, 8), insp_get32(h, 12), insp_get32(h, 0x30),
		insp_get32(h, 0x34));
	fprintf(out, "  DirectoryTableBase 0x%" PRIx64 "\n", insp_get64(h, 0x10));
	fprintf(out, "  BugCheckCode 0x%08x (0x%" PRIx64 ", 0x%" PRIx64 ", 0x%" PRIx64 ", 0x%" PRIx64 ")\n", insp_get32(h, 0x38),
		insp_get64(h, 0x40), insp_get64(h, 0x48), insp_get64(h, 0x50), insp_get64(h, 0x58));
	fprintf(out, "  SystemTime %s, SystemUpTime %.3f s\n", when, (double)insp_get64(h, 0x1030) / 1e7);
	fprintf(out, "  Comment \"%s\"\n", comment);
	insp_mib(sz, sizeof sz, npages * INSP_PAGE);
	fprintf(out, "  %u runs, %" PRIu64 " pages (%s); RequiredDumpSpace 0x%" PRIx64 " = file size %s\n", nruns, npages, sz,
		need, s->size == need ? "(ok)" : "(file is larger)");
	for (uint32_t i = 0; i < nruns; i++)
		fprintf(out, "    run %u: gpa 0x%016" PRIx64 " + 0x%" PRIx64 "\n", i, insp_get64(h, 0x98 + 16 * i) * INSP_PAGE,
			insp_get64(h, 0xa0 + 16 * i) * INSP_PAGE);
	fprintf(out, "  context (flags 0x%x): rip 0x%016" PRIx64 " rsp 0x%016" PRIx64 " rbp 0x%016" PRIx64 " eflags 0x%x\n",
		insp_get32(ctx, 0x30), insp_get64(ctx, 0xf8), insp_get64(ctx, 0x98), insp_get64(ctx, 0xa0), insp_get32(ctx, 0x44));
	fprintf(out, "    cs 0x%x ss 0x%x  cr3 (DirectoryTableBase) 0x%" PRIx64 "  MxCsr 0x%08x (matches FltSave)\n",
		insp_get16(ctx, 0x38), insp_get16(ctx, 0x42), insp_get64(h, 0x10), insp_get32(ctx, 0x34));
	fprintf(out, "  exception: code 0x%08x address 0x%016" PRIx64 "\n", insp_get32(h, 0xf00), insp_get64(h, 0xf10));
	return 0;
}
