/* monitor/snapshots.h - snapshots of a running VM (issue "Snapshots"):
 * `run --snapshot-every SECS --snapshot-dir DIR [--snapshot-keep N]`,
 * `snapshot checkpoint --at-console STRING -o FILE`, and the image checks
 * of `run --restore`. The machine state itself is vmm/snapshot.h's. */
#ifndef TVM_MONITOR_SNAPSHOTS_H
#define TVM_MONITOR_SNAPSHOTS_H

#include <stdbool.h>
#include <stddef.h>

#include "../vmm/snapfile.h"
#include "../vmm/vm.h"

struct snapshots_cfg {
	const char *dir;        /* --snapshot-dir (NULL: no periodic snapshots) */
	double every;           /* --snapshot-every SECS */
	int keep;               /* --snapshot-keep N (0: all) */
	const char *checkpoint; /* snapshot checkpoint -o FILE */
	const char *at_console; /* ... --at-console STRING */
	bool no_record;         /* --no-record: no event log beside the periodic snapshots */
	const uint8_t *start_id; /* the snapshot the run was restored from (NULL: a boot) */
};

/* The images a VM is made from, hashed into a header's image list. */
struct snap_images {
	const char *kernel, *initrd, *cpio;
	const char *const *disks;
	int ndisks;
};
int snap_images_hash(const struct snap_images *im, struct snap_header *h, struct tvm_err *err);
/* Refuse a snapshot taken from other images than `have` (same roles,
 * same hashes), naming the first that differs. */
int snap_images_match(const char *snap_path, const struct snap_header *taken, const struct snap_header *have,
		      struct tvm_err *err);

/* Per VM: start (after the devices, before vm_run), the vm_run main hook,
 * stop (after vm_run). `tmpl` holds the images; `origin` is the optional
 * origin section (how the VM was made) added to every snapshot. */
struct snapshots;
struct snapshots *snapshots_start(struct vm *vm, const struct snapshots_cfg *cfg, const struct snap_header *tmpl,
				  const void *origin, size_t origin_len, struct tvm_err *err);
/* The main hook's work; the milliseconds until it wants to run again (-1: none). */
int snapshots_hook(struct vm *vm, void *arg);
/* After a crash (every vCPU stopped), with periodic snapshots on: write
 * the crash-time state as DIR/crash-NNNNNN.tvs (incremental over the last
 * periodic snapshot) and fill *out with both (id, file); a failure is
 * said on stderr and leaves have_crash false. s (a struct snapshots, as
 * crash_ctx's hook) NULL: nothing. */
struct report_snapshots;
void snapshots_crash(void *s, struct report_snapshots *out);
/* True when the checkpoint was written (the run ended for it). */
bool snapshots_checkpoint_done(const struct snapshots *s);
unsigned snapshots_written(const struct snapshots *s);
/* --stats: how many were written and how long the vCPUs were paused for
 * each periodic one (median, p99, max), on stderr. */
void snapshots_stats(struct snapshots *s);
/* With periodic snapshots, the run is recorded (vmm/evlog.h): one event
 * log segment from the start of the run (DIR/start-NNNNNN.tvl) and one
 * from each periodic snapshot (DIR/snap-NNNNNN.tvl beside its .tvs),
 * deleted with it by --snapshot-keep; --stats says the current one's size. */
void snapshots_stop(struct snapshots *s);

#endif
