/* monitor/ramcache.h - the memory cache of restores (README "Snapshots").
 *
 * `run --restore` decompresses a snapshot chain's memory once into
 * DIR/ID.ram (DIR: $XDG_CACHE_HOME/trialvm/ram, or ~/.cache/trialvm/ram;
 * mode 0700) and maps it on every later restore of that snapshot. The
 * cache is bounded: TRIALVM_RAM_CACHE_MAX (a size, default 8G) of disk
 * space in all, the least recently used files removed first.
 */
#ifndef TVM_MONITOR_RAMCACHE_H
#define TVM_MONITOR_RAMCACHE_H

#include <stddef.h>
#include <stdint.h>

#define RAM_CACHE_DEFAULT_MAX (8ull << 30)

/* The cache directory, created if missing, into dir[cap]: 0, or -1 when
 * there is no home to put it in or it cannot be made. */
int ram_cache_dir(char *dir, size_t cap);

/* The budget in bytes: TRIALVM_RAM_CACHE_MAX, or the default (a value
 * that does not parse is said once on stderr and the default used). */
uint64_t ram_cache_budget(void);

/* Mark path as used now (its modification time: the cache's LRU order). */
void ram_cache_touch(const char *path);

/* Remove DIR's *.ram files, least recently used first, until they take at
 * most `budget` bytes of disk with `need` more to come, never `keep` (the
 * one about to be used; NULL: none); and temporary files of interrupted
 * materialisations (ID.ram.XXXXXX) older than an hour. Only regular files
 * of the current user are touched. The number of files removed. */
int ram_cache_prune(const char *dir, const char *keep, uint64_t need, uint64_t budget);

#endif
