/* vmm/vmstate.c - state records (vmstate.h). */
#include "vmstate.h"

#include <stdlib.h>
#include <string.h>

#define FIELD_HDR 8u

static void put_field(struct vs_out *o, uint16_t tag, uint16_t flags, const void *data, uint32_t len)
{
	if (o->failed)
		return;
	size_t need = o->len + FIELD_HDR + len;
	if (need > VS_MAX_RECORD || need < o->len) {
		o->failed = true;
		return;
	}
	if (need > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < need)
			cap *= 2;
		uint8_t *nb = realloc(o->buf, cap);
		if (!nb) {
			o->failed = true;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	uint8_t *p = o->buf + o->len;
	memcpy(p, &tag, 2);
	memcpy(p + 2, &flags, 2);
	memcpy(p + 4, &len, 4);
	if (len)
		memcpy(p + FIELD_HDR, data, len);
	o->len = need;
}

void vs_put(struct vs_out *o, uint16_t tag, const void *data, uint32_t len) { put_field(o, tag, 0, data, len); }
void vs_put_required(struct vs_out *o, uint16_t tag, const void *data, uint32_t len)
{
	put_field(o, tag, VS_REQUIRED, data, len);
}
void vs_put_u8(struct vs_out *o, uint16_t tag, uint8_t v) { put_field(o, tag, 0, &v, 1); }
void vs_put_u16(struct vs_out *o, uint16_t tag, uint16_t v) { put_field(o, tag, 0, &v, 2); }
void vs_put_u32(struct vs_out *o, uint16_t tag, uint32_t v) { put_field(o, tag, 0, &v, 4); }
void vs_put_u64(struct vs_out *o, uint16_t tag, uint64_t v) { put_field(o, tag, 0, &v, 8); }

int vs_out_error(const struct vs_out *o, struct tvm_err *err)
{
	if (o->failed)
		return tvm_seterr(err, "out of memory (or a state record over %u MiB) while saving state",
				  VS_MAX_RECORD >> 20);
	return 0;
}

void vs_out_free(struct vs_out *o)
{
	free(o->buf);
	*o = (struct vs_out){ 0 };
}

int vs_check(const struct vs_in *in, const uint16_t *known, size_t nknown, struct tvm_err *err)
{
	const char *what = in->what ? in->what : "a state record";
	size_t off = 0;
	if (in->len > VS_MAX_RECORD)
		return tvm_seterr(err, "the state of %s is %zu bytes, more than the %u MiB a record may hold", what,
				  in->len, VS_MAX_RECORD >> 20);
	while (off < in->len) {
		if (in->len - off < FIELD_HDR)
			return tvm_seterr(err, "the state of %s is truncated inside a field header at byte %zu", what, off);
		uint16_t tag, flags;
		uint32_t len;
		memcpy(&tag, in->p + off, 2);
		memcpy(&flags, in->p + off + 2, 2);
		memcpy(&len, in->p + off + 4, 4);
		if (len > in->len - off - FIELD_HDR)
			return tvm_seterr(err, "the state of %s has field %u of %u bytes at byte %zu, past its end", what,
					  tag, len, off);
		if (flags & VS_REQUIRED) {
			bool ok = false;
			for (size_t i = 0; i < nknown; i++)
				ok |= known[i] == tag;
			if (!ok)
				return tvm_seterr(err, "the state of %s has required field %u, which this trialvm does not "
						       "know (written by a newer version?)", what, tag);
		}
		off += FIELD_HDR + len;
	}
	return 0;
}

int vs_find(const struct vs_in *in, uint16_t tag, const void **data, uint32_t *len)
{
	size_t off = 0;
	while (in->len - off >= FIELD_HDR) {
		uint16_t t;
		uint32_t l;
		memcpy(&t, in->p + off, 2);
		memcpy(&l, in->p + off + 4, 4);
		if (l > in->len - off - FIELD_HDR)
			return 0;
		if (t == tag) {
			*data = in->p + off + FIELD_HDR;
			*len = l;
			return 1;
		}
		off += FIELD_HDR + l;
	}
	return 0;
}

int vs_get_opt(const struct vs_in *in, uint16_t tag, void *out, uint32_t len, const char *name, struct tvm_err *err)
{
	const void *d;
	uint32_t l;
	if (!vs_find(in, tag, &d, &l))
		return 0;
	if (l != len)
		return tvm_seterr(err, "the state of %s has %s (field %u) of %u bytes; this trialvm reads %u",
				  in->what ? in->what : "a state record", name, tag, l, len);
	memcpy(out, d, len);
	return 1;
}

int vs_get(const struct vs_in *in, uint16_t tag, void *out, uint32_t len, const char *name, struct tvm_err *err)
{
	int r = vs_get_opt(in, tag, out, len, name, err);
	if (r == 0)
		return tvm_seterr(err, "the state of %s lacks %s (field %u)", in->what ? in->what : "a state record",
				  name, tag);
	return r < 0 ? -1 : 0;
}

int vs_get_u8(const struct vs_in *in, uint16_t tag, uint8_t *v, const char *name, struct tvm_err *err)
{
	return vs_get(in, tag, v, 1, name, err);
}
int vs_get_u16(const struct vs_in *in, uint16_t tag, uint16_t *v, const char *name, struct tvm_err *err)
{
	return vs_get(in, tag, v, 2, name, err);
}
int vs_get_u32(const struct vs_in *in, uint16_t tag, uint32_t *v, const char *name, struct tvm_err *err)
{
	return vs_get(in, tag, v, 4, name, err);
}
int vs_get_u64(const struct vs_in *in, uint16_t tag, uint64_t *v, const char *name, struct tvm_err *err)
{
	return vs_get(in, tag, v, 8, name, err);
}
