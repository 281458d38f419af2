/* monitor/report.c - writes a crash report directory (monitor/report.h). */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../devices/overlay.h"
#include "../reporter/appcore.h"
#include "../reporter/elfdump.h"
#include "../reporter/windump.h"
#include "../vmm/fileio.h"
#include "../vmm/text.h"
#include "../vmm/util.h"
#include "crash.h"


/* sha256 of a regular file as lowercase hex; -1 when unreadable. */
static int sha256_file(const char *path, char out[65])
{
	uint8_t md[32];
	struct tvm_err err;
	if (sha256_path(path, md, &err) < 0)
		return -1;
	sha256_hex(md, out);
	return 0;
}

static json_t *hex(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%llx", (unsigned long long)v);
	return json_string(b);
}


static const char *cpu_mode(const struct cpu_state *c)
{
	if (!(c->cr0 & 1))
		return "real";
	if ((c->efer & 0x400) && c->cs.l)
		return "64-bit";
	return (c->efer & 0x400) ? "compatibility" : "protected";
}

static json_t *cpu_json(const struct cpu_state *c)
{
	static const char *const names[16] = { "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					       "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15" };
	json_t *o = json_object();
	json_object_set_new(o, "index", json_integer(c->index));
	json_object_set_new(o, "mode", json_string(cpu_mode(c)));
	json_object_set_new(o, "cpl", json_integer(c->cs.dpl));
	json_object_set_new(o, "rip", hex(c->rip));
	for (int i = 0; i < 16; i++)
		json_object_set_new(o, names[i], hex(c->gpr[i]));
	json_object_set_new(o, "rflags", hex(c->rflags));
	json_object_set_new(o, "cr0", hex(c->cr0));
	json_object_set_new(o, "cr2", hex(c->cr2));
	json_object_set_new(o, "cr3", hex(c->cr3));
	json_object_set_new(o, "cr4", hex(c->cr4));
	json_object_set_new(o, "efer", hex(c->efer));
	json_object_set_new(o, "cs", hex(c->cs.selector));
	json_object_set_new(o, "ss", hex(c->ss.selector));
	json_object_set_new(o, "fs_base", hex(c->fs.base));
	json_object_set_new(o, "gs_base", hex(c->gs.base));
	json_object_set_new(o, "kernel_gs_base", hex(c->msr_kernel_gs_base));
	json_object_set_new(o, "lstar", hex(c->msr_lstar));
	json_object_set_new(o, "apic_base", hex(c->apic_base));
	json_object_set_new(o, "mp_state", json_integer(c->mp_state));
	return o;
}

/* Open DIR/NAME for a new file. */
static int open_new(const char *dir, const char *name, struct tvm_err *err)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		tvm_seterr(err, "cannot create %s: %s", p, strerror(errno));
	return fd;
}


/* One level (a report holds no directories), with the calls the main
 * thread's sandbox allows. */
static void remove_report_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* The start time of process pid (clock ticks since boot, /proc/PID/stat
 * field 22), or 0 when it does not exist. */
static unsigned long long process_start(long pid)
{
	char p[64], buf[1024];
	snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *s = strrchr(buf, ')'); /* the command name may hold anything */
	unsigned long long start = 0;
	for (int field = 2; s && *s; s++)
		if (*s == ' ' && ++field == 22) {
			start = strtoull(s + 1, NULL, 10);
			break;
		}
	return start;
}

/* Boot time in clock ticks' units: seconds since the epoch of boot. */
static double boot_time(void)
{
	struct timespec rt, bt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return (double)rt.tv_sec + rt.tv_nsec / 1e9 - ((double)bt.tv_sec + bt.tv_nsec / 1e9);
}

int report_clean_partials(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int removed = 0;
	long ticks = sysconf(_SC_CLK_TCK);
	double boot = boot_time();
	struct dirent *e;
	while ((e = readdir(d))) {
		/* .STAMP.mmmZ-PID-SEQ.partial (name_report) */
		size_t len = strlen(e->d_name);
		if (e->d_name[0] != '.' || len < 9 || strcmp(e->d_name + len - 8, ".partial") != 0)
			continue;
		const char *dash = strchr(e->d_name, '-');
		char *end;
		long pid = dash ? strtol(dash + 1, &end, 10) : 0;
		if (!dash || pid <= 0 || *end != '-')
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		/* Its writer is gone, or the pid now belongs to a process that
		 * started after the directory was made. */
		unsigned long long start = process_start(pid);
		bool stale = start == 0 || (ticks > 0 && boot + (double)start / (double)ticks > (double)st.st_mtime + 1);
		if (!stale || pid == (long)getpid())
			continue;
		char p[4096];
		if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
			continue;
		remove_report_dir(p);
		if (access(p, F_OK) != 0) {
			removed++;
			tvm_log("removed %s: an unfinished report left by trialvm process %ld, which ended before "
				"finishing it", p, pid);
		}
	}
	closedir(d);
	return removed;
}

static int make_report_dir(const char *path, struct tvm_err *err)
{
	int r = mkdir_p(path, 0755);
	if (r < 0)
		return tvm_seterr(err, "cannot create the report directory %s: %s", path, strerror(-r));
	return 0;
}

/* ---- facts: what the report says, gathered by the I/O steps ---- */

/* A file of the report directory, once written and flushed. */
struct file_fact {
	const char *name;
	int64_t size, disk_bytes;
	bool have_sum;
	char sum[65];
};

/* A boot image given to trialvm, with its hash when it could be read. */
struct image_fact {
	const char *role; /* "kernel", "initrd" or "app", "cpio" */
	const char *path;
	bool have_sum;
	char sum[65];
};

/* A disk and its overlay after the flush. */
struct disk_fact {
	const char *master;
	const struct overlay *ov; /* NULL: no overlay */
	int flush_rc;             /* 0, or -errno from overlay_flush */
};

struct report_facts {
	char id[96];     /* 20261121T010203.123Z-PID-N */
	char iso[40];    /* 2026-11-21T01:02:03.123Z */
	char tmp[4096];  /* DIR/.ID.partial */
	char final[4096];/* DIR/ID */
	struct file_fact files[4];
	int nfiles;
	struct image_fact images[3];
	int nimages;
	struct disk_fact *disks; /* in->ndisks entries */
};

/* ---- the JSON document: pure functions of the inputs and the facts ---- */

/* Untrusted text (guest strings, symbol names, paths) as a JSON string:
 * valid UTF-8 as it is, each invalid byte as "\xNN" (vmm/text.h), so that a
 * member is never dropped for its bytes. len bytes of s; a NUL among them
 * becomes "\x00" too (jansson, and so `trialvm inspect`, refuses \u0000).
 * NULL only when out of memory. */
static json_t *json_text_n(const char *s, size_t len)
{
	if (len > (SIZE_MAX - 1) / 9)
		return NULL;
	size_t cap = len * 9 + 1;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < len;) {
		if (s[i] == '\0') {
			memcpy(buf + o, "\\x00", 5); /* with its NUL */
			o += 4;
			i++;
			continue;
		}
		size_t run = strnlen(s + i, len - i);
		tvm_escape(s + i, run, 0, buf + o, cap - o);
		o += strlen(buf + o);
		i += run;
	}
	json_t *j = json_string(buf);
	free(buf);
	return j;
}

static json_t *json_text(const char *s) { return json_text_n(s, strlen(s)); }

static json_t *image_json(const struct image_fact *im)
{
	json_t *o = json_object();
	json_object_set_new(o, "path", json_text(im->path));
	if (im->have_sum)
		json_object_set_new(o, "sha256", json_string(im->sum));
	return o;
}

static json_t *images_json(const struct report_facts *f)
{
	json_t *images = json_object();
	for (int i = 0; i < f->nimages; i++)
		json_object_set_new(images, f->images[i].role, image_json(&f->images[i]));
	return images;
}

static json_t *cause_json(const struct crash_state *cs)
{
	json_t *o = json_object();
	json_object_set_new(o, "kind", json_text_n(cs->kind_name, strnlen(cs->kind_name, sizeof cs->kind_name)));
	json_object_set_new(o, "summary", json_text_n(cs->summary, strnlen(cs->summary, sizeof cs->summary)));
	json_object_set_new(o, "vcpu", json_integer(cs->crashing_cpu));
	json_object_set_new(o, "bugcheck_code", hex(crash_bugcheck_code(cs->kind)));
	if (cs->cpu_state_lost) {
		json_t *l = json_object();
		json_object_set_new(l, "vcpu", json_integer(cs->crashing_cpu));
		json_object_set_new(l, "why",
				    json_text_n(cs->cpu_state_note, strnlen(cs->cpu_state_note, sizeof cs->cpu_state_note)));
		json_object_set_new(o, "cpu_state_lost", l);
	}
	if (cs->app) {
		const struct tvm_fault *f = &cs->app->f;
		if (f->vector != TVM_FAULT_NO_VECTOR) {
			json_object_set_new(o, "vector", json_integer(f->vector));
			json_object_set_new(o, "error_code", hex(f->error_code));
			json_object_set_new(o, "fault_address", hex(f->addr));
		}
		json_object_set_new(o, "signal", json_integer(f->signo));
		const char *sn = signal_name(f->signo);
		if (sn)
			json_object_set_new(o, "signal_name", json_string(sn));
		json_object_set_new(o, "si_code", json_integer(f->si_code));
	}
	if (cs->guest_core) {
		const struct guest_core *g = cs->guest_core;
		json_object_set_new(o, "signal", json_integer(g->signo));
		const char *sn = signal_name(g->signo);
		if (sn)
			json_object_set_new(o, "signal_name", json_string(sn));
		json_object_set_new(o, "pid", json_integer(g->pid));
		json_object_set_new(o, "process", json_text_n(g->comm, strnlen(g->comm, sizeof g->comm)));
		json_object_set_new(o, "core_source", json_string("guest kernel (core channel)"));
	}
	return o;
}

static json_t *vcpus_json(const struct crash_state *cs)
{
	json_t *vcpus = json_array();
	for (int i = 0; i < cs->ncpus; i++)
		json_array_append_new(vcpus, cpu_json(&cs->cpu[i]));
	return vcpus;
}

static json_t *disks_json(const struct report_inputs *in, const struct report_facts *f)
{
	json_t *arr = json_array();
	for (int i = 0; i < in->ndisks; i++) {
		const struct disk_fact *df = &f->disks[i];
		json_t *d = json_object();
		json_object_set_new(d, "master", json_text(df->master));
		if (df->ov) {
			if (overlay_path(df->ov))
				json_object_set_new(d, "overlay", json_text(overlay_path(df->ov)));
			json_object_set_new(d, "clusters", json_integer((json_int_t)overlay_clusters(df->ov)));
			json_object_set_new(d, "changed_clusters", json_integer((json_int_t)overlay_changed_count(df->ov)));
			if (df->flush_rc < 0)
				json_object_set_new(d, "flush_error", json_text(strerror(-df->flush_rc)));
		}
		json_array_append_new(arr, d);
	}
	return arr;
}

static json_t *irqchip_json(const struct irqchip_state *ic)
{
	json_t *irq = json_object();
	json_t *pics = json_array();
	for (int i = 0; i < 2; i++) {
		json_t *p = json_object();
		json_object_set_new(p, "irr", hex(ic->pic[i].irr));
		json_object_set_new(p, "imr", hex(ic->pic[i].imr));
		json_object_set_new(p, "isr", hex(ic->pic[i].isr));
		json_object_set_new(p, "irq_base", hex(ic->pic[i].irq_base));
		json_object_set_new(p, "elcr", hex(ic->pic[i].elcr));
		json_array_append_new(pics, p);
	}
	json_object_set_new(irq, "pic", pics);
	json_t *io = json_object();
	json_object_set_new(io, "id", json_integer(ic->ioapic_id));
	json_object_set_new(io, "base", hex(ic->ioapic_base));
	json_object_set_new(io, "irr", hex(ic->ioapic_irr));
	json_t *rt = json_array();
	for (int i = 0; i < 24; i++)
		json_array_append_new(rt, hex(ic->redirtbl[i]));
	json_object_set_new(io, "redirtbl", rt);
	json_object_set_new(irq, "ioapic", io);
	if (ic->pit_valid) {
		json_t *pit = json_array();
		for (int i = 0; i < 3; i++) {
			json_t *c = json_object();
			json_object_set_new(c, "count", json_integer(ic->pit[i].count));
			json_object_set_new(c, "mode", json_integer(ic->pit[i].mode));
			json_object_set_new(c, "gate", json_integer(ic->pit[i].gate));
			json_array_append_new(pit, c);
		}
		json_object_set_new(irq, "pit", pit);
	}
	return irq;
}

static json_t *app_json(const struct app_fault *af, const char *rip_symbol)
{
	const struct tvm_fault *f = &af->f;
	json_t *app = json_object();
	json_object_set_new(app, "name", json_text_n(f->app_name, strnlen(f->app_name, sizeof f->app_name)));
	json_object_set_new(app, "load_bias", hex(f->load_bias));
	json_object_set_new(app, "page_table_root", hex(f->page_table_root));
	if (rip_symbol)
		json_object_set_new(app, "function", json_text(rip_symbol));
	json_t *regs = json_object();
	uint64_t rv[27];
	_Static_assert(sizeof rv == sizeof f->regs, "user_regs_struct");
	memcpy(rv, &f->regs, sizeof rv);
	static const char *const rn[27] = { "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9",
					    "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
					    "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs" };
	for (int i = 0; i < 27; i++)
		json_object_set_new(regs, rn[i], hex(rv[i]));
	json_object_set_new(app, "registers", regs);
	json_t *maps = json_array();
	unsigned nmaps = af->nmaps > TVM_FAULT_MAX_MAPS ? TVM_FAULT_MAX_MAPS : af->nmaps;
	for (unsigned i = 0; i < nmaps; i++) {
		const struct tvm_mapping *mp = &af->maps[i];
		json_t *m = json_object();
		json_object_set_new(m, "start", hex(mp->start));
		json_object_set_new(m, "end", hex(mp->end));
		char prot[4] = { (mp->prot & 1) ? 'r' : '-', (mp->prot & 2) ? 'w' : '-', (mp->prot & 4) ? 'x' : '-', 0 };
		json_object_set_new(m, "prot", json_string(prot));
		json_array_append_new(maps, m);
	}
	json_object_set_new(app, "mappings", maps);
	return app;
}

static json_t *disassembly_json(const struct report_inputs *in)
{
	json_t *d = json_object();
	json_object_set_new(d, "address_space", json_text(in->dis_space ? in->dis_space : "guest-virtual"));
	json_t *arr = json_array();
	for (int i = 0; i < in->ndis; i++) {
		const struct disasm_insn *di = &in->dis[i];
		char bytes[16 * 3 + 1] = "";
		int size = di->size < 0 ? 0 : di->size > 16 ? 16 : di->size;
		for (int b = 0; b < size; b++)
			snprintf(bytes + 3 * b, 4, "%02x%s", di->bytes[b], b + 1 < size ? " " : "");
		json_t *x = json_object();
		json_object_set_new(x, "address", hex(di->address));
		json_object_set_new(x, "bytes", json_string(bytes));
		json_object_set_new(x, "text", json_text_n(di->text, strnlen(di->text, sizeof di->text)));
		if (di->symbol[0])
			json_object_set_new(x, "symbol", json_text_n(di->symbol, strnlen(di->symbol, sizeof di->symbol)));
		if (di->current)
			json_object_set_new(x, "current", json_true());
		json_array_append_new(arr, x);
	}
	json_object_set_new(d, "instructions", arr);
	return d;
}

static json_t *stack_json(const struct report_inputs *in)
{
	json_t *st = json_object();
	json_object_set_new(st, "rsp", hex(in->stack_rsp));
	json_t *w = json_array();
	for (int i = 0; i < in->nstack; i++)
		json_array_append_new(w, hex(in->stack[i]));
	json_object_set_new(st, "words", w);
	return st;
}

static json_t *files_json(const struct report_facts *f)
{
	json_t *files = json_object();
	for (int i = 0; i < f->nfiles; i++) {
		const struct file_fact *ff = &f->files[i];
		json_t *o = json_object();
		json_object_set_new(o, "size", json_integer((json_int_t)ff->size));
		json_object_set_new(o, "disk_bytes", json_integer((json_int_t)ff->disk_bytes));
		if (ff->have_sum)
			json_object_set_new(o, "sha256", json_string(ff->sum));
		json_object_set_new(files, ff->name, o);
	}
	return files;
}

/* report.json (REPORT_SCHEMA, REPORT_VERSION). */
static json_t *report_json(const struct report_inputs *in, const struct report_facts *f)
{
	const struct crash_state *cs = in->cs;
	json_t *root = json_object();
	json_object_set_new(root, "schema", json_string(REPORT_SCHEMA));
	json_object_set_new(root, "version", json_integer(REPORT_VERSION));
	json_object_set_new(root, "id", json_string(f->id));
	json_object_set_new(root, "trialvm_version", json_string(TRIALVM_VERSION));
	json_object_set_new(root, "time", json_string(f->iso));
	json_object_set_new(root, "uptime_ns", json_integer((json_int_t)cs->uptime_ns));
	json_object_set_new(root, "images", images_json(f));
	json_object_set_new(root, "cause", cause_json(cs));
	json_object_set_new(root, "vcpus", vcpus_json(cs));
	if (in->ndisks > 0)
		json_object_set_new(root, "disks", disks_json(in, f));
	if (cs->irqchip.valid)
		json_object_set_new(root, "irqchip", irqchip_json(&cs->irqchip));
	if (cs->app)
		json_object_set_new(root, "app", app_json(cs->app, in->rip_symbol));
	if (in->ndis > 0)
		json_object_set_new(root, "disassembly", disassembly_json(in));
	if (in->nstack > 0)
		json_object_set_new(root, "stack", stack_json(in));
	/* The console tail, every byte: invalid UTF-8 and NUL as \xNN. */
	json_object_set_new(root, "console_tail", json_text_n((const char *)cs->console, cs->console_len));
	if (cs->kernel_log) {
		json_object_set_new(root, "kernel_log_tail", json_text_n((const char *)cs->kernel_log, cs->kernel_log_len));
		json_object_set_new(root, "app_output_tail", json_text_n((const char *)cs->app_output, cs->app_output_len));
	}
	if (in->snaps && (in->snaps->have_crash || in->snaps->have_last || in->snaps->have_log)) {
		json_t *o = json_object();
		if (in->snaps->have_crash) {
			json_t *c = json_object();
			json_object_set_new(c, "id", json_string(in->snaps->crash_id));
			json_object_set_new(c, "file", json_text(in->snaps->crash_file));
			json_object_set_new(o, "crash", c);
		}
		if (in->snaps->have_last) {
			json_t *c = json_object();
			json_object_set_new(c, "id", json_string(in->snaps->last_id));
			json_object_set_new(c, "file", json_text(in->snaps->last_file));
			json_object_set_new(o, "before_crash", c);
		}
		if (in->snaps->have_log) {
			json_t *c = json_object();
			json_object_set_new(c, "file", json_text(in->snaps->log_file));
			json_object_set_new(c, "records", json_integer((json_int_t)in->snaps->log_records));
			json_object_set_new(c, "bytes", json_integer((json_int_t)in->snaps->log_bytes));
			json_object_set_new(c, "exact", json_boolean(in->snaps->log_exact));
			json_object_set_new(o, "event_log", c);
		}
		json_object_set_new(root, "snapshots", o);
	}
	json_object_set_new(root, "files", files_json(f));
	return root;
}

/* ---- the I/O steps ---- */

/* The report's id, time and directory names. */
static int name_report(const struct report_inputs *in, struct report_facts *f, struct tvm_err *err)
{
	static int seq;
	const struct crash_state *cs = in->cs;
	struct timespec ts = { (time_t)(cs->time_unix_ns / 1000000000ull), (long)(cs->time_unix_ns % 1000000000ull) };
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[40];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(f->id, sizeof(f->id), "%s.%03ldZ-%d-%d", stamp, ts.tv_nsec / 1000000, (int)getpid(), ++seq);
	strftime(f->iso, sizeof(f->iso), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(f->iso + strlen(f->iso), sizeof(f->iso) - strlen(f->iso), ".%03ldZ", ts.tv_nsec / 1000000);
	if (snprintf(f->tmp, sizeof(f->tmp), "%s/.%s.partial", in->dir, f->id) >= (int)sizeof(f->tmp) ||
	    snprintf(f->final, sizeof(f->final), "%s/%s", in->dir, f->id) >= (int)sizeof(f->final))
		return tvm_seterr(err, "report directory path is too long");
	return 0;
}

/* Flush, measure (and hash) and close DIR/NAME; its fact, when fact. */
static int finish_file(int fd, const char *dir, const char *name, struct file_fact *fact, bool with_sum,
		       struct tvm_err *err)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (fsync(fd) < 0) {
		tvm_seterr(err, "cannot flush %s: %s", p, strerror(errno));
		close(fd);
		return -1;
	}
	struct stat st;
	fstat(fd, &st);
	if (close(fd) < 0)
		return tvm_seterr(err, "cannot close %s: %s", p, strerror(errno));
	if (fact) {
		*fact = (struct file_fact){ .name = name, .size = (int64_t)st.st_size,
					    .disk_bytes = (int64_t)st.st_blocks * 512 };
		fact->have_sum = with_sum && sha256_file(p, fact->sum) == 0;
	}
	return 0;
}

static int write_console_log(const struct crash_state *cs, int fd, const char *dir, struct tvm_err *err)
{
	int w = write_all(fd, cs->console, cs->console_len);
	if (w < 0)
		return tvm_seterr(err, "cannot write %s/console.log: %s", dir, strerror(-w));
	return 0;
}

/* The files beside report.json, in this order. */
static const struct data_file {
	const char *name;
	bool with_sum; /* core.elf, memory.dmp: large and sparse; their size is recorded, not a hash */
	bool app_only;
	int (*write)(const struct crash_state *, int, struct tvm_err *); /* NULL: console.log */
} data_files[] = {
	{ "console.log", true, false, NULL },
	{ "core.elf", false, false, write_core_elf },
	{ "memory.dmp", false, false, write_memory_dmp },
	{ "app.core", true, true, write_app_core },
};

static int write_data_files(const struct crash_state *cs, struct report_facts *f, struct tvm_err *err)
{
	for (size_t i = 0; i < sizeof(data_files) / sizeof(data_files[0]); i++) {
		const struct data_file *df = &data_files[i];
		if (df->app_only && !cs->app && !cs->guest_core)
			continue;
		int fd = open_new(f->tmp, df->name, err);
		if (fd < 0)
			return -1;
		int rc = df->write ? df->write(cs, fd, err) : write_console_log(cs, fd, f->tmp, err);
		if (rc < 0) {
			close(fd);
			return -1;
		}
		if (finish_file(fd, f->tmp, df->name, &f->files[f->nfiles++], df->with_sum, err) < 0)
			return -1;
	}
	return 0;
}

/* The boot images and their hashes. */
static void hash_images(const struct report_inputs *in, struct report_facts *f)
{
	const char *role[3] = { "kernel", in->app ? "app" : "initrd", "cpio" };
	const char *path[3] = { in->kernel, in->initrd, in->cpio };
	for (int i = 0; i < 3; i++) {
		if (!path[i])
			continue;
		struct image_fact *im = &f->images[f->nimages++];
		*im = (struct image_fact){ .role = role[i], .path = path[i] };
		im->have_sum = sha256_file(path[i], im->sum) == 0;
	}
}

/* Flush each disk's overlay, so that the map on disk matches what is reported. */
static int flush_disks(const struct report_inputs *in, struct report_facts *f, struct tvm_err *err)
{
	if (in->ndisks <= 0)
		return 0;
	f->disks = calloc((size_t)in->ndisks, sizeof(*f->disks));
	if (!f->disks)
		return tvm_seterr(err, "out of memory building report.json");
	for (int i = 0; i < in->ndisks; i++) {
		struct overlay *ov = in->disks ? in->disks[i] : NULL;
		f->disks[i] = (struct disk_fact){ .master = in->disk_masters[i], .ov = ov };
		if (ov)
			f->disks[i].flush_rc = overlay_readonly(ov) ? 0 : overlay_flush(ov);
	}
	return 0;
}

static int write_report_json(const json_t *root, const char *dir, struct tvm_err *err)
{
	char *dump = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (!dump)
		return tvm_seterr(err, "out of memory building report.json");
	int fd = open_new(dir, "report.json", err);
	if (fd < 0) {
		free(dump);
		return -1;
	}
	int w = write_all(fd, dump, strlen(dump));
	if (w == 0)
		w = write_all(fd, "\n", 1);
	free(dump);
	if (w < 0) {
		tvm_seterr(err, "cannot write %s/report.json: %s", dir, strerror(-w));
		close(fd);
		return -1;
	}
	return finish_file(fd, dir, "report.json", NULL, false, err);
}

/* Make the complete report visible under its final name, durably. */
static int publish_report(const struct report_facts *f, const char *dir, struct tvm_err *err)
{
	if (fsync_dir(f->tmp) < 0 || rename(f->tmp, f->final) < 0 || fsync_dir(dir) < 0)
		return tvm_seterr(err, "cannot complete the report %s: %s", f->final, strerror(errno));
	return 0;
}

int report_write(const struct report_inputs *in, char *out_path, size_t cap, struct tvm_err *err)
{
	struct report_facts *f = calloc(1, sizeof(*f));
	if (!f)
		return tvm_seterr(err, "out of memory writing the report");
	int rc = -1;
	if (make_report_dir(in->dir, err) < 0 || name_report(in, f, err) < 0)
		goto out;
	if (mkdir(f->tmp, 0755) < 0) {
		tvm_seterr(err, "cannot create %s: %s", f->tmp, strerror(errno));
		goto out;
	}
	json_t *root = NULL;
	if (write_data_files(in->cs, f, err) == 0 && flush_disks(in, f, err) == 0) {
		hash_images(in, f);
		root = report_json(in, f);
		if (write_report_json(root, f->tmp, err) == 0 && publish_report(f, in->dir, err) == 0)
			rc = 0;
	}
	json_decref(root);
	if (rc == 0)
		snprintf(out_path, cap, "%s", f->final);
	else
		remove_report_dir(f->tmp);
out:
	free(f->disks);
	free(f);
	return rc;
}

int report_event_log(const char *report_json, char *out, size_t cap, struct tvm_err *err)
{
	struct stat st;
	int fd = open_regular(report_json, &st, err);
	if (fd < 0)
		return -1;
	if (st.st_size <= 0 || st.st_size > (64 << 20)) {
		close(fd);
		return tvm_seterr(err, "%s: %lld bytes, not a report.json", report_json, (long long)st.st_size);
	}
	char *text = malloc((size_t)st.st_size);
	int r = text ? pread_all(fd, text, (size_t)st.st_size, 0) : -ENOMEM;
	close(fd);
	if (r < 0) {
		free(text);
		return tvm_seterr(err, "cannot read %s: %s", report_json, strerror(-r));
	}
	json_error_t je;
	json_t *root = json_loadb(text, (size_t)st.st_size, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!root)
		return tvm_seterr(err, "%s: not JSON (line %d: %s)", report_json, je.line, je.text);
	const char *file = json_string_value(json_object_get(json_object_get(json_object_get(root, "snapshots"),
									      "event_log"), "file"));
	r = 0;
	if (!file)
		r = tvm_seterr(err, "%s names no event log (snapshots.event_log.file): the run was not recorded "
				    "(it had no --snapshot-every, or --no-record)", report_json);
	else if (strlen(file) >= cap || strlen(file) != json_string_length(json_object_get(
						     json_object_get(json_object_get(root, "snapshots"), "event_log"), "file")))
		r = tvm_seterr(err, "%s: snapshots.event_log.file is not a usable path", report_json);
	else
		snprintf(out, cap, "%s", file);
	/* A report rebuilt from a bundle (trialvm report rebuild) holds its
	 * snapshots and log under REPORT_DIR/snapshots/, not where the
	 * tester's machine had them. */
	struct stat ls;
	const char *base = r == 0 ? strrchr(out, '/') : NULL, *slash = strrchr(report_json, '/');
	if (r == 0 && stat(out, &ls) < 0) {
		char alt[PATH_MAX + 300];
		int n = snprintf(alt, sizeof(alt), "%.*s/snapshots/%s", slash ? (int)(slash - report_json) : 1,
				 slash ? report_json : ".", base ? base + 1 : out);
		if (n > 0 && (size_t)n < cap && stat(alt, &ls) == 0)
			snprintf(out, cap, "%s", alt);
	}
	json_decref(root);
	return r;
}
