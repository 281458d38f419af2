/* Read-only file system over a cpio (newc) archive, the file descriptor
 * table, the console (fds 0-2), and the device nodes /dev/vd[a-z] (virtio-blk,
 * Linux block-device semantics) and /dev/hvc0 (virtio-console, write only).
 * The archive is untrusted input. */
#include "kernel.h"

#define ENOENT 2
#define EPERM 1
#define EIO 5
#define EBADF 9
#define EFAULT 14
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define EMFILE 24
#define ENOTTY 25
#define ESPIPE 29
#define EROFS 30
#define ERANGE 34
#define ENAMETOOLONG 36
#define ENOSYS 38
#define ELOOP 40

#define S_IFMT 0170000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFBLK 0060000
#define S_IFREG 0100000
#define S_IFLNK 0120000

#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_EMPTY_PATH 0x1000
#define O_ACCMODE 3
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_DIRECTORY 0200000
#define O_CLOEXEC 02000000

#define MAX_FILES 2048
#define NAME_POOL (128 * 1024)
#define PATH_MAX_ 1024
#define MAX_FDS 64

static const u8 *arch;
static u64 arch_size, arch_phys;
static bool indexed;
static struct file_ent files[MAX_FILES];
static unsigned nr_files;
static char name_pool[NAME_POOL];
static unsigned pool_used;
static char cwd[PATH_MAX_];     /* normalised, no leading slash, "" = root */

enum { FD_FREE, FD_CONSOLE, FD_FILE, FD_DIR, FD_NULL, FD_RANDOM, FD_BLK, FD_HVC };
/* FD_BLK: ent = block device index (virtio.c) */
struct fdesc { u8 type; bool cloexec; u32 flags; int ent; u64 off; };
static struct fdesc fds[MAX_FDS] = {
	[0] = { FD_CONSOLE, false, 0, -1, 0 },
	[1] = { FD_CONSOLE, false, 1, -1, 0 },
	[2] = { FD_CONSOLE, false, 1, -1, 0 },
};

void fs_init(const u8 *archive, u64 size, u64 phys)
{
	arch = archive;
	arch_size = size;
	arch_phys = phys;
}

static bool hex8(const u8 *p, u32 *out)
{
	u32 v = 0;
	for (int i = 0; i < 8; i++) {
		u8 c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
		else return false;
	}
	*out = v;
	return true;
}

/* Normalise `in` (relative to cwd unless absolute) into out: "a/b", "" = root. */
static int normalize(const char *in, const char *base, char *out, size_t outsz)
{
	size_t n = 0;
	if (in[0] != '/' && base) {
		size_t bl = strlen(base);
		if (bl >= outsz)
			return -ENAMETOOLONG;
		memcpy(out, base, bl);
		n = bl;
	}
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t l = p - s;
		if (l == 1 && s[0] == '.')
			continue;
		if (l == 2 && s[0] == '.' && s[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		if (n + l + 2 > outsz)
			return -ENAMETOOLONG;
		if (n)
			out[n++] = '/';
		memcpy(out + n, s, l);
		n += l;
	}
	out[n] = 0;
	return 0;
}

static void index_archive(void)
{
	indexed = true;
	u64 off = 0;
	while (arch && off + 110 <= arch_size && nr_files < MAX_FILES) {
		const u8 *h = arch + off;
		u32 f[13];
		if (memcmp(h, "070701", 6) && memcmp(h, "070702", 6))
			break;
		bool ok = true;
		for (int i = 0; i < 13 && ok; i++)
			ok = hex8(h + 6 + 8 * i, &f[i]);
		if (!ok)
			break;
		u32 ino = f[0], mode = f[1], nlink = f[4], mtime = f[5], fsize = f[6], namesize = f[11];
		if (namesize == 0 || namesize > PATH_MAX_ || off + 110 + namesize > arch_size)
			break;
		const char *name = (const char *)h + 110;
		if (name[namesize - 1] != 0)
			break;
		u64 doff = ALIGN_UP(off + 110 + namesize, 4);
		if (doff > arch_size || fsize > arch_size - doff)
			break;
		if (!strcmp(name, "TRAILER!!!"))
			break;
		char norm[PATH_MAX_];
		if (normalize(name, NULL, norm, sizeof norm) == 0) {
			size_t nl = strlen(norm);
			if (pool_used + nl + 1 > NAME_POOL)
				break;
			/* a later entry with the same name replaces an earlier one */
			int slot = -1;
			for (unsigned i = 0; i < nr_files; i++)
				if (files[i].namelen == nl && !memcmp(files[i].name, norm, nl)) {
					slot = i;
					break;
				}
			if (slot < 0)
				slot = nr_files++;
			char *dst = name_pool + pool_used;
			memcpy(dst, norm, nl + 1);
			pool_used += nl + 1;
			files[slot] = (struct file_ent){ dst, nl, mode, arch + doff, fsize, arch_phys + doff,
							ino, mtime, nlink };
		}
		off = ALIGN_UP(doff + fsize, 4);
	}
}

/* Returns the entry index, -1 for an (implicit) directory, or -ENOENT. */
static int find(const char *norm)
{
	if (!indexed)
		index_archive();
	size_t nl = strlen(norm);
	if (nl == 0)
		return -1;
	for (unsigned i = 0; i < nr_files; i++)
		if (files[i].namelen == nl && !memcmp(files[i].name, norm, nl))
			return i;
	for (unsigned i = 0; i < nr_files; i++)
		if (files[i].namelen > nl && files[i].name[nl] == '/' && !memcmp(files[i].name, norm, nl))
			return -1;
	return -ENOENT;
}

/* Resolve a user path to an entry (following a final symlink if asked). */
static int resolve(int dirfd, const char *path, bool follow, char *norm)
{
	const char *base = cwd;
	char dirbuf[PATH_MAX_];
	if (path[0] != '/' && dirfd != AT_FDCWD) {
		if (dirfd < 0 || dirfd >= MAX_FDS || fds[dirfd].type == FD_FREE)
			return -EBADF;
		if (fds[dirfd].type != FD_DIR)
			return -ENOTDIR;
		int e = fds[dirfd].ent;
		if (e < 0)
			dirbuf[0] = 0;
		else
			memcpy(dirbuf, files[e].name, files[e].namelen + 1);
		base = dirbuf;
	}
	int r = normalize(path, base, norm, PATH_MAX_);
	if (r < 0)
		return r;
	for (int depth = 0;; depth++) {
		int e = find(norm);
		if (e < 0 || !follow || (files[e].mode & S_IFMT) != S_IFLNK)
			return e;
		if (depth == 8)
			return -ELOOP;
		char target[PATH_MAX_], dir[PATH_MAX_];
		if (files[e].size >= PATH_MAX_)
			return -ENAMETOOLONG;
		memcpy(target, files[e].data, files[e].size);
		target[files[e].size] = 0;
		memcpy(dir, norm, strlen(norm) + 1);
		char *slash = dir + strlen(dir);
		while (slash > dir && *slash != '/')
			slash--;
		*slash = 0;
		r = normalize(target, dir, norm, PATH_MAX_);
		if (r < 0)
			return r;
	}
}

int fs_lookup(const char *path, struct file_ent **out)
{
	char norm[PATH_MAX_];
	int e = resolve(AT_FDCWD, path, true, norm);
	if (e < 0)
		return e == -1 ? -EISDIR : e;
	*out = &files[e];
	return 0;
}

/* File backing an fd, for mmap. */
struct file_ent *fs_fd_file(int fd);
struct file_ent *fs_fd_file(int fd)
{
	if (fd < 0 || fd >= MAX_FDS || fds[fd].type != FD_FILE)
		return NULL;
	return &files[fds[fd].ent];
}

struct kstat {
	u64 st_dev, st_ino, st_nlink;
	u32 st_mode, st_uid, st_gid, pad0;
	u64 st_rdev;
	i64 st_size, st_blksize, st_blocks;
	u64 st_atime, st_atime_nsec, st_mtime, st_mtime_nsec, st_ctime, st_ctime_nsec;
	i64 unused[3];
};

static void fill_stat(struct kstat *st, int type, int e)
{
	memset(st, 0, sizeof *st);
	st->st_blksize = 4096;
	st->st_nlink = 1;
	if (type == FD_BLK) {
		st->st_dev = 5;
		st->st_mode = S_IFBLK | 0660;
		st->st_rdev = (254 << 8) | (u64)(e * 16);   /* virtblk major, 16 minors each */
		st->st_ino = 200 + (u64)e;
		st->st_size = blk_bytes(e);
		return;
	}
	if (type == FD_HVC) {
		st->st_dev = 5;
		st->st_mode = S_IFCHR | 0620;
		st->st_rdev = 229 << 8;
		st->st_ino = 190;
		return;
	}
	if (type == FD_CONSOLE || type == FD_NULL || type == FD_RANDOM) {
		st->st_dev = 5;
		st->st_mode = S_IFCHR | (type == FD_CONSOLE ? 0620 : 0666);
		st->st_rdev = type == FD_CONSOLE ? (4 << 8) | 64 : type == FD_NULL ? (1 << 8) | 3 : (1 << 8) | 9;
		st->st_ino = 100 + type;
		return;
	}
	st->st_dev = 1;
	if (e < 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_ino = 1;
		st->st_nlink = 2;
		return;
	}
	const struct file_ent *f = &files[e];
	st->st_mode = f->mode;
	if (!(f->mode & S_IFMT))
		st->st_mode |= S_IFREG;
	st->st_ino = f->ino ? f->ino : 1000 + (u64)e;
	st->st_nlink = f->nlink ? f->nlink : 1;
	st->st_size = f->size;
	st->st_blocks = (f->size + 511) / 512;
	st->st_atime = st->st_mtime = st->st_ctime = f->mtime;
}

static int special_path(const char *norm)
{
	if (!strcmp(norm, "dev/null")) return FD_NULL;
	if (!strcmp(norm, "dev/tty") || !strcmp(norm, "dev/console") || !strcmp(norm, "dev/ttyS0") ||
	    !strcmp(norm, "dev/stdin") || !strcmp(norm, "dev/stdout") || !strcmp(norm, "dev/stderr"))
		return FD_CONSOLE;
	if (!strcmp(norm, "dev/urandom") || !strcmp(norm, "dev/random")) return FD_RANDOM;
	if (!memcmp(norm, "dev/", 4) && blk_find(norm + 4) >= 0) return FD_BLK;
	if (!strcmp(norm, "dev/hvc0") && hvc_present()) return FD_HVC;
	return 0;
}

static int alloc_fd(int min)
{
	for (int i = min < 0 ? 0 : min; i < MAX_FDS; i++)
		if (fds[i].type == FD_FREE)
			return i;
	return -EMFILE;
}

static bool fd_ok(u64 fd) { return fd < MAX_FDS && fds[fd].type != FD_FREE; }

static i64 console_read(u8 *buf, u64 n)
{
	u64 got = 0;
	unsigned idle = 0;
	while (got < n) {
		if (inb(TVM_PORT_COM1 + 5) & 1) {
			u8 c = inb(TVM_PORT_COM1);
			buf[got++] = c;
			idle = 0;
			if (c == '\n')
				break;
		} else if (++idle > (got ? 64u : 3000u)) {
			break;
		}
	}
	return got;
}

static i64 do_read(int fd, u64 buf, u64 n, i64 pos)
{
	if (!fd_ok(fd))
		return -EBADF;
	struct fdesc *d = &fds[fd];
	if ((d->flags & O_ACCMODE) == 1)
		return -EBADF;
	if (!user_ok(buf, n, true))
		return -EFAULT;
	switch (d->type) {
	case FD_CONSOLE:
		return console_read((u8 *)buf, n);
	case FD_NULL:
		return 0;
	case FD_RANDOM: {
		if (n > 1 << 20)
			n = 1 << 20;
		fill_random((void *)buf, n);   /* user range validated */
		return n;
	}
	case FD_DIR:
		return -EISDIR;
	case FD_HVC:
		return 0;
	case FD_BLK: {
		u64 off = pos >= 0 ? (u64)pos : d->off;
		i64 r = blk_rw(d->ent, false, buf, n, off);
		if (r > 0 && pos < 0)
			d->off = off + r;
		return r;
	}
	case FD_FILE: {
		const struct file_ent *f = &files[d->ent];
		u64 off = pos >= 0 ? (u64)pos : d->off;
		if (off >= f->size)
			return 0;
		if (n > f->size - off)
			n = f->size - off;
		memcpy((void *)buf, f->data + off, n);
		if (pos < 0)
			d->off = off + n;
		return n;
	}
	}
	return -EBADF;
}

static i64 do_write(int fd, u64 buf, u64 n, i64 pos)
{
	if (!fd_ok(fd))
		return -EBADF;
	struct fdesc *d = &fds[fd];
	if (!user_ok(buf, n, false))
		return -EFAULT;
	switch (d->type) {
	case FD_CONSOLE:
		console_write((const void *)buf, n);
		return n;
	case FD_HVC:
		return hvc_write(buf, n);
	case FD_BLK: {
		if ((d->flags & O_ACCMODE) == 0)
			return -EBADF;
		u64 off = pos >= 0 ? (u64)pos : d->off;
		i64 r = blk_rw(d->ent, true, buf, n, off);
		if (r > 0 && pos < 0)
			d->off = off + r;
		return r;
	}
	case FD_NULL:
	case FD_RANDOM:
		return n;
	default:
		return -EBADF;
	}
}

struct iovec_ { u64 base, len; };

static i64 do_iov(int fd, u64 iov, u64 cnt, bool write, i64 pos)
{
	if (cnt > 1024)
		return -EINVAL;
	if (!user_ok(iov, cnt * sizeof(struct iovec_), false))
		return -EFAULT;
	const struct iovec_ *v = (const void *)iov;
	i64 total = 0;
	for (u64 i = 0; i < cnt; i++) {
		if (!v[i].len)
			continue;
		i64 p = pos >= 0 ? pos + total : -1;
		i64 r = write ? do_write(fd, v[i].base, v[i].len, p) : do_read(fd, v[i].base, v[i].len, p);
		if (r < 0)
			return total ? total : r;
		total += r;
		if ((u64)r < v[i].len)
			break;
	}
	return total;
}

static i64 copy_path(u64 upath, char *out)
{
	size_t len;
	if (!user_str_ok(upath, PATH_MAX_, &len))
		return upath && user_ok(upath, 1, false) ? -ENAMETOOLONG : -EFAULT;
	memcpy(out, (const void *)upath, len + 1);
	return 0;
}

static i64 do_openat(int dirfd, u64 upath, u64 flags)
{
	char path[PATH_MAX_], norm[PATH_MAX_];
	i64 r = copy_path(upath, path);
	if (r < 0)
		return r;
	if (!path[0])
		return -ENOENT;
	int e = resolve(dirfd, path, true, norm);
	int type;
	if (e == -ENOENT || e == -ENOTDIR) {
		int sp = special_path(norm);
		if (!sp)
			return (flags & O_CREAT) ? -EROFS : e;
		type = sp;
		e = -1;
		if (sp == FD_BLK) {
			e = blk_find(norm + 4);
			if ((flags & O_ACCMODE) != 0 && blk_readonly(e))
				return -EROFS;
		}
	} else if (e < -1) {
		return e;
	} else if (e == -1 || (files[e].mode & S_IFMT) == S_IFDIR) {
		if ((flags & O_ACCMODE) != 0)
			return -EISDIR;
		type = FD_DIR;
	} else {
		if (flags & O_DIRECTORY)
			return -ENOTDIR;
		if ((flags & O_ACCMODE) != 0 || (flags & O_TRUNC))
			return -EROFS;
		type = FD_FILE;
	}
	int fd = alloc_fd(0);
	if (fd < 0)
		return fd;
	fds[fd] = (struct fdesc){ type, (flags & O_CLOEXEC) != 0, (u32)flags & ~O_CLOEXEC, e, 0 };
	return fd;
}

static i64 do_stat(int dirfd, u64 upath, u64 ust, int flags)
{
	char path[PATH_MAX_], norm[PATH_MAX_];
	if (!user_ok(ust, sizeof(struct kstat), true))
		return -EFAULT;
	i64 r = copy_path(upath, path);
	if (r < 0)
		return r;
	struct kstat *st = (void *)ust;
	if (!path[0]) {
		if (!(flags & AT_EMPTY_PATH))
			return -ENOENT;
		if (dirfd == AT_FDCWD) {
			fill_stat(st, FD_DIR, find(cwd) >= 0 ? find(cwd) : -1);
			return 0;
		}
		if (dirfd < 0 || !fd_ok(dirfd))
			return -EBADF;
		fill_stat(st, fds[dirfd].type, fds[dirfd].ent);
		return 0;
	}
	int e = resolve(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW), norm);
	if (e == -ENOENT) {
		int sp = special_path(norm);
		if (!sp)
			return e;
		fill_stat(st, sp, sp == FD_BLK ? blk_find(norm + 4) : -1);
		return 0;
	}
	if (e < -1)
		return e;
	fill_stat(st, FD_FILE, e);
	return 0;
}

static i64 do_readlink(int dirfd, u64 upath, u64 buf, u64 size)
{
	char path[PATH_MAX_], norm[PATH_MAX_];
	i64 r = copy_path(upath, path);
	if (r < 0)
		return r;
	int e = resolve(dirfd, path, false, norm);
	if (e < -1)
		return e;
	if (e == -1 || (files[e].mode & S_IFMT) != S_IFLNK)
		return -EINVAL;
	u64 n = files[e].size < size ? files[e].size : size;
	if (!user_ok(buf, n, true))
		return -EFAULT;
	memcpy((void *)buf, files[e].data, n);
	return n;
}

static i64 do_getdents(int fd, u64 buf, u64 size)
{
	if (!fd_ok(fd))
		return -EBADF;
	struct fdesc *d = &fds[fd];
	if (d->type != FD_DIR)
		return -ENOTDIR;
	if (!user_ok(buf, size, true))
		return -EFAULT;
	const char *dir = d->ent < 0 ? "" : files[d->ent].name;
	size_t dl = strlen(dir);
	u64 used = 0;
	for (; d->off < nr_files; d->off++) {
		const struct file_ent *f = &files[d->off];
		const char *leaf;
		if (dl == 0) {
			leaf = f->name;
		} else {
			if (f->namelen <= dl || f->name[dl] != '/' || memcmp(f->name, dir, dl))
				continue;
			leaf = f->name + dl + 1;
		}
		if (!*leaf)
			continue;
		bool direct = true;
		for (const char *p = leaf; *p; p++)
			if (*p == '/')
				direct = false;
		if (!direct)
			continue;
		size_t nl = strlen(leaf);
		u64 reclen = ALIGN_UP(19 + nl + 1, 8);
		if (used + reclen > size)
			return used ? (i64)used : -EINVAL;
		u8 *rec = (u8 *)buf + used;
		u64 ino = f->ino ? f->ino : 1000 + d->off;
		i64 next = d->off + 1;
		u16 rl = reclen;
		u32 t = f->mode & S_IFMT;
		u8 dt = t == S_IFDIR ? 4 : t == S_IFLNK ? 10 : t == S_IFCHR ? 2 : 8;
		memcpy(rec, &ino, 8);
		memcpy(rec + 8, &next, 8);
		memcpy(rec + 16, &rl, 2);
		rec[18] = dt;
		memcpy(rec + 19, leaf, nl + 1);
		memset(rec + 19 + nl + 1, 0, reclen - (19 + nl + 1));
		used += reclen;
	}
	return used;
}

static i64 do_dup(int old, int newfd, int flags, bool exact)
{
	if (!fd_ok(old))
		return -EBADF;
	if (!exact) {
		newfd = alloc_fd(newfd);
		if (newfd < 0)
			return newfd;
	} else if (newfd < 0 || newfd >= MAX_FDS) {
		return -EBADF;
	}
	if (newfd == old)
		return newfd;
	fds[newfd] = fds[old];
	fds[newfd].cloexec = (flags & O_CLOEXEC) != 0;
	return newfd;
}

i64 sys_file(u64 nr, struct trapframe *tf, bool *handled)
{
	u64 a0 = tf->rdi, a1 = tf->rsi, a2 = tf->rdx, a3 = tf->r10;
	*handled = true;
	switch (nr) {
	case 0: return do_read(a0, a1, a2, -1);
	case 1: return do_write(a0, a1, a2, -1);
	case 2: return do_openat(AT_FDCWD, a0, a1);
	case 257: return do_openat(a0, a1, a2);
	case 3:
		if (!fd_ok(a0))
			return -EBADF;
		if (fds[a0].type == FD_BLK && (fds[a0].flags & O_ACCMODE) != 0 && blk_flush(fds[a0].ent) < 0) {
			fds[a0].type = FD_FREE;
			return -EIO;
		}
		fds[a0].type = FD_FREE;
		return 0;
	case 74: /* fsync */
	case 75: /* fdatasync */
		if (!fd_ok(a0))
			return -EBADF;
		if (fds[a0].type == FD_BLK)
			return blk_flush(fds[a0].ent);
		return fds[a0].type == FD_FILE || fds[a0].type == FD_DIR ? 0 : -EINVAL;
	case 162: /* sync */
		blk_flush_all();
		return 0;
	case 306: /* syncfs */
		if (!fd_ok(a0))
			return -EBADF;
		blk_flush_all();
		return 0;
	case 4: return do_stat(AT_FDCWD, a0, a1, 0);
	case 6: return do_stat(AT_FDCWD, a0, a1, AT_SYMLINK_NOFOLLOW);
	case 262: return do_stat(a0, a1, a2, a3);
	case 5:
		if (!fd_ok(a0))
			return -EBADF;
		if (!user_ok(a1, sizeof(struct kstat), true))
			return -EFAULT;
		fill_stat((void *)a1, fds[a0].type, fds[a0].ent);
		return 0;
	case 8: {
		if (!fd_ok(a0))
			return -EBADF;
		struct fdesc *d = &fds[a0];
		if (d->type == FD_CONSOLE || d->type == FD_HVC)
			return -ESPIPE;
		if (d->type == FD_BLK) {
			/* like Linux's fixed_size_llseek: no seeking past the end */
			u64 size = blk_bytes(d->ent);
			i64 base = a2 == 0 ? 0 : a2 == 1 ? (i64)d->off : a2 == 2 ? (i64)size : -1;
			if (base < 0)
				return -EINVAL;
			i64 np = base + (i64)a1;
			if (np < 0 || (u64)np > size)
				return -EINVAL;
			d->off = np;
			return np;
		}
		if (d->type != FD_FILE)
			return d->type == FD_DIR && a1 == 0 && a2 == 0 ? (i64)(d->off = 0) : 0;
		i64 base = a2 == 0 ? 0 : a2 == 1 ? (i64)d->off : a2 == 2 ? (i64)files[d->ent].size : -1;
		if (base < 0)
			return -EINVAL;
		i64 np = base + (i64)a1;
		if (np < 0)
			return -EINVAL;
		d->off = np;
		return np;
	}
	case 17:
		if (fd_ok(a0) && fds[a0].type != FD_FILE && fds[a0].type != FD_BLK)
			return -ESPIPE;
		if ((i64)a3 < 0)
			return -EINVAL;
		return do_read(a0, a1, a2, a3);
	case 18:
		if (!fd_ok(a0))
			return -EBADF;
		if (fds[a0].type != FD_BLK)
			return fds[a0].type == FD_FILE ? -EBADF : -ESPIPE;
		if ((i64)a3 < 0)
			return -EINVAL;
		return do_write(a0, a1, a2, a3);
	case 296: /* pwritev */
		if (fd_ok(a0) && fds[a0].type != FD_BLK)
			return fds[a0].type == FD_FILE ? -EBADF : -ESPIPE;
		if ((i64)a3 < 0)
			return -EINVAL;
		return do_iov(a0, a1, a2, true, a3);
	case 19: return do_iov(a0, a1, a2, false, -1);
	case 20: return do_iov(a0, a1, a2, true, -1);
	case 295: return do_iov(a0, a1, a2, false, a3);  /* preadv */
	case 21:
	case 269:
	case 439: {
		int dirfd = nr == 21 ? AT_FDCWD : (int)a0;
		u64 path = nr == 21 ? a0 : a1;
		u64 mode = nr == 21 ? a1 : a2;
		char p[PATH_MAX_], norm[PATH_MAX_];
		i64 r = copy_path(path, p);
		if (r < 0)
			return r;
		int e = resolve(dirfd, p, true, norm);
		if (e == -ENOENT && special_path(norm))
			return 0;
		if (e < -1)
			return e;
		if (mode & 2)
			return -EROFS;
		return 0;
	}
	case 16: /* ioctl */
		if (!fd_ok(a0))
			return -EBADF;
		if (fds[a0].type == FD_BLK) {
			int b = fds[a0].ent;
			switch ((u32)a1) {
			case 0x80081272: /* BLKGETSIZE64 */
			case 0x1260:     /* BLKGETSIZE (sectors) */
				if (!user_ok(a2, 8, true))
					return -EFAULT;
				*(u64 *)a2 = (u32)a1 == 0x1260 ? blk_bytes(b) / 512 : blk_bytes(b);
				return 0;
			case 0x1268:     /* BLKSSZGET */
			case 0x127b:     /* BLKPBSZGET */
			case 0x125e:     /* BLKROGET */
				if (!user_ok(a2, 4, true))
					return -EFAULT;
				*(u32 *)a2 = (u32)a1 == 0x125e ? blk_readonly(b) : 512;
				return 0;
			case 0x1261:     /* BLKFLSBUF */
				return blk_flush(b);
			default:
				return -ENOTTY;
			}
		}
		return -ENOTTY;
	case 32: return do_dup(a0, 0, 0, false);
	case 33: return fd_ok(a0) ? do_dup(a0, a1, 0, true) : -EBADF;
	case 292: return a0 == a1 ? -EINVAL : do_dup(a0, a1, a2, true);
	case 72: /* fcntl */
		if (!fd_ok(a0))
			return -EBADF;
		switch (a1) {
		case 0: return do_dup(a0, a2, 0, false);           /* F_DUPFD */
		case 1030: return do_dup(a0, a2, O_CLOEXEC, false); /* F_DUPFD_CLOEXEC */
		case 1: return fds[a0].cloexec;                     /* F_GETFD */
		case 2: fds[a0].cloexec = a2 & 1; return 0;         /* F_SETFD */
		case 3: return fds[a0].flags;                       /* F_GETFL */
		case 4: return 0;                                   /* F_SETFL */
		default: return -EINVAL;
		}
	case 79: { /* getcwd */
		size_t l = strlen(cwd) + 2;
		if (a1 < l)
			return -ERANGE;
		if (!user_ok(a0, l, true))
			return -EFAULT;
		((char *)a0)[0] = '/';
		memcpy((char *)a0 + 1, cwd, l - 1);
		return l;
	}
	case 80: { /* chdir */
		char p[PATH_MAX_], norm[PATH_MAX_];
		i64 r = copy_path(a0, p);
		if (r < 0)
			return r;
		int e = resolve(AT_FDCWD, p, true, norm);
		if (e < -1)
			return e;
		if (e >= 0 && (files[e].mode & S_IFMT) != S_IFDIR)
			return -ENOTDIR;
		memcpy(cwd, norm, strlen(norm) + 1);
		return 0;
	}
	case 81: /* fchdir */
		if (!fd_ok(a0))
			return -EBADF;
		if (fds[a0].type != FD_DIR)
			return -ENOTDIR;
		if (fds[a0].ent < 0)
			cwd[0] = 0;
		else
			memcpy(cwd, files[fds[a0].ent].name, files[fds[a0].ent].namelen + 1);
		return 0;
	case 89: return do_readlink(AT_FDCWD, a0, a1, a2);
	case 267: return do_readlink(a0, a1, a2, a3);
	case 217: return do_getdents(a0, a1, a2);
	case 40: { /* sendfile(out, in, offset*, count) */
		if (!fd_ok(a0) || !fd_ok(a1))
			return -EBADF;
		if (fds[a1].type != FD_FILE || fds[a0].type != FD_CONSOLE)
			return -EINVAL;
		const struct file_ent *f = &files[fds[a1].ent];
		u64 off = fds[a1].off;
		if (a2) {
			if (!user_ok(a2, 8, true))
				return -EFAULT;
			off = *(u64 *)a2;
		}
		u64 n = off >= f->size ? 0 : f->size - off;
		if (n > a3)
			n = a3;
		console_write(f->data + off, n);
		if (a2)
			*(u64 *)a2 = off + n;
		else
			fds[a1].off = off + n;
		return n;
	}
	case 332: return -ENOSYS; /* statx: libc falls back to fstatat */
	case 82: case 83: case 84: case 86: case 87: case 88: case 90: case 92: case 133:
	case 258: case 263: case 264: case 265: case 266: case 268: case 316: case 76: case 77:
		return -EROFS;
	}
	*handled = false;
	return 0;
}
