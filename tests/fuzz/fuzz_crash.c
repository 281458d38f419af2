/* tests/fuzz/fuzz_crash.c - libFuzzer harness over the whole crash path:
 * crash_handle_event (monitor/crash.c) from the event through the capture,
 * the code window, the symbols, the summary on stderr, report.json and the
 * dumps (core.elf, memory.dmp, app.core), on a fake VM whose RAM, page
 * tables included, vCPU registers, fault record, console tail and symbol
 * file all come from the input.
 *
 * The fake VM is a struct vm (vmm/vm_internal.h) with the RAM regions of the
 * input and the accessors of vmm/memory.c; the functions of vm.c that would
 * ask KVM (vm_capture_cpu, vm_last_seen_cpu, vm_capture_irqchip, ...) and the
 * console's tail are defined here and hand over the input's state. Each RAM
 * region ends at a PROT_NONE page, so a read past it faults. fsync is a
 * no-op here (durability is not what is fuzzed; it made runs 10x slower).
 *
 * Checks, besides the sanitizers: the exit status; stderr (taken from fd 2
 * during the call; sanitizer reports still go to the real stderr) holds no
 * raw control, bidi or invalid UTF-8 byte; a report, when asked for, is
 * complete and its report.json loads (valid UTF-8) with its members; no
 * file or fd is left behind: each run works in its own directory under
 * /tmp, removed at its end. FUZZ_CRASH_SHOW=1 in the environment shows what
 * each run printed.
 *
 * Input layout (little-endian; bytes past the end read as 0):
 *    0 u8  event kind (mod 13: enum tvm_event_kind)
 *    1 u8  flags: 1 fault record attached, 2 two vCPUs, 4 last-seen state
 *          kept, 8 irqchip captured, 16 PIT valid, 32 write a report,
 *          64 symbol file given, 128 a Linux image's run (kernel log and
 *          program output tails)
 *    2 u8  pages of RAM at gpa 0 (1 + this mod 64); 3 u8 pages at 4 GiB (mod 17)
 *    4 u16 symbol file length (mod 8193); 6 u16 console length (mod 4097)
 *    8 i32 vcpu, u32 reason, u64 data[4]
 *   48 64 bytes event detail (NUL-terminated at 63)
 *  112 3 x CPU record (vCPU 0, vCPU 1, last seen), CPU_REC bytes each:
 *      u64 rip rflags gpr[16] cr0 cr2 cr3 cr4 efer cs.base ss.base fs.base
 *      gs.base; u16 cs.selector ss.selector; u8 cs bits (1 l, 2 db,
 *      12 dpl); 3 bytes unused
 *  784 struct tvm_fault (FAULT_SIZE bytes, the guest ABI as it is)
 * 1168 MAX_MAPS x struct tvm_mapping (nr_mappings of them are used when
 *      <= MAX_MAPS, else none, as devices/hcall.c does with its limit)
 * 1552 symbol file, console bytes, then RAM (gpa 0, then 4 GiB)
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/devices.h"
#include "devices/hcall.h"
#include "monitor/crash.h"
#include "vmm/cpu_state.h"
#include "vmm/text.h"
#include "vmm/util.h"
#include "vmm/vm_internal.h"

#define REQUIRE(c)                                                              \
	do {                                                                    \
		if (!(c)) {                                                     \
			fprintf(stderr, "fuzz_crash: %s (line %d)\n", #c, __LINE__); \
			abort();                                                \
		}                                                               \
	} while (0)

#define PG 4096u
#define MAX_PAGES0 64u
#define MAX_PAGES1 16u
#define CPU_REC 224u
#define FAULT_SIZE 384u
#define MAX_MAPS 16u
#define HDR (112u + 3 * CPU_REC + FAULT_SIZE + MAX_MAPS * 24u)
_Static_assert(sizeof(struct tvm_fault) == FAULT_SIZE, "struct tvm_fault is the guest ABI");
_Static_assert(sizeof(struct tvm_mapping) == 24, "struct tvm_mapping is the guest ABI");
_Static_assert(HDR == 1552, "layout above");

/* ---- the fake VM: what vm.c would have asked KVM ---- */
static struct vm fvm;
static struct cpu_state in_cpu[2], in_seen;
static bool in_seen_ok, in_irq_ok;
static struct irqchip_state in_irq;
static const uint8_t *in_console;
static size_t in_console_len;

void vm_clear_sw_breakpoints(struct vm *vm) { (void)vm; }
/* crash_live_report's (not fuzzed: it needs a running VM) */
void vm_rearm_sw_breakpoints(struct vm *vm) { (void)vm; }
int vm_pause(struct vm *vm, unsigned timeout_ms, struct tvm_err *err)
{
	(void)vm;
	(void)timeout_ms;
	return tvm_seterr(err, "no running VM here");
}
void vm_resume(struct vm *vm) { (void)vm; }
uint64_t vm_uptime_ns(const struct vm *vm) { (void)vm; return 1234567; }

int vm_capture_cpu(struct vm *vm, int idx, struct cpu_state *out, struct tvm_err *err)
{
	if (idx < 0 || idx >= vm->ncpus)
		return tvm_seterr(err, "no vCPU %d", idx);
	*out = in_cpu[idx];
	return 0;
}

int vm_last_seen_cpu(struct vm *vm, int idx, struct cpu_state *out, uint64_t *exit_no, uint32_t *exit_reason)
{
	if (!in_seen_ok || idx < 0 || idx >= vm->ncpus)
		return -1;
	*out = in_seen;
	out->index = idx;
	*exit_no = 77;
	*exit_reason = 2;
	return 0;
}

int vm_capture_irqchip(struct vm *vm, struct irqchip_state *out, struct tvm_err *err)
{
	(void)vm;
	if (!in_irq_ok)
		return tvm_seterr(err, "KVM_GET_IRQCHIP (PIC 0) failed: Bad file descriptor");
	*out = in_irq;
	return 0;
}

size_t console_tail(uint8_t *buf, size_t max)
{
	size_t n = in_console_len < max ? in_console_len : max;
	memcpy(buf, in_console + (in_console_len - n), n);
	return n;
}

/* Both devices wrote what the console did (flag 128: the report keeps
 * them apart). */
size_t console_source_tail(enum console_source src, uint8_t *buf, size_t max)
{
	(void)src;
	return console_tail(buf, max);
}

int fsync(int fd)
{
	(void)fd;
	return 0;
}

/* ---- input ---- */
struct cursor {
	const uint8_t *d;
	size_t len, off;
};

static uint64_t take(struct cursor *c, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++, c->off++)
		if (c->off < c->len)
			v |= (uint64_t)c->d[c->off] << (8 * i);
	return v;
}

static void take_bytes(struct cursor *c, void *dst, size_t n)
{
	memset(dst, 0, n);
	if (c->off < c->len)
		memcpy(dst, c->d + c->off, c->len - c->off < n ? c->len - c->off : n);
	c->off += n;
}

static void take_cpu(struct cursor *c, struct cpu_state *p, int index)
{
	size_t start = c->off;
	memset(p, 0, sizeof(*p));
	p->index = index;
	p->rip = take(c, 8);
	p->rflags = take(c, 8);
	for (int i = 0; i < 16; i++)
		p->gpr[i] = take(c, 8);
	p->cr0 = take(c, 8);
	p->cr2 = take(c, 8);
	p->cr3 = take(c, 8);
	p->cr4 = take(c, 8);
	p->efer = take(c, 8);
	p->cs.base = take(c, 8);
	p->ss.base = take(c, 8);
	p->fs.base = take(c, 8);
	p->gs.base = take(c, 8);
	p->cs.selector = (uint16_t)take(c, 2);
	p->ss.selector = (uint16_t)take(c, 2);
	unsigned bits = (unsigned)take(c, 1);
	p->cs.l = bits & 1;
	p->cs.db = (bits >> 1) & 1;
	p->cs.dpl = (bits >> 2) & 3;
	p->cs.present = p->ss.present = 1;
	c->off = start + CPU_REC;
}

/* ---- RAM: each region ends at a PROT_NONE page ---- */
static uint8_t *arena[2];
static const unsigned arena_pages[2] = { MAX_PAGES0, MAX_PAGES1 };

static void init_arenas(void)
{
	for (int i = 0; i < 2; i++) {
		size_t sz = (arena_pages[i] + 1) * (size_t)PG;
		arena[i] = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		REQUIRE(arena[i] != MAP_FAILED);
		REQUIRE(mprotect(arena[i] + arena_pages[i] * (size_t)PG, PG, PROT_NONE) == 0);
	}
}

/* ---- checks ---- */

/* stderr must be safe for a terminal: nothing tvm_escape would change but
 * a backslash (doubled), '\n' kept. */
static void check_terminal_safe(const char *out, size_t len)
{
	size_t backslashes = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)out[i];
		REQUIRE(b == '\n' || (b >= 0x20 && b != 0x7f));
		backslashes += b == '\\';
	}
	char *esc = tvm_escape_dup(out, len, TVM_ESC_TERMINAL | TVM_ESC_KEEP_NL);
	REQUIRE(esc);
	REQUIRE(strlen(esc) == len + backslashes);
	free(esc);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

/* The one complete report under rdir: its report.json loads and says what
 * the crash was. */
static void check_report(const char *rdir, int ncpus, bool app, size_t console_len, bool linux_image)
{
	DIR *d = opendir(rdir);
	REQUIRE(d);
	char name[256] = "";
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			REQUIRE(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")); /* no .ID.partial left */
		else
			snprintf(name, sizeof name, "%s", e->d_name), n++;
	}
	closedir(d);
	REQUIRE(n == 1);
	char path[1024];
	snprintf(path, sizeof path, "%s/%s/report.json", rdir, name);
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	REQUIRE(root);
	json_t *cause = json_object_get(root, "cause");
	REQUIRE(json_is_string(json_object_get(cause, "kind")));
	REQUIRE(json_is_string(json_object_get(cause, "summary")));
	REQUIRE(json_array_size(json_object_get(root, "vcpus")) == (size_t)ncpus);
	json_t *tail = json_object_get(root, "console_tail");
	REQUIRE(json_is_string(tail) && json_string_length(tail) >= console_len);
	for (int i = 0; i < 2; i++) {
		json_t *t = json_object_get(root, i ? "app_output_tail" : "kernel_log_tail");
		REQUIRE(linux_image ? json_is_string(t) && json_string_length(t) >= console_len : t == NULL);
	}
	if (app)
		REQUIRE(json_is_string(json_object_get(json_object_get(root, "app"), "name")));
	json_t *files = json_object_get(root, "files");
	REQUIRE(json_object_get(files, "core.elf") && json_object_get(files, "memory.dmp") &&
		json_object_get(files, "console.log") && (!app || json_object_get(files, "app.core")));
	json_decref(root);
}

/* Descriptors open now (libFuzzer keeps some of its own between runs). */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	REQUIRE(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static bool is_crash(enum tvm_event_kind k)
{
	return !(k == TVM_EV_NONE || k == TVM_EV_POWEROFF || k == TVM_EV_RESET || k == TVM_EV_SIGNAL ||
		 k == TVM_EV_VMM_ERROR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static int out_fd = -1, real_stderr = -1;
	if (!arena[0]) {
		init_arenas();
		real_stderr = dup(2);
		REQUIRE(real_stderr >= 0);
		__sanitizer_set_report_fd((void *)(intptr_t)real_stderr);
		out_fd = memfd_create("fuzz_crash-stderr", MFD_CLOEXEC);
		REQUIRE(out_fd >= 0);
	}
	int fds_before = open_fds();
	struct cursor c = { data, len, 0 };
	struct tvm_event ev;
	memset(&ev, 0, sizeof ev);
	ev.kind = (enum tvm_event_kind)(take(&c, 1) % 13);
	unsigned flags = (unsigned)take(&c, 1);
	/* A VM always has RAM at 0. */
	unsigned pages[2] = { 1 + (unsigned)take(&c, 1) % MAX_PAGES0, (unsigned)take(&c, 1) % (MAX_PAGES1 + 1) };
	size_t sym_len = take(&c, 2) % 8193, con_len = take(&c, 2) % 4097;
	ev.vcpu = (int)(int32_t)take(&c, 4);
	ev.reason = (uint32_t)take(&c, 4);
	ev.exit_code = (int)(ev.reason & 0xff);
	for (int i = 0; i < 4; i++)
		ev.data[i] = take(&c, 8);
	take_bytes(&c, ev.detail, 64);
	ev.detail[63] = 0;
	ev.raised_ns = now_ns();
	take_cpu(&c, &in_cpu[0], 0);
	take_cpu(&c, &in_cpu[1], 1);
	take_cpu(&c, &in_seen, 0);
	in_seen_ok = flags & 4;
	in_irq_ok = flags & 8;
	memset(&in_irq, 0, sizeof in_irq);
	in_irq.valid = in_irq_ok;
	in_irq.pit_valid = flags & 16;
	in_irq.ioapic_base = 0xfec00000;
	struct app_fault *af = NULL;
	if (flags & 1) {
		af = calloc(1, sizeof(*af));
		REQUIRE(af);
		take_bytes(&c, &af->f, FAULT_SIZE);
		af->f.app_name[sizeof(af->f.app_name) - 1] = 0; /* as devices/hcall.c leaves it */
		struct tvm_mapping maps[MAX_MAPS];
		take_bytes(&c, maps, sizeof maps);
		af->nmaps = af->f.nr_mappings <= MAX_MAPS ? (unsigned)af->f.nr_mappings : 0;
		memcpy(af->maps, maps, af->nmaps * sizeof(maps[0]));
		ev.payload = af;
		ev.payload_len = sizeof(*af);
	} else {
		c.off += FAULT_SIZE + MAX_MAPS * 24;
	}
	const uint8_t *sym = c.off < len ? data + c.off : NULL;
	size_t sym_have = sym ? (len - c.off < sym_len ? len - c.off : sym_len) : 0;
	c.off += sym_len;
	in_console = c.off < len ? data + c.off : (const uint8_t *)"";
	in_console_len = c.off < len ? (len - c.off < con_len ? len - c.off : con_len) : 0;
	c.off += con_len;

	memset(&fvm, 0, sizeof fvm);
	fvm.ncpus = (flags & 2) ? 2 : 1;
	for (int i = 0; i < 2; i++) {
		if (!pages[i])
			continue;
		uint8_t *host = arena[i] + (arena_pages[i] - pages[i]) * (size_t)PG;
		take_bytes(&c, host, pages[i] * (size_t)PG);
		fvm.regions[fvm.nregions++] =
			(struct mem_region){ .gpa = i ? TVM_4G : 0, .size = pages[i] * (uint64_t)PG, .host = host };
		fvm.ram_size += pages[i] * (uint64_t)PG;
	}

	char dir[] = "/tmp/fuzz_crash.XXXXXX";
	REQUIRE(mkdtemp(dir));
	char sympath[64], rdir[64];
	snprintf(sympath, sizeof sympath, "%s/sym", dir);
	snprintf(rdir, sizeof rdir, "%s/reports", dir);
	if (flags & 64) {
		int fd = open(sympath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		REQUIRE(fd >= 0);
		REQUIRE(sym_have == 0 || write(fd, sym, sym_have) == (ssize_t)sym_have);
		close(fd);
	}
	struct crash_ctx ctx = {
		.vm = &fvm,
		.kernel_path = (flags & 64) ? sympath : NULL,
		.app_path = (flags & 64) ? sympath : NULL,
		.report_dir = (flags & 32) ? rdir : NULL,
		.linux_image = (flags & 128) != 0,
	};

	REQUIRE(ftruncate(out_fd, 0) == 0 && lseek(out_fd, 0, SEEK_SET) == 0);
	fflush(stderr);
	dup2(out_fd, 2);
	int rc = crash_handle_event(&ev, &ctx);
	fflush(stderr);
	dup2(real_stderr, 2);

	off_t olen = lseek(out_fd, 0, SEEK_END);
	REQUIRE(olen >= 0);
	char *out = malloc((size_t)olen + 1);
	REQUIRE(out && pread(out_fd, out, (size_t)olen, 0) == olen);
	if (getenv("FUZZ_CRASH_SHOW")) /* see what the run printed */
		REQUIRE(write(real_stderr, out, (size_t)olen) == olen);
	check_terminal_safe(out, (size_t)olen);
	if (is_crash(ev.kind)) {
		REQUIRE(rc == TVM_EXIT_CRASHED);
		if (ctx.report_dir) {
			out[olen] = 0;
			if (!strstr(out, "trialvm: crash report: ")) { /* "could not be written" */
				fprintf(stderr, "%s", out);
				abort();
			}
			bool app = ev.kind == TVM_EV_APP_FAULT && af;
			check_report(rdir, fvm.ncpus, app, in_console_len, ctx.linux_image);
		}
	}
	free(out);
	free(af);
	REQUIRE(nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) == 0);
	REQUIRE(access(dir, F_OK) != 0);

	/* No descriptor left open by the run. */
	REQUIRE(open_fds() == fds_before);
	return 0;
}
