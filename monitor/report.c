/* monitor/report.c - writes a crash report directory (monitor/report.h). */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
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
#include "../vmm/util.h"
#include "crash.h"

#define TRIALVM_VERSION_STR "0.1.0"

static json_t *hex(uint64_t v)
{
	char b[24];
	snprintf(b, sizeof(b), "0x%llx", (unsigned long long)v);
	return json_string(b);
}

/* sha256 of a file as lowercase hex; -1 when unreadable. */
static int sha256_file(const char *path, char out[65])
{
	struct stat st;
	int fd = open_input(path, &st);
	if (fd < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -1;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	static __thread uint8_t buf[1 << 16];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	uint8_t md[32];
	unsigned mdlen = 0;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return rc;
}

static json_t *image_json(const char *path)
{
	if (!path)
		return NULL;
	char sum[65];
	json_t *o = json_object();
	json_object_set_new(o, "path", json_string(path));
	if (sha256_file(path, sum) == 0)
		json_object_set_new(o, "sha256", json_string(sum));
	return o;
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

static int finish_file(int fd, const char *dir, const char *name, json_t *files, bool with_sum, struct tvm_err *err)
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
	json_t *o = json_object();
	json_object_set_new(o, "size", json_integer((json_int_t)st.st_size));
	json_object_set_new(o, "disk_bytes", json_integer((json_int_t)st.st_blocks * 512));
	char sum[65];
	if (with_sum && sha256_file(p, sum) == 0)
		json_object_set_new(o, "sha256", json_string(sum));
	json_object_set_new(files, name, o);
	return 0;
}

static int write_all_fd(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void remove_tree(const char *dir)
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

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

static int mkdir_p(const char *path, struct tvm_err *err)
{
	char p[4096];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return tvm_seterr(err, "report directory path is too long");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return tvm_seterr(err, "cannot create %s: %s", p, strerror(errno));
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return tvm_seterr(err, "cannot create the report directory %s: %s", p, strerror(errno));
	return 0;
}

static json_t *cause_json(const struct crash_state *cs)
{
	json_t *o = json_object();
	json_object_set_new(o, "kind", json_string(cs->kind_name));
	json_object_set_new(o, "summary", json_string(cs->summary));
	json_object_set_new(o, "vcpu", json_integer(cs->crashing_cpu));
	json_object_set_new(o, "bugcheck_code", hex(crash_bugcheck_code(cs->kind)));
	if (cs->cpu_state_lost) {
		json_t *l = json_object();
		json_object_set_new(l, "vcpu", json_integer(cs->crashing_cpu));
		json_object_set_new(l, "why", json_string(cs->cpu_state_note));
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
	return o;
}

int report_write(const struct report_inputs *in, char *out_path, size_t cap, struct tvm_err *err)
{
	const struct crash_state *cs = in->cs;
	if (mkdir_p(in->dir, err) < 0)
		return -1;
	static int seq;
	struct timespec ts = { (time_t)(cs->time_unix_ns / 1000000000ull), (long)(cs->time_unix_ns % 1000000000ull) };
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[40], iso[40], id[96], tmp[4096], final[4096];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(id, sizeof(id), "%s.%03ldZ-%d-%d", stamp, ts.tv_nsec / 1000000, (int)getpid(), ++seq);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(iso + strlen(iso), sizeof(iso) - strlen(iso), ".%03ldZ", ts.tv_nsec / 1000000);
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.partial", in->dir, id) >= (int)sizeof(tmp) ||
	    snprintf(final, sizeof(final), "%s/%s", in->dir, id) >= (int)sizeof(final))
		return tvm_seterr(err, "report directory path is too long");
	if (mkdir(tmp, 0755) < 0)
		return tvm_seterr(err, "cannot create %s: %s", tmp, strerror(errno));

	json_t *files = json_object();
	json_t *root = NULL;
	int fd;
	/* console.log */
	if ((fd = open_new(tmp, "console.log", err)) < 0)
		goto fail;
	if (write_all_fd(fd, cs->console, cs->console_len) < 0) {
		tvm_seterr(err, "cannot write %s/console.log: %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	if (finish_file(fd, tmp, "console.log", files, true, err) < 0)
		goto fail;
	/* core.elf, memory.dmp: large and sparse; their size is recorded, not a hash. */
	if ((fd = open_new(tmp, "core.elf", err)) < 0)
		goto fail;
	if (write_core_elf(cs, fd, err) < 0) {
		close(fd);
		goto fail;
	}
	if (finish_file(fd, tmp, "core.elf", files, false, err) < 0)
		goto fail;
	if ((fd = open_new(tmp, "memory.dmp", err)) < 0)
		goto fail;
	if (write_memory_dmp(cs, fd, err) < 0) {
		close(fd);
		goto fail;
	}
	if (finish_file(fd, tmp, "memory.dmp", files, false, err) < 0)
		goto fail;
	if (cs->app) {
		if ((fd = open_new(tmp, "app.core", err)) < 0)
			goto fail;
		if (write_app_core(cs, fd, err) < 0) {
			close(fd);
			goto fail;
		}
		if (finish_file(fd, tmp, "app.core", files, true, err) < 0)
			goto fail;
	}

	root = json_object();
	json_object_set_new(root, "schema", json_string(REPORT_SCHEMA));
	json_object_set_new(root, "version", json_integer(REPORT_VERSION));
	json_object_set_new(root, "id", json_string(id));
	json_object_set_new(root, "trialvm_version", json_string(TRIALVM_VERSION_STR));
	json_object_set_new(root, "time", json_string(iso));
	json_object_set_new(root, "uptime_ns", json_integer((json_int_t)cs->uptime_ns));
	json_t *images = json_object();
	if (in->kernel)
		json_object_set_new(images, "kernel", image_json(in->kernel));
	if (in->initrd)
		json_object_set_new(images, in->app ? "app" : "initrd", image_json(in->initrd));
	if (in->cpio)
		json_object_set_new(images, "cpio", image_json(in->cpio));
	json_object_set_new(root, "images", images);
	json_object_set_new(root, "cause", cause_json(cs));
	json_t *vcpus = json_array();
	for (int i = 0; i < cs->ncpus; i++)
		json_array_append_new(vcpus, cpu_json(&cs->cpu[i]));
	json_object_set_new(root, "vcpus", vcpus);
	if (in->ndisks > 0) {
		json_t *arr = json_array();
		for (int i = 0; i < in->ndisks; i++) {
			json_t *d = json_object();
			json_object_set_new(d, "master", json_string(in->disk_masters[i]));
			struct overlay *ov = in->disks ? in->disks[i] : NULL;
			if (ov) {
				/* Flushed first, so the map on disk matches what is reported. */
				int fr = overlay_readonly(ov) ? 0 : overlay_flush(ov);
				if (overlay_path(ov))
					json_object_set_new(d, "overlay", json_string(overlay_path(ov)));
				json_object_set_new(d, "clusters", json_integer((json_int_t)overlay_clusters(ov)));
				json_object_set_new(d, "changed_clusters", json_integer((json_int_t)overlay_changed_count(ov)));
				if (fr < 0)
					json_object_set_new(d, "flush_error", json_string(strerror(-fr)));
			}
			json_array_append_new(arr, d);
		}
		json_object_set_new(root, "disks", arr);
	}
	if (cs->irqchip.valid) {
		const struct irqchip_state *ic = &cs->irqchip;
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
		json_object_set_new(root, "irqchip", irq);
	}
	if (cs->app) {
		const struct tvm_fault *f = &cs->app->f;
		const struct tvm_user_regs *r = &f->regs;
		json_t *app = json_object();
		json_object_set_new(app, "name", json_string(f->app_name));
		json_object_set_new(app, "load_bias", hex(f->load_bias));
		json_object_set_new(app, "page_table_root", hex(f->page_table_root));
		if (in->rip_symbol)
			json_object_set_new(app, "function", json_string(in->rip_symbol));
		json_t *regs = json_object();
		const uint64_t *rv = (const uint64_t *)r;
		static const char *const rn[27] = { "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9",
						    "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
						    "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs" };
		for (int i = 0; i < 27; i++)
			json_object_set_new(regs, rn[i], hex(rv[i]));
		json_object_set_new(app, "registers", regs);
		json_t *maps = json_array();
		for (unsigned i = 0; i < cs->app->nmaps; i++) {
			const struct tvm_mapping *mp = &cs->app->maps[i];
			json_t *m = json_object();
			json_object_set_new(m, "start", hex(mp->start));
			json_object_set_new(m, "end", hex(mp->end));
			char prot[4] = { (mp->prot & 1) ? 'r' : '-', (mp->prot & 2) ? 'w' : '-', (mp->prot & 4) ? 'x' : '-', 0 };
			json_object_set_new(m, "prot", json_string(prot));
			json_array_append_new(maps, m);
		}
		json_object_set_new(app, "mappings", maps);
		json_object_set_new(root, "app", app);
	}
	if (in->ndis > 0) {
		json_t *d = json_object();
		json_object_set_new(d, "address_space", json_string(in->dis_space ? in->dis_space : "guest-virtual"));
		json_t *arr = json_array();
		for (int i = 0; i < in->ndis; i++) {
			const struct disasm_insn *di = &in->dis[i];
			char bytes[16 * 3 + 1] = "";
			for (int b = 0; b < di->size; b++)
				snprintf(bytes + 3 * b, 4, "%02x%s", di->bytes[b], b + 1 < di->size ? " " : "");
			json_t *x = json_object();
			json_object_set_new(x, "address", hex(di->address));
			json_object_set_new(x, "bytes", json_string(bytes));
			json_object_set_new(x, "text", json_string(di->text));
			if (di->symbol[0])
				json_object_set_new(x, "symbol", json_string(di->symbol));
			if (di->current)
				json_object_set_new(x, "current", json_true());
			json_array_append_new(arr, x);
		}
		json_object_set_new(d, "instructions", arr);
		json_object_set_new(root, "disassembly", d);
	}
	if (in->nstack > 0) {
		json_t *st = json_object();
		json_object_set_new(st, "rsp", hex(in->stack_rsp));
		json_t *w = json_array();
		for (int i = 0; i < in->nstack; i++)
			json_array_append_new(w, hex(in->stack[i]));
		json_object_set_new(st, "words", w);
		json_object_set_new(root, "stack", st);
	}
	/* The console tail as text; invalid UTF-8 bytes become U+FFFD by
	 * jansson's rules only if valid: sanitise to printable ASCII + \n\t. */
	char *text = malloc(cs->console_len + 1);
	if (text) {
		for (size_t i = 0; i < cs->console_len; i++) {
			uint8_t c = cs->console[i];
			text[i] = (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f)) ? (char)c : '?';
		}
		text[cs->console_len] = 0;
		json_object_set_new(root, "console_tail", json_string(text));
		free(text);
	}
	json_object_set(root, "files", files);

	char *dump = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!dump) {
		tvm_seterr(err, "out of memory building report.json");
		goto fail;
	}
	if ((fd = open_new(tmp, "report.json", err)) < 0) {
		free(dump);
		goto fail;
	}
	int w = write_all_fd(fd, dump, strlen(dump));
	w |= write_all_fd(fd, "\n", 1);
	free(dump);
	if (w < 0) {
		tvm_seterr(err, "cannot write %s/report.json: %s", tmp, strerror(errno));
		close(fd);
		goto fail;
	}
	json_t *ignored = json_object();
	int fr = finish_file(fd, tmp, "report.json", ignored, false, err);
	json_decref(ignored);
	if (fr < 0)
		goto fail;
	if (fsync_dir(tmp) < 0 || rename(tmp, final) < 0 || fsync_dir(in->dir) < 0) {
		tvm_seterr(err, "cannot complete the report %s: %s", final, strerror(errno));
		goto fail;
	}
	json_decref(root);
	json_decref(files);
	snprintf(out_path, cap, "%s", final);
	return 0;
fail:
	json_decref(root);
	json_decref(files);
	remove_tree(tmp);
	return -1;
}
