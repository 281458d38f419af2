#include "disasm.h"

#include <capstone/capstone.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../vmm/util.h"

/* capstone is dlopen()ed before the main thread enters its sandbox
 * (disasm_preload), so that no sandbox class needs executable mappings; it
 * costs about 3 MiB of relocated tables per VMM. Without a preload (tools,
 * tests) the first disassembly loads it. */
static struct {
	cs_err (*open)(cs_arch, cs_mode, csh *);
	cs_err (*close)(csh *);
	cs_insn *(*malloc)(csh);
	void (*free)(cs_insn *, size_t);
	bool (*disasm_iter)(csh, const uint8_t **, size_t *, uint64_t *, cs_insn *);
	bool ok;
} cs;

static void load_capstone(void)
{
	static const char *const names[] = { "libcapstone.so.4", "libcapstone.so.5", "libcapstone.so" };
	void *h = NULL;
	for (size_t i = 0; !h && i < sizeof(names) / sizeof(names[0]); i++)
		h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		tvm_log("warning: no disassembly: capstone could not be loaded (%s)", dlerror());
		return;
	}
	*(void **)&cs.open = dlsym(h, "cs_open");
	*(void **)&cs.close = dlsym(h, "cs_close");
	*(void **)&cs.malloc = dlsym(h, "cs_malloc");
	*(void **)&cs.free = dlsym(h, "cs_free");
	*(void **)&cs.disasm_iter = dlsym(h, "cs_disasm_iter");
	cs.ok = cs.open && cs.close && cs.malloc && cs.free && cs.disasm_iter;
	if (!cs.ok)
		tvm_log("warning: no disassembly: this capstone lacks cs_disasm_iter");
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

void disasm_preload(void) { pthread_once(&once, load_capstone); }

int disasm_range(const uint8_t *code, uint64_t len, uint64_t base, uint64_t start, uint64_t pc, int bits,
		 const struct symtab *st, uint64_t bias, int after, struct disasm_insn *out, int max)
{
	if (start < base || start - base >= len || max <= 0)
		return 0;
	disasm_preload();
	if (!cs.ok)
		return 0;
	csh h;
	cs_mode mode = bits == 64 ? CS_MODE_64 : bits == 32 ? CS_MODE_32 : CS_MODE_16;
	if (cs.open(CS_ARCH_X86, mode, &h) != CS_ERR_OK)
		return 0;
	cs_insn *insn = cs.malloc(h);
	if (!insn) {
		cs.close(&h);
		return 0;
	}
	const uint8_t *p = code + (start - base);
	size_t left = (size_t)(len - (start - base));
	uint64_t addr = start;
	int n = 0, past = -1;
	while (n < max && left > 0 && cs.disasm_iter(h, &p, &left, &addr, insn)) {
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
	cs.free(insn, 1);
	cs.close(&h);
	return n;
}
