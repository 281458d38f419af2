/* qmp SOCKET COMMAND-JSON...: connect to a QEMU QMP unix socket, negotiate
 * capabilities, send each command in order and wait for its "return" (or
 * "error", which makes qmp exit 1). Prints the wall time of each command in
 * ms on stdout, one per line. Used by ci/bench-dump.sh to time QEMU's
 * dump-guest-memory next to trialvm's own dumps. A COMMAND-JSON starting
 * with '@' is sent without it and its reply line is printed instead of its
 * time (ci/bench-snap.sh reads query-migrate's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static size_t have;
static char last_reply[1 << 16];

/* Read until a line containing "return" or "error" (events are skipped). */
static int wait_reply(int fd)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(buf, '\n', have))) {
			*nl = 0;
			int ret = strstr(buf, "\"return\"") ? 0 : strstr(buf, "\"error\"") ? 1 : -1;
			if (ret == 1)
				fprintf(stderr, "qmp: %s\n", buf);
			if (ret >= 0)
				snprintf(last_reply, sizeof(last_reply), "%s", buf);
			size_t used = (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have - used);
			have -= used;
			if (ret >= 0)
				return ret;
		}
		if (have == sizeof(buf))
			have = 0; /* an over-long event line: drop it */
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n <= 0)
			return 1;
		have += (size_t)n;
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: qmp SOCKET COMMAND-JSON...\n");
		return 2;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	int tries = 0;
	while (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (++tries > 100) {
			perror(argv[1]);
			return 1;
		}
		usleep(50000);
	}
	/* The greeting, then capabilities. */
	char greet[4096];
	if (read(fd, greet, sizeof(greet)) <= 0)
		return 1;
	const char *caps = "{\"execute\":\"qmp_capabilities\"}\n";
	if (write(fd, caps, strlen(caps)) < 0 || wait_reply(fd))
		return 1;
	for (int i = 2; i < argc; i++) {
		double t0 = now_ms();
		const char *cmd = argv[i][0] == '@' ? argv[i] + 1 : argv[i];
		if (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0 || wait_reply(fd))
			return 1;
		if (argv[i][0] == '@')
			printf("%s\n", last_reply);
		else
			printf("%.1f\n", now_ms() - t0);
	}
	close(fd);
	return 0;
}
