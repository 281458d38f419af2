/* monitor/gdbstub.c - the GDB remote serial protocol (gdbstub.h), over
 * the VM's debugger interface (vm.h, "the debugger"). The packets and
 * their replies are as GDB's manual, "Remote Protocol", describes them. */
#include "gdbstub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../vmm/cpu_state.h"
#include "../vmm/guestmem.h"
#include "../vmm/util.h"

#define SEND_TIMEOUT_S 5
#define REPLY_MAX (GDB_PACKET_MAX + 64)
#define MEM_MAX ((GDB_PACKET_MAX - 32) / 2) /* bytes of one m reply */

struct gdb_conn {
	struct gdbstub *g;          /* NULL: protocol only (gdb_conn_feed) */
	int fd;
	uint8_t in[GDB_PACKET_MAX + 8];
	size_t in_len;
	bool noack;                 /* QStartNoAckMode */
	bool waiting;               /* gdb waits for a stop reply */
	bool dead;                  /* drop the client once this round is done */
	int cur_g, cur_c;           /* the vCPUs of Hg and Hc; -1: the stopped one */
	char last[REPLY_MAX + 8];   /* the last packet sent, for a NAK */
	size_t last_len;
	uint8_t *out;               /* gdb_conn_feed's buffer */
	size_t out_len, out_cap;
	char reply[REPLY_MAX];
};

struct gdbstub {
	int lfd;
	struct evloop *loop;
	struct gdb_conn *c;         /* the attached debugger, or NULL */
	struct vm *vm;              /* the VM being debugged, or NULL between VMs */
	bool have_kernel;
	struct boot_entry kernel;
	struct vm_debug_stop stop;  /* the last stop reported by the VM */
	bool detach_pending;        /* the debugger left while the VM ran: let it go at the stop */
	int cache_idx;              /* which vCPU `cache` holds (-1: none) */
	struct cpu_state cache;
};

/* ------------------------------------------------------------ registers */

/* The target description's registers, in g-packet order: GDB's amd64
 * core and SSE features, the segment bases, and the system registers. */
enum reg_kind { RK_GPR, RK_RIP, RK_FLAGS, RK_SEL, RK_ST, RK_FPC, RK_XMM, RK_MXCSR, RK_BASE, RK_CR };
enum { F_CORE, F_SSE, F_SEGMENTS, F_SYS };
struct greg {
	const char *name;
	uint8_t bits, kind, arg, feature;
	const char *type, *group;
};
#define GPR(n, i, t) { n, 64, RK_GPR, i, F_CORE, t, "general" }
static const struct greg regs[] = {
	GPR("rax", 0, "int64"), GPR("rbx", 3, "int64"), GPR("rcx", 1, "int64"), GPR("rdx", 2, "int64"),
	GPR("rsi", 6, "int64"), GPR("rdi", 7, "int64"), GPR("rbp", 5, "data_ptr"), GPR("rsp", 4, "data_ptr"),
	GPR("r8", 8, "int64"), GPR("r9", 9, "int64"), GPR("r10", 10, "int64"), GPR("r11", 11, "int64"),
	GPR("r12", 12, "int64"), GPR("r13", 13, "int64"), GPR("r14", 14, "int64"), GPR("r15", 15, "int64"),
	{ "rip", 64, RK_RIP, 0, F_CORE, "code_ptr", "general" },
	{ "eflags", 32, RK_FLAGS, 0, F_CORE, "i386_eflags", "general" },
	{ "cs", 32, RK_SEL, 0, F_CORE, "int32", "general" }, { "ss", 32, RK_SEL, 1, F_CORE, "int32", "general" },
	{ "ds", 32, RK_SEL, 2, F_CORE, "int32", "general" }, { "es", 32, RK_SEL, 3, F_CORE, "int32", "general" },
	{ "fs", 32, RK_SEL, 4, F_CORE, "int32", "general" }, { "gs", 32, RK_SEL, 5, F_CORE, "int32", "general" },
	{ "st0", 80, RK_ST, 0, F_CORE, "i387_ext", "float" }, { "st1", 80, RK_ST, 1, F_CORE, "i387_ext", "float" },
	{ "st2", 80, RK_ST, 2, F_CORE, "i387_ext", "float" }, { "st3", 80, RK_ST, 3, F_CORE, "i387_ext", "float" },
	{ "st4", 80, RK_ST, 4, F_CORE, "i387_ext", "float" }, { "st5", 80, RK_ST, 5, F_CORE, "i387_ext", "float" },
	{ "st6", 80, RK_ST, 6, F_CORE, "i387_ext", "float" }, { "st7", 80, RK_ST, 7, F_CORE, "i387_ext", "float" },
	{ "fctrl", 32, RK_FPC, 0, F_CORE, "int", "float" }, { "fstat", 32, RK_FPC, 1, F_CORE, "int", "float" },
	{ "ftag", 32, RK_FPC, 2, F_CORE, "int", "float" }, { "fiseg", 32, RK_FPC, 3, F_CORE, "int", "float" },
	{ "fioff", 32, RK_FPC, 4, F_CORE, "int", "float" }, { "foseg", 32, RK_FPC, 5, F_CORE, "int", "float" },
	{ "fooff", 32, RK_FPC, 6, F_CORE, "int", "float" }, { "fop", 32, RK_FPC, 7, F_CORE, "int", "float" },
#define XMM(n, i) { n, 128, RK_XMM, i, F_SSE, "vec128", "vector" }
	XMM("xmm0", 0), XMM("xmm1", 1), XMM("xmm2", 2), XMM("xmm3", 3), XMM("xmm4", 4), XMM("xmm5", 5),
	XMM("xmm6", 6), XMM("xmm7", 7), XMM("xmm8", 8), XMM("xmm9", 9), XMM("xmm10", 10), XMM("xmm11", 11),
	XMM("xmm12", 12), XMM("xmm13", 13), XMM("xmm14", 14), XMM("xmm15", 15),
	{ "mxcsr", 32, RK_MXCSR, 0, F_SSE, "int", "vector" },
	{ "fs_base", 64, RK_BASE, 0, F_SEGMENTS, "int", "system" },
	{ "gs_base", 64, RK_BASE, 1, F_SEGMENTS, "int", "system" },
	{ "cr0", 64, RK_CR, 0, F_SYS, "int64", "system" }, { "cr2", 64, RK_CR, 2, F_SYS, "int64", "system" },
	{ "cr3", 64, RK_CR, 3, F_SYS, "int64", "system" }, { "cr4", 64, RK_CR, 4, F_SYS, "int64", "system" },
	{ "cr8", 64, RK_CR, 8, F_SYS, "int64", "system" }, { "efer", 64, RK_CR, 9, F_SYS, "int64", "system" },
};
enum { NREGS = sizeof(regs) / sizeof(regs[0]) };

static uint64_t *cr_field(struct cpu_state *s, unsigned arg)
{
	switch (arg) {
	case 0: return &s->cr0;
	case 2: return &s->cr2;
	case 3: return &s->cr3;
	case 4: return &s->cr4;
	case 8: return &s->cr8;
	default: return &s->efer;
	}
}

static struct seg_state *sel_field(struct cpu_state *s, unsigned arg)
{
	struct seg_state *t[6] = { &s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs };
	return t[arg % 6];
}

/* The x87 tag word in full (2 bits per physical register) from FXSAVE's
 * abridged one and the register contents. */
static uint16_t ftag_full(const uint8_t *fx)
{
	uint16_t fsw;
	memcpy(&fsw, fx + 2, 2);
	unsigned top = (fsw >> 11) & 7;
	uint16_t full = 0;
	for (unsigned p = 0; p < 8; p++) {
		unsigned tag = 3; /* empty */
		if (fx[4] & (1u << p)) {
			const uint8_t *r = fx + 32 + 16 * ((p - top) & 7);
			uint64_t mant;
			uint16_t exp;
			memcpy(&mant, r, 8);
			memcpy(&exp, r + 8, 2);
			exp &= 0x7fff;
			if (exp == 0x7fff)
				tag = 2;
			else if (exp == 0)
				tag = mant ? 2 : 1;
			else
				tag = (mant >> 63) ? 0 : 2;
		}
		full |= (uint16_t)(tag << (2 * p));
	}
	return full;
}

/* The FXSAVE offsets of fctrl..fop, as the FXSAVE image lays them out. */
static const uint8_t fpc_off[8] = { 0, 2, 4, 12, 8, 20, 16, 6 };
static const uint8_t fpc_len[8] = { 2, 2, 0, 2, 4, 2, 4, 2 };

/* Register n of s into out (little-endian); its size in bytes. */
static unsigned reg_get(const struct cpu_state *s0, int n, uint8_t out[16])
{
	struct cpu_state *s = (struct cpu_state *)s0; /* the field helpers only read here */
	const struct greg *r = &regs[n];
	uint64_t v = 0;
	memset(out, 0, 16);
	switch (r->kind) {
	case RK_GPR: v = s->gpr[r->arg]; break;
	case RK_RIP: v = s->rip; break;
	case RK_FLAGS: v = (uint32_t)s->rflags; break;
	case RK_SEL: v = sel_field(s, r->arg)->selector; break;
	case RK_ST: memcpy(out, s->fxsave + 32 + 16 * r->arg, 10); return 10;
	case RK_FPC:
		if (r->arg == 2)
			v = ftag_full(s->fxsave);
		else
			memcpy(&v, s->fxsave + fpc_off[r->arg], fpc_len[r->arg]);
		if (r->arg == 7)
			v &= 0x7ff;
		break;
	case RK_XMM: memcpy(out, s->fxsave + 160 + 16 * r->arg, 16); return 16;
	case RK_MXCSR: memcpy(&v, s->fxsave + 24, 4); break;
	case RK_BASE: v = r->arg ? s->gs.base : s->fs.base; break;
	case RK_CR: v = *cr_field(s, r->arg); break;
	}
	unsigned len = r->bits / 8;
	memcpy(out, &v, len);
	return len;
}

/* Register n of s from in; -1 for a change trialvm cannot make (a segment
 * selector: its descriptor would not follow). */
static int reg_set(struct cpu_state *s, int n, const uint8_t *in)
{
	const struct greg *r = &regs[n];
	uint64_t v = 0;
	unsigned len = r->bits / 8;
	if (len <= 8)
		memcpy(&v, in, len);
	switch (r->kind) {
	case RK_GPR: s->gpr[r->arg] = v; break;
	case RK_RIP: s->rip = v; break;
	case RK_FLAGS: s->rflags = (s->rflags & ~0xffffffffull) | v; break;
	case RK_SEL:
		if (v != sel_field(s, r->arg)->selector)
			return -1;
		break;
	case RK_ST: memcpy(s->fxsave + 32 + 16 * r->arg, in, 10); break;
	case RK_FPC:
		if (r->arg == 2) {
			uint8_t ab = 0;
			for (unsigned p = 0; p < 8; p++)
				if (((v >> (2 * p)) & 3) != 3)
					ab |= (uint8_t)(1u << p);
			s->fxsave[4] = ab;
		} else {
			memcpy(s->fxsave + fpc_off[r->arg], &v, fpc_len[r->arg]);
		}
		break;
	case RK_XMM: memcpy(s->fxsave + 160 + 16 * r->arg, in, 16); break;
	case RK_MXCSR: memcpy(s->fxsave + 24, &v, 4); break;
	case RK_BASE:
		if (r->arg)
			s->gs.base = v;
		else
			s->fs.base = v;
		break;
	case RK_CR: *cr_field(s, r->arg) = v; break;
	}
	return 0;
}

/* target.xml, made from the table once. */
static const char *target_xml(size_t *len)
{
	static char xml[12288];
	static size_t n;
	if (n)
		goto out;
	static const char *const feature[] = { "org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse",
					       "org.gnu.gdb.i386.segments", "org.trialvm.x86.sys" };
	n = (size_t)snprintf(xml, sizeof(xml),
			     "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
			     "<target version=\"1.0\">\n<architecture>i386:x86-64</architecture>\n");
	for (int f = F_CORE; f <= F_SYS; f++) {
		n += (size_t)snprintf(xml + n, sizeof(xml) - n, "<feature name=\"%s\">\n", feature[f]);
		if (f == F_CORE)
			n += (size_t)snprintf(xml + n, sizeof(xml) - n,
					      "<flags id=\"i386_eflags\" size=\"4\">\n"
					      "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"PF\" start=\"2\" end=\"2\"/>\n"
					      "<field name=\"AF\" start=\"4\" end=\"4\"/><field name=\"ZF\" start=\"6\" end=\"6\"/>\n"
					      "<field name=\"SF\" start=\"7\" end=\"7\"/><field name=\"TF\" start=\"8\" end=\"8\"/>\n"
					      "<field name=\"IF\" start=\"9\" end=\"9\"/><field name=\"DF\" start=\"10\" end=\"10\"/>\n"
					      "<field name=\"OF\" start=\"11\" end=\"11\"/>\n</flags>\n");
		if (f == F_SSE)
			n += (size_t)snprintf(xml + n, sizeof(xml) - n,
					      "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
					      "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
					      "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
					      "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
					      "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
					      "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
					      "<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/>"
					      "<field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>"
					      "<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/>"
					      "<field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/>"
					      "</union>\n");
		for (int i = 0; i < NREGS; i++)
			if (regs[i].feature == f)
				n += (size_t)snprintf(xml + n, sizeof(xml) - n,
						      "<reg name=\"%s\" bitsize=\"%u\" type=\"%s\" group=\"%s\" regnum=\"%d\"/>\n",
						      regs[i].name, regs[i].bits, regs[i].type, regs[i].group, i);
		n += (size_t)snprintf(xml + n, sizeof(xml) - n, "</feature>\n");
	}
	n += (size_t)snprintf(xml + n, sizeof(xml) - n, "</target>\n");
out:
	*len = n;
	return xml;
}

/* ---------------------------------------------------------------- output */

static const char hexd[] = "0123456789abcdef";

static void sink(struct gdb_conn *c, const void *data, size_t len)
{
	if (c->dead)
		return;
	if (!c->g) {
		size_t n = len < c->out_cap - c->out_len ? len : c->out_cap - c->out_len;
		memcpy(c->out + c->out_len, data, n);
		c->out_len += n;
		return;
	}
	const uint8_t *p = data;
	while (len) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			tvm_log("gdb: cannot send to the debugger (%s); closing the connection",
				w < 0 ? strerror(errno) : "nothing sent");
			c->dead = true;
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

/* Send "$data#cs", kept for a resend after a NAK. */
static void put_packet(struct gdb_conn *c, const char *data, size_t len)
{
	if (len > REPLY_MAX)
		len = REPLY_MAX;
	uint8_t sum = 0;
	c->last[0] = '$';
	for (size_t i = 0; i < len; i++) {
		sum = (uint8_t)(sum + (uint8_t)data[i]);
		c->last[1 + i] = data[i];
	}
	c->last[1 + len] = '#';
	c->last[2 + len] = hexd[sum >> 4];
	c->last[3 + len] = hexd[sum & 15];
	c->last_len = len + 4;
	sink(c, c->last, c->last_len);
}

static void put_str(struct gdb_conn *c, const char *s) { put_packet(c, s, strlen(s)); }

static size_t hex_encode(char *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		dst[2 * i] = hexd[src[i] >> 4];
		dst[2 * i + 1] = hexd[src[i] & 15];
	}
	return 2 * len;
}

/* ----------------------------------------------------------------- input */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A hex number of 1 to 16 digits at *s; *s moves past it. */
static int parse_hex(const char **s, uint64_t *v)
{
	uint64_t x = 0;
	int n = 0;
	for (int d; (d = hexval(**s)) >= 0; (*s)++) {
		if (++n > 16)
			return -1;
		x = (x << 4) | (uint64_t)d;
	}
	*v = x;
	return n ? 0 : -1;
}

/* Exactly len bytes from 2*len hex digits. */
static int hex_decode(uint8_t *dst, const char *src, size_t srclen, size_t len)
{
	if (srclen != 2 * len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int a = hexval(src[2 * i]), b = hexval(src[2 * i + 1]);
		if (a < 0 || b < 0)
			return -1;
		dst[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

/* A thread id: -1 (all), 0 (any), or a vCPU's index + 1. *vcpu: -1 for
 * all/any, else the index; -1 when malformed or no such vCPU. */
static int parse_thread(const char *s, int ncpus, int *vcpu)
{
	if (strcmp(s, "-1") == 0 || strcmp(s, "0") == 0) {
		*vcpu = -1;
		return 0;
	}
	uint64_t t;
	if (parse_hex(&s, &t) < 0 || *s || t < 1 || t > (uint64_t)ncpus)
		return -1;
	*vcpu = (int)t - 1;
	return 0;
}

/* ------------------------------------------------------------ VM access */

static int ncpus_of(const struct gdb_conn *c) { return c->g && c->g->vm ? vm_ncpus(c->g->vm) : 1; }

static bool stopped(const struct gdb_conn *c) { return c->g && c->g->vm && vm_debug_stopped(c->g->vm); }

/* The vCPU a request means: the one Hg/Hc named, else the one that stopped. */
static int which(const struct gdb_conn *c, int sel) { return sel >= 0 ? sel : c->g ? c->g->stop.vcpu : 0; }

static struct cpu_state *cpu_of(struct gdb_conn *c, int idx)
{
	struct gdbstub *g = c->g;
	if (g->cache_idx == idx)
		return &g->cache;
	struct tvm_err err = { "" };
	if (vm_capture_cpu(g->vm, idx, &g->cache, &err) < 0) {
		tvm_log("gdb: %s", err.msg);
		g->cache_idx = -1;
		return NULL;
	}
	g->cache_idx = idx;
	return &g->cache;
}

/* Guest-virtual va as vCPU cpu sees it; while paging is off, the loaded
 * kernel's own addresses (its ELF segments) too. */
static int translate(struct gdbstub *g, const struct cpu_state *cpu, uint64_t va, uint64_t *gpa)
{
	if (!(cpu->cr0 & 0x80000000u) && g->have_kernel && boot_entry_virt_to_phys(&g->kernel, va, gpa) == 0)
		return 0;
	struct guest_mem m = vm_guest_mem(g->vm);
	return guest_translate(&m, cpu, va, gpa);
}

/* Read or write up to len bytes at va, page by page; the bytes done. */
static uint64_t mem_access(struct gdbstub *g, const struct cpu_state *cpu, uint64_t va, uint8_t *buf, uint64_t len,
			   bool write)
{
	uint64_t done = 0;
	while (done < len) {
		uint64_t a = va + done, gpa;
		if (a < va) /* past the top of the address space */
			break;
		uint64_t chunk = 0x1000 - (a & 0xfff);
		if (chunk > len - done)
			chunk = len - done;
		if (translate(g, cpu, a, &gpa) < 0)
			break;
		int r = write ? vm_debug_write(g->vm, gpa, buf + done, chunk) : vm_debug_read(g->vm, gpa, buf + done, chunk);
		if (r < 0)
			break;
		done += chunk;
	}
	return done;
}

static void stop_reply(struct gdb_conn *c)
{
	const struct vm_debug_stop *st = &c->g->stop;
	int sig = st->why == TVM_DBG_INTERRUPT ? 2 : 5; /* SIGINT, SIGTRAP */
	const char *why = st->why == TVM_DBG_SWBREAK ? "swbreak:;" : st->why == TVM_DBG_HWBREAK ? "hwbreak:;" : "";
	char b[64];
	snprintf(b, sizeof(b), "T%02xthread:%x;%s", sig, st->vcpu + 1, why);
	put_str(c, b);
	c->waiting = false;
}

static void resume(struct gdb_conn *c, int step)
{
	struct gdbstub *g = c->g;
	struct tvm_err err = { "" };
	g->cache_idx = -1;
	if (vm_debug_resume(g->vm, step, &err) < 0) {
		tvm_log("gdb: %s", err.msg);
		put_str(c, "E01");
		return;
	}
	c->waiting = true;
}

/* Registers: 'g', 'G', 'p', 'P'. */
static void regs_request(struct gdb_conn *c, const char *p, size_t n)
{
	int idx = which(c, c->cur_g);
	struct cpu_state *cpu = cpu_of(c, idx);
	if (!cpu) {
		put_str(c, "E01");
		return;
	}
	uint8_t v[16];
	if (p[0] == 'g') {
		size_t len = 0;
		for (int i = 0; i < NREGS; i++)
			len += hex_encode(c->reply + len, v, reg_get(cpu, i, v));
		put_packet(c, c->reply, len);
		return;
	}
	struct cpu_state nc = *cpu;
	if (p[0] == 'p' || p[0] == 'P') {
		const char *s = p + 1;
		uint64_t r = 0;
		bool parsed = parse_hex(&s, &r) == 0;
		if (!parsed || r >= NREGS || (p[0] == 'p' ? *s != 0 : *s != '=')) {
			put_str(c, parsed && p[0] == 'p' && r >= NREGS && !*s ? "E45" : "E01");
			return;
		}
		unsigned len = reg_get(cpu, (int)r, v);
		if (p[0] == 'p') {
			put_packet(c, c->reply, hex_encode(c->reply, v, len));
			return;
		}
		s++;
		if (hex_decode(v, s, n - (size_t)(s - p), len) < 0 || reg_set(&nc, (int)r, v) < 0) {
			put_str(c, "E01");
			return;
		}
	} else { /* G */
		const char *s = p + 1;
		size_t left = n - 1;
		for (int i = 0; i < NREGS; i++) {
			unsigned len = regs[i].bits / 8;
			if (left < 2 * (size_t)len || hex_decode(v, s, 2 * (size_t)len, len) < 0 || reg_set(&nc, i, v) < 0) {
				put_str(c, "E01");
				return;
			}
			s += 2 * len;
			left -= 2 * (size_t)len;
		}
		if (left) {
			put_str(c, "E01");
			return;
		}
	}
	struct tvm_err err = { "" };
	c->g->cache_idx = -1;
	if (vm_debug_set_cpu(c->g->vm, idx, &nc, &err) < 0) {
		tvm_log("gdb: %s", err.msg);
		put_str(c, "E01");
		return;
	}
	put_str(c, "OK");
}

/* Memory: 'm addr,len', 'M addr,len:hex'. */
static void mem_request(struct gdb_conn *c, const char *p, size_t n)
{
	const char *s = p + 1;
	uint64_t addr, len;
	if (parse_hex(&s, &addr) < 0 || *s++ != ',' || parse_hex(&s, &len) < 0 || (p[0] == 'm' ? *s != 0 : *s != ':')) {
		put_str(c, "E01");
		return;
	}
	struct cpu_state *cpu = cpu_of(c, which(c, c->cur_g));
	if (!cpu) {
		put_str(c, "E01");
		return;
	}
	static uint8_t buf[GDB_PACKET_MAX];
	if (p[0] == 'm') {
		if (len > MEM_MAX)
			len = MEM_MAX; /* gdb asks again for the rest */
		uint64_t got = mem_access(c->g, cpu, addr, buf, len, false);
		if (!got && len) {
			put_str(c, "E14"); /* EFAULT */
			return;
		}
		put_packet(c, c->reply, hex_encode(c->reply, buf, got));
		return;
	}
	s++;
	if (len > sizeof(buf) || hex_decode(buf, s, n - (size_t)(s - p), len) < 0) {
		put_str(c, "E01");
		return;
	}
	put_str(c, mem_access(c->g, cpu, addr, buf, len, true) == len ? "OK" : "E14");
}

/* Breakpoints: 'Z0/Z1,addr,kind' and 'z'. Watchpoints are not offered. */
static void bp_request(struct gdb_conn *c, const char *p)
{
	const char *s = p + 1;
	uint64_t type, addr, kind;
	if (parse_hex(&s, &type) < 0 || *s++ != ',' || parse_hex(&s, &addr) < 0 || *s++ != ',' ||
	    parse_hex(&s, &kind) < 0) {
		put_str(c, "E01");
		return;
	}
	if (type > 1) {
		put_str(c, "");
		return;
	}
	struct vm *vm = c->g->vm;
	if (p[0] == 'z') {
		vm_debug_remove(vm, type == 1, addr);
		put_str(c, "OK");
		return;
	}
	struct cpu_state *cpu = cpu_of(c, which(c, c->cur_g));
	uint64_t gpa = 0;
	struct tvm_err err = { "" };
	if (!cpu || translate(c->g, cpu, addr, &gpa) < 0)
		tvm_seterr(&err, "0x%llx is not mapped in the guest's page tables now (an application's code is "
				 "mapped once trialos has loaded it)", (unsigned long long)addr);
	else if (vm_debug_insert(vm, type == 1, addr, gpa, &err) == 0) {
		put_str(c, "OK");
		return;
	}
	tvm_log("gdb: no breakpoint at 0x%llx: %s", (unsigned long long)addr, err.msg);
	put_str(c, "E01");
}

/* 'vCont;ACTION[:thread]...': a step of one vCPU, or all continue. */
static void vcont_request(struct gdb_conn *c, const char *p)
{
	int step = -2; /* none */
	char tmp[64];
	for (const char *s = p + 5; *s == ';';) {
		s++;
		char act = *s++;
		if (act == 'C' || act == 'S') { /* a signal for the guest: not deliverable, run or step as asked */
			uint64_t sig;
			if (parse_hex(&s, &sig) < 0) {
				put_str(c, "E01");
				return;
			}
			act = act == 'C' ? 'c' : 's';
		}
		if (act != 'c' && act != 's' && act != 't') {
			put_str(c, "E01");
			return;
		}
		int vcpu = -1;
		if (*s == ':') {
			s++;
			size_t k = strcspn(s, ";");
			if (k >= sizeof(tmp)) {
				put_str(c, "E01");
				return;
			}
			memcpy(tmp, s, k);
			tmp[k] = 0;
			if (parse_thread(tmp, ncpus_of(c), &vcpu) < 0) {
				put_str(c, "E01");
				return;
			}
			s += k;
		}
		if (act == 's' && step == -2)
			step = vcpu >= 0 ? vcpu : which(c, c->cur_c);
		if (*s && *s != ';') {
			put_str(c, "E01");
			return;
		}
	}
	resume(c, step >= 0 ? step : -1);
}

/* 'c [addr]' and 's [addr]'. */
static void cont_request(struct gdb_conn *c, const char *p)
{
	int idx = which(c, c->cur_c);
	if (p[1]) {
		const char *s = p + 1;
		uint64_t addr;
		struct cpu_state *cpu = cpu_of(c, idx);
		struct tvm_err err = { "" };
		if (parse_hex(&s, &addr) < 0 || *s || !cpu) {
			put_str(c, "E01");
			return;
		}
		struct cpu_state nc = *cpu;
		nc.rip = addr;
		c->g->cache_idx = -1;
		if (vm_debug_set_cpu(c->g->vm, idx, &nc, &err) < 0) {
			tvm_log("gdb: %s", err.msg);
			put_str(c, "E01");
			return;
		}
	}
	resume(c, p[0] == 's' ? idx : -1);
}

static void qxfer_request(struct gdb_conn *c, const char *p)
{
	const char *pre = "qXfer:features:read:target.xml:";
	if (strncmp(p, pre, strlen(pre)) != 0) {
		put_str(c, "E00");
		return;
	}
	const char *s = p + strlen(pre);
	uint64_t off, len;
	if (parse_hex(&s, &off) < 0 || *s++ != ',' || parse_hex(&s, &len) < 0 || *s) {
		put_str(c, "E01");
		return;
	}
	size_t xl;
	const char *xml = target_xml(&xl);
	if (off > xl) {
		put_str(c, "E01");
		return;
	}
	if (len > GDB_PACKET_MAX - 16)
		len = GDB_PACKET_MAX - 16;
	size_t n = xl - off < len ? xl - off : len;
	c->reply[0] = off + n < xl ? 'm' : 'l';
	memcpy(c->reply + 1, xml + off, n); /* no byte of it needs escaping: no $ # } * */
	put_packet(c, c->reply, n + 1);
}

static void kill_vm(struct gdb_conn *c)
{
	struct tvm_event ev = { .kind = TVM_EV_QUIT };
	snprintf(ev.detail, sizeof(ev.detail), "the debugger killed the VM");
	vm_raise(c->g->vm, -1, &ev);
	c->dead = true;
}

/* One packet's payload, NUL-terminated (the client's bytes; n of them). */
static void handle_packet(struct gdb_conn *c, const char *p, size_t n)
{
	if (strlen(p) != n) { /* a NUL inside */
		put_str(c, "E01");
		return;
	}
	if (strncmp(p, "qSupported", 10) == 0) {
		char b[160];
		snprintf(b, sizeof(b), "PacketSize=%x;qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+",
			 GDB_PACKET_MAX);
		put_str(c, b);
		return;
	}
	if (strcmp(p, "QStartNoAckMode") == 0) {
		put_str(c, "OK");
		c->noack = true;
		return;
	}
	if (strncmp(p, "qXfer:", 6) == 0) {
		qxfer_request(c, p);
		return;
	}
	if (strcmp(p, "vCont?") == 0) {
		put_str(c, "vCont;c;C;s;S");
		return;
	}
	if (strcmp(p, "qAttached") == 0) {
		put_str(c, "1");
		return;
	}
	if (strcmp(p, "qSymbol::") == 0) {
		put_str(c, "OK");
		return;
	}
	if (strcmp(p, "qfThreadInfo") == 0) {
		size_t len = 0;
		c->reply[len++] = 'm';
		for (int i = 0; i < ncpus_of(c); i++)
			len += (size_t)snprintf(c->reply + len, sizeof(c->reply) - len, "%s%x", i ? "," : "", i + 1);
		put_packet(c, c->reply, len);
		return;
	}
	if (strcmp(p, "qsThreadInfo") == 0) {
		put_str(c, "l");
		return;
	}
	if (strcmp(p, "qC") == 0) {
		char b[32];
		snprintf(b, sizeof(b), "QC%x", which(c, c->cur_g) + 1);
		put_str(c, b);
		return;
	}
	if (strncmp(p, "qThreadExtraInfo,", 17) == 0) {
		int vcpu;
		char text[32];
		if (parse_thread(p + 17, ncpus_of(c), &vcpu) < 0 || vcpu < 0) {
			put_str(c, "E01");
			return;
		}
		int tl = snprintf(text, sizeof(text), "vCPU %d", vcpu);
		put_packet(c, c->reply, hex_encode(c->reply, (const uint8_t *)text, (size_t)tl));
		return;
	}
	if (p[0] == 'H' && (p[1] == 'g' || p[1] == 'c')) {
		int vcpu;
		if (parse_thread(p + 2, ncpus_of(c), &vcpu) < 0) {
			put_str(c, "E01");
			return;
		}
		*(p[1] == 'g' ? &c->cur_g : &c->cur_c) = vcpu;
		if (p[1] == 'g' && c->g)
			c->g->cache_idx = -1;
		put_str(c, "OK");
		return;
	}
	if (p[0] == 'T') {
		int vcpu;
		put_str(c, parse_thread(p + 1, ncpus_of(c), &vcpu) == 0 && vcpu >= 0 ? "OK" : "E01");
		return;
	}
	/* Everything below needs a VM; all but '?', kill and detach a stopped one. */
	if (!c->g || !c->g->vm) {
		put_str(c, p[0] == '?' ? "W00" : "E01");
		return;
	}
	if (p[0] == '?') {
		if (stopped(c))
			stop_reply(c);
		else
			c->waiting = true; /* the stop vm_debug_poll reports answers it */
		return;
	}
	if (strcmp(p, "k") == 0 || strncmp(p, "vKill", 5) == 0) {
		if (p[0] == 'v')
			put_str(c, "OK");
		kill_vm(c);
		return;
	}
	if (p[0] == 'D') {
		vm_debug_remove_all(c->g->vm);
		if (stopped(c))
			resume(c, -1);
		c->waiting = false;
		put_str(c, "OK");
		c->dead = true;
		return;
	}
	if (!stopped(c)) {
		put_str(c, "E01");
		return;
	}
	switch (p[0]) {
	case 'g':
	case 'G':
	case 'p':
	case 'P':
		regs_request(c, p, n);
		return;
	case 'm':
	case 'M':
		mem_request(c, p, n);
		return;
	case 'Z':
	case 'z':
		bp_request(c, p);
		return;
	case 'c':
	case 's':
		cont_request(c, p);
		return;
	}
	if (strncmp(p, "vCont;", 6) == 0) {
		vcont_request(c, p);
		return;
	}
	put_str(c, ""); /* not supported */
}

/* Take whole packets, acks and interrupts off the front of c->in. */
static void process_input(struct gdb_conn *c)
{
	size_t i = 0;
	while (i < c->in_len && !c->dead) {
		uint8_t ch = c->in[i];
		if (ch == 0x03) { /* Ctrl-C */
			i++;
			if (c->g && c->g->vm && !stopped(c)) {
				vm_debug_interrupt(c->g->vm);
				c->waiting = true;
			}
			continue;
		}
		if (ch == '-' && !c->noack) {
			i++;
			if (c->last_len)
				sink(c, c->last, c->last_len);
			continue;
		}
		if (ch != '$') { /* '+' and anything between packets */
			i++;
			continue;
		}
		uint8_t *hash = memchr(c->in + i + 1, '#', c->in_len - i - 1);
		if (!hash || (size_t)(hash - c->in) + 3 > c->in_len)
			break; /* not whole yet */
		size_t start = i + 1, n = (size_t)(hash - c->in) - start;
		uint8_t sum = 0;
		for (size_t k = 0; k < n; k++)
			sum = (uint8_t)(sum + c->in[start + k]);
		int h = hexval((char)hash[1]), l = hexval((char)hash[2]);
		i = (size_t)(hash - c->in) + 3;
		if (h < 0 || l < 0 || (uint8_t)(h << 4 | l) != sum) {
			if (!c->noack)
				sink(c, "-", 1);
			continue;
		}
		if (!c->noack)
			sink(c, "+", 1);
		static char pkt[GDB_PACKET_MAX + 8];
		memcpy(pkt, c->in + start, n);
		pkt[n] = 0;
		handle_packet(c, pkt, n);
	}
	memmove(c->in, c->in + i, c->in_len - i);
	c->in_len -= i;
	if (c->in_len == sizeof(c->in)) {
		tvm_log("gdb: a packet longer than %d bytes; closing the connection", GDB_PACKET_MAX);
		c->dead = true;
	}
}

static struct gdb_conn *conn_new(struct gdbstub *g, int fd)
{
	struct gdb_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->g = g;
	c->fd = fd;
	c->cur_g = c->cur_c = -1;
	return c;
}

struct gdb_conn *gdb_conn_new(void) { return conn_new(NULL, -1); }
void gdb_conn_free(struct gdb_conn *c) { free(c); }

size_t gdb_conn_feed(struct gdb_conn *c, const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
	c->out = out;
	c->out_len = 0;
	c->out_cap = cap;
	while (len && !c->dead) {
		size_t n = sizeof(c->in) - c->in_len < len ? sizeof(c->in) - c->in_len : len;
		memcpy(c->in + c->in_len, data, n);
		c->in_len += n;
		data += n;
		len -= n;
		process_input(c);
	}
	return c->out_len;
}

/* ----------------------------------------------------- the TCP endpoint */

static void drop_client(struct gdbstub *g)
{
	struct gdb_conn *c = g->c;
	if (!c)
		return;
	evloop_del(g->loop, c->fd);
	close(c->fd);
	free(c);
	g->c = NULL;
	if (g->vm && vm_debug_on(g->vm)) { /* a debugger that left without detaching: the guest goes on */
		if (vm_debug_stopped(g->vm)) {
			vm_debug_remove_all(g->vm);
			struct tvm_err err = { "" };
			if (vm_debug_resume(g->vm, -1, &err) < 0)
				tvm_log("gdb: %s", err.msg);
		} else {
			g->detach_pending = true;
			vm_debug_interrupt(g->vm);
		}
	}
}

static void on_client(void *arg, int fd, uint32_t events)
{
	struct gdbstub *g = arg;
	struct gdb_conn *c = g->c;
	(void)events;
	if (!c || c->fd != fd)
		return;
	ssize_t r = read(fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		tvm_log("gdb: the debugger disconnected%s", g->vm ? "; the guest runs on" : "");
		c->dead = true;
	} else {
		c->in_len += (size_t)r;
		process_input(c);
	}
	if (c->dead)
		drop_client(g);
}

static void on_accept(void *arg, int fd, uint32_t events)
{
	struct gdbstub *g = arg;
	(void)events;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (g->c) {
		tvm_log("gdb: a debugger is attached already; refusing another connection");
		close(cfd);
		return;
	}
	struct tvm_err err = { "" };
	struct gdb_conn *c = conn_new(g, cfd);
	if (!c || evloop_add(g->loop, cfd, on_client, g, &err) < 0) {
		tvm_log("gdb: cannot take the connection: %s", c ? err.msg : "out of memory");
		free(c);
		close(cfd);
		return;
	}
	g->c = c;
	g->detach_pending = false;
	tvm_log("gdb: debugger attached");
	if (g->vm && !vm_debug_stopped(g->vm))
		vm_debug_interrupt(g->vm); /* gdb expects a stopped target */
}

struct gdbstub *gdbstub_open(const char *spec, struct evloop *loop, struct tvm_err *err)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(spec, ':'), *port_s = spec;
	if (colon) {
		size_t hl = (size_t)(colon - spec);
		if (hl == 0 || hl >= sizeof(host)) {
			tvm_seterr(err, "--gdb %s: give PORT or ADDRESS:PORT (an IPv4 address)", spec);
			return NULL;
		}
		memcpy(host, spec, hl);
		host[hl] = 0;
		port_s = colon + 1;
	}
	char *end;
	errno = 0;
	long port = strtol(port_s, &end, 10);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (!*port_s || *end || errno || port < 0 || port > 65535) {
		tvm_seterr(err, "--gdb %s: the port must be a number from 0 to 65535 (0: any free one)", spec);
		return NULL;
	}
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		tvm_seterr(err, "--gdb %s: '%s' is not an IPv4 address", spec, host);
		return NULL;
	}
	struct gdbstub *g = calloc(1, sizeof(*g));
	if (!g) {
		tvm_seterr(err, "out of memory");
		return NULL;
	}
	g->cache_idx = -1;
	g->loop = loop;
	g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	/* Accepted sockets inherit these (the sandbox has no setsockopt). */
	struct timeval tv = { .tv_sec = SEND_TIMEOUT_S };
	socklen_t al = sizeof(a);
	if (g->lfd < 0 || setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(g->lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(g->lfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(g->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(g->lfd, 1) < 0 ||
	    getsockname(g->lfd, (struct sockaddr *)&a, &al) < 0) {
		tvm_seterr(err, "--gdb %s: %s", spec, strerror(errno));
		if (g->lfd >= 0)
			close(g->lfd);
		free(g);
		return NULL;
	}
	if (evloop_add(loop, g->lfd, on_accept, g, err) < 0) {
		close(g->lfd);
		free(g);
		return NULL;
	}
	tvm_log("gdb: waiting for a debugger on %s:%u (gdb: target remote %s:%u)", host, ntohs(a.sin_port), host,
		ntohs(a.sin_port));
	return g;
}

void gdbstub_close(struct gdbstub *g)
{
	if (!g)
		return;
	g->vm = NULL;
	drop_client(g);
	evloop_del(g->loop, g->lfd);
	close(g->lfd);
	free(g);
}

int gdbstub_attach(struct gdbstub *g, struct vm *vm, const struct boot_entry *kernel, struct tvm_err *err)
{
	if (vm_debug_start(vm, true, err) < 0)
		return -1;
	g->vm = vm;
	g->have_kernel = kernel != NULL;
	if (kernel)
		g->kernel = *kernel;
	g->cache_idx = -1;
	g->stop = (struct vm_debug_stop){ .why = TVM_DBG_START };
	return 0;
}

int gdbstub_poll(struct gdbstub *g)
{
	if (!g || !g->vm)
		return -1;
	struct vm_debug_stop st;
	int wait;
	if (!vm_debug_poll(g->vm, &st, &wait))
		return wait;
	g->stop = st;
	g->cache_idx = -1;
	if (st.at_exit)
		tvm_log("gdb: the replay stopped for the interrupt at exit %llu of vCPU %d (a place its log names)",
			(unsigned long long)st.exit_no, st.vcpu);
	if (g->detach_pending && !g->c) { /* the debugger left while it ran */
		g->detach_pending = false;
		vm_debug_remove_all(g->vm);
		struct tvm_err err = { "" };
		if (vm_debug_resume(g->vm, -1, &err) < 0)
			tvm_log("gdb: %s", err.msg);
		return -1;
	}
	if (g->c && g->c->waiting) {
		stop_reply(g->c);
		if (g->c->dead)
			drop_client(g);
	}
	return -1;
}

void gdbstub_vm_gone(struct gdbstub *g, const struct tvm_event *ev)
{
	if (!g)
		return;
	struct gdb_conn *c = g->c;
	if (c && !c->dead) {
		char text[300], b[2 * sizeof(text) + 2];
		int tl = snprintf(text, sizeof(text), "trialvm: %s\n", ev->detail[0] ? ev->detail : "the VM stopped");
		if (tl >= (int)sizeof(text))
			tl = (int)sizeof(text) - 1;
		if (c->waiting) {
			b[0] = 'O';
			put_packet(c, b, 1 + hex_encode(b + 1, (const uint8_t *)text, (size_t)tl));
		}
		bool crash = ev->kind == TVM_EV_APP_FAULT || ev->kind == TVM_EV_PANIC || ev->kind == TVM_EV_TRIPLE_FAULT ||
			     ev->kind == TVM_EV_GUEST_CORE || ev->kind == TVM_EV_INTERNAL_ERROR;
		if (ev->kind == TVM_EV_POWEROFF)
			snprintf(b, sizeof(b), "W%02x", ev->exit_code & 0xff);
		else if (ev->kind == TVM_EV_REPLAY_END)
			snprintf(b, sizeof(b), "W00");
		else
			snprintf(b, sizeof(b), "X%02x", crash ? 11 : 9); /* SIGSEGV, SIGKILL */
		put_str(c, b);
	}
	g->vm = NULL;
	drop_client(g);
}
