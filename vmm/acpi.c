/* vmm/acpi.c - minimal ACPI tables (see acpi.h): RSDP, RSDT, XSDT, FADT,
 * DSDT, MADT. Field offsets follow the ACPI 6 specification, section 5.2. */
#include "acpi.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guests/include/trialvm_abi.h"
#include "util.h"

#define OEM_ID "TRIALV"          /* 6 bytes */
#define OEM_TABLE_ID "TRIALVM "  /* 8 bytes */
#define OEM_REVISION 1u
#define CREATOR_ID "TVMM"        /* 4 bytes */
#define CREATOR_REVISION 1u

#define LAPIC_ADDR 0xfee00000u
#define IOAPIC_ADDR 0xfec00000u

#define ALIGN 16u

/* RSDP (5.2.5.3) */
#define RSDP_SIZE 36u
#define RSDP_CHECKSUM 8
#define RSDP_OEMID 9
#define RSDP_REVISION 15
#define RSDP_RSDT 16
#define RSDP_LENGTH 20
#define RSDP_XSDT 24
#define RSDP_EXT_CHECKSUM 32
#define RSDP_V1_SIZE 20u

/* System description table header (5.2.6) */
#define HDR_SIZE 36u
#define HDR_LENGTH 4
#define HDR_REVISION 8
#define HDR_CHECKSUM 9
#define HDR_OEMID 10
#define HDR_OEM_TABLE_ID 16
#define HDR_OEM_REVISION 24
#define HDR_CREATOR_ID 28
#define HDR_CREATOR_REVISION 32

/* FADT (5.2.9), revision 6 */
#define FADT_SIZE 276u
#define FADT_REVISION 6
#define FADT_MINOR 0
#define FADT_DSDT 40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116       /* generic address structure, 12 bytes */
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define IAPC_8042 (1u << 1)      /* i8042 at ports 0x60/0x64 (devices/sysdev.c) */
#define IAPC_NO_VGA (1u << 2)
#define IAPC_NO_CMOS_RTC (1u << 5)
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1
#define RESET_PORT 0xcf9u        /* devices/sysdev.c: bit 2 resets */
#define RESET_VALUE 0x06

/* MADT (5.2.12) */
#define MADT_REVISION 4
#define MADT_LAPIC_ADDR 36
#define MADT_FLAGS 40
#define MADT_ENTRIES 44u
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_LAPIC_SIZE 8u
#define MADT_IOAPIC 1
#define MADT_IOAPIC_SIZE 12u
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_NMI_SIZE 6u
#define MADT_LAPIC_ENABLED 1u

#define DSDT_REVISION 2          /* 64-bit AML integers */
#define COM1_IRQ 4               /* devices/uart.c: COM1 at TVM_PORT_COM1, ISA IRQ 4 */
#define COM1_PORTS 8u
#define NR_GSIS 24u              /* the IOAPIC's pins: GSI 0-23 */
#define SDT_REVISION 1           /* RSDT, XSDT */


static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)(0 - s);
}

/* Reserve `size` bytes at the next ALIGN boundary of [*cur, TVM_ACPI_END). */
static bool place(uint64_t *cur, uint64_t size, uint64_t *at)
{
	uint64_t a;
	if (__builtin_add_overflow(*cur, ALIGN - 1, &a))
		return false;
	a &= ~(uint64_t)(ALIGN - 1);
	if (a > TVM_ACPI_END || size > TVM_ACPI_END - a)
		return false;
	*at = a;
	*cur = a + size;
	return true;
}

static void header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	le_put32(t + HDR_LENGTH, len);
	t[HDR_REVISION] = rev;
	memcpy(t + HDR_OEMID, OEM_ID, 6);
	memcpy(t + HDR_OEM_TABLE_ID, OEM_TABLE_ID, 8);
	le_put32(t + HDR_OEM_REVISION, OEM_REVISION);
	memcpy(t + HDR_CREATOR_ID, CREATOR_ID, 4);
	le_put32(t + HDR_CREATOR_REVISION, CREATOR_REVISION);
}

/* Call once the table's contents are final. */
static void seal(uint8_t *t, uint32_t len)
{
	t[HDR_CHECKSUM] = 0;
	t[HDR_CHECKSUM] = checksum(t, len);
}


/* ---------------------------------------------------------------- AML
 * A small AML encoder (ACPI 6, section 20.2) for the DSDT body: fixed
 * capacity; any overflow or out-of-range value sets `bad`, checked once at
 * the end. Packages (ScopeOp, DeviceOp, BufferOp) are opened with pkg_begin,
 * filled, and closed with pkg_end, which inserts the shortest PkgLength
 * encoding in front of the contents. */

#define AML_CAP 8192u            /* COM1 and ACPI_MAX_VIRTIO (64) transports take 3960 */
#define AML_MAX_DEPTH 4

/* AML opcodes and prefixes */
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_STRING 0x0d
#define AML_QWORD 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_EXT 0x5b
#define AML_DEVICE 0x82          /* after AML_EXT */
#define AML_ONES 0xff

/* Resource descriptors (6.4) */
#define RES_IO 0x47              /* small, type 8, length 7 */
#define RES_IO_DECODE16 0x01
#define RES_END 0x79             /* small, type 0xf, length 1 */
#define RES_MEM32_FIXED 0x86     /* large, type 6, length 9 */
#define RES_MEM32_RW 0x01
#define RES_EXT_IRQ 0x89         /* large, type 9 */
#define RES_IRQ_CONSUMER 0x01
#define RES_IRQ_EDGE 0x02        /* clear: level */
#define RES_IRQ_ACTIVE_LOW 0x04  /* clear: active high */

/* PkgLength: 1 byte up to 63, else 2-4 bytes, 28 bits at most. */
#define PKG_MAX ((1u << 28) - 1)

struct aml {
	uint8_t b[AML_CAP];
	size_t len;
	size_t open[AML_MAX_DEPTH];
	int depth;
	bool bad;
};

static void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->bad || n > AML_CAP - a->len) {
		a->bad = true;
		return;
	}
	memcpy(a->b + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t v) { aml_bytes(a, &v, 1); }

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* NameSeg: four characters, a leading A-Z or '_', then A-Z, 0-9 or '_'. */
static void aml_nameseg(struct aml *a, const char *s)
{
	bool ok = strlen(s) == 4;
	for (int i = 0; ok && i < 4; i++)
		ok = (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || (i > 0 && s[i] >= '0' && s[i] <= '9');
	if (!ok) {
		a->bad = true;
		return;
	}
	aml_bytes(a, s, 4);
}

/* The shortest integer encoding (ZeroOp, OneOp, OnesOp or a prefixed
 * constant) into out[9]; returns its length. */
static size_t int_encode(uint64_t v, uint8_t out[9])
{
	unsigned n;
	if (v == 0 || v == 1 || v == UINT64_MAX) {
		out[0] = v == 0 ? AML_ZERO : v == 1 ? AML_ONE : AML_ONES;
		return 1;
	}
	if (v <= UINT8_MAX)
		out[0] = AML_BYTE, n = 1;
	else if (v <= UINT16_MAX)
		out[0] = AML_WORD, n = 2;
	else if (v <= UINT32_MAX)
		out[0] = AML_DWORD, n = 4;
	else
		out[0] = AML_QWORD, n = 8;
	for (unsigned i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return 1 + n;
}

static void aml_int(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	aml_bytes(a, b, int_encode(v, b));
}

/* String: ASCII 0x01-0x7f, NUL-terminated. */
static void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c > 0x7f)
			a->bad = true;
	aml_byte(a, AML_STRING);
	aml_bytes(a, s, strlen(s) + 1);
}

/* Name (seg, ...): the caller appends the data object. */
static void aml_name(struct aml *a, const char *seg)
{
	aml_byte(a, AML_NAME);
	aml_nameseg(a, seg);
}

/* EISA id "PNPdddd" (three letters, four hex digits) as its compressed DWORD. */
static void aml_eisaid(struct aml *a, const char *id)
{
	bool ok = strlen(id) == 7;
	for (int i = 0; ok && i < 3; i++)
		ok = id[i] >= 'A' && id[i] <= 'Z';
	for (int i = 3; ok && i < 7; i++)
		ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'A' && id[i] <= 'F');
	if (!ok) {
		a->bad = true;
		return;
	}
	uint32_t c1 = (uint32_t)(id[0] - 0x40), c2 = (uint32_t)(id[1] - 0x40), c3 = (uint32_t)(id[2] - 0x40);
	uint8_t b[4] = { (uint8_t)(c1 << 2 | c2 >> 3), (uint8_t)((c2 & 7) << 5 | c3), 0, 0 };
	for (int i = 0; i < 4; i++) {
		char c = id[3 + i];
		uint8_t d = (uint8_t)(c <= '9' ? c - '0' : c - 'A' + 10);
		b[2 + i / 2] |= (uint8_t)(i % 2 ? d : d << 4);
	}
	aml_byte(a, AML_DWORD);
	aml_bytes(a, b, 4);
}

static void pkg_begin(struct aml *a)
{
	if (a->depth >= AML_MAX_DEPTH) {
		a->bad = true;
		return;
	}
	a->open[a->depth++] = a->len;
}

/* Close the innermost package: its PkgLength counts itself and everything
 * after it up to here. */
static void pkg_end(struct aml *a)
{
	if (a->depth <= 0) {
		a->bad = true;
		return;
	}
	size_t start = a->open[--a->depth];
	if (a->bad)
		return;
	size_t body = a->len - start, n, total;
	if (body + 1 <= 63)
		n = 1;
	else if (body + 2 < (1u << 12))
		n = 2;
	else if (body + 3 < (1u << 20))
		n = 3;
	else
		n = 4;
	total = body + n;
	if (total > PKG_MAX || n > AML_CAP - a->len) {
		a->bad = true;
		return;
	}
	memmove(a->b + start + n, a->b + start, body);
	if (n == 1) {
		a->b[start] = (uint8_t)total;
	} else {
		a->b[start] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			a->b[start + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	a->len += n;
}

/* Name (_CRS, ResourceTemplate () {...}): a Buffer whose BufferSize is
 * followed by resource descriptors and an End Tag whose checksum makes the
 * template sum to zero. crs_begin returns where the descriptors start;
 * crs_end inserts the BufferSize there once the length is known. */
static size_t crs_begin(struct aml *a)
{
	aml_name(a, "_CRS");
	aml_byte(a, AML_BUFFER);
	pkg_begin(a);
	return a->len;
}

static void crs_end(struct aml *a, size_t res_start)
{
	aml_byte(a, RES_END);
	aml_byte(a, 0);
	if (!a->bad) {
		size_t n = a->len - res_start;
		uint8_t sum = 0, size[9];
		for (size_t i = res_start; i < a->len; i++)
			sum = (uint8_t)(sum + a->b[i]);
		a->b[a->len - 1] = (uint8_t)(0 - sum);
		size_t sl = int_encode(n, size);
		if (sl > AML_CAP - a->len) {
			a->bad = true;
		} else {
			memmove(a->b + res_start + sl, a->b + res_start, n);
			memcpy(a->b + res_start, size, sl);
			a->len += sl;
		}
	}
	pkg_end(a);
}

static void res_mem32_fixed(struct aml *a, uint32_t base, uint32_t size)
{
	aml_byte(a, RES_MEM32_FIXED);
	aml_le(a, 9, 2);
	aml_byte(a, RES_MEM32_RW);
	aml_le(a, base, 4);
	aml_le(a, size, 4);
}

static void res_io(struct aml *a, uint16_t port, uint8_t len)
{
	aml_byte(a, RES_IO);
	aml_byte(a, RES_IO_DECODE16);
	aml_le(a, port, 2);                    /* range minimum */
	aml_le(a, port, 2);                    /* range maximum */
	aml_byte(a, 1);                        /* alignment */
	aml_byte(a, len);
}

/* Interrupt (ResourceConsumer, edge or level, ActiveHigh, Exclusive) {gsi} */
static void res_ext_irq(struct aml *a, uint32_t gsi, bool edge)
{
	aml_byte(a, RES_EXT_IRQ);
	aml_le(a, 6, 2);                       /* flags, count, one DWORD */
	aml_byte(a, RES_IRQ_CONSUMER | (edge ? RES_IRQ_EDGE : 0));
	aml_byte(a, 1);
	aml_le(a, gsi, 4);
}

/* The DSDT's AML body:
 *   Scope (\_SB) {
 *     Device (COM1) { _HID EisaId ("PNP0501"), _UID 1,
 *                     _CRS { IO (Decode16, 0x3f8, 0x3f8, 1, 8), Interrupt (Edge) {4} } }
 *     Device (VRnn) { _HID "LNRO0005", _UID n,
 *                     _CRS { Memory32Fixed (ReadWrite, base, size), Interrupt (Level) {gsi} } }  per transport
 *     Device (PEVT) { _HID "QEMU0001", _UID 0, _CRS { IO (Decode16, 0x505, 0x505, 1, 1) } }  pvpanic
 *   }
 * The virtio-mmio line stays asserted until the driver writes InterruptACK
 * (devices/virtio_mmio.c), hence level; the UART is the PC's ISA COM1
 * (edge, as ISA IRQs are). */
static void dsdt_body(struct aml *a, const struct acpi_mmio_dev *virtio, unsigned nvirtio)
{
	size_t res;
	aml_byte(a, AML_SCOPE);
	pkg_begin(a);
	aml_nameseg(a, "_SB_");

	aml_byte(a, AML_EXT);
	aml_byte(a, AML_DEVICE);
	pkg_begin(a);
	aml_nameseg(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_int(a, 1);
	res = crs_begin(a);
	res_io(a, TVM_PORT_COM1, COM1_PORTS);
	res_ext_irq(a, COM1_IRQ, true);
	crs_end(a, res);
	pkg_end(a);

	for (unsigned i = 0; i < nvirtio; i++) {
		char seg[8];
		snprintf(seg, sizeof(seg), "VR%02X", i & 0xffu);
		aml_byte(a, AML_EXT);
		aml_byte(a, AML_DEVICE);
		pkg_begin(a);
		aml_nameseg(a, seg);
		aml_name(a, "_HID");
		aml_string(a, "LNRO0005");
		aml_name(a, "_UID");
		aml_int(a, i);
		res = crs_begin(a);
		res_mem32_fixed(a, (uint32_t)virtio[i].base, virtio[i].size);
		res_ext_irq(a, virtio[i].irq, false);
		crs_end(a, res);
		pkg_end(a);
	}
	/* pvpanic, where QEMU's pvpanic-isa describes it: Linux's pvpanic-mmio
	 * driver binds to QEMU0001 and reports panics through the port. */
	aml_byte(a, AML_EXT);
	aml_byte(a, AML_DEVICE);
	pkg_begin(a);
	aml_nameseg(a, "PEVT");
	aml_name(a, "_HID");
	aml_string(a, "QEMU0001");
	aml_name(a, "_UID");
	aml_int(a, 0);
	res = crs_begin(a);
	res_io(a, TVM_PORT_PVPANIC, 1);
	crs_end(a, res);
	pkg_end(a);
	pkg_end(a);
	if (a->depth != 0)
		a->bad = true;
}

int acpi_write(struct vm *vm, int ncpus, const struct acpi_mmio_dev *virtio, unsigned nvirtio, uint64_t *rsdp_gpa,
	       struct tvm_err *err)
{
	if (ncpus < 1 || ncpus > TVM_MAX_VCPUS)
		return tvm_seterr(err, "cannot describe %d vCPUs in the ACPI tables (1-%d)", ncpus, TVM_MAX_VCPUS);
	if (nvirtio > ACPI_MAX_VIRTIO || (nvirtio && !virtio))
		return tvm_seterr(err, "cannot describe %u virtio-mmio devices in the ACPI DSDT (0-%u)", nvirtio,
				  ACPI_MAX_VIRTIO);
	for (unsigned i = 0; i < nvirtio; i++) {
		const struct acpi_mmio_dev *v = &virtio[i];
		if (v->size == 0 || v->base > UINT32_MAX || v->size - 1 > UINT32_MAX - v->base || v->irq >= NR_GSIS)
			return tvm_seterr(err,
					  "virtio-mmio device %u (0x%llx, %u bytes, GSI %u) cannot be described in the "
					  "ACPI DSDT: it must lie below 4 GiB and use GSI 0-%u",
					  i, (unsigned long long)v->base, v->size, v->irq, NR_GSIS - 1);
	}
	struct aml *aml = calloc(1, sizeof(*aml));
	if (!aml)
		return tvm_seterr(err, "out of memory for the ACPI DSDT");
	dsdt_body(aml, virtio, nvirtio);
	if (aml->bad) {
		free(aml);
		return tvm_seterr(err, "internal error: the ACPI DSDT's AML could not be encoded");
	}

	enum { T_RSDP, T_RSDT, T_XSDT, T_FADT, T_DSDT, T_MADT, T_N };
	static const char *const names[T_N] = { "RSDP", "RSDT", "XSDT", "FADT", "DSDT", "MADT" };
	enum { NR_LISTED = 2 };          /* RSDT/XSDT entries: FADT, MADT */
	uint64_t size[T_N] = {
		[T_RSDP] = RSDP_SIZE,
		[T_RSDT] = HDR_SIZE + NR_LISTED * 4u,
		[T_XSDT] = HDR_SIZE + NR_LISTED * 8u,
		[T_FADT] = FADT_SIZE,
		[T_DSDT] = HDR_SIZE + aml->len,
		[T_MADT] = MADT_ENTRIES + (uint64_t)ncpus * MADT_LAPIC_SIZE + MADT_IOAPIC_SIZE + MADT_LAPIC_NMI_SIZE,
	};
	uint64_t at[T_N], cur = TVM_ACPI_START;
	for (int i = 0; i < T_N; i++)
		if (!place(&cur, size[i], &at[i])) {
			free(aml);
			return tvm_seterr(err, "internal error: the ACPI %s (%llu bytes) does not fit in 0x%x-0x%x",
					  names[i], (unsigned long long)size[i], TVM_ACPI_START, TVM_ACPI_END);
		}
	/* Every table lies below TVM_ACPI_END (< 4 GiB, < 64 KiB long), so the
	 * 32-bit pointers and lengths below cannot truncate. */
	uint64_t total = cur - TVM_ACPI_START;
	uint8_t *buf = calloc(1, total);
	if (!buf) {
		free(aml);
		return tvm_seterr(err, "out of memory for %llu bytes of ACPI tables", (unsigned long long)total);
	}
	uint8_t *t[T_N];
	for (int i = 0; i < T_N; i++)
		t[i] = buf + (at[i] - TVM_ACPI_START);

	/* DSDT: the definition block header, then the AML body. */
	header(t[T_DSDT], "DSDT", (uint32_t)size[T_DSDT], DSDT_REVISION);
	memcpy(t[T_DSDT] + HDR_SIZE, aml->b, aml->len);
	free(aml);
	seal(t[T_DSDT], (uint32_t)size[T_DSDT]);

	/* FADT: hardware-reduced, so no PM timer, PM1 blocks, GPEs or SCI. */
	uint8_t *f = t[T_FADT];
	header(f, "FACP", (uint32_t)size[T_FADT], FADT_REVISION);
	le_put32(f + FADT_DSDT, (uint32_t)at[T_DSDT]);
	le_put16(f + FADT_IAPC_BOOT_ARCH, IAPC_8042 | IAPC_NO_VGA | IAPC_NO_CMOS_RTC);
	le_put32(f + FADT_FLAGS, FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP);
	f[FADT_RESET_REG + 0] = GAS_SYSTEM_IO;
	f[FADT_RESET_REG + 1] = 8;                 /* register bit width */
	f[FADT_RESET_REG + 2] = 0;                 /* bit offset */
	f[FADT_RESET_REG + 3] = GAS_ACCESS_BYTE;
	le_put64(f + FADT_RESET_REG + 4, RESET_PORT);
	f[FADT_RESET_VALUE] = RESET_VALUE;
	f[FADT_MINOR_VERSION] = FADT_MINOR;
	le_put64(f + FADT_X_DSDT, at[T_DSDT]);
	seal(f, (uint32_t)size[T_FADT]);

	/* MADT */
	uint8_t *m = t[T_MADT];
	header(m, "APIC", (uint32_t)size[T_MADT], MADT_REVISION);
	le_put32(m + MADT_LAPIC_ADDR, LAPIC_ADDR);
	le_put32(m + MADT_FLAGS, MADT_PCAT_COMPAT);
	uint8_t *e = m + MADT_ENTRIES;
	for (int i = 0; i < ncpus; i++, e += MADT_LAPIC_SIZE) {
		e[0] = MADT_LAPIC;
		e[1] = MADT_LAPIC_SIZE;
		e[2] = (uint8_t)i;                 /* ACPI processor UID */
		e[3] = (uint8_t)i;                 /* APIC id */
		le_put32(e + 4, MADT_LAPIC_ENABLED);
	}
	e[0] = MADT_IOAPIC;
	e[1] = MADT_IOAPIC_SIZE;
	e[2] = (uint8_t)ncpus;                     /* IOAPIC id, as in the MP table */
	e[3] = 0;
	le_put32(e + 4, IOAPIC_ADDR);
	le_put32(e + 8, 0);                           /* GSI base */
	e += MADT_IOAPIC_SIZE;
	/* No interrupt source overrides: ISA IRQ n is GSI n, edge, active high,
	 * matching KVM's default routing (the PIT fires GSI 0). */
	e[0] = MADT_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_SIZE;
	e[2] = 0xff;                               /* all processors */
	le_put16(e + 3, 0);                           /* MPS INTI flags: conforms to the bus */
	e[5] = 1;                                  /* LINT1 */
	e += MADT_LAPIC_NMI_SIZE;
	if ((uint64_t)(e - m) != size[T_MADT]) {
		free(buf);
		return tvm_seterr(err, "internal error: MADT size mismatch");
	}
	seal(m, (uint32_t)size[T_MADT]);

	/* RSDT and XSDT list the FADT and the MADT (the DSDT hangs off the FADT). */
	const int listed[NR_LISTED] = { T_FADT, T_MADT };
	header(t[T_RSDT], "RSDT", (uint32_t)size[T_RSDT], SDT_REVISION);
	header(t[T_XSDT], "XSDT", (uint32_t)size[T_XSDT], SDT_REVISION);
	for (int i = 0; i < NR_LISTED; i++) {
		le_put32(t[T_RSDT] + HDR_SIZE + 4 * i, (uint32_t)at[listed[i]]);
		le_put64(t[T_XSDT] + HDR_SIZE + 8 * i, at[listed[i]]);
	}
	seal(t[T_RSDT], (uint32_t)size[T_RSDT]);
	seal(t[T_XSDT], (uint32_t)size[T_XSDT]);

	/* RSDP, revision 2 (ACPI 2.0+): checksum over the first 20 bytes, the
	 * extended checksum over all 36. */
	uint8_t *r = t[T_RSDP];
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + RSDP_OEMID, OEM_ID, 6);
	r[RSDP_REVISION] = 2;
	le_put32(r + RSDP_RSDT, (uint32_t)at[T_RSDT]);
	le_put32(r + RSDP_LENGTH, RSDP_SIZE);
	le_put64(r + RSDP_XSDT, at[T_XSDT]);
	r[RSDP_CHECKSUM] = checksum(r, RSDP_V1_SIZE);
	r[RSDP_EXT_CHECKSUM] = checksum(r, RSDP_SIZE);

	int rc = gpa_write(vm, GPA(TVM_ACPI_START), buf, total);
	free(buf);
	if (rc < 0)
		return tvm_seterr(err, "guest RAM is too small for the ACPI tables at 0x%x-0x%llx", TVM_ACPI_START,
				  (unsigned long long)cur);
	*rsdp_gpa = at[T_RSDP];
	return 0;
}
