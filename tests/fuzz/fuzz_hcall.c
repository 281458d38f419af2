/* tests/fuzz/fuzz_hcall.c - libFuzzer harness for the hypercall port
 * (devices/hcall.c) with hostile guest memory: the hypercall block, the
 * fault record, its mapping list and the random buffer may lie anywhere, in
 * or out of RAM, across the end of a region, with any field.
 *
 * The VM is a struct vm (vmm/vm_internal.h) that never opens KVM: two RAM
 * regions (64 KiB at 0, 64 KiB at 4 GiB), each its own exact-size
 * allocation so ASan sees any access past its end; the port is reached the
 * way a vCPU reaches it, through bus_access. After each access the harness
 * checks the port's promises and aborts on a broken one: guest memory
 * changes only inside the hypercall block and the random buffer it names;
 * a raised fault event carries a validated record (magic, version, app_name
 * NUL-terminated, nmaps <= TVM_FAULT_MAX_MAPS, copied out of the guest).
 *
 * Input layout (little-endian):
 *   0  u8 number of accesses (mod 9)
 *   1  accesses, 8 bytes each: u8 kind (bit 0 write, bits 1-2 size 1/2/4/8,
 *      bit 3 offset 1 instead of 0), u8 vcpu, u16 unused, u32 value (the
 *      hypercall block's gpa for a 32-bit write at offset 0)
 *   .. RAM image: region 0, then region 1 (the rest stays zero)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"
#include "devices/hcall.h"
#include "guests/include/trialvm_abi.h"
#include "vmm/bus.h"
#include "fuzz_vm.h"

#define REGION (64u * 1024)

static struct vm *vm;
static uint8_t *before[2];

static bool in_range(uint64_t a, uint64_t start, uint64_t len)
{
	return a >= start && a - start < len;
}

/* Every byte that changed lies in [b0, b0+l0) or [b1, b1+l1). */
static void check_writes(uint64_t b0, uint64_t l0, uint64_t b1, uint64_t l1)
{
	for (int i = 0; i < vm->nregions; i++) {
		const struct mem_region *r = &vm->regions[i];
		if (!memcmp(r->host, before[i], r->size))
			continue;
		for (uint64_t off = 0; off < r->size; off++)
			if (r->host[off] != before[i][off])
				REQUIRE(in_range(r->gpa + off, b0, l0) || in_range(r->gpa + off, b1, l1));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!vm) {
		vm = fuzz_vm_new(2);
		struct tvm_err err;
		REQUIRE(hcall_init(vm, &err) == 0);
		for (int i = 0; i < 2; i++)
			before[i] = malloc(REGION);
	}
	/* Fresh RAM each run. */
	vm->nregions = 0;
	for (int i = 0; i < 2; i++) {
		uint8_t *h = malloc(REGION);
		REQUIRE(h && before[i]);
		memset(h, 0, REGION);
		vm->regions[vm->nregions++] = (struct mem_region){ .gpa = i ? TVM_4G : 0, .size = REGION, .host = h };
	}
	if (len < 1)
		goto out;
	unsigned nops = data[0] % 9;
	size_t img = 1 + (size_t)nops * 8;
	if (len < img)
		goto out;
	for (int i = 0; i < 2 && img < len; i++) {
		size_t n = len - img < REGION ? len - img : REGION;
		memcpy(vm->regions[i].host, data + img, n);
		img += n;
	}
	for (unsigned k = 0; k < nops; k++) {
		const uint8_t *op = data + 1 + 8 * k;
		bool is_write = op[0] & 1;
		unsigned size = 1u << ((op[0] >> 1) & 3);
		uint64_t off = (op[0] >> 3) & 1;
		int vcpu = op[1] % 2;
		uint32_t value;
		memcpy(&value, op + 4, 4);
		uint8_t buf[8] = { 0 };
		memcpy(buf, &value, 4);
		for (int i = 0; i < 2; i++)
			memcpy(before[i], vm->regions[i].host, REGION);
		/* What the port may write: the block, and a random buffer it names. */
		struct tvm_hcall h = { 0 };
		const void *hp = gpa_ptr(vm, GPA(value), sizeof h);
		if (hp)
			memcpy(&h, hp, sizeof h);
		uint64_t rnd_len = h.op == TVM_HC_RANDOM ? h.arg[1] : 0;
		vm->event.kind = TVM_EV_NONE;
		vm->stopping = false;
		bus_access(vm, BUS_PIO, vcpu, TVM_PORT_HCALL + off, buf, size, is_write);
		check_writes(value, sizeof h, h.arg[0], rnd_len);
		if (!is_write)
			REQUIRE(off != 0 || size != 4 || !memcmp(buf, &(uint32_t){ TVM_SIGNATURE }, 4));
		if (vm->event.kind != TVM_EV_NONE) {
			REQUIRE(vm->event.kind == TVM_EV_APP_FAULT && vm->event.vcpu == vcpu);
			REQUIRE(h.op == TVM_HC_FAULT && is_write && size == 4 && off == 0);
			const struct app_fault *af = vm->event.payload;
			REQUIRE(af && vm->event.payload_len == sizeof(*af));
			REQUIRE(af->f.magic == TVM_FAULT_MAGIC && af->f.version == TVM_ABI_VERSION);
			REQUIRE(memchr(af->f.app_name, 0, sizeof af->f.app_name) != NULL);
			REQUIRE(af->nmaps <= TVM_FAULT_MAX_MAPS && af->nmaps <= af->f.nr_mappings);
			REQUIRE(memchr(vm->event.detail, 0, sizeof vm->event.detail) != NULL);
			free(vm->event.payload);
			vm->event.payload = NULL;
		}
	}
out:
	for (int i = 0; i < vm->nregions; i++)
		free(vm->regions[i].host);
	vm->nregions = 0;
	return 0;
}
