/*
 * trialos - a minimal x86-64 guest kernel that runs one static Linux
 * application in ring 3 (for trialvm; also boots under QEMU microvm).
 *
 * Boot: PVH (ELF note "Xen"/XEN_ELFNOTE_PHYS32_ENTRY). pvh_start32 (boot.S)
 * enters long mode with static page tables and jumps to kmain().
 *
 * Memory layout (virtual):
 *   0 .. 0x00007ffffffff000        the application (lower half, 4 KiB pages,
 *                                  U/S, R/W and NX as the ELF/mmap asked)
 *     0x400000 or PIE_BIAS         ELF segments (static or static-pie)
 *     after the last segment       brk heap
 *     below MMAP_TOP, downwards    mmap areas
 *     STACK_TOP - 256 KiB          initial stack (grows on fault, up to 8 MiB)
 *   DIRECT_MAP 0xffff800000000000  all physical RAM, 2 MiB pages
 *   KERNEL_VMA 0xffffffff80000000  the kernel image (physical 1 MiB up)
 * Physical memory: a bump allocator hands out never-touched (hence zero)
 * frames above the kernel, skipping modules and boot data; frames freed by
 * munmap go to a free list that is used (and zeroed) only when fresh RAM
 * runs out. ELF file pages are mapped straight from the module.
 *
 * System calls: SYSCALL -> syscall_entry (boot.S). On hardware it runs in
 * ring 0, switches to the kernel stack and builds a trap frame. On the CI
 * platform SYSCALL stays in ring 3: fetching the supervisor-only entry page
 * raises #PF (or, were the page user-accessible, its first instruction, cli,
 * raises #GP), and trap_handler treats a #PF/#GP from user mode with RIP ==
 * syscall_entry as the system call (RCX = user RIP, R11 = user RFLAGS). Both
 * paths return with IRETQ. Interrupts are off throughout (user code runs with
 * IF=0 too); nothing is timer driven.
 *
 * Cost model (CI: ring-0 code emulated at ~2 us/instruction): fresh frames are
 * never zeroed, page tables are filled one page-table loop at a time, TLB
 * flushes use INVLPG for small ranges. A system call costs ~0.3 ms there.
 *
 * Files: a cpio (newc) archive in module 1, or appended (4-byte aligned) to
 * the ELF in module 0, is the read-only root file system.
 *
 * Devices (virtio.c): virtio-mmio version 2 (trialvm's slots, or QEMU
 * microvm's transports): virtio-blk as /dev/vda, /dev/vdb ..., virtio-console
 * as /dev/hvc0 (write only), virtio-rng feeding getrandom/AT_RANDOM. All
 * polled, no interrupts. Option `trialos.evil[=vdX]` (before `--`) first runs
 * a hostile-driver suite against that disk (evil.c), then the application.
 *
 * Clocks: trialvm's TVM_HC_CLOCK; elsewhere the monotonic clocks come from
 * kvmclock when KVM offers it (so benchmarks under QEMU get real times), and
 * CLOCK_REALTIME (or everything, without kvmclock) is a deterministic counter
 * advancing 1 us per call.
 *
 * Faults: user exceptions become a struct tvm_fault sent with TVM_HC_FAULT
 * (trialvm), or a one-line summary and exit status 128+signo (elsewhere).
 */
#include "kernel.h"
#include "virtio.h"

bool under_trialvm;
bool have_nx;
const char *app_name = "app";
u64 user_argv_gva, user_argc, user_auxv_gva, user_auxv_len;

static struct tvm_hcall hc __attribute__((aligned(64)));

i64 hcall(u32 op, u64 a0, u64 a1, u64 *out1, u64 *out2)
{
	hc.op = op;
	hc.result = -38;
	hc.arg[0] = a0;
	hc.arg[1] = a1;
	hc.arg[2] = 0;
	hc.arg[3] = 0;
	outl(TVM_PORT_HCALL, (u32)virt_to_phys(&hc));
	if (out1)
		*out1 = hc.arg[1];
	if (out2)
		*out2 = hc.arg[2];
	return hc.result;
}

_Noreturn void poweroff(int status)
{
	outb(TVM_PORT_POWEROFF, (u8)status);
	/* no power-off device: force a triple fault (QEMU -no-reboot exits) */
	struct { u16 limit; u64 base; } __attribute__((packed)) idtr = { 0, 0 };
	__asm__ volatile("lidt %0; ud2" ::"m"(idtr));
	for (;;)
		__asm__ volatile("ud2");
}

static u64 rng_state = 0x9e3779b97f4a7c15ull;

/* Random bytes into a kernel buffer or a validated user range: from a
 * virtio-rng device when there is one, else from trialvm (page by page, by
 * guest-physical address), else a fixed xorshift stream. */
void fill_random(void *buf, size_t n)
{
	u8 *p = buf;
	size_t done = virtio_rng_fill(buf, n);
	while (under_trialvm && done < n) {
		u64 va = (u64)p + done;
		u64 chunk = PAGE_SIZE - (va & (PAGE_SIZE - 1));
		if (chunk > n - done)
			chunk = n - done;
		u64 pa = va < USER_TOP ? user_to_phys(va) : virt_to_phys((void *)va);
		if (!pa || pa + chunk > (1ull << 32) || hcall(TVM_HC_RANDOM, pa, chunk, NULL, NULL) != (i64)chunk)
			break;
		done += chunk;
	}
	for (size_t i = done; i < n; i++) {
		if (((i - done) & 7) == 0) {
			rng_state ^= rng_state >> 12;
			rng_state ^= rng_state << 25;
			rng_state ^= rng_state >> 27;
		}
		p[i] = (u8)((rng_state * 0x2545f4914f6cdd1dull) >> (8 * ((i - done) & 7)));
	}
}

/* ---- command line ---- */
#define MAX_ARGS 256
static char cmdline[TVM_CMDLINE_MAX + 1];
static char argbuf[TVM_CMDLINE_MAX + 2];
static char *words[MAX_ARGS];
static bool unquoted_dashdash[MAX_ARGS];
static int nwords;

static void parse_cmdline(const char *s)
{
	char *o = argbuf;
	while (*s && nwords < MAX_ARGS) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		words[nwords] = o;
		bool inq = false, quoted = false;
		while (*s && (inq || (*s != ' ' && *s != '\t' && *s != '\n'))) {
			if (*s == '\\' && s[1]) {
				*o++ = s[1];
				s += 2;
				quoted = true;
			} else if (*s == '"') {
				inq = !inq;
				quoted = true;
				s++;
			} else {
				*o++ = *s++;
			}
		}
		*o++ = 0;
		unquoted_dashdash[nwords] = !quoted && !strcmp(words[nwords], "--");
		nwords++;
	}
}

/* ---- modules ---- */
static u64 elf_file_end(const u8 *img, u64 size)
{
	struct { u8 id[16]; u16 type, mach; u32 ver; u64 entry, phoff, shoff; u32 flags;
		 u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx; } const *eh = (const void *)img;
	if (size < 64)
		return size;
	u64 end = 64;
	if (eh->phentsize == 56 && eh->phoff <= size && (u64)eh->phnum * 56 <= size - eh->phoff) {
		u64 e = eh->phoff + (u64)eh->phnum * 56;
		if (e > end) end = e;
		for (unsigned i = 0; i < eh->phnum; i++) {
			const u64 *ph = (const u64 *)(img + eh->phoff + 56 * i);
			u64 off = ph[1], fsz = ph[4];
			if (off <= size && fsz <= size - off && off + fsz > end)
				end = off + fsz;
		}
	}
	if (eh->shentsize == 64 && eh->shoff <= size && (u64)eh->shnum * 64 <= size - eh->shoff) {
		u64 e = eh->shoff + (u64)eh->shnum * 64;
		if (e > end) end = e;
		for (unsigned i = 0; i < eh->shnum; i++) {
			const u8 *sh = img + eh->shoff + 64 * i;
			u32 type = *(const u32 *)(sh + 4);
			u64 off = *(const u64 *)(sh + 24), sz = *(const u64 *)(sh + 32);
			if (type != 8 /* SHT_NOBITS */ && off <= size && sz <= size - off && off + sz > end)
				end = off + sz;
		}
	}
	return end;
}

static bool is_cpio(const u8 *p, u64 size)
{
	return size >= 110 && (!memcmp(p, "070701", 6) || !memcmp(p, "070702", 6));
}

void mm_extend_direct_map(void);
void syscall_set_strace(bool on);

static u64 push_str(u64 sp, const char *s)
{
	size_t n = strlen(s) + 1;
	sp -= n;
	memcpy((void *)sp, s, n);
	return sp;
}

void kmain(u32 si_pa);
void kmain(u32 si_pa)
{
	under_trialvm = inl(TVM_PORT_HCALL) == TVM_SIGNATURE;
	/* CR4.TSD: the application's RDTSC/RDTSCP trap (trap.c), so that
	 * its time comes from trialvm's recorded clock. */
	if (under_trialvm)
		write_cr4(read_cr4() | (1u << 2));
	if (si_pa >= (1u << 30) - sizeof(struct hvm_start_info))
		panic("bad boot info address 0x%x", si_pa);
	const struct hvm_start_info *si = phys_to_virt(si_pa);
	if (si->magic != XEN_HVM_START_MAGIC_VALUE)
		panic("bad boot info magic 0x%x", si->magic);

	u32 a, b, c, d;
	cpuid(0x80000000, 0, &a, &b, &c, &d);
	if (a >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		if (d & (1u << 20)) {
			wrmsr(MSR_EFER, rdmsr(MSR_EFER) | (1u << 11));
			have_nx = true;
		}
	}
	cpuid(1, 0, &a, &b, &c, &d);
	u64 hwcap = d;
	if (c & (1u << 26)) {
		/* XSAVE: the application may use AVX (x87 | SSE | AVX, what the
		 * CPU offers of them). trialos itself never touches that state
		 * (-mgeneral-regs-only), so it needs no saving here; the
		 * crashing vCPU's XSAVE image is the application's. */
		u32 xa, xb, xc, xd;
		cpuid(0xd, 0, &xa, &xb, &xc, &xd);
		write_cr4(read_cr4() | (1u << 18)); /* OSXSAVE */
		xsetbv(0, (xa & 7u) | 1u);
	}

	mm_init(si);
	if (si->nr_modules == 0)
		panic("no application module (initrd)");
	if (si->nr_modules > 16 || !si->modlist_paddr ||
	    si->modlist_paddr >= (1ull << 30) - 16 * sizeof(struct hvm_modlist_entry))
		panic("bad module list");
	const struct hvm_modlist_entry *mods = phys_to_virt(si->modlist_paddr);
	mm_reserve(si->modlist_paddr, si->modlist_paddr + si->nr_modules * sizeof *mods);
	for (u32 i = 0; i < si->nr_modules; i++) {
		if (mods[i].paddr >= (512ull << 30) || mods[i].size > (512ull << 30) - mods[i].paddr)
			panic("module %u out of range", i);
		mm_reserve(mods[i].paddr, mods[i].paddr + mods[i].size);
	}
	if (si->cmdline_paddr) {
		if (si->cmdline_paddr >= (512ull << 30) - TVM_CMDLINE_MAX)
			panic("bad command line address");
		mm_reserve(si->cmdline_paddr, si->cmdline_paddr + TVM_CMDLINE_MAX);
	}
	mm_extend_direct_map();
	trap_init();

	if (si->cmdline_paddr) {
		const char *cl = phys_to_virt(si->cmdline_paddr);
		size_t n = strnlen(cl, TVM_CMDLINE_MAX);
		memcpy(cmdline, cl, n);
		cmdline[n] = 0;
	}
	parse_cmdline(cmdline);
	int first = 0;
	const char *evil = NULL;
	for (int i = 0; i < nwords; i++) {
		if (unquoted_dashdash[i]) {
			for (int j = 0; j < i; j++) {
				if (!strcmp(words[j], "trialos.strace"))
					syscall_set_strace(true);
				else if (!strcmp(words[j], "trialos.evil"))
					evil = "vda";
				else if (!memcmp(words[j], "trialos.evil=", 13))
					evil = words[j] + 13;
			}
			first = i + 1;
			break;
		}
	}
	virtio_init();
	if (evil)
		evil_run(evil);
	char **argv = &words[first];
	int argc = nwords - first;
	static char *default_argv[] = { "app" };
	if (argc == 0) {
		argv = default_argv;
		argc = 1;
	}
	app_name = argv[0];

	const u8 *img = phys_to_virt(mods[0].paddr);
	u64 img_size = mods[0].size;
	u64 elf_end = ALIGN_UP(elf_file_end(img, img_size), 4);
	if (si->nr_modules > 1 && is_cpio(phys_to_virt(mods[1].paddr), mods[1].size))
		fs_init(phys_to_virt(mods[1].paddr), mods[1].size, mods[1].paddr);
	else if (elf_end < img_size && is_cpio(img + elf_end, img_size - elf_end))
		fs_init(img + elf_end, img_size - elf_end, mods[0].paddr + elf_end);

	struct app_image ai;
	load_app(img, img_size, mods[0].paddr, &ai);
	brk_start = brk_cur = ai.brk;

	/* stack */
	u32 sprot = PROT_READ | PROT_WRITE | (ai.exec_stack ? PROT_EXEC : 0);
	stack_low = STACK_TOP - STACK_EAGER;
	map_anon(stack_low, STACK_TOP, sprot);
	vma_set(stack_low, STACK_TOP, sprot, MAP_STACK_KIND);

	static const char *const envp[] = { "HOME=/", "PATH=/bin", "TERM=linux" };
	enum { NENV = 3 };
	u64 sp = STACK_TOP - 16;
	u64 at_random = sp;
	fill_random((void *)at_random, 16);
	u64 platform = sp = push_str(sp, "x86_64");
	u64 envs[NENV];
	for (int i = NENV - 1; i >= 0; i--)
		envs[i] = sp = push_str(sp, envp[i]);
	static u64 args[MAX_ARGS];
	size_t total = 0;
	for (int i = 0; i < argc; i++)
		total += strlen(argv[i]) + 1;
	if (total > STACK_EAGER / 2)
		panic("command line too long");
	for (int i = argc - 1; i >= 0; i--)
		args[i] = sp = push_str(sp, argv[i]);
	u64 auxv[][2] = {
		{ 3, ai.phdr }, { 4, ai.phent }, { 5, ai.phnum }, { 6, PAGE_SIZE }, { 7, 0 },
		{ 8, 0 }, { 9, ai.entry }, { 11, 0 }, { 12, 0 }, { 13, 0 }, { 14, 0 }, { 23, 0 },
		{ 16, hwcap }, { 26, 0 }, { 17, 100 }, { 25, at_random }, { 31, args[0] },
		{ 15, platform }, { 0, 0 },
	};
	u64 nauxv = sizeof auxv / sizeof auxv[0];
	u64 words_n = 1 + argc + 1 + NENV + 1 + 2 * nauxv;
	sp = ALIGN_DOWN(sp - words_n * 8, 16);
	u64 *w = (u64 *)sp;
	*w++ = argc;
	for (int i = 0; i < argc; i++)
		*w++ = args[i];
	*w++ = 0;
	for (int i = 0; i < NENV; i++)
		*w++ = envs[i];
	*w++ = 0;
	memcpy(w, auxv, sizeof auxv);
	user_argv_gva = sp + 8;
	user_argc = (u64)argc;
	user_auxv_gva = (u64)w;
	user_auxv_len = sizeof auxv;

	enter_user(ai.entry, sp);
}
