/* reporter/inspect_report.c - report.json for `trialvm inspect`: the schema,
 * and the files it lists beside it (size, sha256). */
#include "inspect_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/util.h"

#define JSON_MAX (64u << 20)

static bool is_hex(const char *s, size_t minlen, size_t maxlen)
{
	size_t n = strlen(s);
	if (n < minlen || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static bool is_iso8601_utc(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS[.fraction]Z */
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	for (size_t i = 0; i < sizeof pat - 1; i++) {
		if (!s[i])
			return false;
		if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
			return false;
	}
	const char *p = s + sizeof pat - 1;
	if (*p == '.') {
		p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p[0] == 'Z' && p[1] == 0;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

static const json_t *need_member(const struct insp_src *s, const json_t *obj, const char *key, const char *where,
				 json_type t, struct tvm_err *err)
{
	const json_t *v = json_object_get(obj, key);
	static const char *const tn[] = { [JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
		[JSON_STRING] = "a string", [JSON_INTEGER] = "an integer", [JSON_REAL] = "a number",
		[JSON_TRUE] = "a boolean", [JSON_FALSE] = "a boolean", [JSON_NULL] = "null" };
	if (!v) {
		tvm_seterr(err, "%s: required member \"%s%s\" is missing", s->path, where, key);
		return NULL;
	}
	if (json_typeof(v) != t) {
		tvm_seterr(err, "%s: member \"%s%s\" is %s, expected %s", s->path, where, key, json_kind(v), tn[t]);
		return NULL;
	}
	return v;
}

static int sha256_fd(int fd, char hex[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	static __thread uint8_t buf[1 << 16];
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			rc = -1;
			break;
		}
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		rc = -1;
	EVP_MD_CTX_free(ctx);
	if (rc == 0)
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return rc;
}

static int check_files(const struct insp_src *s, const json_t *files, FILE *out, struct tvm_err *err)
{
	/* The directory that holds report.json. */
	char dir[4096];
	const char *slash = strrchr(s->path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == s->path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->path), s->path);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return tvm_seterr(err, "%s: cannot open its directory %s: %s", s->path, dir, strerror(errno));
	const char *name;
	const json_t *v;
	int rc = 0;
	json_object_foreach((json_t *)files, name, v) {
		char where[300];
		snprintf(where, sizeof where, "files.%.200s.", name);
		if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
			rc = tvm_seterr(err, "%s: member \"files\" lists \"%.200s\", which is not a plain file name", s->path, name);
			break;
		}
		if (!json_is_object(v)) {
			rc = tvm_seterr(err, "%s: member \"files.%.200s\" is %s, expected an object", s->path, name, json_kind(v));
			break;
		}
		const json_t *size = need_member(s, v, "size", where, JSON_INTEGER, err);
		/* sha256 is recorded for small files; the large sparse memory dumps
		 * carry only their size (hashing them would lengthen the capture). */
		const json_t *sha = json_object_get(v, "sha256");
		if (!size) {
			rc = -1;
			break;
		}
		if (sha && (!json_is_string(sha) || !is_hex(json_string_value(sha), 64, 64))) {
			rc = tvm_seterr(err, "%s: member \"files.%.200s.sha256\" is not 64 hex digits", s->path, name);
			break;
		}
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			rc = tvm_seterr(err, "%s: listed file %s/%.200s %s", s->path, dir, name,
					fd < 0 ? strerror(errno) : "is not a regular file");
			if (fd >= 0)
				close(fd);
			break;
		}
		json_int_t want = json_integer_value(size);
		if (want < 0 || (uint64_t)want != (uint64_t)st.st_size) {
			rc = tvm_seterr(err, "%s: listed file %.200s is %lld bytes, report.json says %lld", s->path, name,
					(long long)st.st_size, (long long)want);
			close(fd);
			break;
		}
		if (!sha) {
			close(fd);
			fprintf(out, "  file %-16s %12lld bytes  size ok (no sha256 recorded)\n", name, (long long)want);
			continue;
		}
		char hex[65];
		if (sha256_fd(fd, hex) < 0) {
			rc = tvm_seterr(err, "%s: cannot hash listed file %.200s: %s", s->path, name, strerror(errno));
			close(fd);
			break;
		}
		close(fd);
		if (strcasecmp(hex, json_string_value(sha))) {
			rc = tvm_seterr(err, "%s: listed file %.200s has sha256 %s, report.json says %s", s->path, name, hex,
					json_string_value(sha));
			break;
		}
		fprintf(out, "  file %-16s %12lld bytes  sha256 ok\n", name, (long long)want);
	}
	close(dfd);
	return rc;
}

int insp_json(const struct insp_src *s, const struct inspect_opts *o, FILE *out, struct tvm_err *err)
{
	if (o && o->read_phys)
		return tvm_seterr(err, "%s: a report.json holds no guest memory", s->path);
	if (s->size > JSON_MAX)
		return tvm_seterr(err, "%s: %" PRIu64 " bytes is too large for a report.json (limit %u)", s->path, s->size,
				  JSON_MAX);
	char *text = malloc(s->size + 1);
	if (!text)
		return tvm_seterr(err, "%s: out of memory", s->path);
	if (insp_read(s, 0, text, s->size, "the JSON text", err) < 0) {
		free(text);
		return -1;
	}
	json_error_t je;
	json_t *root = json_loadb(text, s->size, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!root)
		return tvm_seterr(err, "%s: invalid JSON at byte %d (line %d, column %d): %s", s->path, je.position, je.line,
				  je.column, je.text);
	int rc = -1;
	const json_t *v, *cause, *vcpus, *files;
	if (!json_is_object(root)) {
		tvm_seterr(err, "%s: the top level is %s, expected an object", s->path, json_kind(root));
		goto out;
	}
	if (!(v = need_member(s, root, "schema", "", JSON_STRING, err)))
		goto out;
	if (strcmp(json_string_value(v), "trialvm-report")) {
		tvm_seterr(err, "%s: \"schema\" is \"%.100s\", expected \"trialvm-report\"", s->path, json_string_value(v));
		goto out;
	}
	if (!(v = need_member(s, root, "version", "", JSON_INTEGER, err)))
		goto out;
	if (json_integer_value(v) != 1) {
		tvm_seterr(err, "%s: \"version\" is %lld, this trialvm reads version 1", s->path,
			   (long long)json_integer_value(v));
		goto out;
	}
	if (!need_member(s, root, "id", "", JSON_STRING, err) ||
	    !need_member(s, root, "trialvm_version", "", JSON_STRING, err) ||
	    !(v = need_member(s, root, "time", "", JSON_STRING, err)))
		goto out;
	if (!is_iso8601_utc(json_string_value(v))) {
		tvm_seterr(err, "%s: \"time\" \"%.100s\" is not an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)", s->path,
			   json_string_value(v));
		goto out;
	}
	if (!(cause = need_member(s, root, "cause", "", JSON_OBJECT, err)) ||
	    !need_member(s, cause, "kind", "cause.", JSON_STRING, err) ||
	    !need_member(s, cause, "summary", "cause.", JSON_STRING, err) ||
	    !need_member(s, cause, "vcpu", "cause.", JSON_INTEGER, err) ||
	    !(vcpus = need_member(s, root, "vcpus", "", JSON_ARRAY, err)) ||
	    !need_member(s, root, "console_tail", "", JSON_STRING, err) ||
	    !(files = need_member(s, root, "files", "", JSON_OBJECT, err)))
		goto out;
	size_t i;
	const json_t *c;
	json_array_foreach(vcpus, i, c) {
		char where[48];
		snprintf(where, sizeof where, "vcpus[%zu].", i);
		if (!json_is_object(c)) {
			tvm_seterr(err, "%s: member \"vcpus[%zu]\" is %s, expected an object", s->path, i, json_kind(c));
			goto out;
		}
		if (!need_member(s, c, "index", where, JSON_INTEGER, err))
			goto out;
		static const char *const regs[] = { "rip", "rsp", "cr3" };
		for (int r = 0; r < 3; r++) {
			const json_t *rv = need_member(s, c, regs[r], where, JSON_STRING, err);
			if (!rv)
				goto out;
			const char *str = json_string_value(rv);
			if (strncmp(str, "0x", 2) || !is_hex(str + 2, 1, 16)) {
				tvm_seterr(err, "%s: member \"%s%s\" \"%.40s\" is not a 0x-prefixed hex number", s->path, where,
					   regs[r], str);
				goto out;
			}
		}
	}
	fprintf(out, "%s: trialvm report, schema version 1\n", s->path);
	fprintf(out, "  id %s, trialvm %s, time %s\n", json_string_value(json_object_get(root, "id")),
		json_string_value(json_object_get(root, "trialvm_version")),
		json_string_value(json_object_get(root, "time")));
	fprintf(out, "  cause: %s on vCPU %lld: %s\n", json_string_value(json_object_get(cause, "kind")),
		(long long)json_integer_value(json_object_get(cause, "vcpu")),
		json_string_value(json_object_get(cause, "summary")));
	json_array_foreach(vcpus, i, c)
		fprintf(out, "  vcpu %lld: rip %s rsp %s cr3 %s\n", (long long)json_integer_value(json_object_get(c, "index")),
			json_string_value(json_object_get(c, "rip")), json_string_value(json_object_get(c, "rsp")),
			json_string_value(json_object_get(c, "cr3")));
	fprintf(out, "  console tail: %zu bytes\n", json_string_length(json_object_get(root, "console_tail")));
	static const char *const optional[] = { "app", "disassembly", "stack", "images" };
	for (int k = 0; k < 4; k++)
		if (json_object_get(root, optional[k]))
			fprintf(out, "  %s: present (%s)\n", optional[k], json_kind(json_object_get(root, optional[k])));
	if (check_files(s, files, out, err) < 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}
