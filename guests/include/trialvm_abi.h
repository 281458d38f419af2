/* trialvm guest ABI, shared by the VMM (vmm/, devices/) and guests (guests/).
 *
 * Version 1. Everything here is a fixed contract: change it only by adding
 * fields/ops and bumping TVM_ABI_VERSION.
 *
 * Boot: a guest ELF that carries a PVH note (XEN_ELFNOTE_PHYS32_ENTRY) is
 * entered the PVH way, exactly as QEMU/Xen do it: 32-bit protected mode, flat
 * 4 GiB CS/DS/ES/SS, paging off, EFLAGS = 0x2, EBX = guest-physical address of
 * a struct hvm_start_info (below). trialvm fills in:
 *   - memmap: the e820 map (RAM ranges and reserved holes), sorted by address;
 *   - cmdline: NUL-terminated, at most TVM_CMDLINE_MAX bytes including the NUL;
 *   - modlist: module 0 = the application ELF (`--initrd`, or `--app`),
 *              module 1 = an optional cpio (newc) archive (`--cpio`).
 *     A cpio archive may also directly follow the ELF inside module 0
 *     (4-byte aligned after the last byte of the ELF file).
 * Under QEMU (-M microvm -kernel) the same structure comes from QEMU.
 *
 * Detecting trialvm: a 32-bit IN from TVM_PORT_HCALL returns TVM_SIGNATURE.
 * Anything else (QEMU returns all-ones) means: no trialvm services.
 *
 * Works on the CI platform (nested KVM, guest ring 0 emulated) and on hardware.
 */
#ifndef TRIALVM_ABI_H
#define TRIALVM_ABI_H

#include <stdint.h>

#define TVM_ABI_VERSION 1

/* ---- ports ------------------------------------------------------------- */

/* Power off: an OUT of any width; the low 8 bits are the guest's exit status.
 * Placed where QEMU's isa-debug-exit device sits by default (iobase 0x501),
 * so under QEMU `-device isa-debug-exit` stands in (it exits with
 * (value << 1) | 1). */
#define TVM_PORT_POWEROFF 0x501

/* pvpanic (QEMU semantics): IN returns the supported events (bit 0 panicked,
 * bit 1 crash kernel loaded); OUT bit 0 = the guest kernel panicked. */
#define TVM_PORT_PVPANIC 0x505
#define TVM_PVPANIC_PANICKED 1u
#define TVM_PVPANIC_CRASH_LOADED 2u

/* Hypercall: a 32-bit OUT of the guest-physical address of a struct
 * tvm_hcall (8-byte aligned, whole struct inside guest RAM below 4 GiB).
 * trialvm validates the struct and every address inside it, performs the
 * call, and writes `result` (>= 0 success, < 0 a negative Linux errno)
 * and any outputs back before the OUT instruction completes.
 * A 32-bit IN returns TVM_SIGNATURE. */
#define TVM_PORT_HCALL 0x510
#define TVM_SIGNATURE 0x314d5654u /* "TVM1" little-endian */

/* The debugger's breakpoint port (run --gdb, vm.h TVM_BP_PORT): where
 * neither int3 nor hardware breakpoints exit to trialvm, a breakpoint is
 * the two bytes "out 0xcc, al". trialos opens this one port to ring 3 (its
 * TSS I/O bitmap) so that breakpoints in the application fire too. */
#define TVM_PORT_DEBUG_BP 0xcc

/* COM1 8250 UART (console), IRQ 4. */
#define TVM_PORT_COM1 0x3f8

enum tvm_hcall_op {
	/* arg[0] = Linux clockid (0 REALTIME, 1 MONOTONIC, others as MONOTONIC
	 * or -EINVAL); out: arg[1] = seconds, arg[2] = nanoseconds. */
	TVM_HC_CLOCK = 1,
	/* arg[0] = gpa of buffer, arg[1] = length (<= TVM_RANDOM_MAX);
	 * fills the buffer with random bytes; result = bytes written. */
	TVM_HC_RANDOM = 2,
	/* arg[0] = gpa of a struct tvm_fault. The application died: trialvm
	 * reports a crash; the OUT does not return to the guest. */
	TVM_HC_FAULT = 3,
};

#define TVM_RANDOM_MAX 4096u
#define TVM_CMDLINE_MAX 4096u

/* A Linux image's /init (guests/linux/init.c): when its own argv (the words
 * after the kernel command line's "--") holds this word, the words after it
 * replace the arguments the image gives its program (`run --image DIR --
 * ARGS`). */
#define TVM_INIT_ARGS_MARKER "--trialvm-args"

struct tvm_hcall {
	uint32_t op;
	int32_t result;
	uint64_t arg[4];
};

/* Registers in Linux `struct user_regs_struct` order (as in NT_PRSTATUS). */
struct tvm_user_regs {
	uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	uint64_t rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
	uint64_t fs_base, gs_base, ds, es, fs, gs;
};

#define TVM_FAULT_MAGIC 0x544c5546u /* "FULT" */
#define TVM_FAULT_NO_VECTOR 0xffffffffu

/* A user mapping of the application at the time of the fault. */
struct tvm_mapping {
	uint64_t start, end; /* user virtual, page aligned, end exclusive */
	uint32_t prot;       /* PROT_READ 1 | PROT_WRITE 2 | PROT_EXEC 4 */
	uint32_t kind;       /* 0 anon, 1 ELF segment, 2 stack, 3 brk */
};

struct tvm_fault {
	uint32_t magic;      /* TVM_FAULT_MAGIC */
	uint32_t version;    /* TVM_ABI_VERSION */
	uint32_t vector;     /* CPU exception vector, or TVM_FAULT_NO_VECTOR for a
	                        signal the application sent itself (abort()) */
	uint32_t signo;      /* Linux signal number as Linux would deliver it */
	int32_t si_code;     /* Linux si_code (SEGV_MAPERR 1, SEGV_ACCERR 2, ...) */
	uint32_t pad;
	uint64_t error_code; /* exception error code (0 when none) */
	uint64_t addr;       /* faulting address: CR2 for #PF, else RIP */
	uint64_t load_bias;  /* added to the application's ELF addresses */
	struct tvm_user_regs regs;
	uint64_t nr_mappings;     /* entries at mappings_gpa, <= TVM_FAULT_MAX_MAPS */
	uint64_t mappings_gpa;    /* gpa of struct tvm_mapping[nr_mappings] */
	uint64_t page_table_root; /* CR3 of the application's address space */
	char app_name[64];        /* argv[0], NUL-terminated */
	uint64_t auxv_gva;        /* user virtual address of the auxv the app got */
	uint64_t auxv_len;        /* its length in bytes (AT_NULL included) */
	uint64_t argv_gva;        /* user virtual address of argv[] (for psargs) */
	uint64_t argc;
};

#define TVM_FAULT_MAX_MAPS 256u

/* ---- virtio-mmio devices ----
 * virtio 1.x devices on the virtio-mmio transport (version 2 registers), at
 * TVM_VIRTIO_MMIO_BASE + slot * TVM_VIRTIO_MMIO_STRIDE, slots 0 ..
 * TVM_VIRTIO_MMIO_SLOTS-1, filled from slot 0 without gaps: a guest probes
 * slots in order and stops at the first whose MagicValue is not "virt"
 * (unclaimed MMIO reads as all-ones). Slot s raises ISA IRQ
 * TVM_VIRTIO_IRQ(s). Order: the --disk devices as given, then
 * virtio-console, then virtio-rng. Linux is told the same with
 * virtio_mmio.device=4K@ADDR:IRQ on its command line. */
#define TVM_VIRTIO_MMIO_BASE 0xd0000000u
#define TVM_VIRTIO_MMIO_STRIDE 0x1000u
#define TVM_VIRTIO_MMIO_SLOTS 6u
/* ISA IRQs free on a PC with COM1 (4), the PIT (0), i8042 (1, 12), RTC (8). */
#define TVM_VIRTIO_IRQ(slot) ((unsigned[]){ 5, 6, 7, 9, 10, 11 }[(slot)])

/* ---- PVH boot structures (Xen public ABI, arch-x86/hvm/start_info.h) ---- */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578u

struct hvm_start_info {
	uint32_t magic;          /* XEN_HVM_START_MAGIC_VALUE */
	uint32_t version;        /* 1: memmap fields valid */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;  /* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;   /* struct hvm_memmap_table_entry[memmap_entries] */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;           /* E820 type: 1 RAM, 2 reserved */
	uint32_t reserved;
};

#define TVM_E820_RAM 1u
#define TVM_E820_RESERVED 2u

/* Where trialvm puts the PVH boot data (guest physical, all below 1 MiB).
 * Guests must not assume these; they follow the pointers. */
#define TVM_PVH_START_INFO 0x5000u
#define TVM_PVH_MODLIST 0x5100u
#define TVM_PVH_MEMMAP 0x5200u   /* up to 64 entries */
#define TVM_PVH_CMDLINE 0x6000u  /* TVM_CMDLINE_MAX bytes */

#endif
