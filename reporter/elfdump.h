/* reporter/elfdump.h - the guest-physical ELF dump (core.elf), laid out as
 * QEMU's `dump-guest-memory` writes it, so that crash, gdb and readelf read it
 * (DESIGN.md "Formats"), plus the sparse-write helpers every dump writer uses.
 *
 * core.elf: ELFCLASS64 LSB ET_CORE EM_X86_64, e_phoff 64; program headers:
 * PT_NOTE, then one PT_LOAD per RAM region (p_paddr = p_vaddr = gpa,
 * p_filesz = p_memsz = region size, p_align 0, p_offset page aligned).
 * Notes, in order: NT_PRSTATUS ("CORE") per vCPU (pr_pid = index + 1),
 * "QEMU" (type 0, QEMUCPUState version 1 with kernel_gs_base, 0x1b8 bytes)
 * per vCPU, then "VMCOREINFO" (type 0) when cs->vmcoreinfo is set.
 * All-zero pages are holes in the file (the file is sparse).
 */
#ifndef TVM_ELFDUMP_H
#define TVM_ELFDUMP_H

#include <stddef.h>
#include <stdint.h>

#include "crash_state.h"

/* Size of the QEMU note descriptor trialvm writes (QEMUCPUState v1 with the
 * optional kernel_gs_base), and of the x86-64 NT_PRSTATUS descriptor. */
#define TVM_QEMU_CPUSTATE_SIZE 0x1b8u
#define TVM_QEMU_CPUSTATE_MIN 0x1b0u /* v1 without kernel_gs_base */
#define TVM_PRSTATUS_SIZE 0x150u
/* A VMCOREINFO text larger than this is left out of the dump (with a log
 * line): the kernel's own is one page. */
#define TVM_VMCOREINFO_MAX (1u << 20)

/* Write the dump of `cs` to `fd` (a regular file opened for writing; it is
 * written with pwrite from offset 0, truncated to the dump's size and
 * fsync'ed). 0 on success; -1 with one sentence in err (I/O errors such as
 * ENOSPC included; the file is then incomplete and must be discarded). */
int write_core_elf(const struct crash_state *cs, int fd, struct tvm_err *err);

/* ---- helpers shared by the dump writers (windump.c, appcore.c) ---- */

/* pwrite all of buf at off, retrying short writes; -1 with err naming
 * `what` and the errno (ENOSPC: "no space left on device"). */
int dump_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *what,
		    struct tvm_err *err);

/* Write [host, host+len) at file offset off, page by page (4096; off should
 * be page aligned for the holes to be real), skipping all-zero pages: they
 * are left as holes. Pages the host never populated are skipped without being
 * read (see elfdump.c: dump_zero_oracle). -1 with err on a write error. */
int dump_write_sparse(int fd, uint64_t off, const uint8_t *host, uint64_t len, const char *what,
		      struct tvm_err *err);

/* Set the file size to `size` (creating the trailing hole) and fsync. */
int dump_finish(int fd, uint64_t size, const char *what, struct tvm_err *err);

/* True when all n bytes at p are zero. */
int dump_is_zero(const void *p, size_t n);

/* A calloc'ed buffer with an x86-64 ET_CORE ELF header followed by phnum
 * zeroed program headers (*phdrs points at them), PT_NOTE conventions left
 * to the caller; NULL when out of memory. Its length is the notes' offset:
 * sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr). */
#include <elf.h>
uint8_t *dump_core_header(unsigned phnum, Elf64_Phdr **phdrs);

/* A growing buffer of ELF notes (start it zeroed; free(p) when done). */
struct notebuf {
	uint8_t *p;
	size_t len, cap;
};
/* Append one note: header, NAME (NUL included) and DESC, each padded to 4
 * bytes. -1 when out of memory. */
int dump_note_add(struct notebuf *nb, const char *name, uint32_t type, const void *desc, size_t descsz);

#endif
