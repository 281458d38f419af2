/* vmm/acpi.c - minimal ACPI tables (see acpi.h): RSDP, RSDT, XSDT, FADT,
 * DSDT, MADT. Field offsets follow the ACPI 6 specification, section 5.2. */
#include "acpi.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
#define SDT_REVISION 1           /* RSDT, XSDT */

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

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
	put32(t + HDR_LENGTH, len);
	t[HDR_REVISION] = rev;
	memcpy(t + HDR_OEMID, OEM_ID, 6);
	memcpy(t + HDR_OEM_TABLE_ID, OEM_TABLE_ID, 8);
	put32(t + HDR_OEM_REVISION, OEM_REVISION);
	memcpy(t + HDR_CREATOR_ID, CREATOR_ID, 4);
	put32(t + HDR_CREATOR_REVISION, CREATOR_REVISION);
}

/* Call once the table's contents are final. */
static void seal(uint8_t *t, uint32_t len)
{
	t[HDR_CHECKSUM] = 0;
	t[HDR_CHECKSUM] = checksum(t, len);
}

int acpi_write(struct vm *vm, int ncpus, uint64_t *rsdp_gpa, struct tvm_err *err)
{
	if (ncpus < 1 || ncpus > TVM_MAX_VCPUS)
		return tvm_seterr(err, "cannot describe %d vCPUs in the ACPI tables (1-%d)", ncpus, TVM_MAX_VCPUS);

	enum { T_RSDP, T_RSDT, T_XSDT, T_FADT, T_DSDT, T_MADT, T_N };
	static const char *const names[T_N] = { "RSDP", "RSDT", "XSDT", "FADT", "DSDT", "MADT" };
	enum { NR_LISTED = 2 };          /* RSDT/XSDT entries: FADT, MADT */
	uint64_t size[T_N] = {
		[T_RSDP] = RSDP_SIZE,
		[T_RSDT] = HDR_SIZE + NR_LISTED * 4u,
		[T_XSDT] = HDR_SIZE + NR_LISTED * 8u,
		[T_FADT] = FADT_SIZE,
		[T_DSDT] = HDR_SIZE,
		[T_MADT] = MADT_ENTRIES + (uint64_t)ncpus * MADT_LAPIC_SIZE + MADT_IOAPIC_SIZE + MADT_LAPIC_NMI_SIZE,
	};
	uint64_t at[T_N], cur = TVM_ACPI_START;
	for (int i = 0; i < T_N; i++)
		if (!place(&cur, size[i], &at[i]))
			return tvm_seterr(err, "internal error: the ACPI %s (%llu bytes) does not fit in 0x%x-0x%x",
					  names[i], (unsigned long long)size[i], TVM_ACPI_START, TVM_ACPI_END);
	/* Every table lies below TVM_ACPI_END (< 4 GiB, < 64 KiB long), so the
	 * 32-bit pointers and lengths below cannot truncate. */
	uint64_t total = cur - TVM_ACPI_START;
	uint8_t *buf = calloc(1, total);
	if (!buf)
		return tvm_seterr(err, "out of memory for %llu bytes of ACPI tables", (unsigned long long)total);
	uint8_t *t[T_N];
	for (int i = 0; i < T_N; i++)
		t[i] = buf + (at[i] - TVM_ACPI_START);

	/* DSDT: a definition block with an empty AML body. */
	header(t[T_DSDT], "DSDT", (uint32_t)size[T_DSDT], DSDT_REVISION);
	seal(t[T_DSDT], (uint32_t)size[T_DSDT]);

	/* FADT: hardware-reduced, so no PM timer, PM1 blocks, GPEs or SCI. */
	uint8_t *f = t[T_FADT];
	header(f, "FACP", (uint32_t)size[T_FADT], FADT_REVISION);
	put32(f + FADT_DSDT, (uint32_t)at[T_DSDT]);
	put16(f + FADT_IAPC_BOOT_ARCH, IAPC_8042 | IAPC_NO_VGA | IAPC_NO_CMOS_RTC);
	put32(f + FADT_FLAGS, FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP);
	f[FADT_RESET_REG + 0] = GAS_SYSTEM_IO;
	f[FADT_RESET_REG + 1] = 8;                 /* register bit width */
	f[FADT_RESET_REG + 2] = 0;                 /* bit offset */
	f[FADT_RESET_REG + 3] = GAS_ACCESS_BYTE;
	put64(f + FADT_RESET_REG + 4, RESET_PORT);
	f[FADT_RESET_VALUE] = RESET_VALUE;
	f[FADT_MINOR_VERSION] = FADT_MINOR;
	put64(f + FADT_X_DSDT, at[T_DSDT]);
	seal(f, (uint32_t)size[T_FADT]);

	/* MADT */
	uint8_t *m = t[T_MADT];
	header(m, "APIC", (uint32_t)size[T_MADT], MADT_REVISION);
	put32(m + MADT_LAPIC_ADDR, LAPIC_ADDR);
	put32(m + MADT_FLAGS, MADT_PCAT_COMPAT);
	uint8_t *e = m + MADT_ENTRIES;
	for (int i = 0; i < ncpus; i++, e += MADT_LAPIC_SIZE) {
		e[0] = MADT_LAPIC;
		e[1] = MADT_LAPIC_SIZE;
		e[2] = (uint8_t)i;                 /* ACPI processor UID */
		e[3] = (uint8_t)i;                 /* APIC id */
		put32(e + 4, MADT_LAPIC_ENABLED);
	}
	e[0] = MADT_IOAPIC;
	e[1] = MADT_IOAPIC_SIZE;
	e[2] = (uint8_t)ncpus;                     /* IOAPIC id, as in the MP table */
	e[3] = 0;
	put32(e + 4, IOAPIC_ADDR);
	put32(e + 8, 0);                           /* GSI base */
	e += MADT_IOAPIC_SIZE;
	/* No interrupt source overrides: ISA IRQ n is GSI n, edge, active high,
	 * matching KVM's default routing (the PIT fires GSI 0). */
	e[0] = MADT_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_SIZE;
	e[2] = 0xff;                               /* all processors */
	put16(e + 3, 0);                           /* MPS INTI flags: conforms to the bus */
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
		put32(t[T_RSDT] + HDR_SIZE + 4 * i, (uint32_t)at[listed[i]]);
		put64(t[T_XSDT] + HDR_SIZE + 8 * i, at[listed[i]]);
	}
	seal(t[T_RSDT], (uint32_t)size[T_RSDT]);
	seal(t[T_XSDT], (uint32_t)size[T_XSDT]);

	/* RSDP, revision 2 (ACPI 2.0+): checksum over the first 20 bytes, the
	 * extended checksum over all 36. */
	uint8_t *r = t[T_RSDP];
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + RSDP_OEMID, OEM_ID, 6);
	r[RSDP_REVISION] = 2;
	put32(r + RSDP_RSDT, (uint32_t)at[T_RSDT]);
	put32(r + RSDP_LENGTH, RSDP_SIZE);
	put64(r + RSDP_XSDT, at[T_XSDT]);
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
