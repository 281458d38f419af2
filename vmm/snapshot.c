/* vmm/snapshot.c - machine state into a snapshot and back (snapshot.h). */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "fileio.h"
#include "util.h"
#include "vm_internal.h"
#include "vmstate.h"

#define PAGE 4096u
#define RUN_MAX_PAGES SNAP_RUN_MAX_PAGES /* 1 MiB of guest memory per run */
#define MEM_SECTION_SPAN (64ull << 20)     /* guest memory per memory section */
#define RUN_HDR 24u
#define RUN_ZERO SNAP_RUN_ZERO /* flags: the pages are zero; no data */

const struct snap_known snapshot_known[] = {
	{ SNAP_SEC_MACHINE, 1, "machine" }, { SNAP_SEC_VCPU, 1, "vcpu" },     { SNAP_SEC_IRQCHIP, 1, "irqchip" },
	{ SNAP_SEC_DEVICE, 1, "device" },   { SNAP_SEC_MEMORY, 1, "memory" }, { SNAP_SEC_ORIGIN, 1, "origin" },
	{ SNAP_SEC_PARENT, 1, "parent" }, { SNAP_SEC_DISK, 1, "disk" },
};
const size_t snapshot_nknown = sizeof(snapshot_known) / sizeof(snapshot_known[0]);

const char *snapshot_section_name(uint32_t type)
{
	for (size_t i = 0; i < snapshot_nknown; i++)
		if (snapshot_known[i].type == type)
			return snapshot_known[i].name;
	return NULL;
}

/* Fields of the records (vmstate.h). */
enum { MA_RAM = 1, MA_NCPUS = 2, MA_CLOCK = 3 };
enum {
	CPU_INDEX = 1, CPU_REGS = 2, CPU_SREGS = 3, CPU_XSAVE = 4, CPU_FPU = 5, CPU_XCRS = 6, CPU_MSRS = 7,
	CPU_EVENTS = 8, CPU_MP_STATE = 9, CPU_LAPIC = 10, CPU_DEBUGREGS = 11,
};
enum { IC_PIC0 = 1, IC_PIC1 = 2, IC_IOAPIC = 3, IC_PIT = 4 };
enum { DEV_NAME = 1, DEV_VERSION = 2, DEV_STATE = 3 };

/* ------------------------------------------------------------- vCPUs */

static int cap(struct vm *vm, long c) { return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, c); }

/* The size of this KVM's XSAVE buffer (KVM_CAP_XSAVE2: it may be larger
 * than struct kvm_xsave with AMX), 0 without XSAVE. */
static size_t xsave_size(struct vm *vm)
{
	if (cap(vm, KVM_CAP_XSAVE) <= 0)
		return 0;
	int n = cap(vm, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

/* Every MSR KVM lists for save/restore (KVM_GET_MSR_INDEX_LIST). */
static int msr_index_list(struct vm *vm, uint32_t **out, uint32_t *n, struct tvm_err *err)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return tvm_seterr(err, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return tvm_seterr(err, "out of memory");
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return tvm_seterr(err, "KVM_GET_MSR_INDEX_LIST failed: %s", strerror(errno));
	}
	*n = l->nmsrs;
	*out = malloc((l->nmsrs ? l->nmsrs : 1) * sizeof(uint32_t));
	if (!*out) {
		free(l);
		return tvm_seterr(err, "out of memory");
	}
	memcpy(*out, l->indices, l->nmsrs * sizeof(uint32_t));
	free(l);
	return 0;
}

struct saved_msr { uint32_t index, reserved; uint64_t value; };

/* One KVM_GET_MSRS of idx[0..n) into s[*got...]; the count read (it stops
 * at the first MSR it cannot read), or -1. */
static int read_msrs(int fd, const uint32_t *idx, uint32_t n, struct kvm_msrs *m, struct saved_msr *s, uint32_t *got)
{
	m->nmsrs = n;
	for (uint32_t k = 0; k < n; k++)
		m->entries[k] = (struct kvm_msr_entry){ .index = idx[k] };
	int r = ioctl(fd, KVM_GET_MSRS, m);
	for (int k = 0; k < r; k++)
		s[(*got)++] = (struct saved_msr){ .index = m->entries[k].index, .value = m->entries[k].data };
	return r;
}

/* Read every listed MSR that reads back: KVM_GET_MSRS stops at the first
 * one it cannot read, which is skipped. The MSRs that read are kept in
 * the VM, so later snapshots read them with one call (the pause is
 * shorter); should that read fewer, the list is probed again. */
static int get_msrs(struct vm *vm, int fd, struct saved_msr **out, uint32_t *nout, struct tvm_err *err)
{
	uint32_t *idx = NULL, n = 0;
	if (vm->snap_msrs) {
		idx = vm->snap_msrs;
		n = vm->snap_nmsrs;
	} else if (msr_index_list(vm, &idx, &n, err) < 0) {
		return -1;
	}
	struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(struct kvm_msr_entry));
	struct saved_msr *s = calloc(n ? n : 1, sizeof(*s));
	if (!m || !s) {
		if (idx != vm->snap_msrs)
			free(idx);
		free(m), free(s);
		return tvm_seterr(err, "out of memory");
	}
	uint32_t got = 0;
	if (idx == vm->snap_msrs) {
		if (read_msrs(fd, idx, n, m, s, &got) == (int)n) {
			free(m);
			*out = s;
			*nout = got;
			return 0;
		}
		/* Fewer than last time: probe the whole list again. */
		free(vm->snap_msrs);
		vm->snap_msrs = NULL;
		free(m), free(s);
		return get_msrs(vm, fd, out, nout, err);
	}
	for (uint32_t i = 0; i < n;) {
		int r = read_msrs(fd, idx + i, n - i, m, s, &got);
		if (r < 0) {
			free(idx), free(m), free(s);
			return tvm_seterr(err, "KVM_GET_MSRS failed: %s", strerror(errno));
		}
		i += (uint32_t)r + 1; /* past the one that did not read */
	}
	free(m);
	uint32_t *keep = malloc((got ? got : 1) * sizeof(*keep));
	if (keep) {
		for (uint32_t k = 0; k < got; k++)
			keep[k] = s[k].index;
		vm->snap_msrs = keep;
		vm->snap_nmsrs = got;
	}
	free(idx);
	*out = s;
	*nout = got;
	return 0;
}

/* The fixed-size part of a vCPU's state, as KVM gives and takes it. */
struct vcpu_fixed {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_debugregs dr;
};

static int save_vcpu(struct vm *vm, int i, struct vs_out *o, struct tvm_err *err)
{
	int fd = vm->cpus[i].fd;
	struct vcpu_fixed v;
	if (ioctl(fd, KVM_GET_REGS, &v.regs) < 0 || ioctl(fd, KVM_GET_SREGS, &v.sregs) < 0 ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &v.ev) < 0 || ioctl(fd, KVM_GET_MP_STATE, &v.mp) < 0 ||
	    ioctl(fd, KVM_GET_LAPIC, &v.lapic) < 0 || ioctl(fd, KVM_GET_DEBUGREGS, &v.dr) < 0)
		return tvm_seterr(err, "cannot read the state of vCPU %d: %s", i, strerror(errno));
	vs_put_u32(o, CPU_INDEX, (uint32_t)i);
	vs_put(o, CPU_REGS, &v.regs, sizeof(v.regs));
	vs_put(o, CPU_SREGS, &v.sregs, sizeof(v.sregs));
	size_t xs = xsave_size(vm);
	if (xs) {
		void *buf = calloc(1, xs);
		if (!buf)
			return tvm_seterr(err, "out of memory");
		unsigned long req = xs > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
		if (ioctl(fd, req, buf) < 0) {
			free(buf);
			return tvm_seterr(err, "cannot read the XSAVE state of vCPU %d: %s", i, strerror(errno));
		}
		vs_put(o, CPU_XSAVE, buf, (uint32_t)xs);
		free(buf);
	} else {
		struct kvm_fpu fpu;
		if (ioctl(fd, KVM_GET_FPU, &fpu) < 0)
			return tvm_seterr(err, "cannot read the FPU of vCPU %d: %s", i, strerror(errno));
		vs_put(o, CPU_FPU, &fpu, sizeof(fpu));
	}
	if (cap(vm, KVM_CAP_XCRS) > 0) {
		struct kvm_xcrs xcrs;
		if (ioctl(fd, KVM_GET_XCRS, &xcrs) < 0)
			return tvm_seterr(err, "cannot read the XCRs of vCPU %d: %s", i, strerror(errno));
		vs_put(o, CPU_XCRS, &xcrs, sizeof(xcrs));
	}
	struct saved_msr *msrs = NULL;
	uint32_t nmsrs = 0;
	if (get_msrs(vm, fd, &msrs, &nmsrs, err) < 0)
		return -1;
	vs_put(o, CPU_MSRS, msrs, nmsrs * (uint32_t)sizeof(*msrs));
	free(msrs);
	vs_put(o, CPU_EVENTS, &v.ev, sizeof(v.ev));
	vs_put(o, CPU_MP_STATE, &v.mp, sizeof(v.mp));
	vs_put(o, CPU_LAPIC, &v.lapic, sizeof(v.lapic));
	vs_put(o, CPU_DEBUGREGS, &v.dr, sizeof(v.dr));
	return vs_out_error(o, err);
}

/* In the order KVM wants them: registers, XSAVE, XCRs, system registers,
 * MSRs (the TSC among them: guest time goes on from where it was), MP
 * state, LAPIC, events, debug registers. */
static int load_vcpu(struct vm *vm, const struct vs_in *in, struct tvm_err *err)
{
	static const uint16_t known[] = { CPU_INDEX, CPU_REGS, CPU_SREGS, CPU_XSAVE, CPU_FPU, CPU_XCRS,
					  CPU_MSRS, CPU_EVENTS, CPU_MP_STATE, CPU_LAPIC, CPU_DEBUGREGS };
	uint32_t idx;
	if (vs_check(in, known, sizeof(known) / sizeof(known[0]), err) < 0 ||
	    vs_get_u32(in, CPU_INDEX, &idx, "its index", err) < 0)
		return -1;
	if (idx >= (uint32_t)vm->ncpus)
		return tvm_seterr(err, "the snapshot has vCPU %u; this VM has %d", idx, vm->ncpus);
	int fd = vm->cpus[idx].fd;
	struct vcpu_fixed v;
	if (vs_get(in, CPU_REGS, &v.regs, sizeof(v.regs), "registers", err) < 0 ||
	    vs_get(in, CPU_SREGS, &v.sregs, sizeof(v.sregs), "system registers", err) < 0 ||
	    vs_get(in, CPU_EVENTS, &v.ev, sizeof(v.ev), "events", err) < 0 ||
	    vs_get(in, CPU_MP_STATE, &v.mp, sizeof(v.mp), "MP state", err) < 0 ||
	    vs_get(in, CPU_LAPIC, &v.lapic, sizeof(v.lapic), "LAPIC", err) < 0 ||
	    vs_get(in, CPU_DEBUGREGS, &v.dr, sizeof(v.dr), "debug registers", err) < 0)
		return -1;
	if (ioctl(fd, KVM_SET_REGS, &v.regs) < 0)
		return tvm_seterr(err, "KVM refused the registers of vCPU %u: %s", idx, strerror(errno));
	const void *xd;
	uint32_t xl;
	size_t xs = xsave_size(vm);
	if (vs_find(in, CPU_XSAVE, &xd, &xl)) {
		if (!xs)
			return tvm_seterr(err, "the snapshot holds XSAVE state, and this machine's KVM has no XSAVE");
		void *buf = calloc(1, xs > xl ? xs : xl);
		if (!buf)
			return tvm_seterr(err, "out of memory");
		memcpy(buf, xd, xl);
		for (size_t k = xs; k < xl; k++)
			if (((uint8_t *)buf)[k]) {
				free(buf);
				return tvm_seterr(err, "the snapshot's XSAVE state of vCPU %u uses %u bytes; this machine's "
						       "KVM holds %zu (the CPU lacks a feature the guest used)", idx, xl, xs);
			}
		int r = ioctl(fd, KVM_SET_XSAVE, buf);
		int e = errno;
		free(buf);
		if (r < 0)
			return tvm_seterr(err, "KVM refused the XSAVE state of vCPU %u: %s", idx, strerror(e));
	} else {
		struct kvm_fpu fpu;
		if (vs_get(in, CPU_FPU, &fpu, sizeof(fpu), "FPU (or XSAVE) state", err) < 0)
			return -1;
		if (ioctl(fd, KVM_SET_FPU, &fpu) < 0)
			return tvm_seterr(err, "KVM refused the FPU state of vCPU %u: %s", idx, strerror(errno));
	}
	struct kvm_xcrs xcrs;
	int have = vs_get_opt(in, CPU_XCRS, &xcrs, sizeof(xcrs), "XCRs", err);
	if (have < 0)
		return -1;
	if (have) {
		if (xcrs.nr_xcrs > KVM_MAX_XCRS)
			return tvm_seterr(err, "the snapshot lists %u XCRs for vCPU %u (at most %d)", xcrs.nr_xcrs, idx,
					  KVM_MAX_XCRS);
		if (ioctl(fd, KVM_SET_XCRS, &xcrs) < 0)
			return tvm_seterr(err, "KVM refused the XCRs of vCPU %u: %s", idx, strerror(errno));
	}
	if (ioctl(fd, KVM_SET_SREGS, &v.sregs) < 0)
		return tvm_seterr(err, "KVM refused the system registers of vCPU %u: %s", idx, strerror(errno));
	const void *md;
	uint32_t ml;
	if (vs_find(in, CPU_MSRS, &md, &ml)) {
		if (ml % sizeof(struct saved_msr))
			return tvm_seterr(err, "the MSR list of vCPU %u is %u bytes, not whole entries", idx, ml);
		uint32_t n = ml / (uint32_t)sizeof(struct saved_msr);
		struct kvm_msrs *m = calloc(1, sizeof(*m) + (size_t)n * sizeof(struct kvm_msr_entry));
		if (!m)
			return tvm_seterr(err, "out of memory");
		unsigned refused = 0;
		for (uint32_t i = 0; i < n;) {
			m->nmsrs = n - i;
			for (uint32_t k = 0; k < n - i; k++) {
				struct saved_msr sm;
				memcpy(&sm, (const uint8_t *)md + (size_t)(i + k) * sizeof(sm), sizeof(sm));
				m->entries[k] = (struct kvm_msr_entry){ .index = sm.index, .data = sm.value };
			}
			int r = ioctl(fd, KVM_SET_MSRS, m);
			if (r < 0) {
				int e = errno;
				free(m);
				return tvm_seterr(err, "KVM_SET_MSRS on vCPU %u failed: %s", idx, strerror(e));
			}
			if ((uint32_t)r < n - i) {
				tvm_debug("restore: vCPU %u: KVM refused MSR 0x%x", idx, m->entries[r].index);
				refused++;
			}
			i += (uint32_t)r + 1;
		}
		free(m);
		if (refused)
			tvm_debug("restore: vCPU %u: %u MSRs refused by this KVM (read-only ones)", idx, refused);
	}
	if (v.mp.mp_state > KVM_MP_STATE_SUSPENDED)
		return tvm_seterr(err, "vCPU %u has MP state %u in the snapshot", idx, v.mp.mp_state);
	if (ioctl(fd, KVM_SET_MP_STATE, &v.mp) < 0)
		return tvm_seterr(err, "KVM refused the MP state of vCPU %u: %s", idx, strerror(errno));
	if (ioctl(fd, KVM_SET_LAPIC, &v.lapic) < 0)
		return tvm_seterr(err, "KVM refused the LAPIC of vCPU %u: %s", idx, strerror(errno));
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &v.ev) < 0)
		return tvm_seterr(err, "KVM refused the pending events of vCPU %u: %s", idx, strerror(errno));
	if (ioctl(fd, KVM_SET_DEBUGREGS, &v.dr) < 0)
		return tvm_seterr(err, "KVM refused the debug registers of vCPU %u: %s", idx, strerror(errno));
	return 0;
}

/* ---------------------------------------------------- irqchip and PIT */

static int save_irqchip(struct vm *vm, struct vs_out *o, struct tvm_err *err)
{
	static const uint16_t tags[3] = { IC_PIC0, IC_PIC1, IC_IOAPIC };
	for (uint32_t id = 0; id < 3; id++) {
		struct kvm_irqchip chip = { .chip_id = id };
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return tvm_seterr(err, "KVM_GET_IRQCHIP (%u) failed: %s", id, strerror(errno));
		vs_put(o, tags[id], &chip, sizeof(chip));
	}
	struct kvm_pit_state2 pit;
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return tvm_seterr(err, "KVM_GET_PIT2 failed: %s", strerror(errno));
	vs_put(o, IC_PIT, &pit, sizeof(pit));
	return vs_out_error(o, err);
}

static int load_irqchip(struct vm *vm, const struct vs_in *in, struct tvm_err *err)
{
	static const uint16_t known[] = { IC_PIC0, IC_PIC1, IC_IOAPIC, IC_PIT };
	static const uint16_t tags[3] = { IC_PIC0, IC_PIC1, IC_IOAPIC };
	static const char *const names[3] = { "the master PIC", "the slave PIC", "the IOAPIC" };
	if (vs_check(in, known, sizeof(known) / sizeof(known[0]), err) < 0)
		return -1;
	for (uint32_t id = 0; id < 3; id++) {
		struct kvm_irqchip chip;
		if (vs_get(in, tags[id], &chip, sizeof(chip), names[id], err) < 0)
			return -1;
		if (chip.chip_id != id)
			return tvm_seterr(err, "the snapshot's state of %s names chip %u", names[id], chip.chip_id);
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return tvm_seterr(err, "KVM refused the snapshot's state of %s: %s", names[id], strerror(errno));
	}
	struct kvm_pit_state2 pit;
	if (vs_get(in, IC_PIT, &pit, sizeof(pit), "the PIT", err) < 0)
		return -1;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return tvm_seterr(err, "KVM refused the snapshot's PIT state: %s", strerror(errno));
	return 0;
}

/* ------------------------------------------------------------- memory */

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;
	uint64_t acc = 0;
	for (unsigned i = 0; i < PAGE / 8; i++)
		acc |= w[i];
	return acc == 0;
}

struct membuf { uint8_t *p; size_t len, cap; };

static int membuf_reserve(struct membuf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : (1u << 20);
	while (cap - b->len < more)
		cap *= 2;
	uint8_t *n = realloc(b->p, cap);
	if (!n)
		return -1;
	b->p = n;
	b->cap = cap;
	return 0;
}

/* One run of npages pages at gpa (host copy at src): compressed, or with
 * `zero` only its header (RUN_ZERO: the pages are zero now). */
static int put_run(struct membuf *b, ZSTD_CCtx *cc, uint64_t gpa, const uint8_t *src, uint32_t npages, bool zero,
		   struct tvm_err *err)
{
	size_t raw = (size_t)npages * PAGE, bound = zero ? 0 : ZSTD_compressBound(raw);
	if (membuf_reserve(b, RUN_HDR + bound) < 0)
		return tvm_seterr(err, "out of memory while compressing guest memory");
	size_t c = 0;
	if (!zero) {
		c = ZSTD_compressCCtx(cc, b->p + b->len + RUN_HDR, bound, src, raw, 1);
		if (ZSTD_isError(c))
			return tvm_seterr(err, "zstd: %s", ZSTD_getErrorName(c));
	}
	uint32_t flags = zero ? RUN_ZERO : 0, clen = (uint32_t)c, crc = zero ? 0 : (uint32_t)crc32(0, src, (uInt)raw);
	uint8_t *h = b->p + b->len;
	memcpy(h, &gpa, 8);
	memcpy(h + 8, &npages, 4);
	memcpy(h + 12, &flags, 4);
	memcpy(h + 16, &clen, 4);
	memcpy(h + 20, &crc, 4);
	b->len += RUN_HDR + c;
	return 0;
}

static bool bit(const uint64_t *bm, uint64_t pg) { return bm[pg / 64] >> (pg % 64) & 1; }

/* A machine's state taken while it is paused, written later without it. */
struct snap_capture {
	int nsec;
	struct cap_sec { uint32_t type; struct vs_out rec; } *sec; /* machine, vCPUs, irqchip, devices */
	uint64_t npages;
	uint64_t *page;     /* guest address of each page */
	uint8_t *data;      /* page[i]'s bytes at data + i * PAGE */
	bool dense;         /* incremental: every dirty page, zero ones too (full: non-zero ones) */
	uint64_t memory_ns; /* how long capture_memory (and capture_bulk) took */
	int nbulk;
	struct bulk_cap {   /* a device's bulk contents (a disk's changes), in PAGE units */
		char name[TVM_DEVICE_NAME];
		uint64_t size;    /* the device's contents, bytes */
		uint64_t n, cap;  /* units held, room */
		uint64_t *off;    /* each unit's byte offset */
		uint8_t *data;    /* unit i at data + i * PAGE (zero-padded past size) */
	} bulk[TVM_MAX_DEVICES];
};

/* Incremental: every page dirty[] marks, copied as it is in one pass (the
 * vCPUs wait for this copy alone; which pages are zero is found later,
 * by the writer). */
static int capture_dirty(struct vm *vm, const uint64_t *const *dirty, struct snap_capture *c, struct tvm_err *err)
{
	uint64_t n = 0;
	for (int ri = 0; ri < vm->nregions; ri++) {
		uint64_t pages = vm->regions[ri].size / PAGE;
		for (uint64_t w = 0; w < vm_bitmap_words(vm->regions[ri].size); w++) {
			uint64_t bits = dirty[ri][w];
			if (w == pages / 64 && pages % 64) /* bits past the region's end are not pages */
				bits &= (1ull << (pages % 64)) - 1;
			n += (uint64_t)__builtin_popcountll(bits);
		}
	}
	c->dense = true;
	c->page = malloc((n ? n : 1) * sizeof(*c->page));
	c->data = malloc(n ? n * PAGE : 1);
	if (!c->page || !c->data)
		return tvm_seterr(err, "out of memory for a copy of %llu guest pages", (unsigned long long)n);
	uint64_t k = 0;
	for (int ri = 0; ri < vm->nregions; ri++) {
		const struct mem_region *r = &vm->regions[ri];
		uint64_t pages = r->size / PAGE;
		for (uint64_t w = 0; w < vm_bitmap_words(r->size); w++) {
			for (uint64_t bits = dirty[ri][w]; bits; bits &= bits - 1) {
				uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(bits);
				if (pg >= pages || k == n)
					break;
				c->page[k] = r->gpa + pg * PAGE;
				memcpy(c->data + k * PAGE, r->host + pg * PAGE, PAGE);
				k++;
			}
		}
	}
	c->npages = k;
	return 0;
}

/* Full (dirty NULL): every non-zero page. Incremental: capture_dirty.
 * Two passes: count, then copy. */
static int capture_memory(struct vm *vm, const uint64_t *const *dirty, struct snap_capture *c, struct tvm_err *err)
{
	if (dirty)
		return capture_dirty(vm, dirty, c, err);
	uint64_t n = 0, ndata = 0, max_n = 0, max_data = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			c->page = malloc((n ? n : 1) * sizeof(*c->page));
			c->data = malloc(ndata ? ndata * PAGE : 1);
			if (!c->page || !c->data)
				return tvm_seterr(err, "out of memory for a copy of %llu guest pages", (unsigned long long)ndata);
			max_n = n;
			max_data = ndata;
			n = ndata = 0;
		}
		for (int ri = 0; ri < vm->nregions; ri++) {
			const struct mem_region *r = &vm->regions[ri];
			for (uint64_t pg = 0; pg < r->size / PAGE; pg++) {
				const uint8_t *src = r->host + pg * PAGE;
				if (page_is_zero(src))
					continue;
				if (pass == 1) {
					/* The vCPUs are paused, so nothing changes between the
					 * passes; were it otherwise, the copy must not overrun. */
					if (n == max_n || ndata == max_data)
						return tvm_seterr(err, "guest memory changed while it was copied");
					c->page[n] = r->gpa + pg * PAGE;
					memcpy(c->data + ndata * PAGE, src, PAGE);
				}
				n++;
				ndata++;
			}
		}
	}
	c->npages = n;
	return 0;
}

/* Captured page i: zero? A full capture holds none; an incremental one's
 * are found here, after the pause (stored as zero runs: the parent may
 * hold data there). */
static bool captured_zero(const struct snap_capture *c, uint64_t i)
{
	return c->dense && page_is_zero(c->data + i * PAGE);
}

/* The captured pages as runs (consecutive pages of one kind, at most
 * RUN_MAX_PAGES), in memory sections of at most about MEM_SECTION_SPAN. */
static int write_memory(const struct snap_capture *c, struct snap_writer *w, struct tvm_err *err)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	struct membuf b = { 0 };
	if (!cc)
		return tvm_seterr(err, "out of memory (zstd)");
	int rc = 0;
	for (uint64_t i = 0; rc == 0 && i < c->npages;) {
		uint64_t gpa = c->page[i];
		bool zero = captured_zero(c, i);
		uint32_t k = 1;
		while (i + k < c->npages && k < RUN_MAX_PAGES &&
		       c->page[i + k] == gpa + (uint64_t)k * PAGE && captured_zero(c, i + k) == zero)
			k++;
		rc = put_run(&b, cc, gpa, zero ? NULL : c->data + i * PAGE, k, zero, err); /* page i's bytes */
		i += k;
		if (rc == 0 && (b.len >= MEM_SECTION_SPAN || (i == c->npages && b.len))) {
			rc = snap_add(w, SNAP_SEC_MEMORY, 1, SNAP_SECTION_REQUIRED, b.p, b.len, err);
			b.len = 0;
		}
	}
	free(b.p);
	ZSTD_freeCCtx(cc);
	return rc;
}

/* ---------------------------------------------------------- disk sections
 * A device's bulk contents (vm_device_ops bulk_*): section SNAP_SEC_DISK,
 * u32 name length, the device's name, u64 its size in bytes, then runs as
 * in memory sections with the byte offset in the device for the guest
 * address (PAGE units; a last unit past the size is zero-padded). Unlike
 * memory, what a disk section does not hold is the master's, so zero
 * units are stored (as zero runs) in full snapshots too. */

/* bulk_save's put: [off, off + len) copied into the capture as units. */
static int bulk_put(void *ctx, uint64_t off, const void *data, uint64_t len)
{
	struct bulk_cap *b = ctx;
	uint64_t end;
	if ((off % PAGE) || add_overflows(off, len, &end) || end > b->size)
		return -1;
	for (uint64_t u = 0; u * PAGE < len; u++) {
		if (b->n == b->cap) {
			uint64_t ncap = b->cap ? b->cap * 2 : 256;
			uint64_t *no = realloc(b->off, ncap * sizeof(*no));
			if (no)
				b->off = no;
			uint8_t *nd = no && ncap <= SIZE_MAX / PAGE ? realloc(b->data, (size_t)ncap * PAGE) : NULL;
			if (!nd)
				return -1;
			b->data = nd;
			b->cap = ncap;
		}
		uint64_t n = len - u * PAGE < PAGE ? len - u * PAGE : PAGE;
		uint8_t *dst = b->data + b->n * PAGE;
		memcpy(dst, (const uint8_t *)data + u * PAGE, (size_t)n);
		memset(dst + n, 0, (size_t)(PAGE - n));
		b->off[b->n++] = off + u * PAGE;
	}
	return 0;
}

static int capture_bulk(struct vm *vm, bool incremental, struct snap_capture *c, struct tvm_err *err)
{
	for (int i = 0; i < vm->ndevices; i++) {
		const struct vm_dev_entry *d = &vm->devices[i];
		if (!d->ops->bulk_save)
			continue;
		struct bulk_cap *b = &c->bulk[c->nbulk++];
		snprintf(b->name, sizeof(b->name), "%s", d->name);
		b->size = d->ops->bulk_size(d->dev);
		err->msg[0] = 0;
		if (d->ops->bulk_save(d->dev, incremental, bulk_put, b, err) < 0)
			return err->msg[0] ? -1 : tvm_seterr(err, "device %s: out of memory for a copy of its contents", d->name);
	}
	return 0;
}

static int disk_prefix(struct membuf *b, const char *name, uint64_t size)
{
	uint32_t n = (uint32_t)strlen(name);
	if (membuf_reserve(b, 4 + n + 8) < 0)
		return -1;
	memcpy(b->p + b->len, &n, 4);
	memcpy(b->p + b->len + 4, name, n);
	memcpy(b->p + b->len + 4 + n, &size, 8);
	b->len += 4 + n + 8;
	return 0;
}

static int write_bulk(const struct bulk_cap *d, struct snap_writer *w, ZSTD_CCtx *cc, struct tvm_err *err)
{
	struct membuf b = { 0 };
	int rc = 0;
	size_t base = 0;
	for (uint64_t i = 0; rc == 0 && i < d->n;) {
		if (b.len == 0) { /* each section starts with the disk's name and size */
			if (disk_prefix(&b, d->name, d->size) < 0)
				rc = tvm_seterr(err, "out of memory");
			base = b.len;
		}
		bool zero = page_is_zero(d->data + i * PAGE);
		uint32_t k = 1;
		while (rc == 0 && i + k < d->n && k < RUN_MAX_PAGES && d->off[i + k] == d->off[i] + (uint64_t)k * PAGE &&
		       page_is_zero(d->data + (i + k) * PAGE) == zero)
			k++;
		if (rc == 0)
			rc = put_run(&b, cc, d->off[i], zero ? NULL : d->data + i * PAGE, k, zero, err);
		i += k;
		if (rc == 0 && (b.len >= MEM_SECTION_SPAN || (i == d->n && b.len > base))) {
			rc = snap_add(w, SNAP_SEC_DISK, 1, SNAP_SECTION_REQUIRED, b.p, b.len, err);
			b.len = 0;
		}
	}
	free(b.p);
	return rc;
}

/* Runs are hostile: each is framed inside its section, lies inside one
 * RAM region (the caller checks), decompresses to exactly its pages and
 * matches its CRC. */
struct run {
	uint64_t gpa;
	uint32_t npages, flags, clen, crc;
	uint64_t data; /* offset of the compressed bytes in the section */
};

/* The run at *off of section s into *run; *off moves past it. */
static int read_run(struct snap_reader *rd, const struct snap_section *s, uint64_t *off, struct run *run,
		    struct tvm_err *err)
{
	uint8_t h[RUN_HDR];
	if (s->length - *off < RUN_HDR)
		return tvm_seterr(err, "a memory section ends inside a run header (at byte %llu)",
				  (unsigned long long)*off);
	if (snap_read(rd, s, *off, h, RUN_HDR, err) < 0)
		return -1;
	memcpy(&run->gpa, h, 8);
	memcpy(&run->npages, h + 8, 4);
	memcpy(&run->flags, h + 12, 4);
	memcpy(&run->clen, h + 16, 4);
	memcpy(&run->crc, h + 20, 4);
	*off += RUN_HDR;
	if (run->npages == 0 || run->npages > RUN_MAX_PAGES || (run->gpa & (PAGE - 1)) || (run->flags & ~RUN_ZERO) ||
	    ((run->flags & RUN_ZERO) && (run->clen || run->crc)))
		return tvm_seterr(err, "a memory run at guest address 0x%llx has %u pages and flags 0x%x: not a run "
				       "this format writes", (unsigned long long)run->gpa, run->npages, run->flags);
	if (run->clen > s->length - *off)
		return tvm_seterr(err, "a memory run at guest address 0x%llx claims %u bytes past its section's end",
				  (unsigned long long)run->gpa, run->clen);
	run->data = *off;
	*off += run->clen;
	return 0;
}

/* A data run's pages into dst (npages * PAGE bytes), checked. */
static int inflate_run(struct snap_reader *rd, const struct snap_section *s, const struct run *run, uint8_t *dst,
		       ZSTD_DCtx *dc, struct membuf *cbuf, struct tvm_err *err)
{
	uint64_t raw = (uint64_t)run->npages * PAGE;
	cbuf->len = 0;
	if (membuf_reserve(cbuf, run->clen ? run->clen : 1) < 0)
		return tvm_seterr(err, "out of memory");
	if (snap_read(rd, s, run->data, cbuf->p, run->clen, err) < 0)
		return -1;
	size_t got = ZSTD_decompressDCtx(dc, dst, raw, cbuf->p, run->clen);
	if (ZSTD_isError(got) || got != raw)
		return tvm_seterr(err, "the memory run at guest address 0x%llx does not decompress to its %u pages%s%s",
				  (unsigned long long)run->gpa, run->npages, ZSTD_isError(got) ? ": " : "",
				  ZSTD_isError(got) ? ZSTD_getErrorName(got) : "");
	if ((uint32_t)crc32(0, dst, (uInt)raw) != run->crc)
		return tvm_seterr(err, "the memory run at guest address 0x%llx fails its checksum",
				  (unsigned long long)run->gpa);
	return 0;
}

static int load_memory(struct vm *vm, struct snap_reader *rd, const struct snap_section *s, ZSTD_DCtx *dc,
		       struct membuf *cbuf, struct tvm_err *err)
{
	for (uint64_t off = 0; off < s->length;) {
		struct run run;
		if (read_run(rd, s, &off, &run, err) < 0)
			return -1;
		uint64_t raw = (uint64_t)run.npages * PAGE;
		uint8_t *dst = gpa_ptr(vm, GPA(run.gpa), raw);
		if (!dst)
			return tvm_seterr(err, "a memory run covers guest addresses 0x%llx+%llu, which are not this VM's RAM",
					  (unsigned long long)run.gpa, (unsigned long long)raw);
		if (run.flags & RUN_ZERO)
			memset(dst, 0, raw);
		else if (inflate_run(rd, s, &run, dst, dc, cbuf, err) < 0)
			return -1;
	}
	return 0;
}

/* A disk section's name and size; *off moves past them. */
static int read_disk_prefix(struct snap_reader *rd, const struct snap_section *s, char name[TVM_DEVICE_NAME],
			    uint64_t *size, uint64_t *off, struct tvm_err *err)
{
	uint32_t n;
	if (s->length < 12 || snap_read(rd, s, 0, &n, 4, err) < 0)
		return s->length < 12 ? tvm_seterr(err, "a disk section is too short for its header") : -1;
	if (n == 0 || n >= TVM_DEVICE_NAME || s->length - 4 < (uint64_t)n + 8)
		return tvm_seterr(err, "a disk section names a device of %u bytes", n);
	if (snap_read(rd, s, 4, name, n, err) < 0 || snap_read(rd, s, 4 + n, size, 8, err) < 0)
		return -1;
	name[n] = 0;
	if (strlen(name) != n)
		return tvm_seterr(err, "a disk section's device name holds a NUL byte");
	*off = 4 + (uint64_t)n + 8;
	return 0;
}

/* A disk run must lie inside the disk (its last unit may pass the end by
 * less than a unit): the bytes of it inside the disk, or 0 when it does not. */
static uint64_t disk_run_bytes(uint64_t size, const struct run *run)
{
	uint64_t len = (uint64_t)run->npages * PAGE, end;
	if (add_overflows(run->gpa, len, &end) || run->gpa >= size)
		return 0;
	if (end <= size)
		return len;
	return end - size < PAGE ? size - run->gpa : 0; /* only the last unit's padding may pass the end */
}

static int load_disk(struct vm *vm, struct snap_reader *rd, const struct snap_section *s, ZSTD_DCtx *dc,
		     struct membuf *cbuf, uint8_t *units, struct tvm_err *err)
{
	char name[TVM_DEVICE_NAME];
	uint64_t size, off;
	if (read_disk_prefix(rd, s, name, &size, &off, err) < 0)
		return -1;
	const struct vm_dev_entry *d = NULL;
	for (int i = 0; i < vm->ndevices && !d; i++)
		if (!strcmp(vm->devices[i].name, name))
			d = &vm->devices[i];
	if (!d || !d->ops->bulk_load)
		return tvm_seterr(err, "the snapshot holds the contents of device %s, which this VM has not (it was taken "
				       "with other --disk options)", name);
	if (d->ops->bulk_size(d->dev) != size)
		return tvm_seterr(err, "the snapshot's %s holds %llu bytes, this VM's %llu", name,
				  (unsigned long long)size, (unsigned long long)d->ops->bulk_size(d->dev));
	while (off < s->length) {
		struct run run;
		if (read_run(rd, s, &off, &run, err) < 0)
			return -1;
		uint64_t n = disk_run_bytes(size, &run);
		if (!n)
			return tvm_seterr(err, "a run of %s at byte %llu lies outside the disk", name,
					  (unsigned long long)run.gpa);
		if (!(run.flags & RUN_ZERO) && inflate_run(rd, s, &run, units, dc, cbuf, err) < 0)
			return -1;
		char why[sizeof(err->msg)];
		if (d->ops->bulk_load(d->dev, run.gpa, (run.flags & RUN_ZERO) ? NULL : units, n, err) < 0) {
			memcpy(why, err->msg, sizeof(why));
			return tvm_seterr(err, "device %s: %.400s", name, why);
		}
	}
	return 0;
}

/* ------------------------------------------------------------ devices */

static struct vs_out *cap_add(struct snap_capture *c, uint32_t type, struct tvm_err *err)
{
	struct cap_sec *n = realloc(c->sec, (size_t)(c->nsec + 1) * sizeof(*n));
	if (!n) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	c->sec = n;
	c->sec[c->nsec] = (struct cap_sec){ .type = type };
	return &c->sec[c->nsec++].rec;
}

static int capture_devices(struct vm *vm, struct snap_capture *c, struct tvm_err *err)
{
	for (int i = 0; i < vm->ndevices; i++) {
		const struct vm_dev_entry *d = &vm->devices[i];
		struct vs_out st = { 0 }, *rec = cap_add(c, SNAP_SEC_DEVICE, err);
		char why[sizeof(err->msg)];
		if (!rec)
			return -1;
		if (d->ops->save(d->dev, &st, err) < 0) {
			memcpy(why, err->msg, sizeof(why));
			vs_out_free(&st);
			return tvm_seterr(err, "device %s: %.400s", d->name, why);
		}
		vs_put(rec, DEV_NAME, d->name, (uint32_t)strlen(d->name));
		vs_put_u16(rec, DEV_VERSION, d->ops->version);
		vs_put(rec, DEV_STATE, st.buf, (uint32_t)st.len);
		vs_out_free(&st);
		if (vs_out_error(rec, err) < 0)
			return -1;
	}
	return 0;
}

static int load_device(struct vm *vm, const struct vs_in *in, bool *seen, struct tvm_err *err)
{
	static const uint16_t known[] = { DEV_NAME, DEV_VERSION, DEV_STATE };
	const void *name, *state;
	uint32_t nlen, slen;
	uint16_t version;
	if (vs_check(in, known, 3, err) < 0 || vs_get_u16(in, DEV_VERSION, &version, "its version", err) < 0)
		return -1;
	if (!vs_find(in, DEV_NAME, &name, &nlen) || nlen == 0 || nlen >= TVM_DEVICE_NAME)
		return tvm_seterr(err, "a device section has no usable name");
	char nm[TVM_DEVICE_NAME];
	memcpy(nm, name, nlen);
	nm[nlen] = 0;
	for (uint32_t k = 0; k < nlen; k++)
		if (nm[k] < 0x21 || nm[k] > 0x7e)
			return tvm_seterr(err, "a device section's name is not printable");
	if (!vs_find(in, DEV_STATE, &state, &slen))
		return tvm_seterr(err, "device %s has no state in the snapshot", nm);
	for (int i = 0; i < vm->ndevices; i++) {
		const struct vm_dev_entry *d = &vm->devices[i];
		if (strcmp(d->name, nm))
			continue;
		if (seen[i])
			return tvm_seterr(err, "device %s appears twice in the snapshot", nm);
		seen[i] = true;
		if (version > d->ops->version)
			return tvm_seterr(err, "device %s: the snapshot holds state version %u; this trialvm reads up to %u",
					  nm, version, d->ops->version);
		char what[64];
		snprintf(what, sizeof(what), "device %s", nm);
		struct vs_in st = { .p = state, .len = slen, .what = what };
		char why[sizeof(err->msg)];
		if (vs_check(&st, NULL, 0, err) < 0 || d->ops->load(d->dev, &st, version, err) < 0) {
			memcpy(why, err->msg, sizeof(why));
			return tvm_seterr(err, "device %s: %.400s", nm, why);
		}
		return 0;
	}
	return tvm_seterr(err, "the snapshot has device %s, which this VM lacks (it was taken with other options: "
			       "disks, devices)", nm);
}

/* ------------------------------------------------------------ machine */

void snap_capture_free(struct snap_capture *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nsec; i++)
		vs_out_free(&c->sec[i].rec);
	free(c->sec);
	free(c->page);
	free(c->data);
	for (int i = 0; i < c->nbulk; i++) {
		free(c->bulk[i].off);
		free(c->bulk[i].data);
	}
	free(c);
}

uint64_t snap_capture_pages(const struct snap_capture *c) { return c ? c->npages : 0; }
uint64_t snap_capture_memory_ns(const struct snap_capture *c) { return c ? c->memory_ns : 0; }

struct snap_capture *vm_snapshot_capture(struct vm *vm, const uint64_t *const *dirty, struct tvm_err *err)
{
	struct snap_capture *c = calloc(1, sizeof(*c));
	if (!c) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	struct kvm_clock_data clk = { 0 };
	struct vs_out *o = cap_add(c, SNAP_SEC_MACHINE, err);
	if (!o)
		goto fail;
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0) {
		tvm_seterr(err, "KVM_GET_CLOCK failed: %s", strerror(errno));
		goto fail;
	}
	vs_put_u64(o, MA_RAM, vm->ram_size);
	vs_put_u32(o, MA_NCPUS, (uint32_t)vm->ncpus);
	vs_put_u64(o, MA_CLOCK, clk.clock);
	if (vs_out_error(o, err) < 0)
		goto fail;
	for (int i = 0; i < vm->ncpus; i++)
		if (!(o = cap_add(c, SNAP_SEC_VCPU, err)) || save_vcpu(vm, i, o, err) < 0)
			goto fail;
	if (!(o = cap_add(c, SNAP_SEC_IRQCHIP, err)) || save_irqchip(vm, o, err) < 0)
		goto fail;
	/* No snapshot holds trialvm's software breakpoints: a restore runs
	 * the guest's own code (with --crash-on it arms them again). */
	vm_clear_sw_breakpoints(vm);
	int rc = capture_devices(vm, c, err);
	uint64_t t0 = now_ns();
	if (rc == 0)
		rc = capture_memory(vm, dirty, c, err);
	if (rc == 0)
		rc = capture_bulk(vm, dirty != NULL, c, err);
	c->memory_ns = now_ns() - t0;
	vm_rearm_sw_breakpoints(vm);
	if (rc < 0)
		goto fail;
	return c;
fail:
	snap_capture_free(c);
	return NULL;
}

int snap_capture_write(const struct snap_capture *c, const char *path, struct snap_header *h,
		       const struct snap_extra *extra, int nextra, struct tvm_err *err)
{
	h->format_version = SNAP_FORMAT_VERSION;
	snprintf(h->trialvm_version, sizeof(h->trialvm_version), "%s", TRIALVM_VERSION);
	struct snap_writer *w;
	if (snap_create(path, h, &w, err) < 0)
		return -1;
	for (int i = 0; i < c->nsec; i++)
		if (snap_add(w, c->sec[i].type, 1, SNAP_SECTION_REQUIRED, c->sec[i].rec.buf, c->sec[i].rec.len, err) < 0)
			goto fail;
	if (write_memory(c, w, err) < 0)
		goto fail;
	if (c->nbulk) {
		ZSTD_CCtx *cc = ZSTD_createCCtx();
		int r = cc ? 0 : tvm_seterr(err, "out of memory (zstd)");
		for (int i = 0; r == 0 && i < c->nbulk; i++)
			r = write_bulk(&c->bulk[i], w, cc, err);
		ZSTD_freeCCtx(cc);
		if (r < 0)
			goto fail;
	}
	for (int i = 0; i < nextra; i++)
		if (snap_add(w, extra[i].type, extra[i].version, extra[i].flags, extra[i].data, extra[i].len, err) < 0)
			goto fail;
	return snap_commit(w, err);
fail:
	snap_abandon(w);
	return -1;
}

int vm_snapshot_save(struct vm *vm, const char *path, struct snap_header *h, const uint64_t *const *dirty,
		     const struct snap_extra *extra, int nextra, struct tvm_err *err)
{
	struct snap_capture *c = vm_snapshot_capture(vm, dirty, err);
	if (!c)
		return -1;
	int r = snap_capture_write(c, path, h, extra, nextra, err);
	snap_capture_free(c);
	return r;
}

/* A section's payload, whole, for a record (they are small: < 1 MiB). */
static int read_record(struct snap_reader *r, const struct snap_section *s, uint8_t **buf, struct vs_in *in,
		       const char *what, struct tvm_err *err)
{
	if (s->length > VS_MAX_RECORD)
		return tvm_seterr(err, "the %s section is %llu bytes: more than a state record may hold", what,
				  (unsigned long long)s->length);
	*buf = malloc(s->length ? s->length : 1);
	if (!*buf)
		return tvm_seterr(err, "out of memory");
	if (snap_read(r, s, 0, *buf, s->length, err) < 0) {
		free(*buf);
		*buf = NULL;
		return -1;
	}
	*in = (struct vs_in){ .p = *buf, .len = s->length, .what = what };
	return 0;
}

int snapshot_record(struct snap_reader *r, uint32_t type, uint8_t **buf, struct vs_in *in, const char *what,
		    struct tvm_err *err)
{
	struct snap_section s;
	bool found = false;
	snap_rewind(r);
	while (!found && snap_next(r, &s) == 1)
		found = s.type == type;
	snap_rewind(r);
	if (!found)
		return 0;
	return read_record(r, &s, buf, in, what, err) < 0 ? -1 : 1;
}

int vm_snapshot_config(struct snap_reader *r, struct vm_config *cfg, struct tvm_err *err)
{
	uint8_t *buf;
	struct vs_in in;
	int got = snapshot_record(r, SNAP_SEC_MACHINE, &buf, &in, "machine", err);
	if (got <= 0)
		return got < 0 ? -1 : tvm_seterr(err, "the snapshot has no machine section");
	static const uint16_t known[] = { MA_RAM, MA_NCPUS, MA_CLOCK };
	uint64_t ram;
	uint32_t n;
	int rc = vs_check(&in, known, 3, err);
	if (rc == 0)
		rc = vs_get_u64(&in, MA_RAM, &ram, "the memory size", err);
	if (rc == 0)
		rc = vs_get_u32(&in, MA_NCPUS, &n, "the vCPU count", err);
	free(buf);
	if (rc < 0)
		return -1;
	if (ram < TVM_MIN_RAM || ram > TVM_MAX_RAM || (ram & (PAGE - 1)))
		return tvm_seterr(err, "the snapshot's guest memory size %llu is not one trialvm supports",
				  (unsigned long long)ram);
	if (n < 1 || n > TVM_MAX_VCPUS)
		return tvm_seterr(err, "the snapshot has %u vCPUs; trialvm supports 1 to %d", n, TVM_MAX_VCPUS);
	*cfg = (struct vm_config){ .ram_size = ram, .ncpus = (int)n };
	return 0;
}

static bool id_zero(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

int snapshot_chain_check(struct snap_reader *const *chain, int n, struct tvm_err *err)
{
	for (int i = 0; i < n; i++) {
		const struct snap_header *h = snap_header_of(chain[i]);
		if (i == 0 && !id_zero(h->parent))
			return tvm_seterr(err, "the first snapshot of the chain is incremental (it has a parent)");
		if (i > 0 && memcmp(h->parent, snap_header_of(chain[i - 1])->id, 16))
			return tvm_seterr(err, "snapshot %d of the chain does not name snapshot %d as its parent", i, i - 1);
		for (int k = 0; k < i; k++)
			if (!memcmp(h->id, snap_header_of(chain[k])->id, 16))
				return tvm_seterr(err, "the snapshot chain has a cycle (an id appears twice)");
	}
	return 0;
}

int vm_snapshot_load(struct vm *vm, struct snap_reader *const *chain, int nchain, bool memory_mapped,
		     struct tvm_err *err)
{
	if (nchain < 1 || snapshot_chain_check(chain, nchain, err) < 0)
		return nchain < 1 ? tvm_seterr(err, "no snapshot") : -1;
	struct snap_reader *r = chain[nchain - 1];
	struct vm_config cfg;
	if (vm_snapshot_config(r, &cfg, err) < 0)
		return -1;
	if (cfg.ram_size != vm->ram_size || cfg.ncpus != vm->ncpus)
		return tvm_seterr(err, "the snapshot is of a VM with %llu MiB and %d vCPUs; this one has %llu MiB and %d",
				  (unsigned long long)(cfg.ram_size >> 20), cfg.ncpus,
				  (unsigned long long)(vm->ram_size >> 20), vm->ncpus);
	bool cpu_seen[TVM_MAX_VCPUS] = { 0 }, dev_seen[TVM_MAX_DEVICES] = { 0 };
	bool irq_seen = false;
	uint8_t *units = NULL; /* one disk run */
	uint64_t clock = 0;
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct membuf cbuf = { 0 };
	if (!dc)
		return tvm_seterr(err, "out of memory (zstd)");
	int rc = 0;
	struct snap_section s;
	/* Memory first, oldest snapshot first: devices check their rings
	 * against it. */
	for (int i = 0; rc == 0 && i < nchain; i++) {
		struct vm_config c;
		if ((rc = vm_snapshot_config(chain[i], &c, err)) < 0)
			break;
		if (c.ram_size != cfg.ram_size || c.ncpus != cfg.ncpus) {
			rc = tvm_seterr(err, "the snapshots of the chain are of different machines");
			break;
		}
		snap_rewind(chain[i]);
		while (rc == 0 && snap_next(chain[i], &s) == 1) {
			if (s.type == SNAP_SEC_MEMORY && !memory_mapped)
				rc = load_memory(vm, chain[i], &s, dc, &cbuf, err);
			else if (s.type == SNAP_SEC_DISK)
				rc = !units && !(units = malloc((size_t)RUN_MAX_PAGES * PAGE)) ? tvm_seterr(err, "out of memory")
						: load_disk(vm, chain[i], &s, dc, &cbuf, units, err);
		}
	}
	snap_rewind(r);
	while (rc == 0 && snap_next(r, &s) == 1) {
		uint8_t *buf = NULL;
		struct vs_in in;
		switch (s.type) {
		case SNAP_SEC_MACHINE: {
			if ((rc = read_record(r, &s, &buf, &in, "machine", err)) == 0)
				rc = vs_get_u64(&in, MA_CLOCK, &clock, "the KVM clock", err);
			break;
		}
		case SNAP_SEC_VCPU: {
			if ((rc = read_record(r, &s, &buf, &in, "vcpu", err)) < 0)
				break;
			uint32_t idx;
			if ((rc = vs_get_u32(&in, CPU_INDEX, &idx, "its index", err)) < 0)
				break;
			if (idx >= (uint32_t)vm->ncpus) {
				rc = tvm_seterr(err, "a vCPU section names vCPU %u; the machine has %d", idx, vm->ncpus);
				break;
			}
			if (cpu_seen[idx]) {
				rc = tvm_seterr(err, "vCPU %u appears twice in the snapshot", idx);
				break;
			}
			cpu_seen[idx] = true;
			rc = load_vcpu(vm, &in, err);
			break;
		}
		case SNAP_SEC_IRQCHIP:
			if (irq_seen) {
				rc = tvm_seterr(err, "the snapshot has two irqchip sections");
				break;
			}
			irq_seen = true;
			if ((rc = read_record(r, &s, &buf, &in, "irqchip", err)) == 0)
				rc = load_irqchip(vm, &in, err);
			break;
		case SNAP_SEC_DEVICE:
			if ((rc = read_record(r, &s, &buf, &in, "device", err)) == 0)
				rc = load_device(vm, &in, dev_seen, err);
			break;
		default:
			break;
		}
		free(buf);
	}
	free(cbuf.p);
	free(units);
	ZSTD_freeDCtx(dc);
	if (rc < 0)
		return -1;
	for (int i = 0; i < vm->ncpus; i++)
		if (!cpu_seen[i])
			return tvm_seterr(err, "the snapshot lacks the state of vCPU %d", i);
	if (!irq_seen)
		return tvm_seterr(err, "the snapshot lacks the irqchip state");
	for (int i = 0; i < vm->ndevices; i++)
		if (!dev_seen[i])
			return tvm_seterr(err, "the snapshot has no state for device %s (it was taken with other options)",
					  vm->devices[i].name);
	struct kvm_clock_data clk = { .clock = clock };
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0)
		return tvm_seterr(err, "KVM_SET_CLOCK failed: %s", strerror(errno));
	return 0;
}

/* ------------------------------------------------------------- merging */

/* The index of guest page gpa in a machine of `ram` bytes (vm.h's layout:
 * RAM from 0 up to the MMIO hole, the rest from 4 GiB), with npages pages
 * all RAM; -1 otherwise. */
static int64_t page_index(uint64_t ram, uint64_t gpa, uint64_t npages)
{
	uint64_t low = ram < TVM_MMIO_HOLE_START ? ram : TVM_MMIO_HOLE_START, len = npages * PAGE, end;
	if (add_overflows(gpa, len, &end))
		return -1;
	if (end <= low)
		return (int64_t)(gpa / PAGE);
	if (gpa >= TVM_4G && end - TVM_4G <= ram - low)
		return (int64_t)((low + gpa - TVM_4G) / PAGE);
	return -1;
}

struct merge {
	struct snap_writer *w;
	struct membuf out, cbuf;
	uint8_t *pages;          /* one run's pages, RUN_MAX_PAGES */
	ZSTD_CCtx *cc;
	ZSTD_DCtx *dc;
	uint64_t *covered;       /* pages the newer snapshot holds */
	uint64_t ram;
};

static int merge_flush(struct merge *m, bool force, struct tvm_err *err)
{
	if (!m->out.len || (!force && m->out.len < MEM_SECTION_SPAN))
		return 0;
	int r = snap_add(m->w, SNAP_SEC_MEMORY, 1, SNAP_SECTION_REQUIRED, m->out.p, m->out.len, err);
	m->out.len = 0;
	return r;
}

/* The run at *off, and the index of its first page in the machine. */
static int merge_run(const struct merge *m, struct snap_reader *r, const struct snap_section *s, uint64_t *off,
		     struct run *run, int64_t *first, struct tvm_err *err)
{
	if (read_run(r, s, off, run, err) < 0)
		return -1;
	if ((*first = page_index(m->ram, run->gpa, run->npages)) < 0)
		return tvm_seterr(err, "a memory run at guest address 0x%llx lies outside the machine's RAM",
				  (unsigned long long)run->gpa);
	return 0;
}

/* The older snapshot's data runs, less the pages the newer one holds. */
static int merge_older(struct merge *m, struct snap_reader *r, const struct snap_section *s, struct tvm_err *err)
{
	for (uint64_t off = 0; off < s->length;) {
		struct run run;
		int64_t first;
		if (merge_run(m, r, s, &off, &run, &first, err) < 0)
			return -1;
		if (run.flags & RUN_ZERO)
			continue;
		if (inflate_run(r, s, &run, m->pages, m->dc, &m->cbuf, err) < 0)
			return -1;
		for (uint32_t i = 0; i < run.npages;) {
			if (bit(m->covered, (uint64_t)first + i) || page_is_zero(m->pages + (size_t)i * PAGE)) {
				i++;
				continue;
			}
			uint32_t n = 0;
			while (i + n < run.npages && !bit(m->covered, (uint64_t)first + i + n) &&
			       !page_is_zero(m->pages + (size_t)(i + n) * PAGE))
				n++;
			if (put_run(&m->out, m->cc, run.gpa + (uint64_t)i * PAGE, m->pages + (size_t)i * PAGE, n, false,
				    err) < 0 || merge_flush(m, false, err) < 0)
				return -1;
			i += n;
		}
	}
	return 0;
}

/* The newer snapshot's runs: data runs copied as they are, zero runs
 * dropped (a full snapshot stores no zero pages). pass 0 only marks. */
static int merge_newer(struct merge *m, struct snap_reader *r, const struct snap_section *s, int pass,
		       struct tvm_err *err)
{
	for (uint64_t off = 0; off < s->length;) {
		struct run run;
		int64_t first;
		if (merge_run(m, r, s, &off, &run, &first, err) < 0)
			return -1;
		if (pass == 0) {
			for (uint32_t i = 0; i < run.npages; i++)
				m->covered[((uint64_t)first + i) / 64] |= 1ull << (((uint64_t)first + i) % 64);
			continue;
		}
		if (run.flags & RUN_ZERO)
			continue;
		if (membuf_reserve(&m->out, RUN_HDR + run.clen) < 0)
			return tvm_seterr(err, "out of memory");
		if (snap_read(r, s, run.data - RUN_HDR, m->out.p + m->out.len, RUN_HDR + run.clen, err) < 0)
			return -1;
		m->out.len += RUN_HDR + run.clen;
		if (merge_flush(m, false, err) < 0)
			return -1;
	}
	return 0;
}

/* Disk sections of a merge: one disk's output, each section starting with
 * its name and size (disk_prefix); written when about MEM_SECTION_SPAN. */
struct disk_out { struct membuf b; size_t base; const char *name; uint64_t size; };

static int disk_out_flush(struct merge *m, struct disk_out *o, bool force, struct tvm_err *err)
{
	if (o->b.len <= o->base || (!force && o->b.len < MEM_SECTION_SPAN))
		return 0;
	int r = snap_add(m->w, SNAP_SEC_DISK, 1, SNAP_SECTION_REQUIRED, o->b.p, o->b.len, err);
	o->b.len = 0;
	if (r == 0 && disk_prefix(&o->b, o->name, o->size) < 0)
		r = tvm_seterr(err, "out of memory");
	o->base = o->b.len;
	return r;
}

/* Each run of disk `name`'s sections in r: fn(m, o, r, s, run, first unit). */
typedef int (*disk_run_fn)(struct merge *m, struct disk_out *o, struct snap_reader *r, const struct snap_section *s,
			   const struct run *run, uint64_t first, struct tvm_err *err);
static int each_disk_run(struct merge *m, struct disk_out *o, struct snap_reader *r, disk_run_fn fn, struct tvm_err *err)
{
	struct snap_section s;
	snap_rewind(r);
	while (snap_next(r, &s) == 1) {
		char name[TVM_DEVICE_NAME];
		uint64_t size, off;
		if (s.type != SNAP_SEC_DISK)
			continue;
		if (read_disk_prefix(r, &s, name, &size, &off, err) < 0)
			return -1;
		if (strcmp(name, o->name))
			continue;
		while (off < s.length) {
			struct run run;
			if (read_run(r, &s, &off, &run, err) < 0)
				return -1;
			if (!disk_run_bytes(o->size, &run))
				return tvm_seterr(err, "a run of %s at byte %llu lies outside the disk", name,
						  (unsigned long long)run.gpa);
			if (fn(m, o, r, &s, &run, run.gpa / PAGE, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int disk_mark(struct merge *m, struct disk_out *o, struct snap_reader *r, const struct snap_section *s,
		     const struct run *run, uint64_t first, struct tvm_err *err)
{
	(void)o, (void)r, (void)s, (void)err;
	for (uint32_t i = 0; i < run->npages; i++)
		m->covered[(first + i) / 64] |= 1ull << ((first + i) % 64);
	return 0;
}

/* The older snapshot's units the newer one does not hold, zero ones too. */
static int disk_older(struct merge *m, struct disk_out *o, struct snap_reader *r, const struct snap_section *s,
		      const struct run *run, uint64_t first, struct tvm_err *err)
{
	bool zero = run->flags & RUN_ZERO;
	if (!zero && inflate_run(r, s, run, m->pages, m->dc, &m->cbuf, err) < 0)
		return -1;
	for (uint32_t i = 0; i < run->npages;) {
		if (bit(m->covered, first + i)) {
			i++;
			continue;
		}
		uint32_t n = 1;
		while (i + n < run->npages && !bit(m->covered, first + i + n))
			n++;
		if (put_run(&o->b, m->cc, run->gpa + (uint64_t)i * PAGE, zero ? NULL : m->pages + (size_t)i * PAGE, n, zero,
			    err) < 0 || disk_out_flush(m, o, false, err) < 0)
			return -1;
		i += n;
	}
	return 0;
}

/* The newer snapshot's runs, as they are. */
static int disk_newer(struct merge *m, struct disk_out *o, struct snap_reader *r, const struct snap_section *s,
		      const struct run *run, uint64_t first, struct tvm_err *err)
{
	(void)first;
	if (membuf_reserve(&o->b, RUN_HDR + run->clen) < 0)
		return tvm_seterr(err, "out of memory");
	if (snap_read(r, s, run->data - RUN_HDR, o->b.p + o->b.len, RUN_HDR + run->clen, err) < 0)
		return -1;
	o->b.len += RUN_HDR + run->clen;
	return disk_out_flush(m, o, false, err);
}

/* Every disk of either snapshot, merged: what the newer one holds, and
 * what only the older one holds. */
static int merge_disks(struct merge *m, struct snap_reader *ro, struct snap_reader *rn, struct tvm_err *err)
{
	char names[TVM_MAX_DEVICES][TVM_DEVICE_NAME];
	uint64_t sizes[TVM_MAX_DEVICES];
	int nd = 0;
	struct snap_reader *both[2] = { ro, rn };
	for (int k = 0; k < 2; k++) {
		struct snap_section s;
		snap_rewind(both[k]);
		while (snap_next(both[k], &s) == 1) {
			char name[TVM_DEVICE_NAME];
			uint64_t size, off;
			if (s.type != SNAP_SEC_DISK)
				continue;
			if (read_disk_prefix(both[k], &s, name, &size, &off, err) < 0)
				return -1;
			int j = 0;
			while (j < nd && strcmp(names[j], name))
				j++;
			if (j < nd && sizes[j] != size)
				return tvm_seterr(err, "the two snapshots hold %s at different sizes", name);
			if (j == nd) {
				if (nd == TVM_MAX_DEVICES)
					return tvm_seterr(err, "more than %d disks", TVM_MAX_DEVICES);
				snprintf(names[nd], sizeof(names[nd]), "%s", name);
				sizes[nd++] = size;
			}
		}
	}
	int rc = 0;
	for (int j = 0; rc == 0 && j < nd; j++) {
		struct disk_out o = { .name = names[j], .size = sizes[j] };
		uint64_t words = (sizes[j] / PAGE + 1 + 63) / 64;
		free(m->covered);
		if (!(m->covered = calloc(words, 8)) || disk_prefix(&o.b, o.name, o.size) < 0) {
			free(o.b.p);
			return tvm_seterr(err, "out of memory");
		}
		o.base = o.b.len;
		if (each_disk_run(m, &o, rn, disk_mark, err) < 0 || each_disk_run(m, &o, ro, disk_older, err) < 0 ||
		    each_disk_run(m, &o, rn, disk_newer, err) < 0 || disk_out_flush(m, &o, true, err) < 0)
			rc = -1;
		free(o.b.p);
	}
	return rc;
}

int snapshot_merge(const char *older, const char *newer, struct tvm_err *err)
{
	struct snap_reader *ro = NULL, *rn = NULL;
	struct merge m = { 0 };
	int rc = -1;
	if (snap_open(older, snapshot_known, snapshot_nknown, &ro, err) < 0 ||
	    snap_open(newer, snapshot_known, snapshot_nknown, &rn, err) < 0)
		goto out;
	struct snap_reader *chain[2] = { ro, rn };
	struct vm_config co, cn;
	if (snapshot_chain_check(chain, 2, err) < 0 || vm_snapshot_config(ro, &co, err) < 0 ||
	    vm_snapshot_config(rn, &cn, err) < 0)
		goto out;
	if (co.ram_size != cn.ram_size) {
		tvm_seterr(err, "%s and %s are of machines of different sizes", older, newer);
		goto out;
	}
	m.ram = cn.ram_size;
	m.covered = calloc((m.ram / PAGE + 63) / 64, 8);
	m.pages = malloc((size_t)RUN_MAX_PAGES * PAGE);
	m.cc = ZSTD_createCCtx();
	m.dc = ZSTD_createDCtx();
	if (!m.covered || !m.pages || !m.cc || !m.dc) {
		tvm_seterr(err, "out of memory");
		goto out;
	}
	struct snap_section s;
	snap_rewind(rn);
	while (snap_next(rn, &s) == 1)
		if (s.type == SNAP_SEC_MEMORY && merge_newer(&m, rn, &s, 0, err) < 0)
			goto out;
	struct snap_header h = *snap_header_of(rn);
	memset(h.parent, 0, sizeof(h.parent));
	if (snap_create(newer, &h, &m.w, err) < 0)
		goto out;
	/* Every section of the newer one but its memory, its disks and its
	 * parent's name. */
	snap_rewind(rn);
	while (snap_next(rn, &s) == 1) {
		if (s.type == SNAP_SEC_MEMORY || s.type == SNAP_SEC_PARENT || s.type == SNAP_SEC_DISK)
			continue;
		uint8_t *buf;
		struct vs_in in;
		int r = read_record(rn, &s, &buf, &in, "copied", err);
		if (r == 0)
			r = snap_add(m.w, s.type, s.version, s.flags, buf, s.length, err);
		free(buf);
		if (r < 0)
			goto fail;
	}
	snap_rewind(ro);
	while (snap_next(ro, &s) == 1)
		if (s.type == SNAP_SEC_MEMORY && merge_older(&m, ro, &s, err) < 0)
			goto fail;
	snap_rewind(rn);
	while (snap_next(rn, &s) == 1)
		if (s.type == SNAP_SEC_MEMORY && merge_newer(&m, rn, &s, 1, err) < 0)
			goto fail;
	if (merge_flush(&m, true, err) < 0 || merge_disks(&m, ro, rn, err) < 0)
		goto fail;
	rc = snap_commit(m.w, err);
	m.w = NULL;
	goto out;
fail:
	snap_abandon(m.w);
out:
	snap_close(ro);
	snap_close(rn);
	free(m.out.p);
	free(m.cbuf.p);
	free(m.pages);
	free(m.covered);
	ZSTD_freeCCtx(m.cc);
	ZSTD_freeDCtx(m.dc);
	return rc;
}

/* ---------------------------------------------------------- materialise */

int snapshot_materialize(struct snap_reader *const *chain, int n, const char *path, struct tvm_err *err)
{
	struct vm_config cfg;
	if (n < 1 || snapshot_chain_check(chain, n, err) < 0 || vm_snapshot_config(chain[n - 1], &cfg, err) < 0)
		return n < 1 ? tvm_seterr(err, "no snapshot") : -1;
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 8);
	uint8_t *pages = malloc((size_t)RUN_MAX_PAGES * PAGE);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct membuf cbuf = { 0 };
	int fd = -1, rc = -1;
	if (!tmp || !pages || !dc) {
		tvm_seterr(err, "out of memory");
		goto out;
	}
	snprintf(tmp, plen + 8, "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		tvm_seterr(err, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (ftruncate(fd, (off_t)cfg.ram_size) < 0) {
		tvm_seterr(err, "cannot size %s: %s", tmp, strerror(errno));
		goto fail;
	}
	static const uint8_t zero[RUN_MAX_PAGES * PAGE];
	for (int i = 0; i < n; i++) {
		struct vm_config c;
		if (vm_snapshot_config(chain[i], &c, err) < 0)
			goto fail;
		if (c.ram_size != cfg.ram_size) {
			tvm_seterr(err, "the snapshots of the chain are of different machines");
			goto fail;
		}
		struct snap_section s;
		snap_rewind(chain[i]);
		while (snap_next(chain[i], &s) == 1) {
			if (s.type != SNAP_SEC_MEMORY)
				continue;
			for (uint64_t off = 0; off < s.length;) {
				struct run run;
				if (read_run(chain[i], &s, &off, &run, err) < 0)
					goto fail;
				int64_t first = page_index(cfg.ram_size, run.gpa, run.npages);
				if (first < 0) {
					tvm_seterr(err, "a memory run at guest address 0x%llx lies outside the machine's RAM",
						   (unsigned long long)run.gpa);
					goto fail;
				}
				const uint8_t *src = zero;
				if (!(run.flags & RUN_ZERO)) {
					if (inflate_run(chain[i], &s, &run, pages, dc, &cbuf, err) < 0)
						goto fail;
					src = pages;
				}
				int r = pwrite_all(fd, src, (size_t)run.npages * PAGE, (uint64_t)first * PAGE);
				if (r < 0) {
					tvm_seterr(err, "cannot write %s: %s", tmp, strerror(-r));
					goto fail;
				}
			}
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		tvm_seterr(err, "cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		tvm_seterr(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto fail;
	}
	fsync_parent(path);
	rc = 0;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
out:
	free(tmp);
	free(pages);
	free(cbuf.p);
	ZSTD_freeDCtx(dc);
	return rc;
}

/* ------------------------------------------- memory runs, one at a time */

int snapshot_runs_prefix(struct snap_reader *r, const struct snap_section *s, uint64_t *len, struct tvm_err *err)
{
	char name[TVM_DEVICE_NAME];
	uint64_t size;
	*len = 0;
	if (s->type == SNAP_SEC_MEMORY)
		return 0;
	if (s->type != SNAP_SEC_DISK)
		return tvm_seterr(err, "a section of type %u holds no runs", s->type);
	return read_disk_prefix(r, s, name, &size, len, err);
}

int snapshot_memory_runs(struct snap_reader *r, const struct snap_section *s, snapshot_run_fn fn, void *arg,
			 struct tvm_err *err)
{
	uint64_t start;
	if (snapshot_runs_prefix(r, s, &start, err) < 0)
		return -1;
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	uint8_t *pages = malloc((size_t)RUN_MAX_PAGES * PAGE);
	struct membuf cbuf = { 0 };
	int rc = dc && pages ? 0 : tvm_seterr(err, "out of memory");
	for (uint64_t off = start; rc == 0 && off < s->length;) {
		struct run run;
		if ((rc = read_run(r, s, &off, &run, err)) < 0)
			break;
		bool zero = run.flags & RUN_ZERO;
		if (!zero && (rc = inflate_run(r, s, &run, pages, dc, &cbuf, err)) < 0)
			break;
		struct snap_run sr = { run.gpa, run.npages, run.flags, run.clen, run.crc };
		rc = fn(arg, &sr, zero ? NULL : pages, err);
	}
	free(pages);
	free(cbuf.p);
	ZSTD_freeDCtx(dc);
	return rc;
}

struct snap_memsec {
	struct membuf b;
	ZSTD_CCtx *cc;
};

struct snap_memsec *snap_memsec_new(void)
{
	struct snap_memsec *m = calloc(1, sizeof(*m));
	if (m && !(m->cc = ZSTD_createCCtx())) {
		free(m);
		m = NULL;
	}
	return m;
}

int snap_memsec_add(struct snap_memsec *m, const struct snap_run *want, const uint8_t *pages, struct tvm_err *err)
{
	bool zero = want->flags & RUN_ZERO;
	if (want->npages == 0 || want->npages > RUN_MAX_PAGES || (want->gpa & (PAGE - 1)) || (want->flags & ~RUN_ZERO) ||
	    (!zero && !pages))
		return tvm_seterr(err, "a memory run at guest address 0x%llx of %u pages, flags 0x%x: not a run this "
				       "format writes", (unsigned long long)want->gpa, want->npages, want->flags);
	size_t at = m->b.len;
	if (put_run(&m->b, m->cc, want->gpa, pages, want->npages, zero, err) < 0)
		return -1;
	uint32_t clen = le_get32(m->b.p + at + 16), crc = le_get32(m->b.p + at + 20);
	if (clen != want->clen || crc != want->crc)
		return tvm_seterr(err, "the memory run at guest address 0x%llx (%u pages) comes out as %u bytes with "
				       "CRC-32 %08x where the snapshot had %u bytes with CRC-32 %08x%s",
				  (unsigned long long)want->gpa, want->npages, clen, crc, want->clen, want->crc,
				  crc == want->crc ? " (the same pages: another zstd version compresses them differently)"
						   : " (other pages)");
	return 0;
}

int snap_memsec_prefix(struct snap_memsec *m, const void *p, size_t len)
{
	if (!len)
		return 0;
	if (membuf_reserve(&m->b, len) < 0)
		return -1;
	memcpy(m->b.p + m->b.len, p, len);
	m->b.len += len;
	return 0;
}

int snap_memsec_write(struct snap_memsec *m, struct snap_writer *w, uint32_t type, uint16_t version, uint16_t flags,
		      struct tvm_err *err)
{
	int r = snap_add(w, type, version, flags, m->b.p, m->b.len, err);
	m->b.len = 0;
	return r;
}

void snap_memsec_free(struct snap_memsec *m)
{
	if (!m)
		return;
	free(m->b.p);
	ZSTD_freeCCtx(m->cc);
	free(m);
}

/* ------------------------------------------------------------ chains */

int snapshot_open_chain(const char *path, struct snap_reader ***chain, char ***paths, int *nout,
			struct tvm_err *err)
{
	struct snap_reader **rev = calloc(SNAP_MAX_CHAIN, sizeof(*rev));
	char **names = calloc(SNAP_MAX_CHAIN, sizeof(*names));
	char *dir = strdup(path);
	if (!rev || !names || !dir) {
		free(rev);
		free(names);
		free(dir);
		return tvm_seterr(err, "out of memory");
	}
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[1] = 0;
	else
		dir[0] = 0;
	int n = 0, rc = 0;
	if (snap_open(path, snapshot_known, snapshot_nknown, &rev[0], err) < 0 || !(names[0] = strdup(path))) {
		rc = rev[0] ? tvm_seterr(err, "out of memory") : -1;
	} else {
		n = 1;
	}
	while (rc == 0) {
		const struct snap_header *h = snap_header_of(rev[n - 1]);
		if (id_zero(h->parent))
			break;
		if (n == SNAP_MAX_CHAIN) {
			rc = tvm_seterr(err, "the snapshot chain is longer than %d (a cycle?)", SNAP_MAX_CHAIN);
			break;
		}
		uint8_t *name = NULL;
		struct vs_in pin;
		int got = snapshot_record(rev[n - 1], SNAP_SEC_PARENT, &name, &pin, "the parent", err);
		size_t len = got > 0 ? pin.len : 0;
		if (got <= 0 || len == 0 || len > 255 || memchr(name, '/', len) || memchr(name, 0, len)) {
			free(name);
			rc = got < 0 ? -1 : tvm_seterr(err, "an incremental snapshot does not name its parent's file");
			break;
		}
		size_t pl = strlen(dir) + len + 1;
		char *p = malloc(pl);
		if (!p) {
			free(name);
			rc = tvm_seterr(err, "out of memory");
			break;
		}
		snprintf(p, pl, "%s%.*s", dir, (int)len, (const char *)name);
		free(name);
		if (snap_open(p, snapshot_known, snapshot_nknown, &rev[n], err) < 0) {
			char why[sizeof(err->msg)];
			memcpy(why, err->msg, sizeof(why));
			free(p);
			rc = tvm_seterr(err, "its parent: %.400s", why);
			break;
		}
		names[n] = p;
		if (memcmp(snap_header_of(rev[n])->id, h->parent, 16)) {
			rc = tvm_seterr(err, "its parent file %s is another snapshot (its id is not the one named)", p);
			n++;
			break;
		}
		n++;
	}
	free(dir);
	struct snap_reader **c = rc == 0 ? calloc((size_t)n, sizeof(*c)) : NULL;
	char **pn = rc == 0 && paths ? calloc((size_t)n, sizeof(*pn)) : NULL;
	if (rc == 0 && (!c || (paths && !pn)))
		rc = tvm_seterr(err, "out of memory");
	if (rc == 0) {
		for (int i = 0; i < n; i++) {
			c[i] = rev[n - 1 - i];
			if (pn)
				pn[i] = names[n - 1 - i];
			else
				free(names[n - 1 - i]);
		}
		rc = snapshot_chain_check(c, n, err);
		if (rc < 0) {
			for (int i = 0; i < n; i++) {
				snap_close(c[i]);
				if (pn)
					free(pn[i]);
			}
		}
	} else {
		for (int i = 0; i < n; i++) {
			snap_close(rev[i]);
			free(names[i]);
		}
	}
	free(rev);
	free(names);
	if (rc < 0) {
		free(c);
		free(pn);
		return -1;
	}
	*chain = c;
	if (paths)
		*paths = pn;
	*nout = n;
	return 0;
}
