/* images/image.c - a master image's manifest: reading and checking it
 * (image_open), and the `trialvm image` command's dispatch. */
#include "image.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/fileio.h"
#include "image_int.h"
#include "package.h"

const char *const image_parts[IMAGE_NPARTS] = { "kernel", "initrd", "rootfs" };

/* One part: {"file": NAME, "size": N, "sha256": HEX}; NAME a plain file name
 * in dir, the file regular, of that size and hash. */
static int check_part(const char *dir, json_t *parts, const char *what, char *path, size_t cap,
		      struct tvm_err *err)
{
	json_t *p = json_object_get(parts, what);
	const char *file = json_string_value(json_object_get(p, "file"));
	const char *sha = json_string_value(json_object_get(p, "sha256"));
	json_t *size = json_object_get(p, "size");
	if (!json_is_object(p) || !file || !sha || !json_is_integer(size) || json_integer_value(size) < 0)
		return tvm_seterr(err, "%s/manifest.json: parts.%s needs \"file\", \"size\" and \"sha256\"", dir, what);
	if (!file[0] || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, ".."))
		return tvm_seterr(err, "%s/manifest.json: parts.%s.file \"%.64s\" is not a plain file name", dir, what,
				  file);
	if ((size_t)snprintf(path, cap, "%s/%s", dir, file) >= cap)
		return tvm_seterr(err, "%s/%s: path too long", dir, file);
	struct stat st;
	int fd = open_regular(path, &st, err);
	if (fd < 0)
		return -1;
	if ((uint64_t)st.st_size != (uint64_t)json_integer_value(size)) {
		close(fd);
		return tvm_seterr(err, "%s is %llu bytes, the manifest says %lld: the image was changed or is "
				  "incomplete; rebuild it with 'trialvm image linux'", path,
				  (unsigned long long)st.st_size, (long long)json_integer_value(size));
	}
	uint8_t md[32];
	char hex[65];
	int r = sha256_fd(fd, md);
	close(fd);
	if (r < 0)
		return tvm_seterr(err, "cannot read %s: %s", path, strerror(-r));
	sha256_hex(md, hex);
	if (strcmp(hex, sha))
		return tvm_seterr(err, "%s does not match its sha256 in the manifest (%.64s): the image was changed; "
				  "rebuild it with 'trialvm image linux'", path, sha);
	return 0;
}

static int copy_string(json_t *m, const char *key, char *out, size_t cap, bool required, const char *dir,
		       struct tvm_err *err)
{
	json_t *v = json_object_get(m, key);
	if (!v && !required) {
		out[0] = 0;
		return 0;
	}
	const char *s = json_string_value(v);
	if (!s || strlen(s) >= cap)
		return tvm_seterr(err, "%s/manifest.json: \"%s\" must be a string of at most %zu bytes", dir, key,
				  cap - 1);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

int image_open(const char *dir, struct image *im, struct tvm_err *err)
{
	memset(im, 0, sizeof(*im));
	char path[PATH_MAX];
	char adir[PATH_MAX];
	if (!realpath(dir, adir))
		return tvm_seterr(err, "image %s: %s", dir, strerror(errno));
	struct stat st;
	if (stat(adir, &st) < 0 || !S_ISDIR(st.st_mode))
		return tvm_seterr(err, "image %s is not a directory (give the directory 'trialvm image linux -o' wrote)",
				  dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/manifest.json", adir) >= sizeof(path))
		return tvm_seterr(err, "image %s: path too long", dir);
	uint8_t *data;
	size_t len;
	if (read_file(path, IMAGE_MANIFEST_MAX, &data, &len, err) < 0)
		return -1;
	json_error_t je;
	json_t *m = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	free(data);
	if (!m || !json_is_object(m)) {
		json_decref(m);
		return tvm_seterr(err, "%s: not a JSON object (line %d: %s)", path, je.line, je.text);
	}
	int rc = -1;
	const char *format = json_string_value(json_object_get(m, "format"));
	json_t *ver = json_object_get(m, "version");
	json_t *mem = json_object_get(m, "memory"), *cpus = json_object_get(m, "cpus");
	if (!format || strcmp(format, IMAGE_FORMAT)) {
		tvm_seterr(err, "%s: \"format\" is not \"%s\": not a trialvm image", path, IMAGE_FORMAT);
		goto out;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) != IMAGE_VERSION) {
		tvm_seterr(err, "%s: format version %lld; this trialvm reads version %d (a newer trialvm wrote it?)", path,
			   json_is_integer(ver) ? (long long)json_integer_value(ver) : -1LL, IMAGE_VERSION);
		goto out;
	}
	if (!json_is_integer(mem) || json_integer_value(mem) < (json_int_t)TVM_MIN_RAM ||
	    json_integer_value(mem) > (json_int_t)TVM_MAX_RAM || (json_integer_value(mem) & 0xfff) ||
	    !json_is_integer(cpus) || json_integer_value(cpus) < 1 || json_integer_value(cpus) > TVM_MAX_VCPUS) {
		tvm_seterr(err, "%s: \"memory\" (bytes, a multiple of 4K from 2M to 1T) or \"cpus\" (1 to %d) is wrong",
			   path, TVM_MAX_VCPUS);
		goto out;
	}
	im->mem = (uint64_t)json_integer_value(mem);
	im->cpus = (int)json_integer_value(cpus);
	if (copy_string(m, "cmdline", im->cmdline, sizeof(im->cmdline), true, adir, err) < 0 ||
	    copy_string(m, "app", im->app, sizeof(im->app), true, adir, err) < 0 ||
	    copy_string(m, "kernel_release", im->release, sizeof(im->release), false, adir, err) < 0)
		goto out;
	json_t *parts = json_object_get(m, "parts");
	char *paths[IMAGE_NPARTS] = { im->kernel, im->initrd, im->rootfs };
	for (int i = 0; i < IMAGE_NPARTS; i++)
		if (check_part(adir, parts, image_parts[i], paths[i], PATH_MAX, err) < 0)
			goto out;
	rc = 0;
out:
	json_decref(m);
	return rc;
}

static const char usage_image[] =
	"Usage: trialvm image linux (--rootfs DIR | --debian PACKAGE...) [--add HOST_FILE:PATH]...\n"
	"                           --app PATH -o IMAGE_DIR [options] [-- ARGS...]\n"
	"       trialvm image show IMAGE_DIR\n"
	"       trialvm image build --name N --version V --vendor-key KEY.pem\n"
	"                           (--image DIR | --app PROGRAM | --kernel FILE) -o PKG.tvp\n"
	"       trialvm image verify PKG.tvp [--key VENDOR.pub]\n"
	"\n"
	"linux: build a vendor's master image: Debian's kernel, an initramfs with\n"
	"trialvm's /init and the modules it needs, and an ext4 root file system\n"
	"holding the vendor's program PATH, which the guest runs at boot (with\n"
	"ARGS). Boot it with 'trialvm run --image IMAGE_DIR'. 'show' checks an\n"
	"image and prints it. build: a signed trial package of a master image or\n"
	"a program (README \"Trial packages\"); verify: check one as a launch does.\n"
	"Run 'trialvm image linux --help' (build, verify) for the options.\n";

int image_cli_main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_image, argc < 2 ? stderr : stdout);
		return argc < 2 ? TVM_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "linux"))
		return image_linux_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "build"))
		return package_build_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return package_verify_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "show")) {
		if (argc != 3) {
			fprintf(stderr, "trialvm: image show takes one IMAGE_DIR\nTry 'trialvm image --help'.\n");
			return TVM_EXIT_USAGE;
		}
		struct image im;
		struct tvm_err err = { "" };
		if (image_open(argv[2], &im, &err) < 0) {
			tvm_log("error: %s", err.msg);
			return TVM_EXIT_ERROR;
		}
		printf("image %s: every part matches its sha256\n  kernel   %s (%s)\n  initrd   %s\n  rootfs   %s\n"
		       "  app      %s\n  cmdline  %s\n  machine  %llu MiB, %d vCPUs\n",
		       argv[2], im.kernel, im.release[0] ? im.release : "release unknown", im.initrd, im.rootfs, im.app,
		       im.cmdline, (unsigned long long)(im.mem >> 20), im.cpus);
		return 0;
	}
	fprintf(stderr, "trialvm: unknown image command '%s'\nTry 'trialvm image --help'.\n", argv[1]);
	return TVM_EXIT_USAGE;
}

int image_args_append(char *cmdline, size_t cap, char *const *args, int nargs, struct tvm_err *err)
{
	/* Linux hands /init at most 32 words (CONFIG_INIT_ENV_ARG_LIMIT; more
	 * panic it at boot): its name, the marker, and IMAGE_ARGS_MAX, which
	 * leaves room for unknown boot words the kernel also passes on. */
	if (nargs > IMAGE_ARGS_MAX)
		return tvm_seterr(err, "%d arguments for the program; Linux passes at most %d through its command line",
				  nargs, IMAGE_ARGS_MAX);
	size_t pos = strnlen(cmdline, cap);
	int n = snprintf(cmdline + pos, cap - pos, "%s-- %s", pos ? " " : "", TVM_INIT_ARGS_MARKER);
	if (n < 0 || (size_t)n >= cap - pos)
		return tvm_seterr(err, "the command line is longer than %zu bytes", cap - 1);
	pos += (size_t)n;
	for (int i = 0; i < nargs; i++) {
		for (const unsigned char *c = (const unsigned char *)args[i]; *c; c++)
			if (*c == '"' || *c < 0x20 || *c == 0x7f)
				return tvm_seterr(err, "argument %d (\"%.40s\") holds %s, which Linux's command line cannot "
						  "pass to the program", i + 1, args[i],
						  *c == '"' ? "a '\"'" : "a control character");
		if (!strcmp(args[i], "--"))
			return tvm_seterr(err, "argument %d is \"--\", where Linux's command line ends the program's "
					  "arguments", i + 1);
		/* "WORD": Linux's parser drops the quotes and keeps the spaces. */
		n = snprintf(cmdline + pos, cap - pos, " \"%s\"", args[i]);
		if (n < 0 || (size_t)n >= cap - pos)
			return tvm_seterr(err, "the program's arguments do not fit in the %zu-byte command line", cap - 1);
		pos += (size_t)n;
	}
	return 0;
}
