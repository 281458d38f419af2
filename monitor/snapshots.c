/* monitor/snapshots.c - periodic snapshots, the booted checkpoint, and the
 * image checks of a restore (snapshots.h). */
#include "snapshots.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../devices/devices.h"
#include "../vmm/evlog.h"
#include "../vmm/fileio.h"
#include "../vmm/snapshot.h"
#include "../vmm/util.h"
#include "report.h"

#define PAUSE_TIMEOUT_MS 2000

/* ---------------------------------------------------------------- images */

static int hash_one(const char *path, uint8_t role, uint32_t index, struct snap_header *h, struct tvm_err *err)
{
	if (!path)
		return 0;
	if (h->nimages == SNAP_MAX_IMAGES)
		return tvm_seterr(err, "more than %u images", SNAP_MAX_IMAGES);
	struct snap_image *im = &h->images[h->nimages];
	if (sha256_path(path, im->sha256, err) < 0)
		return -1;
	im->role = role;
	im->index = index;
	h->nimages++;
	return 0;
}

int snap_images_hash(const struct snap_images *im, struct snap_header *h, struct tvm_err *err)
{
	h->nimages = 0;
	if (hash_one(im->kernel, SNAP_IMG_KERNEL, 0, h, err) < 0 || hash_one(im->initrd, SNAP_IMG_INITRD, 0, h, err) < 0 ||
	    hash_one(im->cpio, SNAP_IMG_CPIO, 0, h, err) < 0)
		return -1;
	for (int i = 0; i < im->ndisks; i++)
		if (hash_one(im->disks[i], SNAP_IMG_DISK, (uint32_t)i, h, err) < 0)
			return -1;
	return 0;
}

static const char *role_name(uint8_t role)
{
	switch (role) {
	case SNAP_IMG_KERNEL: return "kernel";
	case SNAP_IMG_INITRD: return "initrd/app";
	case SNAP_IMG_CPIO: return "cpio";
	case SNAP_IMG_DISK: return "disk";
	default: return "image";
	}
}

static const struct snap_image *find_image(const struct snap_header *h, uint8_t role, uint32_t index)
{
	for (uint32_t i = 0; i < h->nimages && i < SNAP_MAX_IMAGES; i++)
		if (h->images[i].role == role && h->images[i].index == index)
			return &h->images[i];
	return NULL;
}

int snap_images_match(const char *snap_path, const struct snap_header *taken, const struct snap_header *have,
		      struct tvm_err *err)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct snap_header *a = pass ? have : taken, *b = pass ? taken : have;
		for (uint32_t i = 0; i < a->nimages && i < SNAP_MAX_IMAGES; i++) {
			const struct snap_image *x = &a->images[i], *y = find_image(b, x->role, x->index);
			char which[32];
			snprintf(which, sizeof(which), x->role == SNAP_IMG_DISK ? "%s %u" : "%s", role_name(x->role),
				 x->index);
			if (!y)
				return tvm_seterr(err, "snapshot %s was taken %s a %s image, and this run %s one: restore it "
						       "with the images it was taken from", snap_path,
						  pass ? "without" : "with", which, pass ? "has" : "has no");
			if (memcmp(x->sha256, y->sha256, 32)) {
				char hx[65], hy[65];
				sha256_hex(pass ? y->sha256 : x->sha256, hx);
				sha256_hex(pass ? x->sha256 : y->sha256, hy);
				return tvm_seterr(err, "snapshot %s was taken from another %s image (sha256 %.16s..., this "
						       "run's is %.16s...): restoring onto other images is refused", snap_path,
						  which, hx, hy);
			}
		}
	}
	return 0;
}

/* ------------------------------------------------------------ the hook */

struct snapshots {
	struct vm *vm;
	struct snapshots_cfg cfg;
	struct snap_header tmpl;
	void *origin;
	size_t origin_len;
	uint64_t next_ns;
	unsigned seq, written;
	unsigned first_kept;     /* the oldest periodic snapshot on disk (a full one) */
	uint8_t last_id[16];     /* the newest periodic snapshot: the next one's parent */
	bool have_last;
	/* Pages written since the last periodic snapshot that was written:
	 * fetched from the dirty log and kept until a snapshot holding them
	 * is on disk (a failed one leaves them for the next). */
	uint64_t *pending[TVM_MAX_REGIONS];
	bool checkpoint_asked;   /* atomic: the console printed at_console */
	bool checkpoint_done, failed_logged;
	struct job *job;         /* a periodic snapshot being written, or NULL */
	pthread_t writer;
	/* Pause times of periodic snapshots (--stats and make bench). */
	unsigned npauses;
	double pause_ms[4096];
	/* Its parts, per pause: stopping the vCPUs (the barrier), fetching the
	 * dirty log, reading vCPU and device state, copying pages aside. */
	double part_ms[4][4096];
	/* The event log segment being recorded (NULL: none), its path. */
	struct evlog *log;
	char log_path[4096];
	bool exact;              /* one vCPU: the log replays exactly */
};

/* One snapshot: captured while the vCPUs are paused, then written (for
 * periodic ones on the writer thread while the guest runs on). */
struct job {
	struct snapshots *s;
	struct snap_capture *cap;
	char path[4096];
	struct snap_header h;
	char parent_name[32];
	bool incremental, periodic;
	unsigned seq;            /* a numbered periodic one: its number (0: not one, the crash snapshot) */
	/* periodic: the pages it holds, back into pending if it fails */
	uint64_t *inflight[TVM_MAX_REGIONS];
	int result;
	struct tvm_err err;
	bool done;               /* atomic: the writer finished */
};

/* The highest NNNNNN of DIR/snap-NNNNNN.tvs and DIR/crash-NNNNNN.tvs:
 * a new run (or a restarted VM) numbers on from there and never
 * overwrites another run's snapshots. */
static unsigned highest_existing(const char *dir)
{
	unsigned max = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned n;
		char tail[8];
		if ((sscanf(e->d_name, "snap-%6u.tv%7s", &n, tail) == 2 || sscanf(e->d_name, "crash-%6u.tv%7s", &n, tail) == 2 ||
		     sscanf(e->d_name, "start-%6u.tv%7s", &n, tail) == 2) &&
		    n > max && n < 999999)
			max = n;
	}
	closedir(d);
	return max;
}

static void on_console(void *arg)
{
	struct snapshots *s = arg;
	__atomic_store_n(&s->checkpoint_asked, true, __ATOMIC_RELEASE);
	vm_request_pause(s->vm); /* on the vCPU that printed it: it stops at this exit */
}

struct snapshots *snapshots_start(struct vm *vm, const struct snapshots_cfg *cfg, const struct snap_header *tmpl,
				  const void *origin, size_t origin_len, struct tvm_err *err)
{
	struct snapshots *s = calloc(1, sizeof(*s));
	if (!s || (origin_len && !(s->origin = malloc(origin_len)))) {
		free(s);
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	s->vm = vm;
	s->cfg = *cfg;
	s->tmpl = *tmpl;
	if (origin_len)
		memcpy(s->origin, origin, origin_len);
	s->origin_len = origin_len;
	if (cfg->dir && cfg->every > 0) {
		if (mkdir(cfg->dir, 0700) < 0 && errno != EEXIST) {
			tvm_seterr(err, "--snapshot-dir %s: %s", cfg->dir, strerror(errno));
			snapshots_stop(s);
			return NULL;
		}
		const struct mem_region *r;
		int n = vm_regions(vm, &r);
		for (int i = 0; i < n; i++)
			if (!(s->pending[i] = calloc(vm_bitmap_words(r[i].size), 8))) {
				tvm_seterr(err, "out of memory");
				snapshots_stop(s);
				return NULL;
			}
		if (vm_dirty_log_start(vm, err) < 0) {
			snapshots_stop(s);
			return NULL;
		}
		s->seq = highest_existing(cfg->dir);
		s->first_kept = s->seq + 1;
		s->next_ns = now_ns() + (uint64_t)(cfg->every * 1e9);
		s->exact = vm_ncpus(vm) == 1;
		if (!cfg->no_record) {
			snprintf(s->log_path, sizeof(s->log_path), "%s/start-%06u.tvl", cfg->dir, s->seq + 1);
			if (!(s->log = evlog_create(s->log_path, cfg->start_id, s->exact, err))) {
				snapshots_stop(s);
				return NULL;
			}
			vm_set_evlog(vm, s->log);
		}
	}
	if (cfg->at_console && console_watch(cfg->at_console, on_console, s) < 0) {
		tvm_seterr(err, "--at-console: give 1 to %d bytes", CONSOLE_WATCH_MAX);
		snapshots_stop(s);
		return NULL;
	}
	return s;
}

static void snap_path(const struct snapshots *s, unsigned seq, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/snap-%06u.tvs", s->cfg.dir, seq);
}

/* The event log segment that starts at snapshot `seq`. */
static void log_path_of(const struct snapshots *s, unsigned seq, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/snap-%06u.tvl", s->cfg.dir, seq);
}

/* End a segment (after the vCPUs were let go: the fsync is not part of
 * the pause); a failure is said, the run goes on. */
static void close_log(struct evlog *l, unsigned why)
{
	struct tvm_err err = { "" };
	if (l && evlog_close(l, why, NULL, &err) < 0)
		tvm_log("warning: %s", err.msg);
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	snap_capture_free(j->cap);
	for (int i = 0; i < TVM_MAX_REGIONS; i++)
		free(j->inflight[i]);
	free(j);
}

/* Pause, take the state (periodic: incremental over the last one when
 * there is one, from the dirty log and the pending pages), and resume
 * unless keep_paused (then the caller resumes, also on failure). The job,
 * or NULL with err. */
static struct job *capture(struct snapshots *s, const char *path, bool periodic, bool keep_paused,
			   unsigned segment, struct tvm_err *err)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	j->s = s;
	j->periodic = periodic;
	snprintf(j->path, sizeof(j->path), "%s", path);
	j->h = s->tmpl;
	if (getrandom(j->h.id, sizeof(j->h.id), 0) != (ssize_t)sizeof(j->h.id)) {
		tvm_seterr(err, "getrandom: %s", strerror(errno));
		job_free(j);
		return NULL;
	}
	memset(j->h.parent, 0, sizeof(j->h.parent));
	j->incremental = periodic && s->have_last;
	if (j->incremental) {
		memcpy(j->h.parent, s->last_id, 16);
		snprintf(j->parent_name, sizeof(j->parent_name), "snap-%06u.tvs", s->seq);
	}
	const struct mem_region *rg;
	int nr = vm_regions(s->vm, &rg);
	for (int i = 0; periodic && i < nr; i++)
		if (!(j->inflight[i] = calloc(vm_bitmap_words(rg[i].size), 8))) {
			tvm_seterr(err, "out of memory");
			job_free(j);
			return NULL;
		}
	uint64_t t0 = now_ns();
	if (vm_pause(s->vm, PAUSE_TIMEOUT_MS, err) < 0) {
		job_free(j);
		return NULL; /* no pause is held */
	}
	uint64_t t1 = now_ns();
	int r = 0;
	if (periodic) /* everything written since the last snapshot on disk */
		r = vm_dirty_log_fetch(s->vm, s->pending, err);
	uint64_t t2 = now_ns();
	if (r == 0 && !(j->cap = vm_snapshot_capture(s->vm, j->incremental ? (const uint64_t *const *)s->pending : NULL,
						       err)))
		r = -1;
	struct evlog *ended = NULL; /* the segment this snapshot ends, closed after the resume */
	/* A numbered periodic snapshot starts the next event log segment,
	 * here, where the guest stands still. */
	if (r == 0 && segment && s->log) {
		struct tvm_err lerr = { "" };
		char lp[4096];
		log_path_of(s, segment, lp, sizeof(lp));
		struct evlog *nl = evlog_create(lp, j->h.id, s->exact, &lerr);
		if (!nl)
			tvm_log("warning: recording stops: %s", lerr.msg);
		ended = vm_set_evlog(s->vm, nl);
		s->log = nl;
		if (nl)
			snprintf(s->log_path, sizeof(s->log_path), "%s", lp);
	}
	if (!keep_paused)
		vm_resume(s->vm);
	double ms = (now_ns() - t0) / 1e6;
	close_log(ended, EVLOG_END_SNAPSHOT);
	if (r < 0) {
		job_free(j);
		return NULL;
	}
	/* The pages now travel with the job. */
	for (int i = 0; periodic && i < nr; i++) {
		memcpy(j->inflight[i], s->pending[i], vm_bitmap_words(rg[i].size) * 8);
		memset(s->pending[i], 0, vm_bitmap_words(rg[i].size) * 8);
	}
	if (periodic && s->npauses < sizeof(s->pause_ms) / sizeof(s->pause_ms[0])) {
		double mem_ms = snap_capture_memory_ns(j->cap) / 1e6;
		s->part_ms[0][s->npauses] = (t1 - t0) / 1e6;
		s->part_ms[1][s->npauses] = (t2 - t1) / 1e6;
		s->part_ms[2][s->npauses] = ms - (t2 - t0) / 1e6 - mem_ms; /* state, and the resume */
		s->part_ms[3][s->npauses] = mem_ms;
		s->pause_ms[s->npauses++] = ms;
	}
	tvm_debug("snapshot %s: %s, %llu pages; the vCPUs were paused %.2f ms", path,
		  j->incremental ? "incremental" : "full", (unsigned long long)snap_capture_pages(j->cap), ms);
	return j;
}

/* --snapshot-keep: while more than N are on disk, the oldest (a full one)
 * is merged into the next, which becomes full, and deleted. */
static void prune(struct snapshots *s)
{
	while (s->cfg.keep > 0 && s->seq - s->first_kept + 1 > (unsigned)s->cfg.keep) {
		char oldest[4096], next[4096];
		struct tvm_err err = { "" };
		snap_path(s, s->first_kept, oldest, sizeof(oldest));
		snap_path(s, s->first_kept + 1, next, sizeof(next));
		if (snapshot_merge(oldest, next, &err) < 0) {
			tvm_log("warning: cannot merge snapshot %s into %s (both kept): %s", oldest, next, err.msg);
			return;
		}
		if (unlink(oldest) < 0 && errno != ENOENT)
			tvm_log("warning: cannot delete merged snapshot %s: %s", oldest, strerror(errno));
		/* Its event log segment replays from it only. */
		log_path_of(s, s->first_kept, oldest, sizeof(oldest));
		if (unlink(oldest) < 0 && errno != ENOENT)
			tvm_log("warning: cannot delete event log %s: %s", oldest, strerror(errno));
		fsync_dir(s->cfg.dir);
		s->first_kept++;
	}
}

/* Compress, checksum and write the job's file (any thread: it touches no
 * VM); a periodic one that succeeded becomes the next one's parent and
 * old ones are merged away (--snapshot-keep). */
static void write_job(struct job *j)
{
	struct snapshots *s = j->s;
	struct snap_extra ex[2] = {
		{ .type = SNAP_SEC_ORIGIN, .version = 1, .data = s->origin, .len = s->origin_len },
		{ .type = SNAP_SEC_PARENT, .version = 1, .data = j->parent_name, .len = strlen(j->parent_name) },
	};
	j->result = snap_capture_write(j->cap, j->path, &j->h, ex, j->incremental ? 2 : 1, &j->err);
	snap_capture_free(j->cap);
	j->cap = NULL;
	if (j->result == 0 && j->seq) {
		s->seq = j->seq;
		prune(s);
	}
}

static void *writer_main(void *arg)
{
	struct job *j = arg;
	write_job(j);
	__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* After a job was written (main thread): its result counts. */
static int finish_job(struct snapshots *s, struct job *j, struct tvm_err *err)
{
	if (j->result < 0) {
		/* Nothing is lost: its pages go back to pending, for the next one. */
		const struct mem_region *rg;
		int nr = vm_regions(s->vm, &rg);
		for (int i = 0; j->periodic && i < nr; i++)
			for (uint64_t w = 0; w < vm_bitmap_words(rg[i].size); w++)
				s->pending[i][w] |= j->inflight[i][w];
		*err = j->err;
		return -1;
	}
	s->written++;
	if (j->periodic) {
		vm_dirty_log_committed(s->vm); /* the disks' pending changes are on disk too */
		memcpy(s->last_id, j->h.id, 16);
		s->have_last = true;
	} else {
		s->checkpoint_done = true;
	}
	return 0;
}

/* Wait for the periodic snapshot being written, if any; say once when
 * one failed. */
static void join_writer(struct snapshots *s)
{
	if (!s->job)
		return;
	pthread_join(s->writer, NULL);
	struct tvm_err err = { "" };
	if (finish_job(s, s->job, &err) < 0) {
		if (!s->failed_logged)
			tvm_log("warning: snapshot %s skipped (the next one holds its pages): %s", s->job->path, err.msg);
		s->failed_logged = true;
	} else {
		s->failed_logged = false;
	}
	job_free(s->job);
	s->job = NULL;
}

/* A snapshot written on the calling thread (the checkpoint, the crash
 * snapshot); id_out gets its id. The checkpoint is written with the
 * vCPUs still paused, and its event ends the run before they are let go:
 * the guest runs not one instruction past it, and "written" is only said
 * of a file on disk. */
static int write_now(struct snapshots *s, const char *path, bool periodic, uint8_t id_out[16], struct tvm_err *err)
{
	bool checkpoint = !periodic;
	struct job *j = capture(s, path, periodic, checkpoint, 0, err);
	if (!j)
		return -1;
	write_job(j); /* seq 0: the crash snapshot takes no number of the sequence */
	int r = finish_job(s, j, err);
	if (checkpoint) {
		struct tvm_event ev = { .kind = r == 0 ? TVM_EV_CHECKPOINT : TVM_EV_VMM_ERROR };
		if (r == 0)
			snprintf(ev.detail, sizeof(ev.detail), "the checkpoint is written; the run ends here");
		else
			snprintf(ev.detail, sizeof(ev.detail), "checkpoint not written: %.200s", err->msg);
		vm_raise(s->vm, -1, &ev);
		vm_resume(s->vm);
	}
	if (r == 0 && id_out)
		memcpy(id_out, j->h.id, 16);
	job_free(j);
	return r;
}

/* Milliseconds until the next periodic snapshot is due (-1: none). */
static int ms_to_next(const struct snapshots *s)
{
	if (!s->next_ns)
		return -1;
	uint64_t now = now_ns();
	if (now >= s->next_ns)
		return 0;
	uint64_t ms = (s->next_ns - now + 999999) / 1000000;
	return ms > 3600000 ? 3600000 : (int)ms;
}

int snapshots_hook(struct vm *vm, void *arg)
{
	struct snapshots *s = arg;
	(void)vm;
	struct tvm_err err = { "" };
	if (s->cfg.checkpoint && !s->checkpoint_done && __atomic_load_n(&s->checkpoint_asked, __ATOMIC_ACQUIRE)) {
		if (write_now(s, s->cfg.checkpoint, false, NULL, &err) < 0 && !vm_stop_pending(s->vm)) {
			/* It could not even pause: the run ends with the error. */
			struct tvm_event ev = { .kind = TVM_EV_VMM_ERROR };
			snprintf(ev.detail, sizeof(ev.detail), "checkpoint not written: %.200s", err.msg);
			vm_raise(s->vm, -1, &ev);
		}
		vm_pause_request_cancel(s->vm); /* when no pause took the console watch's request */
		return -1;
	}
	if (s->job && !__atomic_load_n(&s->job->done, __ATOMIC_ACQUIRE))
		return 20; /* still writing the last one: the next waits (its pages stay in the log) */
	join_writer(s);
	if (!s->next_ns || now_ns() < s->next_ns)
		return ms_to_next(s);
	s->next_ns = now_ns() + (uint64_t)(s->cfg.every * 1e9);
	char path[4096];
	snap_path(s, s->seq + 1, path, sizeof(path));
	struct job *j = capture(s, path, true, false, s->seq + 1, &err);
	if (!j) {
		if (!s->failed_logged) /* the VM keeps running; the next snapshot tries again */
			tvm_log("warning: snapshot %s skipped: %s", path, err.msg);
		s->failed_logged = true;
		return ms_to_next(s);
	}
	j->seq = s->seq + 1;
	s->job = j;
	if (start_thread_nosignals(&s->writer, writer_main, j, false) != 0) {
		write_job(j); /* no thread: written here */
		__atomic_store_n(&j->done, true, __ATOMIC_RELEASE);
		s->job = NULL;
		if (finish_job(s, j, &err) < 0 && !s->failed_logged) {
			tvm_log("warning: snapshot %s skipped: %s", path, err.msg);
			s->failed_logged = true;
		}
		job_free(j);
	}
	return s->job ? 20 : ms_to_next(s);
}

void snapshots_crash(void *arg, struct report_snapshots *out)
{
	struct snapshots *s = arg;
	if (!s || !s->cfg.dir || !s->pending[0])
		return;
	join_writer(s);
	/* The segment since the last snapshot ends at the crash: on disk
	 * before the report names it. */
	if (s->log) {
		struct evlog *l = vm_set_evlog(s->vm, NULL);
		s->log = NULL;
		struct tvm_err lerr = { "" };
		uint64_t n[2];
		if (evlog_close(l, EVLOG_END_CRASH, n, &lerr) == 0) {
			out->have_log = true;
			out->log_exact = s->exact;
			snprintf(out->log_file, sizeof(out->log_file), "%s", s->log_path);
			out->log_records = n[0];
			out->log_bytes = n[1];
		} else {
			tvm_log("warning: %s", lerr.msg);
		}
	}
	if (s->have_last) {
		hex_bytes(s->last_id, 16, out->last_id);
		snap_path(s, s->seq, out->last_file, sizeof(out->last_file));
		out->have_last = true;
	}
	/* Incremental over the last periodic one: a periodic capture
	 * path, under the crash's own name; the sequence does not move, so
	 * --snapshot-keep never merges it away. */
	char path[4096];
	snprintf(path, sizeof(path), "%s/crash-%06u.tvs", s->cfg.dir, s->seq + 1);
	struct tvm_err err = { "" };
	uint8_t id[16];
	if (write_now(s, path, true, id, &err) < 0) {
		tvm_log("warning: the crash snapshot %s could not be written: %s", path, err.msg);
		return;
	}
	hex_bytes(id, 16, out->crash_id);
	snprintf(out->crash_file, sizeof(out->crash_file), "%s", path);
	out->have_crash = true;
	tvm_log("crash snapshot: %s%s%s", path, s->have_last ? "; the last one before the crash: " : "",
		s->have_last ? out->last_file : "");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of n values (sorted in place). */
static double median_of(double *v, unsigned n)
{
	qsort(v, n, sizeof(v[0]), cmp_double);
	return v[n / 2];
}

void snapshots_stats(struct snapshots *s)
{
	if (s && s->log) {
		uint64_t rec, bytes;
		evlog_counts(s->log, &rec, &bytes);
		tvm_log("stats: event log segment %s: %llu records, %llu bytes so far (%s)", s->log_path,
			(unsigned long long)rec, (unsigned long long)bytes,
			s->exact ? "one vCPU: trialvm replay takes it" : "more than one vCPU: trialvm replay does not take it");
	}
	if (!s || !s->npauses)
		return;
	unsigned n = s->npauses;
	double *v = s->pause_ms;
	qsort(v, n, sizeof(v[0]), cmp_double);
	tvm_log("stats: %u periodic snapshots written; vCPUs paused per snapshot: median %.3f ms, p99 %.3f ms, max %.3f ms",
		s->written, v[n / 2], v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], v[n - 1]);
	tvm_log("stats: of the pause, medians: stopping the vCPUs %.3f ms, dirty log %.3f ms, vCPU and device state "
		"%.3f ms, copying pages %.3f ms",
		median_of(s->part_ms[0], n), median_of(s->part_ms[1], n), median_of(s->part_ms[2], n),
		median_of(s->part_ms[3], n));
}

bool snapshots_checkpoint_done(const struct snapshots *s) { return s && s->checkpoint_done; }

unsigned snapshots_written(const struct snapshots *s) { return s ? s->written : 0; }

void snapshots_stop(struct snapshots *s)
{
	if (!s)
		return;
	join_writer(s);
	if (s->log) {
		/* The vCPUs are gone (or never ran): the run's end. */
		close_log(vm_set_evlog(s->vm, NULL), EVLOG_END_RUN);
		s->log = NULL;
	}
	if (s->cfg.at_console)
		console_unwatch();
	for (int i = 0; i < TVM_MAX_REGIONS; i++)
		free(s->pending[i]);
	free(s->origin);
	free(s);
}
