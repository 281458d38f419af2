/* Linux x86-64 system call subset (process, memory, time, signals). File and
 * console calls live in fs.c. */
#include "kernel.h"

#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EEXIST 17
#define ENODEV 19
#define EINVAL 22
#define ENOSYS 38
#define ETIMEDOUT 110

#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_FIXED_NOREPLACE 0x100000

u64 brk_start, brk_cur;
static u64 mmap_next = MMAP_TOP;
static bool strace;
static u64 fake_clock_ns;
void syscall_set_strace(bool on);
void syscall_set_strace(bool on) { strace = on; }
void protect_range(u64 start, u64 end, u32 prot);
struct file_ent *fs_fd_file(int fd);

static const struct { u16 nr; const char *name; } names[] = {
	{ 7, "poll" }, { 13, "rt_sigaction" }, { 15, "rt_sigreturn" }, { 22, "pipe" },
	{ 23, "select" }, { 25, "mremap" }, { 26, "msync" }, { 27, "mincore" }, { 29, "shmget" },
	{ 34, "pause" }, { 37, "alarm" }, { 38, "setitimer" }, { 41, "socket" }, { 42, "connect" },
	{ 43, "accept" }, { 44, "sendto" }, { 45, "recvfrom" }, { 49, "bind" }, { 50, "listen" },
	{ 53, "socketpair" }, { 56, "clone" }, { 57, "fork" }, { 58, "vfork" }, { 59, "execve" },
	{ 61, "wait4" }, { 73, "flock" }, { 74, "fsync" }, { 76, "truncate" }, { 95, "umask" },
	{ 98, "getrusage" }, { 99, "sysinfo" }, { 101, "ptrace" }, { 105, "setuid" },
	{ 106, "setgid" }, { 109, "setpgid" }, { 111, "getpgrp" }, { 112, "setsid" },
	{ 137, "statfs" }, { 138, "fstatfs" }, { 157, "prctl" }, { 161, "chroot" },
	{ 165, "mount" }, { 169, "reboot" }, { 202, "futex" }, { 213, "epoll_create" },
	{ 232, "epoll_wait" }, { 247, "waitid" }, { 253, "inotify_init" }, { 270, "pselect6" },
	{ 271, "ppoll" }, { 281, "epoll_pwait" }, { 283, "timerfd_create" }, { 284, "eventfd" },
	{ 290, "eventfd2" }, { 291, "epoll_create1" }, { 293, "pipe2" }, { 302, "prlimit64" },
	{ 309, "getcpu" }, { 319, "memfd_create" }, { 322, "execveat" }, { 332, "statx" },
	{ 334, "rseq" }, { 424, "pidfd_send_signal" }, { 434, "pidfd_open" }, { 435, "clone3" },
	{ 441, "epoll_pwait2" },
};

static void warn_unsupported(u64 nr)
{
	static u64 warned[8];  /* bitmap for nr < 512 */
	if (nr < 512) {
		if (warned[nr / 64] & (1ull << (nr % 64)))
			return;
		warned[nr / 64] |= 1ull << (nr % 64);
	}
	const char *name = "?";
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].nr == nr)
			name = names[i].name;
	kprintf("trialos: unsupported system call %lu (%s)\n", nr, name);
}

struct kts { i64 sec, nsec; };

/* Without trialvm (QEMU/KVM): monotonic clocks from kvmclock (KVM's pvclock:
 * MSR_KVM_SYSTEM_TIME_NEW names a struct the hypervisor keeps current; the
 * time is system_time + scaled TSC delta). 0 = not available. */
struct pvclock {
	u32 version, pad0;
	u64 tsc_timestamp, system_time;
	u32 mul;
	signed char shift;
	u8 flags, pad[2];
};
static struct pvclock pvclk __attribute__((aligned(64)));
static int pvclock_state;   /* 0 untried, 1 on, -1 absent */

static bool pvclock_on(void)
{
	if (pvclock_state == 0) {
		u32 a, b, c, d;
		pvclock_state = -1;
		cpuid(0x40000000, 0, &a, &b, &c, &d);
		if (b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d && a >= 0x40000001) {   /* "KVMKVMKVM" */
			cpuid(0x40000001, 0, &a, &b, &c, &d);
			if (a & (1u << 3)) {   /* KVM_FEATURE_CLOCKSOURCE2 */
				wrmsr(0x4b564d01, virt_to_phys(&pvclk) | 1);
				pvclock_state = pvclk.mul ? 1 : -1;
			}
		}
	}
	return pvclock_state > 0;
}

static u64 pvclock_ns(void)
{
	volatile struct pvclock *p = &pvclk;
	u32 v;
	u64 ns;
	do {
		v = p->version;
		__asm__ volatile("" ::: "memory");
		u32 lo, hi;
		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
		u64 delta = ((u64)hi << 32 | lo) - p->tsc_timestamp;
		int sh = p->shift;
		delta = sh < 0 ? delta >> -sh : delta << sh;
		ns = p->system_time + (u64)(((unsigned __int128)delta * p->mul) >> 32);
		__asm__ volatile("" ::: "memory");
	} while ((v & 1) || v != p->version);
	return ns;
}

static i64 sys_clock(u64 clk, struct kts *ts)
{
	static const u8 kind[12] = { 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0 };
	if (clk >= 12)
		return -EINVAL;
	if (under_trialvm) {
		u64 s, ns;
		i64 r = hcall(TVM_HC_CLOCK, kind[clk], 0, &s, &ns);
		if (r < 0)
			return r;
		ts->sec = s;
		ts->nsec = ns;
	} else if (kind[clk] == 1 && pvclock_on()) {
		u64 ns = pvclock_ns();
		ts->sec = ns / 1000000000;
		ts->nsec = ns % 1000000000;
	} else {
		fake_clock_ns += 1000;   /* deterministic, non-decreasing */
		ts->sec = fake_clock_ns / 1000000000;
		ts->nsec = fake_clock_ns % 1000000000;
	}
	return 0;
}

static i64 sys_getrandom(u64 buf, u64 len)
{
	if (len > 33554431)
		len = 33554431;
	if (!user_ok(buf, len, true))
		return -EFAULT;
	fill_random((void *)buf, len);
	return len;
}

static i64 sys_brk(u64 want)
{
	if (want < brk_start || want > brk_start + (1ull << 40))
		return brk_cur;
	u64 cur_end = ALIGN_UP(brk_cur, PAGE_SIZE), new_end = ALIGN_UP(want, PAGE_SIZE);
	if (new_end > cur_end) {
		if (!range_free(cur_end, new_end))
			return brk_cur;
		if (vma_set(brk_start, new_end, PROT_READ | PROT_WRITE, MAP_BRK_KIND) < 0)
			return brk_cur;
		map_anon(cur_end, new_end, PROT_READ | PROT_WRITE);
	} else if (new_end < cur_end) {
		unmap_range(new_end, cur_end);
		vma_clear(new_end, cur_end);
		tlb_flush_range(new_end, cur_end);
	}
	brk_cur = want;
	return brk_cur;
}

static i64 sys_mmap(u64 addr, u64 len, u64 prot, u64 flags, u64 fd, u64 off)
{
	if (!len || (off & (PAGE_SIZE - 1)) || (addr & (PAGE_SIZE - 1) && (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))))
		return -EINVAL;
	if (len > USER_TOP)
		return -ENOMEM;
	len = ALIGN_UP(len, PAGE_SIZE);
	prot &= 7;
	struct file_ent *f = NULL;
	if (!(flags & MAP_ANONYMOUS)) {
		f = fs_fd_file(fd);
		if (!f)
			return (i64)fd < 0 || fd >= 64 ? -9 : -ENODEV;
		if ((flags & MAP_SHARED) && (prot & PROT_WRITE))
			return -EACCES;
	}
	u64 start;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (addr < PAGE_SIZE || addr >= USER_TOP || len > USER_TOP - addr)
			return -EINVAL;
		if ((flags & MAP_FIXED_NOREPLACE) && !(flags & MAP_FIXED) && !range_free(addr, addr + len))
			return -EEXIST;
		start = addr;
		unmap_range(start, start + len);
		vma_clear(start, start + len);
		tlb_flush_range(start, start + len);
	} else if (addr >= 0x10000 && addr < USER_TOP && len <= USER_TOP - addr &&
		   !(addr & (PAGE_SIZE - 1)) && range_free(addr, addr + len) &&
		   (addr + len <= brk_start || addr >= brk_start + (1ull << 40))) {
		start = addr;
	} else {
		if (len > mmap_next - 0x100000000000ull)
			return -ENOMEM;
		start = mmap_next - len;
		while (!range_free(start, start + len)) {
			start -= len;
			if (start < 0x100000000000ull)
				return -ENOMEM;
		}
		mmap_next = start;
	}
	if (vma_set(start, start + len, prot, f ? MAP_ELF_KIND : MAP_ANON_KIND) < 0)
		return -ENOMEM;
	if (!f) {
		map_anon(start, start + len, prot);
		return start;
	}
	/* file mapping: share the archive's pages read-only when aligned, else copy */
	u64 pflags = prot_to_pte(prot);
	for (u64 va = start, o = off; va < start + len; va += PAGE_SIZE, o += PAGE_SIZE) {
		if (!(pflags & PTE_P))
			break;
		bool whole = o < f->size && f->size - o >= PAGE_SIZE;
		if (whole && !(prot & PROT_WRITE) && !(f->phys & (PAGE_SIZE - 1))) {
			map_page(va, f->phys + o, pflags);
			continue;
		}
		u64 pa = alloc_page();
		if (o < f->size)
			memcpy(phys_to_virt(pa), f->data + o, whole ? PAGE_SIZE : f->size - o);
		map_page(va, pa, pflags | PTE_OWN);
	}
	return start;
}

static i64 sys_munmap(u64 addr, u64 len)
{
	if ((addr & (PAGE_SIZE - 1)) || !len || addr >= USER_TOP || len > USER_TOP - addr)
		return -EINVAL;
	len = ALIGN_UP(len, PAGE_SIZE);
	unmap_range(addr, addr + len);
	vma_clear(addr, addr + len);
	tlb_flush_range(addr, addr + len);
	return 0;
}

static i64 sys_mprotect(u64 addr, u64 len, u64 prot)
{
	if (addr & (PAGE_SIZE - 1))
		return -EINVAL;
	len = ALIGN_UP(len, PAGE_SIZE);
	if (addr >= USER_TOP || len > USER_TOP - addr)
		return -ENOMEM;
	prot &= 7;
	/* the whole range must be mapped */
	for (u64 a = addr; a < addr + len;) {
		struct vma *v = vma_find(a);
		if (!v)
			return -ENOMEM;
		a = v->end;
	}
	for (u64 a = addr; a < addr + len;) {
		struct vma *v = vma_find(a);
		u64 e = v->end < addr + len ? v->end : addr + len;
		u32 kind = v->kind;
		vma_set(a, e, prot, kind);
		a = e;
	}
	protect_range(addr, addr + len, prot);
	tlb_flush_range(addr, addr + len);
	return 0;
}

static _Noreturn void self_signal(struct trapframe *tf, u64 sig, int code)
{
	user_crash(tf, TVM_FAULT_NO_VECTOR, sig, code, tf->rcx);
}

/* kill/tkill/tgkill aimed at ourselves */
static i64 sys_signal_self(struct trapframe *tf, u64 sig, int code)
{
	if (sig > 64)
		return -EINVAL;
	if (sig == 0)
		return 0;
	/* default action ignore / stop: nothing happens (no delivery here) */
	if (sig == 17 || sig == 18 || sig == 19 || sig == 20 || sig == 21 || sig == 22 ||
	    sig == 23 || sig == 28)
		return 0;
	tf->rip = tf->rcx;
	self_signal(tf, sig, code);
}

struct rlimit_ { u64 cur, max; };

static void get_rlimit(u64 res, struct rlimit_ *r)
{
	const u64 INF = ~0ull;
	r->cur = r->max = INF;
	if (res == 3) {          /* RLIMIT_STACK */
		r->cur = STACK_MAX;
	} else if (res == 7) {   /* RLIMIT_NOFILE */
		r->cur = r->max = 64;
	} else if (res == 4) {   /* RLIMIT_CORE */
		r->cur = r->max = 0;
	}
}

void do_syscall(struct trapframe *tf)
{
	u64 nr = tf->rax, a0 = tf->rdi, a1 = tf->rsi, a2 = tf->rdx, a3 = tf->r10, a4 = tf->r8, a5 = tf->r9;
	i64 r;
	bool handled;
	r = sys_file(nr, tf, &handled);
	if (handled)
		goto out;
	switch (nr) {
	case 60:   /* exit */
	case 231:  /* exit_group */
		poweroff(a0 & 0xff);
	case 9: r = sys_mmap(a0, a1, a2, a3, a4, a5); break;
	case 10: r = sys_mprotect(a0, a1, a2); break;
	case 11: r = sys_munmap(a0, a1); break;
	case 12: r = sys_brk(a0); break;
	case 25: r = -ENOMEM; break;          /* mremap */
	case 28: r = 0; break;                /* madvise */
	case 26: r = 0; break;                /* msync */
	case 13: /* rt_sigaction */
		if (a3 != 8 || a0 == 0 || a0 > 64 || a0 == 9 || a0 == 19) {
			r = -EINVAL;
			break;
		}
		if (a2) {
			if (!user_ok(a2, 32, true)) { r = -EFAULT; break; }
			memset((void *)a2, 0, 32);
		}
		r = 0;
		break;
	case 14: /* rt_sigprocmask */
		if (a2) {
			if (!user_ok(a2, 8, true)) { r = -EFAULT; break; }
			*(u64 *)a2 = 0;
		}
		r = 0;
		break;
	case 131: /* sigaltstack */
		if (a1) {
			if (!user_ok(a1, 24, true)) { r = -EFAULT; break; }
			memset((void *)a1, 0, 24);
			((u32 *)a1)[2] = 2;  /* SS_DISABLE */
		}
		r = 0;
		break;
	case 158: /* arch_prctl */
		if (a0 == 0x1002) { wrmsr(MSR_FS_BASE, a1); r = 0; }         /* ARCH_SET_FS */
		else if (a0 == 0x1001) { wrmsr(MSR_GS_BASE, a1); r = 0; }    /* ARCH_SET_GS */
		else if (a0 == 0x1003 || a0 == 0x1004) {                      /* ARCH_GET_FS/GS */
			if (!user_ok(a1, 8, true)) { r = -EFAULT; break; }
			*(u64 *)a1 = rdmsr(a0 == 0x1003 ? MSR_FS_BASE : MSR_GS_BASE);
			r = 0;
		} else r = -EINVAL;
		break;
	case 218: r = 1; break;               /* set_tid_address */
	case 273: r = 0; break;               /* set_robust_list */
	case 334: r = -ENOSYS; break;         /* rseq */
	case 97:  /* getrlimit */
	case 302: { /* prlimit64 */
		u64 res = nr == 97 ? a0 : a1, out = nr == 97 ? a1 : a3;
		if (nr == 302 && a0 != 0 && a0 != 1) { r = -ESRCH; break; }
		if (res >= 16) { r = -EINVAL; break; }
		if (out) {
			if (!user_ok(out, 16, true)) { r = -EFAULT; break; }
			get_rlimit(res, (void *)out);
		}
		r = 0;
		break;
	}
	case 160: r = 0; break;               /* setrlimit */
	case 63: { /* uname */
		if (!user_ok(a0, 6 * 65, true)) { r = -EFAULT; break; }
		char *u = (char *)a0;
		static const char *f[6] = { "Linux", "trialos", "6.1.0-trialos", "#1 trialos", "x86_64", "(none)" };
		memset(u, 0, 6 * 65);
		for (int i = 0; i < 6; i++)
			memcpy(u + 65 * i, f[i], strlen(f[i]));
		r = 0;
		break;
	}
	case 39: case 186: r = 1; break;      /* getpid, gettid */
	case 110: r = 0; break;               /* getppid */
	case 102: case 104: case 107: case 108: r = 0; break;  /* uid/gid */
	case 111: case 121: case 124: r = 1; break;            /* getpgrp/getpgid/getsid */
	case 109: case 112: r = 0; break;     /* setpgid, setsid */
	case 105: case 106: case 113: case 114: case 117: case 119: r = 0; break; /* set*id as root */
	case 118: case 120: { /* getresuid/getresgid */
		if (!user_ok(a0, 4, true) || !user_ok(a1, 4, true) || !user_ok(a2, 4, true)) { r = -EFAULT; break; }
		*(u32 *)a0 = *(u32 *)a1 = *(u32 *)a2 = 0;
		r = 0;
		break;
	}
	case 95: r = 022; break;              /* umask */
	case 24: r = 0; break;                /* sched_yield */
	case 204: /* sched_getaffinity */
		if (a1 < 8) { r = -EINVAL; break; }
		if (!user_ok(a2, 8, true)) { r = -EFAULT; break; }
		*(u64 *)a2 = 1;
		r = 8;
		break;
	case 202: { /* futex: single thread, nobody to wait for */
		u64 op = a1 & 0x7f;
		if (op == 0 || op == 9) {   /* WAIT, WAIT_BITSET */
			if (!user_ok(a0, 4, false)) { r = -EFAULT; break; }
			r = *(u32 *)a0 != (u32)a2 ? -EAGAIN : -ETIMEDOUT;
		} else r = 0;
		break;
	}
	case 157: r = a0 == 15 || a0 == 16 ? 0 : -EINVAL; break;  /* prctl: only PR_SET/GET_NAME */
	case 228: /* clock_gettime */
		if (!user_ok(a1, 16, true)) { r = -EFAULT; break; }
		r = sys_clock(a0, (void *)a1);
		break;
	case 229: /* clock_getres */
		if (a0 >= 12) { r = -EINVAL; break; }
		if (a1) {
			if (!user_ok(a1, 16, true)) { r = -EFAULT; break; }
			((i64 *)a1)[0] = 0;
			((i64 *)a1)[1] = 1;
		}
		r = 0;
		break;
	case 96: { /* gettimeofday */
		struct kts ts;
		if (a0) {
			if (!user_ok(a0, 16, true)) { r = -EFAULT; break; }
			r = sys_clock(0, &ts);
			if (r < 0) break;
			((i64 *)a0)[0] = ts.sec;
			((i64 *)a0)[1] = ts.nsec / 1000;
		}
		if (a1 && user_ok(a1, 8, true))
			*(u64 *)a1 = 0;
		r = 0;
		break;
	}
	case 201: { /* time */
		struct kts ts;
		r = sys_clock(0, &ts);
		if (r < 0) break;
		if (a0) {
			if (!user_ok(a0, 8, true)) { r = -EFAULT; break; }
			*(i64 *)a0 = ts.sec;
		}
		r = ts.sec;
		break;
	}
	case 35: case 230: r = 0; break;      /* nanosleep, clock_nanosleep: no time passes */
	case 318: r = sys_getrandom(a0, a1); break;
	case 62:  /* kill */
		if ((i64)a0 == 1 || a0 == 0 || (i64)a0 == -1) r = sys_signal_self(tf, a1, 0);
		else r = -ESRCH;
		break;
	case 200: /* tkill */
		r = a0 == 1 ? sys_signal_self(tf, a1, -6) : -ESRCH;
		break;
	case 234: /* tgkill */
		r = a0 == 1 && a1 == 1 ? sys_signal_self(tf, a2, -6) : -ESRCH;
		break;
	case 99: { /* sysinfo */
		if (!user_ok(a0, 112, true)) { r = -EFAULT; break; }
		memset((void *)a0, 0, 112);
		((u64 *)a0)[4] = 128ull << 20;  /* totalram */
		((u64 *)a0)[5] = 64ull << 20;   /* freeram */
		((u32 *)a0)[26] = 1;            /* mem_unit */
		r = 0;
		break;
	}
	case 98: /* getrusage */
		if (!user_ok(a1, 144, true)) { r = -EFAULT; break; }
		memset((void *)a1, 0, 144);
		r = 0;
		break;
	default:
		warn_unsupported(nr);
		r = -ENOSYS;
		break;
	}
out:
	if (strace)
		kprintf("trialos: syscall %lu(%lx, %lx, %lx) = %ld\n", nr, a0, a1, a2, r);
	tf->rax = r;
	tf->rip = tf->rcx;
	tf->rflags = (tf->r11 & 0x240dd5) | 2;
	tf->cs = USER_CS;
	tf->ss = USER_DS;
}
