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

#include "../vmm/fileio.h"
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


/* Escaped copies of JSON strings for the output and for messages. */
#define ESC_SHORT 256
#define ESC_LONG 2048
static const char *esc(char *buf, size_t cap, const char *s)
{
	return insp_esc(buf, cap, s, strlen(s));
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
		char shown[ESC_SHORT], where[ESC_SHORT + 16];
		esc(shown, sizeof shown, name);
		snprintf(where, sizeof where, "files.%s.", shown);
		if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
			rc = tvm_seterr(err, "%s: member \"files\" lists \"%s\", which is not a plain file name", s->path, shown);
			break;
		}
		if (!json_is_object(v)) {
			rc = tvm_seterr(err, "%s: member \"files.%s\" is %s, expected an object", s->path, shown, json_kind(v));
			break;
		}
		const json_t *size = need_member(s, v, "size", where, JSON_INTEGER, err);
		/* sha256 is recorded for small files; the large sparse memory dumps
		 * carry only their size (hashing them would lengthen the capture). */
		const json_t *sha = json_object_get(v, "sha256");
		const json_t *disk = json_object_get(v, "disk_bytes");
		if (!size) {
			rc = -1;
			break;
		}
		if (json_integer_value(size) < 0 || (disk && (!json_is_integer(disk) || json_integer_value(disk) < 0))) {
			rc = tvm_seterr(err, "%s: member \"files.%s.%s\" is %s, expected a byte count (an integer, 0 or more)",
					s->path, shown, json_integer_value(size) < 0 ? "size" : "disk_bytes",
					json_integer_value(size) < 0 ? "negative" : json_kind(disk));
			break;
		}
		if (sha && (!json_is_string(sha) || !is_hex(json_string_value(sha), 64, 64))) {
			rc = tvm_seterr(err, "%s: member \"files.%s.sha256\" is not 64 hex digits", s->path, shown);
			break;
		}
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			rc = tvm_seterr(err, "%s: file \"%s\" listed in \"files\" (in %s) %s%s", s->path, shown, dir,
					fd < 0 ? "cannot be opened: " : "", fd < 0 ? strerror(errno) : "is not a regular file");
			if (fd >= 0)
				close(fd);
			break;
		}
		json_int_t want = json_integer_value(size);
		if ((uint64_t)want != (uint64_t)st.st_size) {
			rc = tvm_seterr(err, "%s: listed file %s is %lld bytes, report.json says %lld (member \"files.%s.size\")",
					s->path, shown, (long long)st.st_size, (long long)want, shown);
			close(fd);
			break;
		}
		if (!sha) {
			close(fd);
			fprintf(out, "  file %-16s %12lld bytes  size ok (no sha256 recorded)\n", shown, (long long)want);
			continue;
		}
		char hex[65];
		uint8_t md[32];
		int hr = sha256_fd(fd, md);
		if (hr < 0) {
			rc = tvm_seterr(err, "%s: cannot hash listed file %s: %s", s->path, shown, strerror(-hr));
			close(fd);
			break;
		}
		close(fd);
		sha256_hex(md, hex);
		if (strcasecmp(hex, json_string_value(sha))) {
			rc = tvm_seterr(err, "%s: listed file %s has sha256 %s, report.json says %s", s->path, shown, hex,
					json_string_value(sha));
			break;
		}
		fprintf(out, "  file %-16s %12lld bytes  sha256 ok\n", shown, (long long)want);
	}
	close(dfd);
	return rc;
}

/* Optional members: when present, of the right type (and, for "app", its
 * own members too). */
static int check_optional(const struct insp_src *s, const json_t *root, struct tvm_err *err)
{
	static const struct {
		const char *key;
		json_type type;
	} opt[] = { { "images", JSON_OBJECT }, { "app", JSON_OBJECT },	     { "disassembly", JSON_OBJECT },
		    { "stack", JSON_OBJECT },  { "irqchip", JSON_OBJECT }, { "disks", JSON_ARRAY },
		    { "uptime_ns", JSON_INTEGER }, { "kernel_log_tail", JSON_STRING },
		    { "app_output_tail", JSON_STRING } };
	for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
		if (json_object_get(root, opt[i].key) && !need_member(s, root, opt[i].key, "", opt[i].type, err))
			return -1;
	const json_t *app = json_object_get(root, "app");
	static const struct {
		const char *key;
		json_type type;
	} appm[] = { { "name", JSON_STRING }, { "registers", JSON_OBJECT }, { "mappings", JSON_ARRAY } };
	for (size_t i = 0; app && i < sizeof appm / sizeof appm[0]; i++)
		if (json_object_get(app, appm[i].key) && !need_member(s, app, appm[i].key, "app.", appm[i].type, err))
			return -1;
	return 0;
}

/* cause.vcpu names an entry of vcpus[] (by its "index", each listed once),
 * and cause.cpu_state_lost, when present, the same vCPU. */
static int check_vcpus(const struct insp_src *s, const json_t *cause, const json_t *vcpus, struct tvm_err *err)
{
	json_int_t want = json_integer_value(json_object_get(cause, "vcpu"));
	size_t i, found = SIZE_MAX;
	const json_t *c;
	json_array_foreach(vcpus, i, c) {
		json_int_t idx = json_integer_value(json_object_get(c, "index"));
		if (idx < 0)
			return tvm_seterr(err, "%s: member \"vcpus[%zu].index\" is %lld, expected a vCPU number (0 or more)",
					  s->path, i, (long long)idx);
		for (size_t k = 0; k < i; k++)
			if (json_integer_value(json_object_get(json_array_get(vcpus, k), "index")) == idx)
				return tvm_seterr(err, "%s: member \"vcpus[%zu].index\" is %lld, as is vcpus[%zu].index: each vCPU is listed once",
						  s->path, i, (long long)idx, k);
		if (idx == want)
			found = i;
	}
	if (found == SIZE_MAX)
		return tvm_seterr(err, "%s: member \"cause.vcpu\" is %lld, but \"vcpus\" (%zu entries) lists no vCPU with that index: the report is inconsistent",
				  s->path, (long long)want, json_array_size(vcpus));
	const json_t *lost = json_object_get(cause, "cpu_state_lost"), *lv;
	if (lost) {
		if (!need_member(s, cause, "cpu_state_lost", "cause.", JSON_OBJECT, err) ||
		    !(lv = need_member(s, lost, "vcpu", "cause.cpu_state_lost.", JSON_INTEGER, err)) ||
		    !need_member(s, lost, "why", "cause.cpu_state_lost.", JSON_STRING, err))
			return -1;
		if (json_integer_value(lv) != want)
			return tvm_seterr(err, "%s: member \"cause.cpu_state_lost.vcpu\" is %lld, but \"cause.vcpu\" is %lld: the report is inconsistent",
					  s->path, (long long)json_integer_value(lv), (long long)want);
	}
	return 0;
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
	char e1[ESC_SHORT], e2[ESC_SHORT], e3[ESC_SHORT], e4[ESC_LONG];
	if (!root)
		return tvm_seterr(err, "%s: invalid JSON at byte %d (line %d, column %d): %s", s->path, je.position, je.line,
				  je.column, esc(e1, sizeof e1, je.text));
	int rc = -1;
	const json_t *v, *cause, *vcpus, *files;
	if (!json_is_object(root)) {
		tvm_seterr(err, "%s: the top level is %s, expected an object", s->path, json_kind(root));
		goto out;
	}
	if (!(v = need_member(s, root, "schema", "", JSON_STRING, err)))
		goto out;
	if (strcmp(json_string_value(v), "trialvm-report")) {
		tvm_seterr(err, "%s: \"schema\" is \"%s\", expected \"trialvm-report\"", s->path,
			   esc(e1, sizeof e1, json_string_value(v)));
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
		tvm_seterr(err, "%s: \"time\" \"%s\" is not an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)", s->path,
			   esc(e1, sizeof e1, json_string_value(v)));
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
				tvm_seterr(err, "%s: member \"%s%s\" \"%s\" is not a 0x-prefixed hex number", s->path, where,
					   regs[r], esc(e1, sizeof e1, str));
				goto out;
			}
		}
	}
	if (check_vcpus(s, cause, vcpus, err) < 0 || check_optional(s, root, err) < 0)
		goto out;
	/* Every string below but the checked hex numbers and the time comes
	 * from the guest or from whoever wrote the file: escaped. */
	fprintf(out, "%s: trialvm report, schema version 1\n", s->path);
	fprintf(out, "  id %s, trialvm %s, time %s\n", esc(e1, sizeof e1, json_string_value(json_object_get(root, "id"))),
		esc(e2, sizeof e2, json_string_value(json_object_get(root, "trialvm_version"))),
		json_string_value(json_object_get(root, "time")));
	fprintf(out, "  cause: %s on vCPU %lld: %s\n", esc(e3, sizeof e3, json_string_value(json_object_get(cause, "kind"))),
		(long long)json_integer_value(json_object_get(cause, "vcpu")),
		esc(e4, sizeof e4, json_string_value(json_object_get(cause, "summary"))));
	json_array_foreach(vcpus, i, c)
		fprintf(out, "  vcpu %lld: rip %s rsp %s cr3 %s\n", (long long)json_integer_value(json_object_get(c, "index")),
			json_string_value(json_object_get(c, "rip")), json_string_value(json_object_get(c, "rsp")),
			json_string_value(json_object_get(c, "cr3")));
	fprintf(out, "  console tail: %zu bytes\n", json_string_length(json_object_get(root, "console_tail")));
	/* A Linux image's run: the kernel's log apart, with its last line. */
	const json_t *klog = json_object_get(root, "kernel_log_tail"), *aout = json_object_get(root, "app_output_tail");
	if (klog) {
		const char *t = json_string_value(klog);
		size_t n = json_string_length(klog), end = n, start;
		while (end > 0 && (t[end - 1] == '\n' || t[end - 1] == '\r'))
			end--;
		for (start = end; start > 0 && t[start - 1] != '\n';)
			start--;
		char last[512];
		size_t l = end - start < sizeof last - 1 ? end - start : sizeof last - 1;
		memcpy(last, t + start, l);
		last[l] = 0;
		fprintf(out, "  kernel log tail: %zu bytes, last line: %s\n", n, esc(e1, sizeof e1, last));
	}
	if (aout)
		fprintf(out, "  program output tail: %zu bytes\n", json_string_length(aout));
	const json_t *app = json_object_get(root, "app"), *name = app ? json_object_get(app, "name") : NULL;
	if (name)
		fprintf(out, "  app: %s\n", esc(e1, sizeof e1, json_string_value(name)));
	static const char *const optional[] = { "app", "disassembly", "stack", "images" };
	for (int k = 0; k < 4; k++)
		if (json_object_get(root, optional[k]) && !(k == 0 && name))
			fprintf(out, "  %s: present (%s)\n", optional[k], json_kind(json_object_get(root, optional[k])));
	if (check_files(s, files, out, err) < 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}
