/* devices/sysdev.c - small system ports: the trialvm power-off port,
 * reset (0xcf9 and the i8042 0xfe command), pvpanic, POST port 0x80. */
#include "devices.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../guests/include/trialvm_abi.h"
#include "../vmm/bus.h"
#include "../vmm/util.h"

static struct vm *the_vm;

static void raise_simple(int vcpu, enum tvm_event_kind kind, int code, uint64_t data0, const char *detail)
{
	struct tvm_event ev = { .kind = kind, .exit_code = code };
	ev.data[0] = data0;
	snprintf(ev.detail, sizeof(ev.detail), "%s", detail);
	vm_raise(the_vm, vcpu, &ev);
}

static void poweroff_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	if (!is_write) {
		memset(data, 0, size);
		return;
	}
	if (off != 0)
		return;
	char msg[64];
	snprintf(msg, sizeof(msg), "the guest powered off with status %u", data[0]);
	raise_simple(vcpu, TVM_EV_POWEROFF, data[0], data[0], msg);
}

static uint8_t cf9_value;

static void cf9_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	(void)off;
	(void)size;
	if (!is_write) {
		data[0] = cf9_value;
		return;
	}
	cf9_value = data[0] & 0x0e;
	if (data[0] & 0x04)
		raise_simple(vcpu, TVM_EV_RESET, 0, data[0], "the guest asked for a reset (port 0xcf9)");
}

/* i8042: just enough for a reset command and a driver probe that does not
 * hang: controller self-test, configuration byte, no keyboard data. */
static struct {
	pthread_mutex_t lock;
	uint8_t ctr, out, pending_cmd;
	bool out_full;
} kbc = { .lock = PTHREAD_MUTEX_INITIALIZER, .ctr = 0x30 };

static void i8042_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	bool reset = false;
	pthread_mutex_lock(&kbc.lock);
	if (off == 4) { /* 0x64: status / command */
		if (!is_write) {
			data[0] = (uint8_t)(0x04 | (kbc.out_full ? 0x01 : 0)); /* system flag */
		} else {
			uint8_t cmd = data[0];
			kbc.pending_cmd = 0;
			switch (cmd) {
			case 0x20: kbc.out = kbc.ctr; kbc.out_full = true; break;
			case 0x60: kbc.pending_cmd = 0x60; break;
			case 0xaa: kbc.out = 0x55; kbc.out_full = true; break;
			case 0xab: kbc.out = 0x00; kbc.out_full = true; break;
			case 0xfe: reset = true; break;
			default: break;
			}
		}
	} else if (off == 0) { /* 0x60: data */
		if (!is_write) {
			data[0] = kbc.out;
			kbc.out_full = false;
		} else if (kbc.pending_cmd == 0x60) {
			kbc.ctr = data[0];
			kbc.pending_cmd = 0;
		}
	} else if (!is_write) {
		data[0] = 0xff;
	}
	pthread_mutex_unlock(&kbc.lock);
	if (reset)
		raise_simple(vcpu, TVM_EV_RESET, 0, 0xfe, "the guest asked for a reset (i8042 command 0xfe)");
}

static void pvpanic_io(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	(void)off;
	if (!is_write) {
		memset(data, 0, size);
		data[0] = TVM_PVPANIC_PANICKED | TVM_PVPANIC_CRASH_LOADED;
		return;
	}
	if (data[0] & TVM_PVPANIC_PANICKED)
		raise_simple(vcpu, TVM_EV_PANIC, 0, data[0], "the guest kernel panicked (pvpanic)");
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

int sysdev_init(struct vm *vm, struct tvm_err *err)
{
	the_vm = vm;
	cf9_value = 0;
	kbc.ctr = 0x30;
	kbc.out_full = false;
	kbc.pending_cmd = 0;
	if (bus_register(vm, BUS_PIO, TVM_PORT_POWEROFF, 4, poweroff_io, NULL, "poweroff", err) < 0 ||
	    bus_register(vm, BUS_PIO, 0xcf9, 1, cf9_io, NULL, "reset-cf9", err) < 0 ||
	    bus_register(vm, BUS_PIO, 0x60, 5, i8042_io, NULL, "i8042", err) < 0 ||
	    bus_register(vm, BUS_PIO, TVM_PORT_PVPANIC, 1, pvpanic_io, NULL, "pvpanic", err) < 0 ||
	    bus_register(vm, BUS_PIO, 0x80, 1, post_io, NULL, "post-0x80", err) < 0)
		return -1;
	return 0;
}
