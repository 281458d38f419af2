/* vmm/vmstate.h - plain, versioned state records: what a device or a vCPU
 * saves into a snapshot and loads back (README "Snapshot files").
 *
 * A record is a sequence of fields, each `u16 tag, u16 flags, u32 length`
 * followed by `length` bytes (little-endian numbers). A reader looks fields
 * up by tag; a field it does not know is skipped unless its flags carry
 * VS_REQUIRED, and then the record is refused. A known field whose length
 * is not the one the reader expects is refused too: a new layout of a
 * field gets a new tag, never a new length under the old one. Records come
 * from files (hostile): vs_check() validates the framing before any lookup.
 */
#ifndef TVM_VMSTATE_H
#define TVM_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm.h"

#define VS_REQUIRED 1u
#define VS_MAX_RECORD (64u << 20)

/* ---- writing: a growing buffer; a failed allocation is remembered and
 * reported by vs_out_error(), so callers put many fields unchecked ---- */
struct vs_out {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};
void vs_put(struct vs_out *o, uint16_t tag, const void *data, uint32_t len);
void vs_put_required(struct vs_out *o, uint16_t tag, const void *data, uint32_t len);
void vs_put_u8(struct vs_out *o, uint16_t tag, uint8_t v);
void vs_put_u16(struct vs_out *o, uint16_t tag, uint16_t v);
void vs_put_u32(struct vs_out *o, uint16_t tag, uint32_t v);
void vs_put_u64(struct vs_out *o, uint16_t tag, uint64_t v);
/* -1 with err when an allocation failed or the record grew too large. */
int vs_out_error(const struct vs_out *o, struct tvm_err *err);
void vs_out_free(struct vs_out *o);

/* ---- reading ---- */
struct vs_in {
	const uint8_t *p;
	size_t len;
	const char *what;   /* "the UART", for messages */
};
/* Check the framing, and that every field carrying VS_REQUIRED has a tag
 * in known[0..nknown). 0, or -1 with err naming `what`. */
int vs_check(const struct vs_in *in, const uint16_t *known, size_t nknown, struct tvm_err *err);
/* The field `tag` (the first one): 1 with the data and its length, 0 when absent. */
int vs_find(const struct vs_in *in, uint16_t tag, const void **data, uint32_t *len);
/* Copy field `tag` of exactly len bytes into out. -1 with err if it is
 * missing or has another length (`name` says which field). */
int vs_get(const struct vs_in *in, uint16_t tag, void *out, uint32_t len, const char *name, struct tvm_err *err);
/* The same when the field may be absent: 0 absent (out untouched), 1 read. */
int vs_get_opt(const struct vs_in *in, uint16_t tag, void *out, uint32_t len, const char *name, struct tvm_err *err);
int vs_get_u8(const struct vs_in *in, uint16_t tag, uint8_t *v, const char *name, struct tvm_err *err);
int vs_get_u16(const struct vs_in *in, uint16_t tag, uint16_t *v, const char *name, struct tvm_err *err);
int vs_get_u32(const struct vs_in *in, uint16_t tag, uint32_t *v, const char *name, struct tvm_err *err);
int vs_get_u64(const struct vs_in *in, uint16_t tag, uint64_t *v, const char *name, struct tvm_err *err);

#endif
