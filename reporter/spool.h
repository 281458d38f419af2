/* reporter/spool.h - the spool (README "The spool"): report bundles on
 * their way to the vendor, kept on disk until the feedback server has
 * confirmed each.
 *
 * SPOOL/ID.tvb/ is a bundle (bundle.h) with upload.json beside its
 * manifest (mode 0600: where it goes and with which token, how many
 * tries so far and the last error); SPOOL/.new/ holds bundles being
 * made. An entry appears by a rename once the bundle and upload.json are
 * on disk (fsync'ed, the directories too): "saved" is said of nothing
 * less. It is removed only after the server confirmed durable receipt.
 * A sender locks upload.json (flock) while it sends, so two trialvms
 * never send one entry at once.
 *
 * SPOOL: --spool DIR, else ${XDG_DATA_HOME:-~/.local/share}/trialvm/spool.
 *
 * Layer: reporter/. */
#ifndef TVM_SPOOL_H
#define TVM_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "bundle.h"
#include "upload.h"

#define SPOOL_META "upload.json"

/* The spool directory: `given`, or the default. 0, or -1 with err. */
int spool_path(const char *given, char *out, size_t cap, struct tvm_err *err);

/* Bundle the report in report_dir (against master, with the comment)
 * into the spool, to go to dest; `label` names the trial ("editor 2.1").
 * On disk when it returns 0 (id: the bundle's id); -1 with err, and
 * nothing in the spool. */
int spool_add(const char *spool, const char *report_dir, const struct bundle_master *master, const char *comment,
	      const struct upload_dest *dest, const char *label, bool progress, char id[65], struct tvm_err *err);

/* Send entry ID (a full id). UPLOAD_DONE: confirmed and removed from the
 * spool; otherwise it stays, upload.json noting the try and err. */
enum upload_outcome spool_send(const char *spool, const char *id, const struct upload_opts *o, struct tvm_err *err);

/* The entries' ids, oldest first (malloc'd). 0, or -1 with err. */
int spool_ids(const char *spool, char (**ids)[65], int *n, struct tvm_err *err);

/* `trialvm spool list|send|drop ...` (argv[0] = "spool"): the exit status. */
int spool_main(int argc, char **argv);

#endif
