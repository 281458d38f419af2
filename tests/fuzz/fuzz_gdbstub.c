/* tests/fuzz/fuzz_gdbstub.c - libFuzzer harness for the gdb stub's packet
 * layer (monitor/gdbstub.c, gdb_conn_feed): framing, checksums, acks,
 * escapes, the query packets and every request's parsing up to where it
 * would need a VM (none here: those answer an error). What a debugger's
 * socket carries is hostile.
 *
 * Input: byte 0 the size of the pieces the stream is fed in (1..256), then
 * the stream. Invariants, by an independent reading of the output: it is
 * only acks ('+', '-') and whole packets "$payload#cs" whose checksum is
 * right and whose payload holds no '$' or '#'; and no more packets come
 * out than packets and NAKs ('-', each a resend) went in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/gdbstub.h"

#define REQUIRE(c)               \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static void check_output(const uint8_t *o, size_t n, size_t *packets)
{
	for (size_t i = 0; i < n;) {
		if (o[i] == '+' || o[i] == '-') {
			i++;
			continue;
		}
		REQUIRE(o[i] == '$');
		size_t j = i + 1;
		unsigned sum = 0;
		while (j < n && o[j] != '#') {
			REQUIRE(o[j] != '$');
			sum += o[j++];
		}
		REQUIRE(j + 2 < n); /* "#cs" whole: the stub sends whole packets */
		static const char hex[] = "0123456789abcdef";
		REQUIRE(o[j + 1] == hex[(sum >> 4) & 15] && o[j + 2] == hex[sum & 15]);
		(*packets)++;
		i = j + 3;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	size_t piece = (size_t)data[0] + 1;
	const uint8_t *s = data + 1;
	size_t n = len - 1, in_packets = 0, out_packets = 0;
	for (size_t i = 0; i < n; i++)
		in_packets += s[i] == '$' || s[i] == '-';
	struct gdb_conn *c = gdb_conn_new();
	REQUIRE(c);
	static uint8_t out[1 << 20];
	for (size_t off = 0; off < n; off += piece) {
		size_t k = n - off < piece ? n - off : piece;
		size_t got = gdb_conn_feed(c, s + off, k, out, sizeof(out));
		REQUIRE(got < sizeof(out));
		check_output(out, got, &out_packets);
	}
	REQUIRE(out_packets <= in_packets);
	gdb_conn_free(c);
	return 0;
}
