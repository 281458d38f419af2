/* vmm/bus.h - the one I/O bus for port I/O and MMIO.
 *
 * Devices register [base, base+len) in a space before the vCPUs start;
 * overlapping registrations are rejected. A handler gets the offset from
 * its base and is called only for accesses that lie wholly inside its
 * range (1, 2, 4 or 8 bytes). Accesses nobody claims read as all-ones and
 * ignore writes, like hardware; they are logged (rate-limited) with
 * --verbose and never stop the guest.
 */
#ifndef TVM_BUS_H
#define TVM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "vm.h"

enum bus_space { BUS_PIO, BUS_MMIO };

/* For a read, the handler fills data[0..size); for a write it consumes it. */
typedef void (*bus_handler)(void *dev, int vcpu, uint64_t offset, uint8_t *data, unsigned size, bool is_write);

int bus_register(struct vm *vm, enum bus_space space, uint64_t base, uint64_t len,
		 bus_handler fn, void *dev, const char *name, struct tvm_err *err);

/* Dispatch one access (called by the vCPU loop). */
void bus_access(struct vm *vm, enum bus_space space, int vcpu, uint64_t addr, uint8_t *data,
		unsigned size, bool is_write);

/* Number of accesses nobody claimed since the VM started. */
uint64_t bus_unclaimed_count(struct vm *vm);

#endif
