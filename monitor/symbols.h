/* monitor/symbols.h - function names for addresses, from an ELF symbol table. */
#ifndef TVM_SYMBOLS_H
#define TVM_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

struct symtab;

/* Load the function and object symbols of an ELF file (libelf), or of a
 * Linux System.map. NULL when
 * the file cannot be read or has no symbol table; never fails loudly. */
struct symtab *symtab_load(const char *path);
void symtab_free(struct symtab *st);
/* Name of the symbol containing addr (offset in *off); NULL if none. */
const char *symtab_lookup(const struct symtab *st, uint64_t addr, uint64_t *off);

/* Address of the symbol called name; -1 if there is none. */
int symtab_find(const struct symtab *st, const char *name, uint64_t *addr);

#endif
