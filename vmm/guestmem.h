/* vmm/guestmem.h - reading guest memory the way the guest sees it. */
#ifndef TVM_GUESTMEM_H
#define TVM_GUESTMEM_H

#include <stdint.h>

#include "vm.h"

/* Translate a 4-level (long mode) virtual address through the page tables
 * rooted at cr3, every table read through the checked accessor. Handles 1 GiB
 * and 2 MiB pages. 0 and *gpa on success, -1 when not mapped or a table lies
 * outside RAM. */
int guest_virt_to_phys(const struct guest_mem *m, uint64_t cr3, uint64_t va, uint64_t *gpa);

/* The one 4-level walk (guest_virt_to_phys is built on it), which also says
 * how far an unmapped area extends, so that a huge, mostly unmapped range
 * costs one step per missing table, not one per page. 1: mapped, *pa = the
 * physical address of va, *span = bytes to the end of its page (4 KiB,
 * 2 MiB or 1 GiB). 0: not mapped (or a table outside RAM), *span = bytes to
 * the end of the missing entry's range. No canonical-address check. */
int guest_walk4(const struct guest_mem *m, uint64_t cr3, uint64_t va, uint64_t *pa, uint64_t *span);

/* Copy up to len bytes at virtual va (page by page) into dst, which holds at
 * least len bytes; returns the number of bytes copied before the first
 * unmapped page or the end of the address space (never wraps past 2^64). */
uint64_t guest_read_virt(const struct guest_mem *m, uint64_t cr3, uint64_t va, void *dst, uint64_t len);

#endif

#ifndef TVM_GUESTMEM_MODE
#define TVM_GUESTMEM_MODE
struct cpu_state;
/* Translate a virtual address the way vCPU `cpu` sees it right now: linear =
 * segment base (outside 64-bit mode) + va, then paging off, 32-bit, PAE or
 * 4-level paging as CR0/CR4/EFER say. -1 when not mapped. */
int guest_translate(const struct guest_mem *m, const struct cpu_state *cpu, uint64_t va, uint64_t *gpa);
/* Like guest_read_virt, through guest_translate. */
uint64_t guest_read_cpu(const struct guest_mem *m, const struct cpu_state *cpu, uint64_t va, void *dst,
			uint64_t len);
#endif
