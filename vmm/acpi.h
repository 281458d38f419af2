/* vmm/acpi.h - minimal ACPI tables, so that a guest whose kernel has no MP
 * table support (Debian's cloud Linux: CONFIG_X86_MPPARSE unset) finds every
 * vCPU and the IOAPIC.
 *
 * The tables describe a hardware-reduced ACPI platform (no PM timer, no SCI,
 * no fixed-feature hardware) with KVM's in-kernel irqchip: one local APIC per
 * vCPU at 0xfee00000, the legacy PICs (PCAT_COMPAT), one IOAPIC at
 * 0xfec00000 with GSI base 0. ISA IRQ n is GSI n (KVM's default GSI routing:
 * GSI n -> IOAPIC pin n, and the PIC for n < 16; the in-kernel PIT fires
 * GSI 0), so the MADT has no interrupt source overrides.
 *
 * Layout, all inside [TVM_ACPI_START, TVM_ACPI_END), which vm_e820 reports
 * reserved (clear of the MP table at 0x9fc00 and its alternative at 0xf0000):
 *   RSDP at TVM_ACPI_START (16-byte aligned, inside the 0xe0000-0xfffff
 *   range that Linux scans), then RSDT, XSDT, FADT, DSDT, MADT, each 16-byte
 *   aligned.
 *
 * The DSDT names the devices a kernel cannot find otherwise on a
 * hardware-reduced platform, where Linux sets up no legacy PIC and no ISA
 * IRQ mappings (acpi_generic_reduced_hw_init: null_legacy_pic), so an
 * interrupt reaches a driver only through a GSI that ACPI describes:
 *   \_SB.COM1  _HID PNP0501, IO 0x3f8-0x3ff, Interrupt (edge, high) GSI 4
 *   \_SB.VRnn  _HID LNRO0005 (virtio-mmio, found by Linux's virtio_mmio
 *              driver without virtio_mmio.device=), _UID nn,
 *              Memory32Fixed (base, size), Interrupt (level, high) GSI irq;
 *              one per transport, nn = 00, 01, ... in the order given.
 */
#ifndef TVM_ACPI_H
#define TVM_ACPI_H

#include <stdint.h>

#include "vm.h"

#define TVM_ACPI_START 0xe0000u
#define TVM_ACPI_END 0xf0000u

/* Most virtio-mmio transports the DSDT describes. */
#define ACPI_MAX_VIRTIO 64u

/* One virtio-mmio transport: its register window (below 4 GiB) and GSI. */
struct acpi_mmio_dev {
	uint64_t base;
	uint32_t size;
	uint32_t irq;    /* GSI, 0-23 (ISA IRQ n is GSI n) */
};

/* acpi_write: build RSDP (revision 2), RSDT, XSDT, FADT (revision 6,
 * HW_REDUCED_ACPI, reset register = port 0xcf9 value 6), DSDT (COM1 and the
 * nvirtio transports virtio[0..nvirtio), see above) and MADT (ncpus Processor Local APIC entries, ACPI id = APIC id =
 * index, enabled; IOAPIC id ncpus; Local APIC NMI on LINT1 of all
 * processors) in guest RAM, every checksum correct. ncpus in
 * [1, TVM_MAX_VCPUS]. *rsdp_gpa receives the RSDP's guest-physical address.
 * Touches guest memory only (gpa_ptr/gpa_write). -1 with *err when ncpus is
 * out of range, nvirtio exceeds ACPI_MAX_VIRTIO (or virtio is NULL with
 * nvirtio > 0), a transport is empty, reaches above 4 GiB or has a GSI
 * above 23, the tables would not fit the area, or guest RAM does not cover
 * it. */
int acpi_write(struct vm *vm, int ncpus, const struct acpi_mmio_dev *virtio, unsigned nvirtio, uint64_t *rsdp_gpa,
	       struct tvm_err *err);

#endif
