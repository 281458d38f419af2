/* images/launch.h - `trialvm launch PKG` (README "Launching a trial").
 *
 * The package is checked (package_verify: signature, trust, expiry, every
 * part), its parts land in a content-addressed cache (${TRIALVM_CACHE:-
 * ${XDG_CACHE_HOME:-~/.cache}/trialvm}/packages/SHA256-OF-PKG/, extracted
 * while they are checked, checked again before each VM starts), and each
 * VM of the trial is a `trialvm run` child process made from them (the
 * package's checkpoint restored when it has one), with periodic snapshots
 * and recording into its own session directory. launch itself never runs
 * guest code: it is the supervisor that, after a crash, asks the tester,
 * bundles, spools and uploads the report, and starts a fresh VM.
 *
 * Layer: images/ (over reporter/; `trialvm run` through exec). */
#ifndef TVM_LAUNCH_H
#define TVM_LAUNCH_H

#include <limits.h>
#include <stdbool.h>

#include "package.h"

#define LAUNCH_MAX_ARGS 48

struct launch {
	struct package pk;
	char dir[PATH_MAX];  /* the cached parts */
	bool fresh;          /* extracted by this launch */
	/* run's options for the package (malloc'd); the program's arguments
	 * (pk.args) go after "--". */
	char *argv[LAUNCH_MAX_ARGS];
	int argc;
};

/* Check the package (PKG is a file), put its parts in the cache and make
 * run's options for it. 0, or -1 with err (l->pk.fault says which check
 * failed when it was the package). */
int launch_prepare(const char *pkg, const char *key, struct launch *l, struct tvm_err *err);
/* run's options for package pk whose parts are files in dir, named by
 * their part names (restore: from the package's checkpoint), appended to
 * argv (malloc'd strings; at most cap in all). 0, or -1 with err. */
int launch_run_args(const struct package *pk, const char *dir, bool restore, char **argv, int *argc, int cap,
		    struct tvm_err *err);
/* A linux-image package's parts in dir make a master image directory:
 * its manifest.json, as image_open reads it. */
int launch_image_manifest(const char *dir, const struct package *pk, struct tvm_err *err);
/* The cached parts still have their sizes and hashes (before each VM). */
int launch_cache_check(const struct launch *l, struct tvm_err *err);
void launch_free(struct launch *l);

/* Run trialvm with argv (argv[0] "trialvm", argv[1] the command) as a
 * child process, its output where ours goes; timeout_s (0: none) stops it
 * (SIGTERM, then SIGKILL) and fails. Its exit status (128+n for a
 * signal), or -1 with err. A SIGTERM or SIGHUP that launch_main's
 * supervisor gets goes on to it. */
int launch_child(char **argv, unsigned timeout_s, struct tvm_err *err);

/* `trialvm launch ...` (argv[0] = "launch"): the exit status. */
int launch_main(int argc, char **argv);

#endif
