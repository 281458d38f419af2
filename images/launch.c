/* images/launch.c - `trialvm launch PKG` (launch.h): a checked package's
 * parts in the content-addressed cache, the run they make, and the
 * supervisor that runs one VM after another as child processes. */
#include "launch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../reporter/spool.h"
#include "../vmm/fileio.h"
#include "../vmm/text.h"
#include "../vmm/util.h"
#include "download.h"
#include "feedback.h"
#include "package_int.h"
#include "image.h"

/* A linux-image package's parts make a master image directory: its
 * manifest, in the format image_open reads. */
int launch_image_manifest(const char *dir, const struct package *pk, struct tvm_err *err)
{
	const char *names[3] = { "kernel", "initrd", "rootfs" };
	json_t *parts = json_object();
	for (int i = 0; i < 3; i++) {
		const struct package_part *p = package_part(pk, names[i]);
		if (!p) {
			json_decref(parts);
			return tvm_seterr(err, "the package boots a Linux image and has no %s part", names[i]);
		}
		json_object_set_new(parts, names[i], json_pack("{s:s,s:I,s:s}", "file", names[i], "size",
							       (json_int_t)p->size, "sha256", p->sha256));
	}
	json_t *m = json_pack("{s:s,s:i,s:s,s:s,s:I,s:i,s:o}", "format", IMAGE_FORMAT, "version", IMAGE_VERSION,
			      "cmdline", pk->cmdline, "app", pk->app, "memory", (json_int_t)pk->mem, "cpus", pk->cpus,
			      "parts", parts);
	char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
	json_decref(m);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	FILE *f = text ? fopen(path, "wx") : NULL;
	int rc = f && fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	free(text);
	if (rc < 0)
		return tvm_seterr(err, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

/* Every part in dir has its size and sha256 (a cache someone changed is
 * not used). */
static bool cache_intact(const char *dir, const struct package *pk)
{
	for (int i = 0; i < pk->nparts; i++) {
		char path[PATH_MAX + 80], hex[65];
		uint8_t md[32];
		struct stat st;
		struct tvm_err err = { "" };
		snprintf(path, sizeof(path), "%s/%s", dir, pk->parts[i].name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != pk->parts[i].size ||
		    sha256_path(path, md, &err) < 0)
			return false;
		sha256_hex(md, hex);
		if (strcmp(hex, pk->parts[i].sha256))
			return false;
	}
	return true;
}

/* The package checked, its parts in the cache (extracted there while
 * they are checked, once per package content). */
static int to_cache(const char *pkg, const char *key, struct package *pk, char *dir, size_t cap, bool *fresh,
		    struct tvm_err *err)
{
	char root[PATH_MAX], hex[65];
	uint8_t md[32];
	if (cache_dir("packages", root, sizeof(root), err) < 0 || sha256_path(pkg, md, err) < 0)
		return -1;
	sha256_hex(md, hex);
	int r = mkdir_p(root, 0700);
	if (r < 0)
		return tvm_seterr(err, "cannot create the package cache %s: %s", root, strerror(-r));
	if ((size_t)snprintf(dir, cap, "%s/%s", root, hex) >= cap)
		return tvm_seterr(err, "the cache directory's path is too long");
	struct stat st;
	*fresh = false;
	if (stat(dir, &st) == 0) {
		/* Cached: the package itself is checked again (signature, trust,
		 * expiry, parts), then the cached parts against it. */
		if (package_verify(pkg, key, time(NULL), NULL, pk, err) < 0)
			return -1;
		if (cache_intact(dir, pk))
			return 0;
		tvm_log("launch: the cached parts in %s were changed; extracting them again", dir);
		if (remove_tree(dir) < 0)
			return tvm_seterr(err, "cannot clear the changed cache %s: %s (delete it)", dir, strerror(errno));
	}
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dir);
	if (!mkdtemp(tmp))
		return tvm_seterr(err, "cannot create %s: %s", tmp, strerror(errno));
	if (package_verify(pkg, key, time(NULL), tmp, pk, err) < 0 ||
	    (!strcmp(pk->boot_kind, "linux-image") && launch_image_manifest(tmp, pk, err) < 0)) {
		remove_tree(tmp);
		return -1;
	}
	if (fsync_dir(tmp) < 0 || rename(tmp, dir) < 0) {
		int e = errno;
		remove_tree(tmp);
		if (e == EEXIST || e == ENOTEMPTY) /* another launch got there first */
			return cache_intact(dir, pk) ? 0 : tvm_seterr(err, "the package cache %s is not intact", dir);
		return tvm_seterr(err, "cannot move the checked parts to %s: %s", dir, strerror(e));
	}
	fsync_dir(root);
	*fresh = true;
	return 0;
}

int launch_run_args(const struct package *pk, const char *dir, bool restore, char **argv, int *argc, int cap,
		    struct tvm_err *err)
{
	char buf[PATH_MAX + 80];
#define ARG(s)                                                                                \
	do {                                                                                  \
		if (*argc >= cap - 1 || !(argv[*argc] = strdup(s)))                            \
			return tvm_seterr(err, "the package makes too long a command line"); \
		++*argc;                                                                      \
	} while (0)
#define PART_ARG(opt, name)                                        \
	do {                                                       \
		snprintf(buf, sizeof(buf), "%s/%s", dir, name);    \
		ARG(opt);                                          \
		ARG(buf);                                          \
	} while (0)
	if (restore && !pk->checkpoint[0])
		return tvm_seterr(err, "the package has no booted checkpoint");
	if (restore)
		PART_ARG("--restore", pk->checkpoint);
	if (!strcmp(pk->boot_kind, "linux-image")) {
		ARG("--image");
		ARG(dir);
	} else if (!strcmp(pk->boot_kind, "trialos")) {
		if (!package_part(pk, "kernel") || !package_part(pk, "app"))
			return tvm_seterr(err, "the package boots a trialos program and lacks its kernel or app part");
		PART_ARG("--trialos", "kernel");
		PART_ARG("--app", "app");
	} else if (!strcmp(pk->boot_kind, "kernel")) {
		if (!package_part(pk, "kernel"))
			return tvm_seterr(err, "the package has no kernel part");
		PART_ARG("--kernel", "kernel");
		if (package_part(pk, "initrd"))
			PART_ARG("--initrd", "initrd");
	} else {
		return tvm_seterr(err, "the package boots \"%s\", which this trialvm does not know: update trialvm",
				  pk->boot_kind);
	}
	for (int i = 0; i < pk->nparts; i++)
		if (!strncmp(pk->parts[i].name, "disk", 4))
			PART_ARG("--disk", pk->parts[i].name);
	if (strcmp(pk->boot_kind, "linux-image") && !restore) { /* a restore has the snapshot's machine */
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)pk->mem);
		ARG("--mem");
		ARG(buf);
		snprintf(buf, sizeof(buf), "%d", pk->cpus);
		ARG("--cpus");
		ARG(buf);
		if (pk->cmdline[0]) {
			ARG("--cmdline");
			ARG(pk->cmdline);
		}
	}
	return 0;
#undef ARG
#undef PART_ARG
}

int launch_prepare(const char *pkg, const char *key, struct launch *l, struct tvm_err *err)
{
	memset(l, 0, sizeof(*l));
	bool fresh;
	if (to_cache(pkg, key, &l->pk, l->dir, sizeof(l->dir), &fresh, err) < 0)
		return -1;
	l->fresh = fresh;
	if (launch_run_args(&l->pk, l->dir, l->pk.checkpoint[0] != 0, l->argv, &l->argc, LAUNCH_MAX_ARGS, err) < 0)
		return tvm_seterr(err, "%s: %s", pkg, err->msg);
	return 0;
}

void launch_free(struct launch *l)
{
	for (int i = 0; i < l->argc; i++)
		free(l->argv[i]);
	l->argc = 0;
}

int launch_cache_check(const struct launch *l, struct tvm_err *err)
{
	if (!cache_intact(l->dir, &l->pk))
		return tvm_seterr(err, "the cached parts in %s were changed since the package was checked; launch it "
				       "again", l->dir);
	return 0;
}

/* ------------------------------------------------------------ the trial */

static const char usage_launch[] =
	"Usage: trialvm launch (PKG.tvp | URL) [--key VENDOR.pub] [--refresh]\n"
	"                      [--consent ask|yes|no] [--comment TEXT] [--spool DIR]\n"
	"                      [--report-dir DIR] [--on-crash restart|exit]\n"
	"                      [--max-restarts N] [--snapshot-every SECS]\n"
	"                      [RUN OPTIONS] [-- ARGS...]\n"
	"\n"
	"Run a vendor's trial package (README \"Launching a trial\"). A URL (http://\n"
	"or https://) is downloaded into the download cache first (resumed where an\n"
	"interrupted download stopped; --refresh fetches it again). The package is\n"
	"checked as 'trialvm image verify' checks it (format, signature, a trusted\n"
	"vendor key or --key, expiry, every part) before anything runs (a key you\n"
	"have not trusted yet: on a terminal its fingerprint is shown and you are\n"
	"asked, as 'trialvm trust add PKG' asks); its parts go\n"
	"to the package cache (${TRIALVM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/trialvm}/\n"
	"packages/SHA256) and are checked again before each VM starts. Each VM is a\n"
	"'trialvm run' of the package (from its booted checkpoint when it has one)\n"
	"with a fresh disk overlay, periodic snapshots and an event log, in a\n"
	"session directory of its own under the report directory; a session that\n"
	"ends without a report is removed.\n"
	"After a crash, when the package names a feedback server: on a terminal\n"
	"you are shown what the report holds and asked whether to send it, and for\n"
	"a comment; with your yes it is bundled (only what differs from the\n"
	"package), saved to the spool and sent (README \"The spool\"); a report\n"
	"that cannot be sent now goes with the next launch or 'trialvm spool\n"
	"send'. Then a fresh VM starts from the package again.\n"
	"\n"
	"  --key FILE            trust this vendor public key (PEM) for this launch\n"
	"  --consent ask|yes|no  ask on a terminal (default; off a terminal nothing\n"
	"                        is sent), or send every crash report, or none\n"
	"  --comment TEXT        the comment sent with each report (not asked for)\n"
	"  --spool DIR           the spool (default ${XDG_DATA_HOME:-~/.local/share}/\n"
	"                        trialvm/spool)\n"
	"  --report-dir DIR      where sessions and their reports go (default\n"
	"                        ${XDG_DATA_HOME:-~/.local/share}/trialvm/reports/NAME)\n"
	"  --on-crash ACTION     restart (default): a fresh VM after a crash; exit\n"
	"  --max-restarts N      at most N fresh VMs after crashes (default 3)\n"
	"  --snapshot-every SECS periodic snapshots (default 30; the crash's report\n"
	"                        holds the last one and the event log since it)\n"
	"RUN OPTIONS are 'trialvm run's (--console-log, --hang-timeout, -q, ...),\n"
	"except those the package decides: --kernel, --initrd, --cpio, --app,\n"
	"--trialos, --image, --disk, --mem, --cpus, --cmdline, --restore, --replay,\n"
	"--snapshot-dir, --snapshot-keep. ARGS replace the program's arguments\n"
	"the package gives (not with a checkpoint, where the program already runs).\n"
	"\n"
	"Exit status: the last VM's, as 'trialvm run' gives it (123 after a crash\n"
	"with no restart left); 125 when the package is refused (the reason is\n"
	"said) or trialvm failed; 126 usage.\n";

/* Run options the package decides (launch refuses them). */
static const char *const package_decides[] = {
	"--kernel", "--initrd", "--cpio", "--app", "--trialos", "--image", "--disk", "--disk-mode", "--mem", "--cpus",
	"--cmdline", "--restore", "--replay", "--snapshot-dir", "--snapshot-keep", "--no-decompress",
};

enum consent { CONSENT_ASK, CONSENT_YES, CONSENT_NO };

struct launch_cli {
	const char *pkg, *key, *report_base, *snapshot_every, *spool, *comment;
	enum consent consent;
	bool restart, refresh;
	long max_restarts;
	char **run;  /* the tester's run options */
	int nrun;
	char **args; /* after "--" (have_args) */
	int nargs;
	bool have_args;
};

/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 with *val (and *i past
 * it), 0 when argv[*i] is another option, -1 when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n))
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n])
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

static int parse_launch(int argc, char **argv, struct launch_cli *c)
{
	memset(c, 0, sizeof(*c));
	c->restart = true;
	c->max_restarts = 3;
	c->snapshot_every = "30";
	c->run = calloc((size_t)argc + 1, sizeof(char *));
	if (!c->run)
		return TVM_EXIT_ERROR;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		int r;
		if (!strcmp(a, "--")) {
			c->args = argv + i + 1;
			c->nargs = argc - i - 1;
			c->have_args = true;
			break;
		}
		if (!strcmp(a, "--refresh")) {
			c->refresh = true;
			continue;
		}
		if ((r = opt_value(argc, argv, &i, "--consent", &v))) {
			if (r < 0)
				return cli_usage("launch", "option %s needs a value", a);
			if (strcmp(v, "yes") && strcmp(v, "no") && strcmp(v, "ask"))
				return cli_usage("launch", "--consent %s: give yes, no or ask", v);
			c->consent = !strcmp(v, "yes") ? CONSENT_YES : !strcmp(v, "no") ? CONSENT_NO : CONSENT_ASK;
			continue;
		}
		if ((r = opt_value(argc, argv, &i, "--comment", &c->comment))) {
			if (r < 0)
				return cli_usage("launch", "option %s needs a value", a);
			if (strlen(c->comment) > BUNDLE_COMMENT_MAX)
				return cli_usage("launch", "--comment: at most %s bytes", "4096");
			continue;
		}
		if ((r = opt_value(argc, argv, &i, "--key", &v)) ||
		    (r = opt_value(argc, argv, &i, "--spool", &c->spool)) ||
		    (r = opt_value(argc, argv, &i, "--report-dir", &c->report_base)) ||
		    (r = opt_value(argc, argv, &i, "--snapshot-every", &c->snapshot_every))) {
			if (r < 0)
				return cli_usage("launch", "option %s needs a value", a);
			if (v)
				c->key = v;
			continue;
		}
		if ((r = opt_value(argc, argv, &i, "--on-crash", &v))) {
			if (r < 0)
				return cli_usage("launch", "option %s needs a value", a);
			if (strcmp(v, "restart") && strcmp(v, "exit"))
				return cli_usage("launch", "--on-crash %s: give restart or exit", v);
			c->restart = !strcmp(v, "restart");
			continue;
		}
		if ((r = opt_value(argc, argv, &i, "--max-restarts", &v))) {
			char *end;
			errno = 0;
			if (r < 0)
				return cli_usage("launch", "option %s needs a value", a);
			c->max_restarts = strtol(v, &end, 10);
			if (errno || *end || end == v || c->max_restarts < 0 || c->max_restarts > 1000000)
				return cli_usage("launch", "--max-restarts %s: give a number from 0 to 1000000", v);
			continue;
		}
		for (size_t k = 0; k < sizeof(package_decides) / sizeof(package_decides[0]); k++) {
			size_t n = strlen(package_decides[k]);
			if (!strncmp(a, package_decides[k], n) && (a[n] == 0 || a[n] == '='))
				return cli_usage("launch", "%s: the package decides that (see 'trialvm image verify PKG')",
						    package_decides[k]);
		}
		if (a[0] != '-' && !c->pkg) {
			c->pkg = a;
			continue;
		}
		c->run[c->nrun++] = argv[i];
	}
	if (!c->pkg)
		return cli_usage("launch", "%s", "which package? give PKG.tvp");
	return 0;
}

/* A new session directory under base: YYYYmmddTHHMMSS.mmmZ-PID-N. */
static int new_session(const char *base, char *out, size_t cap, struct tvm_err *err)
{
	static unsigned seq;
	int r = mkdir_p(base, 0700);
	if (r < 0)
		return tvm_seterr(err, "cannot create %s: %s", base, strerror(-r));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	for (int tries = 0; tries < 100; tries++) {
		if ((size_t)snprintf(out, cap, "%s/%s.%03ldZ-%ld-%u", base, stamp, ts.tv_nsec / 1000000, (long)getpid(),
				     ++seq) >= cap)
			return tvm_seterr(err, "the report directory's path is too long");
		if (mkdir(out, 0700) == 0)
			return 0;
		if (errno != EEXIST)
			return tvm_seterr(err, "cannot create %s: %s", out, strerror(errno));
	}
	return tvm_seterr(err, "cannot create a session directory in %s", base);
}

/* The report a session holds (the one directory besides snapshots/), or
 * 0 when none. */
static int session_report(const char *session, char *out, size_t cap)
{
	DIR *d = opendir(session);
	int found = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "snapshots") || e->d_type != DT_DIR)
			continue;
		if ((size_t)snprintf(out, cap, "%s/%s", session, e->d_name) < cap)
			found = 1;
	}
	closedir(d);
	return found;
}

static volatile sig_atomic_t stop_sig;
static volatile pid_t child;

/* SIGTERM and SIGHUP sent to launch go on to its VM (a terminal's SIGINT
 * reaches both: launch ignores it and sees the VM end of it). */
static void forward_signal(int sig)
{
	stop_sig = sig;
	if (child > 0)
		kill(child, sig);
}

int launch_child(char **argv, unsigned timeout_s, struct tvm_err *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return tvm_seterr(err, "cannot find the trialvm program (/proc/self/exe): %s", strerror(errno));
	self[n] = 0;
	fflush(NULL);
	pid_t p = fork();
	if (p < 0)
		return tvm_seterr(err, "cannot start trialvm %s: fork: %s", argv[1], strerror(errno));
	if (p == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execv(self, argv);
		fprintf(stderr, "trialvm: cannot run %s: %s\n", self, strerror(errno));
		_exit(TVM_EXIT_ERROR);
	}
	child = p;
	uint64_t deadline = timeout_s ? now_ns() + (uint64_t)timeout_s * 1000000000ull : 0;
	bool killed = false;
	int st;
	for (;;) {
		pid_t w = waitpid(p, &st, deadline ? WNOHANG : 0);
		if (w == p)
			break;
		if (w < 0 && errno != EINTR) {
			child = 0;
			return tvm_seterr(err, "waiting for trialvm %s: %s", argv[1], strerror(errno));
		}
		if (w == 0 && !killed && now_ns() >= deadline) {
			tvm_log("trialvm %s ran past %u s; stopping it", argv[1], timeout_s);
			kill(p, SIGTERM);
			killed = true;
			deadline = now_ns() + 10000000000ull; /* then SIGKILL */
		} else if (w == 0 && killed && now_ns() >= deadline) {
			kill(p, SIGKILL);
			deadline = 0;
		} else if (w == 0) {
			struct timespec ts = { 0, 20000000 };
			nanosleep(&ts, NULL);
		}
	}
	child = 0;
	if (killed)
		return tvm_seterr(err, "trialvm %s did not finish within %u s", argv[1], timeout_s);
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : TVM_EXIT_ERROR;
}

/* run's command line for one session. */
static char **session_argv(const struct launch *l, const struct launch_cli *c, const char *session, char *snapdir)
{
	char **v = calloc((size_t)(l->argc + c->nrun + c->nargs + PACKAGE_MAX_ARGS + 16), sizeof(char *));
	if (!v)
		return NULL;
	int k = 0;
	v[k++] = "trialvm";
	v[k++] = "run";
	for (int i = 0; i < l->argc; i++)
		v[k++] = l->argv[i];
	v[k++] = "--report-dir";
	v[k++] = (char *)session;
	v[k++] = "--snapshot-dir";
	v[k++] = snapdir;
	v[k++] = "--snapshot-keep";
	v[k++] = "1";
	v[k++] = "--snapshot-every";
	v[k++] = (char *)c->snapshot_every;
	for (int i = 0; i < c->nrun; i++)
		v[k++] = c->run[i];
	if (!l->pk.checkpoint[0] && (c->have_args || l->pk.nargs > 0)) /* a checkpoint's program already runs */
		v[k++] = "--";
	if (!l->pk.checkpoint[0] && c->have_args)
		for (int i = 0; i < c->nargs; i++)
			v[k++] = c->args[i];
	else if (!l->pk.checkpoint[0])
		for (int i = 0; i < l->pk.nargs; i++)
			v[k++] = (char *)l->pk.args[i];
	v[k] = NULL;
	return v;
}

/* ------------------------------------------------------- after a crash */

/* Read a line from the terminal into buf (no newline); false at EOF. */
static bool ask_line(const char *prompt, char *buf, size_t cap)
{
	fputs(prompt, stderr);
	fflush(stderr);
	if (!fgets(buf, (int)cap, stdin))
		return false;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

/* What the tester is asked to send: the crash and the files, and where. */
static void show_report(const char *report, const char *url)
{
	char path[PATH_MAX + 300];
	snprintf(path, sizeof(path), "%s/report.json", report);
	uint8_t *text = NULL;
	size_t len = 0;
	struct tvm_err err = { "" };
	json_t *j = NULL;
	if (read_file(path, 64u << 20, &text, &len, &err) == 0)
		j = json_loadb((const char *)text, len, 0, NULL);
	free(text);
	const char *sum = json_string_value(json_object_get(json_object_get(j, "cause"), "summary"));
	char *esum = sum ? tvm_escape_dup(sum, strlen(sum), TVM_ESC_TERMINAL) : NULL;
	fprintf(stderr, "\nThe trial crashed: %s\nIts report (%s) holds:\n", esum ? esum : "(no summary)", report);
	free(esum);
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(j, "files"), k, v)
		fprintf(stderr, "  %-12s %llu bytes\n", k, (unsigned long long)json_integer_value(json_object_get(v, "size")));
	if (json_object_get(j, "snapshots"))
		fprintf(stderr, "  and the snapshots and the record of inputs since the last snapshot\n");
	fprintf(stderr, "the guest's memory and disk as they were (crash dumps: they may hold whatever the\n"
			"program had in memory), its console output and the CPU state. Only what differs\n"
			"from the vendor's package is sent, to %s.\n", url);
	json_decref(j);
}

/* The tester's answer (and comment) about sending the report. */
static bool consent(const struct launch_cli *c, const char *report, const char *url, char *comment, size_t cap)
{
	snprintf(comment, cap, "%s", c->comment ? c->comment : "");
	if (c->consent == CONSENT_NO) {
		tvm_log("launch: the report is not sent (--consent no); it stays in %s", report);
		return false;
	}
	if (c->consent == CONSENT_YES)
		return true;
	if (!isatty(0) || !isatty(2)) {
		tvm_log("launch: nobody was asked (not on a terminal), so the report is not sent; it stays in %s "
			"(--consent yes sends reports, --consent no says so at once; 'trialvm report send' sends one later)",
			report);
		return false;
	}
	show_report(report, url);
	char ans[16];
	if (!ask_line("Send this report to the vendor? [y/N] ", ans, sizeof(ans)) || (ans[0] != 'y' && ans[0] != 'Y')) {
		tvm_log("launch: the report is not sent; it stays in %s", report);
		return false;
	}
	if (!c->comment && !ask_line("A comment for the vendor (what you were doing; Enter for none): ", comment, cap))
		comment[0] = 0;
	return true;
}

/* Consent, then the report bundled into the spool, then sent. */
static void after_crash(const struct launch *l, const struct launch_cli *c, const char *spool, const char *session,
			const char *report)
{
	if (!l->pk.feedback[0]) {
		tvm_log("launch: the package names no feedback server: the report stays in %s", report);
		return;
	}
	char comment[BUNDLE_COMMENT_MAX + 2];
	if (!consent(c, report, l->pk.feedback, comment, sizeof(comment)))
		return;
	struct tvm_err err = { "" };
	struct bundle_master *m = calloc(1, sizeof(*m));
	char ram[PATH_MAX + 32], id[65], label[256];
	const char *sha = strrchr(l->dir, '/');
	snprintf(ram, sizeof(ram), "%s/checkpoint.ram", session);
	snprintf(label, sizeof(label), "%s %s", l->pk.name, l->pk.version);
	struct upload_dest d;
	snprintf(d.url, sizeof(d.url), "%s", l->pk.feedback);
	snprintf(d.token, sizeof(d.token), "%s", l->pk.feedback_token);
	int r = m ? feedback_master(&l->pk, sha ? sha + 1 : "", l->dir, ram, m, &err) : tvm_seterr(&err, "out of memory");
	if (r == 0)
		r = spool_add(spool, report, m, comment[0] ? comment : NULL, &d, label, isatty(2), id, &err);
	unlink(ram);
	free(m);
	if (r < 0) {
		tvm_log("error: launch: the report could not be saved for sending: %s; it stays in %s", err.msg, report);
		return;
	}
	tvm_log("launch: report saved to the spool as %s; sending it to %s", id, d.url);
	struct upload_opts o = { .tries = 3, .max_wait = 30, .progress = isatty(2) };
	enum upload_outcome out = spool_send(spool, id, &o, &err);
	if (out == UPLOAD_DONE)
		tvm_log("launch: report %.16s... sent; the vendor's server confirmed it", id);
	else
		tvm_log("launch: report %.16s... not sent now (%s); it stays in the spool %s and goes with the next launch "
			"or 'trialvm spool send'", id, err.msg, spool);
}

/* Reports left in the spool by earlier launches go now, beside the trial
 * (a child process; its pid, or 0 when there is nothing to send). */
static pid_t send_pending(const char *spool)
{
	char (*ids)[65] = NULL;
	int n = 0;
	struct tvm_err err = { "" };
	if (spool_ids(spool, &ids, &n, &err) < 0 || n == 0) {
		free(ids);
		return 0;
	}
	free(ids);
	char self[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (k <= 0)
		return 0;
	self[k] = 0;
	tvm_log("launch: sending the %d report%s left in the spool %s", n, n == 1 ? "" : "s", spool);
	fflush(NULL);
	pid_t p = fork();
	if (p == 0) {
		char *argv[] = { "trialvm", "spool", "send", "--spool", (char *)spool, "--tries", "2", NULL };
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		signal(SIGINT, SIG_IGN); /* the terminal's ^C is for the trial */
		execv(self, argv);
		_exit(TVM_EXIT_ERROR);
	}
	return p > 0 ? p : 0;
}

/* A package signed by a key the tester has not trusted: on a terminal,
 * its fingerprint shown and the tester asked (trust on first use). True
 * when the key is now in the trust store. */
static bool trust_on_first_use(const char *pkg, const struct package *pk)
{
	uint8_t raw[32];
	char fpr[65], where[PATH_MAX + 80], ans[16] = "";
	struct tvm_err err = { "" };
	if (!isatty(0) || !isatty(2) || pkg_unhex(pk->public_key, raw, 32) < 0)
		return false;
	fprintf(stderr, "%s is signed by vendor key\n  %s\nwhich you have not trusted yet.\n"
			"Is that the fingerprint your vendor gave you? Trust this key [y/N]? ", pkg, pk->fingerprint);
	if (!fgets(ans, sizeof(ans), stdin) || (ans[0] != 'y' && ans[0] != 'Y'))
		return false;
	if (pkg_trust_add(raw, fpr, where, sizeof(where), &err) < 0) {
		tvm_log("error: launch: %s", err.msg);
		return false;
	}
	tvm_log("launch: trusted vendor key %s (%s)", fpr, where);
	return true;
}

int launch_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_launch, argc < 2 ? stderr : stdout);
		return argc < 2 ? TVM_EXIT_USAGE : 0;
	}
	struct launch_cli c;
	int rc = parse_launch(argc, argv, &c);
	if (rc) {
		free(c.run);
		return rc;
	}
	struct launch *l = calloc(1, sizeof(*l));
	struct tvm_err err = { "" };
	char base[PATH_MAX], name[PATH_MAX];
	pid_t sender = 0;
	int status = TVM_EXIT_ERROR;
	if (!l)
		goto out;
	char fetched[PATH_MAX];
	if (download_is_url(c.pkg)) {
		if (download_package(c.pkg, c.refresh, isatty(2), fetched, sizeof(fetched), &err) < 0) {
			tvm_log("error: launch: %s", err.msg);
			goto out;
		}
		c.pkg = fetched;
	}
	int prep = launch_prepare(c.pkg, c.key, l, &err);
	if (prep < 0 && l->pk.fault == PKG_UNTRUSTED && !c.key && trust_on_first_use(c.pkg, &l->pk))
		prep = launch_prepare(c.pkg, c.key, l, &err);
	if (prep < 0) {
		tvm_log("error: launch: %s", err.msg);
		goto out;
	}
	tvm_log("launch: %s %s, signed by vendor key %s (trusted: %s)%s%s; its parts %s %s", l->pk.name,
		l->pk.version, l->pk.fingerprint, l->pk.trusted_by, l->pk.expires[0] ? ", expires " : "", l->pk.expires,
		l->fresh ? "checked into" : "checked, from", l->dir);
	if (c.have_args && l->pk.checkpoint[0]) {
		tvm_log("error: launch: %s starts from the vendor's booted checkpoint, where its program already runs "
			"with the arguments it was given: leave out the arguments after --", c.pkg);
		status = TVM_EXIT_USAGE;
		goto out;
	}
	snprintf(name, sizeof(name), "reports/%s", l->pk.name);
	if (c.report_base)
		snprintf(base, sizeof(base), "%s", c.report_base);
	else if (user_dir(NULL, "XDG_DATA_HOME", ".local/share", name, base, sizeof(base), &err) < 0) {
		tvm_log("error: launch: %s", err.msg);
		goto out;
	}
	char spool[PATH_MAX];
	if (spool_path(c.spool, spool, sizeof(spool), &err) < 0) {
		tvm_log("error: launch: %s", err.msg);
		goto out;
	}
	sender = send_pending(spool);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	struct sigaction sa = { .sa_handler = forward_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	for (long restarts = 0;; restarts++) {
		char session[PATH_MAX], snapdir[PATH_MAX + 16], report[PATH_MAX + 256];
		if ((restarts > 0 && launch_cache_check(l, &err) < 0) ||
		    new_session(base, session, sizeof(session), &err) < 0) {
			tvm_log("error: launch: %s", err.msg);
			status = TVM_EXIT_ERROR;
			break;
		}
		snprintf(snapdir, sizeof(snapdir), "%s/snapshots", session);
		char **v = session_argv(l, &c, session, snapdir);
		if (!v) {
			status = TVM_EXIT_ERROR;
			break;
		}
		status = launch_child(v, 0, &err);
		free(v);
		if (status < 0) {
			tvm_log("error: launch: %s", err.msg);
			status = TVM_EXIT_ERROR;
			break;
		}
		if (!session_report(session, report, sizeof(report))) {
			remove_tree(session); /* nothing to keep */
		} else {
			tvm_log("launch: the session's report and snapshots are kept in %s", session);
			if (status == TVM_EXIT_CRASHED && !stop_sig)
				after_crash(l, &c, spool, session, report);
		}
		if (status != TVM_EXIT_CRASHED || stop_sig || !c.restart)
			break;
		if (restarts >= c.max_restarts) {
			tvm_log("launch: the trial crashed %ld times; not starting another VM (--max-restarts %ld)",
				restarts + 1, c.max_restarts);
			break;
		}
		tvm_log("launch: starting a fresh VM from the package (restart %ld of at most %ld)", restarts + 1,
			c.max_restarts);
	}
out:
	if (sender > 0) {
		int st;
		while (waitpid(sender, &st, 0) < 0 && errno == EINTR)
			;
	}
	if (l)
		launch_free(l);
	free(l);
	free(c.run);
	return status;
}
