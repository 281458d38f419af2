/* devices/hcall.c - the trialvm hypercall port (guests/include/trialvm_abi.h).
 * Every field the guest hands over is copied once, then validated. */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/evlog.h"
#include "../vmm/util.h"
#include "hcall.h"

static struct ratelimit bad_rl = RATELIMIT_INIT(5, 1000);

static int32_t do_clock(struct vm *vm, int vcpu, struct tvm_hcall *h)
{
	clockid_t id;
	switch (h->arg[0]) {
	case 0: case 5: id = CLOCK_REALTIME; break;         /* REALTIME, REALTIME_COARSE */
	case 1: case 4: case 6: case 7: id = CLOCK_MONOTONIC; break; /* MONOTONIC, _RAW, _COARSE, BOOTTIME */
	default: return -EINVAL;
	}
	struct timespec ts;
	clock_gettime(id, &ts);
	h->arg[1] = (uint64_t)ts.tv_sec;
	h->arg[2] = (uint64_t)ts.tv_nsec;
	vm_nondet_input(vm, vcpu, EVLOG_SRC_CLOCK, &h->arg[1], 2 * sizeof(h->arg[1]));
	return 0;
}

static int32_t do_random(struct vm *vm, int vcpu, struct tvm_hcall *h)
{
	uint64_t len = h->arg[1];
	if (len > TVM_RANDOM_MAX)
		return -EINVAL;
	uint8_t *dst = gpa_ptr(vm, GPA(h->arg[0]), len);
	if (!dst)
		return -EFAULT;
	uint8_t buf[TVM_RANDOM_MAX];
	entropy_fill(buf, len);
	vm_nondet_input(vm, vcpu, EVLOG_SRC_RANDOM, buf, len);
	memcpy(dst, buf, len);
	return (int32_t)len;
}

static int32_t do_fault(struct vm *vm, int vcpu, struct tvm_hcall *h)
{
	struct app_fault *af = calloc(1, sizeof(*af));
	if (!af)
		return -ENOMEM;
	if (gpa_read(vm, GPA(h->arg[0]), &af->f, sizeof(af->f)) < 0)
		goto bad;
	if (af->f.magic != TVM_FAULT_MAGIC || af->f.version != TVM_ABI_VERSION) {
		tvm_log_limited(&bad_rl, "vCPU %d: fault record with bad magic/version ignored", vcpu);
		free(af);
		return -EINVAL;
	}
	af->f.app_name[sizeof(af->f.app_name) - 1] = 0;
	uint64_t n = af->f.nr_mappings;
	if (n > TVM_FAULT_MAX_MAPS)
		n = 0; /* an implausible list is dropped, the fault still counts */
	if (n && gpa_read(vm, GPA(af->f.mappings_gpa), af->maps, n * sizeof(af->maps[0])) < 0)
		n = 0;
	af->nmaps = (unsigned)n;
	struct tvm_event ev = { .kind = TVM_EV_APP_FAULT, .reason = af->f.signo, .payload = af,
				.payload_len = sizeof(*af) };
	snprintf(ev.detail, sizeof(ev.detail), "the application %s died of signal %u", af->f.app_name, af->f.signo);
	vm_raise(vm, vcpu, &ev);
	return 0;
bad:
	free(af);
	return -EFAULT;
}

static void hcall_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct vm *vm = dev;
	if (!is_write) {
		uint32_t sig = (off == 0 && size == 4) ? TVM_SIGNATURE : 0xffffffffu;
		memset(data, 0xff, size);
		memcpy(data, &sig, size < 4 ? size : 4);
		return;
	}
	if (off != 0 || size != 4) {
		tvm_log_limited(&bad_rl, "vCPU %d: hypercall port needs a 32-bit write at 0x%x", vcpu, TVM_PORT_HCALL);
		return;
	}
	uint32_t gpa;
	memcpy(&gpa, data, 4);
	struct tvm_hcall h;
	if ((gpa & 7) || gpa_read(vm, GPA(gpa), &h, sizeof(h)) < 0) {
		tvm_log_limited(&bad_rl, "vCPU %d: hypercall block at 0x%x is not aligned guest RAM", vcpu, gpa);
		return;
	}
	switch (h.op) {
	case TVM_HC_CLOCK: h.result = do_clock(vm, vcpu, &h); break;
	case TVM_HC_RANDOM: h.result = do_random(vm, vcpu, &h); break;
	case TVM_HC_FAULT: h.result = do_fault(vm, vcpu, &h); break;
	default:
		tvm_log_limited(&bad_rl, "vCPU %d: unknown hypercall %u", vcpu, h.op);
		h.result = -ENOSYS;
		break;
	}
	gpa_write(vm, GPA(gpa), &h, sizeof(h));
}

/* The port keeps no state between calls (each call's block is in guest
 * memory): its handler needs only the VM. */
int hcall_init(struct vm *vm, struct tvm_err *err)
{
	return bus_register(vm, BUS_PIO, TVM_PORT_HCALL, 4, hcall_io, vm, "hypercall", err);
}
