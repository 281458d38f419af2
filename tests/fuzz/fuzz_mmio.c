/* tests/fuzz/fuzz_mmio.c - libFuzzer harness for the virtio-mmio register
 * file (devices/virtio_mmio.c) with the rng or console device behind it,
 * over a fake guest memory: the fuzzer plays a driver issuing arbitrary
 * register accesses while it also scribbles over guest RAM.
 *
 * Input layout (little-endian):
 *   0  u8  device       bit 0: 0 rng, 1 console
 *   1  u16 memlen       bytes of guest memory image that follow (clamped)
 *   3  ...              memory image, RAM at gpa 0 (an exact-size allocation)
 *   then 8-byte operations until the end:
 *      u8  op           bits 0-1: size 1/2/4/8; bit 2: write; bit 3: poke
 *                       guest memory instead of a register; bit 4: the
 *                       offset is a "virtio-like" register (off & 0xfc)
 *      u8  off_hi
 *      u16 off          register offset (off_hi adds bits 16-23) or memory
 *                       offset
 *      u32 value        (zero-extended to 8 bytes)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"
#include "devices/virtio.h"

#define MAX_MEM (64u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static bool inited;
	if (!inited) {
		struct tvm_err err;
		console_open(NULL, true, &err); /* console output into the tail only */
		inited = true;
	}
	if (len < 3)
		return 0;
	const struct virtio_dev_ops *ops = (data[0] & 1) ? &virtio_console_ops : &virtio_rng_ops;
	size_t memlen;
	uint16_t ml;
	memcpy(&ml, data + 1, 2);
	memlen = ml;
	if (memlen > len - 3)
		memlen = len - 3;
	if (memlen > MAX_MEM)
		memlen = MAX_MEM;
	uint8_t *ram = malloc(memlen ? memlen : 1);
	if (!ram)
		abort();
	memcpy(ram, data + 3, memlen);
	struct mem_region r = { 0, memlen, ram };
	struct guest_mem m = { &r, memlen ? 1 : 0 };

	static struct virtio_mmio t;
	virtio_mmio_init(&t, &m, ops, NULL);
	static const unsigned sizes[4] = { 1, 2, 4, 8 };
	for (size_t p = 3 + memlen; p + 8 <= len; p += 8) {
		uint8_t op = data[p];
		uint64_t off = (uint64_t)data[p + 1] << 16 | (uint64_t)data[p + 2] | (uint64_t)data[p + 3] << 8;
		uint32_t v32;
		memcpy(&v32, data + p + 4, 4);
		unsigned size = sizes[op & 3];
		bool is_write = op & 4;
		if (op & 8) { /* the driver writes guest memory */
			if (memlen && off < memlen) {
				size_t n = memlen - off < size ? memlen - off : size;
				uint64_t v = v32;
				memcpy(ram + off, &v, n);
			}
			continue;
		}
		if (op & 0x10)
			off &= 0xfc;
		uint8_t buf[8] = { 0 };
		uint64_t v = v32;
		memcpy(buf, &v, 8);
		virtio_mmio_access(&t, off, buf, size, is_write);
		if (t.interrupt_status & ~3u)
			abort();
		for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
			if (t.q[q].ready && (q >= ops->num_queues || t.q[q].size == 0 || t.q[q].size > ops->queue_max))
				abort();
	}
	pthread_mutex_destroy(&t.lock);
	free(ram);
	return 0;
}
