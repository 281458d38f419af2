/* vmm/sandbox.c - seccomp-bpf allowlists per thread class (sandbox.h).
 *
 * Policy: the default action is SCMP_ACT_KILL_PROCESS, for unknown
 * architectures (i386/x32 entry points) too. Each table row names one
 * system call, the classes that may make it and, where it matters, the
 * arguments it may carry; the comment says who needs it.
 *   M = main thread  V = vCPU threads  S = stdin thread  W = hang watcher
 *   I = the I/O thread (vmm/iothread.c: the overlay map flush a guest asks for)
 *   C = the console writer (devices/console.c: guest output to stdout)
 * Threads inherit MAIN from the main thread and add their own filter, so a
 * call a vCPU makes must be in both MAIN and VCPU; the stdin, I/O and console threads
 * start before MAIN is installed and have their own class only. A vCPU
 * thread can open, rename, unlink or truncate no file, and no class maps
 * executable memory (capstone is loaded before the sandbox).
 *
 * Adding a system call to code that runs on these threads means adding it
 * here, or the process dies of SIGSYS (the kernel logs the call number:
 * `dmesg | grep 'type=1326'`, "syscall=N"). Development aid: build with
 * -DTVM_SANDBOX_LOG_ONLY to log such calls instead of killing, and name
 * the threads tvm-<class> so the log says which one made them.
 */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

bool sandbox_disabled;

#if defined(__SANITIZE_ADDRESS__)
#define TVM_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TVM_SANITIZER 1
#endif
#endif

#define M (1u << SANDBOX_MAIN)
#define V (1u << SANDBOX_VCPU)
#define S (1u << SANDBOX_STDIN)
#define W (1u << SANDBOX_WATCH)
#define I (1u << SANDBOX_IO)
#define C (1u << SANDBOX_CONSOLE)
#define ALL (M | V | S | W | I | C)

enum arg_rule {
	ANY,         /* any arguments */
	NO_EXEC,     /* mmap/mprotect: prot (arg 2) without PROT_EXEC */
	THREAD_ONLY, /* clone: flags (arg 0) with CLONE_THREAD: threads, never processes */
	NNP_ONLY,    /* prctl: PR_SET_NO_NEW_PRIVS only (what seccomp_load() sets) */
	OWN_TGID,    /* tgkill: thread group (arg 0) = this process: signal our own threads only */
	ENOSYS_ERR,  /* not allowed, fails with ENOSYS instead of killing (see clone3) */
};

struct sb_call {
	int nr;
	unsigned classes;
	enum arg_rule arg;
};

static const struct sb_call calls[] = {
	/* ---- memory: malloc arenas, thread stacks, guest RAM ---- */
	{ SCMP_SYS(brk), ALL, ANY },             /* malloc (main arena) */
	{ SCMP_SYS(mmap), ALL, NO_EXEC },        /* malloc arenas and large blocks; M: guest RAM and kvm_run
	                                            (restart), thread stacks, files */
	{ SCMP_SYS(munmap), ALL, ANY },          /* free(); thread stack cache; M: vm_destroy */
	{ SCMP_SYS(mremap), ALL, ANY },          /* realloc() of large blocks */
	{ SCMP_SYS(mprotect), ALL, NO_EXEC },    /* malloc grows non-main arenas; M: stack guard pages */
	{ SCMP_SYS(madvise), ALL, ANY },         /* free(), exiting threads (MADV_DONTNEED); M: MADV_DONTFORK on RAM */
	{ SCMP_SYS(mincore), M, ANY },           /* crash capture: skip guest pages never touched */

	/* ---- threads, locks, signals ---- */
	{ SCMP_SYS(futex), ALL, ANY },           /* mutexes, condition variables, pthread_join */
	{ SCMP_SYS(clone), M, THREAD_ONLY },     /* vm_run (vCPUs), hang_watch_start (watcher) */
	{ SCMP_SYS(clone3), M, ENOSYS_ERR },     /* its flags live in memory BPF cannot read: ENOSYS makes
	                                            glibc's pthread_create fall back to clone */
	{ SCMP_SYS(set_robust_list), M, ANY },   /* a new thread's first calls run under MAIN */
	{ SCMP_SYS(rseq), M, ANY },              /* same (glibc registers rseq per thread) */
	{ SCMP_SYS(prctl), M, NNP_ONLY },        /* a new thread installing its own filter (seccomp_load) */
	{ SCMP_SYS(seccomp), M, ANY },           /* same: can only add restrictions */
	{ SCMP_SYS(rt_sigaction), M, ANY },      /* vm_create installs the vCPU kick handler (restart) */
	{ SCMP_SYS(rt_sigprocmask), ALL, ANY },  /* pthread_sigmask, pthread_kill, thread exit */
	{ SCMP_SYS(rt_sigreturn), ALL, ANY },    /* return from the kick (V) and stop (M) handlers */
	{ SCMP_SYS(accept4), M, ANY },           /* the --control socket (created before the sandbox) */
	{ SCMP_SYS(sendto), M, ANY },            /* its replies (send, MSG_NOSIGNAL) */
	{ SCMP_SYS(epoll_wait), M, ANY },        /* the main thread's event loop (vmm/evloop.h): vm_run waits */
	{ SCMP_SYS(epoll_pwait), M, ANY },       /* same, other libc paths */
	{ SCMP_SYS(epoll_ctl), M, ANY },         /* its watches: control clients, each VM's eventfd */
	{ SCMP_SYS(epoll_create1), M, ANY },     /* vm_run without a caller's loop makes its own */
	{ SCMP_SYS(eventfd2), M, ANY },          /* a restart's new VM (vCPUs wake the loop through it) */
	{ SCMP_SYS(poll), M, ANY },              /* --on-crash pause waits on the stop signalfd */
	{ SCMP_SYS(ppoll), M, ANY },             /* same, other libc paths */
	{ SCMP_SYS(tgkill), M | V | W | I, OWN_TGID }, /* pthread_kill: kick vCPUs out of KVM_RUN (vm_raise,
	                                            vm_request_stop, vm_sample_rip); raise/abort */
	{ SCMP_SYS(getpid), M | V | W | I, ANY },    /* pthread_kill; M: report ids */
	{ SCMP_SYS(gettid), M | V | W | I, ANY },    /* pthread_kill / raise */
	{ SCMP_SYS(sched_yield), M, ANY },       /* libraries' spin-then-yield loops */
	{ SCMP_SYS(sched_getaffinity), M, ANY }, /* sysconf(_SC_NPROCESSORS_*) in libraries */
	{ SCMP_SYS(exit), ALL, ANY },            /* a thread returns */
	{ SCMP_SYS(exit_group), ALL, ANY },      /* the process exits (or a device gives up) */
	{ SCMP_SYS(restart_syscall), ALL, ANY }, /* a sleep or wait interrupted by a signal */

	/* ---- time ---- */
	{ SCMP_SYS(clock_gettime), ALL, ANY },   /* now_ns, hypercall clock (V), report time (M);
	                                            the vDSO fallback when the clocksource needs it */
	{ SCMP_SYS(gettimeofday), ALL, ANY },    /* same, vDSO fallback */
	{ SCMP_SYS(clock_nanosleep), ALL, ANY }, /* usleep: stdin back-pressure, watcher period,
	                                            vm_sample_rip, devices pacing */
	{ SCMP_SYS(nanosleep), ALL, ANY },       /* same, other libc paths */
	{ SCMP_SYS(getrandom), M | V | I, ANY }, /* V: entropy_fill (hypercall, virtio-rng); M: hash seeds;
	                                            I: temporary names */
	{ SCMP_SYS(sysinfo), M, ANY },           /* qsort() sizes its buffer from physical memory (symbols) */

	/* ---- file descriptors that are already open ---- */
	{ SCMP_SYS(read), M | V | S | W, ANY },  /* S: stdin; V: device backends; M: images, /proc files */
	{ SCMP_SYS(write), ALL, ANY },           /* console (stdout, --console-log), tvm_log on stderr;
	                                            M: report files */
	{ SCMP_SYS(readv), M | V, ANY },         /* stdio and device backends (scatter/gather) */
	{ SCMP_SYS(writev), M | V, ANY },        /* same */
	{ SCMP_SYS(pread64), M | V, ANY },       /* V: virtio-blk image and overlay; M: /proc/self/pagemap, dumps */
	{ SCMP_SYS(pwrite64), M | V | I, ANY },  /* V: virtio-blk overlay; M: dump files; I: overlay map */
	{ SCMP_SYS(preadv), M | V, ANY },        /* V: virtio-blk scatter/gather */
	{ SCMP_SYS(pwritev), M | V, ANY },       /* same */
	{ SCMP_SYS(lseek), M | V, ANY },         /* stdio, libelf, overlay files */
	{ SCMP_SYS(fsync), M | I, ANY },         /* I: overlay map and its directory; M: reports, console log */
	{ SCMP_SYS(fdatasync), M | I, ANY },     /* I: virtio-blk flush (the overlay data) */
	{ SCMP_SYS(ftruncate), M, ANY },         /* sparse dump files, a new overlay */
	{ SCMP_SYS(fchmod), M | I, ANY },        /* a new overlay map (mkostemp makes it 0600) */
	{ SCMP_SYS(fallocate), M | V, ANY },     /* V: overlay discard/zeroes; M: dump space */
	{ SCMP_SYS(fstat), M | V, ANY },         /* stdio, opendir, overlay files */
	{ SCMP_SYS(newfstatat), M | V, ANY },    /* fstat() in glibc >= 2.33, stat() */
	{ SCMP_SYS(fcntl), M | V, ANY },         /* stdio fdopen, O_NONBLOCK/flags queries */
	{ SCMP_SYS(close), M | I, ANY },         /* I: overlay map file; M: everything */
	{ SCMP_SYS(flock), M, ANY },             /* disk overlays are locked while in use (restart) */

	/* ---- the file system: names ---- */
	{ SCMP_SYS(openat), M | I, ANY },        /* I: the overlay map flush; M: reports, images,
	                                            /dev/kvm for a restart, /proc/self/{maps,pagemap} */
	{ SCMP_SYS(open), M, ANY },              /* libraries using the old call */
	{ SCMP_SYS(rename), M | I, ANY },        /* I: overlay map flush (write new, rename over);
	                                            M: a finished report gets its final name */
	{ SCMP_SYS(renameat), M | I, ANY },      /* same, *at form */
	{ SCMP_SYS(renameat2), M | I, ANY },     /* same */
	{ SCMP_SYS(unlink), M | I, ANY },        /* I: overlay temporary files; M: a failed report */
	{ SCMP_SYS(unlinkat), M | I, ANY },      /* same, and remove_tree() of a half-written report */
	{ SCMP_SYS(mkdir), M, ANY },             /* the report directory */
	{ SCMP_SYS(mkdirat), M, ANY },           /* same */
	{ SCMP_SYS(rmdir), M, ANY },             /* a half-written report */
	{ SCMP_SYS(getdents64), M, ANY },        /* readdir: removing a half-written report */
	{ SCMP_SYS(stat), M, ANY },              /* libraries */
	{ SCMP_SYS(lstat), M, ANY },             /* libraries */
	{ SCMP_SYS(statx), M, ANY },             /* libraries */
	{ SCMP_SYS(access), M, ANY },            /* libraries (config files) */
	{ SCMP_SYS(faccessat), M, ANY },         /* same */
	{ SCMP_SYS(faccessat2), M, ANY },        /* same */
	{ SCMP_SYS(readlink), M, ANY },          /* libraries resolving /proc/self/exe */
	{ SCMP_SYS(getuid), M, ANY },            /* OpenSSL, libraries: identity checks */
	{ SCMP_SYS(geteuid), M, ANY },
	{ SCMP_SYS(getgid), M, ANY },
	{ SCMP_SYS(getegid), M, ANY },
	{ SCMP_SYS(uname), M, ANY },             /* libraries probing the kernel */
};

#if TVM_SANITIZER
/* The ASan/UBSan/LSan runtime of `make asan` builds: error reports
 * (symbolizing reads /proc/self/maps and the binary), its allocator, and
 * LeakSanitizer at exit (a ptrace-ing helper thread that stops the others).
 * Allowed on every thread of a sanitizer build only. */
static const struct sb_call sanitizer_calls[] = {
	{ SCMP_SYS(sigaltstack), ALL, ANY },
	{ SCMP_SYS(prctl), ALL, ANY },
	{ SCMP_SYS(mmap), ALL, ANY },
	{ SCMP_SYS(mprotect), ALL, ANY },
	{ SCMP_SYS(munmap), ALL, ANY },
	{ SCMP_SYS(madvise), ALL, ANY },
	{ SCMP_SYS(open), ALL, ANY },
	{ SCMP_SYS(openat), ALL, ANY },
	{ SCMP_SYS(close), ALL, ANY },
	{ SCMP_SYS(read), ALL, ANY },
	{ SCMP_SYS(pread64), ALL, ANY },
	{ SCMP_SYS(write), ALL, ANY },
	{ SCMP_SYS(fstat), ALL, ANY },
	{ SCMP_SYS(newfstatat), ALL, ANY },
	{ SCMP_SYS(stat), ALL, ANY },
	{ SCMP_SYS(lseek), ALL, ANY },
	{ SCMP_SYS(readlink), ALL, ANY },
	{ SCMP_SYS(readlinkat), ALL, ANY },
	{ SCMP_SYS(getdents64), ALL, ANY },
	{ SCMP_SYS(getdents), ALL, ANY },
	{ SCMP_SYS(getpid), ALL, ANY },
	{ SCMP_SYS(gettid), ALL, ANY },
	{ SCMP_SYS(getppid), ALL, ANY },
	{ SCMP_SYS(sched_yield), ALL, ANY },
	{ SCMP_SYS(sched_getaffinity), ALL, ANY },
	{ SCMP_SYS(rt_sigaction), ALL, ANY },
	{ SCMP_SYS(tgkill), ALL, ANY },
	{ SCMP_SYS(kill), ALL, ANY },
	{ SCMP_SYS(getrlimit), ALL, ANY },
	{ SCMP_SYS(prlimit64), ALL, ANY },
	{ SCMP_SYS(uname), ALL, ANY },
	{ SCMP_SYS(pipe), ALL, ANY },
	{ SCMP_SYS(pipe2), ALL, ANY },
	{ SCMP_SYS(clone), M, ANY },
	{ SCMP_SYS(ptrace), M, ANY },
	{ SCMP_SYS(wait4), M, ANY },
	{ SCMP_SYS(waitid), M, ANY },
};
#endif

/* ioctl: by request number (arg 1; the kernel reads it as 32 bits). */
struct sb_ioctl {
	unsigned long req;
	unsigned classes;
};

static const struct sb_ioctl ioctls[] = {
	{ KVM_RUN, V },            /* vcpu_thread */
	{ KVM_GET_REGS, V },       /* take_sample (hang watcher's RIP sample); cpu_state_was_reset */
	{ KVM_GET_SREGS, V },      /* same */
	{ KVM_GET_VCPU_EVENTS, V }, /* give_back_int3: the guest's own int3 under software breakpoints */
	{ KVM_SET_VCPU_EVENTS, V }, /* same */
	{ KVM_GET_MP_STATE, V },   /* take_sample */
	{ KVM_IRQ_LINE, V | S },   /* vm_irq_line: UART (input arrives on S), virtio interrupts */
	{ TCGETS, M | V },         /* stdio: isatty() when a stream first buffers output */
	{ BLKGETSIZE64, M },       /* the size of a disk that is a block device (restart reopens it) */
};
/* MAIN issues some thirty KVM ioctls (creating a VM again for a restart,
 * capturing every vCPU's state): it may issue any ioctl of the KVM type
 * (_IOC_TYPE 0xAE), which only /dev/kvm and its VM and vCPU fds accept. */

static const char *const class_names[SANDBOX_NCLASSES] = { "main", "vcpu", "stdin", "watch", "io", "console" };

const char *sandbox_class_name(enum sandbox_class c)
{
	return (unsigned)c < SANDBOX_NCLASSES ? class_names[c] : "?";
}

static int add_call(scmp_filter_ctx ctx, const struct sb_call *r)
{
	switch (r->arg) {
	case ANY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	case NO_EXEC:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	case THREAD_ONLY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
					SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	case NNP_ONLY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS));
	case OWN_TGID:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	case ENOSYS_ERR:
		return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), r->nr, 0);
	}
	return -EINVAL;
}

/* Add class c's rules; on failure *bad_nr is the call whose rule failed. */
static int build(scmp_filter_ctx ctx, enum sandbox_class c, int *bad_nr)
{
	unsigned bit = 1u << c;
	int rc;
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		if ((calls[i].classes & bit) && (rc = add_call(ctx, &calls[i])) < 0) {
			*bad_nr = calls[i].nr;
			return rc;
		}
#if TVM_SANITIZER
	for (size_t i = 0; i < sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]); i++)
		if ((sanitizer_calls[i].classes & bit) && (rc = add_call(ctx, &sanitizer_calls[i])) < 0) {
			*bad_nr = sanitizer_calls[i].nr;
			return rc;
		}
#endif
	*bad_nr = SCMP_SYS(ioctl);
	for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		if ((ioctls[i].classes & bit) &&
		    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i].req & 0xffffffffu))) < 0)
			return rc;
	if (c == SANDBOX_MAIN &&
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00u, (unsigned)KVMIO << 8))) < 0)
		return rc;
	/* KVM_RUN on every exit: test ioctl first. */
	if (bit & (M | V | S))
		seccomp_syscall_priority(ctx, SCMP_SYS(ioctl), 255);
	*bad_nr = -1;
	return 0;
}

/* The test-only switch (sandbox.h), compiled into the test build only
 * (build/tests/trialvm-hooks): TRIALVM_TEST_FORBIDDEN_SYSCALL=CLASS[:CALL]
 * makes the thread of CLASS attempt CALL, which its class must not allow:
 * socket (the default), openat, rename, unlink, ftruncate, mmap-exec. */
#ifdef TVM_TEST_HOOKS
static void test_forbidden_call(enum sandbox_class c)
{
	const char *want = getenv("TRIALVM_TEST_FORBIDDEN_SYSCALL");
	if (!want)
		return;
	size_t cl = strcspn(want, ":");
	if (strlen(class_names[c]) != cl || strncmp(want, class_names[c], cl) != 0)
		return;
	const char *call = want[cl] == ':' ? want + cl + 1 : "socket";
	tvm_log("test: TRIALVM_TEST_FORBIDDEN_SYSCALL=%s: the %s thread calls %s(2), which the sandbox forbids", want,
		class_names[c], call);
	long r;
	if (!strcmp(call, "socket"))
		r = socket(AF_INET, SOCK_STREAM, 0);
	else if (!strcmp(call, "openat"))
		r = openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
	else if (!strcmp(call, "rename"))
		r = rename("/nonexistent/trialvm-test-a", "/nonexistent/trialvm-test-b");
	else if (!strcmp(call, "unlink"))
		r = unlink("/nonexistent/trialvm-test");
	else if (!strcmp(call, "ftruncate"))
		r = ftruncate(-1, 0);
	else if (!strcmp(call, "mmap-exec")) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		r = p == MAP_FAILED ? -1 : 0;
		if (p != MAP_FAILED)
			munmap(p, 4096);
	} else {
		tvm_log("test: unknown call '%s' in TRIALVM_TEST_FORBIDDEN_SYSCALL", call);
		return;
	}
	tvm_log("test: %s(2) on the %s thread was %s (result %ld)", call, class_names[c],
		sandbox_disabled ? "allowed: --no-sandbox" : "NOT stopped by the sandbox", r);
	if (!strcmp(call, "socket") || !strcmp(call, "openat"))
		if (r >= 0)
			close((int)r);
}
#else
static void test_forbidden_call(enum sandbox_class c) { (void)c; }
#endif

/* Classes this thread has entered (a restart must not stack MAIN again). */
static __thread unsigned entered;

int sandbox_enter(enum sandbox_class c, struct tvm_err *err)
{
	if ((unsigned)c >= SANDBOX_NCLASSES)
		return tvm_seterr(err, "sandbox: no thread class %d", (int)c);
	unsigned bit = 1u << c;
	if (entered & bit)
		return 0;
	if (sandbox_disabled) {
		static int warned;
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			tvm_log("WARNING: --no-sandbox: the VMM runs without its seccomp sandbox (debugging only)");
		entered |= bit;
		test_forbidden_call(c);
		return 0;
	}
#ifdef TVM_SANDBOX_LOG_ONLY
	char name[16];
	snprintf(name, sizeof(name), "tvm-%s", class_names[c]);
	prctl(PR_SET_NAME, name);
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_LOG);
#else
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
#endif
	if (!ctx)
		return tvm_seterr(err, "cannot set up the seccomp sandbox of the %s thread (seccomp_init failed; "
				       "run with --no-sandbox to debug without it)", class_names[c]);
	int bad_nr = -1;
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc == 0 && (rc = build(ctx, c, &bad_nr)) < 0)
		tvm_debug("sandbox: the %s rule for system call %d failed", class_names[c], bad_nr);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return tvm_seterr(err, "cannot install the seccomp sandbox of the %s thread: %s (run with "
				       "--no-sandbox to debug without it)", class_names[c], strerror(-rc));
	entered |= bit;
	test_forbidden_call(c);
	return 0;
}
