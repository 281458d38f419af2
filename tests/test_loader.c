/* tests/test_loader.c - unit tests for vmm/loader.c, linux.c, mptable.c, acpi.c.
 *
 * No KVM needed: this file includes tests/fake_vm.c, whose gpa_ptr/vm_e820/...
 * stand in for vmm/vm.c, so linking against build/libtrialvm.a pulls only
 * loader.o, linux.o, mptable.o, acpi.o and util.o from it (-lelf -lz -llzma -lzstd -llz4).
 * Usage: test_loader [DEBIAN_VMLINUZ [TRIALOS_ELF]]
 *   defaults: $TVM_DEBIAN_KERNEL or build/images/debian/vmlinuz (fetch it with
 *   images/fetch-debian-kernel.sh build/images/debian), $TVM_TRIALOS or
 *   build/guests/trialos.elf; checks that need a missing file are skipped.
 * Prints "ok NAME" or "FAIL NAME: why" per check; exits 1 on any failure. */
#include <elf.h>
#include <errno.h>
#include <lz4.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/acpi.h"
#include "../vmm/loader.h"
#include "../vmm/vm.h"
#include "check.h"
#include "fake_vm.h"
#include "fake_vm.c" /* see above */

#define MiB (1ull << 20)

static bool verbose, quiet_load;
static char tmpdir[] = "/tmp/tvm-loader-test.XXXXXX";

static uint16_t le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static const char *write_tmp(const char *name, const void *data, size_t len)
{
	static char paths[64][256];
	static int next;
	char *p = paths[next++ % 64];
	snprintf(p, 256, "%s/%s", tmpdir, name);
	FILE *f = fopen(p, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", p);
		exit(2);
	}
	return p;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(b);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* ---- synthetic ELF images ---- */

struct seg {
	uint32_t type;
	uint64_t paddr, vaddr;
	const void *data;
	uint64_t filesz, memsz, align;
	uint64_t offset_override; /* nonzero: lie about p_offset */
};

static size_t mk_note(uint8_t *out, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	size_t n = 0;
	put32(out, namesz);
	put32(out + 4, descsz);
	put32(out + 8, type);
	n = 12;
	memset(out + n, 0, (namesz + 3) & ~3u);
	memcpy(out + n, name, namesz);
	n += (namesz + 3) & ~3u;
	memset(out + n, 0, (descsz + 3) & ~3u);
	memcpy(out + n, desc, descsz);
	n += (descsz + 3) & ~3u;
	return n;
}

static uint8_t *mk_elf(uint16_t machine, uint16_t etype, uint64_t entry, const struct seg *s, int n, size_t *len)
{
	size_t off = 64 + 56 * (size_t)n, total = off;
	for (int i = 0; i < n; i++)
		total = ((total + 15) & ~(size_t)15) + s[i].filesz;
	uint8_t *b = calloc(1, total + 16);
	memcpy(b, ELFMAG, SELFMAG);
	b[EI_CLASS] = ELFCLASS64;
	b[EI_DATA] = ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	put16(b + 16, etype);
	put16(b + 18, machine);
	put32(b + 20, EV_CURRENT);
	put64(b + 24, entry);
	put64(b + 32, 64);     /* phoff */
	put16(b + 52, 64);     /* ehsize */
	put16(b + 54, 56);     /* phentsize */
	put16(b + 56, (uint16_t)n);
	put16(b + 58, 64);     /* shentsize */
	for (int i = 0; i < n; i++) {
		off = (off + 15) & ~(size_t)15;
		uint8_t *ph = b + 64 + 56 * i;
		put32(ph, s[i].type);
		put32(ph + 4, 7);
		put64(ph + 8, s[i].offset_override ? s[i].offset_override : off);
		put64(ph + 16, s[i].vaddr);
		put64(ph + 24, s[i].paddr);
		put64(ph + 32, s[i].filesz);
		put64(ph + 40, s[i].memsz);
		put64(ph + 48, s[i].align);
		if (s[i].data)
			memcpy(b + off, s[i].data, s[i].filesz);
		off += s[i].filesz;
	}
	*len = off;
	return b;
}

#define PVH_BASE 0x100000ull
#define PVH_ENTRY (PVH_BASE + 0x40)

static uint8_t *mk_pvh(size_t *len, uint32_t descsz, uint64_t load_at, uint64_t memsz)
{
	static uint8_t text[0x3000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)(i * 7 + 1);
	uint8_t note[64];
	uint64_t ent = PVH_ENTRY;
	size_t nl = mk_note(note, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &ent, descsz);
	struct seg s[2] = {
		{ PT_LOAD, load_at, load_at, text, sizeof(text), memsz, 0x1000, 0 },
		{ PT_NOTE, 0, 0, note, nl, 0, 4, 0 },
	};
	return mk_elf(EM_X86_64, ET_EXEC, PVH_ENTRY, s, 2, len);
}

#define LNX_PHYS 0x1000000ull
#define LNX_VIRT 0xffffffff81000000ull

static uint8_t *mk_vmlinux(size_t *len, size_t textsz)
{
	uint8_t *text = malloc(textsz);
	for (size_t i = 0; i < textsz; i++)
		text[i] = (uint8_t)((i * 13) ^ (i >> 9)); /* compressible but not trivially */
	uint8_t note[64];
	uint32_t ver = 0x60100;
	size_t nl = mk_note(note, "Linux", 0x100, &ver, 4);
	struct seg s[2] = {
		{ PT_LOAD, LNX_PHYS, LNX_VIRT, text, textsz, textsz + 0x5000, 0x200000, 0 },
		{ PT_NOTE, 0, 0, note, nl, 0, 4, 0 },
	};
	uint8_t *r = mk_elf(EM_X86_64, ET_EXEC, LNX_PHYS + 0x10, s, 2, len);
	free(text);
	return r;
}

/* ---- synthetic bzImages ---- */

#define BZ_SETUP_SECTS 4
#define BZ_PM_OFF ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD_REL 0x100

static uint8_t *mk_bz(const uint8_t *payload, size_t plen, uint16_t version, size_t *len)
{
	size_t pm_len = BZ_PAYLOAD_REL + plen + 0x40;
	size_t total = BZ_PM_OFF + pm_len;
	uint8_t *b = calloc(1, total);
	b[0x1f1] = BZ_SETUP_SECTS;
	put32(b + 0x1f4, (uint32_t)((pm_len + 15) / 16));
	put16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = 0x6a;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, version);
	b[0x211] = 0x01;
	put32(b + 0x22c, 0x7fffffff);
	put32(b + 0x230, 0x200000);
	b[0x234] = 1;
	put16(b + 0x236, 0x1 | 0x2);
	put32(b + 0x238, 2047);
	put32(b + 0x248, BZ_PAYLOAD_REL);
	put32(b + 0x24c, (uint32_t)plen);
	put64(b + 0x258, 0x1000000);
	put32(b + 0x260, 0x800000);
	memset(b + BZ_PM_OFF, 0x90, BZ_PAYLOAD_REL);
	memcpy(b + BZ_PM_OFF + BZ_PAYLOAD_REL, payload, plen);
	*len = total;
	return b;
}

static uint8_t *append_size(uint8_t *c, size_t *clen, size_t rawlen)
{
	c = realloc(c, *clen + 4);
	put32(c + *clen, (uint32_t)rawlen);
	*clen += 4;
	return c;
}

static uint8_t *comp_gzip(const uint8_t *in, size_t n, size_t *out)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	deflateInit2(&s, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	size_t cap = deflateBound(&s, n);
	uint8_t *o = malloc(cap);
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)n;
	s.next_out = o;
	s.avail_out = (uInt)cap;
	deflate(&s, Z_FINISH);
	*out = s.total_out;
	deflateEnd(&s);
	return append_size(o, out, n);
}

static uint8_t *comp_xz(const uint8_t *in, size_t n, size_t *out)
{
	size_t cap = lzma_stream_buffer_bound(n), pos = 0;
	uint8_t *o = malloc(cap);
	lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, NULL, in, n, o, &pos, cap);
	*out = pos;
	return append_size(o, out, n);
}

static uint8_t *comp_zstd(const uint8_t *in, size_t n, size_t *out)
{
	size_t cap = ZSTD_compressBound(n);
	uint8_t *o = malloc(cap);
	*out = ZSTD_compress(o, cap, in, n, 3);
	return append_size(o, out, n);
}

static uint8_t *comp_lz4(const uint8_t *in, size_t n, size_t *out)
{
	size_t blk = 8u << 20, cap = 4 + (n / blk + 1) * (4 + (size_t)LZ4_compressBound((int)blk));
	uint8_t *o = malloc(cap);
	put32(o, 0x184c2102);
	size_t pos = 4;
	for (size_t i = 0; i < n; i += blk) {
		size_t m = n - i < blk ? n - i : blk;
		int c = LZ4_compress_default((const char *)in + i, (char *)o + pos + 4, (int)m, (int)(cap - pos - 4));
		put32(o + pos, (uint32_t)c);
		pos += 4 + (size_t)c;
	}
	*out = pos;
	return append_size(o, out, n);
}

/* ---- helpers for load_kernel ---- */

/* virtio-mmio transports load() hands to load_kernel, and that
 * check_linux_acpi then expects in the DSDT. */
static const struct acpi_mmio_dev *load_virtio;
static unsigned load_nvirtio;

static int load(struct vm *vm, const char *kernel, const char *initrd, const char *cpio, const char *cmdline,
		bool nodec, struct boot_entry *be, struct tvm_err *err)
{
	struct load_opts o = { .kernel = kernel, .initrd = initrd, .cpio = cpio, .cmdline = cmdline, .no_decompress = nodec,
			       .virtio = load_virtio, .nvirtio = load_nvirtio };
	memset(err, 0, sizeof(*err));
	memset(be, 0, sizeof(*be));
	int rc = load_kernel(vm, &o, be, err);
	if (verbose && !quiet_load && rc < 0)
		printf("  # %s\n", err->msg);
	return rc;
}

/* -1 with a message containing every needle (NULL-terminated list). */
static void expect_fail(const char *name, struct vm *vm, const char *kernel, const char *initrd, const char *cpio,
			const char *cmdline, bool nodec, ...)
{
	struct boot_entry be;
	struct tvm_err err;
	int rc = load(vm, kernel, initrd, cpio, cmdline, nodec, &be, &err);
	if (rc != -1) {
		CHECKF(name, false, "load_kernel returned %d, expected -1", rc);
		return;
	}
	if (!err.msg[0] || strchr(err.msg, '\n')) {
		CHECKF(name, false, "bad message '%s'", err.msg);
		return;
	}
	va_list ap;
	va_start(ap, nodec);
	const char *needle;
	while ((needle = va_arg(ap, const char *))) {
		if (!strstr(err.msg, needle)) {
			va_end(ap);
			CHECKF(name, false, "message lacks '%s': %s", needle, err.msg);
			return;
		}
	}
	va_end(ap);
	CHECKF(name, true, "%s", "");
}

static bool sum_ok(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s == 0;
}

static void check_mptable(const char *name, struct vm *vm, int ncpus)
{
	const uint8_t *fp = gpa_ptr(vm, GPA(0x9fc00), 16);
	if (!fp || memcmp(fp, "_MP_", 4) != 0 || !sum_ok(fp, 16) || fp[8] != 1 || fp[9] != 4) {
		CHECKF(name, false, "no valid _MP_ floating pointer at 0x9fc00");
		return;
	}
	uint32_t at = le32(fp + 4);
	const uint8_t *t = gpa_ptr(vm, GPA(at), 44);
	if (!t || memcmp(t, "PCMP", 4) != 0) {
		CHECKF(name, false, "no PCMP table at 0x%x", at);
		return;
	}
	uint16_t len = le16(t + 4), count = le16(t + 34);
	t = gpa_ptr(vm, GPA(at), len);
	if (!t || !sum_ok(t, len) || t[6] != 4 || memcmp(t + 8, "TRIALVM", 7) != 0) {
		CHECKF(name, false, "PCMP header bad (len %u)", len);
		return;
	}
	int procs = 0, bsp = 0, ioapics = 0, ioints = 0, lints = 0, buses = 0;
	size_t off = 44;
	bool ident = true; /* every ISA IRQ on the IOAPIC pin of the same number */
	bool irq0 = false, irq2 = false;
	for (int i = 0; i < count; i++) {
		if (off >= len) {
			CHECKF(name, false, "entries overrun the table");
			return;
		}
		uint8_t type = t[off];
		if (type == 0) {
			if (t[off + 1] != procs || !(t[off + 3] & 1)) {
				CHECKF(name, false, "processor entry %d bad", procs);
				return;
			}
			bsp += (t[off + 3] & 2) != 0;
			procs++;
			off += 20;
			continue;
		}
		if (type == 1)
			buses += memcmp(t + off + 2, "ISA", 3) == 0;
		if (type == 2)
			ioapics += t[off + 1] == ncpus && le32(t + off + 4) == 0xfec00000;
		if (type == 3) {
			ioints++;
			ident &= t[off + 4] == 0 && t[off + 6] == ncpus && t[off + 5] == t[off + 7];
			irq0 |= t[off + 5] == 0;
			irq2 |= t[off + 5] == 2;
		}
		if (type == 4)
			lints++;
		off += 8;
	}
	CHECKF(name, off == len && procs == ncpus && bsp == 1 && ioapics == 1 && buses == 1 && ioints == 15 &&
			     lints == 2 && ident && irq0 && !irq2,
	       "procs %d/%d bsp %d ioapic %d bus %d ioint %d lint %d identity %d irq0 %d irq2 %d size %zu/%u", procs,
	       ncpus, bsp, ioapics, buses, ioints, lints, ident, irq0, irq2, off, len);
}

/* ---- ACPI ---- */

/* One system description table at gpa: signature, length within the ACPI
 * area, checksum, OEM and creator ids. NULL (and *why set) when bad. */
static const uint8_t *acpi_table(struct vm *vm, uint64_t gpa, const char *sig, char *why, size_t wl)
{
	const uint8_t *t = gpa_ptr(vm, GPA(gpa), 36);
	if (gpa < TVM_ACPI_START || gpa >= TVM_ACPI_END || !t) {
		snprintf(why, wl, "%s at 0x%llx is outside 0x%x-0x%x", sig, (unsigned long long)gpa, TVM_ACPI_START,
			 TVM_ACPI_END);
		return NULL;
	}
	uint32_t len = le32(t + 4);
	if (memcmp(t, sig, 4) != 0 || len < 36 || len > TVM_ACPI_END - gpa) {
		snprintf(why, wl, "table at 0x%llx: signature %.4s length %u, expected %s", (unsigned long long)gpa,
			 (const char *)t, len, sig);
		return NULL;
	}
	t = gpa_ptr(vm, GPA(gpa), len);
	if (!t || !sum_ok(t, len)) {
		snprintf(why, wl, "%s checksum does not sum to 0", sig);
		return NULL;
	}
	if (memcmp(t + 10, "TRIALV", 6) != 0 || memcmp(t + 16, "TRIALVM ", 8) != 0 || le32(t + 24) == 0 ||
	    !t[28] || le32(t + 32) == 0) {
		snprintf(why, wl, "%s OEM/creator ids not filled", sig);
		return NULL;
	}
	return t;
}

/* ---- DSDT: a small AML reader for exactly the subset acpi.c emits ----
 * Scope (\_SB_) holding Devices, each a NameSeg and Name objects (_HID as a
 * string or an EISA id, _UID an integer, _CRS a Buffer of IO, Memory32Fixed,
 * Extended Interrupt and End Tag descriptors). Every PkgLength must be the
 * shortest encoding and end exactly where its contents end. */

struct aml_rd {
	const uint8_t *p;
	size_t pos, end;
	bool bad;
};

static unsigned rd_byte(struct aml_rd *r)
{
	if (r->bad || r->pos >= r->end) {
		r->bad = true;
		return 0;
	}
	return r->p[r->pos++];
}

static uint64_t rd_le(struct aml_rd *r, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)rd_byte(r) << (8 * i);
	return v;
}

/* A PkgLength at r->pos; returns the absolute end of its package. */
static size_t rd_pkg(struct aml_rd *r)
{
	size_t start = r->pos;
	unsigned b0 = rd_byte(r), n = b0 >> 6;
	size_t len = n ? (b0 & 0xf) : (b0 & 0x3f);
	if (n && (b0 & 0x30))
		r->bad = true;
	for (unsigned i = 1; i <= n; i++)
		len |= (size_t)rd_byte(r) << (4 + 8 * (i - 1));
	size_t shortest = len <= 63 ? 1 : len < (1u << 12) ? 2 : len < (1u << 20) ? 3 : 4;
	if (r->bad || n + 1 != shortest || len < n + 1 || len > r->end - start) {
		r->bad = true;
		return r->pos;
	}
	return start + len;
}

static void rd_seg(struct aml_rd *r, char seg[5])
{
	for (int i = 0; i < 4; i++) {
		unsigned c = rd_byte(r);
		seg[i] = (char)c;
		if (!((c >= 'A' && c <= 'Z') || c == '_' || (i && c >= '0' && c <= '9')))
			r->bad = true;
	}
	seg[4] = 0;
}

static uint64_t rd_int(struct aml_rd *r)
{
	switch (rd_byte(r)) {
	case 0x00: return 0;
	case 0x01: return 1;
	case 0x0a: return rd_le(r, 1);
	case 0x0b: return rd_le(r, 2);
	case 0x0c: return rd_le(r, 4);
	case 0x0e: return rd_le(r, 8);
	default: r->bad = true; return 0;
	}
}

struct dsdt_dev {
	char seg[5], hid[16];
	uint64_t uid;
	int nuid, nhid, ncrs, nio, nmem, nirq;
	uint32_t io_base, io_len, mem_base, mem_len, irq, irq_flags;
};

/* The _CRS Buffer at r->pos (after "_CRS"). */
static void rd_crs(struct aml_rd *r, struct dsdt_dev *d)
{
	if (rd_byte(r) != 0x11) {
		r->bad = true;
		return;
	}
	size_t end = rd_pkg(r);
	uint64_t size = rd_int(r);
	if (r->bad || size != end - r->pos) {
		r->bad = true;
		return;
	}
	size_t start = r->pos;
	uint8_t sum = 0;
	for (size_t i = start; i < end; i++)
		sum = (uint8_t)(sum + r->p[i]);
	bool ended = false;
	while (!r->bad && !ended && r->pos < end) {
		switch (rd_byte(r)) {
		case 0x47: /* IO: decode16, min == max, alignment 1 */
			if (rd_byte(r) != 1) r->bad = true;
			d->io_base = (uint32_t)rd_le(r, 2);
			if (rd_le(r, 2) != d->io_base || rd_byte(r) != 1) r->bad = true;
			d->io_len = rd_byte(r);
			d->nio++;
			break;
		case 0x86: /* Memory32Fixed, length 9 */
			if (rd_le(r, 2) != 9) r->bad = true;
			if (rd_byte(r) != 1) r->bad = true; /* read/write */
			d->mem_base = (uint32_t)rd_le(r, 4);
			d->mem_len = (uint32_t)rd_le(r, 4);
			d->nmem++;
			break;
		case 0x89: /* Extended Interrupt, one interrupt, no resource source */
			if (rd_le(r, 2) != 6) r->bad = true;
			d->irq_flags = rd_byte(r);
			if (rd_byte(r) != 1) r->bad = true;
			d->irq = (uint32_t)rd_le(r, 4);
			d->nirq++;
			break;
		case 0x79: /* End Tag: last, and the template sums to zero */
			rd_byte(r);
			ended = true;
			break;
		default:
			r->bad = true;
		}
	}
	if (!ended || r->pos != end || sum != 0)
		r->bad = true;
	d->ncrs++;
}

/* Parse the DSDT's body into devs[0..*ndev); false with *why when it is not
 * the expected shape. */
static bool rd_dsdt(const uint8_t *t, uint32_t len, struct dsdt_dev *devs, int cap, int *ndev, char *why, size_t wl)
{
	struct aml_rd r = { .p = t, .pos = 36, .end = len };
	char seg[5];
	*ndev = 0;
	if (rd_byte(&r) != 0x10) {
		snprintf(why, wl, "DSDT body does not start with ScopeOp");
		return false;
	}
	size_t scope_end = rd_pkg(&r);
	rd_seg(&r, seg);
	if (r.bad || scope_end != len || strcmp(seg, "_SB_") != 0) {
		snprintf(why, wl, "DSDT: Scope (\\_SB_) does not span the body (ends %zu of %u)", scope_end, len);
		return false;
	}
	while (!r.bad && r.pos < scope_end) {
		if (rd_byte(&r) != 0x5b || rd_byte(&r) != 0x82 || *ndev >= cap) {
			r.bad = true;
			break;
		}
		struct dsdt_dev *d = &devs[(*ndev)++];
		memset(d, 0, sizeof(*d));
		size_t dev_end = rd_pkg(&r);
		rd_seg(&r, d->seg);
		while (!r.bad && r.pos < dev_end) {
			if (rd_byte(&r) != 0x08) {
				r.bad = true;
				break;
			}
			rd_seg(&r, seg);
			if (strcmp(seg, "_HID") == 0) {
				d->nhid++;
				unsigned op = rd_byte(&r);
				if (op == 0x0d) {
					size_t n = 0;
					unsigned c;
					while ((c = rd_byte(&r)) != 0 && !r.bad)
						if (n < sizeof(d->hid) - 1)
							d->hid[n++] = (char)c;
				} else if (op == 0x0c) {
					uint8_t b[4];
					for (int i = 0; i < 4; i++)
						b[i] = (uint8_t)rd_byte(&r);
					snprintf(d->hid, sizeof(d->hid), "%c%c%c%02X%02X", '@' + (b[0] >> 2),
						 '@' + ((b[0] & 3) << 3 | b[1] >> 5), '@' + (b[1] & 0x1f), b[2], b[3]);
				} else {
					r.bad = true;
				}
			} else if (strcmp(seg, "_UID") == 0) {
				d->nuid++;
				d->uid = rd_int(&r);
			} else if (strcmp(seg, "_CRS") == 0) {
				rd_crs(&r, d);
			} else {
				r.bad = true;
			}
		}
		if (r.pos != dev_end)
			r.bad = true;
	}
	if (r.bad || r.pos != len) {
		snprintf(why, wl, "DSDT: AML malformed near offset %zu (device %d)", r.pos, *ndev);
		return false;
	}
	return true;
}

/* The DSDT must hold COM1, then exactly the transports v[0..nv), then pvpanic. */
static bool check_dsdt(const uint8_t *d, const struct acpi_mmio_dev *v, unsigned nv, char *why, size_t wl)
{
	struct dsdt_dev devs[ACPI_MAX_VIRTIO + 3];
	int n;
	if (!rd_dsdt(d, le32(d + 4), devs, (int)(sizeof(devs) / sizeof(devs[0])), &n, why, wl))
		return false;
	if (d[8] != 2 || n != (int)nv + 2) {
		snprintf(why, wl, "DSDT: revision %u, %d devices, expected %u", d[8], n, nv + 2);
		return false;
	}
	const struct dsdt_dev *pv = &devs[nv + 1];
	if (strcmp(pv->seg, "PEVT") || strcmp(pv->hid, "QEMU0001") || pv->nhid != 1 || pv->nuid != 1 || pv->uid != 0 ||
	    pv->ncrs != 1 || pv->nio != 1 || pv->nmem || pv->nirq || pv->io_base != 0x505 || pv->io_len != 1) {
		snprintf(why, wl, "DSDT: pvpanic wrong (%s %s io 0x%x/%u)", pv->seg, pv->hid, pv->io_base, pv->io_len);
		return false;
	}
	const struct dsdt_dev *c = &devs[0];
	if (strcmp(c->seg, "COM1") || strcmp(c->hid, "PNP0501") || c->nhid != 1 || c->nuid != 1 || c->uid != 1 ||
	    c->ncrs != 1 || c->nio != 1 || c->nmem || c->nirq != 1 || c->io_base != 0x3f8 || c->io_len != 8 ||
	    c->irq != 4 || c->irq_flags != 0x03) {
		snprintf(why, wl, "DSDT: COM1 wrong (%s %s io 0x%x/%u irq %u flags 0x%x)", c->seg, c->hid, c->io_base,
			 c->io_len, c->irq, c->irq_flags);
		return false;
	}
	for (unsigned i = 0; i < nv; i++) {
		const struct dsdt_dev *e = &devs[i + 1];
		char seg[16];
		snprintf(seg, sizeof(seg), "VR%02X", i);
		/* consumer, level, active high, exclusive */
		if (strcmp(e->seg, seg) || strcmp(e->hid, "LNRO0005") || e->nhid != 1 || e->nuid != 1 || e->uid != i ||
		    e->ncrs != 1 || e->nio || e->nmem != 1 || e->nirq != 1 || e->mem_base != v[i].base ||
		    e->mem_len != v[i].size || e->irq != v[i].irq || e->irq_flags != 0x01) {
			snprintf(why, wl, "DSDT: virtio %u wrong (%s %s uid %llu mem 0x%x/0x%x irq %u flags 0x%x)", i,
				 e->seg, e->hid, (unsigned long long)e->uid, e->mem_base, e->mem_len, e->irq,
				 e->irq_flags);
			return false;
		}
	}
	return true;
}

/* Find the RSDP as Linux does (16-byte boundaries of 0xe0000-0xfffff,
 * signature and the ACPI 1.0 checksum), then check every table. Returns the
 * RSDP address, 0 on failure (CHECKF() already called). */
static uint64_t check_acpi(const char *name, struct vm *vm, int ncpus, const struct acpi_mmio_dev *v, unsigned nv)
{
	char why[200] = "";
	uint64_t rsdp = 0;
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = gpa_ptr(vm, GPA(a), 20);
		if (p && memcmp(p, "RSD PTR ", 8) == 0 && sum_ok(p, 20)) {
			rsdp = a;
			break;
		}
	}
	const uint8_t *r = rsdp ? gpa_ptr(vm, GPA(rsdp), 36) : NULL;
	if (!r || r[15] != 2 || le32(r + 20) != 36 || !sum_ok(r, 36) || memcmp(r + 9, "TRIALV", 6) != 0) {
		CHECKF(name, false, "no valid revision-2 RSDP found scanning 0xe0000-0xfffff (at 0x%llx)",
		       (unsigned long long)rsdp);
		return 0;
	}
	const uint8_t *rsdt = acpi_table(vm, le32(r + 16), "RSDT", why, sizeof(why));
	const uint8_t *xsdt = rsdt ? acpi_table(vm, le64(r + 24), "XSDT", why, sizeof(why)) : NULL;
	if (!xsdt)
		goto bad;
	uint32_t nx = (le32(xsdt + 4) - 36) / 8, nr = (le32(rsdt + 4) - 36) / 4;
	if (le32(xsdt + 4) != 36 + 8 * nx || le32(rsdt + 4) != 36 + 4 * nr || nx != nr) {
		snprintf(why, sizeof(why), "RSDT (%u) / XSDT (%u) entries differ or lengths are odd", nr, nx);
		goto bad;
	}
	uint64_t fadt_at = 0, madt_at = 0;
	for (uint32_t i = 0; i < nx; i++) {
		uint64_t a = le64(xsdt + 36 + 8 * i);
		const uint8_t *t = gpa_ptr(vm, GPA(a), 4);
		if (a != le32(rsdt + 36 + 4 * i) || !t) {
			snprintf(why, sizeof(why), "XSDT entry %u (0x%llx) differs from the RSDT's", i, (unsigned long long)a);
			goto bad;
		}
		if (memcmp(t, "FACP", 4) == 0)
			fadt_at = a;
		else if (memcmp(t, "APIC", 4) == 0)
			madt_at = a;
	}
	const uint8_t *f = acpi_table(vm, fadt_at, "FACP", why, sizeof(why));
	if (!f)
		goto bad;
	if (le32(f + 4) != 276 || f[8] != 6 || !(le32(f + 112) & (1u << 20)) || le32(f + 40) != le64(f + 140)) {
		snprintf(why, sizeof(why), "FADT: length %u revision %u flags 0x%x DSDT 0x%x X_DSDT 0x%llx", le32(f + 4),
			 f[8], le32(f + 112), le32(f + 40), (unsigned long long)le64(f + 140));
		goto bad;
	}
	const uint8_t *d = acpi_table(vm, le64(f + 140), "DSDT", why, sizeof(why));
	if (!d)
		goto bad;
	if (!check_dsdt(d, v, nv, why, sizeof(why)))
		goto bad;
	const uint8_t *m = acpi_table(vm, madt_at, "APIC", why, sizeof(why));
	if (!m)
		goto bad;
	uint32_t mlen = le32(m + 4), off = 44;
	int lapics = 0, ioapics = 0, nmis = 0, others = 0, entries = 0;
	bool lapic_ok = true;
	while (off + 2 <= mlen && m[off + 1] >= 2 && m[off + 1] <= mlen - off) {
		const uint8_t *e = m + off;
		entries++;
		if (e[0] == 0 && e[1] == 8) {
			lapic_ok &= e[2] == lapics && e[3] == lapics && (le32(e + 4) & 1);
			lapics++;
		} else if (e[0] == 1 && e[1] == 12) {
			ioapics += e[2] == ncpus && le32(e + 4) == 0xfec00000 && le32(e + 8) == 0;
		} else if (e[0] == 4 && e[1] == 6) {
			nmis += e[2] == 0xff && e[5] == 1;
		} else {
			others++;
		}
		off += e[1];
	}
	if (off != mlen || le32(m + 36) != 0xfee00000 || le32(m + 40) != 1 || lapics != ncpus || !lapic_ok ||
	    ioapics != 1 || nmis != 1 || others || entries != ncpus + 2) {
		snprintf(why, sizeof(why),
			 "MADT: end %u/%u lapic addr 0x%x flags %u lapics %d/%d ok %d ioapic %d nmi %d other %d", off,
			 mlen, le32(m + 36), le32(m + 40), lapics, ncpus, lapic_ok, ioapics, nmis, others);
		goto bad;
	}
	CHECKF(name, true, "%s", "");
	return rsdp;
bad:
	CHECKF(name, false, "%s", why);
	return 0;
}

/* ACPI tables for ncpus, and boot_params.acpi_rsdp_addr pointing at the RSDP. */
static void check_linux_acpi(const char *pfx, struct vm *vm, int ncpus)
{
	char name[128];
	snprintf(name, sizeof(name), "%s_acpi", pfx);
	uint64_t rsdp = check_acpi(name, vm, ncpus, load_virtio, load_nvirtio);
	const uint8_t *bp = gpa_ptr(vm, GPA(LOADER_BOOT_PARAMS), 4096);
	snprintf(name, sizeof(name), "%s_bp_acpi_rsdp_addr", pfx);
	CHECKF(name, rsdp && bp && le64(bp + 0x70) == rsdp, "acpi_rsdp_addr 0x%llx, RSDP at 0x%llx",
	       bp ? (unsigned long long)le64(bp + 0x70) : 0ull, (unsigned long long)rsdp);
}

/* Common boot_params checks for a Linux boot. */
static void check_boot_params(const char *pfx, struct vm *vm, const char *cmdline, const uint8_t *initrd,
			      size_t initrd_len, uint32_t initrd_max)
{
	char name[128];
	const uint8_t *bp = gpa_ptr(vm, GPA(LOADER_BOOT_PARAMS), 4096);
	snprintf(name, sizeof(name), "%s_bp_header", pfx);
	CHECKF(name, bp && memcmp(bp + 0x202, "HdrS", 4) == 0 && le16(bp + 0x1fe) == 0xaa55 && bp[0x210] == 0xff &&
			     (bp[0x211] & 0x81) == 0x81 && le16(bp + 0x1fa) == 0xffff && bp[0x1ef] == 0,
	       "HdrS/boot_flag/type_of_loader/loadflags/vid_mode wrong");
	if (!bp)
		return;
	snprintf(name, sizeof(name), "%s_bp_cmdline", pfx);
	uint32_t cp = le32(bp + 0x228);
	const char *c = gpa_ptr(vm, GPA(cp), strlen(cmdline) + 1);
	CHECKF(name, cp == LOADER_LINUX_CMDLINE && c && strcmp(c, cmdline) == 0 && le32(bp + 0xc8) == 0,
	       "cmd_line_ptr 0x%x", cp);
	snprintf(name, sizeof(name), "%s_bp_e820", pfx);
	struct e820_entry e[8];
	int ne = vm_e820(vm, e, 8);
	bool same = bp[0x1e8] == ne;
	for (int i = 0; same && i < ne; i++) {
		const uint8_t *q = bp + 0x2d0 + 20 * i;
		same = le64(q) == e[i].addr && le64(q + 8) == e[i].size && le32(q + 16) == e[i].type;
	}
	CHECKF(name, same, "e820_entries %u, vm has %d", bp[0x1e8], ne);
	snprintf(name, sizeof(name), "%s_bp_ramdisk", pfx);
	uint64_t ri = le32(bp + 0x218) | ((uint64_t)le32(bp + 0xc0) << 32);
	uint64_t rs = le32(bp + 0x21c) | ((uint64_t)le32(bp + 0xc4) << 32);
	if (!initrd) {
		CHECKF(name, ri == 0 && rs == 0, "ramdisk set without initrd");
		return;
	}
	const uint8_t *r = gpa_ptr(vm, GPA(ri), rs);
	CHECKF(name, rs == initrd_len && r && memcmp(r, initrd, initrd_len) == 0 && (ri & 0xfff) == 0 && ri >= MiB &&
			     ri + rs - 1 <= initrd_max,
	       "ramdisk 0x%llx+%llu", (unsigned long long)ri, (unsigned long long)rs);
}

/* ---- tests ---- */

static void test_bad_files(void)
{
	struct vm *vm = fake_vm_new(64 * MiB, 1);
	expect_fail("kernel_missing", vm, "/nonexistent/vmlinuz", NULL, NULL, NULL, false, "/nonexistent/vmlinuz",
		    "cannot open", "--kernel", NULL);
	expect_fail("kernel_empty", vm, write_tmp("empty", "", 0), NULL, NULL, NULL, false, "empty", NULL);
	expect_fail("kernel_directory", vm, tmpdir, NULL, NULL, NULL, false, "not a regular file", NULL);
	uint8_t junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 31 + 7);
	expect_fail("kernel_garbage", vm, write_tmp("junk", junk, sizeof(junk)), NULL, NULL, NULL, false,
		    "neither an ELF", "bzImage", NULL);
	expect_fail("kernel_tiny", vm, write_tmp("tiny", "abc", 3), NULL, NULL, NULL, false, "too short", NULL);
	expect_fail("kernel_elf_truncated_hdr", vm, write_tmp("elfhdr", ELFMAG "\2\1\1", 7), NULL, NULL, NULL, false,
		    "truncated", NULL);
	struct stat st;
	if (getuid() != 0) {
		const char *p = write_tmp("noread", junk, 100);
		chmod(p, 0);
		expect_fail("kernel_unreadable", vm, p, NULL, NULL, NULL, false, "cannot open", NULL);
	} else {
		(void)st;
		SKIP("kernel_unreadable", "running as root");
	}
	expect_fail("no_kernel", vm, NULL, NULL, NULL, NULL, false, "--kernel", NULL);
	fake_vm_free(vm);
}

static void test_elf(void)
{
	struct boot_entry be;
	struct tvm_err err;
	size_t len;
	struct vm *vm = fake_vm_new(64 * MiB, 1);

	/* PVH, 4-byte note desc, BSS prefilled with garbage */
	uint8_t *k = mk_pvh(&len, 4, PVH_BASE, 0x5000);
	const char *kp = write_tmp("pvh.elf", k, len);
	memset(gpa_ptr(vm, GPA(PVH_BASE), 0x5000), 0xaa, 0x5000);
	uint8_t app[5000], cpio[777];
	for (size_t i = 0; i < sizeof(app); i++)
		app[i] = (uint8_t)(i ^ 0x5a);
	for (size_t i = 0; i < sizeof(cpio); i++)
		cpio[i] = (uint8_t)(i * 3);
	const char *ap = write_tmp("app.elf", app, sizeof(app)), *cp = write_tmp("root.cpio", cpio, sizeof(cpio));
	int rc = load(vm, kp, ap, cp, "console=ttyS0 app=x", false, &be, &err);
	CHECKF("pvh_load", rc == 0 && be.mode == BOOT_PVH32 && be.rip == PVH_ENTRY && be.arg == TVM_PVH_START_INFO,
	       "rc %d (%s) mode %d rip 0x%llx", rc, err.msg, be.mode, (unsigned long long)be.rip);
	const uint8_t *seg = gpa_ptr(vm, GPA(PVH_BASE), 0x5000);
	bool bss0 = true;
	for (size_t i = 0x3000; i < 0x5000; i++)
		bss0 &= seg[i] == 0;
	CHECKF("pvh_segment_copied_bss_zeroed", seg[1] == 8 && seg[0x2fff] == (uint8_t)(0x2fff * 7 + 1) && bss0,
	       "segment contents wrong");
	struct hvm_start_info si;
	gpa_read(vm, GPA(TVM_PVH_START_INFO), &si, sizeof(si));
	CHECKF("pvh_start_info", si.magic == XEN_HVM_START_MAGIC_VALUE && si.version == 1 && si.nr_modules == 2 &&
				 si.modlist_paddr == TVM_PVH_MODLIST && si.memmap_paddr == TVM_PVH_MEMMAP &&
				 si.cmdline_paddr == TVM_PVH_CMDLINE,
	       "magic %x version %u nmods %u", si.magic, si.version, si.nr_modules);
	const char *cl = gpa_ptr(vm, GPA(si.cmdline_paddr), 20);
	CHECKF("pvh_cmdline", cl && strcmp(cl, "console=ttyS0 app=x") == 0, "cmdline wrong");
	uint64_t rsdp = check_acpi("pvh_acpi", vm, 1, NULL, 0);
	CHECKF("pvh_rsdp_paddr", rsdp && si.rsdp_paddr == rsdp, "rsdp_paddr 0x%llx, RSDP at 0x%llx",
	       (unsigned long long)si.rsdp_paddr, (unsigned long long)rsdp);
	struct hvm_memmap_table_entry mm[8];
	struct e820_entry e[8];
	int ne = vm_e820(vm, e, 8);
	gpa_read(vm, GPA(si.memmap_paddr), mm, sizeof(mm[0]) * si.memmap_entries);
	bool mmok = (int)si.memmap_entries == ne;
	for (int i = 0; mmok && i < ne; i++)
		mmok = mm[i].addr == e[i].addr && mm[i].size == e[i].size && mm[i].type == e[i].type;
	CHECKF("pvh_memmap", mmok, "memmap differs from vm_e820 (%u entries)", si.memmap_entries);
	struct hvm_modlist_entry mods[2];
	gpa_read(vm, GPA(si.modlist_paddr), mods, sizeof(mods));
	const uint8_t *m0 = gpa_ptr(vm, GPA(mods[0].paddr), mods[0].size);
	const uint8_t *m1 = gpa_ptr(vm, GPA(mods[1].paddr), mods[1].size);
	bool overlap = mods[0].paddr < mods[1].paddr + mods[1].size && mods[1].paddr < mods[0].paddr + mods[0].size;
	bool kov = false;
	for (int i = 0; i < 2; i++)
		kov |= mods[i].paddr < PVH_BASE + 0x5000 && PVH_BASE < mods[i].paddr + mods[i].size;
	CHECKF("pvh_modules", m0 && m1 && mods[0].size == sizeof(app) && mods[1].size == sizeof(cpio) &&
				      !memcmp(m0, app, sizeof(app)) && !memcmp(m1, cpio, sizeof(cpio)) && !overlap && !kov &&
				      !(mods[0].paddr & 0xfff) && !(mods[1].paddr & 0xfff) && mods[0].cmdline_paddr == 0,
	       "modules 0x%llx+%llu 0x%llx+%llu", (unsigned long long)mods[0].paddr, (unsigned long long)mods[0].size,
	       (unsigned long long)mods[1].paddr, (unsigned long long)mods[1].size);
	free(k);

	/* 8-byte desc, no modules, 5 GiB RAM (modules must stay below 3 GiB) */
	struct vm *big = fake_vm_new(5ull << 30, 1);
	k = mk_pvh(&len, 8, PVH_BASE, 0x3000);
	kp = write_tmp("pvh8.elf", k, len);
	rc = load(big, kp, ap, NULL, NULL, false, &be, &err);
	gpa_read(big, GPA(TVM_PVH_START_INFO), &si, sizeof(si));
	gpa_read(big, GPA(si.modlist_paddr), mods, sizeof(mods[0]));
	cl = gpa_ptr(big, GPA(TVM_PVH_CMDLINE), 1);
	CHECKF("pvh_desc8_bigram", rc == 0 && be.rip == PVH_ENTRY && si.nr_modules == 1 && si.memmap_entries == 4 &&
					   mods[0].paddr + mods[0].size <= TVM_MMIO_HOLE_START && mods[0].paddr > (1ull << 30) &&
					   cl && cl[0] == 0,
	       "rc %d (%s) module at 0x%llx", rc, err.msg, (unsigned long long)mods[0].paddr);
	fake_vm_free(big);
	free(k);

	k = mk_pvh(&len, 4, PVH_BASE, 0x3000);
	kp = write_tmp("pvh-again.elf", k, len);
	expect_fail("pvh_cpio_without_initrd", vm, kp, NULL, cp, NULL, false, "--initrd", NULL);
	char *longcl = malloc(TVM_CMDLINE_MAX + 1);
	memset(longcl, 'x', TVM_CMDLINE_MAX);
	longcl[TVM_CMDLINE_MAX] = 0;
	expect_fail("pvh_cmdline_too_long", vm, kp, NULL, NULL, longcl, false, "command line", "4095", NULL);
	longcl[TVM_CMDLINE_MAX - 1] = 0;
	rc = load(vm, kp, NULL, NULL, longcl, false, &be, &err);
	CHECKF("pvh_cmdline_max", rc == 0, "%s", err.msg);
	free(longcl);
	expect_fail("pvh_initrd_missing", vm, kp, "/nonexistent/app", NULL, NULL, false, "initrd", "/nonexistent/app",
		    NULL);
	expect_fail("pvh_initrd_empty", vm, kp, write_tmp("empty-app", "", 0), NULL, NULL, false, "initrd", "empty",
		    NULL);
	uint8_t *huge = calloc(1, 70 * MiB);
	expect_fail("pvh_initrd_too_big", vm, kp, write_tmp("huge", huge, 70 * MiB), NULL, NULL, false, "initrd",
		    "--mem", NULL);
	free(huge);
	free(k);

	/* segment outside RAM */
	k = mk_pvh(&len, 4, 60 * MiB, 8 * MiB);
	expect_fail("elf_segment_outside_ram", vm, write_tmp("far.elf", k, len), NULL, NULL, NULL, false,
		    "outside guest RAM", "0x3c00000-0x4400000", "64 MiB", "--mem", NULL);
	free(k);
	k = mk_pvh(&len, 4, 0xbfff0000ull, 0x20000);
	struct vm *vm4 = fake_vm_new(4ull << 30, 1);
	expect_fail("elf_segment_in_mmio_hole", vm4, write_tmp("hole.elf", k, len), NULL, NULL, NULL, false,
		    "MMIO hole", NULL);
	fake_vm_free(vm4);
	free(k);
	k = mk_pvh(&len, 4, 0xfffffffffffff000ull, 0x4000);
	expect_fail("elf_segment_wraps", vm, write_tmp("wrap.elf", k, len), NULL, NULL, NULL, false,
		    "outside guest RAM", NULL);
	free(k);
	k = mk_pvh(&len, 4, 0x6000, 0x3000);
	expect_fail("elf_segment_over_boot_data", vm, write_tmp("low.elf", k, len), NULL, NULL, NULL, false,
		    "boot data", NULL);
	free(k);
	k = mk_pvh(&len, 4, 0xe8000, 0x3000);
	expect_fail("elf_segment_over_acpi_tables", vm, write_tmp("acpi.elf", k, len), NULL, NULL, NULL, false,
		    "boot data", "0xe0000", NULL);
	free(k);

	/* structurally bad ELFs */
	static uint8_t text[64];
	struct seg s1[1] = { { PT_LOAD, PVH_BASE, PVH_BASE, text, 64, 32, 0x1000, 0 } };
	k = mk_elf(EM_X86_64, ET_EXEC, PVH_BASE, s1, 1, &len);
	expect_fail("elf_filesz_gt_memsz", vm, write_tmp("fm.elf", k, len), NULL, NULL, NULL, false, "corrupt", NULL);
	free(k);
	struct seg s2[1] = { { PT_LOAD, PVH_BASE, PVH_BASE, text, 64, 64, 0x1000, 0x7fffffff } };
	k = mk_elf(EM_X86_64, ET_EXEC, PVH_BASE, s2, 1, &len);
	expect_fail("elf_offset_beyond_file", vm, write_tmp("off.elf", k, len), NULL, NULL, NULL, false, "truncated",
		    NULL);
	free(k);
	struct seg s3[1] = { { PT_LOAD, PVH_BASE, PVH_BASE, text, 64, 64, 0x1000, 0 } };
	k = mk_elf(EM_386, ET_EXEC, PVH_BASE, s3, 1, &len);
	expect_fail("elf_wrong_machine", vm, write_tmp("m.elf", k, len), NULL, NULL, NULL, false, "x86-64", NULL);
	free(k);
	k = mk_elf(EM_X86_64, ET_DYN, PVH_BASE, s3, 1, &len);
	expect_fail("elf_not_exec", vm, write_tmp("dyn.elf", k, len), NULL, NULL, NULL, false, "not an ELF executable",
		    NULL);
	k[EI_CLASS] = ELFCLASS32;
	expect_fail("elf_32bit", vm, write_tmp("32.elf", k, len), NULL, NULL, NULL, false, "32-bit", NULL);
	free(k);
	k = mk_elf(EM_X86_64, ET_EXEC, PVH_BASE, s3, 1, &len);
	expect_fail("elf_no_pvh_note", vm, write_tmp("nonote.elf", k, len), NULL, NULL, NULL, false, "PVH", NULL);
	expect_fail("elf_truncated", vm, write_tmp("trunc.elf", k, 100), NULL, NULL, NULL, false, "truncated", NULL);
	put16(k + 56, 0xff00); /* phnum beyond file */
	expect_fail("elf_phdrs_beyond_file", vm, write_tmp("phn.elf", k, len), NULL, NULL, NULL, false, "", NULL);
	free(k);
	fake_vm_free(vm);
}

static void test_vmlinux_elf(void)
{
	struct boot_entry be;
	struct tvm_err err;
	size_t len;
	struct vm *vm = fake_vm_new(128 * MiB, 1);
	uint8_t *k = mk_vmlinux(&len, 0x20000);
	const char *kp = write_tmp("vmlinux", k, len);
	uint8_t rd[10000];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i * 5);
	const char *rp = write_tmp("initrd.img", rd, sizeof(rd));
	int rc = load(vm, kp, rp, NULL, "root=/dev/vda", false, &be, &err);
	CHECKF("vmlinux_elf_load", rc == 0 && be.mode == BOOT_LINUX64 && be.rip == LNX_PHYS + 0x10 &&
					   be.arg == LOADER_BOOT_PARAMS,
	       "rc %d (%s) mode %d rip 0x%llx", rc, err.msg, be.mode, (unsigned long long)be.rip);
	const uint8_t *bp = gpa_ptr(vm, GPA(LOADER_BOOT_PARAMS), 4096);
	CHECKF("vmlinux_elf_min_header", le16(bp + 0x206) == 0x20f && le32(bp + 0x238) == 2047 &&
						 le32(bp + 0x230) == 0x200000,
	       "synthesized header wrong");
	check_boot_params("vmlinux_elf", vm, "root=/dev/vda", rd, sizeof(rd), 0x7fffffff);
	check_linux_acpi("vmlinux_elf", vm, 1);
	expect_fail("vmlinux_elf_cpio_rejected", vm, kp, rp, rp, NULL, false, "--cpio", NULL);
	/* trialvm's own words (the virtio-mmio devices) go before a "--" (what
	 * follows it is init's argv), not after; a quoted "--" is a word. */
	static const struct { const char *user, *extra, *want; } dd[] = {
		{ "ro -- a \"b c\"", "virtio_mmio.device=X", "ro virtio_mmio.device=X -- a \"b c\"" },
		{ "-- a", "virtio_mmio.device=X", "virtio_mmio.device=X -- a" },
		{ "ro x=\"1 -- 2\"", "virtio_mmio.device=X", "ro x=\"1 -- 2\" virtio_mmio.device=X" },
		{ "ro --x", "E", "ro --x E" },
		{ "ro --", "", "ro --" },
	};
	for (size_t i = 0; i < sizeof(dd) / sizeof(dd[0]); i++) {
		struct load_opts o = { .kernel = kp, .cmdline = dd[i].user, .linux_cmdline_extra = dd[i].extra };
		memset(&err, 0, sizeof(err));
		rc = load_kernel(vm, &o, &be, &err);
		const char *c = gpa_ptr(vm, GPA(LOADER_LINUX_CMDLINE), strlen(dd[i].want) + 1);
		char name[64];
		snprintf(name, sizeof(name), "vmlinux_elf_cmdline_dashes_%zu", i);
		CHECKF(name, rc == 0 && c && !strcmp(c, dd[i].want), "rc %d (%s): '%s', want '%s'", rc, err.msg,
		       c ? c : "(null)", dd[i].want);
	}
	char big[3000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	expect_fail("vmlinux_elf_cmdline_too_long", vm, kp, NULL, NULL, big, false, "2047", NULL);
	free(k);
	fake_vm_free(vm);
}

typedef uint8_t *(*compfn)(const uint8_t *, size_t, size_t *);

static void test_synthetic_bz(const char *fmt, compfn comp, size_t textsz)
{
	char name[96];
	struct boot_entry be;
	struct tvm_err err;
	size_t vlen, clen, blen;
	uint8_t *v = mk_vmlinux(&vlen, textsz);
	uint8_t *c = comp(v, vlen, &clen);
	uint8_t *bz = mk_bz(c, clen, 0x20f, &blen);

	uint8_t *out = NULL;
	size_t outlen = 0;
	snprintf(name, sizeof(name), "bz_%s_decompress", fmt);
	int rc = bzimage_decompress(bz, blen, &out, &outlen, &err);
	CHECKF(name, rc == 0 && outlen == vlen && memcmp(out, v, vlen) == 0, "rc %d (%s) len %zu/%zu", rc, err.msg,
	       outlen, vlen);
	free(out);

	struct vm *vm = fake_vm_new(128 * MiB, 2);
	const char *kp = write_tmp("bz", bz, blen);
	rc = load(vm, kp, NULL, NULL, "console=ttyS0", false, &be, &err);
	const uint8_t *seg = gpa_ptr(vm, GPA(LNX_PHYS), textsz);
	snprintf(name, sizeof(name), "bz_%s_load", fmt);
	CHECKF(name, rc == 0 && be.mode == BOOT_LINUX64 && be.rip == LNX_PHYS + 0x10 && seg &&
			     memcmp(seg, v + 176 /* first segment data offset */, 64) == 0,
	       "rc %d (%s) rip 0x%llx", rc, err.msg, (unsigned long long)be.rip);
	const uint8_t *bp = gpa_ptr(vm, GPA(LOADER_BOOT_PARAMS), 4096);
	snprintf(name, sizeof(name), "bz_%s_header_copied", fmt);
	CHECKF(name, le32(bp + 0x24c) == clen && le32(bp + 0x260) == 0x800000 && le16(bp + 0x206) == 0x20f &&
			     bp[0x1f1] == BZ_SETUP_SECTS,
	       "setup header not copied");
	snprintf(name, sizeof(name), "bz_%s_mptable", fmt);
	check_mptable(name, vm, 2);
	snprintf(name, sizeof(name), "bz_%s", fmt);
	check_linux_acpi(name, vm, 2);

	/* corrupt the compressed stream (keep the magic) */
	uint8_t *bad = malloc(blen);
	memcpy(bad, bz, blen);
	size_t p0 = BZ_PM_OFF + BZ_PAYLOAD_REL;
	for (size_t i = 10; i < clen - 8 && i < 400; i++)
		bad[p0 + i] ^= 0xa5;
	snprintf(name, sizeof(name), "bz_%s_corrupt_stream", fmt);
	expect_fail(name, vm, write_tmp("bz-bad", bad, blen), NULL, NULL, NULL, false, "--no-decompress", NULL);
	/* truncate the payload (header says longer than the file) */
	snprintf(name, sizeof(name), "bz_%s_truncated_file", fmt);
	expect_fail(name, vm, write_tmp("bz-trunc", bz, blen - 0x60 - clen / 2), NULL, NULL, NULL, false, "truncated",
		    NULL);
	/* payload length shrunk: the stream ends early */
	memcpy(bad, bz, blen);
	put32(bad + 0x24c, (uint32_t)(clen / 2));
	snprintf(name, sizeof(name), "bz_%s_short_payload", fmt);
	expect_fail(name, vm, write_tmp("bz-short", bad, blen), NULL, NULL, NULL, false, "", NULL);
	free(bad);
	free(bz);
	free(c);
	free(v);
	fake_vm_free(vm);
}

static void test_bz_headers(void)
{
	size_t vlen, clen, blen;
	uint8_t *v = mk_vmlinux(&vlen, 0x4000);
	uint8_t *c = comp_lz4(v, vlen, &clen);
	uint8_t *bz = mk_bz(c, clen, 0x20f, &blen);
	uint8_t *b = malloc(blen);
	struct vm *vm = fake_vm_new(64 * MiB, 1);

	memcpy(b, bz, blen);
	put16(b + 0x206, 0x205);
	expect_fail("bz_version_too_old", vm, write_tmp("v205", b, blen), NULL, NULL, NULL, false, "2.05", NULL);
	memcpy(b, bz, blen);
	put16(b + 0x206, 0x20b);
	expect_fail("bz_no_64bit_protocol", vm, write_tmp("v20b", b, blen), NULL, NULL, NULL, false, "64-bit", NULL);
	memcpy(b, bz, blen);
	put16(b + 0x236, 0);
	expect_fail("bz_no_xlf_kernel_64", vm, write_tmp("xlf", b, blen), NULL, NULL, NULL, false, "64-bit", NULL);
	memcpy(b, bz, blen);
	b[0x211] = 0;
	expect_fail("bz_not_loaded_high", vm, write_tmp("zimage", b, blen), NULL, NULL, NULL, false, "zImage", NULL);
	memcpy(b, bz, blen);
	put32(b + 0x248, 0x7ffffff0);
	expect_fail("bz_payload_offset_beyond_file", vm, write_tmp("poff", b, blen), NULL, NULL, NULL, false, "payload",
		    "beyond", NULL);
	memcpy(b, bz, blen);
	put32(b + 0x248, 0xfffffffc);
	put32(b + 0x24c, 0xfffffffc);
	expect_fail("bz_payload_overflow", vm, write_tmp("povf", b, blen), NULL, NULL, NULL, false, "payload", NULL);
	memcpy(b, bz, blen);
	b[0x201] = 0x10;
	expect_fail("bz_short_header", vm, write_tmp("shorthdr", b, blen), NULL, NULL, NULL, false, "corrupt", NULL);
	memcpy(b, bz, blen);
	put32(b + 0x1f4, 0x10000000);
	expect_fail("bz_syssize_beyond_file", vm, write_tmp("sys", b, blen), NULL, NULL, NULL, false, "truncated", NULL);
	expect_fail("bz_truncated_in_header", vm, write_tmp("t300", bz, 0x210), NULL, NULL, NULL, false, "truncated",
		    NULL);
	expect_fail("bz_truncated_in_setup", vm, write_tmp("t800", bz, 0x800), NULL, NULL, NULL, false, "truncated",
		    NULL);
	/* unknown/unsupported payload: falls back to the protected-mode kernel */
	memcpy(b, bz, blen);
	memcpy(b + BZ_PM_OFF + BZ_PAYLOAD_REL, "BZh9", 4);
	struct boot_entry be;
	struct tvm_err err;
	int rc = load(vm, write_tmp("bzip2", b, blen), NULL, NULL, NULL, false, &be, &err);
	const uint8_t *pm = gpa_ptr(vm, GPA(0x100000), blen - BZ_PM_OFF);
	CHECKF("bz_bzip2_falls_back", rc == 0 && be.mode == BOOT_LINUX64 && be.rip == 0x100200 && pm &&
					      memcmp(pm, b + BZ_PM_OFF, blen - BZ_PM_OFF) == 0,
	       "rc %d (%s) rip 0x%llx", rc, err.msg, (unsigned long long)be.rip);
	uint8_t *out = (uint8_t *)1;
	size_t ol;
	rc = bzimage_decompress(b, blen, &out, &ol, &err);
	CHECKF("bz_bzip2_decompress_refused", rc == -1 && out == NULL && strstr(err.msg, "bzip2"), "rc %d %s", rc,
	       err.msg);
	rc = load(vm, write_tmp("nodec", bz, blen), NULL, NULL, "x", true, &be, &err);
	CHECKF("bz_no_decompress", rc == 0 && be.rip == 0x100200 && be.arg == LOADER_BOOT_PARAMS, "rc %d (%s)", rc,
	       err.msg);
	/* pref_address + init_size beyond RAM with --no-decompress */
	memcpy(b, bz, blen);
	put32(b + 0x260, 0x4000000);
	expect_fail("bz_no_decompress_init_size_too_big", vm, write_tmp("initsz", b, blen), NULL, NULL, NULL, true,
		    "--mem", NULL);
	/* decompressed payload that is not an ELF */
	uint8_t junk[4096];
	memset(junk, 0x42, sizeof(junk));
	size_t jl;
	uint8_t *jc = comp_zstd(junk, sizeof(junk), &jl);
	uint8_t *jb = mk_bz(jc, jl, 0x20f, &blen);
	expect_fail("bz_payload_not_elf", vm, write_tmp("notelf", jb, blen), NULL, NULL, NULL, false, "not an ELF64",
		    NULL);
	free(jc);
	free(jb);
	/* decompression bomb is bounded: zstd of 1.1 GiB zeros would be tiny; use the size limit via lz4 blocks */
	free(b);
	free(bz);
	free(c);
	free(v);
	fake_vm_free(vm);
}

static void test_bomb(void)
{
	/* 136 blocks of 8 MiB zeros > 1 GiB: must stop with a size error. */
	size_t blk = 8u << 20;
	uint8_t *zero = calloc(1, blk);
	int cb = LZ4_compressBound((int)blk);
	uint8_t *one = malloc((size_t)cb);
	int c = LZ4_compress_default((const char *)zero, (char *)one, (int)blk, cb);
	size_t nblk = 136, plen = 4 + nblk * (4 + (size_t)c) + 4;
	uint8_t *p = malloc(plen);
	put32(p, 0x184c2102);
	size_t pos = 4;
	for (size_t i = 0; i < nblk; i++) {
		put32(p + pos, (uint32_t)c);
		memcpy(p + pos + 4, one, (size_t)c);
		pos += 4 + (size_t)c;
	}
	put32(p + pos, 0);
	size_t blen;
	uint8_t *bz = mk_bz(p, plen, 0x20f, &blen);
	uint8_t *out = NULL;
	size_t ol = 0;
	struct tvm_err err;
	int rc = bzimage_decompress(bz, blen, &out, &ol, &err);
	CHECKF("bz_decompression_bomb_bounded", rc == -1 && strstr(err.msg, "MiB") && !out, "rc %d (%s)", rc, err.msg);
	free(out);
	free(bz);
	free(p);
	free(one);
	free(zero);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fuzz_one(const char *name, const uint8_t *img, size_t len, size_t hot, int iters, struct vm *vm)
{
	uint8_t *b = malloc(len);
	int crashes = 0, loaded = 0;
	struct boot_entry be;
	struct tvm_err err;
	for (int it = 0; it < iters; it++) {
		memcpy(b, img, len);
		size_t n = len;
		int flips = 1 + (int)(rnd() % 8);
		for (int f = 0; f < flips; f++) {
			size_t at = (size_t)(rnd() % (rnd() % 2 ? hot : len));
			b[at] = (uint8_t)rnd();
		}
		if (rnd() % 4 == 0)
			n = (size_t)(rnd() % len);
		const char *p = write_tmp("fuzz", b, n);
		int rc = load(vm, p, NULL, NULL, "x", rnd() % 5 == 0, &be, &err);
		if (rc == 0)
			loaded++;
		else if (rc != -1 || !err.msg[0])
			crashes++;
	}
	CHECKF(name, crashes == 0, "%d bad results", crashes);
	if (verbose)
		printf("  # %s: %d/%d loaded\n", name, loaded, iters);
	free(b);
}

static void test_fuzz(void)
{
	struct vm *vm = fake_vm_new(64 * MiB, 2);
	size_t len, vlen, clen, blen;
	quiet_load = true;
	uint8_t *k = mk_pvh(&len, 4, PVH_BASE, 0x5000);
	fuzz_one("fuzz_pvh_elf", k, len, 64 + 2 * 56, 1500, vm);
	free(k);
	uint8_t *v = mk_vmlinux(&vlen, 0x4000);
	fuzz_one("fuzz_vmlinux_elf", v, vlen, 64 + 2 * 56, 1000, vm);
	compfn comps[] = { comp_lz4, comp_gzip, comp_xz, comp_zstd };
	const char *names[] = { "fuzz_bz_lz4", "fuzz_bz_gzip", "fuzz_bz_xz", "fuzz_bz_zstd" };
	for (int i = 0; i < 4; i++) {
		uint8_t *c = comps[i](v, vlen, &clen);
		uint8_t *bz = mk_bz(c, clen, 0x20f, &blen);
		fuzz_one(names[i], bz, blen, BZ_PM_OFF + BZ_PAYLOAD_REL + 64, 600, vm);
		free(bz);
		free(c);
	}
	free(v);
	fake_vm_free(vm);
	quiet_load = false;
}

/* The DSDT's virtio-mmio devices: exact AML for one transport (the body
 * iasl compiles from Scope (_SB) { Device (COM1) {...} Device (VR00) {...}
 * Device (PEVT) {...} }, the End Tag checksums filled in, which iasl leaves
 * 0), the parsed shape for 0-ACPI_MAX_VIRTIO transports,
 * and the argument checks. */
static void test_acpi_dsdt(void)
{
	static const uint8_t one[] = {
		0x10, 0x44, 0x0a, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x31, 0x43, 0x4f, 0x4d, 0x31, 0x08, 0x5f,
		0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x05, 0x01, 0x08, 0x5f, 0x55, 0x49, 0x44, 0x01, 0x08, 0x5f,
		0x43, 0x52, 0x53, 0x11, 0x16, 0x0a, 0x13, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x89,
		0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00, 0x79, 0xa9, 0x5b, 0x82, 0x3a, 0x56, 0x52, 0x30,
		0x30, 0x08, 0x5f, 0x48, 0x49, 0x44, 0x0d, 0x4c, 0x4e, 0x52, 0x4f, 0x30, 0x30, 0x30, 0x35, 0x00,
		0x08, 0x5f, 0x55, 0x49, 0x44, 0x00, 0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x1a, 0x0a, 0x17, 0x86,
		0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00, 0x89, 0x06, 0x00, 0x01, 0x01,
		0x05, 0x00, 0x00, 0x00, 0x79, 0x81, 0x5b, 0x82, 0x2d, 0x50, 0x45, 0x56, 0x54, 0x08, 0x5f, 0x48,
		0x49, 0x44, 0x0d, 0x51, 0x45, 0x4d, 0x55, 0x30, 0x30, 0x30, 0x31, 0x00, 0x08, 0x5f, 0x55, 0x49,
		0x44, 0x00, 0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x0d, 0x0a, 0x0a, 0x47, 0x01, 0x05, 0x05, 0x05,
		0x05, 0x01, 0x01, 0x79, 0x29,
	};
	struct acpi_mmio_dev v[ACPI_MAX_VIRTIO + 1];
	for (unsigned i = 0; i < ACPI_MAX_VIRTIO + 1; i++)
		v[i] = (struct acpi_mmio_dev){ TVM_VIRTIO_MMIO_BASE + i * TVM_VIRTIO_MMIO_STRIDE, TVM_VIRTIO_MMIO_STRIDE,
					       TVM_VIRTIO_IRQ(i % TVM_VIRTIO_MMIO_SLOTS) };
	struct tvm_err err;
	uint64_t rsdp = 0;
	char name[64];

	struct vm *vm = fake_vm_new(16 * MiB, 1);
	bool ok = acpi_write(vm, 1, v, 1, &rsdp, &err) == 0;
	const uint8_t *r = ok ? gpa_ptr(vm, GPA(rsdp), 36) : NULL;
	const uint8_t *x = r ? gpa_ptr(vm, GPA(le64(r + 24)), 44) : NULL;
	const uint8_t *f = x ? gpa_ptr(vm, GPA(le64(x + 36)), 276) : NULL;
	const uint8_t *d = f ? gpa_ptr(vm, GPA(le64(f + 140)), 36 + sizeof(one)) : NULL;
	CHECKF("acpi_dsdt_1_virtio_bytes",
	       d && le32(d + 4) == 36 + sizeof(one) && memcmp(d + 36, one, sizeof(one)) == 0 && sum_ok(d, le32(d + 4)),
	       "rc %d (%s), DSDT length %u", ok ? 0 : -1, ok ? "" : err.msg, d ? le32(d + 4) : 0);
	/* the reader itself: it accepts that table, and no single flipped bit
	 * of the body gets past it */
	uint8_t copy[36 + sizeof(one)];
	char why[200];
	int missed = -1;
	if (d) {
		memcpy(copy, d, sizeof(copy));
		missed = check_dsdt(copy, v, 1, why, sizeof(why)) ? 0 : -2;
		for (size_t i = 36; missed == 0 && i < sizeof(copy); i++)
			for (int bit = 0; missed == 0 && bit < 8; bit++) {
				copy[i] ^= (uint8_t)(1u << bit);
				if (check_dsdt(copy, v, 1, why, sizeof(why)))
					missed = (int)i;
				copy[i] ^= (uint8_t)(1u << bit);
			}
	}
	CHECKF("acpi_dsdt_reader_catches_bit_flips", missed == 0, "reader result %d", missed);
	fake_vm_free(vm);

	const unsigned ns[] = { 0, 1, 3, TVM_VIRTIO_MMIO_SLOTS, ACPI_MAX_VIRTIO };
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		vm = fake_vm_new(16 * MiB, 4);
		snprintf(name, sizeof(name), "acpi_dsdt_%u_virtio", ns[i]);
		if (acpi_write(vm, 4, v, ns[i], &rsdp, &err) < 0)
			CHECKF(name, false, "%s", err.msg);
		else
			check_acpi(name, vm, 4, v, ns[i]);
		fake_vm_free(vm);
	}

	/* a window ending exactly at 4 GiB is fine */
	vm = fake_vm_new(16 * MiB, 1);
	struct acpi_mmio_dev top = { 0xfffff000u, 0x1000, 23 };
	snprintf(name, sizeof(name), "acpi_dsdt_virtio_at_4g");
	if (acpi_write(vm, 1, &top, 1, &rsdp, &err) < 0)
		CHECKF(name, false, "%s", err.msg);
	else
		check_acpi(name, vm, 1, &top, 1);

	struct {
		const char *name;
		struct acpi_mmio_dev d;
	} bad[] = {
		{ "empty", { 0xd0000000u, 0, 5 } },
		{ "above_4g", { 0x100000000ull, 0x1000, 5 } },
		{ "crosses_4g", { 0xfffff000u, 0x2000, 5 } },
		{ "gsi_24", { 0xd0000000u, 0x1000, 24 } },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rsdp = 0;
		memset(&err, 0, sizeof(err));
		snprintf(name, sizeof(name), "acpi_dsdt_rejects_%s", bad[i].name);
		CHECKF(name, acpi_write(vm, 1, &bad[i].d, 1, &rsdp, &err) == -1 && rsdp == 0 && strstr(err.msg, "virtio"),
		       "rc/message wrong: %s", err.msg);
	}
	rsdp = 0;
	CHECKF("acpi_dsdt_rejects_too_many",
	       acpi_write(vm, 1, v, ACPI_MAX_VIRTIO + 1, &rsdp, &err) == -1 && rsdp == 0 && strstr(err.msg, "virtio") &&
		       acpi_write(vm, 1, NULL, 1, &rsdp, &err) == -1 && rsdp == 0,
	       "accepted");
	fake_vm_free(vm);
}

static void test_acpi(void)
{
	int ns[] = { 1, 2, 4, 40, 41, 64 };
	struct tvm_err err;
	char name[64];
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct vm *vm = fake_vm_new(16 * MiB, ns[i]);
		uint64_t rsdp = 0;
		snprintf(name, sizeof(name), "acpi_%d_cpus", ns[i]);
		if (acpi_write(vm, ns[i], NULL, 0, &rsdp, &err) < 0) {
			CHECKF(name, false, "%s", err.msg);
		} else {
			uint64_t found = check_acpi(name, vm, ns[i], NULL, 0);
			snprintf(name, sizeof(name), "acpi_%d_cpus_rsdp_returned", ns[i]);
			CHECKF(name, found && found == rsdp, "returned 0x%llx, found 0x%llx", (unsigned long long)rsdp,
			       (unsigned long long)found);
			/* both tables, as load_kernel writes them: neither clobbers the other */
			snprintf(name, sizeof(name), "acpi_%d_cpus_with_mptable", ns[i]);
			if (mptable_write(vm, ns[i], &err) < 0) {
				CHECKF(name, false, "%s", err.msg);
			} else {
				check_mptable(name, vm, ns[i]);
				snprintf(name, sizeof(name), "acpi_%d_cpus_after_mptable", ns[i]);
				check_acpi(name, vm, ns[i], NULL, 0);
			}
		}
		fake_vm_free(vm);
	}
	struct vm *vm = fake_vm_new(16 * MiB, 1);
	uint64_t rsdp = 0;
	CHECKF("acpi_rejects_bad_count", acpi_write(vm, 0, NULL, 0, &rsdp, &err) == -1 && strstr(err.msg, "vCPUs") &&
						 acpi_write(vm, TVM_MAX_VCPUS + 1, NULL, 0, &rsdp, &err) == -1 && rsdp == 0,
	       "accepted");
	fake_vm_free(vm);
	vm = fake_vm_new(0x80000, 1); /* RAM ends below the ACPI area */
	memset(&err, 0, sizeof(err));
	CHECKF("acpi_ram_too_small", acpi_write(vm, 1, NULL, 0, &rsdp, &err) == -1 && strstr(err.msg, "ACPI") && rsdp == 0,
	       "rc/message wrong: %s", err.msg);
	fake_vm_free(vm);
	test_acpi_dsdt();
}

static void test_mptable(void)
{
	int ns[] = { 2, 4, 40, 41, 64 };
	struct tvm_err err;
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		struct vm *vm = fake_vm_new(16 * MiB, ns[i]);
		char name[64];
		snprintf(name, sizeof(name), "mptable_%d_cpus", ns[i]);
		if (mptable_write(vm, ns[i], &err) < 0)
			CHECKF(name, false, "%s", err.msg);
		else
			check_mptable(name, vm, ns[i]);
		fake_vm_free(vm);
	}
	struct vm *vm = fake_vm_new(16 * MiB, 1);
	CHECKF("mptable_rejects_bad_count", mptable_write(vm, 0, &err) == -1 && mptable_write(vm, 65, &err) == -1,
	       "accepted");
	fake_vm_free(vm);
}

static void test_debian(const char *path)
{
	size_t len;
	uint8_t *img = slurp(path, &len);
	if (!img) {
		SKIP("debian_bzimage", "no Debian kernel (images/fetch-debian-kernel.sh build/images/debian, or TVM_DEBIAN_KERNEL)");
		return;
	}
	struct tvm_err err;
	uint8_t *out = NULL;
	size_t ol = 0;
	uint16_t ver = le16(img + 0x206);
	uint32_t po = le32(img + 0x248);
	size_t pm = ((size_t)(img[0x1f1] ? img[0x1f1] : 4) + 1) * 512;
	printf("  # debian: protocol %x, payload magic %02x %02x %02x %02x, %u bytes\n", ver, img[pm + po],
	       img[pm + po + 1], img[pm + po + 2], img[pm + po + 3], le32(img + 0x24c));
	int rc = bzimage_decompress(img, len, &out, &ol, &err);
	CHECKF("debian_decompress", rc == 0 && ol > 4 * MiB && out && le16(out + 18) == EM_X86_64 && out[EI_CLASS] == 2,
	       "rc %d (%s)", rc, err.msg);
	free(out);

	struct vm *vm = fake_vm_new(256 * MiB, 2);
	struct boot_entry be;
	uint8_t rd[300000];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i * 11);
	const char *rp = write_tmp("deb-initrd", rd, sizeof(rd));
	const char *cl = "console=ttyS0 earlyprintk=serial";
	struct acpi_mmio_dev vdev[3];
	for (unsigned i = 0; i < 3; i++)
		vdev[i] = (struct acpi_mmio_dev){ TVM_VIRTIO_MMIO_BASE + i * TVM_VIRTIO_MMIO_STRIDE,
						  TVM_VIRTIO_MMIO_STRIDE, TVM_VIRTIO_IRQ(i) };
	load_virtio = vdev;
	load_nvirtio = 3;
	rc = load(vm, path, rp, NULL, cl, false, &be, &err);
	CHECKF("debian_load", rc == 0 && be.mode == BOOT_LINUX64 && be.rip >= 0x1000000 && be.rip < 0x2000000 &&
				      be.arg == LOADER_BOOT_PARAMS,
	       "rc %d (%s) rip 0x%llx", rc, err.msg, (unsigned long long)be.rip);
	if (rc == 0) {
		printf("  # debian: entry 0x%llx\n", (unsigned long long)be.rip);
		const uint8_t *bp = gpa_ptr(vm, GPA(LOADER_BOOT_PARAMS), 4096);
		CHECKF("debian_header_copied", memcmp(bp + 0x1f1, img + 0x1f1, 0x210 - 0x1f1 - 0x10) == 0 &&
						       le32(bp + 0x260) == le32(img + 0x260),
		       "header differs");
		check_boot_params("debian", vm, cl, rd, sizeof(rd), le32(img + 0x22c));
		check_mptable("debian_mptable", vm, 2);
		check_linux_acpi("debian", vm, 2);
	}
	load_virtio = NULL;
	load_nvirtio = 0;
	rc = load(vm, path, NULL, NULL, cl, true, &be, &err);
	const uint8_t *pmk = gpa_ptr(vm, GPA(0x100000), len - pm);
	CHECKF("debian_no_decompress", rc == 0 && be.rip == 0x100200 && pmk && memcmp(pmk, img + pm, len - pm) == 0,
	       "rc %d (%s)", rc, err.msg);
	fake_vm_free(vm);

	vm = fake_vm_new(48 * MiB, 1);
	expect_fail("debian_ram_too_small", vm, path, NULL, NULL, NULL, false, "--mem", NULL);
	fake_vm_free(vm);
	vm = fake_vm_new(256 * MiB, 1);
	expect_fail("debian_cpio_rejected", vm, path, rp, rp, NULL, false, "--cpio", NULL);
	char big[2100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	expect_fail("debian_cmdline_too_long", vm, path, NULL, NULL, big, false, "shorten --cmdline", NULL);
	/* truncated real kernel, corrupted real lz4 stream */
	expect_fail("debian_truncated", vm, write_tmp("deb-trunc", img, len / 2), NULL, NULL, NULL, false, "truncated",
		    NULL);
	uint8_t *bad = malloc(len);
	memcpy(bad, img, len);
	for (size_t i = 8; i < 4096; i++)
		bad[pm + po + i] = 0xff;
	expect_fail("debian_corrupt_stream", vm, write_tmp("deb-bad", bad, len), NULL, NULL, NULL, false,
		    "--no-decompress", NULL);
	free(bad);
	fake_vm_free(vm);
	free(img);
}

static void test_trialos(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		SKIP("trialos_pvh", "no trialos ELF");
		return;
	}
	struct vm *vm = fake_vm_new(64 * MiB, 1);
	struct boot_entry be;
	struct tvm_err err;
	int rc = load(vm, path, NULL, NULL, "hello", false, &be, &err);
	struct hvm_start_info si;
	gpa_read(vm, GPA(TVM_PVH_START_INFO), &si, sizeof(si));
	CHECKF("trialos_pvh", rc == 0 && be.mode == BOOT_PVH32 && be.arg == TVM_PVH_START_INFO &&
				      si.magic == XEN_HVM_START_MAGIC_VALUE && si.version == 1,
	       "rc %d (%s) mode %d", rc, err.msg, be.mode);
	if (rc == 0)
		printf("  # trialos: PVH entry 0x%llx\n", (unsigned long long)be.rip);
	fake_vm_free(vm);
}

int main(int argc, char **argv)
{
	verbose = getenv("TVM_TEST_VERBOSE") != NULL;
	const char *deb = argc > 1 ? argv[1] : getenv("TVM_DEBIAN_KERNEL") ? getenv("TVM_DEBIAN_KERNEL") : "build/images/debian/vmlinuz";
	const char *tos = argc > 2 ? argv[2] : getenv("TVM_TRIALOS") ? getenv("TVM_TRIALOS") : "build/guests/trialos.elf";
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	test_bad_files();
	test_elf();
	test_vmlinux_elf();
	test_synthetic_bz("lz4", comp_lz4, 0x20000);
	test_synthetic_bz("lz4_multiblock", comp_lz4, 9 * MiB);
	test_synthetic_bz("gzip", comp_gzip, 0x20000);
	test_synthetic_bz("xz", comp_xz, 0x20000);
	test_synthetic_bz("zstd", comp_zstd, 0x20000);
	test_bz_headers();
	test_bomb();
	test_mptable();
	test_acpi();
	test_fuzz();
	test_debian(deb);
	test_trialos(tos);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
