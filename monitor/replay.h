/* monitor/replay.h - replay of a recorded run (README "Record and
 * replay"): the machine is restored from the snapshot an event log
 * segment starts at (or booted, for a segment from the start of a run),
 * and every exit is checked against the segment's records while every
 * input comes from them: what the guest read from a device register, the
 * clock, random and virtio-rng bytes. At a segment's end at a snapshot the
 * replay goes on into the next segment beside it. The first mismatch stops
 * the run (TVM_EV_DIVERGED) with a report naming the record, both sides
 * and the guest's RIP; a guest that goes on past the last segment's end is
 * stopped there (TVM_EV_REPLAY_END). A recording of more than one vCPU
 * replays best-effort: each vCPU's exits in their own order. */
#ifndef TVM_MONITOR_REPLAY_H
#define TVM_MONITOR_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "../vmm/vm.h"

struct replay;
/* Open LOG and check that it starts where the VM does: at snapshot
 * `start_id` (NULL: a boot, the start of a run), and that its vCPUs are
 * the VM's (ncpus). */
struct replay *replay_open(const char *log, const uint8_t *start_id, int ncpus, struct tvm_err *err);
/* Before the vCPUs start. */
void replay_attach(struct replay *rp, struct vm *vm);
/* --until exit N: the replay ends once exit N of vCPU 0 (counted from the
 * replay's start, from 1) was handled, status 0; under a debugger
 * (vm_debug_on) it stops for it there instead. 0: to the end. snapshot:
 * the replay ends at the first segment's end (--until snapshot). */
void replay_set_until(struct replay *rp, uint64_t exit_no, bool snapshot);
/* After the run: what was replayed, on stderr ("replay: ..."); the full
 * divergence report when there was one. */
void replay_summary(const struct replay *rp);
void replay_close(struct replay *rp);

/* The state hash a recorded run and its replay print at their end: sha256
 * over each vCPU's registers (general, RIP, RFLAGS, control registers,
 * EFER, segment selectors and bases, FS/GS base MSRs) and all of guest
 * memory, as 64 hex digits. The vCPUs must be stopped. */
int replay_state_hash(struct vm *vm, char hex[65], struct tvm_err *err);

#endif
