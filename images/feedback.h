/* images/feedback.h - crash reports of trial packages on their way to the
 * vendor: a package as the master of a report bundle (reporter/bundle.h),
 * and `trialvm report bundle|show|rebuild`.
 *
 * Layer: images/ (over reporter/ and vmm/). */
#ifndef TVM_FEEDBACK_H
#define TVM_FEEDBACK_H

#include "../reporter/bundle.h"
#include "package.h"

/* The master of package pk (file sha256 pkg_sha256) whose parts are files
 * in dir, named by part name: every part but the checkpoint, and, when it
 * has one, the checkpoint's memory written to ram_path
 * (snapshot_materialize; the caller removes it). 0, or -1 with err. */
int feedback_master(const struct package *pk, const char *pkg_sha256, const char *dir, const char *ram_path,
		    struct bundle_master *m, struct tvm_err *err);

/* `trialvm report ...` (argv[0] = "report"): the exit status. */
int report_cli_main(int argc, char **argv);

#endif
