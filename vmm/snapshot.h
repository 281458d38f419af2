/* vmm/snapshot.h - the whole machine into a snapshot file and back: every
 * vCPU's resume state, the in-kernel irqchip, PIT and clock, every device
 * the VM owns (vm_add_device), and guest memory (README "Snapshot files").
 *
 * Sections (vmm/snapfile.h frames them; all required unless said):
 *   1 machine  (v1) RAM size, vCPU count, the KVM clock
 *   2 vcpu     (v1) one per vCPU: registers, system registers (with the
 *              pending-interrupt bitmap), XSAVE or FPU, XCRs, every MSR of
 *              KVM_GET_MSR_INDEX_LIST that reads back, vCPU events, MP
 *              state, LAPIC, debug registers
 *   3 irqchip  (v1) both PICs, the IOAPIC, the PIT
 *   4 device   (v1) one per device: its name, version and state record
 *   5 memory   (v1) runs of non-zero pages, each zstd-compressed with the
 *              CRC-32 of its pages; zero pages are not stored
 *   6 origin   (v1, optional) how the snapshot was made (paths, for
 *              `run --restore` without image options): written by the
 *              command line, not here
 *   7 parent   (v1, optional) an incremental snapshot's parent's file name
 *              (in the same directory), also the command line's
 *   8 disk     (v1) a device's bulk contents (a disk's changed clusters over
 *              its master; vm_device_ops bulk_*): its name and size, then
 *              runs as in memory sections, the byte offset in the disk for
 *              the guest address; zero units kept (absent = the master's).
 *              A full snapshot holds every changed cluster, an incremental
 *              one those written since its parent
 *
 * Dirty pages come from KVM's dirty bitmap (KVM_GET_DIRTY_LOG), not its
 * dirty ring. Measured side by side (tests/bench/dirty-log, in make bench:
 * a guest dirtying 1000 pages a round), the two cost the same where it
 * matters: the guest's write faults (identical) dominate, and the harvest
 * differs by a tenth of a millisecond (emulated KVM host, 2026-12-02:
 * bitmap 0.35 / 0.66 ms, ring 0.31 / 0.53 ms at 128 MiB / 1 GiB of RAM).
 * The ring, though, is sized per vCPU up front and must be emptied while
 * the guest runs once it fills (KVM_EXIT_DIRTY_RING_FULL: a guest dirtying
 * more than the ring between two snapshots, 16 MiB for 4096 entries,
 * stops until the VMM harvests), where the bitmap simply accumulates.
 * The bitmap's scan grows with RAM (one bit a page), the ring's with the
 * pages dirtied: for guests much larger than 1 GiB that is the case to
 * measure again.
 */
#ifndef TVM_SNAPSHOT_H
#define TVM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "snapfile.h"
#include "vm.h"

enum {
	SNAP_SEC_MACHINE = 1,
	SNAP_SEC_VCPU = 2,
	SNAP_SEC_IRQCHIP = 3,
	SNAP_SEC_DEVICE = 4,
	SNAP_SEC_MEMORY = 5,
	SNAP_SEC_ORIGIN = 6,
	SNAP_SEC_PARENT = 7,
	SNAP_SEC_DISK = 8,
};

/* The section types and versions this trialvm reads (for snap_open). */
extern const struct snap_known snapshot_known[];
extern const size_t snapshot_nknown;
/* "memory" for SNAP_SEC_MEMORY...; NULL when unknown. */
const char *snapshot_section_name(uint32_t type);

/* A section the caller adds (the origin). */
struct snap_extra {
	uint32_t type;
	uint16_t version, flags;
	const void *data;
	uint64_t len;
};

/* Write the state of vm to PATH (temporary name, fsync, rename). Every
 * vCPU must be paused (vm_pause) or stopped. h gives the ids (a parent id
 * for an incremental snapshot) and images; its format_version and
 * trialvm_version are filled in here. dirty NULL: a full snapshot (every
 * non-zero page); else one bitmap per region (vm_dirty_log_fetch) of the
 * pages written since the parent: those alone are stored, zero ones as
 * zero runs. */
int vm_snapshot_save(struct vm *vm, const char *path, struct snap_header *h, const uint64_t *const *dirty,
		     const struct snap_extra *extra, int nextra, struct tvm_err *err);

/* The same in two steps, so that the vCPUs are paused only while the
 * state is read and the pages copied aside: vm_snapshot_capture (paused),
 * then snap_capture_write on any thread, the VM running again (it touches
 * only the capture). */
struct snap_capture;
struct snap_capture *vm_snapshot_capture(struct vm *vm, const uint64_t *const *dirty, struct tvm_err *err);
int snap_capture_write(const struct snap_capture *c, const char *path, struct snap_header *h,
		       const struct snap_extra *extra, int nextra, struct tvm_err *err);
/* Pages it holds (zero ones included). */
uint64_t snap_capture_pages(const struct snap_capture *c);
/* How long copying its pages aside took (ns). */
uint64_t snap_capture_memory_ns(const struct snap_capture *c);
void snap_capture_free(struct snap_capture *c);

/* The first section of `type`, read whole as a state record (at most
 * VS_MAX_RECORD bytes) into a malloc'ed *buf that *in describes (`what`
 * names it in messages): 1, 0 when absent, -1 with err. */
struct vs_in;
int snapshot_record(struct snap_reader *r, uint32_t type, uint8_t **buf, struct vs_in *in, const char *what,
		    struct tvm_err *err);

/* Open PATH and, for an incremental snapshot, its parents by the file
 * name each names (in PATH's directory), back to a full one, and check the
 * chain (ids, no cycle). *chain (malloc'd, n readers) is in
 * snapshot_chain_check order: chain[0] the full one, chain[n-1] PATH's;
 * with paths, *paths their file names (malloc'd, as the caller frees
 * them). 0, or -1 with err (nothing left open). */
#define SNAP_MAX_CHAIN 4096
int snapshot_open_chain(const char *path, struct snap_reader ***chain, char ***paths, int *n, struct tvm_err *err);

/* The machine a snapshot needs (RAM size, vCPUs), to create the VM. */
int vm_snapshot_config(struct snap_reader *r, struct vm_config *cfg, struct tvm_err *err);

/* chain[0] is a full snapshot, chain[i] names chain[i-1] as its parent,
 * no id twice: 0, else -1 with err. */
int snapshot_chain_check(struct snap_reader *const *chain, int n, struct tvm_err *err);

/* Load chain[nchain-1] (chain[0..] its full ancestor and the incremental
 * ones between, snapshot_chain_check order) into a VM created with
 * vm_snapshot_config's settings and the same devices, before its vCPUs
 * first run (instead of a kernel): memory from each snapshot in order, the
 * rest from the last. Every value is checked; on error the VM must be
 * destroyed. */
int vm_snapshot_load(struct vm *vm, struct snap_reader *const *chain, int nchain, bool memory_mapped,
		     struct tvm_err *err);
/* (memory_mapped: the VM's RAM is already the chain's memory, mapped from
 * snapshot_materialize's file: memory sections are not read again.) */

/* Write the chain's guest memory, decompressed, as one file of the
 * machine's RAM size at PATH (sparse where zero; temporary name, fsync,
 * rename): what vm_config.ram_file maps, so that a restore's time does not
 * grow with guest RAM. */
int snapshot_materialize(struct snap_reader *const *chain, int n, const char *path, struct tvm_err *err);

/* ---- memory sections run by run (a report bundle takes a snapshot apart
 * and makes it again, byte for byte: reporter/bundle.c) ---- */
#define SNAP_RUN_MAX_PAGES 256u /* pages per run */
#define SNAP_RUN_ZERO 1u        /* run flags: zero pages, no data */
struct snap_run {
	uint64_t gpa;
	uint32_t npages, flags, clen, crc; /* clen, crc: of the compressed frame, of the pages */
};
/* pages: the run's npages pages, decompressed and checked; NULL for a zero run. */
typedef int (*snapshot_run_fn)(void *arg, const struct snap_run *run, const uint8_t *pages, struct tvm_err *err);
/* The bytes before a section's runs: 0 for a memory section, the disk's
 * name and size for a disk section (read and checked). 0 or -1. */
int snapshot_runs_prefix(struct snap_reader *r, const struct snap_section *s, uint64_t *len, struct tvm_err *err);
/* Each run of memory or disk section s in order (framing, bounds,
 * decompression and CRC checked as a restore checks them; a disk run's
 * "gpa" is its byte offset in the disk); stops at fn's first -1. */
int snapshot_memory_runs(struct snap_reader *r, const struct snap_section *s, snapshot_run_fn fn, void *arg,
			 struct tvm_err *err);
/* A memory section made again from its runs: each run compressed as the
 * snapshot writer compresses it, and refused, naming it, unless its
 * compressed length and CRC are the ones given (want). */
struct snap_memsec;
struct snap_memsec *snap_memsec_new(void);
int snap_memsec_add(struct snap_memsec *m, const struct snap_run *want, const uint8_t *pages, struct tvm_err *err);
/* Bytes before the runs (a disk section's name and size). -1: out of memory. */
int snap_memsec_prefix(struct snap_memsec *m, const void *p, size_t len);
/* The section so far into w (snap_add) as a section of type, and empty again. */
int snap_memsec_write(struct snap_memsec *m, struct snap_writer *w, uint32_t type, uint16_t version, uint16_t flags,
		      struct tvm_err *err);
void snap_memsec_free(struct snap_memsec *m);

/* --snapshot-keep: rewrite the incremental snapshot NEWER (whose parent is
 * the full snapshot OLDER) as a full one with the same id: OLDER's pages
 * that NEWER does not hold, then NEWER's. Written beside NEWER and renamed
 * over it; OLDER is left for the caller to delete. */
int snapshot_merge(const char *older, const char *newer, struct tvm_err *err);

#endif
