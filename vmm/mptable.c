/* vmm/mptable.c - Intel MultiProcessor Specification 1.4 tables, so that a
 * guest without ACPI (Linux with CONFIG_X86_MPPARSE) finds every vCPU, the
 * IOAPIC and the ISA interrupt routing. KVM's in-kernel irqchip provides the
 * LAPICs (0xfee00000), the IOAPIC (0xfec00000) and the PICs. */
#include "loader_int.h"

#include <stdio.h>

#define MP_LAPIC_ADDR 0xfee00000u
#define MP_IOAPIC_ADDR 0xfec00000u
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11

enum { MP_PROC = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINT = 3, MP_LINT = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 };

#define MP_FP_SIZE 16
#define MP_HDR_SIZE 44
#define MP_PROC_SIZE 20
#define MP_ENTRY_SIZE 8
#define MP_NR_IOINT 15   /* ISA IRQs 0..15 without IRQ 2 (the PIC cascade) */
#define MP_NR_LINT 2

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)(0 - s);
}

int mptable_write(struct vm *vm, int ncpus, struct tvm_err *err)
{
	if (ncpus < 1 || ncpus > TVM_MAX_VCPUS)
		return tvm_seterr(err, "cannot describe %d vCPUs in the MP table (1-%d)", ncpus, TVM_MAX_VCPUS);
	size_t size = MP_HDR_SIZE + (size_t)ncpus * MP_PROC_SIZE +
		      (1 + 1 + MP_NR_IOINT + MP_NR_LINT) * MP_ENTRY_SIZE;
	uint8_t t[MP_HDR_SIZE + TVM_MAX_VCPUS * MP_PROC_SIZE + (2 + MP_NR_IOINT + MP_NR_LINT) * MP_ENTRY_SIZE];
	memset(t, 0, sizeof(t));
	/* The floating pointer must sit in the last KiB of base memory; the
	 * table follows it when it fits, else it goes to the BIOS area. */
	uint64_t fp_at = LOADER_MPTABLE;
	uint64_t tab_at = fp_at + MP_FP_SIZE + size <= 0xa0000 ? fp_at + MP_FP_SIZE : LOADER_MPTABLE_ALT;
	uint8_t ioapic_id = (uint8_t)ncpus;

	uint8_t *p = t + MP_HDR_SIZE;
	uint16_t count = 0;
	for (int i = 0; i < ncpus; i++, count++, p += MP_PROC_SIZE) {
		p[0] = MP_PROC;
		p[1] = (uint8_t)i;                  /* LAPIC id */
		p[2] = MP_LAPIC_VERSION;
		p[3] = (uint8_t)(0x01 | (i == 0 ? 0x02 : 0)); /* enabled, BSP */
		ldr_put32(p + 4, 0x600);            /* family 6 */
		ldr_put32(p + 8, 0x201);            /* FPU, APIC */
	}
	p[0] = MP_BUS;
	p[1] = 0;
	memcpy(p + 2, "ISA   ", 6);
	p += MP_ENTRY_SIZE, count++;
	p[0] = MP_IOAPIC;
	p[1] = ioapic_id;
	p[2] = MP_IOAPIC_VERSION;
	p[3] = 0x01;                                /* enabled */
	ldr_put32(p + 4, MP_IOAPIC_ADDR);
	p += MP_ENTRY_SIZE, count++;
	for (int irq = 0; irq < 16; irq++) {
		if (irq == 2)
			continue;                   /* the PIC cascade */
		p[0] = MP_IOINT;
		p[1] = MP_INT;
		ldr_put16(p + 2, 0);                /* conforms to the bus */
		p[4] = 0;                           /* ISA bus */
		p[5] = (uint8_t)irq;
		p[6] = ioapic_id;
		/* KVM's default GSI routing sends GSI n to IOAPIC pin n, and
		 * its in-kernel PIT fires GSI 0: ISA IRQ n is pin n. */
		p[7] = (uint8_t)irq;
		p += MP_ENTRY_SIZE, count++;
	}
	static const uint8_t lint[MP_NR_LINT][2] = { { MP_EXTINT, 0 }, { MP_NMI, 1 } };
	for (int i = 0; i < MP_NR_LINT; i++) {
		p[0] = MP_LINT;
		p[1] = lint[i][0];
		ldr_put16(p + 2, 0);
		p[4] = 0;
		p[5] = 0;
		p[6] = 0xff;                        /* all LAPICs */
		p[7] = lint[i][1];
		p += MP_ENTRY_SIZE, count++;
	}
	if ((size_t)(p - t) != size)
		return tvm_seterr(err, "internal error: MP table size mismatch");

	memcpy(t, "PCMP", 4);
	ldr_put16(t + 4, (uint16_t)size);
	t[6] = 4;                                   /* spec revision 1.4 */
	memcpy(t + 8, "TRIALVM ", 8);
	memcpy(t + 16, "TRIALVM     ", 12);
	ldr_put16(t + 34, count);
	ldr_put32(t + 36, MP_LAPIC_ADDR);
	t[7] = checksum(t, size);

	uint8_t fp[MP_FP_SIZE];
	memset(fp, 0, sizeof(fp));
	memcpy(fp, "_MP_", 4);
	ldr_put32(fp + 4, (uint32_t)tab_at);
	fp[8] = 1;                                  /* length in 16-byte units */
	fp[9] = 4;                                  /* spec revision 1.4 */
	/* feature bytes 1..5 zero: the configuration table is present, no IMCR */
	fp[10] = checksum(fp, sizeof(fp));

	if (gpa_write(vm, GPA(tab_at), t, size) < 0 || gpa_write(vm, GPA(fp_at), fp, sizeof(fp)) < 0)
		return tvm_seterr(err, "guest RAM is too small for the MP table at 0x%llx", (unsigned long long)fp_at);
	return 0;
}
