/* vmm/loader.h - kernel loaders: PVH ELF (trialos), Linux vmlinux ELF, Linux bzImage.
 *
 * Files are hostile: every offset and size read from a kernel, initrd or
 * decompressed payload is bounds-checked with overflow-safe arithmetic, and
 * guest memory is reached only through gpa_ptr()/gpa_write().
 *
 * Guest-physical memory the loader writes (the core must keep its own boot
 * structures - GDT, page tables - out of these ranges and inside
 * [LOADER_CORE_FREE_START, LOADER_CORE_FREE_END), which the loader never
 * touches and refuses to load kernels into):
 *   [0x0, 0x1000)       reserved for the core's boot GDT (TVM_BOOT_GDT); never written here
 *   [0x5000, 0x7000)    PVH: hvm_start_info, modlist, memmap, cmdline (trialvm_abi.h)
 *   [0x7000, 0x8000)    Linux: boot_params ("zero page")
 *   [0x20000, 0x21000)  Linux: command line
 *   [0x9fc00, 0xa0000)  MP floating pointer + config table (ncpus > 1;
 *                       the table moves to 0xf0000 when it does not fit)
 *   [0xe0000, 0xf0000)  ACPI tables, RSDP first (acpi.h; every boot)
 *   kernel segments     as the ELF asks (Linux: p_paddr, 16 MiB for Debian),
 *                       or 0x100000 for a bzImage's protected-mode code
 *   initrd / modules    the highest page-aligned RAM below the limit, clear
 *                       of the kernel (its init_size for Linux)
 *
 * Link with: -lelf -lz -llzma -lzstd -llz4.
 */
#ifndef TVM_LOADER_H
#define TVM_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "vm.h"

#define LOADER_BOOT_PARAMS 0x7000u
#define LOADER_LINUX_CMDLINE 0x20000u
#define LOADER_MPTABLE 0x9fc00u
#define LOADER_MPTABLE_ALT 0xf0000u
#define LOADER_BZIMAGE_ADDR 0x100000u
/* Free for the core (GDT, identity page tables for BOOT_LINUX64, ...). */
#define LOADER_CORE_FREE_START 0x8000u
#define LOADER_CORE_FREE_END 0x20000u

/* Host-side decompression refuses outputs above this. */
#define LOADER_MAX_DECOMPRESSED (1ull << 30)

struct load_opts {
	const char *kernel;   /* required */
	const char *initrd;   /* optional; for PVH kernels: module 0 */
	const char *cpio;     /* optional; PVH only: module 1 (error if given for Linux) */
	const char *cmdline;  /* may be NULL = "" */
	const char *linux_cmdline_extra; /* Linux only: appended to cmdline (devices) */
	const struct acpi_mmio_dev *virtio; /* virtio-mmio transports for the ACPI */
	unsigned nvirtio;                   /* DSDT (every kernel); may be 0 */
	bool no_decompress;   /* bzImage: skip host-side decompression, use the
	                         normal 64-bit entry of the protected-mode kernel */
};

/* load_kernel: identify o->kernel (ELF64 x86-64 executable, or an x86
 * bzImage by its "HdrS" setup header), copy it into guest RAM, place the
 * initrd/cpio, write the boot structures and fill *entry.
 *   - ELF with a PVH note (name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY) that is
 *     not a Linux vmlinux: hvm_start_info (version 1) at TVM_PVH_START_INFO,
 *     e820 memmap, cmdline, modules 0 = initrd, 1 = cpio (in RAM below
 *     min(low RAM end, 4 GiB), page aligned, e820 left as RAM);
 *     entry = {BOOT_PVH32, PVH entry, TVM_PVH_START_INFO}.
 *   - Linux vmlinux ELF (a "Linux" ELF note, or Linux's section layout) or a
 *     bzImage: boot_params at LOADER_BOOT_PARAMS (setup header from the
 *     bzImage, or a minimal one for a bare vmlinux; e820 from vm_e820(),
 *     cmdline, initrd); entry = {BOOT_LINUX64, startup_64, boot_params}.
 *     A bzImage payload compressed with gzip, xz, zstd or lz4 is decompressed
 *     on the host and its vmlinux loaded at p_paddr (entered at e_entry);
 *     other compressions, or o->no_decompress, load the protected-mode kernel
 *     at 0x100000 and enter it at 0x100200 (its 64-bit entry, which then
 *     decompresses itself inside the guest: slow where ring 0 is emulated).
 *   - ACPI tables (acpi_write, acpi.h) for every kernel, the DSDT listing
 *     COM1 and o->virtio[0..o->nvirtio): the RSDP address
 *     goes to boot_params.acpi_rsdp_addr (Linux, boot protocol >= 2.14) or
 *     hvm_start_info.rsdp_paddr (PVH).
 *   - When vm_ncpus(vm) > 1, an Intel MP 1.4 table describing all vCPUs, the
 *     ISA bus, one IOAPIC (id = ncpus, 0xfec00000) and ISA IRQ routing.
 * Reads files and guest memory only; no KVM calls. Returns 0, or -1 with one
 * sentence in *err naming the file, what is wrong and what to do. On error
 * guest RAM may have been partly written (the VM is not meant to be run). */
int load_kernel(struct vm *vm, const struct load_opts *o, struct boot_entry *entry, struct tvm_err *err);

/* bzimage_decompress: validate the bzImage setup header in img[0..len) and
 * decompress its payload (gzip, xz, zstd or lz4 legacy) into a malloc'ed
 * buffer (*out, *outlen; the caller frees it), at most
 * LOADER_MAX_DECOMPRESSED bytes. The result is checked to start with an
 * ELF64 x86-64 header (Linux appends relocation data after the ELF, so
 * *outlen can exceed the ELF's own extent). -1 with *err set for a bad header,
 * an unsupported compression (bzip2, lzma, lzo: *out stays NULL and the
 * message says so), a corrupt stream or an oversized result. Pure: no guest
 * memory involved. */
int bzimage_decompress(const uint8_t *img, size_t len, uint8_t **out, size_t *outlen, struct tvm_err *err);

/* mptable_write: write the MP floating pointer at LOADER_MPTABLE and the
 * configuration table (processor entries for vCPUs 0..ncpus-1, BSP = 0,
 * ISA bus 0, IOAPIC id ncpus at 0xfec00000, ISA IRQs 0,1,3..15 -> the same
 * IOAPIC pin as KVM's default GSI routing has it, ExtINT -> LINT0, NMI -> LINT1) for ncpus in [1, TVM_MAX_VCPUS].
 * load_kernel calls it when vm_ncpus(vm) > 1. -1 with *err on failure. */
int mptable_write(struct vm *vm, int ncpus, struct tvm_err *err);

#endif
