/* images/linux.c - `trialvm image linux`: a Linux master image from a root
 * directory (or a minimal Debian userland) and Debian's kernel package.
 *
 * Everything is built in OUT.tmp-XXXXXX beside OUT and renamed to OUT at
 * the end (each file fsync'ed, then the directory, then its parent): an
 * interrupted build leaves no half image under OUT's name.
 *
 * Facts used: the initramfs is a cpio "newc" archive (Linux
 * Documentation/driver-api/early-userspace/buffer-format.rst); a module's
 * dependencies are the "depends=" (and "softdep=pre:") entries of its
 * .modinfo section; modules.builtin lists what is built into the kernel;
 * `mke2fs -d DIR` fills an ext4 file system from a directory without root
 * privileges. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gelf.h>
#include <getopt.h>
#include <jansson.h>
#include <libelf.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "image.h"
#include "image_int.h"

extern char **environ;

#define MAX_ADD 64
#define MAX_PKGS 64
#define MAX_MODS 512
#define MODULE_MAX (64u << 20)
/* oops=panic: Linux has no panic_on_oops= boot parameter (that name is a
 * sysctl; the kernel hands an unknown word to init) */
#define DEFAULT_CMDLINE "console=ttyS0 quiet oops=panic softlockup_panic=1 hung_task_panic=1"

/* The modules trialvm's devices and /init need; optional ones may be
 * missing from the kernel. crc32c_generic is what ext4's "softdep=pre:
 * crc32c" (a crypto alias) names: metadata checksums need it at mount. */
static const struct { const char *name; bool optional; } wanted_modules[] = {
	{ "virtio_mmio", false }, { "virtio_blk", false },   { "virtio_console", false },
	{ "virtio_rng", true },   { "crc32c_generic", true }, { "ext4", false },
	{ "pvpanic_mmio", true }, { "virtio_pci", true }, /* virtio_pci: the same image boots under QEMU q35 */
};

struct build {
	const char *rootfs, *app, *kernel_dir, *out, *cmdline_extra;
	const char *pkgs[MAX_PKGS];
	int npkgs;
	struct { const char *host, *path; } add[MAX_ADD];
	int nadd;
	char **args;
	int nargs;
	uint64_t mem;
	int cpus;
	char tmp[PATH_MAX], staging[PATH_MAX], kdir[PATH_MAX], release[128];
	/* modules: every .ko of the kernel by name, and the load order */
	struct mod { char name[64]; char path[PATH_MAX]; bool builtin, queued; } *mods;
	int nmods;
	int order[MAX_MODS];
	int norder;
};

static const char usage_linux[] =
	"Usage: trialvm image linux (--rootfs DIR | --debian PACKAGE...) [--add HOST_FILE:PATH]...\n"
	"                           --app PATH -o IMAGE_DIR [options] [-- ARGS...]\n"
	"\n"
	"Build a Linux master image in IMAGE_DIR (which must not exist): Debian's\n"
	"kernel (package linux-image-amd64, fetched with apt-get download into the\n"
	"cache, never installed), an initramfs holding trialvm's /init and the\n"
	"modules it needs (virtio_mmio, virtio_blk, virtio_console, virtio_rng,\n"
	"ext4, pvpanic and what they depend on), and an ext4 root file system made\n"
	"from DIR (mke2fs -d, no root privileges needed). At boot /init mounts it\n"
	"and runs PATH (a program inside it) with ARGS; its output and exit status\n"
	"become 'trialvm run --image IMAGE_DIR''s.\n"
	"\n"
	"  --rootfs DIR          the root file system's contents\n"
	"  --debian PACKAGE...   instead: a minimal Debian userland (mmdebstrap) with\n"
	"                        these packages (the list ends at the next option)\n"
	"  --add HOST_FILE:PATH  also copy HOST_FILE to PATH in the root (repeatable)\n"
	"  --app PATH            the program the guest runs (absolute, in the root)\n"
	"  -o, --output DIR      where the image goes\n"
	"  --kernel-dir DIR      a kernel already unpacked: DIR/vmlinuz, DIR/release,\n"
	"                        DIR/modules/ (as images/fetch-debian-kernel.sh\n"
	"                        --modules writes them) instead of fetching one\n"
	"  --mem SIZE            guest memory (default 512M)\n"
	"  --cpus N              vCPUs (default 2)\n"
	"  --cmdline STR         appended to the kernel command line, which is\n"
	"                        '" DEFAULT_CMDLINE "'\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("trialvm: image linux: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'trialvm image linux --help'.\n", stderr);
	return TVM_EXIT_USAGE;
}

/* Run argv[0] (PATH search) and wait; 0 when it exited 0. */
static int run_tool(char *const argv[], struct tvm_err *err)
{
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (r)
		return tvm_seterr(err, "cannot run %s: %s%s", argv[0], strerror(r),
				  r == ENOENT ? " (install it: see README 'Linux images')" : "");
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return tvm_seterr(err, "waiting for %s: %s", argv[0], strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		return tvm_seterr(err, "%s failed (exit status %d; its messages are above)", argv[0], WEXITSTATUS(st));
	return tvm_seterr(err, "%s was killed by signal %d", argv[0], WTERMSIG(st));
}

static int join(char *out, size_t cap, const char *a, const char *b, struct tvm_err *err)
{
	if ((size_t)snprintf(out, cap, "%s/%s", a, b) >= cap)
		return tvm_seterr(err, "path too long: %s/%s", a, b);
	return 0;
}

/* ---- the kernel ---- */

static int find_kernel(struct build *b, struct tvm_err *err)
{
	if (b->kernel_dir) {
		if (!realpath(b->kernel_dir, b->kdir))
			return tvm_seterr(err, "--kernel-dir %s: %s", b->kernel_dir, strerror(errno));
	} else {
		static const char *const rel[] = { "../images/fetch-debian-kernel.sh",
						   "../lib/trialvm/fetch-debian-kernel.sh" };
		char *script = find_installed("TRIALVM_FETCH_KERNEL", rel, 2);
		if (!script)
			return tvm_seterr(err, "images/fetch-debian-kernel.sh was not found beside trialvm; give "
					  "--kernel-dir DIR");
		const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		int n = cache && cache[0] ? snprintf(b->kdir, sizeof(b->kdir), "%s/trialvm/debian-kernel-amd64", cache)
					  : snprintf(b->kdir, sizeof(b->kdir), "%s/.cache/trialvm/debian-kernel-amd64",
						     home && home[0] ? home : "/tmp");
		if (n < 0 || (size_t)n >= sizeof(b->kdir)) {
			free(script);
			return tvm_seterr(err, "the cache path is too long");
		}
		fprintf(stderr, "trialvm: image linux: Debian's kernel into %s\n", b->kdir);
		char *argv[] = { "sh", script, "--flavor", "amd64", "--modules", b->kdir, NULL };
		int r = run_tool(argv, err);
		free(script);
		if (r < 0)
			return -1;
	}
	char p[PATH_MAX];
	uint8_t *data;
	size_t len;
	if (join(p, sizeof(p), b->kdir, "release", err) < 0 || read_file(p, sizeof(b->release) - 1, &data, &len, err) < 0)
		return tvm_seterr(err, "%s: no kernel release file (%s): give a directory that "
				  "images/fetch-debian-kernel.sh --modules wrote", b->kdir, err->msg);
	memcpy(b->release, data, len);
	b->release[len] = 0;
	b->release[strcspn(b->release, "\n")] = 0;
	free(data);
	return 0;
}

/* ---- modules ---- */

static struct build *walking; /* nftw has no context argument */

static void norm_name(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

static int find_mod(const struct build *b, const char *name)
{
	char n[64];
	snprintf(n, sizeof(n), "%s", name);
	norm_name(n);
	for (int i = 0; i < b->nmods; i++)
		if (!strcmp(b->mods[i].name, n))
			return i;
	return -1;
}

static int add_mod(struct build *b, const char *file, const char *path, bool builtin)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	size_t n = strlen(base);
	if (n < 4 || strcmp(base + n - 3, ".ko") || n - 3 >= 64)
		return 0;
	if (b->nmods % 256 == 0) {
		void *p = realloc(b->mods, (size_t)(b->nmods + 256) * sizeof(*b->mods));
		if (!p)
			return -1;
		b->mods = p;
	}
	struct mod *m = &b->mods[b->nmods++];
	memset(m, 0, sizeof(*m));
	memcpy(m->name, base, n - 3);
	norm_name(m->name);
	snprintf(m->path, sizeof(m->path), "%s", path ? path : "");
	m->builtin = builtin;
	return 0;
}

static int walk_mod(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	/* Only plain .ko files count (add_mod checks the name): Debian's
	 * packages ship modules uncompressed, and fetch-debian-kernel.sh
	 * unpacks them as they are. */
	if (type == FTW_F && S_ISREG(st->st_mode))
		return add_mod(walking, path, path, false) < 0 ? -1 : 0;
	return 0;
}

/* .modinfo's "depends=" and "softdep=pre:" names, comma/space separated,
 * into deps (at most max). */
static int mod_deps(const char *path, char deps[][64], int max, struct tvm_err *err)
{
	struct stat st;
	int fd = open_regular(path, &st, err);
	if (fd < 0)
		return tvm_seterr(err, "module: %s", err->msg);
	int n = 0;
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	size_t shstrndx;
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx) < 0) {
		if (e)
			elf_end(e);
		close(fd);
		return tvm_seterr(err, "module %s is not an ELF file (compressed modules are not supported)", path);
	}
	for (Elf_Scn *s = NULL; (s = elf_nextscn(e, s));) {
		GElf_Shdr sh;
		const char *nm;
		if (!gelf_getshdr(s, &sh) || !(nm = elf_strptr(e, shstrndx, sh.sh_name)) || strcmp(nm, ".modinfo"))
			continue;
		Elf_Data *d = elf_getdata(s, NULL);
		if (!d || !d->d_buf)
			break;
		const char *p = d->d_buf, *end = p + d->d_size;
		while (p < end) {
			size_t len = strnlen(p, (size_t)(end - p));
			const char *v = NULL;
			if (len > 8 && !strncmp(p, "depends=", 8))
				v = p + 8;
			else if (len > 12 && !strncmp(p, "softdep=pre:", 12))
				v = p + 12;
			if (v) {
				char list[1024];
				size_t l = (size_t)(p + len - v) < sizeof(list) - 1 ? (size_t)(p + len - v) : sizeof(list) - 1;
				memcpy(list, v, l);
				list[l] = 0;
				char *save;
				for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
					if (!strcmp(t, "post:"))
						break;
					if (n < max && strlen(t) < 64)
						snprintf(deps[n++], 64, "%s", t);
				}
			}
			p += len + 1;
		}
		break;
	}
	elf_end(e);
	close(fd);
	return n;
}

/* Queue module i after its dependencies (depth bounded: a cycle stops). */
static int queue_mod(struct build *b, int i, int depth, struct tvm_err *err)
{
	struct mod *m = &b->mods[i];
	if (m->builtin || m->queued)
		return 0;
	if (depth > 32)
		return tvm_seterr(err, "module dependencies deeper than 32 at %s (a cycle?)", m->name);
	m->queued = true;
	char deps[32][64];
	int nd = mod_deps(m->path, deps, 32, err);
	if (nd < 0)
		return -1;
	for (int k = 0; k < nd; k++) {
		int j = find_mod(b, deps[k]);
		if (j >= 0 && queue_mod(b, j, depth + 1, err) < 0)
			return -1;
	}
	if (b->norder == MAX_MODS)
		return tvm_seterr(err, "more than %d modules", MAX_MODS);
	b->order[b->norder++] = i;
	return 0;
}

static int resolve_modules(struct build *b, struct tvm_err *err)
{
	char p[PATH_MAX];
	if (join(p, sizeof(p), b->kdir, "modules/modules.builtin", err) < 0)
		return -1;
	FILE *f = fopen(p, "re");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			if (add_mod(b, line, NULL, true) < 0) {
				fclose(f);
				return tvm_seterr(err, "out of memory");
			}
		}
		fclose(f);
	}
	if (elf_version(EV_CURRENT) == EV_NONE)
		return tvm_seterr(err, "libelf: %s", elf_errmsg(-1));
	if (join(p, sizeof(p), b->kdir, "modules/kernel", err) < 0)
		return -1;
	walking = b;
	if (nftw(p, walk_mod, 16, FTW_PHYS) != 0)
		return tvm_seterr(err, "cannot read the kernel's modules in %s: %s", p, strerror(errno));
	for (size_t w = 0; w < sizeof(wanted_modules) / sizeof(wanted_modules[0]); w++) {
		int i = find_mod(b, wanted_modules[w].name);
		if (i < 0 && !wanted_modules[w].optional)
			return tvm_seterr(err, "the kernel in %s has no module %s and does not build it in", b->kdir,
					  wanted_modules[w].name);
		if (i >= 0 && queue_mod(b, i, 0, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- the initramfs (cpio newc) ---- */

struct cpio { int fd; uint64_t off; unsigned ino; struct tvm_err *err; };

static int cpio_put(struct cpio *c, const void *p, size_t n)
{
	int r = write_all(c->fd, p, n);
	if (r < 0)
		return tvm_seterr(c->err, "writing the initramfs: %s", strerror(-r));
	c->off += n;
	static const char zeros[4];
	size_t pad = (4 - c->off % 4) % 4;
	if (pad && (r = write_all(c->fd, zeros, pad)) < 0)
		return tvm_seterr(c->err, "writing the initramfs: %s", strerror(-r));
	c->off += pad;
	return 0;
}

static int cpio_entry(struct cpio *c, const char *name, unsigned mode, unsigned rdev_major, unsigned rdev_minor,
		      const void *data, size_t size)
{
	char h[160];
	size_t nlen = strlen(name) + 1;
	snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ++c->ino, mode, 0u, 0u,
		 (mode & S_IFMT) == S_IFDIR ? 2u : 1u, 0u, size, 0u, 0u, rdev_major, rdev_minor, nlen, 0u);
	int r = write_all(c->fd, h, 110);
	if (r < 0)
		return tvm_seterr(c->err, "writing the initramfs: %s", strerror(-r));
	c->off += 110;
	if (cpio_put(c, name, nlen) < 0)
		return -1;
	return size ? cpio_put(c, data, size) : 0;
}

static int cpio_file(struct cpio *c, const char *name, const char *host, unsigned mode)
{
	uint8_t *data;
	size_t len;
	if (read_file(host, MODULE_MAX, &data, &len, c->err) < 0)
		return -1;
	int r = cpio_entry(c, name, S_IFREG | mode, 0, 0, data, len);
	free(data);
	return r;
}

static int write_initrd(struct build *b, const char *path, struct tvm_err *err)
{
	static const char *const rel[] = { "guests/linux-init", "../lib/trialvm/linux-init" };
	char *init = find_installed("TRIALVM_LINUX_INIT", rel, 2);
	if (!init)
		return tvm_seterr(err, "trialvm's Linux /init (guests/linux-init beside trialvm) was not found; build it "
				  "with 'make'");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(init);
		return tvm_seterr(err, "cannot create %s: %s", path, strerror(errno));
	}
	struct cpio c = { .fd = fd, .err = err };
	static const char *const dirs[] = { "dev", "proc", "sys", "newroot", "trialvm", "trialvm/modules" };
	int r = 0;
	for (size_t i = 0; r == 0 && i < sizeof(dirs) / sizeof(dirs[0]); i++)
		r = cpio_entry(&c, dirs[i], S_IFDIR | 0755, 0, 0, NULL, 0);
	if (r == 0)
		r = cpio_entry(&c, "dev/console", S_IFCHR | 0600, 5, 1, NULL, 0);
	if (r == 0)
		r = cpio_file(&c, "init", init, 0755);
	/* argv: PATH, then ARGS, each NUL-terminated */
	size_t alen = strlen(b->app) + 1;
	for (int i = 0; i < b->nargs; i++)
		alen += strlen(b->args[i]) + 1;
	char *argv = malloc(alen), *p = argv;
	if (!argv)
		r = tvm_seterr(err, "out of memory");
	if (r == 0) {
		p = stpcpy(p, b->app) + 1;
		for (int i = 0; i < b->nargs; i++)
			p = stpcpy(p, b->args[i]) + 1;
		r = alen > 65536 ? tvm_seterr(err, "the program's arguments are longer than 64 KiB")
				 : cpio_entry(&c, "trialvm/argv", S_IFREG | 0644, 0, 0, argv, alen);
	}
	free(argv);
	/* modules, in load order, and their list */
	size_t llen = 0;
	char *list = malloc((size_t)b->norder * 96 + 1);
	if (!list && r == 0)
		r = tvm_seterr(err, "out of memory");
	for (int k = 0; r == 0 && k < b->norder; k++) {
		const struct mod *m = &b->mods[b->order[k]];
		char name[96];
		snprintf(name, sizeof(name), "trialvm/modules/%s.ko", m->name);
		r = cpio_file(&c, name, m->path, 0644);
		llen += (size_t)sprintf(list + llen, "/%s\n", name);
	}
	if (r == 0)
		r = cpio_entry(&c, "trialvm/modules.list", S_IFREG | 0644, 0, 0, list, llen);
	if (r == 0)
		r = cpio_entry(&c, "TRAILER!!!", 0, 0, 0, NULL, 0);
	free(list);
	free(init);
	if (r == 0 && fsync(fd) < 0)
		r = tvm_seterr(err, "cannot write %s: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* ---- the root file system ---- */

static uint64_t tree_bytes;
static int sum_tree(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path, (void)type, (void)ftw;
	tree_bytes += ((uint64_t)st->st_size + 4095) / 4096 * 4096 + 256;
	return 0;
}

static int fill_staging(struct build *b, struct tvm_err *err)
{
	if (b->rootfs) {
		struct stat st;
		if (stat(b->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
			return tvm_seterr(err, "--rootfs %s: not a directory", b->rootfs);
		char src[PATH_MAX + 2];
		snprintf(src, sizeof(src), "%s/.", b->rootfs);
		char *argv[] = { "cp", "-a", src, b->staging, NULL };
		if (mkdir(b->staging, 0755) < 0)
			return tvm_seterr(err, "cannot create %s: %s", b->staging, strerror(errno));
		if (run_tool(argv, err) < 0)
			return -1;
	} else {
		char *argv[MAX_PKGS + 8];
		char include[4096] = "--include=";
		size_t pos = strlen(include);
		for (int i = 0; i < b->npkgs; i++) {
			int n = snprintf(include + pos, sizeof(include) - pos, "%s%s", i ? "," : "", b->pkgs[i]);
			if (n < 0 || (size_t)n >= sizeof(include) - pos)
				return tvm_seterr(err, "--debian: the package list is too long");
			pos += (size_t)n;
		}
		int k = 0;
		argv[k++] = "mmdebstrap";
		argv[k++] = "--variant=minbase";
		argv[k++] = "--quiet";
		argv[k++] = include;
		argv[k++] = "bookworm";
		argv[k++] = b->staging;
		argv[k] = NULL;
		if (run_tool(argv, err) < 0)
			return -1;
	}
	for (int i = 0; i < b->nadd; i++) {
		char dst[PATH_MAX];
		if (join(dst, sizeof(dst), b->staging, b->add[i].path, err) < 0)
			return -1;
		char *slash = strrchr(dst, '/');
		*slash = 0;
		int r = mkdir_p(dst, 0755);
		*slash = '/';
		if (r < 0)
			return tvm_seterr(err, "--add %s: cannot create its directory in the root: %s", b->add[i].path,
					  strerror(-r));
		char *argv[] = { "cp", "-L", "--preserve=mode,timestamps", (char *)b->add[i].host, dst, NULL };
		if (run_tool(argv, err) < 0)
			return tvm_seterr(err, "--add %s:%s: %s", b->add[i].host, b->add[i].path, err->msg);
	}
	static const char *const dirs[] = { "dev", "proc", "sys", "tmp", "root", "run" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char d[PATH_MAX];
		if (join(d, sizeof(d), b->staging, dirs[i], err) < 0)
			return -1;
		if (mkdir(d, 0755) < 0 && errno != EEXIST)
			return tvm_seterr(err, "cannot create /%s in the root: %s", dirs[i], strerror(errno));
	}
	/* The program must be there (a symbolic link is taken as it is: it
	 * resolves inside the guest). */
	char app[PATH_MAX];
	struct stat st;
	if (join(app, sizeof(app), b->staging, b->app + 1, err) < 0)
		return -1;
	if (lstat(app, &st) < 0)
		return tvm_seterr(err, "--app %s: not in the root file system (%s); put it there with --add HOST_FILE:%s",
				  b->app, strerror(errno), b->app);
	if (!S_ISLNK(st.st_mode) && (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)))
		return tvm_seterr(err, "--app %s: not an executable regular file in the root file system", b->app);
	return 0;
}

static int make_ext4(struct build *b, const char *path, struct tvm_err *err)
{
	tree_bytes = 0;
	if (nftw(b->staging, sum_tree, 16, FTW_PHYS) != 0)
		return tvm_seterr(err, "cannot walk %s: %s", b->staging, strerror(errno));
	uint64_t kib = (tree_bytes + tree_bytes / 4) / 1024 + 32 * 1024;
	kib = (kib + 1023) / 1024 * 1024;
	char size[32];
	snprintf(size, sizeof(size), "%lluk", (unsigned long long)kib);
	char *argv[] = { "mke2fs", "-q", "-t", "ext4", "-d", b->staging, "-L", "trialvm-root", "-E", "root_owner=0:0",
			 "-F", (char *)path, size, NULL };
	/* Created here, so that mke2fs -q does not say "Creating regular file". */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return tvm_seterr(err, "cannot create %s: %s", path, strerror(errno));
	close(fd);
	if (run_tool(argv, err) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = fd >= 0 ? fsync(fd) : -1;
	if (fd >= 0)
		close(fd);
	return r < 0 ? tvm_seterr(err, "cannot write %s: %s", path, strerror(errno)) : 0;
}

static int copy_file(const char *src, const char *dst, struct tvm_err *err)
{
	struct stat st;
	int in = open_regular(src, &st, err);
	if (in < 0)
		return -1;
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		close(in);
		return tvm_seterr(err, "cannot create %s: %s", dst, strerror(errno));
	}
	static uint8_t buf[1 << 16];
	int r = 0;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = tvm_seterr(err, "cannot read %s: %s", src, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		int w = write_all(out, buf, (size_t)n);
		if (w < 0) {
			r = tvm_seterr(err, "cannot write %s: %s", dst, strerror(-w));
			break;
		}
	}
	if (r == 0 && fsync(out) < 0)
		r = tvm_seterr(err, "cannot write %s: %s", dst, strerror(errno));
	close(in);
	close(out);
	return r;
}

/* ---- the manifest ---- */

static int write_manifest(struct build *b, struct tvm_err *err)
{
	static const char *const files[IMAGE_NPARTS] = { "vmlinuz", "initrd.cpio", "rootfs.ext4" };
	json_t *parts = json_object();
	for (int i = 0; i < IMAGE_NPARTS; i++) {
		char p[PATH_MAX];
		uint8_t md[32];
		char hex[65];
		struct stat st;
		if (join(p, sizeof(p), b->tmp, files[i], err) < 0 || sha256_path(p, md, err) < 0 || stat(p, &st) < 0) {
			json_decref(parts);
			return -1;
		}
		sha256_hex(md, hex);
		json_object_set_new(parts, image_parts[i],
				    json_pack("{s:s, s:I, s:s}", "file", files[i], "size", (json_int_t)st.st_size, "sha256",
					      hex));
		if (chmod(p, 0444) < 0) {
			json_decref(parts);
			return tvm_seterr(err, "chmod %s: %s", p, strerror(errno));
		}
	}
	char cmdline[4096];
	int n = snprintf(cmdline, sizeof(cmdline), "%s%s%s", DEFAULT_CMDLINE, b->cmdline_extra ? " " : "",
			 b->cmdline_extra ? b->cmdline_extra : "");
	if (n < 0 || (size_t)n >= sizeof(cmdline) - 512) {
		json_decref(parts);
		return tvm_seterr(err, "--cmdline is too long");
	}
	json_t *args = json_array();
	for (int i = 0; i < b->nargs; i++)
		json_array_append_new(args, json_string(b->args[i]));
	json_t *mods = json_array();
	for (int k = 0; k < b->norder; k++)
		json_array_append_new(mods, json_string(b->mods[b->order[k]].name));
	json_t *m = json_pack("{s:s, s:i, s:s, s:s, s:o, s:s, s:s, s:o, s:I, s:i, s:o}", "format", IMAGE_FORMAT,
			      "version", IMAGE_VERSION, "kind", "linux", "kernel_release", b->release, "parts", parts,
			      "cmdline", cmdline, "app", b->app, "args", args, "memory", (json_int_t)b->mem, "cpus",
			      b->cpus, "modules", mods);
	char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(m);
	if (!text)
		return tvm_seterr(err, "out of memory");
	char p[PATH_MAX];
	int r = join(p, sizeof(p), b->tmp, "manifest.json", err);
	int fd = r < 0 ? -1 : open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (r == 0 && fd < 0)
		r = tvm_seterr(err, "cannot create %s: %s", p, strerror(errno));
	if (r == 0) {
		int w = write_all(fd, text, strlen(text));
		if (w == 0)
			w = write_all(fd, "\n", 1);
		if (w < 0 || fsync(fd) < 0)
			r = tvm_seterr(err, "cannot write %s: %s", p, strerror(w < 0 ? -w : errno));
	}
	if (fd >= 0)
		close(fd);
	free(text);
	return r;
}


static int build(struct build *b, struct tvm_err *err)
{
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", b->out);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(parent, sizeof(parent), ".");
	struct stat st;
	if (lstat(b->out, &st) == 0)
		return tvm_seterr(err, "-o %s already exists: give a new directory (images are never overwritten)",
				  b->out);
	if ((size_t)snprintf(b->tmp, sizeof(b->tmp), "%s.tmp-XXXXXX", b->out) >= sizeof(b->tmp) - 32 ||
	    !mkdtemp(b->tmp))
		return tvm_seterr(err, "cannot create a directory beside %s: %s", b->out, strerror(errno));
	int rc = -1;
	char p[PATH_MAX];
	if (join(b->staging, sizeof(b->staging), b->tmp, "root.staging", err) < 0 || find_kernel(b, err) < 0 ||
	    resolve_modules(b, err) < 0 || fill_staging(b, err) < 0)
		goto out;
	if (join(p, sizeof(p), b->tmp, "rootfs.ext4", err) < 0 || make_ext4(b, p, err) < 0)
		goto out;
	remove_tree(b->staging);
	char kp[PATH_MAX];
	if (join(p, sizeof(p), b->tmp, "initrd.cpio", err) < 0 || write_initrd(b, p, err) < 0 ||
	    join(kp, sizeof(kp), b->kdir, "vmlinuz", err) < 0 || join(p, sizeof(p), b->tmp, "vmlinuz", err) < 0 ||
	    copy_file(kp, p, err) < 0 || write_manifest(b, err) < 0)
		goto out;
	if (fsync_dir(b->tmp) < 0 || rename(b->tmp, b->out) < 0) {
		tvm_seterr(err, "cannot move %s to %s: %s", b->tmp, b->out, strerror(errno));
		goto out;
	}
	fsync_dir(parent);
	rc = 0;
out:
	if (rc < 0)
		remove_tree(b->tmp);
	return rc;
}

int image_linux_main(int argc, char **argv)
{
	enum { O_ROOTFS = 256, O_DEBIAN, O_ADD, O_APP, O_KDIR, O_MEM, O_CPUS, O_CMDLINE };
	static const struct option opts[] = {
		{ "rootfs", required_argument, NULL, O_ROOTFS },
		{ "debian", required_argument, NULL, O_DEBIAN },
		{ "add", required_argument, NULL, O_ADD },
		{ "app", required_argument, NULL, O_APP },
		{ "output", required_argument, NULL, 'o' },
		{ "kernel-dir", required_argument, NULL, O_KDIR },
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct build b = { .mem = 512ull << 20, .cpus = 2 };
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:o:h", opts, NULL)) != -1) {
		switch (c) {
		case O_ROOTFS: b.rootfs = optarg; break;
		case O_DEBIAN:
			/* this package and those after it, up to the next option */
			b.pkgs[b.npkgs++] = optarg;
			while (optind < argc && argv[optind][0] != '-') {
				if (b.npkgs == MAX_PKGS)
					return usage("--debian: at most %d packages", MAX_PKGS);
				b.pkgs[b.npkgs++] = argv[optind++];
			}
			break;
		case O_ADD: {
			char *colon = strrchr(optarg, ':');
			if (!colon || colon == optarg || colon[1] != '/')
				return usage("--add %s: give HOST_FILE:PATH, PATH absolute in the guest", optarg);
			if (b.nadd == MAX_ADD)
				return usage("--add: at most %d files", MAX_ADD);
			*colon = 0;
			b.add[b.nadd].host = optarg;
			b.add[b.nadd++].path = colon + 1;
			break;
		}
		case O_APP: b.app = optarg; break;
		case 'o': b.out = optarg; break;
		case O_KDIR: b.kernel_dir = optarg; break;
		case O_MEM:
			if (parse_size(optarg, &b.mem) < 0 || b.mem < (64ull << 20) || b.mem > TVM_MAX_RAM || (b.mem & 0xfff))
				return usage("--mem %s: give a size from 64M to 1T, a multiple of 4K", optarg);
			break;
		case O_CPUS: {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > TVM_MAX_VCPUS)
				return usage("--cpus %s: give a number from 1 to %d", optarg, TVM_MAX_VCPUS);
			b.cpus = (int)n;
			break;
		}
		case O_CMDLINE: b.cmdline_extra = optarg; break;
		case 'h': fputs(usage_linux, stdout); return 0;
		case ':': return usage("option %s needs a value", argv[optind - 1]);
		default: return usage("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc && !strcmp(argv[optind - 1], "--")) {
		b.args = argv + optind;
		b.nargs = argc - optind;
	} else if (optind < argc) {
		return usage("unexpected argument '%s' (the program's arguments go after --)", argv[optind]);
	}
	if (!b.rootfs == !b.npkgs)
		return usage("give one of --rootfs DIR and --debian PACKAGE...");
	if (!b.app || b.app[0] != '/')
		return usage("--app PATH is needed: the program's absolute path inside the root file system");
	if (strlen(b.app) >= sizeof(((struct image *)0)->app))
		return usage("--app: the path is too long");
	if (!b.out || !b.out[0])
		return usage("-o IMAGE_DIR is needed");
	struct tvm_err err = { "" };
	int rc = build(&b, &err);
	free(b.mods);
	if (rc < 0) {
		tvm_log("error: image linux: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	printf("image written to %s: kernel %s, %d modules in the initramfs, program %s\n", b.out, b.release, b.norder,
	       b.app);
	return 0;
}
