/* images/package.c - trial packages (package.h): Ed25519 keys and the
 * trust store, building a package, and checking one. */
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/util.h"
#include "image.h"

#define KEY_FILE_MAX (64u << 10)
#define IO_CHUNK (1u << 20)

/* ------------------------------------------------------------------ keys */

/* An Ed25519 key from a PEM file: a private key (want_private), or either
 * a public or a private one. NULL with err. */
static EVP_PKEY *load_key(const char *path, bool want_private, struct tvm_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (read_file(path, KEY_FILE_MAX, &data, &len, err) < 0)
		return NULL;
	EVP_PKEY *k = NULL;
	BIO *b = BIO_new_mem_buf(data, (int)len);
	if (b && !want_private)
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (b && !k) {
		BIO_free(b);
		b = BIO_new_mem_buf(data, (int)len);
		k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	}
	BIO_free(b);
	free(data);
	if (!k) {
		tvm_seterr(err, "%s holds no PEM %s key (make one with: openssl genpkey -algorithm ed25519 -out KEY.pem%s)",
			   path, want_private ? "private" : "public or private",
			   want_private ? "" : "; its public half: openssl pkey -in KEY.pem -pubout -out KEY.pub");
		return NULL;
	}
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
		tvm_seterr(err, "%s is a %s key; trial packages are signed with Ed25519 keys (openssl genpkey -algorithm "
				"ed25519 -out KEY.pem)", path, EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "non-Ed25519");
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static int key_raw(EVP_PKEY *k, uint8_t raw[32])
{
	size_t len = 32;
	return EVP_PKEY_get_raw_public_key(k, raw, &len) == 1 && len == 32 ? 0 : -1;
}

static void fingerprint(const uint8_t raw[32], char hex[65])
{
	uint8_t md[32];
	unsigned n = 0;
	EVP_Digest(raw, 32, md, &n, EVP_sha256(), NULL);
	sha256_hex(md, hex);
}

static int ed_sign(EVP_PKEY *k, const void *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t sl = 64;
	int ok = c && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 && EVP_DigestSign(c, sig, &sl, msg, len) == 1 &&
		 sl == 64;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

static bool ed_verify(const uint8_t raw[32], const void *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = k && c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
		  EVP_DigestVerify(c, sig, 64, msg, len) == 1;
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(k);
	return ok;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		if (i % 2)
			out[i / 2] |= (uint8_t)v;
		else
			out[i / 2] = (uint8_t)(v << 4);
	}
	return 0;
}

/* ----------------------------------------------------------- trust store */

static int trust_dir(char *out, size_t cap, struct tvm_err *err)
{
	const char *d = getenv("TRIALVM_TRUST_DIR"), *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	int n;
	if (d && *d)
		n = snprintf(out, cap, "%s", d);
	else if (x && *x)
		n = snprintf(out, cap, "%s/trialvm/trusted-keys", x);
	else if (h && *h)
		n = snprintf(out, cap, "%s/.config/trialvm/trusted-keys", h);
	else
		return tvm_seterr(err, "no trust store: set HOME, XDG_CONFIG_HOME or TRIALVM_TRUST_DIR");
	if (n < 0 || (size_t)n >= cap)
		return tvm_seterr(err, "the trust store's path is too long");
	return 0;
}

/* Is the key with these raw bytes in the trust store? 1, 0, or -1 + err
 * (a store file under that key's name that holds another key). */
static int trusted(const uint8_t raw[32], struct tvm_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], fpr[65];
	if (trust_dir(dir, sizeof(dir), err) < 0)
		return -1;
	fingerprint(raw, fpr);
	snprintf(path, sizeof(path), "%s/%s.pub", dir, fpr);
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	EVP_PKEY *k = load_key(path, false, err);
	uint8_t have[32];
	int r = k && key_raw(k, have) == 0 && !memcmp(have, raw, 32) ? 1 : -1;
	EVP_PKEY_free(k);
	if (r < 0 && !err->msg[0])
		tvm_seterr(err, "%s holds another key than its name says; remove it ('trialvm trust remove %s')", path, fpr);
	return r;
}

/* Write PATH's content durably: a temporary name beside it, fsync, rename,
 * the directory's fsync. */
static int write_durably(const char *path, const void *buf, size_t len, mode_t mode, struct tvm_err *err)
{
	char tmp[PATH_MAX + 16];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
		return tvm_seterr(err, "%s: path too long", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return tvm_seterr(err, "cannot create %s: %s", tmp, strerror(errno));
	int r = write_all(fd, buf, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return tvm_seterr(err, "cannot write %s: %s", path, strerror(-r));
	}
	fsync_parent(path);
	return 0;
}

static int trust_store_add(const uint8_t raw[32], char fpr[65], char *where, size_t cap, struct tvm_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	if (trust_dir(dir, sizeof(dir), err) < 0)
		return -1;
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return tvm_seterr(err, "cannot create the trust store %s: %s", dir, strerror(-r));
	fingerprint(raw, fpr);
	snprintf(path, sizeof(path), "%s/%s.pub", dir, fpr);
	snprintf(where, cap, "%s", path);
	EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n = 0;
	if (!k || !b || PEM_write_bio_PUBKEY(b, k) != 1 || (n = BIO_get_mem_data(b, &pem)) <= 0) {
		EVP_PKEY_free(k);
		BIO_free(b);
		return tvm_seterr(err, "cannot encode the key");
	}
	r = write_durably(path, pem, (size_t)n, 0644, err);
	EVP_PKEY_free(k);
	BIO_free(b);
	return r;
}

/* ----------------------------------------------------------------- dates */

/* "YYYY-MM-DD" (through the end of that day, UTC) or
 * "YYYY-MM-DDTHH:MM:SSZ". */
static int parse_date(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 23, mi = 59, se = 59, n = 0;
	size_t len = strlen(s);
	if (len == 10) {
		if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
			return -1;
	} else if (len == 20) {
		if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 20)
			return -1;
	} else {
		return -1;
	}
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59 || h < 0 ||
	    mi < 0 || se < 0)
		return -1;
	tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi, tm.tm_sec = se;
	time_t t = timegm(&tm);
	struct tm back;
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
		return -1; /* 2027-02-30 */
	*out = t;
	return 0;
}

static void fmt_time(time_t t, char out[32])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A part name: 1-63 of [a-z0-9_-]. */
static bool part_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* ------------------------------------------------------------------ read */

static int fault(struct package *pk, enum package_fault f, struct tvm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fault(struct package *pk, enum package_fault f, struct tvm_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	pk->fault = f;
	return -1;
}

/* The next entry's header: 1, 0 at the end, -1 + fault. Only plain
 * regular files with a size pass. */
static int next_entry(struct archive *a, struct archive_entry **e, const char *pkg, struct package *pk,
		      struct tvm_err *err)
{
	int r = archive_read_next_header(a, e);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK)
		return fault(pk, PKG_UNREADABLE, err, "%s is truncated or not a trial package (%s); get it again from the "
			     "vendor", pkg, archive_error_string(a) ? archive_error_string(a) : "a bad tar header");
	const char *name = archive_entry_pathname(*e);
	if (!name || archive_entry_filetype(*e) != AE_IFREG || archive_entry_hardlink(*e) || archive_entry_symlink(*e) ||
	    !archive_entry_size_is_set(*e) || archive_entry_size(*e) < 0)
		return fault(pk, PKG_UNREADABLE, err, "%s: entry \"%.80s\" is not a plain file; a trial package holds only "
			     "files (get it again from the vendor)", pkg, name ? name : "?");
	return 1;
}

/* All of an entry of `size` bytes into buf (cap at least size). */
static int read_entry(struct archive *a, uint8_t *buf, size_t size, const char *what, const char *pkg,
		      struct package *pk, struct tvm_err *err)
{
	size_t got = 0;
	while (got < size) {
		la_ssize_t n = archive_read_data(a, buf + got, size - got);
		if (n <= 0)
			return fault(pk, PKG_UNREADABLE, err, "%s: %s is cut short (%s): the package is truncated; get it "
				     "again from the vendor", pkg, what, n < 0 ? archive_error_string(a) : "end of file");
		got += (size_t)n;
	}
	return 0;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static int copy_field(json_t *o, const char *k, char *out, size_t cap, bool required)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v)) {
		out[0] = 0;
		return required ? -1 : 0;
	}
	const char *s = json_string_value(v);
	if (!s || strlen(s) >= cap || (required && !s[0]))
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* The manifest's fields past the signature (it is the vendor's; its
 * shape is still checked). */
static int read_manifest(json_t *m, const char *pkg, struct package *pk, struct tvm_err *err)
{
	json_t *mach = json_object_get(m, "machine"), *boot = json_object_get(m, "boot");
	json_t *parts = json_object_get(m, "parts");
	json_t *mem = json_object_get(mach, "mem"), *cpus = json_object_get(mach, "cpus");
	if (copy_field(m, "name", pk->name, sizeof(pk->name), true) < 0 ||
	    copy_field(m, "package_version", pk->version, sizeof(pk->version), true) < 0 ||
	    copy_field(m, "created", pk->created, sizeof(pk->created), true) < 0 ||
	    copy_field(m, "expires", pk->expires, sizeof(pk->expires), false) < 0 ||
	    copy_field(m, "feedback", pk->feedback, sizeof(pk->feedback), false) < 0 ||
	    copy_field(boot, "kind", pk->boot_kind, sizeof(pk->boot_kind), true) < 0 ||
	    copy_field(boot, "cmdline", pk->cmdline, sizeof(pk->cmdline), false) < 0 ||
	    copy_field(boot, "app", pk->app, sizeof(pk->app), false) < 0 || !json_is_integer(mem) ||
	    !json_is_integer(cpus) || json_integer_value(mem) < (1 << 20) || json_integer_value(cpus) < 1 ||
	    json_integer_value(cpus) > 64 || !json_is_object(parts) || json_object_size(parts) < 1 ||
	    json_object_size(parts) > PACKAGE_MAX_PARTS)
		return fault(pk, PKG_FORMAT, err, "%s: the manifest lacks or misspells a field (name, package_version, "
			     "created, machine, boot, parts): ask the vendor for a package this trialvm reads", pkg);
	pk->mem = (uint64_t)json_integer_value(mem);
	pk->cpus = (int)json_integer_value(cpus);
	const char *name;
	json_t *p;
	json_object_foreach(parts, name, p) {
		struct package_part *pp = &pk->parts[pk->nparts];
		const char *file = jstr(p, "file"), *sha = jstr(p, "sha256");
		json_t *size = json_object_get(p, "size");
		uint8_t md[32];
		if (!part_name_ok(name) || !file || !sha || !json_is_integer(size) || json_integer_value(size) < 0 ||
		    unhex(sha, md, 32) < 0 || snprintf(pp->file, sizeof(pp->file), "parts/%s", name) <= 0 ||
		    strcmp(pp->file, file))
			return fault(pk, PKG_FORMAT, err, "%s: the manifest's part \"%.64s\" is malformed (a name of "
				     "[a-z0-9_-], file \"parts/NAME\", size, sha256)", pkg, name);
		snprintf(pp->name, sizeof(pp->name), "%s", name);
		snprintf(pp->sha256, sizeof(pp->sha256), "%s", sha);
		pp->size = (uint64_t)json_integer_value(size);
		pk->nparts++;
	}
	return 0;
}

/* Stream one part: its size and sha256 against the manifest's, written to
 * out_fd (>= 0) as it goes. */
static int check_part_data(struct archive *a, const struct package_part *pp, int out_fd, uint8_t *buf,
			   const char *pkg, struct package *pk, struct tvm_err *err)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return fault(pk, PKG_UNREADABLE, err, "no sha256");
	}
	uint64_t got = 0;
	int rc = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, IO_CHUNK);
		if (n < 0) {
			rc = fault(pk, PKG_UNREADABLE, err, "%s: part %s is cut short or corrupt (%s): get the package again "
				   "from the vendor", pkg, pp->name, archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		got += (uint64_t)n;
		EVP_DigestUpdate(c, buf, (size_t)n);
		int w;
		if (out_fd >= 0 && (w = write_all(out_fd, buf, (size_t)n)) < 0) {
			rc = fault(pk, PKG_UNREADABLE, err, "cannot write part %s: %s", pp->name, strerror(-w));
			break;
		}
	}
	uint8_t md[32];
	unsigned ml = 0;
	char hex[65];
	if (rc == 0 && EVP_DigestFinal_ex(c, md, &ml) == 1) {
		sha256_hex(md, hex);
		if (got != pp->size)
			rc = fault(pk, PKG_TAMPERED, err, "%s: part %s is %llu bytes, the signed manifest says %llu: the "
				   "package was changed after it was signed; get it again from the vendor", pkg, pp->name,
				   (unsigned long long)got, (unsigned long long)pp->size);
		else if (strcmp(hex, pp->sha256))
			rc = fault(pk, PKG_TAMPERED, err, "%s: part %s does not match its sha256 in the signed manifest: the "
				   "package was changed after it was signed; get it again from the vendor", pkg, pp->name);
	}
	EVP_MD_CTX_free(c);
	return rc;
}

int package_verify(const char *pkg, const char *key, time_t now, const char *extract_dir, struct package *pk,
		   struct tvm_err *err)
{
	memset(pk, 0, sizeof(*pk));
	struct stat st;
	int fd = open_regular(pkg, &st, err);
	if (fd < 0) {
		pk->fault = PKG_UNREADABLE;
		return -1;
	}
	struct archive *a = archive_read_new();
	uint8_t *man = NULL, *buf = malloc(IO_CHUNK);
	json_t *m = NULL;
	bool written[PACKAGE_MAX_PARTS] = { false }, seen[PACKAGE_MAX_PARTS] = { false };
	int rc = -1;
	struct archive_entry *e;
	if (!a || !buf || archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		fault(pk, PKG_UNREADABLE, err, "%s is not a trial package (%s)", pkg,
		      a && archive_error_string(a) ? archive_error_string(a) : "out of memory");
		goto out;
	}
	/* manifest.json */
	int r = next_entry(a, &e, pkg, pk, err);
	if (r == 0)
		fault(pk, PKG_UNREADABLE, err, "%s is empty: not a trial package", pkg);
	if (r <= 0)
		goto out;
	if (strcmp(archive_entry_pathname(e), "manifest.json")) {
		fault(pk, PKG_FORMAT, err, "%s: its first entry is \"%.80s\", not manifest.json: not a trial package", pkg,
		      archive_entry_pathname(e));
		goto out;
	}
	uint64_t mlen = (uint64_t)archive_entry_size(e);
	if (mlen > PACKAGE_MANIFEST_MAX) {
		fault(pk, PKG_FORMAT, err, "%s: its manifest is %llu bytes, more than %u: not a trial package", pkg,
		      (unsigned long long)mlen, PACKAGE_MANIFEST_MAX);
		goto out;
	}
	if (!(man = malloc(mlen + 1)) || read_entry(a, man, mlen, "its manifest", pkg, pk, err) < 0)
		goto out;
	/* manifest.sig */
	uint8_t sig[64];
	r = next_entry(a, &e, pkg, pk, err);
	if (r < 0)
		goto out;
	if (r == 0 || strcmp(archive_entry_pathname(e), "manifest.sig")) {
		fault(pk, PKG_UNSIGNED, err, "%s is not signed (no manifest.sig after the manifest): trialvm runs only "
		      "signed packages; ask the vendor for a signed one", pkg);
		goto out;
	}
	if (archive_entry_size(e) != 64) {
		fault(pk, PKG_BAD_SIGNATURE, err, "%s: manifest.sig is %lld bytes, not a 64-byte Ed25519 signature", pkg,
		      (long long)archive_entry_size(e));
		goto out;
	}
	if (read_entry(a, sig, 64, "its signature", pkg, pk, err) < 0)
		goto out;
	/* The format first: another version is said as such. */
	json_error_t je;
	if (!(m = json_loadb((const char *)man, mlen, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(m)) {
		fault(pk, PKG_FORMAT, err, "%s: its manifest is not a JSON object (%s, line %d)", pkg, je.text, je.line);
		goto out;
	}
	const char *fmt = jstr(m, "format");
	json_t *ver = json_object_get(m, "version");
	if (!fmt || strcmp(fmt, PACKAGE_FORMAT)) {
		fault(pk, PKG_FORMAT, err, "%s: manifest format \"%.40s\", not \"%s\": not a trial package", pkg,
		      fmt ? fmt : "(none)", PACKAGE_FORMAT);
		goto out;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) != PACKAGE_VERSION) {
		fault(pk, PKG_FORMAT, err, "%s: package format version %lld; this trialvm reads version %d: %s", pkg,
		      json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL, PACKAGE_VERSION,
		      json_is_integer(ver) && json_integer_value(ver) > PACKAGE_VERSION
			      ? "update trialvm"
			      : "ask the vendor to rebuild it");
		goto out;
	}
	/* The signature, by the key the manifest names. */
	json_t *vk = json_object_get(m, "vendor_key");
	uint8_t raw[32];
	const char *alg = jstr(vk, "algorithm"), *fpr = jstr(vk, "fingerprint");
	if (!alg || strcmp(alg, "ed25519") || unhex(jstr(vk, "public"), raw, 32) < 0 || !fpr) {
		fault(pk, PKG_FORMAT, err, "%s: the manifest names no Ed25519 vendor key (vendor_key.algorithm, public, "
		      "fingerprint)", pkg);
		goto out;
	}
	fingerprint(raw, pk->fingerprint);
	hex_bytes(raw, 32, pk->public_key);
	if (strcmp(fpr, pk->fingerprint)) {
		fault(pk, PKG_BAD_SIGNATURE, err, "%s: the vendor key's fingerprint in the manifest is not that key's", pkg);
		goto out;
	}
	if (!ed_verify(raw, man, mlen, sig)) {
		fault(pk, PKG_BAD_SIGNATURE, err, "%s: the manifest's signature does not verify with the vendor key it "
		      "names: the package was changed after it was signed, or is corrupt; get it again from the vendor",
		      pkg);
		goto out;
	}
	/* Trust. */
	if (key) {
		struct tvm_err kerr = { "" };
		EVP_PKEY *k = load_key(key, false, &kerr);
		uint8_t have[32];
		char hf[65] = "";
		if (k && key_raw(k, have) == 0)
			fingerprint(have, hf);
		EVP_PKEY_free(k);
		if (!k) {
			fault(pk, PKG_UNTRUSTED, err, "--key: %s", kerr.msg);
			goto out;
		}
		if (strcmp(hf, pk->fingerprint)) {
			fault(pk, PKG_UNTRUSTED, err, "%s is signed by key %s, and --key %s is key %s: not the vendor key you "
			      "named", pkg, pk->fingerprint, key, hf);
			goto out;
		}
		snprintf(pk->trusted_by, sizeof(pk->trusted_by), "--key");
	} else {
		struct tvm_err terr = { "" };
		int t = trusted(raw, &terr);
		if (t <= 0) {
			char dir[PATH_MAX] = "";
			trust_dir(dir, sizeof(dir), &terr);
			fault(pk, PKG_UNTRUSTED, err, "%s is signed by key %s, which you have not trusted%s%s: if that is "
			      "your vendor's key (ask them for its fingerprint), run 'trialvm trust add %s'", pkg,
			      pk->fingerprint, t < 0 ? ": " : "", t < 0 ? terr.msg : "", pkg);
			goto out;
		}
		snprintf(pk->trusted_by, sizeof(pk->trusted_by), "trust store");
	}
	if (read_manifest(m, pkg, pk, err) < 0)
		goto out;
	if (pk->expires[0]) {
		time_t t;
		if (parse_date(pk->expires, &t) < 0) {
			fault(pk, PKG_FORMAT, err, "%s: expires \"%.40s\" is not an RFC 3339 UTC time", pkg, pk->expires);
			goto out;
		}
		if (now > t) {
			fault(pk, PKG_EXPIRED, err, "%s expired on %s (%s %s): ask the vendor for a newer version", pkg,
			      pk->expires, pk->name, pk->version);
			goto out;
		}
	}
	/* The parts, each once, all of them. */
	for (;;) {
		r = next_entry(a, &e, pkg, pk, err);
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		const char *name = archive_entry_pathname(e);
		int i = 0;
		while (i < pk->nparts && strcmp(pk->parts[i].file, name))
			i++;
		if (i == pk->nparts || seen[i]) {
			fault(pk, PKG_TAMPERED, err, "%s: entry \"%.80s\" is %s: the package was changed after it was signed",
			      pkg, name, i == pk->nparts ? "not in the signed manifest" : "there twice");
			goto out;
		}
		seen[i] = true;
		int ofd = -1;
		char path[PATH_MAX + 80];
		if (extract_dir) {
			snprintf(path, sizeof(path), "%s/%s", extract_dir, pk->parts[i].name);
			ofd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
			if (ofd < 0) {
				fault(pk, PKG_UNREADABLE, err, "cannot create %s: %s", path, strerror(errno));
				goto out;
			}
			written[i] = true;
		}
		r = check_part_data(a, &pk->parts[i], ofd, buf, pkg, pk, err);
		if (ofd >= 0 && ((r == 0 && fsync(ofd) < 0) | (close(ofd) < 0)) && r == 0)
			r = fault(pk, PKG_UNREADABLE, err, "cannot write %s: %s", path, strerror(errno));
		if (r < 0)
			goto out;
	}
	for (int i = 0; i < pk->nparts; i++)
		if (!seen[i]) {
			fault(pk, PKG_UNREADABLE, err, "%s lacks part %s that its manifest lists: it is truncated; get it again "
			      "from the vendor", pkg, pk->parts[i].name);
			goto out;
		}
	if (extract_dir)
		fsync_dir(extract_dir);
	rc = 0;
out:
	if (rc < 0 && extract_dir)
		for (int i = 0; i < pk->nparts; i++)
			if (written[i]) {
				char path[PATH_MAX + 80];
				snprintf(path, sizeof(path), "%s/%s", extract_dir, pk->parts[i].name);
				unlink(path);
			}
	json_decref(m);
	free(man);
	free(buf);
	if (a)
		archive_read_free(a);
	close(fd);
	return rc;
}

/* ----------------------------------------------------------------- build */

struct bpart {
	char name[64];
	const char *path;
	uint64_t size;
	char sha[65];
};

static int hash_file(struct bpart *p, struct tvm_err *err)
{
	struct stat st;
	int fd = open_regular(p->path, &st, err);
	if (fd < 0)
		return -1;
	uint8_t md[32];
	int r = sha256_fd(fd, md);
	close(fd);
	if (r < 0)
		return tvm_seterr(err, "cannot read %s: %s", p->path, strerror(-r));
	p->size = (uint64_t)st.st_size;
	sha256_hex(md, p->sha);
	return 0;
}

static int add_entry(struct archive *a, const char *name, uint64_t size, time_t mtime)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return -1;
	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0444);
	archive_entry_set_mtime(e, mtime, 0);
	int r = archive_write_header(a, e);
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : -1;
}

static int add_bytes(struct archive *a, const void *buf, size_t len)
{
	return archive_write_data(a, buf, len) == (la_ssize_t)len ? 0 : -1;
}

/* Copy a part into the archive, hashing it again: a file changed since it
 * was hashed for the manifest is an error. */
static int add_part(struct archive *a, const struct bpart *p, time_t mtime, uint8_t *buf, struct tvm_err *err)
{
	char file[96];
	snprintf(file, sizeof(file), "parts/%.63s", p->name);
	struct stat st;
	int fd = open_regular(p->path, &st, err);
	if (fd < 0)
		return -1;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int rc = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && add_entry(a, file, p->size, mtime) == 0 ? 0 : -1;
	if (rc < 0)
		tvm_seterr(err, "cannot write part %s: %s", p->name, archive_error_string(a));
	uint64_t done = 0;
	while (rc == 0 && done < p->size) {
		size_t want = p->size - done < IO_CHUNK ? (size_t)(p->size - done) : IO_CHUNK;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = tvm_seterr(err, "%s changed while the package was built (it is shorter now)", p->path);
			break;
		}
		EVP_DigestUpdate(c, buf, (size_t)n);
		if (add_bytes(a, buf, (size_t)n) < 0)
			rc = tvm_seterr(err, "cannot write part %s: %s", p->name, archive_error_string(a));
		done += (uint64_t)n;
	}
	uint8_t md[32];
	unsigned ml;
	char hex[65];
	if (rc == 0 && EVP_DigestFinal_ex(c, md, &ml) == 1) {
		sha256_hex(md, hex);
		if (strcmp(hex, p->sha) || (uint64_t)st.st_size != p->size)
			rc = tvm_seterr(err, "%s changed while the package was built; build it again", p->path);
	}
	EVP_MD_CTX_free(c);
	close(fd);
	return rc;
}

static const char usage_build[] =
	"Usage: trialvm image build --name NAME --version VERSION --vendor-key KEY.pem\n"
	"                           (--image IMAGE_DIR | --app PROGRAM | --kernel FILE) [options]\n"
	"                           -o PKG.tvp [-- ARGS...]\n"
	"\n"
	"Build a signed trial package (README \"Trial packages\"): one file with a\n"
	"manifest naming every part by size and sha256, the manifest's Ed25519\n"
	"signature by the vendor key KEY.pem (openssl genpkey -algorithm ed25519\n"
	"-out KEY.pem), and the parts.\n"
	"\n"
	"What the trial runs:\n"
	"  --image DIR          a master image ('trialvm image linux'): its kernel,\n"
	"                       initramfs, root file system, command line, machine\n"
	"  --app PROGRAM        a static program on trialos (trialos built next to\n"
	"                       trialvm, $TRIALVM_TRIALOS, or --kernel); ARGS its\n"
	"                       arguments\n"
	"  --kernel FILE        a kernel (PVH ELF or bzImage), with --initrd FILE\n"
	"  --disk IMAGE         a disk image part (repeatable, at most 4)\n"
	"  --cmdline STR        the kernel command line\n"
	"  --mem SIZE --cpus N  the machine (default: the image's, or 256M and 1)\n"
	"Package options:\n"
	"  --expires DATE       YYYY-MM-DD (through that day, UTC) or\n"
	"                       YYYY-MM-DDTHH:MM:SSZ; no launch after it\n"
	"  --feedback URL       where crash reports go (https://...)\n"
	"  -o PKG.tvp           the package (written to a temporary name, flushed,\n"
	"                       renamed)\n";

int package_build_main(int argc, char **argv)
{
	enum { O_NAME = 1, O_VERSION, O_KEY, O_IMAGE, O_APP, O_KERNEL, O_INITRD, O_DISK, O_CMDLINE, O_MEM, O_CPUS,
	       O_EXPIRES, O_FEEDBACK, O_CHECKPOINT, O_HELP };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },	     { "version", required_argument, NULL, O_VERSION },
		{ "vendor-key", required_argument, NULL, O_KEY },    { "image", required_argument, NULL, O_IMAGE },
		{ "app", required_argument, NULL, O_APP },	     { "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },     { "disk", required_argument, NULL, O_DISK },
		{ "cmdline", required_argument, NULL, O_CMDLINE },   { "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },	     { "expires", required_argument, NULL, O_EXPIRES },
		{ "feedback", required_argument, NULL, O_FEEDBACK }, { "checkpoint-at", required_argument, NULL, O_CHECKPOINT },
		{ "help", no_argument, NULL, O_HELP },		     { NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *version = NULL, *keyfile = NULL, *imgdir = NULL, *app = NULL, *kernel = NULL;
	const char *initrd = NULL, *cmdline = NULL, *expires = NULL, *feedback = NULL, *out = NULL;
	const char *disks[4];
	int ndisks = 0, cpus = 0;
	uint64_t mem = 0;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+o:", opts, NULL)) != -1) {
		switch (c) {
		case O_NAME: name = optarg; break;
		case O_VERSION: version = optarg; break;
		case O_KEY: keyfile = optarg; break;
		case O_IMAGE: imgdir = optarg; break;
		case O_APP: app = optarg; break;
		case O_KERNEL: kernel = optarg; break;
		case O_INITRD: initrd = optarg; break;
		case O_CMDLINE: cmdline = optarg; break;
		case O_EXPIRES: expires = optarg; break;
		case O_FEEDBACK: feedback = optarg; break;
		case 'o': out = optarg; break;
		case O_DISK:
			if (ndisks == 4) {
				fprintf(stderr, "trialvm: image build: at most 4 --disk\n");
				return TVM_EXIT_USAGE;
			}
			disks[ndisks++] = optarg;
			break;
		case O_MEM:
			if (parse_size(optarg, &mem) < 0 || mem < (16ull << 20) || mem > TVM_MAX_RAM) {
				fprintf(stderr, "trialvm: image build: --mem %s: give a size such as 256M\n", optarg);
				return TVM_EXIT_USAGE;
			}
			break;
		case O_CPUS:
			cpus = atoi(optarg);
			if (cpus < 1 || cpus > 64) {
				fprintf(stderr, "trialvm: image build: --cpus %s: give 1 to 64\n", optarg);
				return TVM_EXIT_USAGE;
			}
			break;
		case O_CHECKPOINT:
			fprintf(stderr, "trialvm: image build: --checkpoint-at is not there yet (README \"Known limits\")\n");
			return TVM_EXIT_USAGE;
		case O_HELP: fputs(usage_build, stdout); return 0;
		default:
			fprintf(stderr, "trialvm: image build: unknown or incomplete option '%s'\nTry 'trialvm image build "
					"--help'.\n", argv[optind - 1]);
			return TVM_EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs > 0 && !strcmp(args[0], "--"))
		args++, nargs--;
	const char *missing = !name ? "--name" : !version ? "--version" : !keyfile ? "--vendor-key" : !out ? "-o" : NULL;
	if (missing || (!imgdir && !app && !kernel) || (imgdir && (app || kernel || initrd)) ||
	    (nargs > 0 && !app)) {
		fprintf(stderr, "trialvm: image build: %s\nTry 'trialvm image build --help'.\n",
			missing ? "give --name, --version, --vendor-key and -o"
			: nargs > 0 && !app ? "arguments after -- are for --app's program"
			: imgdir ? "--image goes with none of --app, --kernel, --initrd"
				 : "give what the trial runs: --image, --app or --kernel");
		return TVM_EXIT_USAGE;
	}
	struct tvm_err err = { "" };
	time_t now = time(NULL), exp = 0;
	if (expires && parse_date(expires, &exp) < 0) {
		fprintf(stderr, "trialvm: image build: --expires %s: give YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ\n", expires);
		return TVM_EXIT_USAGE;
	}
	if (feedback && strncmp(feedback, "https://", 8) && strncmp(feedback, "http://", 7)) {
		fprintf(stderr, "trialvm: image build: --feedback %s: give an http:// or https:// URL\n", feedback);
		return TVM_EXIT_USAGE;
	}
	for (const char *s = name; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '/') {
			fprintf(stderr, "trialvm: image build: --name holds a '/' or a control character\n");
			return TVM_EXIT_USAGE;
		}
	EVP_PKEY *key = load_key(keyfile, true, &err);
	uint8_t raw[32];
	char fpr[65];
	if (!key || key_raw(key, raw) < 0) {
		tvm_log("error: image build: --vendor-key %s", err.msg[0] ? err.msg : "has no public half");
		EVP_PKEY_free(key);
		return TVM_EXIT_ERROR;
	}
	fingerprint(raw, fpr);

	/* The parts and how they boot. */
	struct bpart parts[PACKAGE_MAX_PARTS];
	int np = 0;
	struct image im;
	char *trialos = NULL;
	const char *kind = "kernel", *appname = "";
	char cmd[4096] = "";
	json_t *devices = json_array(), *argsj = json_array();
	memset(parts, 0, sizeof(parts));
	int rc = TVM_EXIT_ERROR;
	if (imgdir) {
		if (image_open(imgdir, &im, &err) < 0) {
			tvm_log("error: image build: --image %s", err.msg);
			goto out;
		}
		kind = "linux-image";
		const char *names[3] = { "kernel", "initrd", "rootfs" }, *paths[3] = { im.kernel, im.initrd, im.rootfs };
		for (int i = 0; i < 3; i++) {
			snprintf(parts[np].name, sizeof(parts[np].name), "%s", names[i]);
			parts[np++].path = paths[i];
		}
		json_array_append_new(devices, json_pack("{s:s,s:s}", "type", "virtio-blk", "part", "rootfs"));
		snprintf(cmd, sizeof(cmd), "%s", im.cmdline);
		appname = im.app;
		if (!mem)
			mem = im.mem;
		if (!cpus)
			cpus = im.cpus;
	} else {
		if (app && !kernel) {
			if (!(trialos = find_trialos())) {
				tvm_log("error: image build: --app: trialos is not installed next to trialvm; give --kernel "
					"TRIALOS.elf or set TRIALVM_TRIALOS");
				goto out;
			}
			kernel = trialos;
		}
		kind = app ? "trialos" : "kernel";
		snprintf(parts[np].name, sizeof(parts[np].name), "kernel");
		parts[np++].path = kernel;
		if (initrd) {
			snprintf(parts[np].name, sizeof(parts[np].name), "initrd");
			parts[np++].path = initrd;
		}
		if (app) {
			snprintf(parts[np].name, sizeof(parts[np].name), "app");
			parts[np++].path = app;
			const char *b = strrchr(app, '/');
			appname = b ? b + 1 : app;
		}
	}
	for (int i = 0; i < ndisks; i++) {
		snprintf(parts[np].name, sizeof(parts[np].name), "disk%d", i);
		json_array_append_new(devices, json_pack("{s:s,s:s}", "type", "virtio-blk", "part", parts[np].name));
		parts[np++].path = disks[i];
	}
	if (cmdline)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", cmd[0] ? " " : "", cmdline);
	for (int i = 0; i < nargs; i++)
		json_array_append_new(argsj, json_string(args[i]));
	for (int i = 0; i < np; i++)
		if (hash_file(&parts[i], &err) < 0) {
			tvm_log("error: image build: part %s: %s", parts[i].name, err.msg);
			goto out;
		}

	/* The manifest, signed. */
	char created[32], exps[32] = "";
	fmt_time(now, created);
	if (expires) {
		fmt_time(exp, exps);
		if (exp < now)
			tvm_log("warning: image build: --expires %s is past: no launch will accept this package", exps);
	}
	json_t *pj = json_object();
	for (int i = 0; i < np; i++) {
		char file[96];
		snprintf(file, sizeof(file), "parts/%.63s", parts[i].name);
		json_object_set_new(pj, parts[i].name, json_pack("{s:s,s:I,s:s}", "file", file, "size",
								 (json_int_t)parts[i].size, "sha256", parts[i].sha));
	}
	char pubhex[65];
	hex_bytes(raw, 32, pubhex);
	json_t *m = json_pack("{s:s,s:i,s:s,s:s,s:s,s:o,s:o,s:{s:s,s:s,s:s},s:{s:I,s:i},s:{s:s,s:s,s:s,s:O},s:O,s:o}",
			      "format", PACKAGE_FORMAT, "version", PACKAGE_VERSION, "name", name, "package_version", version,
			      "created", created, "expires", expires ? json_string(exps) : json_null(), "feedback",
			      feedback ? json_string(feedback) : json_null(), "vendor_key", "algorithm", "ed25519",
			      "public", pubhex, "fingerprint", fpr, "machine", "mem",
			      (json_int_t)(mem ? mem : 256ull << 20), "cpus", cpus ? cpus : 1, "boot", "kind", kind,
			      "cmdline", cmd, "app", appname, "args", argsj, "devices", devices, "parts", pj);
	char *mtext = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
	json_decref(m);
	uint8_t sig[64];
	if (!mtext || ed_sign(key, mtext, strlen(mtext), sig) < 0) {
		tvm_log("error: image build: cannot %s the manifest", mtext ? "sign" : "make");
		free(mtext);
		goto out;
	}

	/* The archive, at a temporary name. */
	char tmp[PATH_MAX + 16];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", out) >= sizeof(tmp)) {
		tvm_log("error: image build: -o %s: path too long", out);
		free(mtext);
		goto out;
	}
	int fd = mkstemp(tmp);
	if (fd < 0) {
		tvm_log("error: image build: cannot create %s: %s", tmp, strerror(errno));
		free(mtext);
		goto out;
	}
	struct archive *a = archive_write_new();
	uint8_t *buf = malloc(IO_CHUNK);
	bool ok = a && buf && archive_write_set_format_pax_restricted(a) == ARCHIVE_OK &&
		  archive_write_open_fd(a, fd) == ARCHIVE_OK && add_entry(a, "manifest.json", strlen(mtext), now) == 0 &&
		  add_bytes(a, mtext, strlen(mtext)) == 0 && add_entry(a, "manifest.sig", 64, now) == 0 &&
		  add_bytes(a, sig, 64) == 0;
	if (!ok)
		tvm_seterr(&err, "%s", a && archive_error_string(a) ? archive_error_string(a) : "out of memory");
	for (int i = 0; ok && i < np; i++)
		ok = add_part(a, &parts[i], now, buf, &err) == 0;
	if (a && archive_write_close(a) != ARCHIVE_OK && ok) {
		ok = false;
		tvm_seterr(&err, "%s", archive_error_string(a));
	}
	if (a)
		archive_write_free(a);
	free(buf);
	free(mtext);
	if (ok && fsync(fd) < 0) {
		ok = false;
		tvm_seterr(&err, "fsync: %s", strerror(errno));
	}
	close(fd);
	if (ok && rename(tmp, out) < 0) {
		ok = false;
		tvm_seterr(&err, "rename to %s: %s", out, strerror(errno));
	}
	if (!ok) {
		unlink(tmp);
		tvm_log("error: image build: cannot write %s: %s", out, err.msg);
		goto out;
	}
	fsync_parent(out);
	struct stat st;
	stat(out, &st);
	printf("package %s: %s %s, %d parts, %llu bytes, signed by vendor key %s%s%s\n", out, name, version, np,
	       (unsigned long long)st.st_size, fpr, expires ? ", expires " : "", exps);
	rc = 0;
out:
	json_decref(devices);
	json_decref(argsj);
	free(trialos);
	EVP_PKEY_free(key);
	return rc;
}

/* ---------------------------------------------------------------- verify */

static const char usage_verify[] =
	"Usage: trialvm image verify PKG.tvp [--key VENDOR.pub] [--extract DIR]\n"
	"\n"
	"Check a trial package as every launch does: its format and version, the\n"
	"manifest's signature, that the signing key is trusted (in your trust\n"
	"store, 'trialvm trust', or the PEM key given with --key), its expiry, and\n"
	"every part's size and sha256. --extract DIR: write each part there as it\n"
	"is checked, named by its part name (DIR must exist; nothing is left there\n"
	"when a check fails). Exit status 0 when all hold; 125 with the reason\n"
	"otherwise; 126 usage.\n";

int package_verify_main(int argc, char **argv)
{
	const char *pkg = NULL, *key = NULL, *xdir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage_verify, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			key = argv[++i];
		} else if (!strcmp(argv[i], "--extract") && i + 1 < argc) {
			xdir = argv[++i];
		} else if (argv[i][0] != '-' && !pkg) {
			pkg = argv[i];
		} else {
			fprintf(stderr, "trialvm: image verify: unexpected '%s'\n%s", argv[i], usage_verify);
			return TVM_EXIT_USAGE;
		}
	}
	if (!pkg) {
		fputs(usage_verify, stderr);
		return TVM_EXIT_USAGE;
	}
	struct package pk;
	struct tvm_err err = { "" };
	if (package_verify(pkg, key, time(NULL), xdir, &pk, &err) < 0) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	printf("package %s: %s %s, signed by vendor key %s (trusted: %s)\n", pkg, pk.name, pk.version, pk.fingerprint,
	       pk.trusted_by);
	printf("  created  %s\n  expires  %s\n  feedback %s\n  boots    %s%s%s, %llu MiB, %d vCPU%s\n", pk.created,
	       pk.expires[0] ? pk.expires : "never", pk.feedback[0] ? pk.feedback : "none", pk.boot_kind,
	       pk.app[0] ? " " : "", pk.app, (unsigned long long)(pk.mem >> 20), pk.cpus, pk.cpus == 1 ? "" : "s");
	for (int i = 0; i < pk.nparts; i++)
		printf("  part     %-8s %12llu bytes  sha256 %s  ok\n", pk.parts[i].name,
		       (unsigned long long)pk.parts[i].size, pk.parts[i].sha256);
	return 0;
}

/* ----------------------------------------------------------------- trust */

static const char usage_trust[] =
	"Usage: trialvm trust add (VENDOR.pub | PKG.tvp) [--yes]\n"
	"       trialvm trust list\n"
	"       trialvm trust remove FINGERPRINT\n"
	"\n"
	"The vendor keys you accept trial packages from (README \"Trial packages\"),\n"
	"kept in ${TRIALVM_TRUST_DIR:-${XDG_CONFIG_HOME:-~/.config}/trialvm/trusted-keys}.\n"
	"add VENDOR.pub trusts the key in that PEM file. add PKG.tvp trusts the key\n"
	"that signed the package (its signature is checked first); it prints the\n"
	"key's fingerprint and asks on a terminal (--yes: without asking), so\n"
	"compare it with the one your vendor gave you.\n";

int package_trust_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_trust, argc < 2 ? stderr : stdout);
		return argc < 2 ? TVM_EXIT_USAGE : 0;
	}
	struct tvm_err err = { "" };
	char dir[PATH_MAX];
	if (trust_dir(dir, sizeof(dir), &err) < 0) {
		tvm_log("error: trust: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	if (!strcmp(argv[1], "list") && argc == 2) {
		DIR *d = opendir(dir);
		int n = 0;
		for (struct dirent *de; d && (de = readdir(d));) {
			size_t l = strlen(de->d_name);
			if (l != 68 || strcmp(de->d_name + 64, ".pub"))
				continue;
			printf("%.64s\n", de->d_name);
			n++;
		}
		if (d)
			closedir(d);
		if (!n)
			fprintf(stderr, "trialvm: trust: no trusted vendor keys (in %s)\n", dir);
		return 0;
	}
	if (!strcmp(argv[1], "remove") && argc == 3) {
		uint8_t tmp[32];
		char path[PATH_MAX + 80];
		if (unhex(argv[2], tmp, 32) < 0) {
			fprintf(stderr, "trialvm: trust remove: '%s' is not a fingerprint (64 hex digits, 'trialvm trust list')\n",
				argv[2]);
			return TVM_EXIT_USAGE;
		}
		snprintf(path, sizeof(path), "%s/%s.pub", dir, argv[2]);
		if (unlink(path) < 0) {
			tvm_log("error: trust remove: %s: %s", path, strerror(errno));
			return TVM_EXIT_ERROR;
		}
		fsync_dir(dir);
		printf("removed vendor key %s\n", argv[2]);
		return 0;
	}
	if (strcmp(argv[1], "add") || argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--yes"))) {
		fputs(usage_trust, stderr);
		return TVM_EXIT_USAGE;
	}
	const char *src = argv[2];
	bool yes = argc == 4;
	size_t l = strlen(src);
	uint8_t raw[32];
	char fpr[65], where[PATH_MAX + 80];
	if (l > 4 && !strcmp(src + l - 4, ".tvp")) {
		/* The package's own key: its signature must hold. */
		struct package pk;
		int r = package_verify(src, NULL, time(NULL), NULL, &pk, &err);
		if (r < 0 && pk.fault != PKG_UNTRUSTED && pk.fault != PKG_OK) {
			tvm_log("error: trust add: %s", err.msg);
			return TVM_EXIT_ERROR;
		}
		if (r == 0) {
			printf("vendor key %s is trusted already\n", pk.fingerprint);
			return 0;
		}
		fprintf(stderr, "%s is signed by vendor key\n  %s\n", src, pk.fingerprint);
		if (!yes) {
			if (!isatty(0) || !isatty(2)) {
				tvm_log("error: trust add: not on a terminal: compare the fingerprint with your vendor's, then "
					"run again with --yes");
				return TVM_EXIT_USAGE;
			}
			fprintf(stderr, "Is that the fingerprint your vendor gave you? Trust this key [y/N]? ");
			char ans[16] = "";
			if (!fgets(ans, sizeof(ans), stdin) || (ans[0] != 'y' && ans[0] != 'Y')) {
				fprintf(stderr, "not trusted\n");
				return TVM_EXIT_ERROR;
			}
		}
		if (unhex(pk.public_key, raw, 32) < 0)
			return TVM_EXIT_ERROR;
	} else {
		EVP_PKEY *k = load_key(src, false, &err);
		if (!k || key_raw(k, raw) < 0) {
			tvm_log("error: trust add: %s", err.msg[0] ? err.msg : "the key has no public half");
			EVP_PKEY_free(k);
			return TVM_EXIT_ERROR;
		}
		EVP_PKEY_free(k);
	}
	if (trust_store_add(raw, fpr, where, sizeof(where), &err) < 0) {
		tvm_log("error: trust add: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	printf("trusted vendor key %s (%s)\n", fpr, where);
	return 0;
}
