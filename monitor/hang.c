#include "hang.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../vmm/sandbox.h"
#include "../vmm/util.h"

#define SAMPLES 8

struct hang_watch {
	struct vm *vm;
	unsigned timeout_ms;
	pthread_t thread;
	volatile int stop;
	bool joined;           /* hang_watch_halt done (the caller's thread only) */
};

struct cpu_watch {
	uint64_t exits;
	uint64_t since_ns; /* when the current quiet stretch began */
	uint64_t rip[SAMPLES];
	int nrip;
};

static void *watch_thread(void *arg)
{
	struct hang_watch *hw = arg;
	struct tvm_err err;
	if (sandbox_enter(SANDBOX_WATCH, &err) < 0) {
		tvm_log("error: %s; hangs are not detected", err.msg);
		return NULL;
	}
	int n = vm_ncpus(hw->vm);
	struct cpu_watch *w = calloc((size_t)n, sizeof(*w));
	if (!w)
		return NULL;
	unsigned period_ms = hw->timeout_ms / SAMPLES;
	if (period_ms < 10)
		period_ms = 10;
	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++)
		w[i].since_ns = t0;
	while (!hw->stop) {
		for (unsigned slept = 0; slept < period_ms && !hw->stop; slept += 10)
			usleep(10000);
		if (hw->stop)
			break;
		uint64_t now = now_ns();
		for (int i = 0; i < n && !hw->stop; i++) {
			struct cpu_watch *c = &w[i];
			uint64_t exits = vm_exit_count(hw->vm, i);
			uint64_t rip;
			int cpl, mp;
			if (vm_sample_rip(hw->vm, i, 500, &rip, &cpl, &mp) < 0)
				continue;
			/* Progress: exits, a halted or waiting vCPU (or one trialvm
			 * holds paused: mp -1), or RIP leaving the region. */
			bool moved = c->nrip && ((rip ^ c->rip[0]) & ~0xfffull);
			if (exits != c->exits || mp != 0 /* KVM_MP_STATE_RUNNABLE */ || moved) {
				c->exits = exits;
				c->since_ns = now;
				c->nrip = 0;
			}
			if (c->nrip < SAMPLES)
				c->rip[c->nrip++] = rip;
			else {
				memmove(c->rip, c->rip + 1, sizeof(c->rip[0]) * (SAMPLES - 1));
				c->rip[SAMPLES - 1] = rip;
			}
			if (now - c->since_ns >= (uint64_t)hw->timeout_ms * 1000000ull && c->nrip >= 2) {
				struct tvm_event ev = { .kind = TVM_EV_HANG };
				ev.data[0] = (uint64_t)i;
				int p = snprintf(ev.detail, sizeof(ev.detail),
						 "vCPU %d made no progress for %u ms (no exits; CPL %d; RIP samples", i,
						 hw->timeout_ms, cpl);
				for (int k = 0; k < c->nrip && p < (int)sizeof(ev.detail) - 24; k++)
					p += snprintf(ev.detail + p, sizeof(ev.detail) - (size_t)p, " 0x%llx",
						      (unsigned long long)c->rip[k]);
				snprintf(ev.detail + p, sizeof(ev.detail) - (size_t)p, ")");
				vm_raise(hw->vm, -1, &ev);
				hw->stop = 1;
			}
		}
	}
	free(w);
	return NULL;
}

struct hang_watch *hang_watch_start(struct vm *vm, unsigned timeout_ms)
{
	struct hang_watch *hw = calloc(1, sizeof(*hw));
	if (!hw)
		return NULL;
	hw->vm = vm;
	hw->timeout_ms = timeout_ms;
	if (start_thread_nosignals(&hw->thread, watch_thread, hw, false) != 0) {
		free(hw);
		return NULL;
	}
	return hw;
}

void hang_watch_halt(void *arg)
{
	struct hang_watch *hw = arg;
	if (!hw || hw->joined)
		return;
	hw->stop = 1;
	pthread_join(hw->thread, NULL);
	hw->joined = true;
}

void hang_watch_stop(struct hang_watch *hw)
{
	if (!hw)
		return;
	hang_watch_halt(hw);
	free(hw);
}
