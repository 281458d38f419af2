/*
 * dirty-log - KVM's two dirty-page logs side by side (tests/bench, for
 * ci/bench-snap.sh): the per-slot bitmap (KVM_GET_DIRTY_LOG, what trialvm
 * uses) and the per-vCPU dirty ring (KVM_CAP_DIRTY_LOG_RING).
 *
 * usage: dirty-log [-m MiB] [-p PAGES] [-r ROUNDS]
 *
 * A one-vCPU VM of MiB of RAM (default 128) runs a few bytes of 32-bit
 * code that write one word into each of PAGES pages (default 1000) and
 * leave with a port write; the host then takes the dirty pages. Per round
 * it times the guest's run (its write faults are where each log records a
 * page) and the harvest (bitmap: KVM_GET_DIRTY_LOG and a scan for the set
 * bits; ring: the ring's entries read and handed back, KVM_RESET_DIRTY_RINGS),
 * checks that exactly PAGES pages were found, and prints the medians over
 * ROUNDS rounds (default 50), one line per log:
 *   bitmap mem_mib=128 pages=1000 run_us=... harvest_us=... found=1000
 *   ring mem_mib=128 pages=1000 run_us=... harvest_us=... found=1000
 * or "ring unavailable: why". Exit status 0 when every round found every
 * page, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA 0x1000ull
#define DATA_GPA 0x100000ull /* the dirtied pages start at 1 MiB */
#define PORT 0x10

struct vmh {
	int kvm, vm, cpu;
	struct kvm_run *run;
	uint8_t *mem;
	uint64_t mem_size;
	struct kvm_dirty_gfn *ring; /* NULL: bitmap mode */
	uint32_t ring_n, ring_next;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int die(const char *what)
{
	fprintf(stderr, "dirty-log: %s: %s\n", what, strerror(errno));
	return -1;
}

/* start: mov edi,esi; mov ecx,edx; l: mov [edi],eax; add edi,ebx; dec ecx;
 * jnz l; out PORT,al; jmp start */
static const uint8_t code[] = { 0x89, 0xf7, 0x89, 0xd1, 0x89, 0x07, 0x01, 0xdf, 0x49,
				0x75, 0xf9, 0xe6, PORT, 0xeb, 0xf1 };

static int vm_open(struct vmh *h, uint64_t mem_size, uint32_t ring_entries, char *why, size_t whycap)
{
	memset(h, 0, sizeof(*h));
	h->mem_size = mem_size;
	h->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (h->kvm < 0)
		return die("/dev/kvm");
	h->vm = ioctl(h->kvm, KVM_CREATE_VM, 0);
	if (h->vm < 0)
		return die("KVM_CREATE_VM");
	if (ring_entries) {
		int max = ioctl(h->vm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
		uint32_t bytes = ring_entries * (uint32_t)sizeof(struct kvm_dirty_gfn);
		if (max <= 0 || (uint32_t)max < bytes) {
			snprintf(why, whycap, "KVM_CAP_DIRTY_LOG_RING is %d (need %u bytes)", max, bytes);
			return -2;
		}
		struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING, .args = { bytes } };
		if (ioctl(h->vm, KVM_ENABLE_CAP, &cap) < 0) {
			snprintf(why, whycap, "enabling KVM_CAP_DIRTY_LOG_RING failed: %s", strerror(errno));
			return -2;
		}
		h->ring_n = ring_entries;
	}
	h->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (h->mem == MAP_FAILED)
		return die("mmap guest memory");
	memcpy(h->mem + CODE_GPA, code, sizeof(code));
	struct kvm_userspace_memory_region r = { .slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
						 .memory_size = mem_size, .userspace_addr = (uint64_t)(uintptr_t)h->mem };
	if (ioctl(h->vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return die("KVM_SET_USER_MEMORY_REGION");
	h->cpu = ioctl(h->vm, KVM_CREATE_VCPU, 0);
	if (h->cpu < 0)
		return die("KVM_CREATE_VCPU");
	int run_size = ioctl(h->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	h->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, h->cpu, 0);
	if (h->run == MAP_FAILED)
		return die("mmap kvm_run");
	if (ring_entries) {
		long pg = sysconf(_SC_PAGESIZE);
		h->ring = mmap(NULL, ring_entries * sizeof(struct kvm_dirty_gfn), PROT_READ | PROT_WRITE, MAP_SHARED,
			       h->cpu, KVM_DIRTY_LOG_PAGE_OFFSET * pg);
		if (h->ring == MAP_FAILED)
			return die("mmap the dirty ring");
	}
	/* 32-bit protected mode, flat segments, no paging. */
	struct kvm_sregs sr;
	if (ioctl(h->cpu, KVM_GET_SREGS, &sr) < 0)
		return die("KVM_GET_SREGS");
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1,
				  .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1 };
	struct kvm_segment ds = cs;
	ds.selector = 16;
	ds.type = 3;
	sr.cs = cs;
	sr.ds = sr.es = sr.ss = sr.fs = sr.gs = ds;
	sr.cr0 = 1;
	sr.cr4 = 0;
	sr.efer = 0;
	if (ioctl(h->cpu, KVM_SET_SREGS, &sr) < 0)
		return die("KVM_SET_SREGS");
	return 0;
}

static void vm_close(struct vmh *h)
{
	if (h->mem && h->mem != MAP_FAILED)
		munmap(h->mem, h->mem_size);
	if (h->cpu > 0)
		close(h->cpu);
	if (h->vm > 0)
		close(h->vm);
	if (h->kvm > 0)
		close(h->kvm);
}

/* One round: the guest writes `pages` pages; 0, or -1. */
static int guest_round(struct vmh *h, uint32_t pages, uint32_t round)
{
	struct kvm_regs r = { .rip = CODE_GPA, .rflags = 2, .rsi = DATA_GPA, .rdx = pages, .rbx = 4096,
			      .rax = round };
	if (ioctl(h->cpu, KVM_SET_REGS, &r) < 0)
		return die("KVM_SET_REGS");
	for (;;) {
		if (ioctl(h->cpu, KVM_RUN, 0) < 0)
			return die("KVM_RUN");
		if (h->run->exit_reason == KVM_EXIT_IO && h->run->io.port == PORT)
			return 0;
		if (h->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL) {
			fprintf(stderr, "dirty-log: the ring filled up within one round\n");
			return -1;
		}
		fprintf(stderr, "dirty-log: unexpected exit %u\n", h->run->exit_reason);
		return -1;
	}
}

/* The pages dirtied since the last harvest. */
static int64_t harvest_bitmap(struct vmh *h, uint64_t *bm, size_t words)
{
	struct kvm_dirty_log dl = { .slot = 0, .dirty_bitmap = bm };
	if (ioctl(h->vm, KVM_GET_DIRTY_LOG, &dl) < 0)
		return die("KVM_GET_DIRTY_LOG");
	int64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += __builtin_popcountll(bm[i]);
	return n;
}

static int64_t harvest_ring(struct vmh *h, uint64_t *list, uint32_t cap)
{
	int64_t n = 0;
	for (;;) {
		struct kvm_dirty_gfn *g = &h->ring[h->ring_next % h->ring_n];
		if (!(__atomic_load_n(&g->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if ((uint32_t)n < cap)
			list[n] = g->offset; /* slot 0: the page number */
		n++;
		__atomic_store_n(&g->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		h->ring_next++;
	}
	if (ioctl(h->vm, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return die("KVM_RESET_DIRTY_RINGS");
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One log: rounds of the guest, each harvested; its line of figures.
 * 0, or 1 when a round found another count than `pages` or failed. */
static int bench(const char *name, uint64_t mem_mib, uint32_t pages, int rounds)
{
	bool ring = !strcmp(name, "ring");
	struct vmh h;
	char why[200] = "";
	int rc = vm_open(&h, mem_mib << 20, ring ? 4096 : 0, why, sizeof(why));
	if (rc < 0) {
		if (rc == -2)
			printf("%s unavailable: %s\n", name, why);
		vm_close(&h);
		return rc == -2 ? 0 : 1;
	}
	size_t words = (size_t)((h.mem_size / 4096 + 63) / 64);
	uint64_t *bm = calloc(words, 8), *list = calloc(pages + 64, 8);
	uint64_t *run_ns = calloc((size_t)rounds, 8), *h_ns = calloc((size_t)rounds, 8);
	int bad = 0;
	int64_t found = 0;
	if (!bm || !list || !run_ns || !h_ns) {
		fprintf(stderr, "dirty-log: out of memory\n");
		return 1;
	}
	/* Round 0 (not timed) faults the pages in; the log is emptied after it. */
	for (int i = -1; i < rounds; i++) {
		uint64_t t0 = now_ns();
		if (guest_round(&h, pages, (uint32_t)i + 2) < 0)
			return 1;
		uint64_t t1 = now_ns();
		found = ring ? harvest_ring(&h, list, pages + 64) : harvest_bitmap(&h, bm, words);
		uint64_t t2 = now_ns();
		if (found < 0)
			return 1;
		if (i >= 0) {
			run_ns[i] = t1 - t0;
			h_ns[i] = t2 - t1;
			bad += found != (int64_t)pages;
		}
	}
	printf("%s mem_mib=%llu pages=%u run_us=%.1f harvest_us=%.1f found=%lld%s\n", name, (unsigned long long)mem_mib,
	       pages, median(run_ns, rounds) / 1e3, median(h_ns, rounds) / 1e3, (long long)found,
	       bad ? " (some rounds found another count)" : "");
	free(bm);
	free(list);
	free(run_ns);
	free(h_ns);
	vm_close(&h);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	uint64_t mem_mib = 128;
	uint32_t pages = 1000;
	int rounds = 50, opt;
	while ((opt = getopt(argc, argv, "m:p:r:")) != -1) {
		long v = atol(optarg);
		switch (opt) {
		case 'm': mem_mib = v >= 16 && v <= 65536 ? (uint64_t)v : 0; break;
		case 'p': pages = v >= 1 && v <= 3000 ? (uint32_t)v : 0; break;
		case 'r': rounds = v >= 1 && v <= 100000 ? (int)v : 0; break;
		default: mem_mib = 0;
		}
	}
	if (!mem_mib || !pages || !rounds || DATA_GPA + (uint64_t)pages * 4096 > mem_mib << 20) {
		fprintf(stderr, "usage: dirty-log [-m MiB (16..65536)] [-p PAGES (1..3000)] [-r ROUNDS]\n");
		return 2;
	}
	int rc = bench("bitmap", mem_mib, pages, rounds);
	rc |= bench("ring", mem_mib, pages, rounds);
	return rc;
}
