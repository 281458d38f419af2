/* devices/sysdev.c - small system ports: the trialvm power-off port,
 * reset (0xcf9 and the i8042 0xfe command), pvpanic, POST port 0x80. */
#include "devices.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/util.h"
#include "../vmm/vmstate.h"

/* One per VM, owned by it: the reset register and the i8042's state (the
 * power-off, pvpanic and POST ports keep none). */
struct sysdev {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t cf9;
	uint8_t ctr, out, pending_cmd;
	bool out_full;
};

static void raise_simple(struct vm *vm, int vcpu, enum tvm_event_kind kind, int code, uint64_t data0, const char *detail)
{
	struct tvm_event ev = { .kind = kind, .exit_code = code };
	ev.data[0] = data0;
	snprintf(ev.detail, sizeof(ev.detail), "%s", detail);
	vm_raise(vm, vcpu, &ev);
}

static void poweroff_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct sysdev *sd = dev;
	if (!is_write) {
		memset(data, 0, size);
		return;
	}
	if (off != 0)
		return;
	char msg[64];
	snprintf(msg, sizeof(msg), "the guest powered off with status %u", data[0]);
	raise_simple(sd->vm, vcpu, TVM_EV_POWEROFF, data[0], data[0], msg);
}

static void cf9_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct sysdev *sd = dev;
	(void)off;
	(void)size;
	pthread_mutex_lock(&sd->lock);
	if (!is_write) {
		data[0] = sd->cf9;
		pthread_mutex_unlock(&sd->lock);
		return;
	}
	sd->cf9 = data[0] & 0x0e;
	pthread_mutex_unlock(&sd->lock);
	if (data[0] & 0x04)
		raise_simple(sd->vm, vcpu, TVM_EV_RESET, 0, data[0], "the guest asked for a reset (port 0xcf9)");
}

/* i8042: just enough for a reset command and a driver probe that does not
 * hang: controller self-test, configuration byte, no keyboard data. */
static void i8042_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct sysdev *sd = dev;
	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	bool reset = false;
	pthread_mutex_lock(&sd->lock);
	if (off == 4) { /* 0x64: status / command */
		if (!is_write) {
			data[0] = (uint8_t)(0x04 | (sd->out_full ? 0x01 : 0)); /* system flag */
		} else {
			uint8_t cmd = data[0];
			sd->pending_cmd = 0;
			switch (cmd) {
			case 0x20: sd->out = sd->ctr; sd->out_full = true; break;
			case 0x60: sd->pending_cmd = 0x60; break;
			case 0xaa: sd->out = 0x55; sd->out_full = true; break;
			case 0xab: sd->out = 0x00; sd->out_full = true; break;
			case 0xfe: reset = true; break;
			default: break;
			}
		}
	} else if (off == 0) { /* 0x60: data */
		if (!is_write) {
			data[0] = sd->out;
			sd->out_full = false;
		} else if (sd->pending_cmd == 0x60) {
			sd->ctr = data[0];
			sd->pending_cmd = 0;
		}
	} else if (!is_write) {
		data[0] = 0xff;
	}
	pthread_mutex_unlock(&sd->lock);
	if (reset)
		raise_simple(sd->vm, vcpu, TVM_EV_RESET, 0, 0xfe, "the guest asked for a reset (i8042 command 0xfe)");
}

static void pvpanic_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct sysdev *sd = dev;
	(void)off;
	if (!is_write) {
		memset(data, 0, size);
		data[0] = TVM_PVPANIC_PANICKED | TVM_PVPANIC_CRASH_LOADED;
		return;
	}
	if (data[0] & TVM_PVPANIC_PANICKED)
		raise_simple(sd->vm, vcpu, TVM_EV_PANIC, 0, data[0], "the guest kernel panicked (pvpanic)");
	else if (data[0] & TVM_PVPANIC_CRASH_LOADED)
		tvm_debug("the guest reports a crash kernel loaded (pvpanic)");
}

static void post_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	(void)vcpu;
	(void)off;
	if (!is_write)
		memset(data, 0xff, size); /* POST/delay port: writes vanish */
}

enum { SD_CF9 = 1, SD_KBC = 2 };

static int sysdev_save(void *dev, struct vs_out *o, struct tvm_err *err)
{
	struct sysdev *sd = dev;
	pthread_mutex_lock(&sd->lock);
	vs_put_u8(o, SD_CF9, sd->cf9);
	uint8_t kbc[4] = { sd->ctr, sd->out, sd->pending_cmd, sd->out_full };
	vs_put(o, SD_KBC, kbc, sizeof(kbc));
	pthread_mutex_unlock(&sd->lock);
	return vs_out_error(o, err);
}

static int sysdev_load(void *dev, const struct vs_in *in, uint16_t version, struct tvm_err *err)
{
	struct sysdev *sd = dev;
	(void)version;
	uint8_t cf9, kbc[4];
	if (vs_get_u8(in, SD_CF9, &cf9, "the reset register", err) < 0 ||
	    vs_get(in, SD_KBC, kbc, sizeof(kbc), "the i8042 state", err) < 0)
		return -1;
	if (kbc[2] != 0 && kbc[2] != 0x60)
		return tvm_seterr(err, "the i8042 state has pending command 0x%02x, which it never keeps", kbc[2]);
	pthread_mutex_lock(&sd->lock);
	sd->cf9 = cf9 & 0x0e;
	sd->ctr = kbc[0];
	sd->out = kbc[1];
	sd->pending_cmd = kbc[2];
	sd->out_full = kbc[3] != 0;
	pthread_mutex_unlock(&sd->lock);
	return 0;
}

static void sysdev_destroy(void *dev)
{
	struct sysdev *sd = dev;
	pthread_mutex_destroy(&sd->lock);
	free(sd);
}

static const struct vm_device_ops sysdev_ops = { .version = 1, .save = sysdev_save, .load = sysdev_load,
						 .destroy = sysdev_destroy };

int sysdev_init(struct vm *vm, struct tvm_err *err)
{
	struct sysdev *sd = calloc(1, sizeof(*sd));
	if (!sd)
		return tvm_seterr(err, "out of memory");
	pthread_mutex_init(&sd->lock, NULL);
	sd->vm = vm;
	sd->ctr = 0x30;
	if (vm_add_device(vm, "system-ports", &sysdev_ops, sd, err) < 0)
		return -1;
	if (bus_register(vm, BUS_PIO, TVM_PORT_POWEROFF, 4, poweroff_io, sd, "poweroff", err) < 0 ||
	    bus_register(vm, BUS_PIO, 0xcf9, 1, cf9_io, sd, "reset-cf9", err) < 0 ||
	    bus_register(vm, BUS_PIO, 0x60, 5, i8042_io, sd, "i8042", err) < 0 ||
	    bus_register(vm, BUS_PIO, TVM_PORT_PVPANIC, 1, pvpanic_io, sd, "pvpanic", err) < 0 ||
	    bus_register(vm, BUS_PIO, 0x80, 1, post_io, NULL, "post-0x80", err) < 0)
		return -1;
	return 0;
}
