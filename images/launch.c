/* images/launch.c - `trialvm launch PKG`: a checked package's parts in the
 * content-addressed cache, and the run they make (launch.h). */
#include "launch.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/util.h"
#include "image.h"

static int cache_root(char *out, size_t cap, struct tvm_err *err)
{
	const char *c = getenv("TRIALVM_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	int n = c && *c   ? snprintf(out, cap, "%s/packages", c)
		: x && *x ? snprintf(out, cap, "%s/trialvm/packages", x)
		: h && *h ? snprintf(out, cap, "%s/.cache/trialvm/packages", h)
			  : -1;
	if (n < 0)
		return tvm_seterr(err, "no cache directory: set HOME, XDG_CACHE_HOME or TRIALVM_CACHE");
	if ((size_t)n >= cap)
		return tvm_seterr(err, "the cache directory's path is too long");
	return 0;
}

static const struct package_part *part_of(const struct package *pk, const char *name)
{
	for (int i = 0; i < pk->nparts; i++)
		if (!strcmp(pk->parts[i].name, name))
			return &pk->parts[i];
	return NULL;
}

/* A linux-image package's parts make a master image directory: its
 * manifest, in the format image_open reads. */
static int write_image_manifest(const char *dir, const struct package *pk, struct tvm_err *err)
{
	const char *names[3] = { "kernel", "initrd", "rootfs" };
	json_t *parts = json_object();
	for (int i = 0; i < 3; i++) {
		const struct package_part *p = part_of(pk, names[i]);
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

static int remove_tree(const char *dir, const struct package *pk)
{
	char path[PATH_MAX + 80];
	for (int i = 0; i < pk->nparts; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pk->parts[i].name);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	unlink(path);
	return rmdir(dir);
}

/* The package checked, its parts in the cache (extracted there while
 * they are checked, once per package content). */
static int to_cache(const char *pkg, const char *key, struct package *pk, char *dir, size_t cap, bool *fresh,
		    struct tvm_err *err)
{
	char root[PATH_MAX], hex[65];
	uint8_t md[32];
	if (cache_root(root, sizeof(root), err) < 0 || sha256_path(pkg, md, err) < 0)
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
		if (remove_tree(dir, pk) < 0)
			return tvm_seterr(err, "cannot clear the changed cache %s: %s (delete it)", dir, strerror(errno));
	}
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", dir);
	if (!mkdtemp(tmp))
		return tvm_seterr(err, "cannot create %s: %s", tmp, strerror(errno));
	if (package_verify(pkg, key, time(NULL), tmp, pk, err) < 0 ||
	    (!strcmp(pk->boot_kind, "linux-image") && write_image_manifest(tmp, pk, err) < 0)) {
		remove_tree(tmp, pk);
		return -1;
	}
	if (fsync_dir(tmp) < 0 || rename(tmp, dir) < 0) {
		int e = errno;
		remove_tree(tmp, pk);
		if (e == EEXIST || e == ENOTEMPTY) /* another launch got there first */
			return cache_intact(dir, pk) ? 0 : tvm_seterr(err, "the package cache %s is not intact", dir);
		return tvm_seterr(err, "cannot move the checked parts to %s: %s", dir, strerror(e));
	}
	fsync_dir(root);
	*fresh = true;
	return 0;
}

int launch_prepare(const char *pkg, const char *key, struct launch *l, struct tvm_err *err)
{
	memset(l, 0, sizeof(*l));
	bool fresh;
	if (to_cache(pkg, key, &l->pk, l->dir, sizeof(l->dir), &fresh, err) < 0)
		return -1;
	l->fresh = fresh;
	const struct package *pk = &l->pk;
	char buf[PATH_MAX + 80];
#define ARG(s)                                                                                \
	do {                                                                                  \
		if (l->argc >= LAUNCH_MAX_ARGS - 1 || !(l->argv[l->argc++] = strdup(s)))       \
			return tvm_seterr(err, "the package makes too long a command line"); \
	} while (0)
#define PART_ARG(opt, name)                                              \
	do {                                                             \
		snprintf(buf, sizeof(buf), "%s/%s", l->dir, name);       \
		ARG(opt);                                                \
		ARG(buf);                                                \
	} while (0)
	if (!strcmp(pk->boot_kind, "linux-image")) {
		ARG("--image");
		ARG(l->dir);
	} else if (!strcmp(pk->boot_kind, "trialos")) {
		if (!part_of(pk, "kernel") || !part_of(pk, "app"))
			return tvm_seterr(err, "%s boots a trialos program and lacks its kernel or app part", pkg);
		PART_ARG("--trialos", "kernel");
		PART_ARG("--app", "app");
	} else if (!strcmp(pk->boot_kind, "kernel")) {
		if (!part_of(pk, "kernel"))
			return tvm_seterr(err, "%s has no kernel part", pkg);
		PART_ARG("--kernel", "kernel");
		if (part_of(pk, "initrd"))
			PART_ARG("--initrd", "initrd");
	} else {
		return tvm_seterr(err, "%s boots \"%s\", which this trialvm does not know: update trialvm", pkg,
				  pk->boot_kind);
	}
	for (int i = 0; i < pk->nparts; i++)
		if (!strncmp(pk->parts[i].name, "disk", 4))
			PART_ARG("--disk", pk->parts[i].name);
	if (strcmp(pk->boot_kind, "linux-image")) {
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
	ARG("--on-crash");
	ARG("restart");
	return 0;
#undef ARG
#undef PART_ARG
}

void launch_free(struct launch *l)
{
	for (int i = 0; i < l->argc; i++)
		free(l->argv[i]);
	l->argc = 0;
}
