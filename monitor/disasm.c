#include "disasm.h"

#include <capstone/capstone.h>
#include <stdio.h>
#include <string.h>

int disasm_range(const uint8_t *code, uint64_t len, uint64_t base, uint64_t start, uint64_t pc, int bits,
		 const struct symtab *st, uint64_t bias, int after, struct disasm_insn *out, int max)
{
	if (start < base || start - base >= len || max <= 0)
		return 0;
	csh h;
	cs_mode mode = bits == 64 ? CS_MODE_64 : bits == 32 ? CS_MODE_32 : CS_MODE_16;
	if (cs_open(CS_ARCH_X86, mode, &h) != CS_ERR_OK)
		return 0;
	cs_insn *insn = cs_malloc(h);
	const uint8_t *p = code + (start - base);
	size_t left = (size_t)(len - (start - base));
	uint64_t addr = start;
	int n = 0, past = -1;
	while (n < max && left > 0 && cs_disasm_iter(h, &p, &left, &addr, insn)) {
		struct disasm_insn *d = &out[n++];
		memset(d, 0, sizeof(*d));
		d->address = insn->address;
		d->size = insn->size > 16 ? 16 : insn->size;
		memcpy(d->bytes, insn->bytes, (size_t)d->size);
		snprintf(d->text, sizeof(d->text), "%s%s%s", insn->mnemonic, insn->op_str[0] ? " " : "", insn->op_str);
		uint64_t off;
		const char *name = st ? symtab_lookup(st, insn->address - bias, &off) : NULL;
		if (name)
			snprintf(d->symbol, sizeof(d->symbol), "%s+0x%llx", name, (unsigned long long)off);
		if (insn->address == pc) {
			d->current = true;
			past = 0;
		} else if (past >= 0 && ++past >= after) {
			break;
		} else if (insn->address > pc && past < 0) {
			past = 1; /* pc fell inside an instruction: count from here */
		}
	}
	cs_free(insn, 1);
	cs_close(&h);
	return n;
}
