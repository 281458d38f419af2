/*
 * spawn-time - time a command from its exec to its first console byte,
 * to a given console string, and to its exit (tests/bench, for ci/bench.sh).
 *
 * usage: spawn-time [OPTIONS] -- COMMAND [ARGS...]
 *   -p STRING   stop timing at the first occurrence of STRING on the
 *               command's stdout, then end the command (SIGTERM, and
 *               SIGKILL 2 s later)
 *   -t SECONDS  cap: SIGKILL the command this long after its exec
 *   -o FILE     save what the command wrote on stdout to FILE
 *   -m          memory mode (needs -g): trace the command (ptrace, every
 *               thread) and stop it, through a seccomp filter, when it
 *               munmaps a region of the guest RAM size (a VMM tearing its
 *               VM down) or calls exit_group, whichever comes first; there
 *               its address space is intact: report its VmHWM (peak RSS),
 *               VmRSS, RssAnon, RssFile and the Rss of its guest-RAM mapping
 *   -g BYTES    guest RAM size: the guest-RAM mapping is the private
 *               anonymous mapping of that size (the smallest one at least
 *               that large, for VMMs that pad it for alignment)
 *
 * The command's stdin is /dev/null, its stdout a pipe read here, its stderr
 * this program's stderr. Times are CLOCK_MONOTONIC ns since the child's
 * execve (the child records the clock just before it calls execve).
 * Output, one key=value per line on stdout:
 *   first_byte_ns, match_ns (-1: STRING not seen), exit_ns, status
 *   (exit:N or signal:N), timed_out (0/1), maxrss_kb (wait4), and in
 *   memory mode sample_at (munmap or exit_group), vmhwm_kb, vmrss_kb,
 *   rssanon_kb, rssfile_kb, guest_size_kb, guest_rss_kb (-1: not found),
 *   then "rss_kb_of=KB PATH" for the rest, summed per path, largest first.
 * Exit status: 0 if the command could be run and timed, 1 otherwise.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: spawn-time [-p STRING] [-t SECONDS] [-o FILE] [-m] [-g BYTES] -- COMMAND [ARGS...]\n");
	exit(2);
}

struct maprec;
struct meminfo {
	long vmhwm_kb, vmrss_kb, rssanon_kb, rssfile_kb, guest_size_kb, guest_rss_kb;
	const char *at;
	struct maprec *by_path;
	size_t nby_path;
};

static long status_field(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * Guest RAM: the private anonymous mapping (no path) whose size is the guest
 * RAM size (the smallest one at least that large, for VMMs that pad it for
 * alignment). Everything else resident is summed per path ("[anon]" for
 * anonymous mappings) into mi->by_path, largest first.
 */
struct maprec {
	char name[256];
	long size_kb, rss_kb;
	int anon;
};

static int by_rss_desc(const void *a, const void *b)
{
	long x = ((const struct maprec *)a)->rss_kb, y = ((const struct maprec *)b)->rss_kb;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void read_smaps(pid_t pid, long guest_bytes, struct meminfo *mi)
{
	char fname[64], line[1024];
	snprintf(fname, sizeof(fname), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(fname, "r");
	mi->guest_size_kb = mi->guest_rss_kb = -1;
	if (!f)
		return;
	struct maprec *m = NULL;
	size_t n = 0, cap = 0;
	while (fgets(line, sizeof(line), f)) {
		/* A mapping header: "lo-hi perms offset dev inode [path]". */
		unsigned long lo, hi, inode;
		char perms[8], off[32], dev[32], path[sizeof(line)];
		int nf = sscanf(line, "%lx-%lx %7s %31s %31s %lu %1023s", &lo, &hi, perms, off, dev, &inode, path);
		if (nf >= 6 && strlen(perms) == 4) {
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				m = realloc(m, cap * sizeof(*m));
				if (!m)
					abort();
			}
			struct maprec *r = &m[n++];
			r->anon = nf == 6 && inode == 0;
			snprintf(r->name, sizeof(r->name), "%.*s", (int)sizeof(r->name) - 1, nf == 6 ? "[anon]" : path);
			r->anon &= perms[3] == 'p';
			r->size_kb = (long)((hi - lo) / 1024);
			r->rss_kb = 0;
		} else if (n && !strncmp(line, "Rss:", 4)) {
			m[n - 1].rss_kb = strtol(line + 4, NULL, 10);
		}
	}
	fclose(f);
	long want_kb = guest_bytes / 1024;
	size_t g = n;
	for (size_t i = 0; i < n; i++)
		if (m[i].anon && m[i].size_kb >= want_kb && (g == n || m[i].size_kb < m[g].size_kb))
			g = i;
	if (g < n) {
		mi->guest_size_kb = m[g].size_kb;
		mi->guest_rss_kb = m[g].rss_kb;
		m[g].rss_kb = 0;
	}
	/* Sum the rest per name into the front of the array. */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!m[i].rss_kb)
			continue;
		size_t j;
		for (j = 0; j < k && strcmp(m[j].name, m[i].name); j++)
			;
		if (j == k)
			m[k++] = m[i];
		else
			m[j].rss_kb += m[i].rss_kb;
	}
	qsort(m, k, sizeof(*m), by_rss_desc);
	free(mi->by_path);
	mi->by_path = m;
	mi->nby_path = k;
}

/*
 * In the child, before execve: SECCOMP_RET_TRACE for exit_group and for
 * munmap(_, guest_bytes); everything else is allowed untouched.
 */
static int install_filter(uint64_t guest_bytes)
{
	uint32_t lo = (uint32_t)guest_bytes, hi = (uint32_t)(guest_bytes >> 32);
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_munmap, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

int main(int argc, char **argv)
{
	const char *pattern = NULL, *outfile = NULL;
	double cap_s = 0;
	int memmode = 0;
	long guest_bytes = 0;
	int c;
	while ((c = getopt(argc, argv, "+p:t:o:mg:")) != -1) {
		switch (c) {
		case 'p': pattern = optarg; break;
		case 't': cap_s = atof(optarg); break;
		case 'o': outfile = optarg; break;
		case 'm': memmode = 1; break;
		case 'g': guest_bytes = atol(optarg); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	char **cmd = argv + optind;
	if ((pattern && !*pattern) || (memmode && guest_bytes <= 0))
		usage();

	FILE *save = NULL;
	if (outfile && !(save = fopen(outfile, "w"))) {
		fprintf(stderr, "spawn-time: %s: %s\n", outfile, strerror(errno));
		return 1;
	}

	/* The child stores the clock just before execve here. */
	volatile int64_t *t_exec = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t_exec == MAP_FAILED) {
		perror("spawn-time: mmap");
		return 1;
	}
	*t_exec = 0;

	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	int pfd[2];
	if (sfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
		perror("spawn-time: signalfd/pipe");
		return 1;
	}

	pid_t pid = fork();
	if (pid < 0) {
		perror("spawn-time: fork");
		return 1;
	}
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		int nul = open("/dev/null", O_RDONLY);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(pfd[1], 1) < 0)
			_exit(127);
		if (memmode && (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 ||
				install_filter((uint64_t)guest_bytes) < 0)) {
			fprintf(stderr, "spawn-time: ptrace/seccomp: %s\n", strerror(errno));
			_exit(127);
		}
		*t_exec = now_ns();
		execvp(cmd[0], cmd);
		fprintf(stderr, "spawn-time: %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);

	int64_t t_first = -1, t_match = -1, t_exit = -1, t_term = -1;
	int timed_out = 0, exited = 0, wstatus = 0, pipe_open = 1, armed = 0;
	struct rusage ru;
	struct meminfo mi = { -1, -1, -1, -1, -1, -1, NULL, NULL, 0 };
	memset(&ru, 0, sizeof(ru));
	size_t plen = pattern ? strlen(pattern) : 0;
	char *tail = calloc(1, plen + 1); /* last plen-1 bytes seen */
	size_t tlen = 0;
	int64_t cap_ns = cap_s > 0 ? (int64_t)(cap_s * 1e9) : -1;

	while (!exited) {
		struct pollfd fds[2] = { { sfd, POLLIN, 0 }, { pipe_open ? pfd[0] : -1, POLLIN, 0 } };
		int64_t t0 = *t_exec;
		int to_ms = 100;
		if (t0 && cap_ns > 0 && !timed_out) {
			int64_t left = (t0 + cap_ns - now_ns()) / 1000000;
			to_ms = left < 0 ? 0 : left < 100 ? (int)left + 1 : 100;
		}
		int n = poll(fds, 2, to_ms);
		if (n < 0 && errno != EINTR) {
			perror("spawn-time: poll");
			break;
		}
		int64_t t = now_ns();
		if (pipe_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[65536];
			ssize_t r = read(pfd[0], buf, sizeof(buf));
			if (r > 0) {
				if (t_first < 0)
					t_first = t;
				if (save)
					fwrite(buf, 1, (size_t)r, save);
				if (pattern && t_match < 0) {
					/* search tail + buf for the pattern */
					size_t total = tlen + (size_t)r;
					char *w = malloc(total + 1);
					memcpy(w, tail, tlen);
					memcpy(w + tlen, buf, (size_t)r);
					w[total] = 0;
					if (memmem(w, total, pattern, plen)) {
						t_match = t;
						kill(pid, SIGTERM);
						t_term = t;
					} else {
						size_t keep = plen - 1 < total ? plen - 1 : total;
						memcpy(tail, w + total - keep, keep);
						tlen = keep;
					}
					free(w);
				}
			} else if (r == 0 || errno != EINTR) {
				pipe_open = 0;
			}
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
		}
		/* Reap or handle stops whenever anything may have happened. */
		for (;;) {
			int st;
			struct rusage r1;
			/* -1: in memory mode every thread of the command is traced */
			pid_t w = wait4(memmode ? -1 : pid, &st, WNOHANG | __WALL, &r1);
			if (w <= 0)
				break;
			if (WIFSTOPPED(st)) {
				int sig = WSTOPSIG(st);
				int ev = st >> 16;
				if (sig == SIGTRAP && ev == 0 && !armed && w == pid) {
					/* the stop after execve: trace threads, seccomp */
					ptrace(PTRACE_SETOPTIONS, pid, NULL,
					       (void *)(long)(PTRACE_O_TRACECLONE | PTRACE_O_TRACESECCOMP |
							      PTRACE_O_EXITKILL));
					armed = 1;
					sig = 0;
				} else if (sig == SIGTRAP && ev == PTRACE_EVENT_SECCOMP) {
					if (mi.guest_rss_kb < 0) {
						long nr = ptrace(PTRACE_PEEKUSER, w,
								 (void *)offsetof(struct user_regs_struct, orig_rax), NULL);
						mi.at = nr == __NR_munmap ? "munmap" : "exit_group";
						mi.vmhwm_kb = status_field(pid, "VmHWM");
						mi.vmrss_kb = status_field(pid, "VmRSS");
						mi.rssanon_kb = status_field(pid, "RssAnon");
						mi.rssfile_kb = status_field(pid, "RssFile");
						read_smaps(pid, guest_bytes, &mi);
					}
					sig = 0;
				} else if (ev) {
					sig = 0; /* clone events */
				} else if (sig == SIGSTOP && w != pid) {
					sig = 0; /* a new thread's first stop */
				}
				ptrace(PTRACE_CONT, w, NULL, (void *)(long)sig);
				continue;
			}
			if (w != pid)
				continue; /* a thread of the command ended */
			if (WIFEXITED(st) || WIFSIGNALED(st)) {
				t_exit = now_ns();
				wstatus = st;
				ru = r1;
				exited = 1;
				break;
			}
		}
		if (exited)
			break;
		t = now_ns();
		t0 = *t_exec;
		if (t0 && cap_ns > 0 && !timed_out && t - t0 >= cap_ns) {
			timed_out = 1;
			kill(pid, SIGKILL);
		}
		if (t_term > 0 && t - t_term > 2000000000LL) {
			kill(pid, SIGKILL);
			t_term = t;
		}
	}
	/* Drain what is left on the pipe (for -o). */
	if (save && pipe_open) {
		char buf[65536];
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		ssize_t r;
		while ((r = read(pfd[0], buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)r, save);
	}
	if (save)
		fclose(save);

	int64_t t0 = *t_exec;
	if (!exited || !t0) {
		fprintf(stderr, "spawn-time: could not time %s\n", cmd[0]);
		return 1;
	}
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127 && t_first < 0) {
		fprintf(stderr, "spawn-time: %s could not be run\n", cmd[0]);
		return 1;
	}
	printf("first_byte_ns=%" PRId64 "\n", t_first < 0 ? -1 : t_first - t0);
	printf("match_ns=%" PRId64 "\n", t_match < 0 ? -1 : t_match - t0);
	printf("exit_ns=%" PRId64 "\n", t_exit - t0);
	if (WIFEXITED(wstatus))
		printf("status=exit:%d\n", WEXITSTATUS(wstatus));
	else
		printf("status=signal:%d\n", WTERMSIG(wstatus));
	printf("timed_out=%d\n", timed_out);
	printf("maxrss_kb=%ld\n", ru.ru_maxrss);
	if (memmode) {
		printf("sample_at=%s\n", mi.at ? mi.at : "none");
		printf("vmhwm_kb=%ld\n", mi.vmhwm_kb);
		printf("vmrss_kb=%ld\n", mi.vmrss_kb);
		printf("rssanon_kb=%ld\n", mi.rssanon_kb);
		printf("rssfile_kb=%ld\n", mi.rssfile_kb);
		printf("guest_size_kb=%ld\n", mi.guest_size_kb);
		printf("guest_rss_kb=%ld\n", mi.guest_rss_kb);
		for (size_t i = 0; i < mi.nby_path; i++)
			printf("rss_kb_of=%ld %s\n", mi.by_path[i].rss_kb, mi.by_path[i].name);
	}
	free(tail);
	return 0;
}
