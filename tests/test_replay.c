/* tests/test_replay.c - the replay engine (monitor/replay.h) driven
 * without KVM: the hooks it gives vm_set_replay are called here as vCPU
 * threads would call them, in orders a real replay can take. Checked: a
 * two-vCPU log replays with the vCPUs' exits in another order between each
 * other than the recorded one; a vCPU past its records is held while the
 * other goes on, and the last one ends the replay; a changed exit is a
 * divergence naming the record; a segment ending at a snapshot goes on
 * into the next segment beside it (exit numbers from 1 again), or not with
 * --until snapshot; logs whose vCPUs are not the machine's are refused.
 * The vm.h calls replay.c makes are stubbed below (the archive's vm.o is
 * not linked). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../monitor/replay.h"
#include "../vmm/evlog.h"
#include "check.h"

/* ---- the stubs: what replay.c may call of the VM ---- */
static const struct vm_replay_ops *ops;
static void *ops_ctx;
static int raised, raised_kind, held_mask;
static char raised_detail[sizeof(((struct tvm_event *)0)->detail)];

void vm_set_replay(struct vm *vm, const struct vm_replay_ops *o, void *ctx)
{
	(void)vm;
	ops = o;
	ops_ctx = ctx;
}
void vm_raise(struct vm *vm, int vcpu, struct tvm_event *ev)
{
	(void)vm, (void)vcpu;
	raised++;
	raised_kind = ev->kind;
	snprintf(raised_detail, sizeof(raised_detail), "%s", ev->detail);
}
void vm_hold_vcpu(struct vm *vm, int idx)
{
	(void)vm;
	held_mask |= 1 << idx;
}
bool vm_debug_on(const struct vm *vm)
{
	(void)vm;
	return false;
}
void vm_debug_interrupt(struct vm *vm) { (void)vm; }
int vm_capture_cpu(struct vm *vm, int idx, struct cpu_state *out, struct tvm_err *err)
{
	(void)vm, (void)idx, (void)out;
	return tvm_seterr(err, "no VM here");
}
int vm_ncpus(const struct vm *vm)
{
	(void)vm;
	return 1;
}
int vm_regions(const struct vm *vm, const struct mem_region **out)
{
	(void)vm;
	*out = NULL;
	return 0;
}

/* ---- helpers ---- */
static char dir[] = "/tmp/tvm-test-replay.XXXXXX";
static int fake; /* the struct vm the stubs never look into */
static const uint8_t snap_a[16] = { 0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t snap_b[16] = { 0xb1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

static void reset(void)
{
	ops = NULL;
	raised = raised_kind = held_mask = 0;
	raised_detail[0] = 0;
}

static struct replay *open_attach(const char *path, const uint8_t *id, int ncpus, struct tvm_err *err)
{
	reset();
	struct replay *rp = replay_open(path, id, ncpus, err);
	if (rp)
		replay_attach(rp, (struct vm *)&fake);
	return rp;
}

/* A port write exit of one byte. */
static bool out_b(int vcpu, uint64_t seq, uint16_t port, uint8_t v)
{
	return ops->exit_check(ops_ctx, vcpu, seq, 1, true, 1, 1, port, &v, 0x1000);
}

/* A port read of 4 bytes: the value the log gives, or ~0 when refused. */
static uint32_t in_l(int vcpu, uint64_t seq, uint16_t port, bool *ok)
{
	uint32_t v = 0xdeadbeef;
	*ok = ops->exit_check(ops_ctx, vcpu, seq, 1, false, 4, 1, port, (uint8_t *)&v, 0x1000);
	if (*ok)
		ops->exit_fill(ops_ctx, vcpu, (uint8_t *)&v, 4);
	return *ok ? v : ~0u;
}

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

/* Two vCPUs, their records interleaved as recorded: v0 e1, v1 e1, v1's
 * random bytes and e2 (a read of 0x11223344), v0 e2, then the end. */
static void write_two_vcpus(const char *path, unsigned why)
{
	struct tvm_err err = { "" };
	struct evlog *l = evlog_create(path, snap_a, false, &err);
	uint8_t a = 'a', b = 'b', c = 'c';
	uint32_t v = 0x11223344;
	uint8_t rnd[5] = { 9, 8, 7, 6, 5 };
	evlog_exit(l, 0, 1, 1, true, 1, 1, 0x3f8, &a);
	evlog_exit(l, 1, 1, 1, true, 1, 1, 0x3f8, &b);
	evlog_data(l, 1, 2, EVLOG_SRC_RANDOM, rnd, sizeof(rnd));
	evlog_exit(l, 1, 2, 1, false, 4, 1, 0x510, &v);
	evlog_exit(l, 0, 2, 1, true, 1, 1, 0x3f8, &c);
	evlog_close(l, why, NULL, &err);
}

static void test_two_vcpus(void)
{
	char p[300];
	path_of(p, sizeof(p), "snap-000007.tvl");
	write_two_vcpus(p, EVLOG_END_SNAPSHOT);
	struct tvm_err err = { "" };
	struct replay *rp = open_attach(p, snap_a, 2, &err);
	CHECKF("replay_smp_open", rp && ops, "%s", err.msg);
	if (!rp)
		return;
	/* vCPU 1 first, all of it, then vCPU 0: not the recorded order. */
	bool ok;
	CHECK("replay_smp_v1_e1", out_b(1, 1, 0x3f8, 'b'));
	uint8_t got[5] = { 0 };
	/* vCPU 1's exit 2 takes the random bytes during the exit. */
	uint32_t v = 0;
	ok = ops->exit_check(ops_ctx, 1, 2, 1, false, 4, 1, 0x510, (uint8_t *)&v, 0x1000);
	ops->input(ops_ctx, 1, 2, EVLOG_SRC_RANDOM, got, sizeof(got));
	ops->exit_fill(ops_ctx, 1, (uint8_t *)&v, 4);
	CHECKF("replay_smp_v1_e2", ok && v == 0x11223344 && got[0] == 9 && got[4] == 5, "ok %d v %x got %u", ok, v,
	       got[0]);
	/* Its next exit is past its records: it is held, the run goes on. */
	CHECKF("replay_smp_v1_held", !out_b(1, 3, 0x3f8, 'x') && held_mask == 2 && raised == 0, "held %x raised %d",
	       held_mask, raised);
	CHECK("replay_smp_v0", out_b(0, 1, 0x3f8, 'a') && out_b(0, 2, 0x3f8, 'c') && raised == 0);
	/* vCPU 0's next exit: the last vCPU at the end ends the replay. */
	in_l(0, 3, 0x510, &ok);
	CHECKF("replay_smp_end", !ok && raised == 1 && raised_kind == TVM_EV_REPLAY_END &&
	       strstr(raised_detail, "no next segment snap-000008.tvl"), "raised %d kind %d: %s", raised, raised_kind,
	       raised_detail);
	replay_close(rp);

	/* The same log, vCPU 0 making another exit than its second. */
	rp = open_attach(p, snap_a, 2, &err);
	CHECK("replay_smp_diverge_first", rp && out_b(1, 1, 0x3f8, 'b') && out_b(0, 1, 0x3f8, 'a'));
	CHECKF("replay_smp_diverge", rp && !out_b(0, 2, 0x3f8, 'Z') && raised == 1 && raised_kind == TVM_EV_DIVERGED,
	       "raised %d kind %d", raised, raised_kind);
	/* Once stopped, nothing more is handled. */
	CHECK("replay_smp_stopped", rp && !out_b(1, 2, 0x510, 0) && raised == 1);
	replay_close(rp);

	/* A one-vCPU machine for a log with vCPU 1's records: refused. */
	rp = open_attach(p, snap_a, 1, &err);
	CHECKF("replay_smp_refused", !rp && strstr(err.msg, "records of vCPU 1") && strstr(err.msg, "--cpus"), "%s",
	       err.msg);
	replay_close(rp);
}

/* A one-vCPU run from its start: start-000003.tvl (2 exits) ends at a
 * snapshot, snap-000003.tvl (2 exits, numbered from 1) at the crash. */
static void test_segments(void)
{
	char p1[300], p2[300];
	path_of(p1, sizeof(p1), "start-000003.tvl");
	path_of(p2, sizeof(p2), "snap-000003.tvl");
	struct tvm_err err = { "" };
	struct evlog *l = evlog_create(p1, NULL, true, &err);
	uint8_t x = 1;
	evlog_exit(l, 0, 1, 1, true, 1, 1, 0x80, &x);
	evlog_exit(l, 0, 2, 1, true, 1, 1, 0x81, &x);
	evlog_close(l, EVLOG_END_SNAPSHOT, NULL, &err);
	l = evlog_create(p2, snap_b, true, &err);
	evlog_exit(l, 0, 1, 1, true, 1, 1, 0x82, &x);
	evlog_exit(l, 0, 2, 1, true, 1, 1, 0x83, &x);
	evlog_close(l, EVLOG_END_CRASH, NULL, &err);

	struct replay *rp = open_attach(p1, NULL, 1, &err);
	CHECKF("replay_seg_open", rp, "%s", err.msg);
	if (!rp)
		return;
	bool ok = out_b(0, 1, 0x80, 1) && out_b(0, 2, 0x81, 1);
	/* Exit 3 of the replay is exit 1 of the next segment. */
	ok = ok && out_b(0, 3, 0x82, 1) && out_b(0, 4, 0x83, 1) && raised == 0;
	CHECKF("replay_seg_next", ok, "raised %d: %s", raised, raised_detail);
	/* The recorded run crashed there: going on is a divergence. */
	CHECK("replay_seg_past_crash", !out_b(0, 5, 0x84, 1) && raised == 1 && raised_kind == TVM_EV_DIVERGED);
	replay_close(rp);

	/* The wrong port at the next segment's first exit: a divergence. */
	rp = open_attach(p1, NULL, 1, &err);
	ok = rp && out_b(0, 1, 0x80, 1) && out_b(0, 2, 0x81, 1);
	CHECK("replay_seg_next_diverge", ok && !out_b(0, 3, 0x81, 1) && raised_kind == TVM_EV_DIVERGED);
	replay_close(rp);

	/* --until snapshot: the first segment only. */
	rp = open_attach(p1, NULL, 1, &err);
	if (rp)
		replay_set_until(rp, 0, true);
	ok = rp && out_b(0, 1, 0x80, 1) && out_b(0, 2, 0x81, 1);
	CHECKF("replay_seg_until_snapshot", ok && !out_b(0, 3, 0x82, 1) && raised_kind == TVM_EV_REPLAY_END &&
	       strstr(raised_detail, "--until snapshot"), "kind %d: %s", raised_kind, raised_detail);
	replay_close(rp);

	/* --until exit N counts from the replay's start, across segments. */
	rp = open_attach(p1, NULL, 1, &err);
	if (rp)
		replay_set_until(rp, 3, false);
	ok = rp && out_b(0, 1, 0x80, 1) && out_b(0, 2, 0x81, 1) && out_b(0, 3, 0x82, 1);
	CHECKF("replay_seg_until_exit", ok && raised == 1 && raised_kind == TVM_EV_REPLAY_END &&
	       strstr(raised_detail, "after exit 3"), "kind %d: %s", raised_kind, raised_detail);
	replay_close(rp);

	/* The next segment is a FIFO: the chain ends there, and the replay
	 * at the snapshot, saying why (no read of the FIFO blocks). */
	char p3[300], p4[300];
	path_of(p3, sizeof(p3), "snap-000005.tvl");
	path_of(p4, sizeof(p4), "snap-000006.tvl");
	l = evlog_create(p3, snap_a, true, &err);
	evlog_exit(l, 0, 1, 1, true, 1, 1, 0x80, &x);
	evlog_close(l, EVLOG_END_SNAPSHOT, NULL, &err);
	CHECK("replay_seg_fifo_made", mkfifo(p4, 0600) == 0);
	rp = open_attach(p3, snap_a, 1, &err);
	ok = rp && out_b(0, 1, 0x80, 1);
	CHECKF("replay_seg_fifo", ok && !out_b(0, 2, 0x80, 1) && raised_kind == TVM_EV_REPLAY_END &&
	       strstr(raised_detail, "cannot be read"), "kind %d: %s", raised_kind, raised_detail);
	replay_close(rp);

	/* A one-vCPU log on a two-vCPU machine: refused. */
	rp = open_attach(p2, snap_b, 2, &err);
	CHECKF("replay_exact_two", !rp && strstr(err.msg, "--cpus 1"), "%s", err.msg);
	replay_close(rp);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_two_vcpus();
	test_segments();
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("%d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
