/* vmm/snapfile.h - the snapshot file container (issue "Snapshots"; format in
 * README "Snapshot files"): a header, then typed, length-prefixed
 * sections, each with its own version and a CRC-32, ended by an END
 * section. What the sections hold is defined by the layers that write them;
 * this file only frames, checks and skips.
 *
 * Compatibility rules: a reader skips a section whose type it does not know
 * when the section is optional, and refuses it (naming it) when it is
 * marked required; a known type with a newer version than the reader
 * supports is refused the same way. Sections are appended to the format,
 * never changed in place: a new layout gets a new version number.
 */
#ifndef TVM_SNAPFILE_H
#define TVM_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm.h"

#define SNAP_MAGIC "TVMSNAP\0"
#define SNAP_FORMAT_VERSION 1u
#define SNAP_MAX_IMAGES 16u
#define SNAP_SECTION_REQUIRED 1u        /* flags: a reader that does not know it must refuse the file */
#define SNAP_MAX_SECTION (64ull << 30)  /* largest section payload accepted */
#define SNAP_MAX_SECTIONS 65536u

enum snap_image_role { SNAP_IMG_KERNEL = 1, SNAP_IMG_INITRD = 2, SNAP_IMG_CPIO = 3, SNAP_IMG_DISK = 4 };

struct snap_image {
	uint8_t role;       /* enum snap_image_role */
	uint32_t index;     /* which disk, 0 otherwise */
	uint8_t sha256[32];
};

struct snap_header {
	uint32_t format_version;
	char trialvm_version[32];       /* NUL-terminated */
	uint8_t id[16];                 /* this snapshot */
	uint8_t parent[16];             /* all zero: a full snapshot */
	uint32_t nimages;
	struct snap_image images[SNAP_MAX_IMAGES];
};

/* A section type the reader knows, and the newest version it reads. */
struct snap_known {
	uint32_t type;
	uint16_t max_version;
	const char *name;
};

struct snap_section {
	uint32_t type;
	uint16_t version;
	uint16_t flags;
	uint64_t offset;   /* of the payload in the file */
	uint64_t length;
	bool known;        /* in the reader's table (else optional, skipped by snap_next) */
};

/* ---- writing: to PATH.XXXXXX (O_EXCL), renamed to PATH by snap_commit ---- */
struct snap_writer;
int snap_create(const char *path, const struct snap_header *h, struct snap_writer **out, struct tvm_err *err);
int snap_add(struct snap_writer *w, uint32_t type, uint16_t version, uint16_t flags, const void *data, uint64_t len,
	     struct tvm_err *err);
/* END, fsync, rename, directory fsync; frees w (also on failure, removing
 * the temporary file). */
int snap_commit(struct snap_writer *w, struct tvm_err *err);
/* Give up: the temporary file is removed, PATH untouched; frees w. */
void snap_abandon(struct snap_writer *w);

/* ---- reading ---- */
struct snap_reader;
/* With this as `known` (nknown 0), snap_open accepts every section type
 * and version, for showing a file's structure (`trialvm snapshot inspect`);
 * sections are still framed and checksummed. */
extern const struct snap_known snap_any_type[];

/* Open PATH (a regular file), check the header and every section's frame
 * and checksum up to END against `known`. Errors name the file, the offset
 * and what is wrong: not a snapshot, truncated, corrupt (checksum), a newer
 * format, an unknown required section, a known section of a newer version,
 * an overlong or overlapping length. */
int snap_open(const char *path, const struct snap_known *known, size_t nknown, struct snap_reader **out,
	      struct tvm_err *err);
const struct snap_header *snap_header_of(const struct snap_reader *r);
/* The sections in file order, unknown optional ones included (known ==
 * false): 1 and *s, 0 after the last. */
int snap_next(struct snap_reader *r, struct snap_section *s);
/* Start snap_next() from the first section again. */
void snap_rewind(struct snap_reader *r);
/* Read len bytes at off within section s's payload. */
int snap_read(struct snap_reader *r, const struct snap_section *s, uint64_t off, void *buf, uint64_t len,
	      struct tvm_err *err);
void snap_close(struct snap_reader *r);

/* `trialvm snapshot ...` (vmm/snapfile_cli.c). */
int snapshot_cli_main(int argc, char **argv);

#endif
