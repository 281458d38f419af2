/* tests/test_inspect.c - `trialvm inspect` refuses nonsense (issue 8, item 9)
 * and never prints guest-supplied text raw (item 8).
 *
 * The dump writers make a core.elf, a memory.dmp and an app.core from a
 * small synthetic crash_state (2 vCPUs, 1 MiB of RAM at 0 and 1 MiB at
 * 4 GiB, an application whose name holds ESC[2J and U+202E); each check
 * copies one, changes a few bytes and wants inspect to refuse it with a
 * message (or, for the escaping checks, to print no control character).
 * report.json cases are written as text. Prints "ok NAME" / "FAIL ...";
 * exits 1 on any failure. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../reporter/appcore.h"
#include "../reporter/crash_state.h"
#include "../reporter/elfdump.h"
#include "../reporter/inspect.h"
#include "../reporter/windump.h"
#include "synth.h"
#include "check.h"


static char dir[256];

static char *pathof(const char *name)
{
	static char bufs[4][512];
	static int k;
	char *b = bufs[k++ & 3];
	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

static void setup(void)
{
	synth_ram(1 * MiB, 1 * MiB);
	cs.kind = CRASH_APP_FAULT;
	snprintf(cs.kind_name, sizeof cs.kind_name, "app-fault");
	snprintf(cs.summary, sizeof cs.summary, "x killed by SIGSEGV");
	cs.ncpus = 2;
	cs.cpu = cpus;
	cs.crashing_cpu = 1;
	cs.time_unix_ns = 1700000000ull * 1000000000ull;
	/* A guest's VMCOREINFO with terminal controls in it. */
	static const char vmci[] = "OSRELEASE=6.1\x1b[2J\x07\nPAGESIZE=4096\xe2\x80\xae\n";
	cs.vmcoreinfo = vmci;
	cs.vmcoreinfo_len = sizeof vmci - 1;
	for (int c = 0; c < 2; c++) {
		struct cpu_state *p = &cpus[c];
		p->index = c;
		p->rip = 0xffffffff81000000ull + 0x100 * (uint64_t)c;
		p->rflags = 0x246;
		p->cs = (struct seg_state){ .selector = 0x10, .limit = 0xffffffff, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
		p->ss = (struct seg_state){ .selector = 0x18, .limit = 0xffffffff, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
		p->ds = p->es = p->fs = p->gs = p->ss;
		p->tr = (struct seg_state){ .selector = 0x28, .limit = 0x67, .type = 11, .present = 1 };
		p->ldt = (struct seg_state){ .unusable = 1 };
		p->cr0 = 0x80050033;
		p->cr3 = 0x10000;
		p->cr4 = 0x3706f0;
		p->efer = 0xd01;
		uint32_t mxcsr = 0x1f80;
		memcpy(p->fxsave + 24, &mxcsr, 4);
	}
	for (unsigned i = 0; i < PG; i++)
		host_of(0x1000)[i] = (uint8_t)i;
	/* The app: two code pages and a stack page; auxv on the stack. */
	map_page(0x400000, 0x80000);
	map_page(0x401000, 0x81000);
	map_page(0x7fff1000, 0x82000);
	memset(host_of(0x80000), 0xcc, 2 * PG);
	uint64_t auxv[6] = { 6, 4096, 25, 0x7fff1f00, 0, 0 };
	memcpy(host_of(0x82000) + 0xa00, auxv, sizeof auxv);
	app.f.magic = TVM_FAULT_MAGIC;
	app.f.version = 1;
	app.f.vector = 14;
	app.f.signo = 11;
	app.f.si_code = 1;
	app.f.error_code = 6;
	app.f.regs.rip = 0x400123;
	app.f.regs.rsp = 0x7fff1f00;
	app.f.regs.cs = 0x23;
	app.f.regs.ss = 0x1b;
	app.f.regs.eflags = 0x10246;
	app.f.page_table_root = 0x10000;
	snprintf(app.f.app_name, sizeof app.f.app_name, "/bin/\x1b[2J\x07" "evil\xe2\x80\xae");
	app.f.auxv_gva = 0x7fff1a00;
	app.f.auxv_len = sizeof auxv;
	app.maps[0] = (struct tvm_mapping){ 0x400000, 0x402000, 5, 1 };
	app.maps[1] = (struct tvm_mapping){ 0x7fff0000, 0x7fff2000, 3, 2 };
	app.nmaps = 2;
	cs.app = &app;
}

static int write_file(const char *name, int (*fn)(const struct crash_state *, int, struct tvm_err *))
{
	int fd = open(pathof(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct tvm_err err = { "" };
	int rc = fd < 0 ? -1 : fn(&cs, fd, &err);
	if (rc < 0)
		printf("FAIL write %s: %s\n", name, fd < 0 ? strerror(errno) : err.msg);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Copy src to dst (holes stay holes). */
static void copy(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct stat st;
	fstat(in, &st);
	static uint8_t buf[1 << 16];
	for (off_t off = 0; off < st.st_size;) {
		ssize_t r = pread(in, buf, sizeof buf, off);
		if (r <= 0)
			break;
		bool zero = true;
		for (ssize_t i = 0; i < r && zero; i++)
			zero = !buf[i];
		if (!zero && pwrite(out, buf, (size_t)r, off) != r)
			perror("pwrite");
		off += r;
	}
	if (ftruncate(out, st.st_size) < 0)
		perror("ftruncate");
	close(in);
	close(out);
}

static void patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_RDWR);
	if (fd < 0 || pwrite(fd, bytes, n, (off_t)off) != (ssize_t)n)
		perror("patch");
	close(fd);
}

static void patch32(const char *path, uint64_t off, uint32_t v) { patch(path, off, &v, 4); }
static void patch64(const char *path, uint64_t off, uint64_t v) { patch(path, off, &v, 8); }

static Elf64_Phdr phdr(const char *path, unsigned i)
{
	Elf64_Phdr p = { 0 };
	int fd = open(path, O_RDONLY);
	if (pread(fd, &p, sizeof p, (off_t)(64 + i * sizeof p)) != (ssize_t)sizeof p)
		perror("phdr");
	close(fd);
	return p;
}

static void set_phdr(const char *path, unsigned i, const Elf64_Phdr *p)
{
	patch(path, 64 + i * sizeof *p, p, sizeof *p);
}

/* File offset of the header of the n-th note (0-based) named `name` (NULL:
 * any) in the first PT_NOTE; 0 when not found. */
static uint64_t find_note(const char *path, const char *name, uint32_t type, bool any_type)
{
	Elf64_Phdr p = phdr(path, 0);
	uint8_t *buf = malloc(p.p_filesz);
	int fd = open(path, O_RDONLY);
	uint64_t found = 0;
	if (pread(fd, buf, p.p_filesz, (off_t)p.p_offset) == (ssize_t)p.p_filesz) {
		for (uint64_t pos = 0; pos + 12 <= p.p_filesz && !found;) {
			uint32_t nsz, dsz, t;
			memcpy(&nsz, buf + pos, 4);
			memcpy(&dsz, buf + pos + 4, 4);
			memcpy(&t, buf + pos + 8, 4);
			if ((!name || (nsz == strlen(name) + 1 && !memcmp(buf + pos + 12, name, nsz))) && (any_type || t == type))
				found = p.p_offset + pos;
			pos += 12 + ((nsz + 3ull) & ~3ull) + ((dsz + 3ull) & ~3ull);
		}
	}
	close(fd);
	free(buf);
	return found;
}

static char last_out[1 << 16];
static size_t last_len;
static struct tvm_err last_err;

static int inspect(const char *path, const struct inspect_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	memset(&last_err, 0, sizeof last_err);
	int rc = inspect_file(path, o, f, &last_err);
	fclose(f);
	last_len = len < sizeof last_out - 1 ? len : sizeof last_out - 1;
	memcpy(last_out, buf ? buf : "", last_len);
	last_out[last_len] = 0;
	free(buf);
	if (getenv("TEST_VERBOSE"))
		printf("  inspect %s: rc %d%s%s\n", path, rc, rc ? ": " : "", rc ? last_err.msg : "");
	return rc;
}

/* True when s holds no terminal control: no C0 byte but '\n' (and '\t'
 * when tab), no DEL, no C1 (UTF-8 C2 80..C2 9F), no U+202E / U+200F /
 * U+2066..2069. */
static bool clean(const char *s, bool tab)
{
	const unsigned char *p = (const unsigned char *)s;
	for (; *p; p++) {
		if ((*p < 0x20 && *p != '\n' && !(tab && *p == '\t')) || *p == 0x7f)
			return false;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
		if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xae || p[2] == 0x8f || p[2] == 0x8e || (p[2] >= 0xaa && p[2] <= 0xae)))
			return false;
		if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			return false;
	}
	return true;
}

/* Refused with a message that contains `want` (NULL: any) and the
 * summary never claimed the file as `not_as` (NULL: not checked). */
static bool refused(int rc, const char *want, const char *not_as)
{
	if (rc == 0 || !last_err.msg[0])
		return false;
	if (want && !strstr(last_err.msg, want)) {
		printf("  message lacks \"%s\": %s\n", want, last_err.msg);
		return false;
	}
	if (not_as && strstr(last_out, not_as))
		return false;
	return clean(last_err.msg, false);
}

/* ---------------------------------------------------------------- core.elf */
static void test_guest_elf(void)
{
	const char *good = pathof("core.elf"), *t = pathof("t.elf");
	int rc = inspect(good, NULL);
	CHECK("guest-ok", rc == 0 && strstr(last_out, "guest-physical ELF dump") && strstr(last_out, "guest RAM in dump: 2 MiB"));
	CHECK("guest-vmcoreinfo-escaped", rc == 0 && clean(last_out, false) && strstr(last_out, "OSRELEASE=6.1"));

	/* p_memsz 2^64-1 at gpa 0: the RAM total wrapped (exit 0). */
	Elf64_Phdr p1 = phdr(good, 1), p2 = phdr(good, 2), q;
	copy(good, t);
	q = p1;
	q.p_memsz = UINT64_MAX;
	set_phdr(t, 1, &q);
	CHECK("guest-memsz-2^64-1", refused(inspect(t, NULL), "PT_LOAD", NULL));

	/* Two PT_LOADs over the same guest-physical bytes. */
	copy(good, t);
	q = p2;
	q.p_paddr = q.p_vaddr = p1.p_paddr + 0x80000;
	set_phdr(t, 2, &q);
	CHECK("guest-overlap", refused(inspect(t, NULL), "overlaps", NULL));
	/* ... and the same, reversed: the later one first in memory. */
	copy(good, t);
	q = p1;
	q.p_paddr = q.p_vaddr = p2.p_paddr - 0x1000;
	set_phdr(t, 1, &q);
	CHECK("guest-overlap-reversed", refused(inspect(t, NULL), "overlaps", NULL));

	/* Two PT_LOADs sharing file bytes, and one over the headers. */
	copy(good, t);
	q = p2;
	q.p_offset = p1.p_offset + 0x1000;
	set_phdr(t, 2, &q);
	CHECK("guest-file-overlap", refused(inspect(t, NULL), "overlaps", NULL));
	copy(good, t);
	q = p1;
	q.p_offset = 0;
	set_phdr(t, 1, &q);
	CHECK("guest-file-overlap-headers", refused(inspect(t, NULL), "overlaps", NULL));

	/* Beyond a 52-bit guest-physical address space. */
	copy(good, t);
	q = p2;
	q.p_paddr = q.p_vaddr = 1ull << 52;
	set_phdr(t, 2, &q);
	CHECK("guest-beyond-52-bits", refused(inspect(t, NULL), "52", NULL));

	/* Note types and names identify the format exactly. */
	uint64_t qn = find_note(good, "QEMU", 0, false), vn = find_note(good, "VMCOREINFO", 0, false);
	uint64_t pn = find_note(good, "CORE", NT_PRSTATUS, false);
	CHECK("guest-notes-found", qn && vn && pn);
	copy(good, t);
	patch32(t, qn + 8, 5);
	CHECK("guest-qemu-note-type", refused(inspect(t, NULL), "QEMU", "guest-physical"));
	copy(good, t);
	patch32(t, vn + 8, 1);
	CHECK("guest-vmcoreinfo-note-type", refused(inspect(t, NULL), "VMCOREINFO", "guest-physical"));
	copy(good, t);
	patch32(t, pn + 8, 0x7777);
	CHECK("guest-prstatus-note-type", refused(inspect(t, NULL), "0x7777", "guest-physical"));
	/* namesz 8 for "CORE": the name is "CORE\0\0\0\0", not "CORE". */
	copy(good, t);
	patch32(t, pn, 8);
	CHECK("guest-note-namesz", refused(inspect(t, NULL), "name", "guest-physical"));
	copy(good, t);
	patch(t, pn + 12, "C\x1b[2J", 4);
	CHECK("guest-note-name-escaped", refused(inspect(t, NULL), NULL, "guest-physical"));
	/* A note claiming more of its segment than there is (unchanged rule). */
	copy(good, t);
	patch32(t, pn + 4, 0xfffffff0);
	CHECK("guest-note-descsz", refused(inspect(t, NULL), "PT_NOTE", NULL));

	/* --read-phys still works across both PT_LOADs. */
	struct inspect_opts o = { true, 0x1000, 16 };
	CHECK("guest-read-phys", inspect(good, &o) == 0 && last_len == 16 && last_out[0] == 0 && last_out[15] == 15);
}

/* ---------------------------------------------------------------- app.core */
static void test_app_core(void)
{
	const char *good = pathof("app.core"), *t = pathof("t.core");
	int rc = inspect(good, NULL);
	CHECK("appcore-ok", rc == 0 && strstr(last_out, "application core"));
	CHECK("appcore-name-escaped", rc == 0 && clean(last_out, false) && strstr(last_out, "\\x1b[2J"));

	/* One note type changed: refused, and never taken for a guest dump. */
	static const uint32_t types[] = { NT_PRSTATUS, NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FPREGSET };
	static const char *const names[] = { "prstatus", "prpsinfo", "siginfo", "auxv", "fpregset" };
	for (int i = 0; i < 5; i++) {
		uint64_t n = find_note(good, "CORE", types[i], false);
		char name[64];
		snprintf(name, sizeof name, "appcore-%s-type-changed", names[i]);
		copy(good, t);
		patch32(t, n + 8, 0x7777);
		CHECK(name, n && refused(inspect(t, NULL), "0x7777", "guest-physical"));
		/* Changed into another known type. */
		snprintf(name, sizeof name, "appcore-%s-type-swapped", names[i]);
		copy(good, t);
		patch32(t, n + 8, types[(i + 1) % 5]);
		CHECK(name, n && refused(inspect(t, NULL), NULL, "guest-physical"));
		/* Owner changed. */
		snprintf(name, sizeof name, "appcore-%s-owner-changed", names[i]);
		copy(good, t);
		patch(t, n + 12, "QEMU", 4);
		CHECK(name, n && refused(inspect(t, NULL), NULL, "guest-physical"));
	}
	/* Two NT_PRPSINFO: the SIGINFO note made a second one. */
	uint64_t si = find_note(good, "CORE", NT_SIGINFO, false);
	copy(good, t);
	patch32(t, si + 8, NT_PRPSINFO);
	CHECK("appcore-two-prpsinfo", refused(inspect(t, NULL), "NT_PRPSINFO", "guest-physical"));

	/* Overlapping mappings. */
	Elf64_Phdr p1 = phdr(good, 1), p2 = phdr(good, 2), q;
	CHECK("appcore-layout", p1.p_type == PT_LOAD && p2.p_type == PT_LOAD && p1.p_vaddr == 0x400000);
	copy(good, t);
	q = p2;
	q.p_vaddr = p1.p_vaddr + 0x1000;
	set_phdr(t, 2, &q);
	CHECK("appcore-vaddr-overlap", refused(inspect(t, NULL), "overlaps", NULL));
	copy(good, t);
	q = p1;
	q.p_memsz = UINT64_MAX - q.p_vaddr;
	set_phdr(t, 1, &q);
	CHECK("appcore-memsz-huge", refused(inspect(t, NULL), NULL, NULL));
	/* File data of two mappings in the same bytes. */
	copy(good, t);
	q = p2;
	q.p_offset = p1.p_offset;
	q.p_filesz = p1.p_filesz < p2.p_memsz ? p1.p_filesz : p2.p_memsz;
	set_phdr(t, 2, &q);
	CHECK("appcore-file-overlap", p1.p_filesz > 0 && refused(inspect(t, NULL), "overlaps", NULL));

	/* NT_SIGINFO's signal is not NT_PRSTATUS's. */
	copy(good, t);
	patch32(t, si + 12 + 8, 7);
	CHECK("appcore-signal-mismatch", refused(inspect(t, NULL), "si_signo", NULL));

	struct inspect_opts o = { true, 0, 16 };
	CHECK("appcore-read-phys-refused", refused(inspect(good, &o), NULL, NULL));
}

/* -------------------------------------------------------------- memory.dmp */
static void test_windump(void)
{
	const char *good = pathof("memory.dmp"), *t = pathof("t.dmp");
	int rc = inspect(good, NULL);
	CHECK("windump-ok", rc == 0 && strstr(last_out, "DUMP_HEADER64") && strstr(last_out, "2 runs"));
	/* Run 1 moved beyond a 52-bit guest-physical address space. */
	copy(good, t);
	patch64(t, 0x98 + 16, 1ull << 41);
	CHECK("windump-run-beyond-52-bits", refused(inspect(t, NULL), "run 1", NULL));
	/* BasePage + PageCount near 2^52 pages: gpa * 4096 wrapped. */
	copy(good, t);
	patch64(t, 0x98 + 16, (1ull << 52) - 0x100);
	CHECK("windump-run-gpa-wraps", refused(inspect(t, NULL), "run 1", NULL));
	/* The comment is the writer's, but a file's bytes are anyone's. */
	copy(good, t);
	patch(t, 0xfb0, "\x1b[2J\x07\xe2\x80\xae", 8);
	rc = inspect(t, NULL);
	CHECK("windump-comment-escaped", rc == 0 && clean(last_out, false) && strstr(last_out, "\\x1b[2J"));
	/* Zero processors. */
	copy(good, t);
	patch32(t, 0x34, 0);
	CHECK("windump-no-processors", refused(inspect(t, NULL), "NumberProcessors", NULL));
}

/* ------------------------------------------------------------- report.json */
static const char *json_fmt =
	"{\"schema\": \"%s\", \"version\": 1, \"id\": \"%s\", \"trialvm_version\": \"0.1\","
	" \"time\": \"2024-01-02T03:04:05Z\", \"cause\": {\"kind\": \"app-fault\", \"summary\": \"%s\", \"vcpu\": %s%s},"
	" \"vcpus\": [%s], \"console_tail\": \"hi\\n\", \"files\": {%s}%s}";
static const char *vcpu0 = "{\"index\": 0, \"rip\": \"0x1\", \"rsp\": \"0x2\", \"cr3\": \"0x3\"}";
static const char *vcpu1 = "{\"index\": 1, \"rip\": \"0x1\", \"rsp\": \"0x2\", \"cr3\": \"0x3\"}";

struct jcase {
	const char *schema, *id, *summary, *vcpu, *lost, *vcpus, *files, *extra;
};

static int json_case(const struct jcase *c)
{
	char text[8192], files[1024];
	struct stat st;
	stat(pathof("console.log"), &st);
	snprintf(files, sizeof files, c->files ? c->files : "\"console.log\": {\"size\": %lld, \"disk_bytes\": 4096}",
		 (long long)st.st_size);
	snprintf(text, sizeof text, json_fmt, c->schema ? c->schema : "trialvm-report", c->id ? c->id : "r1",
		 c->summary ? c->summary : "x", c->vcpu ? c->vcpu : "1", c->lost ? c->lost : "", c->vcpus, files,
		 c->extra ? c->extra : "");
	FILE *f = fopen(pathof("report.json"), "w");
	fputs(text, f);
	fclose(f);
	return inspect(pathof("report.json"), NULL);
}

static void test_report(void)
{
	FILE *f = fopen(pathof("console.log"), "w");
	fputs("hello\n", f);
	fclose(f);
	char two[512];
	snprintf(two, sizeof two, "%s, %s", vcpu0, vcpu1);
	struct jcase c = { .vcpus = two };
	int rc = json_case(&c);
	CHECK("json-ok", rc == 0 && strstr(last_out, "trialvm report"));

	c = (struct jcase){ .vcpus = "" };
	CHECK("json-vcpus-empty", refused(json_case(&c), "cause.vcpu", NULL));
	c = (struct jcase){ .vcpus = vcpu0 };
	CHECK("json-vcpu-not-listed", refused(json_case(&c), "cause.vcpu", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .vcpu = "-1" };
	CHECK("json-vcpu-negative", refused(json_case(&c), "cause.vcpu", NULL));
	snprintf(two, sizeof two, "%s, %s", vcpu1, vcpu1);
	c = (struct jcase){ .vcpus = two };
	CHECK("json-vcpu-index-twice", refused(json_case(&c), "vcpus[1].index", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .lost = ", \"cpu_state_lost\": {\"vcpu\": 0, \"why\": \"x\"}" };
	CHECK("json-cpu-state-lost-vcpu", refused(json_case(&c), "cause.cpu_state_lost.vcpu", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .lost = ", \"cpu_state_lost\": {\"vcpu\": 1, \"why\": \"x\"}" };
	CHECK("json-cpu-state-lost-ok", json_case(&c) == 0);
	c = (struct jcase){ .vcpus = vcpu1, .files = "\"console.log\": {\"size\": 6, \"disk_bytes\": \"big\"}" };
	CHECK("json-disk-bytes-type", refused(json_case(&c), "disk_bytes", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .extra = ", \"app\": []" };
	CHECK("json-app-type", refused(json_case(&c), "\"app\"", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .extra = ", \"kernel_log_tail\": 5" };
	CHECK("json-kernel-log-type", refused(json_case(&c), "\"kernel_log_tail\"", NULL));
	c = (struct jcase){ .vcpus = vcpu1,
			    .extra = ", \"kernel_log_tail\": \"[ 1.0] a\\n[ 2.0] Kernel panic \\u001b[2J\\n\\n\", "
				     "\"app_output_tail\": \"out\\n\"" };
	rc = json_case(&c);
	CHECK("json-kernel-log-last-line", rc == 0 && clean(last_out, false) &&
						   strstr(last_out, "kernel log tail: 35 bytes, last line: [ 2.0] Kernel panic \\x1b[2J\n") &&
						   strstr(last_out, "program output tail: 4 bytes"));
	c = (struct jcase){ .vcpus = vcpu1, .extra = ", \"images\": 3" };
	CHECK("json-images-type", refused(json_case(&c), "\"images\"", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .extra = ", \"app\": {\"name\": 5}" };
	CHECK("json-app-name-type", refused(json_case(&c), "app.name", NULL));

	/* Guest text in the summary, the id and a listed name never reaches
	 * the output or the message raw. */
	c = (struct jcase){ .vcpus = vcpu1, .summary = "\\u001b[2J\\u0007boom\\u202e\\u009b" };
	rc = json_case(&c);
	CHECK("json-summary-escaped", rc == 0 && clean(last_out, false) && strstr(last_out, "boom"));
	c = (struct jcase){ .vcpus = vcpu1, .id = "\\u001b]0;owned\\u0007" };
	rc = json_case(&c);
	CHECK("json-id-escaped", rc == 0 && clean(last_out, false));
	c = (struct jcase){ .vcpus = vcpu1, .schema = "\\u001b[2Jx" };
	CHECK("json-schema-error-escaped", refused(json_case(&c), "schema", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .files = "\"\\u001b[2J\\u202e\": {\"size\": 1}" };
	CHECK("json-file-name-error-escaped", refused(json_case(&c), "files", NULL));
	c = (struct jcase){ .vcpus = vcpu1, .files = "\"console.log\": {\"size\": 6}, \"\\u001b[2J\": {\"size\": 6}" };
	CHECK("json-file-name-escaped", refused(json_case(&c), "\\x1b[2J", NULL) && clean(last_out, false));
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/test_inspect.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	setup();
	if (write_file("core.elf", write_core_elf) < 0 || write_file("memory.dmp", write_memory_dmp) < 0 ||
	    write_file("app.core", write_app_core) < 0)
		return 1;
	test_guest_elf();
	test_app_core();
	test_windump();
	test_report();
	if (!getenv("TEST_KEEP")) {
		static const char *const names[] = { "core.elf", "memory.dmp", "app.core", "t.elf", "t.core", "t.dmp",
						     "report.json", "console.log" };
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			unlink(pathof(names[i]));
		rmdir(dir);
	} else {
		printf("kept %s\n", dir);
	}
	if (failures)
		printf("%d failures\n", failures);
	return failures ? 1 : 0;
}
