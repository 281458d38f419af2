/* reporter/bundle.h - report bundles (README "Report bundles"): what goes
 * to the vendor after a crash, holding only what differs from the
 * vendor's master.
 *
 * A bundle is a directory: manifest.json and chunks/SHA256, each chunk one
 * zstd frame named by the sha256 of its bytes; the bundle's id is the
 * sha256 of manifest.json. Every file of the report (report.json,
 * core.elf, memory.dmp, app.core, console.log), the snapshots it names
 * (with their parents) and its event log segment are kept as recipes over
 * 4 KiB pages:
 *   "blocks"   the file's 4 KiB blocks in order (the last one short), each
 *              zero, a page of the master, or a page of the bundle's page
 *              store;
 *   "snapshot" a snapshot file's sections, memory and disk sections as
 *              their run headers (address, pages, flags, compressed
 *              length, CRC) with each data run's pages as above: the
 *              runs are compressed again as the snapshot writer does,
 *              and checked.
 * The page store holds each page that is neither zero nor anywhere in the
 * master once (by sha256), 1024 pages to a chunk. The master's pages are
 * numbered: its booted checkpoint's RAM first (ram / 4096 pages, the
 * machine's RAM as `trialvm run --restore` has it), then each part's bytes
 * in 4 KiB pages (the last zero-padded), in the order given.
 *
 * Streams (a recipe's block map and a snapshot's layout) are split into
 * pieces of at most 4 MiB before compression, each a chunk:
 *   block map   "TVMBMAP1", then entries: u32 kind << 30 | n (n >= 1;
 *               kind 0 zero, 1 master, 2 store), and for kinds 1 and 2 a
 *               u64 first index (n consecutive pages from it); as many
 *               positions as the file has blocks (a snapshot: pages in
 *               its data runs)
 *   layout      "TVMSLAY1", the snapshot header (u32 format version, 32
 *               bytes trialvm version, id, parent, u32 image count, per
 *               image u8 role, 3 zero bytes, u32 index, sha256), then per
 *               section u32 type, u16 version, u16 flags, u32 kind (0:
 *               u64 length and the payload as it is; 1 runs, for memory
 *               and disk sections: u32 prefix length and the bytes before
 *               the runs (a disk section's name and size; none for
 *               memory), u64 run count and per run u64 address (a disk's
 *               byte offset), u32 pages, u32 flags, u32 compressed
 *               length, u32 CRC-32), and u32 0xffffffff at the end
 * All numbers little-endian.
 *
 * Everything read from a bundle is hostile (it comes from a tester's
 * machine): the manifest's every field, chunk names and sizes, each
 * chunk's sha256 against its name, decompressed sizes, map and layout
 * entries against the file, the page store and the master, and the
 * rebuilt file's sha256 against the manifest's.
 *
 * Layer: reporter/ (over vmm/'s snapshot files). */
#ifndef TVM_BUNDLE_H
#define TVM_BUNDLE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../vmm/vm.h"

#define BUNDLE_FORMAT "trialvm-bundle"
#define BUNDLE_VERSION 1
#define BUNDLE_MANIFEST_MAX (16u << 20)
#define BUNDLE_PIECE (4u << 20)          /* raw bytes of a stream piece */
#define BUNDLE_PAGES_PER_CHUNK 1024u
#define BUNDLE_CHUNK_MAX (5u << 20)      /* a chunk file's bytes, at most */
#define BUNDLE_MAX_FILES 64
#define BUNDLE_FILE_MAX ((1ull << 40) + (1ull << 30)) /* a file's size, at most */
#define BUNDLE_MASTER_PARTS 16
#define BUNDLE_COMMENT_MAX 4096

/* The vendor's master, as both sides have it (the caller checked it). */
struct bundle_master_part {
	char name[64];
	char path[PATH_MAX]; /* the part's file */
	uint64_t size;
	char sha256[65];
};
struct bundle_master {
	char package_name[128], package_version[64];
	char package_sha256[65];     /* the package file's */
	char vendor_fingerprint[65];
	char checkpoint_sha256[65];  /* "" when the package has no checkpoint */
	char ram_path[PATH_MAX];     /* the checkpoint's RAM (snapshot_materialize); "" when none */
	uint64_t ram_size;           /* 0 when none */
	int nparts;
	struct bundle_master_part parts[BUNDLE_MASTER_PARTS];
};

/* Make a bundle of the crash report in report_dir against master (NULL:
 * every non-zero page is stored) with the tester's comment (NULL: none).
 * out: the bundle's directory (it must not exist), or NULL to create
 * parent/ID.tvb, named by the bundle's id. Written into a temporary
 * directory beside it, each file fsync'ed, renamed into place, the parent
 * fsync'ed: it exists whole or not at all. path (cap bytes) gets its
 * path, id its id. progress: a line on stderr now and then. 0, or -1
 * with err. */
int bundle_create(const char *report_dir, const struct bundle_master *master, const char *comment, const char *out,
		  const char *parent, bool progress, char *path, size_t cap, char id[65], struct tvm_err *err);

/* A bundle read back, its manifest checked. */
struct bundle;
int bundle_open(const char *dir, struct bundle **out, struct tvm_err *err);
void bundle_close(struct bundle *b);
const char *bundle_id(const struct bundle *b);
/* Its chunks (each once): name (64 hex digits) and size in bytes. */
int bundle_nchunks(const struct bundle *b);
void bundle_chunk(const struct bundle *b, int i, const char **name, uint64_t *size);
/* The sum of manifest and chunk bytes: what an upload sends. */
uint64_t bundle_bytes(const struct bundle *b);
const char *bundle_dir(const struct bundle *b);
/* Is NAME one of its chunks? */
bool bundle_has_chunk(const struct bundle *b, const char *name);
/* Chunk NAME's bytes (its size and sha256 checked), malloc'd. 0 or -1. */
int bundle_read_chunk(const struct bundle *b, const char *name, uint8_t **data, size_t *len, struct tvm_err *err);
/* Every chunk is there with its size and sha256. 0, or -1 naming the first that is not. */
int bundle_check_chunks(const struct bundle *b, struct tvm_err *err);
/* What it holds, for people (what a tester consents to send). */
void bundle_show(const struct bundle *b, FILE *out);
/* Its master, as the manifest names it (the package's name, version and
 * sha256, the checkpoint's, the parts'); false when it has none. */
bool bundle_master_of(const struct bundle *b, struct bundle_master *m);

/* Every file of the bundle, made again in the new directory out_dir
 * (created; temporary names, fsync, rename), byte for byte what the
 * tester's machine had (each checked against its sha256): report.json,
 * core.elf, ..., and the snapshots and event log under snapshots/.
 * master must be the one the bundle names (checked first). 0, or -1 with
 * err (a partial out_dir is removed). */
int bundle_rebuild(const struct bundle *b, const struct bundle_master *master, const char *out_dir, bool progress,
		   struct tvm_err *err);

#endif
