/* images/package.c - trial packages (package.h): Ed25519 keys, the trust
 * store, and checking a package (package_cli.c builds them and has the
 * commands). */
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
#include "package_int.h"

#define KEY_FILE_MAX (64u << 10)
#define IO_CHUNK (1u << 20)

/* ------------------------------------------------------------------ keys */

/* An Ed25519 key from a PEM file: a private key (want_private), or either
 * a public or a private one. NULL with err. */
EVP_PKEY *pkg_load_key(const char *path, bool want_private, struct tvm_err *err)
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

int pkg_key_raw(EVP_PKEY *k, uint8_t raw[32])
{
	size_t len = 32;
	return EVP_PKEY_get_raw_public_key(k, raw, &len) == 1 && len == 32 ? 0 : -1;
}

void pkg_fingerprint(const uint8_t raw[32], char hex[65])
{
	uint8_t md[32];
	unsigned n = 0;
	EVP_Digest(raw, 32, md, &n, EVP_sha256(), NULL);
	sha256_hex(md, hex);
}

int pkg_sign(EVP_PKEY *k, const void *msg, size_t len, uint8_t sig[64])
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

int pkg_unhex(const char *s, uint8_t *out, size_t n)
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

int pkg_trust_dir(char *out, size_t cap, struct tvm_err *err)
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
int pkg_trusted(const uint8_t raw[32], struct tvm_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 80], fpr[65];
	if (pkg_trust_dir(dir, sizeof(dir), err) < 0)
		return -1;
	pkg_fingerprint(raw, fpr);
	snprintf(path, sizeof(path), "%s/%s.pub", dir, fpr);
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	EVP_PKEY *k = pkg_load_key(path, false, err);
	uint8_t have[32];
	int r = k && pkg_key_raw(k, have) == 0 && !memcmp(have, raw, 32) ? 1 : -1;
	EVP_PKEY_free(k);
	if (r < 0 && !err->msg[0])
		tvm_seterr(err, "%s holds another key than its name says; remove it ('trialvm trust remove %s')", path, fpr);
	return r;
}

int pkg_trust_add(const uint8_t raw[32], char fpr[65], char *where, size_t cap, struct tvm_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	if (pkg_trust_dir(dir, sizeof(dir), err) < 0)
		return -1;
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return tvm_seterr(err, "cannot create the trust store %s: %s", dir, strerror(-r));
	pkg_fingerprint(raw, fpr);
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
	r = write_file_durably(path, pem, (size_t)n, 0644, err);
	EVP_PKEY_free(k);
	BIO_free(b);
	return r;
}

/* ----------------------------------------------------------------- dates */

/* "YYYY-MM-DD" (through the end of that day, UTC) or
 * "YYYY-MM-DDTHH:MM:SSZ". */
int pkg_parse_date(const char *s, time_t *out)
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

void pkg_fmt_time(time_t t, char out[32])
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
	    copy_field(m, "feedback_token", pk->feedback_token, sizeof(pk->feedback_token), false) < 0 ||
	    copy_field(boot, "checkpoint", pk->checkpoint, sizeof(pk->checkpoint), false) < 0 ||
	    copy_field(boot, "kind", pk->boot_kind, sizeof(pk->boot_kind), true) < 0 ||
	    copy_field(boot, "cmdline", pk->cmdline, sizeof(pk->cmdline), false) < 0 ||
	    copy_field(boot, "app", pk->app, sizeof(pk->app), false) < 0 || !json_is_integer(mem) ||
	    !json_is_integer(cpus) || json_integer_value(mem) < (1 << 20) || json_integer_value(cpus) < 1 ||
	    json_integer_value(cpus) > 64 || !json_is_object(parts) || json_object_size(parts) < 1 ||
	    json_object_size(parts) > PACKAGE_MAX_PARTS)
		return fault(pk, PKG_FORMAT, err, "%s: the manifest lacks or misspells a field (name, package_version, "
			     "created, machine, boot, parts): ask the vendor for a package this trialvm reads", pkg);
	json_t *args = json_object_get(boot, "args");
	size_t ai;
	json_t *av;
	if (args && !json_is_array(args))
		return fault(pk, PKG_FORMAT, err, "%s: the manifest's boot.args is not a list", pkg);
	json_array_foreach(args, ai, av) {
		const char *a = json_string_value(av);
		if (!a || strlen(a) >= sizeof(pk->args[0]) || pk->nargs == PACKAGE_MAX_ARGS)
			return fault(pk, PKG_FORMAT, err, "%s: the manifest's boot.args holds a non-string, one longer than "
				     "%zu bytes, or more than %d", pkg, sizeof(pk->args[0]) - 1, PACKAGE_MAX_ARGS);
		memcpy(pk->args[pk->nargs++], a, strlen(a) + 1);
	}
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
		    pkg_unhex(sha, md, 32) < 0 || snprintf(pp->file, sizeof(pp->file), "parts/%s", name) <= 0 ||
		    strcmp(pp->file, file))
			return fault(pk, PKG_FORMAT, err, "%s: the manifest's part \"%.64s\" is malformed (a name of "
				     "[a-z0-9_-], file \"parts/NAME\", size, sha256)", pkg, name);
		snprintf(pp->name, sizeof(pp->name), "%s", name);
		snprintf(pp->sha256, sizeof(pp->sha256), "%s", sha);
		pp->size = (uint64_t)json_integer_value(size);
		pk->nparts++;
	}
	if (pk->checkpoint[0] && !package_part(pk, pk->checkpoint))
		return fault(pk, PKG_FORMAT, err, "%s: the manifest's boot.checkpoint names no part (\"%.64s\")", pkg,
			     pk->checkpoint);
	for (const char *t = pk->feedback_token; *t; t++)
		if (*t <= ' ' || *t > '~')
			return fault(pk, PKG_FORMAT, err, "%s: the manifest's feedback_token holds a space or a character "
				     "outside printable ASCII", pkg);
	return 0;
}

const struct package_part *package_part(const struct package *pk, const char *name)
{
	for (int i = 0; i < pk->nparts; i++)
		if (!strcmp(pk->parts[i].name, name))
			return &pk->parts[i];
	return NULL;
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
	if (!alg || strcmp(alg, "ed25519") || pkg_unhex(jstr(vk, "public"), raw, 32) < 0 || !fpr) {
		fault(pk, PKG_FORMAT, err, "%s: the manifest names no Ed25519 vendor key (vendor_key.algorithm, public, "
		      "fingerprint)", pkg);
		goto out;
	}
	pkg_fingerprint(raw, pk->fingerprint);
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
		EVP_PKEY *k = pkg_load_key(key, false, &kerr);
		uint8_t have[32];
		char hf[65] = "";
		if (k && pkg_key_raw(k, have) == 0)
			pkg_fingerprint(have, hf);
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
		int t = pkg_trusted(raw, &terr);
		if (t <= 0) {
			char dir[PATH_MAX] = "";
			pkg_trust_dir(dir, sizeof(dir), &terr);
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
		if (pkg_parse_date(pk->expires, &t) < 0) {
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

