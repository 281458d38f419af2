/* vmm/text.c - escaping untrusted text (see text.h). UTF-8 rules: RFC 3629
 * (shortest form only, no surrogates, nothing above U+10FFFF). */
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4) and its code point, or 0
 * when the byte at s does not start one. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t b = s[0];
	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	size_t len;
	uint32_t min, c;
	if ((b & 0xe0) == 0xc0) {
		len = 2, min = 0x80, c = b & 0x1f;
	} else if ((b & 0xf0) == 0xe0) {
		len = 3, min = 0x800, c = b & 0x0f;
	} else if ((b & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, c = b & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static int is_bidi(uint32_t c)
{
	return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
	       (c >= 0x2066 && c <= 0x2069);
}

/* The escaped form of the character (len bytes at s, code point c, or an
 * invalid byte when len == 0) into out (at least 16 bytes); its length. */
static size_t escape_one(const uint8_t *s, size_t len, uint32_t c, int mode, char *out)
{
	if (len == 0)
		return (size_t)snprintf(out, 16, "\\x%02x", s[0]);
	if (mode & TVM_ESC_TERMINAL) {
		if ((c == '\n' || c == '\t') && (mode & TVM_ESC_KEEP_NL)) {
			out[0] = (char)c;
			return 1;
		}
		if (c < 0x20 || c == 0x7f)
			return (size_t)snprintf(out, 16, "\\x%02x", (unsigned)c);
		if ((c >= 0x80 && c <= 0x9f) || is_bidi(c))
			return (size_t)snprintf(out, 16, "\\u{%04x}", (unsigned)c);
		if (c == '\\') {
			memcpy(out, "\\\\", 2);
			return 2;
		}
	}
	memcpy(out, s, len);
	return len;
}

size_t tvm_escape(const void *src, size_t len, int mode, char *dst, size_t cap)
{
	const uint8_t *s = src;
	size_t i = 0, o = 0;
	if (cap == 0)
		return 0;
	while (i < len) {
		uint32_t c = 0;
		size_t n = utf8_seq(s + i, len - i, &c);
		char buf[16];
		size_t m = escape_one(s + i, n, c, mode, buf);
		if (m >= cap - o)
			break;
		memcpy(dst + o, buf, m);
		o += m;
		i += n ? n : 1;
	}
	dst[o] = '\0';
	return i;
}

char *tvm_escape_dup(const void *src, size_t len, int mode)
{
	/* At most 9 output bytes ("\u{202e}" is 8) per input byte, plus NUL. */
	if (len > (SIZE_MAX - 1) / 9)
		return NULL;
	size_t cap = len * 9 + 1;
	char *d = malloc(cap);
	if (!d)
		return NULL;
	tvm_escape(src, len, mode, d, cap);
	char *shrunk = realloc(d, strlen(d) + 1);
	return shrunk ? shrunk : d;
}
