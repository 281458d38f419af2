/* reporter/spool.c - the spool of report bundles and `trialvm spool`
 * (spool.h). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/text.h"
#include "../vmm/util.h"

#define META_MAX (64u << 10)

int spool_path(const char *given, char *out, size_t cap, struct tvm_err *err)
{
	if (!given)
		return user_dir(NULL, "XDG_DATA_HOME", ".local/share", "spool", out, cap, err);
	if ((size_t)snprintf(out, cap, "%s", given) >= cap)
		return tvm_seterr(err, "the spool's path is too long");
	return 0;
}

static bool id_ok(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static char *meta_text(const struct upload_dest *d, const char *label, const char *report, int attempts,
		       const char *last_error, const char *created)
{
	char now[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:o,s:o}", "url", d->url, "token", d->token, "trial", label,
			      "report", report, "created", created ? created : now, "attempts", attempts, "last_error",
			      last_error ? json_string(last_error) : json_null(), "last_attempt",
			      attempts ? json_string(now) : json_null());
	char *s = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
	json_decref(j);
	return s;
}

/* Remove what interrupted adds left in SPOOL/.new (older than an hour). */
static void clean_new(const char *newdir)
{
	DIR *d = opendir(newdir);
	if (!d)
		return;
	time_t now = time(NULL);
	for (struct dirent *e; (e = readdir(d));) {
		char p[PATH_MAX + 300];
		struct stat st;
		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		snprintf(p, sizeof(p), "%s/%s", newdir, e->d_name);
		if (lstat(p, &st) == 0 && st.st_mtime + 3600 < now)
			remove_tree(p);
	}
	closedir(d);
}

int spool_add(const char *spool, const char *report_dir, const struct bundle_master *master, const char *comment,
	      const struct upload_dest *dest, const char *label, bool progress, char id[65], struct tvm_err *err)
{
	char newdir[PATH_MAX + 8], path[PATH_MAX + 80], meta[PATH_MAX + 100], final[PATH_MAX + 80];
	snprintf(newdir, sizeof(newdir), "%s/.new", spool);
	int r = mkdir_p(newdir, 0700);
	if (r < 0)
		return tvm_seterr(err, "cannot create the spool %s: %s", newdir, strerror(-r));
	clean_new(newdir);
	if (bundle_create(report_dir, master, comment, NULL, newdir, progress, path, sizeof(path), id, err) < 0)
		return -1;
	char *text = meta_text(dest, label, id, 0, NULL, NULL);
	snprintf(meta, sizeof(meta), "%s/%s", path, SPOOL_META);
	snprintf(final, sizeof(final), "%s/%s.tvb", spool, id);
	int rc = text ? write_file_durably(meta, text, strlen(text), 0600, err) : tvm_seterr(err, "out of memory");
	free(text);
	if (rc == 0 && rename(path, final) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY) { /* spooled already */
			remove_tree(path);
		} else {
			rc = tvm_seterr(err, "cannot move the bundle into the spool %s: %s", spool, strerror(errno));
		}
	}
	if (rc < 0) {
		remove_tree(path);
		return -1;
	}
	if (fsync_dir(spool) < 0 || fsync_dir(newdir) < 0)
		return tvm_seterr(err, "cannot flush the spool %s: %s", spool, strerror(errno));
	return 0;
}

/* An entry's upload.json, read (fd locked by the caller). */
struct meta {
	struct upload_dest d;
	char label[256], report[65], created[64];
	int attempts;
};

static int read_meta(int fd, const char *path, struct meta *m, struct tvm_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > META_MAX)
		return tvm_seterr(err, "%s is not a spool entry's %s", path, SPOOL_META);
	char *buf = malloc((size_t)st.st_size);
	int r = buf ? pread_all(fd, buf, (size_t)st.st_size, 0) : -ENOMEM;
	json_t *j = r == 0 ? json_loadb(buf, (size_t)st.st_size, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(buf);
	const char *url = json_string_value(json_object_get(j, "url")), *tok = json_string_value(json_object_get(j, "token"));
	const char *label = json_string_value(json_object_get(j, "trial")), *created = json_string_value(json_object_get(j, "created"));
	json_t *att = json_object_get(j, "attempts");
	memset(m, 0, sizeof(*m));
	int rc = 0;
	if (!url || !tok || !label || !json_is_integer(att) || strlen(tok) >= sizeof(m->d.token) || !upload_url_ok(url))
		rc = tvm_seterr(err, "%s is damaged: it does not say where the report goes (drop the entry)", path);
	if (rc == 0) {
		snprintf(m->d.url, sizeof(m->d.url), "%s", url);
		snprintf(m->d.token, sizeof(m->d.token), "%s", tok);
		snprintf(m->label, sizeof(m->label), "%s", label);
		snprintf(m->created, sizeof(m->created), "%s", created ? created : "");
		m->attempts = (int)json_integer_value(att);
	}
	json_decref(j);
	return rc;
}

enum upload_outcome spool_send(const char *spool, const char *id, const struct upload_opts *o, struct tvm_err *err)
{
	char entry[PATH_MAX + 80], meta[PATH_MAX + 100];
	if (!id_ok(id)) {
		tvm_seterr(err, "%s is not a report bundle's id", id);
		return UPLOAD_REFUSED;
	}
	snprintf(entry, sizeof(entry), "%s/%s.tvb", spool, id);
	snprintf(meta, sizeof(meta), "%s/%s", entry, SPOOL_META);
	int fd = open(meta, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		tvm_seterr(err, "%s: %s", errno == ENOENT ? "no such report in the spool" : "cannot open its upload.json",
			   entry);
		return errno == ENOENT ? UPLOAD_REFUSED : UPLOAD_LATER;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		tvm_seterr(err, "%s is being sent by another trialvm", id);
		return UPLOAD_LATER;
	}
	struct meta m;
	struct bundle *b = NULL;
	enum upload_outcome out = UPLOAD_REFUSED;
	if (read_meta(fd, meta, &m, err) == 0 && bundle_open(entry, &b, err) == 0) {
		if (strcmp(bundle_id(b), id)) {
			tvm_seterr(err, "%s holds bundle %s, not %s: drop it", entry, bundle_id(b), id);
		} else {
			out = upload_bundle(b, &m.d, o, err);
		}
	}
	bundle_close(b);
	if (out == UPLOAD_DONE) {
		remove_tree(entry); /* the server has it, durably */
		fsync_dir(spool);
	} else if (m.d.url[0]) {
		char *text = meta_text(&m.d, m.label, id, m.attempts + 1, err->msg, m.created[0] ? m.created : NULL);
		struct tvm_err werr = { "" };
		if (text)
			write_file_durably(meta, text, strlen(text), 0600, &werr);
		free(text);
	}
	close(fd);
	return out;
}

struct ent {
	char id[65];
	time_t t;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return x->t != y->t ? (x->t < y->t ? -1 : 1) : strcmp(x->id, y->id);
}

int spool_ids(const char *spool, char (**ids)[65], int *n, struct tvm_err *err)
{
	*ids = NULL;
	*n = 0;
	DIR *d = opendir(spool);
	if (!d)
		return errno == ENOENT ? 0 : tvm_seterr(err, "cannot read the spool %s: %s", spool, strerror(errno));
	struct ent *e = NULL;
	int cap = 0, k = 0;
	for (struct dirent *de; (de = readdir(d));) {
		size_t len = strlen(de->d_name);
		char id[65];
		if (len != 68 || strcmp(de->d_name + 64, ".tvb"))
			continue;
		memcpy(id, de->d_name, 64);
		id[64] = 0;
		if (!id_ok(id))
			continue;
		char p[PATH_MAX + 80];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", spool, de->d_name);
		if (lstat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (k == cap) {
			struct ent *ne = realloc(e, (size_t)(cap = cap ? cap * 2 : 16) * sizeof(*e));
			if (!ne) {
				free(e);
				closedir(d);
				return tvm_seterr(err, "out of memory");
			}
			e = ne;
		}
		memcpy(e[k].id, id, 65);
		e[k++].t = st.st_mtime;
	}
	closedir(d);
	if (k)
		qsort(e, (size_t)k, sizeof(*e), ent_cmp);
	*ids = calloc((size_t)k + 1, sizeof(**ids));
	if (!*ids) {
		free(e);
		return tvm_seterr(err, "out of memory");
	}
	for (int i = 0; i < k; i++)
		memcpy((*ids)[i], e[i].id, 65);
	*n = k;
	free(e);
	return 0;
}

/* -------------------------------------------------------------- the CLI */

static const char usage_spool[] =
	"Usage: trialvm spool list [--spool DIR]\n"
	"       trialvm spool send [--spool DIR] [--tries N] [ID...]\n"
	"       trialvm spool drop [--spool DIR] ID...\n"
	"\n"
	"The spool (README \"The spool\"): crash report bundles you agreed to send,\n"
	"kept until the vendor's feedback server has confirmed each.\n"
	"  list   each report: its id, the trial, the crash, its size, where it\n"
	"         goes, the tries so far and the last error\n"
	"  send   send them all (or those named), resuming where an interrupted\n"
	"         upload stopped; each leaves the spool once the server confirmed\n"
	"         it (--tries N: attempts per report, default 4, backoff between)\n"
	"  drop   remove reports from the spool unsent\n"
	"ID: a report's id or its first 8 or more hex digits. --spool DIR: the\n"
	"spool (default ${XDG_DATA_HOME:-~/.local/share}/trialvm/spool).\n"
	"Exit status: 0; 125 when a report could not be sent or found (the reason\n"
	"is said; it stays in the spool); 126 usage.\n";

/* ID or a unique prefix of one, in ids. */
static const char *find_id(char (*ids)[65], int n, const char *want, struct tvm_err *err)
{
	size_t len = strlen(want);
	const char *hit = NULL;
	if (len < 8 || len > 64) {
		tvm_seterr(err, "%s: give a report's id or its first 8 or more hex digits", want);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		if (!strncmp(ids[i], want, len)) {
			if (hit) {
				tvm_seterr(err, "%s names more than one report in the spool: give more of its id", want);
				return NULL;
			}
			hit = ids[i];
		}
	if (!hit)
		tvm_seterr(err, "no report %s in the spool", want);
	return hit;
}

static void list_one(const char *spool, const char *id)
{
	char entry[PATH_MAX + 80], meta[PATH_MAX + 100];
	snprintf(entry, sizeof(entry), "%s/%s.tvb", spool, id);
	snprintf(meta, sizeof(meta), "%s/%s", entry, SPOOL_META);
	struct bundle *b = NULL;
	struct tvm_err err = { "" };
	json_t *mj = NULL;
	uint8_t *text = NULL;
	size_t len = 0;
	if (read_file(meta, META_MAX, &text, &len, &err) == 0)
		mj = json_loadb((const char *)text, len, 0, NULL);
	free(text);
	printf("%s\n", id);
	if (bundle_open(entry, &b, &err) < 0) {
		char *e = tvm_escape_dup(err.msg, strlen(err.msg), TVM_ESC_TERMINAL);
		printf("  damaged: %s\n", e ? e : "");
		free(e);
	} else {
		char *s = NULL;
		json_t *m = NULL;
		uint8_t *mt = NULL;
		size_t ml = 0;
		char mp[PATH_MAX + 100];
		snprintf(mp, sizeof(mp), "%s/manifest.json", entry);
		if (read_file(mp, BUNDLE_MANIFEST_MAX, &mt, &ml, &err) == 0)
			m = json_loadb((const char *)mt, ml, 0, NULL);
		free(mt);
		json_t *rep = json_object_get(m, "report");
		const char *sum = json_string_value(json_object_get(rep, "summary"));
		s = sum ? tvm_escape_dup(sum, strlen(sum), TVM_ESC_TERMINAL) : NULL;
		printf("  crash      %s\n", s ? s : "(no summary)");
		free(s);
		printf("  size       %llu bytes to send\n", (unsigned long long)bundle_bytes(b));
		json_decref(m);
	}
	bundle_close(b);
	const char *keys[4] = { "trial", "url", "created", "last_error" }, *labels[4] = { "trial", "to", "saved", "last error" };
	for (int i = 0; i < 4; i++) {
		const char *v = json_string_value(json_object_get(mj, keys[i]));
		if (!v)
			continue;
		char *e = tvm_escape_dup(v, strlen(v), TVM_ESC_TERMINAL);
		printf("  %-10s %s\n", labels[i], e ? e : "");
		free(e);
	}
	if (json_integer_value(json_object_get(mj, "attempts")))
		printf("  tries      %lld\n", (long long)json_integer_value(json_object_get(mj, "attempts")));
	json_decref(mj);
}

int spool_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_spool, argc < 2 ? stderr : stdout);
		return argc < 2 ? TVM_EXIT_USAGE : 0;
	}
	const char *cmd = argv[1], *given = NULL;
	if (strcmp(cmd, "list") && strcmp(cmd, "send") && strcmp(cmd, "drop"))
		return cli_usage("spool", "unknown command '%s'", cmd);
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "tries", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int c, tries = 4;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 's': given = optarg; break;
		case 't':
			tries = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || tries < 1 || tries > 100)
				return cli_usage("spool", "--tries %s: give 1 to 100", optarg);
			break;
		default: return cli_usage("spool", "unknown or incomplete option '%s'", argv[optind]);
		}
	}
	int nargs = argc - 1 - optind;
	char **args = argv + 1 + optind;
	if (!strcmp(cmd, "list") && nargs)
		return cli_usage("spool", "%s takes no ids", "list");
	if (!strcmp(cmd, "drop") && !nargs)
		return cli_usage("spool", "%s", "drop: which reports? give their ids (trialvm spool list)");
	struct tvm_err err = { "" };
	char spool[PATH_MAX];
	char (*ids)[65] = NULL;
	int n = 0;
	if (spool_path(given, spool, sizeof(spool), &err) < 0 || spool_ids(spool, &ids, &n, &err) < 0) {
		tvm_log("error: spool: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	int rc = 0;
	if (!strcmp(cmd, "list")) {
		if (!n)
			printf("the spool %s is empty\n", spool);
		for (int i = 0; i < n; i++)
			list_one(spool, ids[i]);
		free(ids);
		return 0;
	}
	/* The entries named (or all of them, for send). */
	const char **todo = calloc((size_t)(nargs ? nargs : n) + 1, sizeof(char *));
	int nt = 0;
	for (int i = 0; todo && i < nargs; i++) {
		const char *id = find_id(ids, n, args[i], &err);
		if (!id) {
			tvm_log("error: spool %s: %s", cmd, err.msg);
			rc = TVM_EXIT_ERROR;
			continue;
		}
		todo[nt++] = id;
	}
	for (int i = 0; todo && !nargs && i < n; i++)
		todo[nt++] = ids[i];
	if (!strcmp(cmd, "drop")) {
		for (int i = 0; i < nt; i++) {
			char entry[PATH_MAX + 80];
			snprintf(entry, sizeof(entry), "%s/%s.tvb", spool, todo[i]);
			if (remove_tree(entry) < 0) {
				tvm_log("error: spool drop: cannot remove %s: %s", entry, strerror(errno));
				rc = TVM_EXIT_ERROR;
			} else {
				tvm_log("spool: dropped %s", todo[i]);
			}
		}
		fsync_dir(spool);
	} else {
		struct upload_opts o = { .tries = tries, .max_wait = 300, .progress = isatty(2) };
		if (!nt)
			printf("the spool %s is empty: nothing to send\n", spool);
		for (int i = 0; i < nt; i++) {
			enum upload_outcome out = spool_send(spool, todo[i], &o, &err);
			if (out == UPLOAD_DONE) {
				tvm_log("spool: sent report %s; the server confirmed it", todo[i]);
			} else {
				tvm_log("error: spool: report %s %s: %s", todo[i],
					out == UPLOAD_LATER ? "not sent now (it stays in the spool)" : "refused (it stays in the spool)",
					err.msg);
				rc = TVM_EXIT_ERROR;
			}
		}
	}
	free(todo);
	free(ids);
	return rc;
}
