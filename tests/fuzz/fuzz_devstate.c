/* tests/fuzz/fuzz_devstate.c - libFuzzer harness for the device state
 * records a snapshot restore hands to each device (vm_device_ops.load):
 * the UART, the system ports and a virtio-mmio transport (virtio-rng),
 * on a struct vm that never opens KVM (one 64 KiB RAM region, its own
 * allocation so ASan sees any access past it).
 *
 * Input: u8 mode, then
 *   mode bit 7 set:   the rest is the record, as is;
 *   mode bit 7 clear: the device's own saved record is mutated by the rest,
 *                     read as (u16 offset, u8 xor) triples, then cut to
 *                     (u16 length) from the first two bytes when nonzero;
 * mode % 3 picks the device. A record the loader accepts must save back
 * to a record that loads again and saves to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"
#include "devices/virtio.h"
#include "fuzz_vm.h"
#include "vmm/vmstate.h"

#define REGION (64u * 1024)

static struct vm *vm;

static void setup(void)
{
	vm = fuzz_vm_new(1);
	uint8_t *ram = calloc(1, REGION);
	REQUIRE(ram);
	vm->regions[vm->nregions++] = (struct mem_region){ .gpa = 0, .size = REGION, .host = ram };
	vm->ram = NULL;
	struct tvm_err err;
	REQUIRE(uart_init(vm, &err) == 0);
	REQUIRE(sysdev_init(vm, &err) == 0);
	REQUIRE(virtio_rng_init(vm, &err) == 0);
	REQUIRE(vm_device_count(vm) == 3);
}

static int load(int dev, const uint8_t *p, size_t len)
{
	const struct vm_device_ops *ops;
	void *d;
	REQUIRE(vm_device_at(vm, dev, &ops, &d));
	struct tvm_err err;
	struct vs_in in = { .p = p, .len = len, .what = "fuzz" };
	if (vs_check(&in, NULL, 0, &err) < 0)
		return -1;
	return ops->load(d, &in, ops->version, &err);
}

static struct vs_out save(int dev)
{
	const struct vm_device_ops *ops;
	void *d;
	REQUIRE(vm_device_at(vm, dev, &ops, &d));
	struct vs_out o = { 0 };
	struct tvm_err err;
	REQUIRE(ops->save(d, &o, &err) == 0);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!vm)
		setup();
	if (len < 1)
		return 0;
	int dev = data[0] % 3;
	uint8_t *rec;
	size_t rlen;
	if (data[0] & 0x80) {
		rlen = len - 1;
		rec = malloc(rlen ? rlen : 1);
		REQUIRE(rec);
		memcpy(rec, data + 1, rlen);
	} else {
		struct vs_out o = save(dev);
		rec = o.buf ? o.buf : malloc(1);
		rlen = o.len;
		REQUIRE(rec);
		size_t i = 1;
		if (len >= 3) {
			uint16_t cut;
			memcpy(&cut, data + 1, 2);
			if (cut && cut < rlen)
				rlen = cut;
			i = 3;
		}
		for (; i + 3 <= len; i += 3) {
			uint16_t off;
			memcpy(&off, data + i, 2);
			if (rlen)
				rec[off % rlen] ^= data[i + 2];
		}
	}
	if (load(dev, rec, rlen) == 0) {
		struct vs_out a = save(dev);
		REQUIRE(load(dev, a.buf, a.len) == 0);
		struct vs_out b = save(dev);
		REQUIRE(a.len == b.len && !memcmp(a.buf, b.buf, a.len));
		vs_out_free(&a);
		vs_out_free(&b);
	}
	free(rec);
	return 0;
}
