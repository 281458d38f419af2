/* tests/test_core.c - unit tests of the VMM core: the checked guest-memory
 * accessor, the I/O bus, size parsing, the console tail, symbol lookup and
 * the guest page walker, the main thread's event loop. Prints "ok NAME" / "FAIL NAME: why"; exits 1 on any
 * failure. The accessor, bus and walker checks run on a KVM-free fake VM
 * (tests/fake_vm.c) everywhere, then again on a real VM where /dev/kvm
 * works; without it that part prints "skip vm-kvm: why". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "../devices/devices.h"
#include "../vmm/guestmem.h"
#include "../vmm/text.h"
#include "../monitor/symbols.h"
#include "../vmm/bus.h"
#include "../vmm/evloop.h"
#include "../vmm/util.h"
#include "../vmm/vm.h"

#include "check.h"
#include "fake_vm.c"

static void test_parse_size(void)
{
	uint64_t v = 0;
	CHECK("size-64M", parse_size("64M", &v) == 0 && v == 64ull << 20);
	CHECK("size-1G", parse_size("1G", &v) == 0 && v == 1ull << 30);
	CHECK("size-1T", parse_size("1T", &v) == 0 && v == 1ull << 40); /* --mem's documented maximum */
	CHECK("size-512KiB", parse_size("512KiB", &v) == 0 && v == 512ull << 10);
	CHECK("size-bytes", parse_size("4096", &v) == 0 && v == 4096);
	CHECK("size-empty", parse_size("", &v) < 0);
	CHECK("size-negative", parse_size("-1M", &v) < 0);
	CHECK("size-suffix-junk", parse_size("12Q", &v) < 0);
	CHECK("size-trailing", parse_size("12MX", &v) < 0);
	CHECK("size-overflow", parse_size("99999999999999999999G", &v) < 0);
	CHECK("size-mul-overflow", parse_size("17179869184G", &v) < 0);
}

/* An error may be given context with its own message as an argument. */
static void test_seterr(void)
{
	struct tvm_err e;
	tvm_seterr(&e, "cannot open %s", "x.ko");
	CHECK("seterr-self", tvm_seterr(&e, "module %d: %s", 3, e.msg) == -1 &&
				     !strcmp(e.msg, "module 3: cannot open x.ko"));
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	tvm_seterr(&e, "%s", big);
	CHECK("seterr-truncated", strlen(e.msg) == sizeof(e.msg) - 1);
	CHECK("seterr-null", tvm_seterr(NULL, "x") == -1);
}

static int hits;
static uint64_t last_off;
static unsigned last_size;
static void dev_fn(void *dev, int vcpu, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	(void)dev;
	(void)vcpu;
	hits++;
	last_off = off;
	last_size = size;
	if (!is_write)
		memset(data, 0x5a, size);
}

/* The checks of a 3.5 GiB VM (RAM split around the MMIO hole, nothing
 * touched): accessor, e820, bus, page walker. */
static void test_vm_memory(struct vm *vm)
{
	struct tvm_err err;
	const struct mem_region *r;
	int n = vm_regions(vm, &r);
	CHECK("regions-split", n == 2 && r[0].gpa == 0 && r[0].size == TVM_MMIO_HOLE_START && r[1].gpa == TVM_4G &&
				       r[1].size == (3584ull << 20) - TVM_MMIO_HOLE_START);
	CHECK("gpa-start", gpa_ptr(vm, GPA(0), 4096) != NULL);
	CHECK("gpa-last-byte-low", gpa_ptr(vm, GPA(TVM_MMIO_HOLE_START - 1), 1) != NULL);
	CHECK("gpa-straddle-hole", gpa_ptr(vm, GPA(TVM_MMIO_HOLE_START - 1), 2) == NULL);
	CHECK("gpa-in-hole", gpa_ptr(vm, GPA(TVM_MMIO_HOLE_START), 1) == NULL);
	CHECK("gpa-high", gpa_ptr(vm, GPA(TVM_4G), 8) != NULL);
	CHECK("gpa-high-end", gpa_ptr(vm, GPA(TVM_4G + r[1].size - 8), 8) != NULL);
	CHECK("gpa-past-end", gpa_ptr(vm, GPA(TVM_4G + r[1].size - 8), 9) == NULL);
	CHECK("gpa-wrap", gpa_ptr(vm, GPA(~0ull - 4), 16) == NULL);
	CHECK("gpa-huge-len", gpa_ptr(vm, GPA(4096), ~0ull) == NULL);
	CHECK("gpa-zero-len-at-end", gpa_ptr(vm, GPA(TVM_MMIO_HOLE_START), 0) == NULL);
	uint8_t b[4] = { 1, 2, 3, 4 }, c[4];
	CHECK("gpa-write-read", gpa_write(vm, GPA(0x1234), b, 4) == 0 && gpa_read(vm, GPA(0x1234), c, 4) == 0 &&
					!memcmp(b, c, 4));
	CHECK("gpa-write-outside", gpa_write(vm, GPA(TVM_MMIO_HOLE_START - 2), b, 4) < 0);

	struct e820_entry e[8];
	int ne = vm_e820(vm, e, 8);
	CHECK("e820", ne == 4 && e[0].addr == 0 && e[0].size == 0x9fc00 && e[1].type == 2 && e[2].addr == 0x100000 &&
			      e[2].addr + e[2].size == TVM_MMIO_HOLE_START && e[3].addr == TVM_4G);

	CHECK("bus-register", bus_register(vm, BUS_PIO, 0x100, 8, dev_fn, NULL, "a", &err) == 0);
	CHECK("bus-overlap-inside", bus_register(vm, BUS_PIO, 0x104, 2, dev_fn, NULL, "b", &err) < 0 &&
					    strstr(err.msg, "overlaps a"));
	CHECK("bus-overlap-start", bus_register(vm, BUS_PIO, 0xfc, 8, dev_fn, NULL, "c", &err) < 0);
	CHECK("bus-adjacent", bus_register(vm, BUS_PIO, 0x108, 8, dev_fn, NULL, "d", &err) == 0 &&
				      bus_register(vm, BUS_PIO, 0xf8, 8, dev_fn, NULL, "e", &err) == 0);
	CHECK("bus-pio-range", bus_register(vm, BUS_PIO, 0xfff0, 0x20, dev_fn, NULL, "f", &err) < 0);
	CHECK("bus-zero-len", bus_register(vm, BUS_MMIO, 0xd0000000, 0, dev_fn, NULL, "g", &err) < 0);
	CHECK("bus-wrap", bus_register(vm, BUS_MMIO, ~0ull - 4, 16, dev_fn, NULL, "h", &err) < 0);

	uint8_t data[8];
	hits = 0;
	bus_access(vm, BUS_PIO, 0, 0x106, data, 2, false);
	CHECK("bus-dispatch-offset", hits == 1 && last_off == 6 && last_size == 2 && data[0] == 0x5a);
	hits = 0;
	uint64_t before = bus_unclaimed_count(vm);
	bus_access(vm, BUS_PIO, 0, 0x10f, data, 2, false); /* straddles the end of "d" */
	CHECK("bus-straddle-unclaimed", hits == 0 && data[0] == 0xff && data[1] == 0xff &&
						bus_unclaimed_count(vm) == before + 1);
	memset(data, 0, sizeof(data));
	bus_access(vm, BUS_PIO, 0, 0x300, data, 4, false);
	CHECK("bus-unclaimed-reads-ones", data[0] == 0xff && data[3] == 0xff && data[4] == 0);
	bus_access(vm, BUS_MMIO, 0, 0xd0000000, data, 8, true);
	CHECK("bus-unclaimed-write-ignored", hits == 0);

	/* The page walker, on tables built in guest RAM: 4 KiB and 2 MiB pages. */
	uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	uint64_t ent;
	ent = pdpt | 1; gpa_write(vm, GPA(pml4), &ent, 8);
	ent = pd | 1; gpa_write(vm, GPA(pdpt), &ent, 8);
	ent = pt | 1; gpa_write(vm, GPA(pd), &ent, 8);                 /* 0-2M: 4K pages */
	ent = 0x200000 | 0x81; gpa_write(vm, GPA(pd + 8), &ent, 8);    /* 2M-4M: one 2M page */
	ent = 0x40000 | 1; gpa_write(vm, GPA(pt + 8 * 5), &ent, 8);    /* va 0x5000 -> 0x40000 */
	uint64_t pa = 0;
	struct guest_mem gm = vm_guest_mem(vm);
	CHECK("walk-4k", guest_virt_to_phys(&gm, pml4, 0x5123, &pa) == 0 && pa == 0x40123);
	CHECK("walk-2m", guest_virt_to_phys(&gm, pml4, 0x234567, &pa) == 0 && pa == 0x234567);
	CHECK("walk-unmapped", guest_virt_to_phys(&gm, pml4, 0x6000, &pa) < 0);
	CHECK("walk-noncanonical", guest_virt_to_phys(&gm, pml4, 0x0000800000000000ull, &pa) < 0);
	ent = 0xfff00000000ull | 1; gpa_write(vm, GPA(pt + 8 * 7), &ent, 8); /* points outside RAM */
	uint8_t buf[16];
	CHECK("walk-outside-ram", guest_read_virt(&gm, pml4, 0x7000, buf, 16) == 0);
	CHECK("read-virt-stops", guest_read_virt(&gm, pml4, 0x5ff8, buf, 16) == 8);
	/* The last page of the address space (va 0xfffffffffffff000 -> 0x50000):
	 * a read there stops at 2^64 instead of wrapping to address 0. */
	uint64_t pdpt2 = 0x14000, pd2 = 0x15000, pt2 = 0x16000;
	ent = pdpt2 | 1; gpa_write(vm, GPA(pml4 + 8 * 511), &ent, 8);
	ent = pd2 | 1; gpa_write(vm, GPA(pdpt2 + 8 * 511), &ent, 8);
	ent = pt2 | 1; gpa_write(vm, GPA(pd2 + 8 * 511), &ent, 8);
	ent = 0x50000 | 1; gpa_write(vm, GPA(pt2 + 8 * 511), &ent, 8);
	ent = 0x51000 | 1; gpa_write(vm, GPA(pt + 8 * 0), &ent, 8); /* va 0 is mapped too: a wrap would read it */
	uint8_t top[32];
	memset(top, 0xee, sizeof(top));
	CHECK("read-virt-top-no-wrap", guest_read_virt(&gm, pml4, 0xfffffffffffffff8ull, top, sizeof(top)) == 8 &&
					       top[8] == 0xee && top[31] == 0xee);
	CHECK("read-virt-last-byte", guest_read_virt(&gm, pml4, ~0ull, top, sizeof(top)) == 1);
	/* A table that points at itself: the walk still ends after four levels. */
	ent = 0x10000 | 1; gpa_write(vm, GPA(pml4), &ent, 8);
	CHECK("walk-self-loop", guest_virt_to_phys(&gm, pml4, 0x5000, &pa) < 0 &&
					guest_virt_to_phys(&gm, pml4, 0x0, &pa) == 0 && pa == 0x10000);
}

static void test_vm(void)
{
	struct vm *fake = fake_vm_new(3584ull << 20, 1);
	CHECK("fake-vm-create", fake != NULL);
	if (fake) {
		test_vm_memory(fake);
		fake_vm_free(fake);
	}
	if (!kvm_usable()) {
		printf("skip vm-kvm: /dev/kvm is not usable (the same checks ran on a fake VM)\n");
		return;
	}
	struct tvm_err err;
	struct vm_config cfg = { .ram_size = 3584ull << 20, .ncpus = 1 };
	struct vm *vm = vm_create(&cfg, &err);
	CHECK("vm-create", vm != NULL);
	if (!vm) {
		printf("  %s\n", err.msg);
		return;
	}
	test_vm_memory(vm);
	vm_destroy(vm);
}

static void test_escape(void)
{
	char out[128];
	tvm_escape("a\x1b[2Jb\x07", 7, TVM_ESC_TERMINAL, out, sizeof out);
	CHECK("escape-esc-bel", strcmp(out, "a\\x1b[2Jb\\x07") == 0);
	tvm_escape("x\xe2\x80\xaey", 5, TVM_ESC_TERMINAL, out, sizeof out); /* U+202E */
	CHECK("escape-bidi", strcmp(out, "x\\u{202e}y") == 0);
	tvm_escape("\xc2\x85", 2, TVM_ESC_TERMINAL, out, sizeof out); /* U+0085, a C1 control */
	CHECK("escape-c1", strcmp(out, "\\u{0085}") == 0);
	tvm_escape("caf\xc3\xa9 \\", 7, TVM_ESC_TERMINAL, out, sizeof out);
	CHECK("escape-utf8-kept-backslash-doubled", strcmp(out, "caf\xc3\xa9 \\\\") == 0);
	tvm_escape("l1\nl2\t\r", 7, TVM_ESC_TERMINAL | TVM_ESC_KEEP_NL, out, sizeof out);
	CHECK("escape-keep-nl", strcmp(out, "l1\nl2\t\\x0d") == 0);
	/* Invalid UTF-8: a lone continuation, an overlong '/', a surrogate, a
	 * truncated sequence: every byte kept as \xNN, nothing dropped. */
	tvm_escape("\x80\xc0\xaf\xed\xa0\x80\xe2\x82", 8, 0, out, sizeof out);
	CHECK("escape-invalid-utf8", strcmp(out, "\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82") == 0);
	/* JSON mode keeps controls (JSON escapes them) and the backslash. */
	tvm_escape("\x1b\\", 2, 0, out, sizeof out);
	CHECK("escape-json-mode", strcmp(out, "\x1b\\") == 0);
	/* A small destination: never half an escape. */
	size_t used = tvm_escape("ab\x1b", 3, TVM_ESC_TERMINAL, out, 5);
	CHECK("escape-truncates-whole", used == 2 && strcmp(out, "ab") == 0);
	char *d = tvm_escape_dup("\xff\xfe", 2, 0);
	CHECK("escape-dup", d && strcmp(d, "\\xff\\xfe") == 0);
	free(d);
}

/* In a child whose stdout is a 4 KiB pipe: MB of guest output, read by a
 * slow reader (everything arrives, in order) or by none (console_put never
 * blocks for long, and the loss is counted). Returns what the child says. */
static int console_child(bool reader, int *lines_ok)
{
	int p[2], res[2];
	if (pipe(p) < 0 || pipe(res) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		alarm(20); /* a console that blocks for good fails the check, not the suite */
		close(res[0]);
		fcntl(p[1], F_SETPIPE_SZ, 4096);
		dup2(p[1], 1);
		close(p[1]);
		struct tvm_err err;
		console_open(NULL, false, &err);
		static uint8_t chunk[64 * 1024];
		uint64_t t0 = now_ns();
		for (int i = 0; i < 48; i++) { /* 3 MiB: three times the ring */
			memset(chunk, 'A' + i % 26, sizeof chunk);
			console_put(CONSOLE_SERIAL, chunk, sizeof chunk);
		}
		uint64_t put_ms = (now_ns() - t0) / 1000000;
		console_close(&err);
		char msg[64];
		int m = snprintf(msg, sizeof msg, "%llu\n", (unsigned long long)put_ms);
		(void)!write(res[1], msg, (size_t)m);
		_exit(0);
	}
	close(p[1]);
	close(res[1]);
	*lines_ok = 0;
	if (reader) {
		static uint8_t buf[4096];
		uint64_t got = 0;
		bool order = true;
		ssize_t r;
		while ((r = read(p[0], buf, sizeof buf)) > 0) {
			for (ssize_t i = 0; i < r; i++)
				order = order && buf[i] == 'A' + (int)((got + (uint64_t)i) / (64 * 1024)) % 26;
			got += (uint64_t)r;
			usleep(200); /* slow: about 20 MB/s at most */
		}
		*lines_ok = order && got == 48ull * 64 * 1024;
	}
	char msg[64] = "";
	ssize_t n = read(res[0], msg, sizeof msg - 1);
	int st;
	waitpid(pid, &st, 0);
	close(p[0]);
	close(res[0]);
	return n > 0 ? atoi(msg) : -1;
}

static void test_console_stdout(void)
{
	int ok;
	int ms = console_child(true, &ok);
	CHECK("console-slow-reader-gets-all", ms >= 0 && ok);
	ms = console_child(false, &ok);
	/* Nobody reads: each put may wait STALL_MS (1 s) once, then drops. */
	CHECK("console-stalled-reader-does-not-block", ms >= 0 && ms < 5000);
}

static void test_console_tail(void)
{
	struct tvm_err err;
	console_open(NULL, true, &err);
	uint8_t chunk[1000];
	for (int i = 0; i < 100; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		console_put(i % 2 ? CONSOLE_HVC0 : CONSOLE_SERIAL, chunk, sizeof(chunk));
	}
	static uint8_t tail[CONSOLE_TAIL + 10];
	/* Each device's own tail: the even chunks on the serial port (50000
	 * bytes, all kept), the odd ones on hvc0. */
	size_t ns = console_source_tail(CONSOLE_SERIAL, tail, sizeof(tail));
	bool serial_ok = ns == 50000;
	for (size_t i = 0; serial_ok && i < ns; i++)
		serial_ok = tail[i] == 'a' + (2 * (i / 1000)) % 26;
	CHECK("tail-serial-apart", serial_ok);
	size_t nh = console_source_tail(CONSOLE_HVC0, tail, 10);
	CHECK("tail-hvc0-apart", nh == 10 && tail[9] == 'a' + 99 % 26);
	CHECK("tail-bad-source", console_source_tail(CONSOLE_NSOURCES, tail, 10) == 0);
	size_t n = console_tail(tail, sizeof(tail));
	CHECK("tail-size", n == CONSOLE_TAIL);
	/* The last byte written was from chunk 99 ('a' + 99 % 26 = 'v'). */
	CHECK("tail-newest-last", tail[n - 1] == 'a' + 99 % 26);
	/* The oldest kept byte is 100000 - 65536 = 34464 bytes in: chunk 34. */
	CHECK("tail-oldest-first", tail[0] == 'a' + 34 % 26);
	CHECK("tail-max", console_tail(tail, 10) == 10 && tail[9] == 'a' + 99 % 26);
	console_close(&err);
}

static void test_symbols(const char *self)
{
	struct symtab *st = symtab_load(self);
	CHECK("symtab-load-self", st != NULL);
	uint64_t addr = 0, off = 99;
	CHECK("symtab-find", symtab_find(st, "main", &addr) == 0 && addr != 0);
	const char *name = symtab_lookup(st, addr + 3, &off);
	CHECK("symtab-lookup", name && strcmp(name, "main") == 0 && off == 3);
	CHECK("symtab-find-missing", symtab_find(st, "no_such_symbol_here", &addr) < 0);
	CHECK("symtab-missing-file", symtab_load("/nonexistent/file") == NULL);
	CHECK("symtab-not-elf", symtab_load("/etc/passwd") == NULL);
	symtab_free(st);
}

/* The event loop: a callback per ready descriptor; one removed by an
 * earlier callback in the same round is not called; a full table and a
 * descriptor watched twice are refused; a timeout calls nothing. */
struct ev_probe { struct evloop *l; int calls, other_fd; };
static void ev_read(void *arg, int fd, uint32_t events)
{
	struct ev_probe *p = arg;
	(void)events;
	char b[16];
	if (read(fd, b, sizeof(b)) < 0) {
		/* counted all the same */
	}
	p->calls++;
	if (p->other_fd >= 0) /* the other one is gone before its turn */
		evloop_del(p->l, p->other_fd);
}

static void test_evloop(void)
{
	struct tvm_err err = { "" };
	struct evloop *l = evloop_new(&err);
	CHECKF("evloop-new", l != NULL, "%s", err.msg);
	if (!l)
		return;
	int a[2], b[2];
	if (pipe(a) < 0 || pipe(b) < 0) {
		CHECK("evloop-pipes", 0);
		return;
	}
	struct ev_probe pa = { l, 0, -1 }, pb = { l, 0, -1 };
	CHECK("evloop-add", evloop_add(l, a[0], ev_read, &pa, &err) == 0 && evloop_add(l, b[0], ev_read, &pb, &err) == 0);
	CHECK("evloop-add-twice", evloop_add(l, a[0], ev_read, &pa, &err) < 0 && strstr(err.msg, "twice"));
	CHECK("evloop-timeout", evloop_wait(l, 10) == 0 && pa.calls == 0 && pb.calls == 0);
	CHECK("evloop-ready", write(a[1], "x", 1) == 1 && evloop_wait(l, 1000) == 1 && pa.calls == 1 && pb.calls == 0);
	/* Both ready; whichever runs first removes the other. */
	pa.other_fd = b[0];
	pb.other_fd = a[0];
	CHECK("evloop-both-ready", write(a[1], "x", 1) == 1 && write(b[1], "y", 1) == 1);
	int n = evloop_wait(l, 1000);
	CHECKF("evloop-del-in-round", n == 1 && pa.calls + pb.calls == 2, "%d called, counts %d %d", n, pa.calls, pb.calls);
	evloop_del(l, a[0]);
	evloop_del(l, b[0]);
	int fds[EVLOOP_MAX_WATCHES + 1], added = 0;
	bool refused = false;
	for (int i = 0; i <= EVLOOP_MAX_WATCHES; i++) {
		fds[i] = dup(a[0]);
		if (evloop_add(l, fds[i], ev_read, &pa, &err) == 0)
			added++;
		else
			refused = strstr(err.msg, "watches") != NULL;
	}
	CHECKF("evloop-full", added == EVLOOP_MAX_WATCHES && refused, "%d added", added);
	for (int i = 0; i <= EVLOOP_MAX_WATCHES; i++) {
		evloop_del(l, fds[i]);
		close(fds[i]);
	}
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	evloop_free(l);
}

int main(int argc, char **argv)
{
	(void)argc;
	test_parse_size();
	test_seterr();
	test_escape();
	test_console_tail();
	test_console_stdout();
	test_symbols(argv[0]);
	test_evloop();
	test_vm();
	return failures ? 1 : 0;
}
