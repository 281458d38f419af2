/* vmm/loader_int.h - shared between loader.c, linux.c and mptable.c only. */
#ifndef TVM_LOADER_INT_H
#define TVM_LOADER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loader.h"
#include "vm.h"

#define LDR_PAGE 0x1000ull
#define LDR_MIB (1ull << 20)

static inline uint16_t ldr_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t ldr_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t ldr_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void ldr_put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void ldr_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void ldr_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Guest-physical ranges that must not be used for modules/initrd. */
#define LDR_MAX_BUSY 16
struct ldr_busy {
	int n;
	struct { uint64_t start, end; } r[LDR_MAX_BUSY];
};
void ldr_busy_add(struct ldr_busy *b, uint64_t start, uint64_t end);

/* Highest page-aligned start for `size` bytes of RAM (e820 type 1) inside
 * [min_addr, limit), clear of every busy range. -1 when nothing fits. */
int ldr_place_high(struct vm *vm, uint64_t size, uint64_t min_addr, uint64_t limit,
		   const struct ldr_busy *b, uint64_t *out);

/* End of the RAM that starts at 0 (the "low" RAM below the MMIO hole). */
uint64_t ldr_low_ram_end(struct vm *vm);
/* "256 MiB of RAM at 0x0-0x10000000" style description for messages. */
void ldr_describe_ram(struct vm *vm, char *buf, size_t len);

/* Open a module-like file (initrd, cpio), place it with ldr_place_high and
 * read it straight into guest RAM. `role` ("initrd"), `opt` ("--initrd"). */
int ldr_load_module(struct vm *vm, const char *role, const char *opt, const char *path,
		    uint64_t min_addr, uint64_t limit, struct ldr_busy *busy,
		    uint64_t *gpa, uint64_t *size, struct tvm_err *err);

/* A validated, loaded ELF kernel. */
struct ldr_elf {
	uint64_t entry;      /* physical entry (e_entry translated to p_paddr space) */
	uint64_t lo, hi;     /* physical extent of the PT_LOAD segments */
	bool has_pvh;
	uint64_t pvh_entry;
	bool is_linux;
	int nsegs;           /* the PT_LOAD segments as loaded (the first TVM_MAX_KSEGS) */
	struct kernel_seg segs[TVM_MAX_KSEGS];
};
/* Validate img[0..len) as an ELF64 x86-64 executable, parse its notes, and
 * copy its PT_LOAD segments into guest RAM at p_paddr, zeroing the BSS
 * parts; nothing is copied unless every segment validates. `what` names the
 * file in messages. */
int ldr_elf_load(struct vm *vm, const char *what, const uint8_t *img, size_t len,
		 struct ldr_elf *info, struct tvm_err *err);

/* True when the range overlaps what the loader itself writes below 1 MiB. */
bool ldr_overlaps_boot_data(uint64_t start, uint64_t end);

/* linux.c */
bool linux_is_bzimage(const uint8_t *img, size_t len);
int linux_boot_bzimage(struct vm *vm, const struct load_opts *o, const uint8_t *img, size_t len,
		       struct boot_entry *entry, struct tvm_err *err);
/* The ELF is already loaded: build boot_params with a synthesized header. */
int linux_boot_vmlinux(struct vm *vm, const struct load_opts *o, const struct ldr_elf *ke,
		       struct boot_entry *entry, struct tvm_err *err);

#endif
