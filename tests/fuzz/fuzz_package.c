/* tests/fuzz/fuzz_package.c - libFuzzer harness for the trial package
 * reader (images/package.c: package_verify), a file a tester's trialvm
 * reads from anyone. Two inputs, by the first byte:
 *   even: the rest is a whole package file, as downloaded (tar framing,
 *         the manifest's JSON and format checks, the signature check);
 *   odd:  the rest is a manifest and part bytes ("\0" between the
 *         manifest and each part, up to 4 parts named p0..p3), which the
 *         harness packs into a tar signed with its own trusted key, so the
 *         checks past the signature run too: the manifest's fields, each
 *         tar entry against it, sizes and hashes, extraction.
 * Beyond ASan's checks: a refusal has a message and a fault; an accepted
 * package's parts are all within the limits, and extraction leaves files
 * only when it succeeded. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "images/package.h"
#include "images/package_int.h"

static EVP_PKEY *key;
static char xdir[64];

static void setup(void)
{
	static char trust[64];
	if (key)
		return;
	/* A fixed key, so that seeds can name it (tests/fuzz/fuzz_package_seeds.py). */
	uint8_t priv[32];
	for (int i = 0; i < 32; i++)
		priv[i] = (uint8_t)(i + 1);
	if (!(key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32)))
		abort();
	snprintf(trust, sizeof(trust), "/tmp/fuzz-pkg-trust.XXXXXX");
	snprintf(xdir, sizeof(xdir), "/tmp/fuzz-pkg-x.XXXXXX");
	if (!mkdtemp(trust) || !mkdtemp(xdir))
		abort();
	setenv("TRIALVM_TRUST_DIR", trust, 1);
	uint8_t raw[32];
	char fpr[65], where[512];
	struct tvm_err err = { "" };
	if (pkg_key_raw(key, raw) < 0 || pkg_trust_add(raw, fpr, where, sizeof(where), &err) < 0)
		abort();
}

/* Entries: manifest.json, manifest.sig (of it), parts/p0.. */
static size_t pack(const uint8_t *d, size_t n, uint8_t *out, size_t cap)
{
	const uint8_t *pieces[5];
	size_t lens[5];
	int np = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n && np < 5; i++)
		if (i == n || d[i] == 0) {
			pieces[np] = d + start;
			lens[np++] = i - start;
			start = i + 1;
		}
	uint8_t sig[64];
	if (pkg_sign(key, pieces[0], lens[0], sig) < 0)
		abort();
	struct archive *a = archive_write_new();
	size_t used = 0;
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_memory(a, out, cap, &used) != ARCHIVE_OK)
		abort();
	for (int i = -1; i < np; i++) {
		char name[32];
		const void *b = i < 0 ? pieces[0] : i == 0 ? (const void *)sig : pieces[i];
		size_t l = i < 0 ? lens[0] : i == 0 ? 64 : lens[i];
		snprintf(name, sizeof(name), i < 0 ? "manifest.json" : i == 0 ? "manifest.sig" : "parts/p%d", i - 1);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, name);
		archive_entry_set_size(e, (la_int64_t)l);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0444);
		if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, b, l) != (la_ssize_t)l) {
			archive_entry_free(e);
			archive_write_free(a);
			return 0;
		}
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return used;
}

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static void clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	char p[256];
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	setup();
	if (len < 1 || len > (1u << 20))
		return 0;
	bool packed = data[0] & 1;
	size_t cap = len + 64 * 1024;
	uint8_t *file = malloc(cap);
	size_t flen = packed ? pack(data + 1, len - 1, file, cap) : (memcpy(file, data + 1, len - 1), len - 1);
	int fd = memfd_create("pkg", 0);
	if (fd < 0 || (flen && write(fd, file, flen) != (ssize_t)flen))
		abort();
	free(file);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct package pk;
	struct tvm_err err = { "" };
	bool extract = packed && (data[0] & 2);
	int r = package_verify(path, NULL, 1800000000, extract ? xdir : NULL, &pk, &err);
	if (getenv("FUZZ_PACKAGE_SAY")) /* what each input got (checking seeds) */
		fprintf(stderr, "fuzz_package: %s\n", r == 0 ? "accepted" : err.msg);
	if (r < 0 && (!err.msg[0] || pk.fault == PKG_OK))
		abort();
	if (r == 0 && (pk.nparts < 1 || pk.nparts > PACKAGE_MAX_PARTS || pk.cpus < 1 || pk.cpus > 64 ||
		       pk.nargs > PACKAGE_MAX_ARGS || strlen(pk.fingerprint) != 64))
		abort();
	if (extract && (r == 0 ? count_files(xdir) != pk.nparts : count_files(xdir) != 0))
		abort();
	clear_dir(xdir);
	close(fd);
	return 0;
}
