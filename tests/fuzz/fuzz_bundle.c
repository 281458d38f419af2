/* tests/fuzz/fuzz_bundle.c - libFuzzer harness for the report bundle
 * reader (reporter/bundle.c: bundle_open, bundle_rebuild), which vendors
 * run on bundles from testers' machines. Two inputs, by the first byte:
 *   even: the rest is manifest.json as it is (the manifest's checks);
 *   odd:  byte 1 picks the file's recipe (even: blocks, odd: snapshot),
 *         bytes 2-5 its size (little-endian, at most 1 MiB), then three
 *         parts split at "\n--\n": a block map, a layout and page bytes,
 *         which the harness packs as a bundle would (zstd chunks named by
 *         their sha256, a manifest naming them and a two-page master
 *         part), so that the map and layout readers run past the
 *         manifest's checks.
 * Beyond ASan's checks: a refusal says why; a rebuild leaves its output
 * directory only when it succeeded, and nothing else behind. */
#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "reporter/bundle.h"
#include "vmm/fileio.h"

static char root[64];
static struct bundle_master master;

static void setup(void)
{
	if (root[0])
		return;
	snprintf(root, sizeof(root), "/tmp/fuzz-bundle.XXXXXX");
	if (!mkdtemp(root))
		abort();
	char p[128];
	snprintf(p, sizeof(p), "%s/part", root);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 8192; i++)
		fputc(i % 251, f);
	fclose(f);
	snprintf(master.package_name, sizeof(master.package_name), "m");
	snprintf(master.package_version, sizeof(master.package_version), "1");
	memset(master.package_sha256, 'a', 64);
	memset(master.vendor_fingerprint, 'b', 64);
	master.nparts = 1;
	snprintf(master.parts[0].name, sizeof(master.parts[0].name), "kernel");
	snprintf(master.parts[0].path, sizeof(master.parts[0].path), "%s", p);
	master.parts[0].size = 8192;
	uint8_t md[32];
	struct tvm_err err = { "" };
	if (sha256_path(p, md, &err) < 0)
		abort();
	sha256_hex(md, master.parts[0].sha256);
}

/* Write raw as a zstd chunk of dir; its name into name. */
static void put_chunk(const char *dir, const void *raw, size_t len, char name[65], char *list, size_t cap)
{
	size_t bound = ZSTD_compressBound(len);
	uint8_t *z = malloc(bound);
	size_t n = ZSTD_compress(z, bound, raw, len, 1);
	uint8_t md[32];
	unsigned ml;
	EVP_Digest(z, n, md, &ml, EVP_sha256(), NULL);
	sha256_hex(md, name);
	char p[256];
	snprintf(p, sizeof(p), "%s/chunks/%s", dir, name);
	FILE *f = fopen(p, "w");
	fwrite(z, 1, n, f);
	fclose(f);
	free(z);
	if (!strstr(list, name))
		snprintf(list + strlen(list), cap - strlen(list), "%s\"%s\": %zu", list[0] ? ", " : "", name, n);
}

static const uint8_t *split(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *s = *p, *q = memmem(s, (size_t)(end - s), "\n--\n", 4);
	*len = q ? (size_t)(q - s) : (size_t)(end - s);
	*p = q ? q + 4 : end;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1)
		return 0;
	char dir[128], out[160], p[256];
	snprintf(dir, sizeof(dir), "%s/b", root);
	snprintf(out, sizeof(out), "%s/out", root);
	remove_tree(dir);
	remove_tree(out);
	snprintf(p, sizeof(p), "%s/chunks", dir);
	mkdir(dir, 0700);
	mkdir(p, 0700);
	char *man = NULL;
	size_t mlen = 0;
	if (!(data[0] & 1)) {
		man = malloc(size);
		memcpy(man, data + 1, size - 1);
		mlen = size - 1;
	} else {
		if (size < 6)
			return 0;
		bool snap = data[1] & 1;
		uint32_t fsize = (uint32_t)data[2] | (uint32_t)data[3] << 8 | (uint32_t)data[4] << 16 | (uint32_t)data[5] << 24;
		fsize &= (1u << 20) - 1;
		const uint8_t *q = data + 6, *end = data + size;
		size_t ml, ll, pl;
		const uint8_t *map = split(&q, end, &ml), *lay = split(&q, end, &ll), *pages = split(&q, end, &pl);
		char chunks[4096] = "", mapn[65], layn[65], pagen[65];
		uint8_t *mbuf = malloc(ml + 8);
		memcpy(mbuf, "TVMBMAP1", 8);
		memcpy(mbuf + 8, map, ml);
		put_chunk(dir, mbuf, ml + 8, mapn, chunks, sizeof(chunks));
		free(mbuf);
		put_chunk(dir, lay, ll, layn, chunks, sizeof(chunks));
		size_t np = (pl + 4095) / 4096;
		uint8_t *pbuf = calloc(np ? np : 1, 4096);
		memcpy(pbuf, pages, pl);
		if (np)
			put_chunk(dir, pbuf, np * 4096, pagen, chunks, sizeof(chunks));
		free(pbuf);
		man = malloc(8192 + sizeof(chunks));
		mlen = (size_t)sprintf(man,
				       "{\"format\": \"trialvm-bundle\", \"version\": 1, \"report\": {}, \"comment\": null,"
				       " \"master\": {\"package\": {\"name\": \"m\", \"version\": \"1\", \"sha256\": \"%s\","
				       " \"vendor_fingerprint\": \"%s\"}, \"ram\": 0, \"checkpoint_sha256\": null,"
				       " \"parts\": [{\"name\": \"kernel\", \"size\": 8192, \"sha256\": \"%s\"}]},"
				       " \"pages\": {\"count\": %zu, \"chunks\": [%s%s%s]},"
				       " \"files\": [{\"name\": \"%s\", \"size\": %u, \"sha256\": \"%064d\", \"recipe\": \"%s\","
				       " \"map\": [\"%s\"]%s%s%s}], \"chunks\": {%s}}",
				       master.package_sha256, master.vendor_fingerprint, master.parts[0].sha256, np,
				       np ? "\"" : "", np ? pagen : "", np ? "\"" : "", snap ? "snapshots/s.tvs" : "core.elf",
				       fsize, 0, snap ? "snapshot" : "blocks", mapn, snap ? ", \"layout\": [\"" : "",
				       snap ? layn : "", snap ? "\"]" : "", chunks);
	}
	snprintf(p, sizeof(p), "%s/manifest.json", dir);
	FILE *f = fopen(p, "w");
	fwrite(man, 1, mlen, f);
	fclose(f);
	free(man);
	struct bundle *b;
	struct tvm_err err = { "" };
	if (bundle_open(dir, &b, &err) < 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	FILE *null = fopen("/dev/null", "w");
	bundle_show(b, null);
	fclose(null);
	err.msg[0] = 0;
	int r = bundle_rebuild(b, &master, out, false, &err);
	struct stat st;
	if (r < 0 && (!err.msg[0] || stat(out, &st) == 0))
		abort(); /* a refusal says why and leaves nothing */
	bundle_close(b);
	/* Nothing but b/, part and (after a success) out/ in root. */
	DIR *d = opendir(root);
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && strcmp(e->d_name, "b") && strcmp(e->d_name, "part") && strcmp(e->d_name, "out"))
			abort();
	closedir(d);
	return 0;
}
