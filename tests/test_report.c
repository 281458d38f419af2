/* tests/test_report.c - report.json from report_write (monitor/report.c) on a
 * synthetic crash_state, read back with jansson: every member is present,
 * guest strings with invalid UTF-8 keep every byte (as \xNN) instead of
 * losing the member, valid UTF-8 is kept, and so is every byte of the
 * console tail (ESC, U+202E as they are; NUL and invalid bytes as \xNN).
 * Then crash_handle_event on a KVM-free fake VM with a hostile application
 * name, console and symbol file: its stderr must carry no raw control or
 * bidi character, and must name them escaped.
 * Prints "ok NAME" / "FAIL NAME: ..."; exits 1 on any failure. */
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../devices/devices.h"
#include "../monitor/crash.h"
#include "../monitor/report.h"
#include "../reporter/crash_state.h"
#include "../vmm/text.h"
#include "../vmm/util.h"

#include "check.h"
#include "fake_vm.c"

#define MiB (1ull << 20)
#define PG 4096ull
#define CR3 0x10000ull

static char dir[256];

/* Map va -> pa (4 KiB) in 4-level tables at CR3, tables from *next. */
static void map_page(uint8_t *ram, uint64_t va, uint64_t pa, uint64_t *next)
{
	uint64_t table = CR3;
	for (int level = 3; level > 0; level--) {
		uint64_t *e = (uint64_t *)(ram + table + ((va >> (12 + 9 * level)) & 511) * 8);
		if (!(*e & 1)) {
			*next += PG;
			*e = *next | 7;
		}
		table = *e & 0x000ffffffffff000ull;
	}
	*(uint64_t *)(ram + table + ((va >> 12) & 511) * 8) = pa | 7;
}

/* The guest's strings: invalid UTF-8 (0xff, a cut sequence), valid UTF-8,
 * terminal controls and U+202E. */
static const char app_name[] = "evil\xff\xfe-\xc3\xa9\x1b[2J";
static const char summary[] = "the application evil\xff died \xe2\x80\xae\x07";
static const char rip_sym[] = "crash\xe2\x80+0x17";
static const char dis_sym[] = "sym\xc3";
static const uint8_t console[] = "boot\n\x1b[2J\x07\xe2\x80\xae\xff\x00tail";

static struct mem_region region;
static struct cpu_state cpus[2];
static struct app_fault app;
static struct crash_state cs;

static void setup_state(void)
{
	region = (struct mem_region){ .gpa = 0, .size = 2 * MiB, .host = NULL };
	region.host = mmap(NULL, region.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region.host == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	uint64_t next = CR3;
	map_page(region.host, 0x400000, 0x100000, &next);
	memset(region.host + 0x100000, 0x90, PG); /* nop */
	cs.mem = (struct guest_mem){ &region, 1 };
	cs.kind = CRASH_APP_FAULT;
	snprintf(cs.kind_name, sizeof cs.kind_name, "app-fault");
	memcpy(cs.summary, summary, sizeof summary);
	cs.ncpus = 2;
	cs.cpu = cpus;
	cs.crashing_cpu = 1;
	cs.time_unix_ns = 1700000000ull * 1000000000ull;
	cs.uptime_ns = 42;
	cs.irqchip.valid = true;
	cs.irqchip.pit_valid = true;
	for (int c = 0; c < 2; c++) {
		cpus[c].index = c;
		cpus[c].rip = 0x400010;
		cpus[c].cr0 = 0x80050033;
		cpus[c].cr3 = CR3;
		cpus[c].efer = 0xd01;
		cpus[c].cs.l = 1;
	}
	cs.cpu_state_lost = true;
	snprintf(cs.cpu_state_note, sizeof cs.cpu_state_note, "lost \xff note");
	app.f.magic = TVM_FAULT_MAGIC;
	app.f.version = TVM_ABI_VERSION;
	app.f.vector = 14;
	app.f.signo = 11;
	app.f.si_code = 1;
	app.f.regs.rip = 0x400010;
	app.f.regs.rsp = 0x400800;
	app.f.page_table_root = CR3;
	memcpy(app.f.app_name, app_name, sizeof app_name);
	app.maps[0] = (struct tvm_mapping){ 0x400000, 0x401000, 5, 1 };
	app.nmaps = 1;
	cs.app = &app;
	cs.console = console;
	cs.console_len = sizeof console - 1;
	static const uint8_t klog[] = "[    1.0] Oops\n", aout[] = "prog: \xff\n";
	cs.kernel_log = klog;
	cs.kernel_log_len = sizeof klog - 1;
	cs.app_output = aout;
	cs.app_output_len = sizeof aout - 1;
}

static const char *str_at(json_t *root, const char *path)
{
	json_t *j = root;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *save, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save)) {
		char *end;
		long idx = strtol(k, &end, 10);
		j = (*end == 0 && json_is_array(j)) ? json_array_get(j, (size_t)idx) : json_object_get(j, k);
	}
	return j && json_is_string(j) ? json_string_value(j) : NULL;
}

static bool has(json_t *root, const char *path)
{
	json_t *j = root;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *save, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save)) {
		char *end;
		long idx = strtol(k, &end, 10);
		j = (*end == 0 && json_is_array(j)) ? json_array_get(j, (size_t)idx) : json_object_get(j, k);
	}
	return j != NULL;
}

static bool str_is(json_t *root, const char *path, const char *want)
{
	const char *s = str_at(root, path);
	if (!s || strcmp(s, want)) {
		printf("  %s: \"%s\", expected \"%s\"\n", path, s ? s : "(missing)", want);
		return false;
	}
	return true;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static void test_report_json(void)
{
	char image[512], rdir[512];
	/* A kernel image whose path is not UTF-8: still named, and hashed. */
	snprintf(image, sizeof image, "%s/kernel-\xff.img", dir);
	FILE *f = fopen(image, "w");
	fputs("kernel", f);
	fclose(f);
	snprintf(rdir, sizeof rdir, "%s/reports", dir);
	struct disasm_insn dis[2] = { { .address = 0x400010, .size = 1, .bytes = { 0x90 }, .text = "nop", .current = true },
				      { .address = 0x400011, .size = 1, .bytes = { 0x90 }, .text = "nop" } };
	memcpy(dis[0].symbol, dis_sym, sizeof dis_sym);
	uint64_t stack[2] = { 1, 2 };
	struct report_inputs in = { .cs = &cs, .dir = rdir, .kernel = image, .initrd = "/nonexistent/app", .app = "x",
				    .dis = dis, .ndis = 2, .dis_space = "guest-virtual", .stack_rsp = 0x400800,
				    .stack = stack, .nstack = 2, .rip_symbol = rip_sym };
	char path[4096];
	struct tvm_err err = { "" };
	int rc = report_write(&in, path, sizeof path, &err);
	CHECK("report-written", rc == 0);
	if (rc) {
		printf("  %s\n", err.msg);
		return;
	}
	char js[4200];
	snprintf(js, sizeof js, "%s/report.json", path);
	json_error_t je;
	json_t *root = json_load_file(js, 0, &je);
	CHECK("report-json-valid-utf8", root != NULL);
	if (!root) {
		printf("  %s: line %d: %s\n", js, je.line, je.text);
		return;
	}
	static const char *const members[] = {
		"schema", "version", "id", "trialvm_version", "time", "uptime_ns", "images.kernel.path",
		"images.kernel.sha256", "images.app.path", "cause.kind", "cause.summary", "cause.vcpu",
		"cause.bugcheck_code", "cause.cpu_state_lost.why", "cause.vector", "cause.signal", "cause.signal_name",
		"cause.si_code", "vcpus.0.rip", "vcpus.1.cr3", "irqchip.pic", "irqchip.ioapic.redirtbl", "irqchip.pit",
		"app.name", "app.function", "app.registers.rip", "app.mappings.0.prot", "disassembly.address_space",
		"disassembly.instructions.0.symbol", "disassembly.instructions.0.current", "stack.words.1",
		"console_tail", "kernel_log_tail", "app_output_tail", "files.console.log", "files.core.elf", "files.memory.dmp", "files.app.core",
	};
	int missing = 0;
	for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
		/* "files.console.log": a key with a dot */
		bool ok;
		if (!strncmp(members[i], "files.", 6))
			ok = json_object_get(json_object_get(root, "files"), members[i] + 6) != NULL;
		else
			ok = has(root, members[i]);
		if (!ok) {
			printf("  missing %s\n", members[i]);
			missing++;
		}
	}
	CHECK("report-every-member", missing == 0);
	CHECK("report-app-name-escaped", str_is(root, "app.name", "evil\\xff\\xfe-\xc3\xa9\x1b[2J"));
	CHECK("report-summary-escaped",
	      str_is(root, "cause.summary", "the application evil\\xff died \xe2\x80\xae\x07"));
	CHECK("report-function-escaped", str_is(root, "app.function", "crash\\xe2\\x80+0x17"));
	CHECK("report-disasm-symbol-escaped", str_is(root, "disassembly.instructions.0.symbol", "sym\\xc3"));
	CHECK("report-note-escaped", str_is(root, "cause.cpu_state_lost.why", "lost \\xff note"));
	CHECK("report-kind", str_is(root, "cause.kind", "app-fault"));
	char want_path[600];
	snprintf(want_path, sizeof want_path, "%s/kernel-\\xff.img", dir);
	CHECK("report-image-path-escaped", str_is(root, "images.kernel.path", want_path));
	json_t *tail = json_object_get(root, "console_tail");
	static const char want_tail[] = "boot\n\x1b[2J\x07\xe2\x80\xae\\xff\\x00tail";
	CHECK("report-console-every-byte", tail && json_string_length(tail) == sizeof want_tail - 1 &&
						   !memcmp(json_string_value(tail), want_tail, sizeof want_tail - 1));
	CHECK("report-kernel-log-tail", str_is(root, "kernel_log_tail", "[    1.0] Oops\n"));
	CHECK("report-app-output-tail", str_is(root, "app_output_tail", "prog: \\xff\n"));
	json_decref(root);
}

/* crash_handle_event on a fake VM: the summary on stderr names the guest's
 * strings escaped, with no raw control or bidi character left. */
static void test_stderr_escaped(void)
{
	struct vm *vm = fake_vm_new(4 * MiB, 1);
	if (!vm) {
		printf("FAIL stderr-escaped: no fake VM\n");
		failures++;
		return;
	}
	struct guest_mem m = vm_guest_mem(vm);
	uint8_t *ram = gmem_ptr(&m, 0, 4 * MiB);
	uint64_t next = CR3;
	map_page(ram, 0x400000, 0x100000, &next);
	memset(ram + 0x100000, 0x90, PG);
	/* A symbol file (System.map) with hostile names. */
	char map[512];
	snprintf(map, sizeof map, "%s/System.map", dir);
	FILE *f = fopen(map, "w");
	fputs("0000000000400000 T evil\x1b]0;pwn\x07\xe2\x80\xae\n0000000000400800 T after\n", f);
	fclose(f);
	struct tvm_err err;
	console_open(NULL, true, &err);
	console_put(CONSOLE_SERIAL, console, sizeof console - 1);
	struct app_fault *af = calloc(1, sizeof(*af));
	*af = app;
	struct tvm_event ev = { .kind = TVM_EV_APP_FAULT, .vcpu = 0, .reason = 11, .payload = af,
				.payload_len = sizeof(*af) };
	snprintf(ev.detail, sizeof ev.detail, "the application %s died of signal 11", af->f.app_name);
	struct crash_ctx ctx = { .vm = vm, .app_path = map };
	char errpath[512];
	snprintf(errpath, sizeof errpath, "%s/stderr", dir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 2);
	close(fd);
	int rc = crash_handle_event(&ev, &ctx);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	console_close(&err);
	free(af);
	fake_vm_free(vm);
	uint8_t *out;
	size_t len;
	if (read_file(errpath, 1 << 20, &out, &len, &err) < 0) {
		printf("FAIL stderr-escaped: %s\n", err.msg);
		failures++;
		return;
	}
	CHECK("stderr-crash-status", rc == TVM_EXIT_CRASHED);
	/* Raw: anything tvm_escape would change, other than '\n' and a backslash. */
	size_t raw = 0;
	for (size_t i = 0; i < len; i++)
		raw += out[i] == 0x1b || out[i] == 0x07 || out[i] == 0xff || out[i] == '\t' || (out[i] < 0x20 && out[i] != '\n');
	char *esc = tvm_escape_dup(out, len, TVM_ESC_TERMINAL | TVM_ESC_KEEP_NL);
	size_t backslashes = 0;
	for (size_t i = 0; i < len; i++)
		backslashes += out[i] == '\\';
	CHECK("stderr-no-raw-controls", raw == 0 && esc && strlen(esc) == len + backslashes);
	out = realloc(out, len + 1);
	out[len] = 0;
	CHECK("stderr-app-name-escaped", strstr((char *)out, "application evil\\xff\\xfe-\xc3\xa9\\x1b[2J crashed") != NULL);
	CHECK("stderr-symbol-escaped", strstr((char *)out, "in evil\\x1b]0;pwn\\x07\\u{202e}+0x10") != NULL);
	if (getenv("TEST_VERBOSE") || failures)
		fwrite(out, 1, len, stdout);
	free(esc);
	free(out);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/test-report.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	setup_state();
	test_report_json();
	test_stderr_escaped();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return failures ? 1 : 0;
}
