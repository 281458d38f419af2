/* images/package_cli.c - `trialvm image build`, `image verify` and
 * `trialvm trust` (package.h), over package.c. */
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
#include "launch.h"
#include "package_int.h"

#define IO_CHUNK (1u << 20)

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

/* The booted checkpoint: the trial run as launch runs it (its parts linked
 * by their part names into DIR, a new directory beside OUT), stopped when
 * its console prints `at` (trialvm snapshot checkpoint, a child process);
 * the snapshot is DIR/checkpoint. The caller removes DIR. */
static int make_checkpoint(struct package *pk, const struct bpart *parts, int np, const char *at, unsigned timeout,
			   const char *out, char *dir, size_t cap, struct tvm_err *err)
{
	if ((size_t)snprintf(dir, cap, "%s.checkpoint-XXXXXX", out) >= cap || !mkdtemp(dir))
		return tvm_seterr(err, "cannot create a directory beside %s: %s", out, strerror(errno));
	char link[PATH_MAX + 80], real[PATH_MAX], ckpt[PATH_MAX + 16];
	for (int i = 0; i < np; i++) {
		snprintf(link, sizeof(link), "%s/%s", dir, parts[i].name);
		if (!realpath(parts[i].path, real) || symlink(real, link) < 0)
			return tvm_seterr(err, "cannot link %s into %s: %s", parts[i].path, dir, strerror(errno));
		struct package_part *pp = &pk->parts[pk->nparts++];
		snprintf(pp->name, sizeof(pp->name), "%.63s", parts[i].name);
		snprintf(pp->sha256, sizeof(pp->sha256), "%s", parts[i].sha);
		pp->size = parts[i].size;
	}
	if (!strcmp(pk->boot_kind, "linux-image") && launch_image_manifest(dir, pk, err) < 0)
		return -1;
	char *argv[LAUNCH_MAX_ARGS + PACKAGE_MAX_ARGS + 16] = { "trialvm", "snapshot", "checkpoint" };
	int argc = 3, first = 3;
	int rc = launch_run_args(pk, dir, false, argv, &argc, LAUNCH_MAX_ARGS, err);
	int nalloc = argc; /* argv[first..nalloc) are launch_run_args's strdup's */
	snprintf(ckpt, sizeof(ckpt), "%s/checkpoint", dir);
	if (rc == 0) {
		argv[argc++] = "-q";
		argv[argc++] = "--no-report";
		argv[argc++] = "--at-console";
		argv[argc++] = (char *)at;
		argv[argc++] = "-o";
		argv[argc++] = ckpt;
		if (pk->nargs)
			argv[argc++] = "--";
		for (int i = 0; i < pk->nargs; i++)
			argv[argc++] = pk->args[i];
		tvm_log("image build: booting the trial for its checkpoint at the console's \"%s\"", at);
		rc = launch_child(argv, timeout, err);
		if (rc > 0)
			rc = tvm_seterr(err, "the trial did not reach its checkpoint (trialvm snapshot checkpoint ended with "
					     "status %d; its messages are above)", rc);
	}
	for (int i = first; i < nalloc; i++)
		free(argv[i]);
	return rc < 0 ? -1 : 0;
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
	"  --feedback-token TOKEN  the bearer token launch uploads them with (an\n"
	"                       upload-only token of the feedback server)\n"
	"  --checkpoint-at STRING  boot the trial now, wait until its console\n"
	"                       prints STRING (its \"ready\" line), and ship that\n"
	"                       machine as the booted checkpoint every launch\n"
	"                       starts from ('trialvm snapshot checkpoint'; needs\n"
	"                       KVM; --checkpoint-timeout SECS, default 600)\n"
	"  -o PKG.tvp           the package (written to a temporary name, flushed,\n"
	"                       renamed)\n";

int package_build_main(int argc, char **argv)
{
	enum { O_NAME = 1, O_VERSION, O_KEY, O_IMAGE, O_APP, O_KERNEL, O_INITRD, O_DISK, O_CMDLINE, O_MEM, O_CPUS,
	       O_EXPIRES, O_FEEDBACK, O_CHECKPOINT, O_TOKEN, O_CKPT_TIMEOUT, O_HELP };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },	     { "version", required_argument, NULL, O_VERSION },
		{ "vendor-key", required_argument, NULL, O_KEY },    { "image", required_argument, NULL, O_IMAGE },
		{ "app", required_argument, NULL, O_APP },	     { "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },     { "disk", required_argument, NULL, O_DISK },
		{ "cmdline", required_argument, NULL, O_CMDLINE },   { "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },	     { "expires", required_argument, NULL, O_EXPIRES },
		{ "feedback", required_argument, NULL, O_FEEDBACK }, { "checkpoint-at", required_argument, NULL, O_CHECKPOINT },
		{ "feedback-token", required_argument, NULL, O_TOKEN },
		{ "checkpoint-timeout", required_argument, NULL, O_CKPT_TIMEOUT },
		{ "help", no_argument, NULL, O_HELP },		     { NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *version = NULL, *keyfile = NULL, *imgdir = NULL, *app = NULL, *kernel = NULL;
	const char *initrd = NULL, *cmdline = NULL, *expires = NULL, *feedback = NULL, *out = NULL;
	const char *checkpoint_at = NULL, *token = NULL;
	unsigned ckpt_timeout = 600;
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
			checkpoint_at = optarg;
			if (!optarg[0] || strlen(optarg) > 256) {
				fprintf(stderr, "trialvm: image build: --checkpoint-at: give 1 to 256 bytes\n");
				return TVM_EXIT_USAGE;
			}
			break;
		case O_TOKEN:
			token = optarg;
			for (const char *t = optarg; *t; t++)
				if (*t <= ' ' || *t > '~' || t - optarg >= 255) {
					fprintf(stderr, "trialvm: image build: --feedback-token: give up to 255 printable "
							"ASCII characters, no spaces\n");
					return TVM_EXIT_USAGE;
				}
			break;
		case O_CKPT_TIMEOUT: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 86400) {
				fprintf(stderr, "trialvm: image build: --checkpoint-timeout %s: give 1 to 86400 seconds\n",
					optarg);
				return TVM_EXIT_USAGE;
			}
			ckpt_timeout = (unsigned)v;
			break;
		}
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
	    (nargs > 0 && !app) || nargs > PACKAGE_MAX_ARGS) {
		fprintf(stderr, "trialvm: image build: %s\nTry 'trialvm image build --help'.\n",
			missing ? "give --name, --version, --vendor-key and -o"
			: nargs > 0 && !app ? "arguments after -- are for --app's program"
			: nargs > PACKAGE_MAX_ARGS ? "more than 28 arguments for the program"
			: imgdir ? "--image goes with none of --app, --kernel, --initrd"
				 : "give what the trial runs: --image, --app or --kernel");
		return TVM_EXIT_USAGE;
	}
	for (int i = 0; i < nargs; i++)
		if (strlen(args[i]) >= sizeof(((struct package *)0)->args[0])) {
			fprintf(stderr, "trialvm: image build: argument %d is longer than 255 bytes\n", i + 1);
			return TVM_EXIT_USAGE;
		}
	struct tvm_err err = { "" };
	time_t now = time(NULL), exp = 0;
	if (expires && pkg_parse_date(expires, &exp) < 0) {
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
	EVP_PKEY *key = pkg_load_key(keyfile, true, &err);
	uint8_t raw[32];
	char fpr[65];
	if (!key || pkg_key_raw(key, raw) < 0) {
		tvm_log("error: image build: --vendor-key %s", err.msg[0] ? err.msg : "has no public half");
		EVP_PKEY_free(key);
		return TVM_EXIT_ERROR;
	}
	pkg_fingerprint(raw, fpr);

	/* The parts and how they boot. */
	struct bpart parts[PACKAGE_MAX_PARTS];
	int np = 0;
	struct image im;
	char *trialos = NULL;
	const char *kind = "kernel", *appname = "";
	char cmd[4096] = "";
	char ckdir[PATH_MAX] = "", ckfile[PATH_MAX + 16];
	struct package *ckpk = NULL;
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
	if (checkpoint_at) {
		if (!(ckpk = calloc(1, sizeof(*ckpk)))) {
			tvm_log("error: image build: out of memory");
			goto out;
		}
		snprintf(ckpk->boot_kind, sizeof(ckpk->boot_kind), "%s", kind);
		snprintf(ckpk->cmdline, sizeof(ckpk->cmdline), "%s", cmd);
		snprintf(ckpk->app, sizeof(ckpk->app), "%s", appname);
		ckpk->mem = mem ? mem : 256ull << 20;
		ckpk->cpus = cpus ? cpus : 1;
		for (int i = 0; i < nargs; i++)
			snprintf(ckpk->args[ckpk->nargs++], sizeof(ckpk->args[0]), "%s", args[i]);
		if (make_checkpoint(ckpk, parts, np, checkpoint_at, ckpt_timeout, out, ckdir, sizeof(ckdir), &err) < 0) {
			tvm_log("error: image build: --checkpoint-at: %s", err.msg);
			goto out;
		}
		snprintf(parts[np].name, sizeof(parts[np].name), "checkpoint");
		snprintf(ckfile, sizeof(ckfile), "%s/checkpoint", ckdir);
		parts[np].path = ckfile;
		if (hash_file(&parts[np++], &err) < 0) {
			tvm_log("error: image build: the checkpoint: %s", err.msg);
			goto out;
		}
	}

	/* The manifest, signed. */
	char created[32], exps[32] = "";
	pkg_fmt_time(now, created);
	if (expires) {
		pkg_fmt_time(exp, exps);
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
	json_t *m = json_pack("{s:s,s:i,s:s,s:s,s:s,s:o,s:o,s:o,s:{s:s,s:s,s:s},s:{s:I,s:i},s:{s:s,s:s,s:s,s:O,s:o,s:o},"
			      "s:O,s:o}",
			      "format", PACKAGE_FORMAT, "version", PACKAGE_VERSION, "name", name, "package_version", version,
			      "created", created, "expires", expires ? json_string(exps) : json_null(), "feedback",
			      feedback ? json_string(feedback) : json_null(), "feedback_token",
			      token ? json_string(token) : json_null(), "vendor_key", "algorithm", "ed25519",
			      "public", pubhex, "fingerprint", fpr, "machine", "mem",
			      (json_int_t)(mem ? mem : 256ull << 20), "cpus", cpus ? cpus : 1, "boot", "kind", kind,
			      "cmdline", cmd, "app", appname, "args", argsj, "checkpoint",
			      checkpoint_at ? json_string("checkpoint") : json_null(), "checkpoint_at",
			      checkpoint_at ? json_string(checkpoint_at) : json_null(), "devices", devices, "parts", pj);
	char *mtext = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
	json_decref(m);
	uint8_t sig[64];
	if (!mtext || pkg_sign(key, mtext, strlen(mtext), sig) < 0) {
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
	if (ckdir[0])
		remove_tree(ckdir);
	free(ckpk);
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
	if (pkg_trust_dir(dir, sizeof(dir), &err) < 0) {
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
		if (pkg_unhex(argv[2], tmp, 32) < 0) {
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
		if (pkg_unhex(pk.public_key, raw, 32) < 0)
			return TVM_EXIT_ERROR;
	} else {
		EVP_PKEY *k = pkg_load_key(src, false, &err);
		if (!k || pkg_key_raw(k, raw) < 0) {
			tvm_log("error: trust add: %s", err.msg[0] ? err.msg : "the key has no public half");
			EVP_PKEY_free(k);
			return TVM_EXIT_ERROR;
		}
		EVP_PKEY_free(k);
	}
	if (pkg_trust_add(raw, fpr, where, sizeof(where), &err) < 0) {
		tvm_log("error: trust add: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	printf("trusted vendor key %s (%s)\n", fpr, where);
	return 0;
}
