/* tests/test_evlog.c - the event log (vmm/evlog.h): what the writer writes
 * reads back record for record (checked against the layout README gives,
 * byte by byte, not only through the reader); a file cut at every length
 * reads back as its whole records; a flipped byte before the end is
 * refused, naming the record; FIFOs, other formats and versions refused. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../vmm/evlog.h"
#include "check.h"

static char dir[] = "/tmp/tvm-test-evlog.XXXXXX";

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *b = malloc(1 << 20);
	*len = fread(b, 1, 1 << 20, f);
	fclose(f);
	return b;
}

static const uint8_t ident[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* 3 exits and 2 data records, one of them over 64 KiB (two records). */
static int write_sample(const char *path, uint64_t counts[2])
{
	struct tvm_err err = { "" };
	struct evlog *l = evlog_create(path, ident, true, &err);
	if (!l)
		return -1;
	uint8_t rnd[70000];
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)(i * 7);
	uint32_t v = 0x12345678;
	evlog_exit(l, 0, 1, 1, true, 1, 1, 0x3f8, "A");
	evlog_data(l, 0, 2, EVLOG_SRC_RANDOM, rnd, sizeof(rnd));
	evlog_exit(l, 0, 2, 1, true, 4, 1, 0x510, &v);
	uint64_t clk[2] = { 1700000000, 999 };
	evlog_data(l, 0, 3, EVLOG_SRC_CLOCK, clk, sizeof(clk));
	evlog_exit(l, 0, 3, 2, false, 4, 1, 0xd0000000, &v);
	return evlog_close(l, EVLOG_END_CRASH, counts, &err);
}

static void test_round_trip(void)
{
	char path[300];
	snprintf(path, sizeof path, "%s/a.tvl", dir);
	uint64_t counts[2] = { 0 };
	CHECK("evlog_write", write_sample(path, counts) == 0);
	size_t len = 0;
	uint8_t *b = slurp(path, &len);
	CHECKF("evlog_counts", counts[0] == 7 && counts[1] == len, "%llu records, %llu bytes, file %zu",
	       (unsigned long long)counts[0], (unsigned long long)counts[1], len);
	/* The layout, by hand: header, then the first exit's frame. */
	uint32_t ver, flags, blen, crc;
	memcpy(&ver, b + 8, 4);
	memcpy(&flags, b + 12, 4);
	memcpy(&blen, b + 32, 4);
	memcpy(&crc, b + 36, 4);
	CHECK("evlog_layout_header", !memcmp(b, "TVMEVLG1", 8) && ver == 1 && flags == 1 && !memcmp(b + 16, ident, 16));
	CHECK("evlog_layout_exit", blen == 33 && crc == (uint32_t)crc32(0, b + 40, 33) && b[40] == 1 && b[41] == 0 &&
				       b[56] == 1 && b[57] == 1 && b[58] == 1 && b[60] == 1 && b[64] == 0xf8 && b[65] == 3 &&
				       b[72] == 'A');
	struct evlog_reader r;
	struct tvm_err err = { "" };
	CHECKF("evlog_open", evlog_open(path, &r, &err) == 0, "%s", err.msg);
	struct evlog_rec rec;
	int types[16], n = 0, rc;
	uint64_t rnd_bytes = 0, last_addr = 0;
	uint8_t first_rnd = 0xff;
	while ((rc = evlog_next(&r, &rec, &err)) == 1 && n < 16) {
		types[n++] = rec.type;
		if (rec.type == EVLOG_DATA && rec.src == EVLOG_SRC_RANDOM) {
			if (!rnd_bytes)
				first_rnd = rec.data[1];
			rnd_bytes += rec.len;
		}
		if (rec.type == EVLOG_EXIT)
			last_addr = rec.addr;
	}
	CHECKF("evlog_read_back", rc == 0 && n == 7 && types[0] == EVLOG_EXIT && types[1] == EVLOG_DATA &&
					 types[2] == EVLOG_DATA && types[6] == EVLOG_END && rnd_bytes == 70000 && first_rnd == 7 &&
					 last_addr == 0xd0000000 && r.ended && !r.torn && rec.why == EVLOG_END_CRASH,
	       "rc %d n %d rnd %llu (%s)", rc, n, (unsigned long long)rnd_bytes, err.msg);
	evlog_reader_close(&r);

	/* Cut at every length: never an error, only whole records, a cut
	 * exactly where the last whole one ended. */
	int bad = 0;
	for (size_t cut = 32; cut <= len && !bad; cut++) {
		if (evlog_open_mem(b, cut, &r, &err) < 0) {
			bad = 1;
			break;
		}
		uint64_t end = 32;
		while ((rc = evlog_next(&r, &rec, &err)) == 1)
			end = r.off;
		if (rc != 0 || (cut != end && (!r.torn || r.torn_at != end)) || (cut == end && r.torn))
			bad = 1;
		evlog_reader_close(&r);
	}
	CHECK("evlog_torn_every_length", !bad);
	CHECK("evlog_short_header", evlog_open_mem(b, 31, &r, &err) < 0 && strstr(err.msg, "too short"));

	/* A byte flipped in a record with records after it: corruption. */
	uint8_t *c = malloc(len);
	memcpy(c, b, len);
	c[45] ^= 0x40;
	CHECK("evlog_corrupt_open", evlog_open_mem(c, len, &r, &err) == 0);
	while ((rc = evlog_next(&r, &rec, &err)) == 1)
		;
	CHECKF("evlog_corrupt_middle", rc < 0 && strstr(err.msg, "record 0 at offset 32: checksum mismatch"), "%s", err.msg);
	evlog_reader_close(&r);
	/* ...and in the last record: a torn tail, cut. */
	memcpy(c, b, len);
	c[len - 3] ^= 1;
	evlog_open_mem(c, len, &r, &err);
	n = 0;
	while ((rc = evlog_next(&r, &rec, &err)) == 1)
		n++;
	CHECK("evlog_corrupt_last_is_torn", rc == 0 && n == 6 && r.torn && !r.ended);
	evlog_reader_close(&r);
	/* A newer version. */
	memcpy(c, b, len);
	c[8] = 2;
	CHECK("evlog_version", evlog_open_mem(c, len, &r, &err) < 0 && strstr(err.msg, "format version 2"));
	free(c);
	free(b);
}

static void test_files(void)
{
	char path[300];
	struct evlog_reader r;
	struct tvm_err err = { "" };
	snprintf(path, sizeof path, "%s/fifo", dir);
	CHECK("evlog_fifo_made", mkfifo(path, 0600) == 0);
	CHECKF("evlog_fifo", evlog_open(path, &r, &err) < 0 && strstr(err.msg, "not a regular file"), "%s", err.msg);
	snprintf(path, sizeof path, "%s/a.tvl", dir);
	CHECK("evlog_create_exists", !evlog_create(path, NULL, true, &err) && strstr(err.msg, "File exists"));
	snprintf(path, sizeof path, "%s/other", dir);
	FILE *f = fopen(path, "w");
	fputs("{\"not\": \"a log\"}                                        ", f);
	fclose(f);
	CHECK("evlog_other_format", evlog_open(path, &r, &err) < 0 && strstr(err.msg, "not a trialvm event log"));
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	test_round_trip();
	test_files();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("note: could not remove %s\n", dir);
	return failures ? 1 : 0;
}
