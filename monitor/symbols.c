#include "symbols.h"

#include <fcntl.h>
#include <stdio.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/util.h"

/* A symbol file larger than this is refused (Debian's vmlinux with debug
 * info is ~1 GiB). */
#define SYMTAB_MAX_FILE (4ull << 30)

struct sym {
	uint64_t addr, size;
	char *name;
};

struct symtab {
	size_t n;
	struct sym *s;
};

static int cmp_sym(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* A System.map: lines "ADDRESS TYPE NAME"; text (t/T) and data symbols. */
static struct symtab *load_system_map(int fd)
{
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return NULL;
	}
	struct symtab *st = calloc(1, sizeof(*st));
	size_t cap = 0;
	char line[512];
	while (st && fgets(line, sizeof(line), f)) {
		unsigned long long addr;
		char type, name[256];
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (!strchr("tTwWdDbBrR", type) || addr == ~0ull)
			continue;
		if (st->n == cap) {
			cap = cap ? cap * 2 : 1024;
			struct sym *s = realloc(st->s, cap * sizeof(*s));
			if (!s)
				break;
			st->s = s;
		}
		char *copy = strdup(name);
		if (!copy)
			break;
		st->s[st->n++] = (struct sym){ addr, 0, copy };
	}
	fclose(f);
	if (st && st->n == 0) {
		symtab_free(st);
		return NULL;
	}
	if (st)
		qsort(st->s, st->n, sizeof(*st->s), cmp_sym);
	return st;
}

struct symtab *symtab_load(const char *path)
{
	if (!path || elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	struct stat sb;
	int fd = open_input(path, &sb);
	if (fd < 0)
		return NULL;
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > SYMTAB_MAX_FILE) { /* a FIFO, /dev/zero: never read forever */
		close(fd);
		return NULL;
	}
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		if (e)
			elf_end(e);
		if (lseek(fd, 0, SEEK_SET) < 0) {
			close(fd);
			return NULL;
		}
		return load_system_map(fd);
	}
	struct symtab *st = calloc(1, sizeof(*st));
	if (!st)
		goto out;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || sh.sh_entsize == 0)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		size_t count = sh.sh_size / sh.sh_entsize;
		struct sym *s = realloc(st->s, (st->n + count) * sizeof(*s));
		if (!s)
			break;
		st->s = s;
		for (size_t i = 0; i < count; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, (int)i, &sym))
				break;
			int type = GELF_ST_TYPE(sym.st_info);
			if ((type != STT_FUNC && type != STT_OBJECT) || sym.st_shndx == SHN_UNDEF)
				continue;
			const char *name = elf_strptr(e, sh.sh_link, sym.st_name);
			if (!name || !*name)
				continue;
			char *copy = strdup(name);
			if (!copy)
				break;
			st->s[st->n++] = (struct sym){ sym.st_value, sym.st_size, copy };
		}
	}
	if (st->n)
		qsort(st->s, st->n, sizeof(*st->s), cmp_sym);
out:
	if (e)
		elf_end(e);
	close(fd);
	if (st && st->n == 0) {
		symtab_free(st);
		st = NULL;
	}
	return st;
}

void symtab_free(struct symtab *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		free(st->s[i].name);
	free(st->s);
	free(st);
}

const char *symtab_lookup(const struct symtab *st, uint64_t addr, uint64_t *off)
{
	if (!st || st->n == 0)
		return NULL;
	size_t lo = 0, hi = st->n;
	while (lo < hi) { /* first symbol with addr > target */
		size_t mid = (lo + hi) / 2;
		if (st->s[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Walk back over symbols at or below addr; prefer one that contains it. */
	for (size_t i = lo; i-- > 0;) {
		const struct sym *s = &st->s[i];
		if (addr >= s->addr && (addr - s->addr < s->size || (s->size == 0 && i + 1 == lo))) {
			*off = addr - s->addr;
			return s->name;
		}
		if (lo - i > 64)
			break;
	}
	return NULL;
}

int symtab_find(const struct symtab *st, const char *name, uint64_t *addr)
{
	if (!st)
		return -1;
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->s[i].name, name)) {
			*addr = st->s[i].addr;
			return 0;
		}
	return -1;
}
