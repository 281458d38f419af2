/* monitor/disasm.h - disassembly of guest code around an address (capstone). */
#ifndef TVM_DISASM_H
#define TVM_DISASM_H

#include <stdbool.h>
#include <stdint.h>

#include "symbols.h"

struct disasm_insn {
	uint64_t address;
	uint8_t bytes[16];
	int size;
	char text[192];   /* "mov rax, qword ptr [rbx]" */
	char symbol[96];  /* "crash_here+0x17", or "" */
	bool current;     /* the instruction at `pc` */
};

/* Load capstone now (once): before the sandbox, which allows no
 * executable mappings. A warning on stderr when it cannot be loaded. */
void disasm_preload(void);

/* Disassemble code[0..len), which sits at guest address `base`, as 64-bit
 * (bits = 64) or 32/16-bit code. Starts at `start` (>= base) and returns up
 * to max instructions, stopping `after` instructions past pc. The one at pc
 * is marked current. Symbols come from st (minus bias) when given. */
int disasm_range(const uint8_t *code, uint64_t len, uint64_t base, uint64_t start, uint64_t pc, int bits,
		 const struct symtab *st, uint64_t bias, int after, struct disasm_insn *out, int max);

#endif
