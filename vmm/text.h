/* vmm/text.h - untrusted text (guest strings, console bytes, strings read
 * from reports) made safe to print on a terminal or to store in JSON. */
#ifndef TVM_TEXT_H
#define TVM_TEXT_H

#include <stddef.h>

/* Modes of tvm_escape. */
enum {
	/* For a terminal: besides invalid UTF-8, escape C0 controls (ESC, BEL,
	 * CR, ...), DEL, C1 controls (U+0080..U+009F), the bidirectional
	 * controls (U+061C, U+200E/F, U+202A..U+202E, U+2066..U+2069) and a
	 * backslash (so that an escape is never ambiguous). */
	TVM_ESC_TERMINAL = 1,
	/* With TVM_ESC_TERMINAL: keep '\n' and '\t' as they are. */
	TVM_ESC_KEEP_NL = 2,
};

/* Copy len bytes of src into dst (capacity cap > 0, always NUL-terminated):
 * valid UTF-8 is kept, each byte of an invalid or overlong sequence (or of
 * a surrogate, or above U+10FFFF) becomes "\xNN"; with TVM_ESC_TERMINAL,
 * controls become "\xNN" (C0, DEL), "\u{NNNN}" (C1, bidi) and '\' becomes
 * "\\". Never cuts an escape or a character in half: stops at the last one
 * that fits. Returns the number of src bytes consumed (== len unless dst
 * was too small). */
size_t tvm_escape(const void *src, size_t len, int mode, char *dst, size_t cap);

/* The same into a malloc'ed string that always holds all of it; NULL only
 * when out of memory. */
char *tvm_escape_dup(const void *src, size_t len, int mode);

#endif
