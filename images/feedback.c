/* images/feedback.c - trial packages as the masters of report bundles,
 * and `trialvm report bundle|show|rebuild` (feedback.h). */
#include "feedback.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/snapshot.h"
#include "../vmm/util.h"
#include "../reporter/spool.h"
#include "launch.h"

int feedback_master(const struct package *pk, const char *pkg_sha256, const char *dir, const char *ram_path,
		    struct bundle_master *m, struct tvm_err *err)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->package_name, sizeof(m->package_name), "%s", pk->name);
	snprintf(m->package_version, sizeof(m->package_version), "%s", pk->version);
	snprintf(m->package_sha256, sizeof(m->package_sha256), "%s", pkg_sha256);
	snprintf(m->vendor_fingerprint, sizeof(m->vendor_fingerprint), "%s", pk->fingerprint);
	for (int i = 0; i < pk->nparts; i++) {
		const struct package_part *pp = &pk->parts[i];
		if (!strcmp(pp->name, pk->checkpoint)) {
			snprintf(m->checkpoint_sha256, sizeof(m->checkpoint_sha256), "%s", pp->sha256);
			continue;
		}
		struct bundle_master_part *mp = &m->parts[m->nparts++];
		snprintf(mp->name, sizeof(mp->name), "%s", pp->name);
		if ((size_t)snprintf(mp->path, sizeof(mp->path), "%s/%s", dir, pp->name) >= sizeof(mp->path))
			return tvm_seterr(err, "%s: path too long", dir);
		mp->size = pp->size;
		snprintf(mp->sha256, sizeof(mp->sha256), "%s", pp->sha256);
	}
	if (!pk->checkpoint[0])
		return 0;
	char ck[PATH_MAX + 80];
	snprintf(ck, sizeof(ck), "%s/%s", dir, pk->checkpoint);
	struct snap_reader **chain;
	int n;
	if (snapshot_open_chain(ck, &chain, NULL, &n, err) < 0)
		return tvm_seterr(err, "the package's checkpoint: %.3000s", err->msg);
	struct vm_config cfg;
	int rc = n == 1 ? vm_snapshot_config(chain[0], &cfg, err) : tvm_seterr(err, "the checkpoint is not a full snapshot");
	if (rc == 0)
		rc = snapshot_materialize(chain, n, ram_path, err);
	for (int i = 0; i < n; i++)
		snap_close(chain[i]);
	free(chain);
	if (rc < 0)
		return -1;
	snprintf(m->ram_path, sizeof(m->ram_path), "%s", ram_path);
	m->ram_size = cfg.ram_size;
	return 0;
}

/* The master of the package file pkg, its parts extracted into a new
 * directory beside `near` (*tmpdir, which the caller removes). */
static int master_from_package(const char *pkg, const char *key, const char *near, struct package *pk, char *tmpdir,
			       size_t cap, struct bundle_master *m, struct tvm_err *err)
{
	uint8_t md[32];
	char hex[65], ram[PATH_MAX + 16];
	if ((size_t)snprintf(tmpdir, cap, "%s.master-XXXXXX", near) >= cap || !mkdtemp(tmpdir)) {
		tmpdir[0] = 0;
		return tvm_seterr(err, "cannot create a directory beside %s: %s", near, strerror(errno));
	}
	/* The vendor's own package, maybe expired by now: expiry does not matter here. */
	if (sha256_path(pkg, md, err) < 0 || package_verify(pkg, key, 0, tmpdir, pk, err) < 0)
		return tvm_seterr(err, "--master %.3000s", err->msg);
	sha256_hex(md, hex);
	snprintf(ram, sizeof(ram), "%s/checkpoint.ram", tmpdir);
	return feedback_master(pk, hex, tmpdir, ram, m, err);
}

static const char usage_report[] =
	"Usage: trialvm report bundle REPORT_DIR [--master PKG.tvp [--key VENDOR.pub]]\n"
	"                             [--comment TEXT] -o BUNDLE\n"
	"       trialvm report show BUNDLE\n"
	"       trialvm report rebuild BUNDLE --master PKG.tvp [--key VENDOR.pub] -o DIR\n"
	"       trialvm report send REPORT_DIR --master PKG.tvp [--key VENDOR.pub]\n"
	"                           [--comment TEXT] [--spool DIR] [--tries N]\n"
	"\n"
	"Report bundles (README \"Report bundles\"): what goes to the vendor after a\n"
	"crash, holding only what differs from the vendor's master, the package.\n"
	"  bundle   make one of a crash report: its files, the snapshots and the\n"
	"           event log segment it names, as recipes over the pages that are\n"
	"           not in the package (its checkpoint's memory and its parts);\n"
	"           --comment: the tester's words. BUNDLE must not exist.\n"
	"  show     what a bundle holds (the report, the comment, the files and\n"
	"           the bytes to send), its chunks checked\n"
	"  rebuild  every file of the report again in the new directory DIR, byte\n"
	"           for byte (each checked against its sha256), the snapshots and\n"
	"           event log under DIR/snapshots and the package's parts under\n"
	"           DIR/master; prints the command that replays the crash\n"
	"  send     bundle a crash report against its package into the spool and\n"
	"           send it to the package's feedback server with its token (what\n"
	"           launch does after a crash when you agree; README \"The spool\");\n"
	"           it leaves the spool once the server confirmed it\n"
	"--key: the vendor's public key when it is not in the trust store; the\n"
	"package's expiry does not matter here.\n"
	"Exit status: 0; 125 when a file is refused or cannot be written (the\n"
	"reason is said); 126 usage.\n";

/* The replay of a rebuilt report: the segment its report.json names,
 * from DIR, with the package's parts as the images. */
static void print_replay(const char *dir, const struct package *pk)
{
	char cmd[8192];
	int n = snprintf(cmd, sizeof(cmd), "trialvm replay %s", dir);
	if (!strcmp(pk->boot_kind, "linux-image"))
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --image %s/master", dir);
	else if (!strcmp(pk->boot_kind, "trialos"))
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --trialos %s/master/kernel --app %s/master/app", dir, dir);
	else
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --kernel %s/master/kernel%s%s%s", dir,
			      package_part(pk, "initrd") ? " --initrd " : "", package_part(pk, "initrd") ? dir : "",
			      package_part(pk, "initrd") ? "/master/initrd" : "");
	for (int i = 0; i < pk->nparts && n > 0 && (size_t)n < sizeof(cmd); i++)
		if (!strncmp(pk->parts[i].name, "disk", 4))
			n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " --disk %s/master/%s", dir, pk->parts[i].name);
	printf("replay the crash: %s\n", cmd);
}

/* report send: the report bundled into the spool, then sent. */
static int report_send(const char *report, const char *pkgfile, const char *key, const char *comment,
		       const char *spool_given, int tries)
{
	struct package *pk = calloc(1, sizeof(*pk));
	struct bundle_master *m = calloc(1, sizeof(*m));
	struct tvm_err err = { "" };
	char spool[PATH_MAX], tmp[PATH_MAX] = "", id[65], near[PATH_MAX + 16];
	int rc = TVM_EXIT_ERROR, r;
	if (!pk || !m || spool_path(spool_given, spool, sizeof(spool), &err) < 0)
		goto fail;
	snprintf(near, sizeof(near), "%s/.new", spool);
	if ((r = mkdir_p(near, 0700)) < 0) {
		tvm_seterr(&err, "cannot create the spool %s: %s", near, strerror(-r));
		goto fail;
	}
	snprintf(near, sizeof(near), "%s/.new/master", spool);
	if (master_from_package(pkgfile, key, near, pk, tmp, sizeof(tmp), m, &err) < 0)
		goto fail;
	if (!pk->feedback[0]) {
		tvm_seterr(&err, "%s names no feedback server (image build --feedback URL)", pkgfile);
		goto fail;
	}
	struct upload_dest d;
	snprintf(d.url, sizeof(d.url), "%s", pk->feedback);
	snprintf(d.token, sizeof(d.token), "%s", pk->feedback_token);
	char label[256];
	snprintf(label, sizeof(label), "%s %s", pk->name, pk->version);
	if (spool_add(spool, report, m, comment, &d, label, isatty(2), id, &err) < 0)
		goto fail;
	tvm_log("report: saved to the spool as %s (%s)", id, spool);
	struct upload_opts o = { .tries = tries, .max_wait = 60, .progress = isatty(2) };
	enum upload_outcome out = spool_send(spool, id, &o, &err);
	if (out == UPLOAD_DONE) {
		tvm_log("report: sent to %s; the server confirmed it", d.url);
		rc = 0;
	} else {
		tvm_log("error: report send: %s %s; it stays in the spool ('trialvm spool send' tries again)", id, err.msg);
	}
	goto out;
fail:
	tvm_log("error: report send: %s", err.msg);
out:
	if (tmp[0])
		remove_tree(tmp);
	free(pk);
	free(m);
	return rc;
}

int report_cli_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_report, argc < 2 ? stderr : stdout);
		return argc < 2 ? TVM_EXIT_USAGE : 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "bundle") && strcmp(cmd, "show") && strcmp(cmd, "rebuild") && strcmp(cmd, "send"))
		return cli_usage("report", "unknown command '%s'", cmd);
	enum { O_MASTER = 1, O_KEY, O_COMMENT, O_SPOOL, O_TRIES };
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, O_SPOOL },
		{ "tries", required_argument, NULL, O_TRIES },
		{ "master", required_argument, NULL, O_MASTER },
		{ "key", required_argument, NULL, O_KEY },
		{ "comment", required_argument, NULL, O_COMMENT },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *master = NULL, *key = NULL, *comment = NULL, *out = NULL, *spool_given = NULL;
	int c, tries = 4;
	char *end;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "o:", opts, NULL)) != -1) {
		switch (c) {
		case O_MASTER: master = optarg; break;
		case O_KEY: key = optarg; break;
		case O_COMMENT: comment = optarg; break;
		case 'o': out = optarg; break;
		case O_SPOOL: spool_given = optarg; break;
		case O_TRIES:
			tries = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || tries < 1 || tries > 100)
				return cli_usage("report", "--tries %s: give 1 to 100", optarg);
			break;
		default: return cli_usage("report", "unknown or incomplete option '%s'", argv[optind]);
		}
	}
	if (optind + 1 != argc - 1)
		return cli_usage("report", "%s takes one REPORT_DIR or BUNDLE", cmd);
	const char *in = argv[optind + 1];
	bool show = !strcmp(cmd, "show"), rebuild = !strcmp(cmd, "rebuild"), send = !strcmp(cmd, "send");
	if (show && (master || key || comment || out))
		return cli_usage("report", "%s takes no options", "show");
	if ((spool_given || tries != 4) && !send)
		return cli_usage("report", "%s", "--spool and --tries go with send");
	if (send && (!master || out))
		return cli_usage("report", "%s", "send needs --master PKG.tvp (its feedback URL and token) and takes no -o");
	if (!show && !send && !out)
		return cli_usage("report", "%s needs -o", cmd);
	if (rebuild && (!master || comment))
		return cli_usage("report", "%s", "rebuild needs --master PKG.tvp (and takes no --comment)");
	if (key && !master)
		return cli_usage("report", "%s", "--key goes with --master");
	struct tvm_err err = { "" };
	bool progress = isatty(2);
	struct bundle *b = NULL;
	if (show) {
		if (bundle_open(in, &b, &err) < 0 || bundle_check_chunks(b, &err) < 0) {
			tvm_log("error: %s", err.msg);
			bundle_close(b);
			return TVM_EXIT_ERROR;
		}
		bundle_show(b, stdout);
		printf("chunks: all %d present and intact\n", bundle_nchunks(b));
		bundle_close(b);
		return 0;
	}
	struct stat st;
	if (send)
		return report_send(in, master, key, comment, spool_given, tries);
	if (lstat(out, &st) == 0) {
		tvm_log("error: report %s: -o %s exists; give a new path", cmd, out);
		return TVM_EXIT_ERROR;
	}
	struct package *pk = calloc(1, sizeof(*pk));
	struct bundle_master *m = calloc(1, sizeof(*m));
	char tmp[PATH_MAX] = "", path[PATH_MAX], id[65];
	int rc = TVM_EXIT_ERROR;
	if (!pk || !m)
		goto out;
	if (rebuild && bundle_open(in, &b, &err) < 0)
		goto fail;
	if (master && master_from_package(master, key, out, pk, tmp, sizeof(tmp), m, &err) < 0)
		goto fail;
	if (rebuild) {
		if (bundle_rebuild(b, m, out, progress, &err) < 0)
			goto fail;
		/* The package's parts beside the report, for the replay. */
		char dst[PATH_MAX + 16];
		snprintf(dst, sizeof(dst), "%s/master", out);
		snprintf(path, sizeof(path), "%s/checkpoint.ram", tmp);
		unlink(path);
		if (rename(tmp, dst) < 0) {
			tvm_seterr(&err, "cannot move the package's parts to %s: %s", dst, strerror(errno));
			goto fail;
		}
		tmp[0] = 0;
		fsync_dir(out);
		printf("rebuilt %s from bundle %s: every file matches its sha256\n", out, bundle_id(b));
		if (!strcmp(pk->boot_kind, "linux-image") &&
		    launch_image_manifest(dst, pk, &err) < 0)
			goto fail;
		print_replay(out, pk);
		rc = 0;
		goto out;
	}
	if (bundle_create(in, master ? m : NULL, comment, out, NULL, progress, path, sizeof(path), id, &err) < 0)
		goto fail;
	printf("bundle %s: %s\n", id, path);
	rc = 0;
	goto out;
fail:
	tvm_log("error: report %s: %s", cmd, err.msg);
out:
	if (tmp[0])
		remove_tree(tmp);
	bundle_close(b);
	free(pk);
	free(m);
	return rc;
}
