/* reporter/inspect_int.h - what the parts of `trialvm inspect` share
 * (inspect.c: dispatch and the checked file reader; inspect_elf.c: ELF
 * parsing and the guest-physical dump; inspect_appcore.c: the application
 * core; inspect_windump.c: the Windows dump; inspect_report.c: report.json).
 * Internal to reporter/inspect*.c (and the fuzz harnesses). */
#ifndef TVM_INSPECT_INT_H
#define TVM_INSPECT_INT_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "inspect.h"

#define INSP_PAGE ((uint64_t)4096)

/* The file being inspected: an open descriptor, its name for messages, its
 * size and the bytes allocated to it (fstat). */
struct insp_src {
	int fd;
	const char *path;
	uint64_t size;
	uint64_t blocks; /* bytes allocated */
};

/* Read [off, off + len) of the file into buf, after checking that the range
 * lies inside the file; -1 with err naming `what` otherwise. */
int insp_read(const struct insp_src *s, uint64_t off, void *buf, uint64_t len, const char *what,
	      struct tvm_err *err);

static inline uint64_t insp_get64(const uint8_t *b, size_t off) { uint64_t v; memcpy(&v, b + off, 8); return v; }
static inline uint32_t insp_get32(const uint8_t *b, size_t off) { uint32_t v; memcpy(&v, b + off, 4); return v; }
static inline uint16_t insp_get16(const uint8_t *b, size_t off) { uint16_t v; memcpy(&v, b + off, 2); return v; }

/* "4 MiB", "12 KiB", "100 bytes". */
void insp_mib(char *buf, size_t cap, uint64_t v);
/* Write len bytes to out and flush; -1 with err. */
int insp_emit(FILE *out, const void *buf, size_t len, struct tvm_err *err);
/* Check --read-phys's length and range. */
int insp_check_read_opts(const struct inspect_opts *o, const char *path, struct tvm_err *err);

/* ---- event log segments (inspect_evlog.c) ---- */
int insp_evlog(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err);

/* ---- ELF (inspect_elf.c) ---- */
/* What a note is, by its owner name and type (the only ones inspect takes). */
enum insp_note_kind {
	INSP_NOTE_UNKNOWN,
	INSP_NOTE_PRSTATUS,   /* "CORE" NT_PRSTATUS: both formats */
	INSP_NOTE_QEMU,       /* "QEMU" 0: guest dump */
	INSP_NOTE_VMCOREINFO, /* "VMCOREINFO" 0: guest dump */
	INSP_NOTE_PRPSINFO,   /* "CORE" NT_PRPSINFO: process core */
	INSP_NOTE_SIGINFO,    /* "CORE" NT_SIGINFO */
	INSP_NOTE_AUXV,       /* "CORE" NT_AUXV */
	INSP_NOTE_FPREGSET,   /* "CORE" NT_FPREGSET */
	INSP_NOTE_FILE,       /* "CORE" NT_FILE (Linux writes it; trialvm does not) */
	INSP_NOTE_XSTATE,     /* "LINUX" NT_X86_XSTATE (likewise) */
};

struct insp_note {
	enum insp_note_kind kind;
	char shown[64];    /* the owner name, escaped for a message */
	uint32_t type;
	uint64_t off;      /* file offset of the note header */
	uint64_t desc_off; /* file offset of the descriptor */
	uint32_t descsz;
};

struct insp_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr *ph;
	unsigned phnum;
	struct insp_note *notes;
	size_t nnotes, cap;
};

/* Read and check the ELF header, the program headers (PT_LOAD and PT_NOTE
 * data inside the file, no two of them sharing file bytes nor overlapping
 * the headers, no address range that wraps) and every note (bounds; kind). */
int insp_elf_load(const struct insp_src *s, struct insp_elf *e, struct tvm_err *err);
void insp_elf_free(struct insp_elf *e);
/* Read a note's descriptor, which must be exactly `want` bytes. */
int insp_note_desc(const struct insp_src *s, const struct insp_note *n, void *buf, uint32_t want, const char *what,
		   struct tvm_err *err);
/* No two PT_LOADs overlap in guest-physical (by_paddr) or virtual address;
 * -1 with err naming both program headers otherwise. */
int insp_elf_no_overlap(const struct insp_src *s, const struct insp_elf *e, bool by_paddr, struct tvm_err *err);
/* "program header 3 at 0xe8" */
uint64_t insp_phoff(const struct insp_elf *e, unsigned i);

/* Escape untrusted text (len bytes, or up to a NUL) for a terminal into buf
 * (vmm/text.h, TVM_ESC_TERMINAL); returns buf. */
const char *insp_esc(char *buf, size_t cap, const void *s, size_t len);

/* ---- the formats ---- */
/* An ET_CORE ELF: a guest dump or an application core (inspect_elf.c). */
int insp_elf(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err);
int insp_guest_elf(const struct insp_src *s, const struct insp_elf *e, const struct inspect_opts *o, FILE *out,
		   struct tvm_err *err);
/* inspect_appcore.c */
int insp_app_core(const struct insp_src *s, const struct insp_elf *e, const struct inspect_opts *o, FILE *out,
		  struct tvm_err *err);
/* inspect_windump.c */
int insp_windump(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err);
/* inspect_report.c */
int insp_json(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err);

#endif
