/* vmm/linux.c - Linux x86 boot protocol: bzImage setup header, host-side
 * payload decompression (gzip, xz, zstd, lz4 legacy), boot_params ("zero
 * page") with e820/cmdline/initrd, and the 64-bit entry.
 * Facts from Documentation/arch/x86/boot.rst (boot protocol 2.12+). */
#include "loader_int.h"

#include <elf.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "../guests/include/trialvm_abi.h"
#include "util.h"

/* Setup header / boot_params offsets. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_HDR_MAX_END 0x290   /* boot_params room for the setup header */
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000

#define H_SETUP_SECTS 0x1f1
#define H_SYSSIZE 0x1f4
#define H_VID_MODE 0x1fa
#define H_BOOT_FLAG 0x1fe
#define H_JUMP 0x200
#define H_HEADER 0x202
#define H_VERSION 0x206
#define H_TYPE_OF_LOADER 0x210
#define H_LOADFLAGS 0x211
#define H_RAMDISK_IMAGE 0x218
#define H_RAMDISK_SIZE 0x21c
#define H_HEAP_END_PTR 0x224
#define H_CMD_LINE_PTR 0x228
#define H_INITRD_ADDR_MAX 0x22c
#define H_KERNEL_ALIGNMENT 0x230
#define H_RELOCATABLE 0x234
#define H_XLOADFLAGS 0x236
#define H_CMDLINE_SIZE 0x238
#define H_PAYLOAD_OFFSET 0x248
#define H_PAYLOAD_LENGTH 0x24c
#define H_PREF_ADDRESS 0x258
#define H_INIT_SIZE 0x260

#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01

#define LZ4_LEGACY_MAGIC 0x184c2102u
#define LZ4_LEGACY_BLOCK (8u << 20)

/* What the boot path needs from a bzImage's header. */
struct bzhdr {
	uint64_t pm_off;          /* file offset of the protected-mode kernel */
	uint64_t pm_len;
	size_t hdr_end;           /* end of the setup header in the file */
	uint16_t version;
	uint32_t payload_off;     /* absolute file offset */
	uint32_t payload_len;
	uint32_t init_size;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint64_t pref_address;
};

bool linux_is_bzimage(const uint8_t *img, size_t len)
{
	return len >= H_HEADER + 4 && memcmp(img + H_HEADER, "HdrS", 4) == 0;
}

static int bz_parse(const char *what, const uint8_t *img, size_t len, struct bzhdr *h, struct tvm_err *err)
{
	memset(h, 0, sizeof(*h));
	if (!linux_is_bzimage(img, len))
		return tvm_seterr(err, "%s is not a Linux bzImage (no \"HdrS\" setup header at 0x202)", what);
	if (len < H_VERSION + 2)
		return tvm_seterr(err, "%s is truncated inside its setup header (%zu bytes); re-copy the kernel", what, len);
	h->version = ldr_le16(img + H_VERSION);
	if (h->version < 0x206)
		return tvm_seterr(err, "%s uses boot protocol %u.%02u, older than the 2.06 trialvm needs; use a Linux kernel from 2.6.22 or later",
				  what, h->version >> 8, h->version & 0xff);
	if (len < H_JUMP + 2 || img[H_JUMP] != 0xeb)
		return tvm_seterr(err, "%s has a corrupt setup header (no short jump at 0x200); re-copy the kernel", what);
	h->hdr_end = H_HEADER + (size_t)img[H_JUMP + 1];
	size_t need = h->version >= 0x20a ? H_INIT_SIZE + 4 : h->version >= 0x208 ? H_PAYLOAD_LENGTH + 4 : H_CMDLINE_SIZE + 4;
	if (img[H_JUMP + 1] >= 0x80 || h->hdr_end < need)
		return tvm_seterr(err, "%s has a corrupt setup header (it ends at 0x%zx, protocol %u.%02u needs 0x%zx); re-copy the kernel",
				  what, h->hdr_end, h->version >> 8, h->version & 0xff, need);
	if (h->hdr_end > BP_HDR_MAX_END)
		h->hdr_end = BP_HDR_MAX_END;
	if (len < h->hdr_end)
		return tvm_seterr(err, "%s is truncated inside its setup header (%zu bytes, the header ends at 0x%zx); re-copy the kernel",
				  what, len, h->hdr_end);
	unsigned setup_sects = img[H_SETUP_SECTS] ? img[H_SETUP_SECTS] : 4;
	h->pm_off = (uint64_t)(setup_sects + 1) * 512;
	if (len <= h->pm_off)
		return tvm_seterr(err, "%s is truncated: it ends (%zu bytes) before its protected-mode kernel at 0x%llx; re-copy the kernel",
				  what, len, (unsigned long long)h->pm_off);
	h->pm_len = len - h->pm_off;
	uint64_t sys = (uint64_t)ldr_le32(img + H_SYSSIZE) * 16;
	if (sys == 0 || sys > h->pm_len + 16)
		return tvm_seterr(err, "%s is truncated: its header says the kernel after the setup code is %llu bytes, the file has %llu; re-copy the kernel",
				  what, (unsigned long long)sys, (unsigned long long)h->pm_len);
	if (!(img[H_LOADFLAGS] & LOADED_HIGH))
		return tvm_seterr(err, "%s is a zImage (not loaded high); trialvm boots bzImages only", what);
	if (h->version < 0x20c || !(ldr_le16(img + H_XLOADFLAGS) & XLF_KERNEL_64))
		return tvm_seterr(err, "%s has no 64-bit entry point (boot protocol %u.%02u, XLF_KERNEL_64 unset); use a 64-bit x86 kernel (Linux 3.8 or later)",
				  what, h->version >> 8, h->version & 0xff);
	h->cmdline_size = ldr_le32(img + H_CMDLINE_SIZE);
	h->initrd_addr_max = ldr_le32(img + H_INITRD_ADDR_MAX);
	h->pref_address = ldr_le64(img + H_PREF_ADDRESS);
	h->init_size = ldr_le32(img + H_INIT_SIZE);
	uint32_t align = ldr_le32(img + H_KERNEL_ALIGNMENT);
	if (img[H_RELOCATABLE] && (align == 0 || (align & (align - 1))))
		return tvm_seterr(err, "%s has a corrupt setup header (kernel_alignment 0x%x is not a power of two)", what, align);
	uint32_t po = ldr_le32(img + H_PAYLOAD_OFFSET), pl = ldr_le32(img + H_PAYLOAD_LENGTH);
	uint64_t pend = h->pm_off + (uint64_t)po + pl;
	if (pend > len || pl < 4)
		return tvm_seterr(err, "%s is truncated or corrupt: its compressed payload (offset 0x%llx, %u bytes) lies beyond the end of the file (%zu bytes); re-copy the kernel",
				  what, (unsigned long long)(h->pm_off + po), pl, len);
	if (h->pm_off + po > UINT32_MAX)
		return tvm_seterr(err, "%s has a corrupt payload offset", what);
	h->payload_off = (uint32_t)(h->pm_off + po);
	h->payload_len = pl;
	return 0;
}

/* ---------------------------------------------------------------- decompression */

enum pfmt { PF_NONE, PF_GZIP, PF_XZ, PF_ZSTD, PF_LZ4, PF_BZIP2, PF_LZMA, PF_LZO, PF_UNKNOWN };
static const char *const pfmt_name[] = { "uncompressed", "gzip", "xz", "zstd", "lz4", "bzip2", "lzma", "lzo", "unknown" };

static enum pfmt payload_format(const uint8_t *p, size_t n)
{
	if (n >= 4 && memcmp(p, ELFMAG, SELFMAG) == 0)
		return PF_NONE;
	if (n >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return PF_GZIP;
	if (n >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0)
		return PF_XZ;
	if (n >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0)
		return PF_ZSTD;
	if (n >= 4 && ldr_le32(p) == LZ4_LEGACY_MAGIC)
		return PF_LZ4;
	if (n >= 3 && memcmp(p, "BZh", 3) == 0)
		return PF_BZIP2;
	if (n >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0)
		return PF_LZMA;
	if (n >= 4 && memcmp(p, "\x89LZO", 4) == 0)
		return PF_LZO;
	return PF_UNKNOWN;
}

struct obuf {
	uint8_t *p;
	size_t len, cap;
};

/* Make at least `want` bytes (>= 1) free, never growing past the limit. */
static int ob_grow(struct obuf *b, size_t want, const char *fmt, struct tvm_err *err)
{
	if (b->cap - b->len >= want)
		return 0;
	if (b->len >= LOADER_MAX_DECOMPRESSED)
		return tvm_seterr(err, "the %s payload decompresses to more than %llu MiB; the kernel image is corrupt or hostile",
				  fmt, LOADER_MAX_DECOMPRESSED >> 20);
	size_t ncap = b->cap ? b->cap : (16u << 20);
	while (ncap - b->len < want && ncap < LOADER_MAX_DECOMPRESSED)
		ncap *= 2;
	if (ncap > LOADER_MAX_DECOMPRESSED)
		ncap = LOADER_MAX_DECOMPRESSED;
	if (ncap <= b->cap)
		return tvm_seterr(err, "the %s payload decompresses to more than %llu MiB; the kernel image is corrupt or hostile",
				  fmt, LOADER_MAX_DECOMPRESSED >> 20);
	uint8_t *np = realloc(b->p, ncap);
	if (!np)
		return tvm_seterr(err, "out of memory decompressing the %s payload (%zu MiB)", fmt, ncap >> 20);
	b->p = np;
	b->cap = ncap;
	return 0;
}

static int un_gzip(const uint8_t *in, size_t n, struct obuf *b, struct tvm_err *err)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
		return tvm_seterr(err, "zlib initialisation failed");
	s.next_in = (Bytef *)(uintptr_t)in;
	s.avail_in = (uInt)n; /* n <= UINT32_MAX */
	int rc = -1;
	for (;;) {
		if (ob_grow(b, 1, "gzip", err) < 0)
			break;
		size_t room = b->cap - b->len;
		s.next_out = b->p + b->len;
		s.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		uInt before = s.avail_out;
		int zr = inflate(&s, Z_NO_FLUSH);
		b->len += before - s.avail_out;
		if (zr == Z_STREAM_END) {
			rc = 0;
			break;
		}
		if (zr == Z_BUF_ERROR && s.avail_in == 0) {
			tvm_seterr(err, "the gzip payload is truncated");
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			tvm_seterr(err, "the gzip payload is corrupt (%s)", s.msg ? s.msg : "inflate error");
			break;
		}
	}
	inflateEnd(&s);
	return rc;
}

static int un_xz(const uint8_t *in, size_t n, struct obuf *b, struct tvm_err *err)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, 512u << 20, 0) != LZMA_OK)
		return tvm_seterr(err, "liblzma initialisation failed");
	s.next_in = in;
	s.avail_in = n;
	int rc = -1;
	for (;;) {
		if (ob_grow(b, 1, "xz", err) < 0)
			break;
		s.next_out = b->p + b->len;
		s.avail_out = b->cap - b->len;
		size_t before = s.avail_out;
		lzma_ret r = lzma_code(&s, LZMA_FINISH);
		b->len += before - s.avail_out;
		if (r == LZMA_STREAM_END) {
			rc = 0;
			break;
		}
		if (r == LZMA_OK)
			continue;
		if (r == LZMA_BUF_ERROR && s.avail_in == 0)
			tvm_seterr(err, "the xz payload is truncated");
		else
			tvm_seterr(err, "the xz payload is corrupt (liblzma error %d)", (int)r);
		break;
	}
	lzma_end(&s);
	return rc;
}

static int un_zstd(const uint8_t *in, size_t n, struct obuf *b, struct tvm_err *err)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	if (!d)
		return tvm_seterr(err, "zstd initialisation failed");
	ZSTD_inBuffer ib = { in, n, 0 };
	int rc = -1;
	for (;;) {
		if (ob_grow(b, 1, "zstd", err) < 0)
			break;
		ZSTD_outBuffer ob = { b->p + b->len, b->cap - b->len, 0 };
		size_t r = ZSTD_decompressStream(d, &ob, &ib);
		b->len += ob.pos;
		if (ZSTD_isError(r)) {
			tvm_seterr(err, "the zstd payload is corrupt (%s)", ZSTD_getErrorName(r));
			break;
		}
		if (r == 0) { /* frame complete; Linux's appended size follows */
			rc = 0;
			break;
		}
		if (ib.pos == ib.size && ob.pos < ob.size) {
			tvm_seterr(err, "the zstd payload is truncated");
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return rc;
}

/* Linux's lz4 "legacy" framing: u32 magic, then [u32 LE size][block] ...,
 * each block decompressing to at most 8 MiB; the stream ends at the end of
 * the data or at a size word that cannot be a block (Linux appends the
 * uncompressed size as a final u32). A repeated magic starts a new stream. */
static int un_lz4(const uint8_t *in, size_t n, struct obuf *b, struct tvm_err *err)
{
	size_t pos = 4, blocks = 0;
	const uint32_t bound = (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK);
	while (n - pos >= 4) {
		uint32_t cs = ldr_le32(in + pos);
		if (cs == LZ4_LEGACY_MAGIC) {
			pos += 4;
			continue;
		}
		if (cs == 0 || cs > bound)
			break; /* trailer */
		if (cs > n - pos - 4) {
			if (blocks && n - pos == 4)
				break; /* the appended size of a small kernel */
			return tvm_seterr(err, "the lz4 payload is truncated (block %zu at offset 0x%zx needs %u bytes, %zu remain)",
					  blocks, pos, cs, n - pos - 4);
		}
		pos += 4;
		size_t room = LOADER_MAX_DECOMPRESSED - b->len;
		if (room > LZ4_LEGACY_BLOCK)
			room = LZ4_LEGACY_BLOCK;
		if (room == 0 || ob_grow(b, room, "lz4", err) < 0)
			return room ? -1 : tvm_seterr(err, "the lz4 payload decompresses to more than %llu MiB; the kernel image is corrupt or hostile",
						      LOADER_MAX_DECOMPRESSED >> 20);
		int r = LZ4_decompress_safe((const char *)in + pos, (char *)b->p + b->len, (int)cs, (int)room);
		if (r < 0)
			return tvm_seterr(err, "the lz4 payload is corrupt (block %zu at offset 0x%zx does not decompress)",
					  blocks, pos - 4);
		b->len += (size_t)r;
		pos += cs;
		blocks++;
	}
	if (!blocks)
		return tvm_seterr(err, "the lz4 payload holds no data blocks");
	return 0;
}

static int decompress_payload(enum pfmt f, const uint8_t *p, size_t n, uint8_t **out, size_t *outlen,
			      struct tvm_err *err)
{
	struct obuf b = { 0 };
	/* Linux appends the uncompressed size: a good first guess, never trusted. */
	uint32_t hint = ldr_le32(p + n - 4);
	size_t first = hint >= (1u << 20) && hint <= LOADER_MAX_DECOMPRESSED ? (size_t)hint + 4096 : (64u << 20);
	if (f == PF_NONE)
		first = n;
	if (first > LOADER_MAX_DECOMPRESSED)
		return tvm_seterr(err, "the uncompressed payload is larger than %llu MiB", LOADER_MAX_DECOMPRESSED >> 20);
	b.p = malloc(first);
	if (!b.p)
		return tvm_seterr(err, "out of memory for the decompressed kernel (%zu MiB)", first >> 20);
	b.cap = first;
	int rc;
	switch (f) {
	case PF_NONE:
		memcpy(b.p, p, n);
		b.len = n;
		rc = 0;
		break;
	case PF_GZIP: rc = un_gzip(p, n, &b, err); break;
	case PF_XZ: rc = un_xz(p, n, &b, err); break;
	case PF_ZSTD: rc = un_zstd(p, n, &b, err); break;
	case PF_LZ4: rc = un_lz4(p, n, &b, err); break;
	default:
		rc = tvm_seterr(err, "the payload is %s-compressed, which trialvm cannot decompress on the host",
				pfmt_name[f]);
	}
	if (rc == 0 && (b.len < sizeof(Elf64_Ehdr) || memcmp(b.p, ELFMAG, SELFMAG) != 0 ||
			b.p[EI_CLASS] != ELFCLASS64 || ldr_le16(b.p + 18) != EM_X86_64))
		rc = tvm_seterr(err, "the %s payload decompressed to %zu bytes that are not an ELF64 x86-64 vmlinux",
				pfmt_name[f], b.len);
	if (rc < 0) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

int bzimage_decompress(const uint8_t *img, size_t len, uint8_t **out, size_t *outlen, struct tvm_err *err)
{
	struct bzhdr h;
	*out = NULL;
	*outlen = 0;
	if (bz_parse("the bzImage", img, len, &h, err) < 0)
		return -1;
	const uint8_t *p = img + h.payload_off;
	struct tvm_err e2;
	if (decompress_payload(payload_format(p, h.payload_len), p, h.payload_len, out, outlen, &e2) < 0)
		return tvm_seterr(err, "bzImage: %s", e2.msg);
	return 0;
}

/* ---------------------------------------------------------------- boot_params */

struct linux_setup {
	const uint8_t *hdr;       /* the bzImage (setup header copied from it), or NULL */
	size_t hdr_end;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint64_t klo, khi;        /* kernel footprint, for initrd placement */
};

/* Where the word "--" (outside quotes) begins in cmdline, as Linux's
 * parser finds it, with the spaces before it skipped back over; strlen
 * when there is none. */
static size_t dashes_at(const char *c)
{
	bool quoted = false;
	size_t i = 0;
	for (;;) {
		while (c[i] == ' ' || c[i] == '\t' || c[i] == '\n')
			i++;
		if (!c[i])
			break;
		size_t w = i;
		for (; c[i] && (quoted || !(c[i] == ' ' || c[i] == '\t' || c[i] == '\n')); i++)
			if (c[i] == '"')
				quoted = !quoted;
		if (i - w == 2 && c[w] == '-' && c[w + 1] == '-') {
			while (w > 0 && (c[w - 1] == ' ' || c[w - 1] == '\t' || c[w - 1] == '\n'))
				w--;
			return w;
		}
	}
	return strlen(c);
}

static int linux_finish(struct vm *vm, const struct load_opts *o, const struct linux_setup *ls,
			uint64_t rip, struct boot_entry *entry, struct tvm_err *err)
{
	/* The user's command line, then what trialvm adds for Linux (the
	 * virtio-mmio devices). */
	const char *user = o->cmdline ? o->cmdline : "";
	const char *extra = o->linux_cmdline_extra ? o->linux_cmdline_extra : "";
	/* Linux gives the words after a "--" to init: trialvm's own go before it. */
	size_t head = dashes_at(user);
	char cmd[4096];
	int n = snprintf(cmd, sizeof(cmd), "%.*s%s%s%s%s", (int)head, user, (head && *extra) ? " " : "", extra,
			 (user[head] && !head && *extra) ? " " : "", user + head);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return tvm_seterr(err, "the command line is longer than %zu bytes; shorten --cmdline", sizeof(cmd) - 1);
	size_t clen = strlen(cmd);
	uint32_t cmax = ls->cmdline_size < 0xfff ? ls->cmdline_size : 0xfff;
	if (clen > cmax)
		return tvm_seterr(err, "the command line is %zu bytes; kernel '%s' accepts at most %u; shorten --cmdline",
				  clen, o->kernel, cmax);

	uint8_t bp[BP_SIZE];
	memset(bp, 0, sizeof(bp));
	if (ls->hdr) {
		memcpy(bp + BP_HDR, ls->hdr + BP_HDR, ls->hdr_end - BP_HDR);
	} else {
		ldr_put16(bp + H_BOOT_FLAG, 0xaa55);
		memcpy(bp + H_HEADER, "HdrS", 4);
		ldr_put16(bp + H_VERSION, 0x20f);
		bp[H_LOADFLAGS] = LOADED_HIGH;
		ldr_put32(bp + H_INITRD_ADDR_MAX, ls->initrd_addr_max);
		ldr_put32(bp + H_KERNEL_ALIGNMENT, 0x200000);
		ldr_put16(bp + H_XLOADFLAGS, XLF_KERNEL_64);
		ldr_put32(bp + H_CMDLINE_SIZE, ls->cmdline_size);
		ldr_put32(bp + H_INIT_SIZE, (uint32_t)(ls->khi - ls->klo));
	}
	ldr_put16(bp + H_VID_MODE, 0xffff);
	bp[H_TYPE_OF_LOADER] = 0xff;
	bp[H_LOADFLAGS] |= CAN_USE_HEAP | LOADED_HIGH;
	ldr_put16(bp + H_HEAP_END_PTR, 0xfe00);
	ldr_put32(bp + H_CMD_LINE_PTR, LOADER_LINUX_CMDLINE);

	if (o->initrd) {
		struct ldr_busy busy = { 0 };
		ldr_busy_add(&busy, ls->klo & ~(LDR_PAGE - 1), ls->khi);
		uint64_t limit = (uint64_t)ls->initrd_addr_max + 1, low = ldr_low_ram_end(vm);
		if (limit > low)
			limit = low;
		if (limit > TVM_4G)
			limit = TVM_4G;
		uint64_t at, size;
		if (ldr_load_module(vm, "initrd", "--initrd", o->initrd, LDR_MIB, limit, &busy, &at, &size, err) < 0)
			return -1;
		if (size > UINT32_MAX)
			return tvm_seterr(err, "initrd '%s' is larger than 4 GiB", o->initrd);
		ldr_put32(bp + H_RAMDISK_IMAGE, (uint32_t)at);
		ldr_put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(at >> 32));
		ldr_put32(bp + H_RAMDISK_SIZE, (uint32_t)size);
		ldr_put32(bp + BP_EXT_RAMDISK_SIZE, 0);
	}

	struct e820_entry e[BP_E820_MAX];
	int ne = vm_e820(vm, e, BP_E820_MAX);
	if (ne <= 0 || ne > BP_E820_MAX)
		return tvm_seterr(err, "internal error: the VM's e820 map has %d entries", ne);
	bp[BP_E820_ENTRIES] = (uint8_t)ne;
	for (int i = 0; i < ne; i++) {
		uint8_t *ent = bp + BP_E820_TABLE + 20 * i;
		ldr_put64(ent, e[i].addr);
		ldr_put64(ent + 8, e[i].size);
		ldr_put32(ent + 16, e[i].type);
	}

	if (gpa_write(vm, GPA(LOADER_BOOT_PARAMS), bp, sizeof(bp)) < 0 ||
	    gpa_write(vm, GPA(LOADER_LINUX_CMDLINE), cmd, clen + 1) < 0)
		return tvm_seterr(err, "guest RAM is too small for Linux's boot data below 1 MiB");
	entry->mode = BOOT_LINUX64;
	entry->rip = rip;
	entry->arg = LOADER_BOOT_PARAMS;
	return 0;
}

int linux_boot_vmlinux(struct vm *vm, const struct load_opts *o, const struct ldr_elf *ke,
		       struct boot_entry *entry, struct tvm_err *err)
{
	if (o->cpio)
		return tvm_seterr(err, "--cpio is for PVH kernels (trialos) only; for Linux kernel '%s' pass the archive with --initrd",
				  o->kernel);
	struct linux_setup ls = {
		.hdr = NULL,
		.cmdline_size = 2047,
		.initrd_addr_max = 0x7fffffff,
		.klo = ke->lo,
		.khi = ke->hi,
	};
	return linux_finish(vm, o, &ls, ke->entry, entry, err);
}

int linux_boot_bzimage(struct vm *vm, const struct load_opts *o, const uint8_t *img, size_t len,
		       struct boot_entry *entry, struct tvm_err *err)
{
	char what[600];
	snprintf(what, sizeof(what), "kernel '%s'", o->kernel);
	struct bzhdr h;
	if (bz_parse(what, img, len, &h, err) < 0)
		return -1;
	if (o->cpio)
		return tvm_seterr(err, "--cpio is for PVH kernels (trialos) only; for Linux kernel '%s' pass the archive with --initrd",
				  o->kernel);

	struct linux_setup ls = {
		.hdr = img,
		.hdr_end = h.hdr_end,
		.cmdline_size = h.cmdline_size,
		.initrd_addr_max = h.initrd_addr_max,
	};
	const uint8_t *payload = img + h.payload_off;
	enum pfmt f = payload_format(payload, h.payload_len);
	bool host = !o->no_decompress && (f == PF_NONE || f == PF_GZIP || f == PF_XZ || f == PF_ZSTD || f == PF_LZ4);
	if (!o->no_decompress && !host)
		tvm_log("kernel '%s': its payload is %s%s, which trialvm cannot decompress; the kernel will decompress itself (slow where guest ring 0 is emulated)",
			o->kernel, f == PF_UNKNOWN ? "in an unknown format" : pfmt_name[f], f == PF_UNKNOWN ? "" : "-compressed");

	if (host) {
		uint8_t *vmlinux;
		size_t vlen;
		struct tvm_err e2;
		if (decompress_payload(f, payload, h.payload_len, &vmlinux, &vlen, &e2) < 0)
			return tvm_seterr(err, "kernel '%s': %s; re-copy the kernel, or boot it with --no-decompress to let it decompress itself",
					  o->kernel, e2.msg);
		char ewhat[700];
		snprintf(ewhat, sizeof(ewhat), "kernel '%s' (its %s-decompressed vmlinux)", o->kernel, pfmt_name[f]);
		struct ldr_elf ke;
		int rc = ldr_elf_load(vm, ewhat, vmlinux, vlen, &ke, err);
		free(vmlinux);
		if (rc < 0)
			return -1;
		ls.klo = ke.lo;
		ls.khi = ke.hi;
		if (h.init_size && ke.lo + h.init_size > ls.khi)
			ls.khi = ke.lo + h.init_size;
		entry->nsegs = ke.nsegs;
		memcpy(entry->segs, ke.segs, sizeof(entry->segs));
		tvm_debug("kernel '%s': %s payload decompressed on the host, vmlinux at 0x%llx-0x%llx, entry 0x%llx",
			  o->kernel, pfmt_name[f], (unsigned long long)ke.lo, (unsigned long long)ke.hi,
			  (unsigned long long)ke.entry);
		return linux_finish(vm, o, &ls, ke.entry, entry, err);
	}

	/* The protected-mode kernel at 1 MiB, entered at its 64-bit entry
	 * (startup_32 + 0x200). It moves itself to max(pref_address, its
	 * aligned load address) and needs init_size bytes there. */
	uint64_t end = LOADER_BZIMAGE_ADDR + h.pm_len;
	uint64_t run_end = h.pref_address + (uint64_t)h.init_size;
	if (h.pref_address < TVM_4G && run_end > end)
		end = run_end;
	if (!gpa_ptr(vm, GPA(LOADER_BZIMAGE_ADDR), end - LOADER_BZIMAGE_ADDR)) {
		char ram[160];
		ldr_describe_ram(vm, ram, sizeof(ram));
		return tvm_seterr(err, "kernel '%s' needs guest RAM up to 0x%llx to decompress itself (%s); give the VM more memory with --mem",
				  o->kernel, (unsigned long long)end, ram);
	}
	if (gpa_write(vm, GPA(LOADER_BZIMAGE_ADDR), img + h.pm_off, h.pm_len) < 0)
		return tvm_seterr(err, "kernel '%s': internal error copying the kernel", o->kernel);
	ls.klo = LOADER_BZIMAGE_ADDR;
	ls.khi = end;
	return linux_finish(vm, o, &ls, LOADER_BZIMAGE_ADDR + 0x200, entry, err);
}
