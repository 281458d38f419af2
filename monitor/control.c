/* monitor/control.c - the control socket (control.h) and its client. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../vmm/evloop.h"
#include "../vmm/snapshot.h"
#include "../vmm/util.h"
#include "crash.h"

struct client {
	int fd;
	size_t len;
	char buf[CONTROL_MAX_REQUEST + 1];
};

struct control {
	int lfd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct client cl[CONTROL_MAX_CLIENTS];
	struct evloop *loop;
	struct vm *vm;       /* the running VM (control_attach), or NULL between VMs */
	const struct crash_ctx *ctx; /* what a `report` needs */
	bool paused;         /* a client's pause is held */
	const struct snap_header *tmpl; /* the images, for snapshots */
	const void *origin;
	size_t origin_len;
};

static void on_accept(void *arg, int fd, uint32_t events);

struct control *control_open(const char *path, const struct snap_header *tmpl, const void *origin, size_t origin_len,
			     struct evloop *loop, struct tvm_err *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(a.sun_path)) {
		tvm_seterr(err, "--control %s: the path is longer than a UNIX socket's %zu bytes", path, sizeof(a.sun_path) - 1);
		return NULL;
	}
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->cl[i].fd = -1;
	c->tmpl = tmpl;
	c->loop = loop;
	c->origin = origin;
	c->origin_len = origin_len;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177); /* the socket is created 0600 */
	int r = c->lfd < 0 ? -1 : bind(c->lfd, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	umask(old);
	if (r < 0 || listen(c->lfd, CONTROL_MAX_CLIENTS) < 0) {
		e = r < 0 ? e : errno;
		tvm_seterr(err, "--control %s: %s%s", path, strerror(e),
			   e == EADDRINUSE ? " (remove it if no trialvm uses it)" : "");
		if (c->lfd >= 0)
			close(c->lfd);
		free(c);
		return NULL;
	}
	chmod(path, 0600);
	if (evloop_add(loop, c->lfd, on_accept, c, err) < 0) {
		close(c->lfd);
		unlink(path);
		free(c);
		return NULL;
	}
	return c;
}

static void drop(struct control *c, struct client *cl)
{
	if (cl->fd >= 0) {
		evloop_del(c->loop, cl->fd);
		close(cl->fd);
	}
	cl->fd = -1;
	cl->len = 0;
}

static void reply(struct control *c, struct client *cl, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return;
	size_t n = strlen(s);
	/* Non-blocking: a client that does not read its replies loses them,
	 * the VM does not wait for it. */
	s[n] = '\n'; /* json_dumps left room: its NUL */
	if (send(cl->fd, s, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1)) /* a client gone is no SIGPIPE */
		drop(c, cl);
	free(s);
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_reply(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static json_t *do_snapshot(struct control *c, struct vm *vm, json_t *req)
{
	const char *path = json_string_value(json_object_get(req, "path"));
	if (!path || !path[0])
		return error_reply("snapshot needs \"path\": the file to write");
	struct tvm_err err = { "" };
	struct snap_header h = *c->tmpl;
	memset(h.parent, 0, sizeof(h.parent));
	if (getrandom(h.id, sizeof(h.id), 0) != (ssize_t)sizeof(h.id))
		return error_reply("no random id for the snapshot: %s", strerror(errno));
	struct snap_extra ex = { .type = SNAP_SEC_ORIGIN, .version = 1, .data = c->origin, .len = c->origin_len };
	uint64_t t0 = now_ns();
	if (vm_pause(vm, 2000, &err) < 0)
		return error_reply("%s", err.msg);
	int rc = vm_snapshot_save(vm, path, &h, NULL, &ex, c->origin_len ? 1 : 0, &err);
	vm_resume(vm);
	if (rc < 0)
		return error_reply("%s", err.msg);
	char id[33];
	hex_bytes(h.id, sizeof(h.id), id);
	return json_pack("{s:b, s:s, s:s, s:f}", "ok", 1, "path", path, "id", id, "ms", (now_ns() - t0) / 1e6);
}

static json_t *do_report(struct control *c)
{
	char path[4096];
	double pause_ms = 0;
	struct tvm_err err = { "" };
	if (crash_live_report(c->ctx, "a control client asked for a report", path, sizeof(path), &pause_ms, &err) < 0)
		return error_reply("%s", err.msg);
	return json_pack("{s:b, s:s, s:f}", "ok", 1, "path", path, "pause_ms", pause_ms);
}

#define COMMANDS "status, pause, resume, snapshot, report, quit"

static json_t *handle(struct control *c, const char *line)
{
	json_error_t je;
	json_t *req = json_loads(line, JSON_REJECT_DUPLICATES, &je);
	if (!req || !json_is_object(req)) {
		json_decref(req);
		return error_reply("not a JSON object: %s", req ? "another JSON value" : je.text);
	}
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	struct vm *vm = c->vm;
	json_t *out;
	if (!cmd) {
		out = error_reply("the request has no \"cmd\" string (" COMMANDS ")");
	} else if (!vm) {
		out = error_reply("no VM is running now (it ended; a restart may follow): try again");
	} else if (!strcmp(cmd, "status")) {
		struct vm_exit_stats es;
		vm_exit_stats(vm, &es);
		out = json_pack("{s:b, s:s, s:I, s:I, s:i}", "ok", 1, "state", c->paused ? "paused" : "running",
				"uptime_ms", (json_int_t)(vm_uptime_ns(vm) / 1000000), "exits", (json_int_t)es.total,
				"vcpus", vm_ncpus(vm));
	} else if (!strcmp(cmd, "pause")) {
		struct tvm_err err = { "" };
		if (c->paused)
			out = json_pack("{s:b, s:s}", "ok", 1, "state", "paused");
		else if (vm_pause(vm, 2000, &err) < 0)
			out = error_reply("%s", err.msg);
		else {
			c->paused = true;
			out = json_pack("{s:b, s:s}", "ok", 1, "state", "paused");
		}
	} else if (!strcmp(cmd, "resume")) {
		if (c->paused)
			vm_resume(vm);
		c->paused = false;
		out = json_pack("{s:b, s:s}", "ok", 1, "state", "running");
	} else if (!strcmp(cmd, "snapshot")) {
		out = do_snapshot(c, vm, req);
	} else if (!strcmp(cmd, "report")) {
		out = c->ctx && c->ctx->report_dir ? do_report(c)
						  : error_reply("this run writes no reports (--no-report): nowhere to put one");
	} else if (!strcmp(cmd, "quit")) {
		struct tvm_event ev = { .kind = TVM_EV_QUIT };
		snprintf(ev.detail, sizeof(ev.detail), "a control client asked trialvm to quit");
		vm_raise(vm, -1, &ev);
		if (c->paused)
			vm_resume(vm);
		c->paused = false;
		out = json_pack("{s:b, s:s}", "ok", 1, "state", "quitting");
	} else {
		out = error_reply("unknown command '%.64s' (" COMMANDS ")", cmd);
	}
	json_decref(req);
	return out;
}

static void serve_client(struct control *c, struct client *cl)
{
	for (;;) {
		ssize_t n = read(cl->fd, cl->buf + cl->len, CONTROL_MAX_REQUEST - cl->len);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			drop(c, cl);
			return;
		}
		if (n < 0)
			return;
		cl->len += (size_t)n;
		char *nl;
		while (cl->fd >= 0 && (nl = memchr(cl->buf, '\n', cl->len))) {
			*nl = 0;
			reply(c, cl, handle(c, cl->buf));
			size_t used = (size_t)(nl + 1 - cl->buf);
			memmove(cl->buf, nl + 1, cl->len - used);
			cl->len -= used;
		}
		if (cl->fd < 0)
			return;
		if (cl->len == CONTROL_MAX_REQUEST) {
			reply(c, cl, error_reply("request longer than %d bytes; closing the connection", CONTROL_MAX_REQUEST));
			drop(c, cl);
			return;
		}
	}
}

static void on_client(void *arg, int fd, uint32_t events)
{
	struct control *c = arg;
	(void)events;
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (c->cl[i].fd == fd)
			serve_client(c, &c->cl[i]);
}

static void on_accept(void *arg, int lfd, uint32_t events)
{
	struct control *c = arg;
	(void)events;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		int slot = -1;
		for (int i = 0; i < CONTROL_MAX_CLIENTS && slot < 0; i++)
			if (c->cl[i].fd < 0)
				slot = i;
		struct tvm_err err = { "" };
		if (slot < 0 || evloop_add(c->loop, fd, on_client, c, &err) < 0) {
			static const char busy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0) {
				/* the client is gone; nothing to tell */
			}
			close(fd);
			continue;
		}
		c->cl[slot].fd = fd;
		c->cl[slot].len = 0;
	}
}

void control_attach(struct control *c, struct vm *vm, const struct crash_ctx *ctx)
{
	if (c) {
		c->vm = vm;
		c->ctx = ctx;
	}
}

void control_vm_gone(struct control *c)
{
	if (c) {
		c->paused = false;
		c->vm = NULL;
		c->ctx = NULL;
	}
}

void control_close(struct control *c)
{
	if (!c)
		return;
	for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		drop(c, &c->cl[i]);
	evloop_del(c->loop, c->lfd);
	close(c->lfd);
	unlink(c->path);
	free(c);
}

/* ---------------------------------------------------------------- client */

static const char usage_ctl[] =
	"Usage: trialvm ctl SOCKET COMMAND [PATH]\n"
	"\n"
	"Send one request to a running 'trialvm run --control SOCKET' and print its\n"
	"reply (one JSON line). Commands:\n"
	"  status          state (running, paused), uptime, exits, vCPUs\n"
	"  pause, resume   stop every vCPU at an exit boundary / let them go\n"
	"  snapshot PATH   write a full snapshot of the running machine to PATH\n"
	"  report          write a crash-style report of the running machine (it\n"
	"                  is paused while the report is written, then goes on)\n"
	"  quit            end the run (exit status 0)\n"
	"  -               send standard input as it is (request lines, up to 64 KiB)\n"
	"                  and print every reply until the server closes or has\n"
	"                  answered each line\n"
	"Exit status: 0 when the reply says ok, 125 when it does not or no reply\n"
	"came, 126 for a bad command line.\n";

int control_client_main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage_ctl, stdout);
		return 0;
	}
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "trialvm: ctl takes SOCKET COMMAND [PATH]\nTry 'trialvm ctl --help'.\n");
		return TVM_EXIT_USAGE;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char *line;
	size_t n = 0, want = 1; /* reply lines to wait for */
	if (!strcmp(argv[2], "-")) {
		line = malloc(65536 + 1);
		while (line && n < 65536) {
			ssize_t r = read(0, line + n, 65536 - n);
			if (r <= 0)
				break;
			n += (size_t)r;
		}
		want = 0;
		for (size_t i = 0; line && i < n; i++)
			want += line[i] == '\n';
		if (line && n && line[n - 1] != '\n')
			want++; /* an unterminated (or overlong) request gets its error reply too */
	} else {
		json_t *req = json_pack("{s:s}", "cmd", argv[2]);
		if (argc == 4)
			json_object_set_new(req, "path", json_string(argv[3]));
		line = json_dumps(req, JSON_COMPACT);
		json_decref(req);
		if (line) {
			n = strlen(line);
			char *l2 = realloc(line, n + 2);
			if (l2) {
				line = l2;
				line[n++] = '\n';
			}
		}
	}
	if (!line || strlen(argv[1]) >= sizeof(a.sun_path)) {
		free(line);
		fprintf(stderr, "trialvm: ctl: bad socket path or command\n");
		return TVM_EXIT_USAGE;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "trialvm: ctl: cannot connect to %s: %s (is 'trialvm run --control %s' running?)\n", argv[1],
			strerror(errno), argv[1]);
		free(line);
		if (fd >= 0)
			close(fd);
		return TVM_EXIT_ERROR;
	}
	bool sent = send(fd, line, n, MSG_NOSIGNAL) >= 0; /* what was sent gets its replies */
	free(line);
	static char buf[1 << 16];
	size_t have = 0, lines = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (sent && have < sizeof(buf) - 1 && lines < want && poll(&p, 1, 30000) > 0) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			lines += buf[have + (size_t)i] == '\n';
		have += (size_t)r;
	}
	close(fd);
	buf[have] = 0;
	char *nl = memchr(buf, '\n', have);
	if (!nl) {
		fprintf(stderr, "trialvm: ctl: no reply from %s\n", argv[1]);
		return TVM_EXIT_ERROR;
	}
	fputs(buf, stdout);
	if (buf[have - 1] != '\n')
		putchar('\n');
	/* ok when every reply says so */
	bool ok = true;
	for (char *l = buf; l && *l; l = nl ? nl + 1 : NULL) {
		nl = strchr(l, '\n');
		if (nl)
			*nl = 0;
		if (!*l)
			continue;
		json_t *rep = json_loads(l, 0, NULL);
		ok &= rep && json_is_true(json_object_get(rep, "ok"));
		json_decref(rep);
	}
	return ok ? 0 : TVM_EXIT_ERROR;
}
