/* images/package.h - trial packages (README "Trial packages"): one signed,
 * optionally time-limited file a vendor ships and a tester launches.
 *
 * A package (PKG.tvp) is a POSIX tar archive (pax), written and read with
 * libarchive, of regular files in this order:
 *   manifest.json   the package's description (below), at most 1 MiB
 *   manifest.sig    64 bytes: the Ed25519 signature of manifest.json's
 *                   bytes by the vendor's key
 *   parts/NAME      each part the manifest lists, any order
 * manifest.json: {"format": "trialvm-package", "version": 1, "name",
 * "package_version", "created", "expires" (RFC 3339 UTC or null),
 * "feedback" (URL or null), "feedback_token" (the bearer token reports
 * are uploaded with, or null), "vendor_key": {"algorithm": "ed25519",
 * "public": 64 hex digits, "fingerprint": sha256 of the 32 raw key bytes},
 * "machine": {"mem", "cpus"}, "boot": {"kind": "linux-image" | "trialos" |
 * "kernel", "cmdline", "app", "args", "checkpoint" (the part holding the
 * booted checkpoint, or null), "checkpoint_at" (the console string it was
 * taken at)}, "devices": [{"type": "virtio-blk",
 * "part"}], "parts": {NAME: {"file", "size", "sha256"}}}.
 *
 * Trust: the keys a tester accepted, one PEM public key per file named by
 * its fingerprint in ${TRIALVM_TRUST_DIR:-${XDG_CONFIG_HOME:-~/.config}/
 * trialvm/trusted-keys}. Every check (format, signature, trust, expiry,
 * each part's size and sha256) happens before anything of the package is
 * used.
 *
 * Layer: images/ (under the command line; over vmm/ files and hashes). */
#ifndef TVM_PACKAGE_H
#define TVM_PACKAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../vmm/vm.h"

#define PACKAGE_FORMAT "trialvm-package"
#define PACKAGE_VERSION 1
#define PACKAGE_MANIFEST_MAX (1u << 20)
#define PACKAGE_MAX_PARTS 16
#define PACKAGE_MAX_ARGS 28

/* Why a package was refused (the exit status says "refused"; the message
 * says which check and what to do). */
enum package_fault {
	PKG_OK = 0,
	PKG_UNREADABLE,  /* not a file, truncated, not a tar, an odd entry */
	PKG_FORMAT,      /* another format or version */
	PKG_UNSIGNED,    /* no signature */
	PKG_BAD_SIGNATURE,
	PKG_UNTRUSTED,   /* signed by a key the tester has not trusted */
	PKG_EXPIRED,
	PKG_TAMPERED,    /* a part differs from the manifest */
};

struct package_part {
	char name[64];
	char file[96]; /* "parts/NAME" */
	uint64_t size;
	char sha256[65];
};

/* A package as package_verify read it. */
struct package {
	char name[128], version[64];
	char fingerprint[65];     /* the vendor key's */
	char public_key[65];      /* its 32 bytes, hex (once the signature held) */
	char trusted_by[16];      /* "trust store" or "--key" */
	char created[32], expires[32], feedback[1024]; /* "" when none */
	char feedback_token[256]; /* the bearer token for feedback (upload only); "" when none */
	char boot_kind[16], cmdline[4096], app[1024];
	char checkpoint[64];      /* the part holding the booted checkpoint; "" when none */
	int nargs;                /* boot.args: the program's arguments */
	char args[PACKAGE_MAX_ARGS][256];
	uint64_t mem;
	int cpus;
	int nparts;
	struct package_part parts[PACKAGE_MAX_PARTS];
	enum package_fault fault;
};

/* Check PKG completely: its entries, the manifest's format and version,
 * the signature against the key the manifest names, that key's trust (in
 * the trust store, or the PEM public key at `key` when given), expiry
 * against `now`, and every part's size and sha256. With `extract_dir`,
 * each part is also written there (as its name, 0444, fsync'ed) while it
 * is checked; on failure nothing written is left. 0, or -1 with err and
 * pk->fault. */
int package_verify(const char *pkg, const char *key, time_t now, const char *extract_dir, struct package *pk,
		   struct tvm_err *err);

/* The part of that name, or NULL. */
const struct package_part *package_part(const struct package *pk, const char *name);

/* `trialvm image build|verify ...` (argv[0] = "build" or "verify") and
 * `trialvm trust ...` (argv[0] = "trust"): the exit status. */
int package_build_main(int argc, char **argv);
int package_verify_main(int argc, char **argv);
int package_trust_main(int argc, char **argv);

#endif
