/* vmm/stopsig.c - stop signals through a signalfd (stopsig.h). */
#include "stopsig.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util.h"

static int sfd = -1;
static int first; /* the first stop signal; main thread only */

int stop_signals_init(struct tvm_err *err)
{
	if (sfd >= 0)
		return 0;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return tvm_seterr(err, "cannot block SIGINT/SIGTERM/SIGHUP");
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		return tvm_seterr(err, "cannot create a signalfd for SIGINT/SIGTERM/SIGHUP: %s", strerror(errno));
	return 0;
}

static void drain(void)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (!first)
			first = (int)si.ssi_signo;
}

int stop_signal_pending(void)
{
	if (sfd >= 0)
		drain(); /* every call: a later signal must not keep the fd readable */
	return first;
}

int stop_signal_fd(void) { return sfd; }

int stop_signal_wait(void)
{
	while (sfd >= 0 && !stop_signal_pending()) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
	}
	return first;
}
