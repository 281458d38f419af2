/* monitor/ramcache.c - the bounded memory cache of restores (ramcache.h). */
#include "ramcache.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/util.h"

int ram_cache_dir(char *dir, size_t cap)
{
	const char *base = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;
	if (base && base[0] == '/')
		n = snprintf(dir, cap, "%s/trialvm/ram", base);
	else if (home && home[0] == '/')
		n = snprintf(dir, cap, "%s/.cache/trialvm/ram", home);
	else
		return -1;
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return mkdir_p(dir, 0700);
}

uint64_t ram_cache_budget(void)
{
	const char *v = getenv("TRIALVM_RAM_CACHE_MAX");
	uint64_t b;
	if (!v || !v[0])
		return RAM_CACHE_DEFAULT_MAX;
	if (parse_size(v, &b) < 0) {
		tvm_log("warning: TRIALVM_RAM_CACHE_MAX=%.64s is not a size (e.g. 8G); using %llu GiB", v,
			(unsigned long long)(RAM_CACHE_DEFAULT_MAX >> 30));
		return RAM_CACHE_DEFAULT_MAX;
	}
	return b;
}

void ram_cache_touch(const char *path) { utimensat(AT_FDCWD, path, NULL, 0); }

struct cached { char name[256]; struct timespec mtime; uint64_t bytes; };

static int older_first(const void *a, const void *b)
{
	const struct timespec *x = &((const struct cached *)a)->mtime, *y = &((const struct cached *)b)->mtime;
	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return (x->tv_nsec > y->tv_nsec) - (x->tv_nsec < y->tv_nsec);
}

/* NAME is ID.ram (32 hex digits), or with .XXXXXX after it (*tmp). */
static bool cache_name(const char *name, bool *tmp)
{
	size_t n = strlen(name);
	if (n < 36 || strspn(name, "0123456789abcdef") != 32 || strncmp(name + 32, ".ram", 4) != 0)
		return false;
	*tmp = n > 36;
	return n == 36 || (n == 43 && name[36] == '.');
}

int ram_cache_prune(const char *dir, const char *keep, uint64_t need, uint64_t budget)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	const char *keep_name = keep ? strrchr(keep, '/') : NULL;
	keep_name = keep_name ? keep_name + 1 : keep;
	struct cached *v = NULL;
	size_t nv = 0, cap = 0;
	uint64_t total = 0;
	int removed = 0;
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		bool tmp;
		struct stat st;
		if (!cache_name(e->d_name, &tmp) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (tmp) { /* an interrupted materialisation; a young one may be in progress */
			if (now - st.st_mtime > 3600 && unlinkat(dirfd(d), e->d_name, 0) == 0)
				removed++;
			continue;
		}
		uint64_t bytes = (uint64_t)st.st_blocks * 512;
		total += bytes;
		if (keep_name && !strcmp(e->d_name, keep_name))
			continue;
		if (nv == cap) {
			struct cached *nvp = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nvp)
				break;
			v = nvp;
		}
		snprintf(v[nv].name, sizeof(v[nv].name), "%s", e->d_name);
		v[nv].mtime = st.st_mtim;
		v[nv].bytes = bytes;
		nv++;
	}
	if (nv)
		qsort(v, nv, sizeof(*v), older_first);
	for (size_t i = 0; i < nv && total + need > budget; i++)
		if (unlinkat(dirfd(d), v[i].name, 0) == 0) {
			total -= v[i].bytes;
			removed++;
			tvm_debug("memory cache: removed %s/%s (least recently used; TRIALVM_RAM_CACHE_MAX)", dir, v[i].name);
		}
	free(v);
	closedir(d);
	return removed;
}
