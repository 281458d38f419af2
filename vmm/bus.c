#include "bus.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vm_internal.h"

static const char *space_name(enum bus_space s) { return s == BUS_PIO ? "port" : "MMIO"; }

int bus_register(struct vm *vm, enum bus_space space, uint64_t base, uint64_t len,
		 bus_handler fn, void *dev, const char *name, struct tvm_err *err)
{
	struct io_bus *bus = &vm->bus[space];
	uint64_t end;
	if (len == 0 || add_overflows(base, len, &end) || (space == BUS_PIO && end > 0x10000))
		return tvm_seterr(err, "device %s: invalid %s range 0x%llx+0x%llx", name, space_name(space),
				  (unsigned long long)base, (unsigned long long)len);
	if (vm->running)
		return tvm_seterr(err, "device %s: registered after the vCPUs started", name);
	for (int i = 0; i < bus->n; i++) {
		struct io_range *r = &bus->r[i];
		if (base < r->base + r->len && r->base < end)
			return tvm_seterr(err, "device %s: %s range 0x%llx-0x%llx overlaps %s at 0x%llx-0x%llx", name,
					  space_name(space), (unsigned long long)base, (unsigned long long)end - 1,
					  r->name, (unsigned long long)r->base,
					  (unsigned long long)(r->base + r->len - 1));
	}
	if (bus->n == TVM_MAX_IO_RANGES)
		return tvm_seterr(err, "device %s: too many I/O ranges", name);
	/* Keep the table sorted by base for a binary search. */
	int pos = bus->n;
	while (pos > 0 && bus->r[pos - 1].base > base) {
		bus->r[pos] = bus->r[pos - 1];
		pos--;
	}
	bus->r[pos] = (struct io_range){ .base = base, .len = len, .fn = fn, .dev = dev, .name = name };
	bus->n++;
	return 0;
}

static struct ratelimit unclaimed_rl = RATELIMIT_INIT(10, 1000);

void bus_access(struct vm *vm, enum bus_space space, int vcpu, uint64_t addr, uint8_t *data,
		unsigned size, bool is_write)
{
	struct io_bus *bus = &vm->bus[space];
	int lo = 0, hi = bus->n - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		struct io_range *r = &bus->r[mid];
		if (addr < r->base) {
			hi = mid - 1;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			uint64_t off = addr - r->base;
			if (size <= r->len - off) {
				r->fn(r->dev, vcpu, off, data, size, is_write);
				return;
			}
			break; /* straddles the end of the device: unclaimed */
		}
	}
	__atomic_fetch_add(&vm->unclaimed, 1, __ATOMIC_RELAXED);
	if (!is_write)
		memset(data, 0xff, size);
	if (tvm_verbose)
		tvm_log_limited(&unclaimed_rl, "vCPU %d: unclaimed %s %s of %u bytes at 0x%llx", vcpu,
				space_name(space), is_write ? "write" : "read", size, (unsigned long long)addr);
}

uint64_t bus_unclaimed_count(struct vm *vm) { return __atomic_load_n(&vm->unclaimed, __ATOMIC_RELAXED); }
