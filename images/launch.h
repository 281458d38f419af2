/* images/launch.h - `trialvm launch PKG` (README "Trial packages"): the
 * package is checked (package_verify: signature, trust, expiry, every
 * part), its parts land in a content-addressed cache (${TRIALVM_CACHE:-
 * ${XDG_CACHE_HOME:-~/.cache}/trialvm}/packages/SHA256-OF-PKG/, extracted
 * while they are checked, checked again at each launch), and they make the
 * `trialvm run` options of the trial (the command line runs them).
 *
 * Layer: images/ (over monitor/'s run through the command line). */
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
	/* run's options for the package (malloc'd), then the program's
	 * arguments (pk.args) go after "--". */
	char *argv[LAUNCH_MAX_ARGS];
	int argc;
};

/* 0, or -1 with err (l->pk.fault says which check failed). */
int launch_prepare(const char *pkg, const char *key, struct launch *l, struct tvm_err *err);
void launch_free(struct launch *l);

#endif
