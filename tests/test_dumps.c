/* tests/test_dumps.c - the dump writers (core.elf, memory.dmp, app.core) and
 * `inspect`, on a synthetic crash_state: 2 vCPUs, 8 MiB of RAM at 0 and
 * 4 MiB at 4 GiB, a few patterned pages, the rest zero.
 * Checks: readelf sees the notes; inspect accepts each file; bytes read back
 * through each dump equal the source; files are sparse; truncated and
 * corrupted copies are rejected (never a crash); /dev/full and RLIMIT_FSIZE
 * give errors; report.json validation. When gdb is installed, also: a real
 * crash of guest app null-deref, captured on the host with gdb's gcore,
 * re-served through synthetic guest page tables to write_app_core, and
 * `gdb -batch -ex bt` on the result must show crash_here and main.
 * Prints "ok NAME" / "FAIL NAME: why"; exits 1 on any failure. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "../reporter/appcore.h"
#include "../reporter/crash_state.h"
#include "../reporter/elfdump.h"
#include "../reporter/inspect.h"
#include "../reporter/windump.h"
#include "synth.h"



static char dir[256];
static uint64_t next_frame = 0x300000; /* data frames for the gdb test */

static void pattern(uint64_t gpa, uint8_t seed)
{
	uint8_t *p = host_of(gpa);
	for (unsigned i = 0; i < PG; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static void setup(void)
{
	synth_ram(8 * MiB, 4 * MiB);
	cs.kind = CRASH_APP_FAULT;
	snprintf(cs.kind_name, sizeof cs.kind_name, "app-fault");
	snprintf(cs.summary, sizeof cs.summary, "null-deref killed by SIGSEGV");
	cs.ncpus = 2;
	cs.cpu = cpus;
	cs.crashing_cpu = 1;
	cs.time_unix_ns = 1700000000ull * 1000000000ull;
	cs.uptime_ns = 1234567890ull;
	static const char vmci[] = "OSRELEASE=6.1.0-trialvm\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffff81000000\n";
	cs.vmcoreinfo = vmci;
	cs.vmcoreinfo_len = sizeof vmci - 1;
	for (int c = 0; c < 2; c++) {
		struct cpu_state *p = &cpus[c];
		p->index = c;
		for (int r = 0; r < 16; r++)
			p->gpr[r] = 0x1000ull * (uint64_t)(c + 1) + (uint64_t)r;
		p->rip = 0xffffffff81000000ull + 0x100 * (uint64_t)c;
		p->rflags = 0x246;
		p->cs = (struct seg_state){ .selector = 0x10, .limit = 0xffffffff, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
		p->ss = (struct seg_state){ .selector = 0x18, .limit = 0xffffffff, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
		p->ds = p->es = p->ss;
		p->fs = p->gs = p->ss;
		p->gs.base = 0xffff888000000000ull + (uint64_t)c;
		p->tr = (struct seg_state){ .selector = 0x28, .limit = 0x67, .type = 11, .present = 1 };
		p->ldt = (struct seg_state){ .unusable = 1 };
		p->gdt = (struct dtable_state){ 0xfffffe0000001000ull, 0x7f };
		p->idt = (struct dtable_state){ 0xfffffe0000000000ull, 0xfff };
		p->cr0 = 0x80050033;
		p->cr3 = 0x10000;
		p->cr4 = 0x3706f0;
		p->cr2 = 0xdead0000 + (uint64_t)c;
		p->efer = 0xd01;
		uint32_t mxcsr = 0x1f80;
		memcpy(p->fxsave + 24, &mxcsr, 4);
		p->fxsave[0] = 0x7f; /* fcw 0x37f */
		p->fxsave[1] = 0x03;
		p->dr[6] = 0xffff0ff0;
		p->dr[7] = 0x400;
		p->msr_kernel_gs_base = 0x1234;
	}
	/* Patterned pages; everything else zero. */
	pattern(0x1000, 1);
	pattern(0x400000, 2);
	pattern(8 * MiB - PG, 3);
	pattern(4 * GiB + 0x3000, 4);
	/* The app: code at 0x400000 (2 pages), stack page at 0x7fff0000..0x7fff2000
	 * with only the top page mapped, and a 1 TiB mapping with nothing in it. */
	map_page(0x400000, 0x100000);
	map_page(0x401000, 0x101000);
	map_page(0x7fff1000, 0x102000);
	pattern(0x100000, 5);
	pattern(0x101000, 6);
	uint8_t *stk = host_of(0x102000);
	/* argv at 0x7fff1800: {0x7fff1900, 0x7fff1910}; auxv at 0x7fff1a00 */
	uint64_t argv[2] = { 0x7fff1900, 0x7fff1910 };
	memcpy(stk + 0x800, argv, sizeof argv);
	strcpy((char *)stk + 0x900, "/bin/null-deref");
	strcpy((char *)stk + 0x910, "--flag");
	uint64_t auxv[6] = { 6, 4096, 25, 0x7fff1f00, 0, 0 };
	memcpy(stk + 0xa00, auxv, sizeof auxv);
	app.f.magic = TVM_FAULT_MAGIC;
	app.f.version = 1;
	app.f.vector = 14;
	app.f.signo = 11;
	app.f.si_code = 1;
	app.f.error_code = 6;
	app.f.addr = 0;
	app.f.regs.rip = 0x400123;
	app.f.regs.rsp = 0x7fff1f00;
	app.f.regs.rbp = 0x7fff1f40;
	app.f.regs.cs = 0x23;
	app.f.regs.ss = 0x1b;
	app.f.regs.eflags = 0x10246;
	app.f.page_table_root = 0x10000;
	snprintf(app.f.app_name, sizeof app.f.app_name, "/bin/null-deref");
	app.f.argv_gva = 0x7fff1800;
	app.f.argc = 2;
	app.f.auxv_gva = 0x7fff1a00;
	app.f.auxv_len = sizeof auxv;
	app.maps[0] = (struct tvm_mapping){ 0x400000, 0x402000, 5, 1 };
	app.maps[1] = (struct tvm_mapping){ 0x10000000000ull, 0x20000000000ull, 3, 0 };
	app.maps[2] = (struct tvm_mapping){ 0x7fff0000, 0x7fff2000, 3, 2 };
	app.nmaps = 3;
	cs.app = &app;
}

static int write_file(const char *name, int (*fn)(const struct crash_state *, int, struct tvm_err *),
		      struct tvm_err *err)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return tvm_seterr(err, "open %s: %s", path, strerror(errno));
	int rc = fn(&cs, fd, err);
	close(fd);
	return rc;
}

static char *pathof(const char *name)
{
	static char bufs[4][512];
	static int k;
	char *b = bufs[k++ & 3];
	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

static int inspect_quiet(const char *path, const struct inspect_opts *o, char **outbuf, size_t *outlen,
			 struct tvm_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = inspect_file(path, o, f, err);
	fclose(f);
	if (outbuf) {
		*outbuf = buf;
		*outlen = len;
	} else {
		free(buf);
	}
	return rc;
}

static uint64_t fsize(const char *path, uint64_t *alloc)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	if (alloc)
		*alloc = (uint64_t)st.st_blocks * 512;
	return (uint64_t)st.st_size;
}

/* Copy the first n bytes of src to dst (holes stay holes). */
static void copy_prefix(const char *src, const char *dst, uint64_t n)
{
	int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static uint8_t buf[1 << 16];
	for (uint64_t off = 0; off < n;) {
		size_t want = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
		ssize_t r = pread(in, buf, want, (off_t)off);
		if (r <= 0)
			break;
		bool zero = true;
		for (ssize_t i = 0; i < r && zero; i++)
			zero = !buf[i];
		if (!zero && pwrite(out, buf, (size_t)r, (off_t)off) != r)
			break;
		off += (uint64_t)r;
	}
	if (ftruncate(out, (off_t)n) < 0)
		perror("ftruncate");
	close(in);
	close(out);
}

static void flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	if (pread(fd, &b, 1, (off_t)off) == 1) {
		b ^= mask;
		if (pwrite(fd, &b, 1, (off_t)off) != 1)
			perror("pwrite");
	}
	close(fd);
}

static void test_write(void)
{
	struct tvm_err err = { "" };
	CHECKF("write-core-elf", write_file("core.elf", write_core_elf, &err) == 0, "%s", err.msg);
	CHECKF("write-memory-dmp", write_file("memory.dmp", write_memory_dmp, &err) == 0, "%s", err.msg);
	CHECKF("write-app-core", write_file("app.core", write_app_core, &err) == 0, "%s", err.msg);
}

static void test_readelf(void)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "readelf -W -n -l %s 2>&1", pathof("core.elf"));
	FILE *p = popen(cmd, "r");
	if (!p) {
		printf("skip readelf: cannot run\n");
		return;
	}
	char line[512];
	int prs = 0, qemu = 0, vmci = 0, warn = 0, loads = 0;
	while (fgets(line, sizeof line, p)) {
		const char *t = line + strspn(line, " \t");
		prs += !strncmp(t, "CORE", 4) && strstr(t, "NT_PRSTATUS");
		qemu += !strncmp(t, "QEMU", 4);
		vmci += !strncmp(t, "VMCOREINFO", 10);
		loads += !strncmp(t, "LOAD", 4);
		warn += strstr(line, "Warning") || strstr(line, "warning") || strstr(line, "Error");
	}
	int rc = pclose(p);
	if (rc == -1 || (WIFEXITED(rc) && WEXITSTATUS(rc) == 127)) {
		printf("skip readelf: not installed\n");
		return;
	}
	CHECKF("readelf-notes", prs == 2 && qemu == 2 && vmci == 1 && loads == 2 && warn == 0,
	      "PRSTATUS %d QEMU %d VMCOREINFO %d LOAD %d warnings %d", prs, qemu, vmci, loads, warn);
	snprintf(cmd, sizeof cmd, "readelf -W -n %s 2>&1 | grep -c -E 'NT_(PRSTATUS|PRPSINFO|SIGINFO|AUXV|FPREGSET)'",
		 pathof("app.core"));
	p = popen(cmd, "r");
	int n = 0;
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	CHECKF("readelf-app-notes", n == 5, "%d of 5 notes", n);
}

static void test_layout(void)
{
	int fd = open(pathof("core.elf"), O_RDONLY);
	Elf64_Ehdr eh;
	Elf64_Phdr ph[3];
	bool ok = pread(fd, &eh, sizeof eh, 0) == sizeof eh && pread(fd, ph, sizeof ph, 64) == sizeof ph;
	close(fd);
	ok = ok && eh.e_phoff == 64 && eh.e_phnum == 3 && ph[0].p_type == PT_NOTE && ph[1].p_type == PT_LOAD &&
	     ph[1].p_paddr == 0 && ph[1].p_vaddr == 0 && ph[1].p_align == 0 && ph[1].p_filesz == 8 * MiB &&
	     ph[2].p_paddr == 4 * GiB && ph[2].p_memsz == 4 * MiB && !(ph[1].p_offset & 4095) &&
	     !(ph[2].p_offset & 4095) && ph[0].p_offset + ph[0].p_filesz <= ph[1].p_offset;
	CHECKF("core-elf-layout", ok, "unexpected ELF header/program headers");
}

static void test_inspect(void)
{
	static const char *const names[] = { "core.elf", "memory.dmp", "app.core" };
	static const char *const expect[] = { "QEMU CPU state #1", "BugCheckCode 0x7e7a0001", "signal: 11 (SIGSEGV)" };
	for (int i = 0; i < 3; i++) {
		struct tvm_err err = { "" };
		char *out = NULL;
		size_t len = 0;
		int rc = inspect_quiet(pathof(names[i]), NULL, &out, &len, &err);
		char name[64];
		snprintf(name, sizeof name, "inspect-%s", names[i]);
		CHECKF(name, rc == 0 && out && strstr(out, expect[i]), "rc %d: %s", rc, rc ? err.msg : (out ? out : ""));
		if (getenv("TEST_VERBOSE") && out)
			fputs(out, stdout);
		free(out);
	}
}

static void test_read_phys(void)
{
	struct {
		uint64_t gpa, len;
	} cases[] = { { 0x1000, PG }, { 0x400000 - 100, PG + 200 }, { 8 * MiB - PG, PG },
		      { 4 * GiB + 0x3000, PG }, { 4 * GiB + 0x2f00, 0x300 }, { 0x200000, 64 * 1024 } };
	static const char *const names[] = { "core.elf", "memory.dmp" };
	for (int f = 0; f < 2; f++) {
		int bad = 0;
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			struct inspect_opts o = { true, cases[i].gpa, cases[i].len };
			struct tvm_err err = { "" };
			char *out = NULL;
			size_t len = 0;
			int rc = inspect_quiet(pathof(names[f]), &o, &out, &len, &err);
			const uint8_t *src = gmem_ptr(&cs.mem, cases[i].gpa, cases[i].len);
			if (rc || len != cases[i].len || !src || memcmp(out, src, len)) {
				printf("  read 0x%llx+0x%llx from %s: rc %d len %zu %s\n", (unsigned long long)cases[i].gpa,
				       (unsigned long long)cases[i].len, names[f], rc, len, err.msg);
				bad++;
			}
			free(out);
		}
		/* Not covered: the MMIO hole, past the end, and across the gap. */
		uint64_t uncovered[][2] = { { 0xc0000000, 16 }, { 4 * GiB + 4 * MiB, 1 }, { 8 * MiB - 8, 16 } };
		for (int i = 0; i < 3; i++) {
			struct inspect_opts o = { true, uncovered[i][0], uncovered[i][1] };
			struct tvm_err err = { "" };
			char *out = NULL;
			size_t len = 0;
			if (inspect_quiet(pathof(names[f]), &o, &out, &len, &err) == 0 || len != 0 || !err.msg[0])
				bad++;
			free(out);
		}
		struct inspect_opts big = { true, 0, 2 * MiB };
		struct tvm_err err = { "" };
		if (inspect_quiet(pathof(names[f]), &big, NULL, NULL, &err) == 0)
			bad++;
		char name[64];
		snprintf(name, sizeof name, "read-phys-%s", names[f]);
		CHECKF(name, bad == 0, "%d mismatches", bad);
	}
	struct inspect_opts o = { true, 0, 16 };
	struct tvm_err err = { "" };
	CHECKF("read-phys-app-core-refused", inspect_quiet(pathof("app.core"), &o, NULL, NULL, &err) < 0, "accepted");
}

static void test_sparse(void)
{
	static const char *const names[] = { "core.elf", "memory.dmp", "app.core" };
	for (int i = 0; i < 3; i++) {
		uint64_t alloc = 0, size = fsize(pathof(names[i]), &alloc);
		char name[64];
		snprintf(name, sizeof name, "sparse-%s", names[i]);
		/* app.core is small: only its unmapped stack page must be a hole */
		CHECKF(name, size > 0 && (i == 2 ? alloc < size : alloc * 8 < size), "size %llu allocated %llu",
		      (unsigned long long)size,
		      (unsigned long long)alloc);
		if (getenv("TEST_VERBOSE"))
			printf("  %s: %llu bytes, %llu allocated\n", names[i], (unsigned long long)size,
			       (unsigned long long)alloc);
	}
	uint64_t dmp = fsize(pathof("memory.dmp"), NULL);
	CHECKF("windump-size", dmp == 0x2000 + 12 * MiB, "%llu", (unsigned long long)dmp);
}

static void test_truncated(void)
{
	static const char *const names[] = { "core.elf", "memory.dmp", "app.core" };
	for (int f = 0; f < 3; f++) {
		uint64_t size = fsize(pathof(names[f]), NULL);
		uint64_t cuts[] = { 0, 1, 4, 7, 16, 63, 64, 100, 0x100, 0x348, 0x1000, 0x1fff, 0x2000, 0x2001,
				    size / 2, size - 4096, size - 1 };
		int bad = 0;
		for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
			if (cuts[i] >= size)
				continue;
			copy_prefix(pathof(names[f]), pathof("cut"), cuts[i]);
			struct tvm_err err = { "" };
			int rc = inspect_quiet(pathof("cut"), NULL, NULL, NULL, &err);
			if (rc == 0 || !err.msg[0]) {
				printf("  %s cut at %llu accepted\n", names[f], (unsigned long long)cuts[i]);
				bad++;
			} else if (getenv("TEST_VERBOSE"))
				printf("  %s cut at %llu: %s\n", names[f], (unsigned long long)cuts[i], err.msg);
		}
		char name[64];
		snprintf(name, sizeof name, "truncated-%s", names[f]);
		CHECKF(name, bad == 0, "%d truncations accepted", bad);
	}
}

/* Flips that must be detected, then random flips that must only not crash. */
static void test_corrupt(void)
{
	uint64_t note_off = 64 + 3 * 56;
	struct {
		const char *file;
		uint64_t off;
		uint8_t mask;
	} must[] = {
		{ "core.elf", 4, 0x03 },                  /* EI_CLASS */
		{ "core.elf", 5, 0x03 },                  /* EI_DATA */
		{ "core.elf", 0x10, 0x01 },               /* e_type */
		{ "core.elf", 0x12, 0x40 },               /* e_machine */
		{ "core.elf", 0x20, 0x80 },               /* e_phoff */
		{ "core.elf", 0x36, 0x01 },               /* e_phentsize */
		{ "core.elf", 0x38, 0x40 },               /* e_phnum */
		{ "core.elf", 64 + 8 + 7, 0x10 },         /* PT_NOTE p_offset (huge) */
		{ "core.elf", 64 + 8, 0x01 },             /* PT_NOTE p_offset (misaligned) */
		{ "core.elf", 64 + 56 + 0x20 + 5, 0x10 }, /* PT_LOAD p_filesz */
		{ "core.elf", note_off + 4, 0x01 },       /* first note descsz */
		{ "core.elf", note_off + 5, 0x80 },       /* first note descsz (huge) */
		{ "core.elf", note_off + 0, 0x40 },       /* first note namesz */
		{ "memory.dmp", 0x30, 0x01 },             /* MachineImageType */
		{ "memory.dmp", 0x88, 0x7f },             /* NumberOfRuns */
		{ "memory.dmp", 0x90, 0x01 },             /* NumberOfPages */
		{ "memory.dmp", 0xa0, 0x01 },             /* run 0 PageCount */
		{ "memory.dmp", 0x348 + 0x34, 0x01 },     /* MxCsr */
		{ "memory.dmp", 0xf98, 0x02 },            /* DumpType */
		{ "memory.dmp", 0xfa0, 0x01 },            /* RequiredDumpSpace */
		{ "app.core", 0x12, 0x40 },               /* e_machine */
		{ "app.core", 64 + 56 + 0x20 + 5, 0x80 }, /* first PT_LOAD p_filesz */
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
		copy_prefix(pathof(must[i].file), pathof("bad"), fsize(pathof(must[i].file), NULL));
		flip(pathof("bad"), must[i].off, must[i].mask);
		struct tvm_err err = { "" };
		int rc = inspect_quiet(pathof("bad"), NULL, NULL, NULL, &err);
		if (rc == 0 || !err.msg[0]) {
			printf("  %s flip at 0x%llx accepted\n", must[i].file, (unsigned long long)must[i].off);
			bad++;
		} else if (getenv("TEST_VERBOSE"))
			printf("  %s flip at 0x%llx: %s\n", must[i].file, (unsigned long long)must[i].off, err.msg);
	}
	CHECKF("corrupt-detected", bad == 0, "%d corruptions accepted", bad);

	/* Random flips in the headers and notes: any result but a crash. */
	static const char *const names[] = { "core.elf", "memory.dmp", "app.core" };
	srand(12345);
	int runs = 0;
	for (int f = 0; f < 3; f++) {
		uint64_t size = fsize(pathof(names[f]), NULL);
		uint64_t span = f == 1 ? 0x2000 : 0x1000;
		for (int t = 0; t < 150; t++) {
			copy_prefix(pathof(names[f]), pathof("fuzz"), size);
			int nflips = 1 + rand() % 4;
			for (int k = 0; k < nflips; k++)
				flip(pathof("fuzz"), (uint64_t)rand() % span, (uint8_t)(1u << (rand() % 8)));
			struct tvm_err err = { "" };
			int rc = inspect_quiet(pathof("fuzz"), NULL, NULL, NULL, &err);
			struct inspect_opts o = { true, (uint64_t)(rand() % 0x900000), 4096 };
			int rc2 = inspect_quiet(pathof("fuzz"), &o, NULL, NULL, &err);
			(void)rc2;
			if (rc < 0 && !err.msg[0])
				bad++;
			runs++;
		}
	}
	CHECKF("fuzz-no-crash", bad == 0, "%d failures without a message in %d runs", bad, runs);
}

static void test_enospc(void)
{
	int (*fns[3])(const struct crash_state *, int, struct tvm_err *) = { write_core_elf, write_memory_dmp,
									       write_app_core };
	static const char *const names[] = { "enospc-core-elf", "enospc-memory-dmp", "enospc-app-core" };
	for (int i = 0; i < 3; i++) {
		int fd = open("/dev/full", O_WRONLY);
		if (fd < 0) {
			printf("skip %s: no /dev/full\n", names[i]);
			continue;
		}
		struct tvm_err err = { "" };
		int rc = fns[i](&cs, fd, &err);
		close(fd);
		CHECKF(names[i], rc < 0 && strstr(err.msg, "No space left on device"), "rc %d: %s", rc, err.msg);
	}
	/* A limit hit in the middle of the page data (EFBIG), in a child. */
	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			signal(SIGXFSZ, SIG_IGN);
			struct rlimit rl = { 0x3000, 0x3000 };
			setrlimit(RLIMIT_FSIZE, &rl);
			struct tvm_err err = { "" };
			int fd = open(pathof("limited"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
			int rc = fns[i](&cs, fd, &err);
			_exit(rc < 0 && strstr(err.msg, "File too large") ? 0 : 1);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		char name[64];
		snprintf(name, sizeof name, "%s-midway", names[i]);
		CHECKF(name, WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writer did not report EFBIG");
	}
}

static int sha256_file(const char *path, char hex[65])
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	static uint8_t buf[1 << 16];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		EVP_DigestUpdate(c, buf, n);
	unsigned char md[32];
	unsigned len;
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	fclose(f);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return 0;
}

static int json_case(const char *text)
{
	FILE *f = fopen(pathof("report.json"), "w");
	fputs(text, f);
	fclose(f);
	struct tvm_err err = { "" };
	int rc = inspect_quiet(pathof("report.json"), NULL, NULL, NULL, &err);
	if (getenv("TEST_VERBOSE") && rc)
		printf("  json: %s\n", err.msg);
	return rc == 0 ? 0 : (err.msg[0] ? -1 : -2);
}

static void test_json(void)
{
	char hex[65];
	sha256_file(pathof("app.core"), hex);
	unsigned long long size = fsize(pathof("app.core"), NULL);
	char good[2048], buf[2048];
	const char *fmt =
		"{\"schema\": \"trialvm-report\", \"version\": 1, \"id\": \"r1\", \"trialvm_version\": \"0.1\","
		" \"time\": \"%s\", \"cause\": {\"kind\": \"app-fault\", \"summary\": \"x\", \"vcpu\": 0},"
		" \"vcpus\": [{\"index\": 0, \"rip\": \"0x1\", \"rsp\": \"0x2\", \"cr3\": \"%s\"}],"
		" \"console_tail\": \"hi\", \"files\": {\"%s\": {\"size\": %llu, \"sha256\": \"%s\"}}%s}";
	snprintf(good, sizeof good, fmt, "2024-01-02T03:04:05Z", "0x10000", "app.core", size, hex, ", \"app\": {}");
	CHECKF("json-good", json_case(good) == 0, "rejected");
	int bad = 0;
	char badhex[65];
	memcpy(badhex, hex, 65);
	badhex[0] = badhex[0] == '0' ? '1' : '0';
	const char *variants[][5] = {
		{ "2024-01-02 03:04:05", "0x10000", "app.core", hex, "" },
		{ "2024-01-02T03:04:05Z", "10000", "app.core", hex, "" },
		{ "2024-01-02T03:04:05Z", "0x10000", "app.core", badhex, "" },
		{ "2024-01-02T03:04:05Z", "0x10000", "../app.core", hex, "" },
		{ "2024-01-02T03:04:05Z", "0x10000", "missing.bin", hex, "" },
		{ "2024-01-02T03:04:05Z", "0x10000", "app.core", "abc", "" },
		{ "2024-01-02T03:04:05Z", "0x10000", "app.core", hex, ", \"schema\": \"x\"" },
	};
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		snprintf(buf, sizeof buf, fmt, variants[i][0], variants[i][1], variants[i][2], size, variants[i][3],
			 variants[i][4]);
		if (json_case(buf) != -1) {
			printf("  json variant %zu accepted\n", i);
			bad++;
		}
	}
	snprintf(buf, sizeof buf, fmt, "2024-01-02T03:04:05Z", "0x10000", "app.core", size + 1, hex, "");
	if (json_case(buf) != -1)
		bad++;
	static const char *const members[] = { "\"schema\"", "\"version\"", "\"id\"", "\"time\"", "\"cause\"",
						"\"vcpus\"", "\"console_tail\"", "\"files\"", "\"kind\"", "\"vcpu\"" };
	for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
		snprintf(buf, sizeof buf, "%s", good);
		char *p = strstr(buf, members[i]);
		p[1] = 'X'; /* rename the member */
		if (json_case(buf) != -1) {
			printf("  json without %s accepted\n", members[i]);
			bad++;
		}
	}
	/* Truncations of the good text. */
	size_t glen = strlen(good);
	for (size_t cut = 1; cut < glen; cut += 7) {
		snprintf(buf, sizeof buf, "%.*s", (int)cut, good);
		if (json_case(buf) != -1)
			bad++;
	}
	CHECKF("json-bad-rejected", bad == 0, "%d bad reports accepted", bad);
}

/* ---- gdb: a real crash of null-deref, replayed through guest memory ---- */

static int run_cmd(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* gcore leaves the unchanged file-backed segments (the text) out of its
 * core; trialos reports every ELF segment as a mapping (kind 1): add those
 * of the app's PT_LOADs the core did not cover (their contents are holes:
 * debuggers read code from the file). */
static void add_file_maps(const char *app_path, struct app_fault *a)
{
	int fd = open(app_path, O_RDONLY);
	Elf64_Ehdr eh;
	Elf64_Phdr ph[16];
	if (fd < 0 || pread(fd, &eh, sizeof eh, 0) != sizeof eh || eh.e_phnum > 16 ||
	    pread(fd, ph, eh.e_phnum * sizeof *ph, (off_t)eh.e_phoff) != (ssize_t)(eh.e_phnum * sizeof *ph)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	for (int i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		uint32_t prot = ((ph[i].p_flags & PF_R) ? 1 : 0) | ((ph[i].p_flags & PF_W) ? 2 : 0) |
				((ph[i].p_flags & PF_X) ? 4 : 0);
		for (uint64_t va = ph[i].p_vaddr & ~(PG - 1); va < ph[i].p_vaddr + ph[i].p_memsz; va += PG) {
			bool covered = false;
			for (unsigned k = 0; k < a->nmaps && !covered; k++)
				covered = a->maps[k].start <= va && va < a->maps[k].end;
			if (covered || a->nmaps >= TVM_FAULT_MAX_MAPS)
				continue;
			struct tvm_mapping *last = a->nmaps ? &a->maps[a->nmaps - 1] : NULL;
			if (last && last->end == va && last->prot == prot && last->kind == 1)
				last->end += PG;
			else
				a->maps[a->nmaps++] = (struct tvm_mapping){ va, va + PG, prot, 1 };
		}
	}
}

static void test_gdb(void)
{
	const char *app_path = getenv("TVM_NULL_DEREF");
	static char def[512];
	if (!app_path) {
		snprintf(def, sizeof def, "build/guests/apps/null-deref");
		app_path = def;
	}
	char cmd[2048], out[16384];
	if (access(app_path, X_OK) != 0 || run_cmd("gdb --version >/dev/null 2>&1; echo $?", out, sizeof out) != 0 ||
	    atoi(out) != 0) {
		printf("skip gdb-app-core: no gdb or no %s\n", app_path);
		return;
	}
	/* 1. Let the host run it to the fault and take a core with gcore. */
	snprintf(cmd, sizeof cmd,
		 "gdb -nx -batch -ex run -ex 'gcore %s' %s </dev/null >/dev/null 2>&1; test -s %s", pathof("host.core"),
		 app_path, pathof("host.core"));
	if (run_cmd(cmd, out, sizeof out) != 0) {
		printf("skip gdb-app-core: gcore did not produce a core\n");
		return;
	}
	/* 2. Re-serve its memory and registers as a trialos fault. */
	int fd = open(pathof("host.core"), O_RDONLY);
	struct stat st;
	fstat(fd, &st);
	uint8_t *core = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)core;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(core + eh->e_phoff);
	static struct app_fault a;
	memset(&a, 0, sizeof a);
	a.f = app.f;
	a.f.auxv_gva = a.f.argv_gva = a.f.argc = a.f.auxv_len = 0;
	snprintf(a.f.app_name, sizeof a.f.app_name, "null-deref");
	bool regs = false;
	/* The vCPU: the host core's XSAVE image (gcore writes NT_X86_XSTATE), as KVM_GET_XSAVE would give it. */
	static struct cpu_state vc[2];
	memcpy(vc, cs.cpu, sizeof vc);
	struct cpu_state *c0 = &vc[cs.crashing_cpu];
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_NOTE) {
			for (uint64_t pos = 0; pos + 12 <= ph[i].p_filesz;) {
				const uint32_t *n = (const uint32_t *)(core + ph[i].p_offset + pos);
				const uint8_t *desc = (const uint8_t *)(n + 3) + ((n[0] + 3) & ~3u);
				if (n[2] == NT_PRSTATUS && n[1] == TVM_PRSTATUS_SIZE && !regs) {
					memcpy(&a.f.regs, desc + 0x70, sizeof a.f.regs);
					regs = true;
				}
				if (n[2] == NT_AUXV && n[1] >= 16 && n[1] <= PG && next_frame + PG <= 8 * MiB) {
					/* Re-served on a page of its own (a debugger finds the
					 * executable's load address by AT_PHDR / AT_ENTRY). */
					memcpy(host_of(next_frame), desc, n[1]);
					map_page(0x10000, next_frame);
					next_frame += PG;
					a.f.auxv_gva = 0x10000;
					a.f.auxv_len = n[1];
				}
				if (n[2] == NT_X86_XSTATE && n[1] >= 576 && n[1] <= sizeof c0->xsave && !c0->xsave_valid) {
					memset(c0->xsave, 0, sizeof c0->xsave);
					memcpy(c0->xsave, desc, n[1]);
					memcpy(c0->fxsave, desc, 512);
					memcpy(&c0->xcr0, desc + 464, 8);
					c0->xsave_valid = true;
				}
				pos += 12 + ((n[0] + 3) & ~3u) + ((n[1] + 3) & ~3u);
			}
			continue;
		}
		if (ph[i].p_type != PT_LOAD || ph[i].p_filesz == 0 || ph[i].p_vaddr >= (1ull << 47) ||
		    a.nmaps >= TVM_FAULT_MAX_MAPS)
			continue;
		uint64_t len = ph[i].p_filesz & ~(PG - 1);
		if (next_frame + len > 8 * MiB)
			continue;
		for (uint64_t off = 0; off < len; off += PG) {
			memcpy(host_of(next_frame), core + ph[i].p_offset + off, PG);
			map_page(ph[i].p_vaddr + off, next_frame);
			next_frame += PG;
		}
		uint32_t prot = ((ph[i].p_flags & PF_R) ? 1 : 0) | ((ph[i].p_flags & PF_W) ? 2 : 0) |
				((ph[i].p_flags & PF_X) ? 4 : 0);
		a.maps[a.nmaps++] = (struct tvm_mapping){ ph[i].p_vaddr, ph[i].p_vaddr + ph[i].p_memsz, prot, 1 };
	}
	munmap(core, (size_t)st.st_size);
	add_file_maps(app_path, &a);
	c0->xcr0 &= 7; /* trialos enables x87 | SSE | AVX only */
	struct crash_state c2 = cs;
	c2.app = &a;
	c2.cpu = vc;
	char app_abs[PATH_MAX];
	c2.app_file = realpath(app_path, app_abs);
	struct tvm_err err = { "" };
	fd = open(pathof("null-deref.core"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc = write_app_core(&c2, fd, &err);
	close(fd);
	if (!regs || rc) {
		CHECKF("gdb-app-core", 0, "regs %d, write: %s", regs, err.msg);
		return;
	}
	/* 3. gdb on our core. */
	snprintf(cmd, sizeof cmd, "gdb -nx -batch -ex bt %s %s 2>&1", app_path, pathof("null-deref.core"));
	run_cmd(cmd, out, sizeof out);
	bool ok = strstr(out, "crash_here") && strstr(out, "main");
	CHECKF("gdb-app-core", ok, "gdb bt: %s", out);
	if (getenv("TEST_VERBOSE"))
		fputs(out, stdout);
	/* 4. The file mappings (NT_FILE) and the vector registers (NT_X86_XSTATE):
	 * null-deref loads ymm0 (xmm0 without AVX) with 0x11110000 + i. */
	snprintf(cmd, sizeof cmd,
		 "gdb -nx -batch -ex 'info proc mappings' -ex 'p/x $xmm0.v4_int32' -ex 'p/x $ymm0.v8_int32' %s %s 2>&1",
		 app_path, pathof("null-deref.core"));
	run_cmd(cmd, out, sizeof out);
	char map_line[PATH_MAX + 16];
	snprintf(map_line, sizeof map_line, "0x0 %s", app_abs);
	bool avx = c0->xcr0 & 4;
	CHECKF("gdb-app-core-mappings", c2.app_file && strstr(out, map_line), "no mapping of %s at offset 0: %s",
	       c2.app_file ? app_abs : "(no path)", out);
	CHECKF("gdb-app-core-xmm", c0->xsave_valid && strstr(out, "{0x11110000, 0x11110001, 0x11110002, 0x11110003}"),
	       "xsave %d: %s", c0->xsave_valid, out);
	CHECKF("gdb-app-core-ymm", !avx || strstr(out, "0x11110004, 0x11110005, 0x11110006, 0x11110007}"), "%s", out);
	/* 5. lldb: it needs a LINUX note to take the core for Linux's. */
	if (run_cmd("lldb --version >/dev/null 2>&1; echo $?", out, sizeof out) != 0 || atoi(out) != 0) {
		printf("skip lldb-app-core: no lldb\n");
		return;
	}
	snprintf(cmd, sizeof cmd, "lldb --batch -o bt -o 'register read xmm0' -c %s %s 2>&1", pathof("null-deref.core"),
		 app_path);
	run_cmd(cmd, out, sizeof out);
	CHECKF("lldb-app-core", strstr(out, "null-deref`crash_here") && strstr(out, "null-deref`main") &&
				      strstr(out, "stop reason = signal SIGSEGV"),
	       "lldb: %s", out);
	CHECKF("lldb-app-core-xmm", strstr(out, "xmm0 = {0x00 0x00 0x11 0x11 0x01 0x00 0x11 0x11"), "lldb: %s", out);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/test_dumps.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	setup();
	test_write();
	test_layout();
	test_readelf();
	test_inspect();
	test_read_phys();
	test_sparse();
	test_truncated();
	test_corrupt();
	test_enospc();
	test_json();
	test_gdb();
	if (!getenv("TEST_KEEP")) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("warning: could not remove %s\n", dir);
	} else {
		printf("kept %s\n", dir);
	}
	if (failures)
		printf("%d failures\n", failures);
	return failures ? 1 : 0;
}
