/* reporter/windump.c - Windows full memory dump (DUMP_HEADER64 + pages). */
#include "windump.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/util.h"
#include "elfdump.h"

#define PAGE 4096ull
#define CTX 0x348u   /* ContextRecord */
#define CTX_SIZE 0x4d0u
#define EXC 0xf00u   /* ExceptionRecord */

static inline void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static inline void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static inline void put16(uint8_t *b, size_t off, uint16_t v) { memcpy(b + off, &v, 2); }

/* NTSTATUS for the exception record. */
static uint32_t exception_code(const struct crash_state *cs)
{
	if (cs->kind == CRASH_BREAKPOINT)
		return 0x80000003u; /* STATUS_BREAKPOINT */
	if (cs->kind == CRASH_APP_FAULT && cs->app) {
		switch (cs->app->f.signo) {
		case 11: return 0xc0000005u; /* SIGSEGV: STATUS_ACCESS_VIOLATION */
		case 7: return 0xc0000005u;  /* SIGBUS */
		case 8: return 0xc0000094u;  /* SIGFPE: STATUS_INTEGER_DIVIDE_BY_ZERO */
		case 4: return 0xc000001du;  /* SIGILL: STATUS_ILLEGAL_INSTRUCTION */
		case 5: return 0x80000003u;  /* SIGTRAP: STATUS_BREAKPOINT */
		case 6: return 0x40000015u;  /* SIGABRT: STATUS_FATAL_APP_EXIT */
		}
	}
	return crash_bugcheck_code(cs->kind);
}

/* x64 CONTEXT of one vCPU at b (0x4d0 bytes, zeroed by the caller). */
static void fill_context(uint8_t *b, const struct cpu_state *c)
{
	put32(b, 0x30, 0x10001fu); /* AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT | DEBUG */
	uint32_t mxcsr;
	memcpy(&mxcsr, c->fxsave + 24, 4);
	put32(b, 0x34, mxcsr);
	put16(b, 0x38, c->cs.selector);
	put16(b, 0x3a, c->ds.selector);
	put16(b, 0x3c, c->es.selector);
	put16(b, 0x3e, c->fs.selector);
	put16(b, 0x40, c->gs.selector);
	put16(b, 0x42, c->ss.selector);
	put32(b, 0x44, (uint32_t)c->rflags);
	put64(b, 0x48, c->dr[0]);
	put64(b, 0x50, c->dr[1]);
	put64(b, 0x58, c->dr[2]);
	put64(b, 0x60, c->dr[3]);
	put64(b, 0x68, c->dr[6]);
	put64(b, 0x70, c->dr[7]);
	/* Rax Rcx Rdx Rbx Rsp Rbp Rsi Rdi R8..R15: cpu_state.gpr order. */
	for (int i = 0; i < 16; i++)
		put64(b, 0x78 + 8u * (unsigned)i, c->gpr[i]);
	put64(b, 0xf8, c->rip);
	memcpy(b + 0x100, c->fxsave, 512); /* FltSave (XMM_SAVE_AREA32 = FXSAVE image) */
	put32(b, 0x118, mxcsr);            /* the same MXCSR, by construction */
}

int write_memory_dmp(const struct crash_state *cs, int fd, struct tvm_err *err)
{
	if (!cs || cs->ncpus < 1 || !cs->cpu || cs->mem.n < 1 || !cs->mem.r)
		return tvm_seterr(err, "Windows dump: no vCPU state or no guest memory to dump");
	if (cs->crashing_cpu < 0 || cs->crashing_cpu >= cs->ncpus)
		return tvm_seterr(err, "Windows dump: crashing vCPU %d out of range", cs->crashing_cpu);
	if (cs->mem.n > TVM_WINDUMP_MAX_RUNS)
		return tvm_seterr(err, "Windows dump: %d RAM regions, the header holds at most %d runs", cs->mem.n,
				  TVM_WINDUMP_MAX_RUNS);
	uint64_t pages = 0, prev_end = 0;
	for (int i = 0; i < cs->mem.n; i++) {
		const struct mem_region *r = &cs->mem.r[i];
		if ((r->gpa | r->size) & (PAGE - 1))
			return tvm_seterr(err, "Windows dump: RAM region %d [0x%llx, +0x%llx) is not page aligned", i,
					  (unsigned long long)r->gpa, (unsigned long long)r->size);
		if (r->size == 0 || !r->host || (i > 0 && r->gpa < prev_end) || r->gpa + r->size < r->gpa)
			return tvm_seterr(err, "Windows dump: RAM region %d is empty, unmapped or out of order", i);
		prev_end = r->gpa + r->size;
		pages += r->size / PAGE;
	}
	uint64_t total;
	if (mul_overflows(pages, PAGE, &total) || add_overflows(total, TVM_WINDUMP_HEADER_SIZE, &total) ||
	    total > (uint64_t)INT64_MAX)
		return tvm_seterr(err, "Windows dump: guest RAM too large for a file");

	struct stat st;
	bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (regular && ftruncate(fd, 0) < 0)
		return tvm_seterr(err, "cannot truncate the Windows dump file: %s", strerror(errno));

	static const uint8_t fill[4] = { 'P', 'A', 'G', 'E' };
	uint8_t h[TVM_WINDUMP_HEADER_SIZE];
	for (size_t i = 0; i < sizeof h; i += 4)
		memcpy(h + i, fill, 4);
	const struct cpu_state *c = &cs->cpu[cs->crashing_cpu];
	const struct app_fault *app = cs->kind == CRASH_APP_FAULT ? cs->app : NULL;

	memcpy(h + 0x00, "PAGE", 4);
	memcpy(h + 0x04, "DU64", 4);
	put32(h, 0x08, 0xf);
	put32(h, 0x0c, 0x4563);
	put64(h, 0x10, c->cr3);
	put64(h, 0x18, 0); /* PfnDatabase */
	put64(h, 0x20, 0); /* PsLoadedModuleList */
	put64(h, 0x28, 0); /* PsActiveProcessHead */
	put32(h, 0x30, 0x8664);
	put32(h, 0x34, (uint32_t)cs->ncpus);
	put32(h, 0x38, crash_bugcheck_code(cs->kind));
	put32(h, 0x3c, 0);
	uint64_t rip = app ? app->f.regs.rip : c->rip;
	put64(h, 0x40, app ? ((uint64_t)app->f.signo << 32 | app->f.vector) : 0);
	put64(h, 0x48, app ? app->f.addr : c->cr2);
	put64(h, 0x50, rip);
	put64(h, 0x58, (uint64_t)cs->crashing_cpu);
	memset(h + 0x60, 0, 0x20); /* VersionUser[32] */
	put64(h, 0x80, 0);         /* KdDebuggerDataBlock */

	/* PhysicalMemoryBlock */
	put32(h, 0x88, (uint32_t)cs->mem.n);
	put32(h, 0x8c, 0);
	put64(h, 0x90, pages);
	for (int i = 0; i < cs->mem.n; i++) {
		put64(h, 0x98 + 16u * (unsigned)i, cs->mem.r[i].gpa / PAGE);
		put64(h, 0xa0 + 16u * (unsigned)i, cs->mem.r[i].size / PAGE);
	}

	memset(h + CTX, 0, CTX_SIZE);
	fill_context(h + CTX, c);

	memset(h + EXC, 0, 0x98);
	uint32_t code = exception_code(cs);
	put32(h, EXC + 0x00, code);
	put32(h, EXC + 0x04, 1); /* EXCEPTION_NONCONTINUABLE */
	put64(h, EXC + 0x10, rip);
	if (code == 0xc0000005u && app) {
		/* ExceptionInformation[0] = 1 for a write (#PF error code bit 1), [1] = address */
		put32(h, EXC + 0x18, 2);
		put64(h, EXC + 0x20, (app->f.vector == 14 && (app->f.error_code & 2)) ? 1 : 0);
		put64(h, EXC + 0x28, app->f.addr);
	}

	put32(h, 0xf98, 1); /* DumpType: full */
	put32(h, 0xf9c, 0);
	put64(h, 0xfa0, total);
	put64(h, 0xfa8, cs->time_unix_ns / 100 + 116444736000000000ull); /* FILETIME */
	memset(h + 0xfb0, 0, 128);
	static const char comment[] = "trialvm crash dump";
	memcpy(h + 0xfb0, comment, sizeof comment);
	put64(h, 0x1030, cs->uptime_ns / 100);

	if (dump_pwrite_all(fd, h, sizeof h, 0, "the Windows dump header", err) < 0)
		return -1;
	uint64_t off = TVM_WINDUMP_HEADER_SIZE;
	for (int i = 0; i < cs->mem.n; i++) {
		const struct mem_region *r = &cs->mem.r[i];
		if (dump_write_sparse(fd, off, r->host, r->size, "the Windows dump memory", err) < 0)
			return -1;
		off += r->size;
	}
	return dump_finish(fd, total, "the Windows dump", err);
}
