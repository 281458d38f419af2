/* tests/synth.h - a synthetic crashed VM for the unit tests of the dump
 * writers and of inspect (test_dumps.c, test_inspect.c): two RAM regions
 * (one at 0, one at 4 GiB), two vCPUs, an application fault, and a 4-level
 * page-table builder for the application's address space (CR3 0x10000).
 * Each test fills in the rest of `cs` itself. Include once, after
 * reporter/crash_state.h. */
#ifndef TVM_TEST_SYNTH_H
#define TVM_TEST_SYNTH_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define PG 4096ull

static struct mem_region regions[2];
static struct cpu_state cpus[2];
static struct app_fault app;
static struct crash_state cs;
static uint64_t next_table = 0x10000; /* page-table bump allocator (gpa) */

static uint8_t *host_of(uint64_t gpa)
{
	return gmem_ptr(&cs.mem, gpa, 1);
}

/* Map one 4 KiB page va -> pa (user, writable), tables from next_table. */
static void map_page(uint64_t va, uint64_t pa)
{
	uint64_t table = 0x10000;
	for (int level = 3; level > 0; level--) {
		uint64_t *e = (uint64_t *)host_of(table + ((va >> (12 + 9 * level)) & 511) * 8);
		if (!(*e & 1)) {
			next_table += PG;
			*e = next_table | 7;
		}
		table = *e & 0x000ffffffffff000ull;
	}
	*(uint64_t *)host_of(table + ((va >> 12) & 511) * 8) = pa | 7;
}

/* The two RAM regions, zeroed (low bytes at 0, high bytes at 4 GiB), as cs.mem. */
static void synth_ram(uint64_t low, uint64_t high)
{
	regions[0] = (struct mem_region){ .gpa = 0, .size = low, .host = NULL };
	regions[1] = (struct mem_region){ .gpa = 4 * GiB, .size = high, .host = NULL };
	for (int i = 0; i < 2; i++) {
		regions[i].host = mmap(NULL, regions[i].size, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (regions[i].host == MAP_FAILED) {
			perror("mmap");
			exit(1);
		}
	}
	cs.mem = (struct guest_mem){ regions, 2 };
}

#endif
