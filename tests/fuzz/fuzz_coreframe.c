/* tests/fuzz/fuzz_coreframe.c - libFuzzer harness for the core channel's
 * frame parser, core_frame_feed() (devices/core_channel.c): the bytes are
 * what a Linux guest sends over hvc1, hence hostile.
 *
 * Input layout:
 *   0  u8   cap         the buffer's size: cap * 16 bytes (0..4080), in an
 *                       allocation of exactly that size (ASan sees a write
 *                       past it)
 *   1  u8   split       the pieces the stream is fed in: split + 1 bytes
 *                       each (the last one shorter)
 *   2  ...              the stream
 * An independent reading of the format (magic, signo 1-64, length 1..cap,
 * then that many bytes, and nothing after) decides what the parser must
 * say, and the core it hands back must be the stream's bytes; 1 is said
 * once at most, and a broken stream stays broken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 2)
		return 0;
	uint64_t cap = (uint64_t)data[0] * 16;
	size_t piece = (size_t)data[1] + 1;
	const uint8_t *s = data + 2;
	size_t n = len - 2;

	/* What the format says of this stream. */
	enum { NEED_MORE, WHOLE, TRAILING, BROKEN } want = NEED_MORE;
	uint64_t flen = 0;
	if (n >= CORE_FRAME_HDR) {
		uint32_t signo;
		memcpy(&signo, s + 8, 4);
		memcpy(&flen, s + 16, 8);
		if (memcmp(s, "TVMCORE1", 8) || flen == 0 || flen > cap || signo == 0 || signo > 64)
			want = BROKEN;
		else if (n - CORE_FRAME_HDR == flen)
			want = WHOLE;
		else if (n - CORE_FRAME_HDR > flen)
			want = TRAILING;
	}

	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf)
		abort();
	struct core_frame f = { .cap = cap, .buf = buf, .st = CORE_FRAME_RECEIVING };
	int ones = 0, last = 0;
	bool said_broken = false;
	for (size_t off = 0; off < n;) {
		size_t k = n - off < piece ? n - off : piece;
		const char *why = NULL;
		int r = core_frame_feed(&f, s + off, k, &why);
		if (r < -1 || r > 1)
			abort();
		if (r == 1)
			ones++;
		/* The call that breaks the stream says why; later ones need not. */
		if (f.st == CORE_FRAME_BROKEN && !said_broken) {
			if (!why)
				abort();
			said_broken = true;
		}
		if (said_broken && r == 0)
			abort();
		last = r;
		off += k;
	}
	if (ones > 1)
		abort();
	switch (want) {
	case NEED_MORE:
		if (f.st != CORE_FRAME_RECEIVING || ones || (n && last != 0))
			abort();
		break;
	case WHOLE:
	case TRAILING:
		/* Bytes after a whole core break the stream (the frame stays
		 * whole: the call that completed it said 1). */
		if (f.st != (want == WHOLE ? CORE_FRAME_DONE : CORE_FRAME_BROKEN) || ones != 1 ||
		    (want == WHOLE && last != 1) || f.info.len != flen || f.info.data != buf ||
		    memcmp(buf, s + CORE_FRAME_HDR, flen) || f.info.comm[sizeof(f.info.comm) - 1] != 0 ||
		    f.info.signo == 0 || f.info.signo > 64 || memcmp(&f.info.pid, s + 12, 4))
			abort();
		break;
	case BROKEN:
		if (f.st != CORE_FRAME_BROKEN || last != -1 || ones)
			abort();
		break;
	}
	free(buf);
	return 0;
}
