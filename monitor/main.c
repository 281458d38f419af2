/* monitor/main.c - the trialvm command line: the composition root that wires
 * the VM, its devices, the loaders and the crash monitor together. */
#include <errno.h>
#include <stdarg.h>
#include <gelf.h>
#include <getopt.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../devices/devices.h"
#include "../devices/virtio.h"
#include "../devices/virtio_blk.h"
#include "../guests/include/trialvm_abi.h"
#include "../images/image.h"
#include "../images/feedback.h"
#include "../images/launch.h"
#include "../images/package.h"
#include "../reporter/inspect.h"
#include "../reporter/spool.h"
#include "../vmm/cpu_state.h"
#include "../vmm/evlog.h"
#include "../vmm/fileio.h"
#include "../vmm/guestmem.h"
#include "../vmm/iothread.h"
#include "../vmm/loader.h"
#include "../vmm/evloop.h"
#include "../vmm/sandbox.h"
#include "../vmm/snapfile.h"
#include "../vmm/snapshot.h"
#include "../vmm/vmstate.h"
#include "../vmm/stopsig.h"
#include "../vmm/util.h"
#include "../vmm/vm.h"
#include "control.h"
#include "crash.h"
#include "disasm.h"
#include "hang.h"
#include "ramcache.h"
#include "gdbstub.h"
#include "replay.h"
#include "report.h"
#include "snapshots.h"
#include "symbols.h"


static const char usage_main[] =
	"Usage: trialvm COMMAND [OPTIONS]\n"
	"\n"
	"trialvm runs trial software in a KVM virtual machine and captures what is\n"
	"needed to understand its crashes.\n"
	"\n"
	"Commands:\n"
	"  run        boot a kernel (or an application on trialos) in a VM\n"
	"  inspect    validate and summarise a crash dump or report file\n"
	"  disk       list or merge what a trial wrote to a disk (trialvm disk --help)\n"
	"  image      build a vendor's Linux master image, build and verify signed\n"
	"             trial packages (trialvm image --help)\n"
	"  trust      the vendor keys you accept trial packages from (trialvm trust\n"
	"             --help)\n"
	"  launch     run a vendor's signed trial package (trialvm launch --help)\n"
	"  report     bundle a crash report against its package, show a bundle,\n"
	"             rebuild the report from one (trialvm report --help)\n"
	"  spool      the crash reports waiting to be sent: list, send, drop\n"
	"             (trialvm spool --help)\n"
	"  ctl        talk to a running 'trialvm run --control SOCKET'\n"
	"  snapshot   write a booted checkpoint, check and show snapshot files\n"
	"             (trialvm snapshot --help); run --restore resumes one\n"
	"  replay     run a recorded event log again from its snapshot, every input\n"
	"             from the log, and stop where the guest diverges from it\n"
	"             (trialvm replay --help)\n"
	"\n"
	"Options:\n"
	"  -h, --help     show this help (trialvm COMMAND --help for a command)\n"
	"  -V, --version  show the version\n"
	"\n"
	"Exit status of 'trialvm run': the guest's own status when it powers off or\n"
	"its application exits; 123 the guest or its application crashed; 125 trialvm\n"
	"failed; 126 usage error; 122 (replay) the guest diverged from the log.\n";

static const char usage_run[] =
	"Usage: trialvm run [OPTIONS] --kernel FILE\n"
	"       trialvm run [OPTIONS] --image DIR [-- ARGS...]\n"
	"       trialvm run [OPTIONS] --app PROGRAM [-- ARGS...]\n"
	"\n"
	"Boot a kernel in a new VM and run it until it powers off or crashes.\n"
	"\n"
	"What to boot:\n"
	"  --kernel FILE        kernel: a PVH ELF (trialos), a Linux vmlinux or bzImage\n"
	"  --initrd FILE        initial ramdisk (for trialos: the application ELF)\n"
	"  --cpio FILE          trialos: a cpio (newc) archive whose files the\n"
	"                       application can open\n"
	"  --image DIR          a master image 'trialvm image linux' built: its kernel,\n"
	"                       initramfs, command line, machine size and root disk\n"
	"                       (first, before any --disk); every part's sha256 is\n"
	"                       checked first; ARGS after '--' replace the arguments\n"
	"                       the image gives its program (no '\"' nor control\n"
	"                       characters in them)\n"
	"  --cmdline STR        kernel command line (with --image: appended to its own)\n"
	"  --app PROGRAM        run a static x86-64 Linux program on the bundled trialos\n"
	"                       kernel; arguments after '--' become its argv[1...]\n"
	"  --trialos FILE       the trialos kernel to use with --app (default: the one\n"
	"                       built next to trialvm, or $TRIALVM_TRIALOS)\n"
	"  --no-decompress      bzImage: let the kernel decompress itself in the guest\n"
	"                       instead of decompressing on the host\n"
	"\n"
	"Disks:\n"
	"  --disk FILE[,ro][,overlay=PATH]  a virtio-blk disk whose master image FILE\n"
	"                       is never written: guest writes go to a copy-on-write\n"
	"                       overlay (PATH); ,ro gives the guest a read-only disk\n"
	"                       (up to 4 disks: /dev/vda.. in trialos)\n"
	"  --disk-mode MODE     discard (default: a fresh overlay per run, deleted at\n"
	"                       exit, kept after a crash) or persist (the overlay,\n"
	"                       default ./FILE.overlay, survives runs)\n"
	"\n"
	"Machine:\n"
	"  --mem SIZE           guest memory, e.g. 64M, 1G (default 128M)\n"
	"  --cpus N             number of vCPUs (default 1, at most 64)\n"
	"\n"
	"Crashes:\n"
	"  --report-dir DIR     where crash reports go (default ./trialvm-reports)\n"
	"  --no-report          print the diagnosis only, write no report\n"
	"  --on-crash ACTION    exit (default), restart (a fresh VM from the same\n"
	"                       images), or pause (keep the crashed VM until a signal)\n"
	"  --max-restarts N     with --on-crash restart: at most N restarts (default 3)\n"
	"  --crash-on SYMBOL    treat reaching kernel function SYMBOL as a crash (a\n"
	"                       hardware breakpoint, or int3 where those do not\n"
	"                       fire; repeatable, up to 4)\n"
	"  --kernel-symbols FILE  vmlinux or System.map for --crash-on and reports\n"
	"  --hang-timeout SECS  report a hang when a vCPU makes no progress (no exits,\n"
	"                       RIP in one place) for SECS seconds\n"
	"\n"
	"Snapshots (README \"Snapshots\"):\n"
	"  --snapshot-every SECS  write a snapshot of the whole machine every SECS\n"
	"                       seconds (0.1 to 86400) into --snapshot-dir\n"
	"  --snapshot-dir DIR   where they go, as snap-NNNNNN.tvs (created if missing)\n"
	"  --snapshot-keep N    keep only the newest N (default: all)\n"
	"  --no-record          with snapshots, do not record the event log (every\n"
	"                       input the guest received, for replay: DIR/start-\n"
	"                       NNNNNN.tvl from the start, snap-NNNNNN.tvl from each\n"
	"                       snapshot; README \"Record and replay\")\n"
	"  --replay LOG         replay an event log segment (trialvm replay --help):\n"
	"                       every input from LOG, every exit checked against it\n"
	"  --until crash|snapshot|exit N  a replay runs through the following\n"
	"                       segments to the log's end (crash, the default), to\n"
	"                       the first segment's end (snapshot), or stops after\n"
	"                       vCPU 0's exit N (status 0; with --gdb it stops for\n"
	"                       the debugger there)\n"
	"  --state-hash         at the end, print a sha256 of the vCPUs' registers and\n"
	"                       all guest memory (a recorded run and its replay give\n"
	"                       the same)\n"
	"  --restore SNAPSHOT   resume a snapshot instead of booting: memory, vCPUs\n"
	"                       and devices as they were; the images (given, or the\n"
	"                       ones the snapshot names) must be the ones it was\n"
	"                       taken from\n"
	"\n"
	"Control:\n"
	"  --control SOCKET     a UNIX socket (mode 0600) taking JSON-line requests:\n"
	"                       status, pause, resume, snapshot, report, quit\n"
	"                       (trialvm ctl)\n"
	"  --report-every SECS  write a report of the running machine (as at a crash,\n"
	"                       kind \"live\") into --report-dir every SECS seconds\n"
	"                       (1 to 86400); the guest is paused while it is written\n"
	"\n"
	"Console:\n"
	"  --console-log FILE   also write the guest console to FILE\n"
	"  -q, --quiet          do not copy the guest console to stdout\n"
	"\n"
	"Debugging:\n"
	"  --gdb [ADDR:]PORT    serve gdb's remote protocol on TCP PORT (127.0.0.1\n"
	"                       unless ADDR; 0: any free port, printed): the VM starts\n"
	"                       stopped until gdb continues (README \"Debugging with\n"
	"                       gdb\"; not with --crash-on)\n"
	"  -v, --verbose        log unclaimed device accesses and other details\n"
	"  --no-sandbox         debugging only: run without the seccomp sandbox\n"
	"  --stats              print VM exit counts and run time at the end\n"
	"\n"
	"Standard input feeds the guest's serial console when it is a terminal or a pipe.\n"
	"Exit status: the guest's own status; 123 guest crashed; 125 trialvm error;\n"
	"126 usage error.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "trialvm: %s\nTry 'trialvm run --help'.\n", buf);
	return TVM_EXIT_USAGE;
}

/* Check that PROGRAM is something trialos can run: a static x86-64 ELF. */
static int check_app(const char *path, struct tvm_err *err)
{
	uint8_t *data;
	size_t len;
	if (read_file(path, 1ull << 30, &data, &len, err) < 0)
		return -1;
	int rc = -1;
	elf_version(EV_CURRENT);
	Elf *e = elf_memory((char *)data, len);
	GElf_Ehdr eh;
	if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh)) {
		tvm_seterr(err, "--app %s is not an ELF executable", path);
		goto out;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		tvm_seterr(err, "--app %s is not an x86-64 (64-bit) program", path);
		goto out;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		tvm_seterr(err, "--app %s is not an executable (ELF type %u)", path, eh.e_type);
		goto out;
	}
	size_t n;
	if (elf_getphdrnum(e, &n) != 0) {
		tvm_seterr(err, "--app %s has a corrupt program header table", path);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph)) {
			tvm_seterr(err, "--app %s has a corrupt program header table", path);
			goto out;
		}
		if (ph.p_type == PT_INTERP) {
			tvm_seterr(err, "--app %s is dynamically linked; trialos runs static programs only "
					"(link with -static)", path);
			goto out;
		}
	}
	rc = 0;
out:
	if (e)
		elf_end(e);
	free(data);
	return rc;
}

/* Quote one word for the trialos command line: "..." with \ and " escaped. */
static int append_quoted(char *buf, size_t cap, size_t *pos, const char *word)
{
	if (*pos + 3 >= cap)
		return -1;
	if (*pos)
		buf[(*pos)++] = ' ';
	buf[(*pos)++] = '"';
	for (const char *p = word; *p; p++) {
		if (*pos + 3 >= cap)
			return -1;
		if (*p == '"' || *p == '\\')
			buf[(*pos)++] = '\\';
		buf[(*pos)++] = *p;
	}
	buf[(*pos)++] = '"';
	buf[*pos] = 0;
	return 0;
}


typedef int (*device_init_fn)(struct vm *, struct tvm_err *);
/* Device init order, declared: each entry is logged by name if it fails. */
static const struct { const char *name; device_init_fn init; } device_inits[] = {
	{ "uart", uart_init },
	{ "system ports", sysdev_init },
	{ "hypercall", hcall_init },
};
/* After the disks, which take the first virtio-mmio slots. */
static const struct { const char *name; device_init_fn init; } virtio_inits[] = {
	{ "virtio-console", virtio_console_init },
	{ "virtio-rng", virtio_rng_init },
};
#define MAX_DISKS ((int)TVM_VIRTIO_MMIO_SLOTS - 2) /* with --image: one fewer (the core channel) */

/* Everything `trialvm run` decided, for one VM after another. */
struct run_settings {
	struct vm_config cfg;
	struct load_opts lo;
	const char *app, *kernel_symbols, *report_dir;
	struct disk_spec disks[MAX_DISKS];
	int ndisks;
	enum disk_mode disk_mode;
	uint64_t bp_addr[4];
	int ncrash_on;
	enum on_crash { ON_CRASH_EXIT, ON_CRASH_RESTART, ON_CRASH_PAUSE } on_crash;
	double hang_timeout;
	bool stats;
	char *trialos_found;     /* owned: the trialos path found for --app */
	struct snapshots_cfg snaps;
	const char *restore;     /* --restore SNAPSHOT */
	struct snap_reader *restore_r; /* it, opened and checked (restore_chain's last) */
	struct snap_reader **restore_chain; /* owned: its full ancestor first, then each child */
	int restore_n;
	struct snap_header images; /* the images' hashes (snapshots and restores) */
	struct vs_out origin;    /* owned: the origin section of snapshots written */
	char ram_cache[4096];    /* --restore: the chain's memory, materialised (vm_config.ram_file) */
	const char *control_path; /* --control SOCKET */
	const char *gdb_spec;    /* --gdb [ADDR:]PORT */
	struct gdbstub *gdb;     /* owned, for the whole run */
	struct control *control; /* owned, for the whole run */
	double report_every;     /* --report-every SECS; 0: none */
	bool core_channel;       /* --image: the core channel device (a Linux guest's crashed processes) */
	const char *replay_log;  /* --replay LOG (trialvm replay) */
	uint64_t until_exit;     /* --until exit N; 0: crash (the end) */
	bool until_snapshot;     /* --until snapshot */
	bool state_hash;         /* --state-hash */
	struct evloop *loop;     /* owned: the main thread's event loop, for every VM */
};

/* vm_run's main hook: the snapshots and the periodic live reports (the
 * control socket is served by the event loop itself). */
struct main_hook {
	struct snapshots *snaps;
	struct gdbstub *gdb;
	const struct crash_ctx *ctx;
	double report_every;
	uint64_t next_report_ns;
};

static int min_wait(int a, int b) { return a < 0 ? b : b < 0 ? a : a < b ? a : b; }

static int main_hook(struct vm *vm, void *arg)
{
	struct main_hook *h = arg;
	int wait = h->snaps ? snapshots_hook(vm, h->snaps) : -1;
	if (h->gdb)
		wait = min_wait(wait, gdbstub_poll(h->gdb));
	if (h->report_every > 0 && !vm_stop_pending(vm)) {
		uint64_t now = now_ns();
		if (now >= h->next_report_ns) {
			char path[4096];
			double pause_ms = 0;
			struct tvm_err err = { "" };
			if (crash_live_report(h->ctx, "--report-every", path, sizeof(path), &pause_ms, &err) == 0)
				tvm_log("report: %s (the guest was paused %.1f ms)", path, pause_ms);
			else
				tvm_log("warning: the periodic report was not written: %s", err.msg);
			now = now_ns();
			h->next_report_ns = now + (uint64_t)(h->report_every * 1e9);
		}
		wait = min_wait(wait, (int)((h->next_report_ns - now + 999999) / 1000000));
	}
	return wait;
}

/* Where a software breakpoint at kernel address va goes in guest memory:
 * by the kernel's ELF segments as the loader placed them, or, in a
 * restored machine, through its own page tables (vCPU 0's). */
static int crash_on_gpa(struct vm *vm, const struct run_settings *rs, const struct boot_entry *entry, uint64_t va,
			uint64_t *gpa, struct tvm_err *err)
{
	if (rs->restore) {
		struct cpu_state cpu;
		struct guest_mem m = vm_guest_mem(vm);
		if (vm_capture_cpu(vm, 0, &cpu, err) < 0)
			return -1;
		if (!(cpu.cr0 & 0x80000000u))
			return tvm_seterr(err, "hardware breakpoints do not fire on this machine's KVM, and the snapshot "
					       "was taken before the guest turned paging on, so kernel address 0x%llx has "
					       "no place in guest memory yet; restore a snapshot taken after the kernel "
					       "started",
					  (unsigned long long)va);
		if (guest_translate(&m, &cpu, va, gpa) < 0)
			return tvm_seterr(err, "hardware breakpoints do not fire on this machine's KVM, and address 0x%llx "
					       "is not mapped in the restored guest's page tables, so no software "
					       "breakpoint can go there either",
					  (unsigned long long)va);
		return 0;
	}
	if (boot_entry_virt_to_phys(entry, va, gpa) < 0)
		return tvm_seterr(err, "hardware breakpoints do not fire on this machine's KVM, and address 0x%llx "
				       "is in no segment of the loaded kernel, so no software breakpoint can go "
				       "there either (a bzImage that decompresses itself in the guest has none: "
				       "drop --no-decompress)",
				  (unsigned long long)va);
	return 0;
}

/* --crash-on: hardware breakpoints where they fire; else int3 written into
 * the kernel in guest memory (crash_on_gpa). */
static int arm_crash_on(struct vm *vm, const struct run_settings *rs, const struct boot_entry *entry,
			struct tvm_err *err)
{
	enum tvm_bp_kind kind;
	if (vm_breakpoint_kind(&kind, err) < 0)
		return -1;
	if (kind == TVM_BP_HW)
		return vm_set_hw_breakpoints(vm, rs->bp_addr, rs->ncrash_on, err);
	uint64_t gpa[TVM_MAX_SW_BREAKPOINTS];
	for (int i = 0; i < rs->ncrash_on; i++)
		if (crash_on_gpa(vm, rs, entry, rs->bp_addr[i], &gpa[i], err) < 0)
			return -1;
	tvm_debug("--crash-on: hardware breakpoints do not fire on this KVM; using %s", vm_breakpoint_kind_name(kind));
	return vm_set_sw_breakpoints(vm, kind, rs->bp_addr, gpa, rs->ncrash_on, err);
}

/* Create a VM from the settings, run it until it ends, handle how it ended
 * (crash report, disks), destroy it. Returns the exit status; *crashed says
 * whether the guest crashed. */
static int run_once(struct run_settings *rs, bool *crashed)
{
	struct tvm_err err = { "" };
	int status = TVM_EXIT_ERROR;
	*crashed = false;
	struct vm *vm = vm_create(&rs->cfg, &err);
	if (!vm) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	bool ok = true;
	for (size_t i = 0; ok && i < sizeof(device_inits) / sizeof(device_inits[0]); i++)
		if (device_inits[i].init(vm, &err) < 0) {
			tvm_log("error: device %s: %s", device_inits[i].name, err.msg);
			ok = false;
		}
	/* virtio devices in slot order (trialvm_abi.h): disks, console, rng. */
	struct virtio_blk *blk[MAX_DISKS] = { 0 };
	virtio_mmio_reset_registry();
	for (int i = 0; ok && i < rs->ndisks; i++)
		if (virtio_blk_add(vm, &rs->disks[i], rs->disk_mode, &blk[i], &err) < 0) {
			tvm_log("error: --disk %s: %s", rs->disks[i].path, err.msg);
			ok = false;
		}
	for (size_t i = 0; ok && i < sizeof(virtio_inits) / sizeof(virtio_inits[0]); i++)
		if (virtio_inits[i].init(vm, &err) < 0) {
			tvm_log("error: device %s: %s", virtio_inits[i].name, err.msg);
			ok = false;
		}
	if (ok && rs->core_channel && core_channel_init(vm, &err) < 0) { /* --image: hvc1 */
		tvm_log("error: device core channel: %s", err.msg);
		ok = false;
	}
	char virtio_cmdline[1024];
	virtio_mmio_cmdline(virtio_cmdline, sizeof(virtio_cmdline));
	rs->lo.linux_cmdline_extra = virtio_cmdline;
	struct acpi_mmio_dev acpi_virtio[TVM_VIRTIO_MMIO_SLOTS];
	rs->lo.nvirtio = virtio_mmio_count();
	for (unsigned i = 0; i < rs->lo.nvirtio; i++)
		acpi_virtio[i] = (struct acpi_mmio_dev){ TVM_VIRTIO_MMIO_BASE + i * TVM_VIRTIO_MMIO_STRIDE,
							 TVM_VIRTIO_MMIO_STRIDE, TVM_VIRTIO_IRQ(i) };
	rs->lo.virtio = acpi_virtio;
	struct boot_entry entry;
	if (ok && rs->restore) {
		if (vm_snapshot_load(vm, rs->restore_chain, rs->restore_n, rs->cfg.ram_file != NULL, &err) < 0) {
			tvm_log("error: --restore %s: %s", rs->restore, err.msg);
			ok = false;
		}
	} else {
		if (ok && load_kernel(vm, &rs->lo, &entry, &err) < 0) {
			tvm_log("error: %s", err.msg);
			ok = false;
		}
		if (ok && vm_set_boot_entry(vm, &entry, &err) < 0) {
			tvm_log("error: %s", err.msg);
			ok = false;
		}
	}
	struct replay *rp = NULL;
	if (ok && rs->replay_log &&
	    !(rp = replay_open(rs->replay_log, rs->restore_r ? snap_header_of(rs->restore_r)->id : NULL, vm_ncpus(vm),
			       &err))) {
		tvm_log("error: replay: %s", err.msg);
		ok = false;
	}
	if (rp) {
		replay_attach(rp, vm);
		replay_set_until(rp, rs->until_exit, rs->until_snapshot);
	}
	struct snapshots *snaps = NULL;
	rs->snaps.start_id = rs->restore_r ? snap_header_of(rs->restore_r)->id : NULL;
	if (ok && (rs->snaps.dir || rs->snaps.checkpoint) &&
	    !(snaps = snapshots_start(vm, &rs->snaps, &rs->images, rs->origin.buf, rs->origin.len, &err))) {
		tvm_log("error: %s", err.msg);
		ok = false;
	}
	if (ok && rs->ncrash_on && arm_crash_on(vm, rs, &entry, &err) < 0) {
		tvm_log("error: --crash-on: %s", err.msg);
		ok = false;
	}
	if (ok && rs->gdb && gdbstub_attach(rs->gdb, vm, rs->restore ? NULL : &entry, &err) < 0) {
		tvm_log("error: --gdb: %s", err.msg);
		ok = false;
	}
	if (ok && stop_signal_pending())
		ok = false;
	if (ok && rs->ndisks && iothread_start(&err) < 0) { /* disk flushes: before MAIN, in its own class */
		tvm_log("error: %s", err.msg);
		ok = false;
	}
	if (ok)
		disasm_preload(); /* its code is mapped before the sandbox forbids executable mappings */
	/* The application's absolute path (app.core's NT_FILE), resolved while
	 * getcwd is still allowed. */
	static char app_file[PATH_MAX];
	const char *app_path = rs->app ? rs->app : rs->lo.initrd;
	bool have_app_file = app_path && realpath(app_path, app_file);
	if (ok && sandbox_enter(SANDBOX_MAIN, &err) < 0) { /* vmm/sandbox.h; a restart keeps it */
		tvm_log("error: %s", err.msg);
		ok = false;
	}
	if (ok) {
		struct overlay *ovs[MAX_DISKS];
		const char *masters[MAX_DISKS];
		for (int i = 0; i < rs->ndisks; i++) {
			ovs[i] = blk[i] ? virtio_blk_overlay(blk[i]) : NULL;
			masters[i] = rs->disks[i].path;
		}
		struct crash_ctx ctx = { .vm = vm, .kernel_path = rs->lo.kernel, .symbols_path = rs->kernel_symbols,
					 .initrd_path = rs->lo.initrd, .cpio_path = rs->lo.cpio,
					 .app_path = app_path, .app_file = have_app_file ? app_file : NULL,
					 .report_dir = rs->report_dir,
					 .disks = ovs, .disk_masters = masters, .ndisks = rs->ndisks,
					 .crash_snapshot = snaps ? snapshots_crash : NULL,
					 .crash_snapshot_arg = snaps, .linux_image = rs->core_channel };
		struct hang_watch *hw = rs->hang_timeout > 0 ? hang_watch_start(vm, (unsigned)(rs->hang_timeout * 1000)) : NULL;
		vm_set_stop_hook(vm, hw ? hang_watch_halt : NULL, hw); /* the watcher ends before vCPUs are joined */
		struct main_hook mh = { .snaps = snaps, .gdb = rs->gdb, .ctx = &ctx, .report_every = rs->report_every,
					.next_report_ns = now_ns() + (uint64_t)(rs->report_every * 1e9) };
		vm_set_main_hook(vm, (snaps || rs->gdb || rs->report_every > 0) ? main_hook : NULL, &mh);
		vm_set_loop(vm, rs->loop);
		control_attach(rs->control, vm, &ctx);
		struct tvm_event ev;
		int r = vm_run(vm, &ev, &err);
		vm_set_main_hook(vm, NULL, NULL);
		gdbstub_vm_gone(rs->gdb, &ev);
		control_vm_gone(rs->control);
		hang_watch_stop(hw);
		if (r == 0 && rs->snaps.checkpoint && !snapshots_checkpoint_done(snaps) && ev.kind != TVM_EV_VMM_ERROR &&
		    ev.kind != TVM_EV_SIGNAL)
			tvm_log("error: the guest's console never printed the --at-console string; no checkpoint written");
		if (r == 0 && snapshots_checkpoint_done(snaps))
			tvm_log("checkpoint written to %s", rs->snaps.checkpoint);
		if (rs->stats) {
			struct vm_exit_stats es;
			vm_exit_stats(vm, &es);
			tvm_log("stats: %llu VM exits to trialvm (%llu port I/O, %llu MMIO) in %.3f s",
				(unsigned long long)es.total, (unsigned long long)es.pio,
				(unsigned long long)es.mmio, vm_uptime_ns(vm) / 1e9);
			char vs[512];
			virtio_mmio_stats(vs, sizeof(vs));
			if (vs[0])
				tvm_log("stats: %s", vs);
			snapshots_stats(snaps);
		}
		/* --state-hash: the end state (before the crash handling,
		 * which may take the guest apart for its report). */
		char hash[65];
		struct tvm_err herr = { "" };
		if (r == 0 && rs->state_hash)
			vm_clear_sw_breakpoints(vm); /* a debugger's breakpoints are no part of the state */
		bool hashed = r == 0 && rs->state_hash && replay_state_hash(vm, hash, &herr) == 0;
		if (r < 0) {
			tvm_log("error: %s", err.msg);
		} else {
			console_flush();
			status = crash_handle_event(&ev, &ctx);
			if (rp)
				replay_summary(rp);
			if (hashed)
				tvm_log("state hash at the end: %s (vCPU registers and guest memory)", hash);
			else if (herr.msg[0])
				tvm_log("warning: %s", herr.msg);
			if (rs->snaps.checkpoint && !snapshots_checkpoint_done(snaps) && status == 0)
				status = TVM_EXIT_ERROR;
			*crashed = status == TVM_EXIT_CRASHED && ev.kind != TVM_EV_POWEROFF;
			free(ev.payload);
			if (*crashed && rs->on_crash == ON_CRASH_PAUSE) {
				tvm_log("the crashed VM is paused (--on-crash pause); send SIGINT or SIGTERM to end");
				stop_signal_wait();
			}
		}
	}
	snapshots_stop(snaps); /* its writer may still call into the disks */
	snaps = NULL;
	replay_close(rp);
	/* The disks: saved (persist), deleted (discard), or kept after a crash. */
	for (int i = 0; i < rs->ndisks; i++) {
		const char *kept = NULL;
		if (!blk[i])
			continue;
		if (virtio_blk_finish(blk[i], *crashed, &kept, &err) < 0) {
			tvm_log("error: --disk %s: %s", rs->disks[i].path, err.msg);
			if (!*crashed) /* a crash's status wins; the error is on stderr */
				status = TVM_EXIT_ERROR;
		} else if (*crashed && kept && rs->disk_mode == DISK_DISCARD) {
			tvm_log("the overlay of disk %s is kept for the crash report: %s", rs->disks[i].path, kept);
		}
		virtio_blk_free(blk[i]);
	}
	rs->lo.linux_cmdline_extra = NULL; /* they pointed into this frame */
	rs->lo.virtio = NULL;
	vm_destroy(vm);
	return status;
}

/* What `trialvm run`'s command line says beyond the run settings. */
struct run_cli {
	const char *console_log, *trialos;
	const char *crash_on[4];
	long max_restarts;
	bool quiet, mem_given, cpus_given;
	const char *image;       /* --image DIR */
	char **app_args;
	int app_nargs;
	char cmdline_buf[TVM_CMDLINE_MAX]; /* rs->lo.cmdline may point here */
};

#define RUN_GO (-1) /* parse_run_options: go on (else: the exit status) */

/* The options into *rsp and *cli; RUN_GO, or the status to exit with. */
static int parse_run_options(struct run_settings *rsp, struct run_cli *cli, int argc, char **argv)
{
	enum { O_KERNEL = 256, O_INITRD, O_CPIO, O_CMDLINE, O_MEM, O_CPUS, O_CONSOLE_LOG, O_APP,
	       O_TRIALOS, O_NO_DECOMPRESS, O_REPORT_DIR, O_NO_REPORT, O_ON_CRASH, O_MAX_RESTARTS, O_CRASH_ON,
	       O_KERNEL_SYMBOLS, O_HANG_TIMEOUT, O_NO_SANDBOX, O_DISK, O_DISK_MODE, O_STATS, O_SNAP_EVERY,
	       O_SNAP_DIR, O_SNAP_KEEP, O_NO_RECORD, O_REPLAY, O_STATE_HASH, O_RESTORE, O_CONTROL, O_REPORT_EVERY, O_IMAGE, O_GDB, O_UNTIL };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, O_KERNEL },
		{ "initrd", required_argument, NULL, O_INITRD },
		{ "cpio", required_argument, NULL, O_CPIO },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "console-log", required_argument, NULL, O_CONSOLE_LOG },
		{ "app", required_argument, NULL, O_APP },
		{ "trialos", required_argument, NULL, O_TRIALOS },
		{ "no-decompress", no_argument, NULL, O_NO_DECOMPRESS },
		{ "report-dir", required_argument, NULL, O_REPORT_DIR },
		{ "no-report", no_argument, NULL, O_NO_REPORT },
		{ "on-crash", required_argument, NULL, O_ON_CRASH },
		{ "max-restarts", required_argument, NULL, O_MAX_RESTARTS },
		{ "crash-on", required_argument, NULL, O_CRASH_ON },
		{ "kernel-symbols", required_argument, NULL, O_KERNEL_SYMBOLS },
		{ "hang-timeout", required_argument, NULL, O_HANG_TIMEOUT },
		{ "no-sandbox", no_argument, NULL, O_NO_SANDBOX },
		{ "disk", required_argument, NULL, O_DISK },
		{ "disk-mode", required_argument, NULL, O_DISK_MODE },
		{ "stats", no_argument, NULL, O_STATS },
		{ "snapshot-every", required_argument, NULL, O_SNAP_EVERY },
		{ "snapshot-dir", required_argument, NULL, O_SNAP_DIR },
		{ "snapshot-keep", required_argument, NULL, O_SNAP_KEEP },
		{ "no-record", no_argument, NULL, O_NO_RECORD },
		{ "replay", required_argument, NULL, O_REPLAY },
		{ "state-hash", no_argument, NULL, O_STATE_HASH },
		{ "restore", required_argument, NULL, O_RESTORE },
		{ "control", required_argument, NULL, O_CONTROL },
		{ "gdb", required_argument, NULL, O_GDB },
		{ "until", required_argument, NULL, O_UNTIL },
		{ "report-every", required_argument, NULL, O_REPORT_EVERY },
		{ "image", required_argument, NULL, O_IMAGE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	cli->max_restarts = 3;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:qvh", opts, NULL)) != -1) {
		switch (c) {
		case O_KERNEL: rsp->lo.kernel = optarg; break;
		case O_INITRD: rsp->lo.initrd = optarg; break;
		case O_CPIO: rsp->lo.cpio = optarg; break;
		case O_CMDLINE: rsp->lo.cmdline = optarg; break;
		case O_MEM:
			cli->mem_given = true;
			if (parse_size(optarg, &rsp->cfg.ram_size) < 0)
				return usage_error("--mem %s: not a size (examples: 64M, 1G)", optarg);
			if (rsp->cfg.ram_size < TVM_MIN_RAM)
				return usage_error("--mem %s: too small; trialvm needs at least 2M of guest memory", optarg);
			if (rsp->cfg.ram_size > TVM_MAX_RAM)
				return usage_error("--mem %s: too large; trialvm supports at most 1T", optarg);
			if (rsp->cfg.ram_size & 0xfff)
				return usage_error("--mem %s: give a multiple of 4K", optarg);
			break;
		case O_CPUS: {
			char *end;
			errno = 0;
			long n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1 || n > TVM_MAX_VCPUS)
				return usage_error("--cpus %s: give a number from 1 to %d", optarg, TVM_MAX_VCPUS);
			rsp->cfg.ncpus = (int)n;
			cli->cpus_given = true;
			break;
		}
		case O_CONSOLE_LOG: cli->console_log = optarg; break;
		case O_APP: rsp->app = optarg; break;
		case O_TRIALOS: cli->trialos = optarg; break;
		case O_NO_DECOMPRESS: rsp->lo.no_decompress = true; break;
		case O_REPORT_DIR: rsp->report_dir = optarg; break;
		case O_NO_REPORT: rsp->report_dir = NULL; break;
		case O_ON_CRASH:
			if (!strcmp(optarg, "exit"))
				rsp->on_crash = ON_CRASH_EXIT;
			else if (!strcmp(optarg, "restart"))
				rsp->on_crash = ON_CRASH_RESTART;
			else if (!strcmp(optarg, "pause"))
				rsp->on_crash = ON_CRASH_PAUSE;
			else
				return usage_error("--on-crash %s: give exit, restart or pause", optarg);
			break;
		case O_MAX_RESTARTS: {
			char *end;
			errno = 0;
			cli->max_restarts = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || cli->max_restarts < 0 || cli->max_restarts > 1000000)
				return usage_error("--max-restarts %s: give a number from 0 to 1000000", optarg);
			break;
		}
		case O_CRASH_ON:
			if (rsp->ncrash_on == 4)
				return usage_error("--crash-on: at most 4 symbols (the CPU has 4 breakpoint registers)");
			cli->crash_on[rsp->ncrash_on++] = optarg;
			break;
		case O_KERNEL_SYMBOLS: rsp->kernel_symbols = optarg; break;
		case O_DISK: {
			struct tvm_err derr;
			if (rsp->ndisks == MAX_DISKS)
				return usage_error("--disk: at most %d disks", MAX_DISKS);
			if (disk_spec_parse(optarg, &rsp->disks[rsp->ndisks], &derr) < 0)
				return usage_error("--disk %s: %s", optarg, derr.msg);
			rsp->ndisks++;
			break;
		}
		case O_STATS: rsp->stats = true; break;
		case O_DISK_MODE:
			if (!strcmp(optarg, "discard"))
				rsp->disk_mode = DISK_DISCARD;
			else if (!strcmp(optarg, "persist"))
				rsp->disk_mode = DISK_PERSIST;
			else
				return usage_error("--disk-mode %s: give discard or persist", optarg);
			break;
		case O_HANG_TIMEOUT: {
			char *end;
			errno = 0;
			rsp->hang_timeout = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(rsp->hang_timeout >= 0.05 && rsp->hang_timeout <= 86400))
				return usage_error("--hang-timeout %s: give seconds, from 0.05 to 86400", optarg);
			break;
		}
		case O_SNAP_EVERY: {
			char *end;
			errno = 0;
			rsp->snaps.every = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(rsp->snaps.every >= 0.1 && rsp->snaps.every <= 86400))
				return usage_error("--snapshot-every %s: give seconds, from 0.1 to 86400", optarg);
			break;
		}
		case O_SNAP_DIR: rsp->snaps.dir = optarg; break;
		case O_SNAP_KEEP: {
			char *end;
			errno = 0;
			long n = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1 || n > 1000000)
				return usage_error("--snapshot-keep %s: give a number from 1 to 1000000", optarg);
			rsp->snaps.keep = (int)n;
			break;
		}
		case O_NO_RECORD: rsp->snaps.no_record = true; break;
		case O_REPLAY: rsp->replay_log = optarg; break;
		case O_STATE_HASH: rsp->state_hash = true; break;
		case O_RESTORE: rsp->restore = optarg; break;
		case O_IMAGE: cli->image = optarg; break;
		case O_CONTROL: rsp->control_path = optarg; break;
		case O_GDB: rsp->gdb_spec = optarg; break;
		case O_UNTIL: {
			char *end;
			const char *num = !strncmp(optarg, "exit", 4) ? optarg + 4 + strspn(optarg + 4, " =:") : NULL;
			if (!strcmp(optarg, "crash") || !strcmp(optarg, "snapshot")) {
				rsp->until_exit = 0;
				rsp->until_snapshot = !strcmp(optarg, "snapshot");
				break;
			}
			errno = 0;
			unsigned long long v = num && *num >= '0' && *num <= '9' ? strtoull(num, &end, 10) : 0;
			if (!num || !*num || *end || errno || v == 0)
				return usage_error("--until %s: give crash (the default: the log's end), snapshot (the first "
						   "segment's end) or exit N (N >= 1)",
						   optarg);
			rsp->until_exit = v;
			rsp->until_snapshot = false;
			break;
		}
		case O_REPORT_EVERY: {
			char *end;
			errno = 0;
			rsp->report_every = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(rsp->report_every >= 1 && rsp->report_every <= 86400))
				return usage_error("--report-every %s: give seconds, from 1 to 86400", optarg);
			break;
		}
		case O_NO_SANDBOX: sandbox_disabled = true; break;
		case 'q': cli->quiet = true; break;
		case 'v': tvm_verbose = 1; break;
		case 'h': fputs(usage_run, stdout); return 0;
		case ':':
			return usage_error("option %s needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("unknown option -%c", optopt);
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (!rsp->snaps.dir != !(rsp->snaps.every > 0))
		return usage_error("--snapshot-every and --snapshot-dir go together");
	if (rsp->snaps.keep && !rsp->snaps.dir)
		return usage_error("--snapshot-keep needs --snapshot-every and --snapshot-dir");
	if ((rsp->until_exit || rsp->until_snapshot) && !rsp->replay_log)
		return usage_error("--until is for a replay (trialvm replay)");
	if (rsp->replay_log && (rsp->snaps.dir || rsp->on_crash == ON_CRASH_RESTART || rsp->report_every > 0))
		return usage_error("--replay: a replay takes no snapshots, restarts or periodic reports");
	if (rsp->snaps.no_record && !rsp->snaps.dir)
		return usage_error("--no-record: only a run with --snapshot-every and --snapshot-dir is recorded");
	if (rsp->report_every > 0 && !rsp->report_dir)
		return usage_error("--report-every writes reports, and --no-report asks for none");
	if (optind < argc) {
		if (!rsp->app && !cli->image)
			return usage_error("unexpected argument '%s' (arguments after -- need --app or --image)",
					   argv[optind]);
		cli->app_args = argv + optind;
		cli->app_nargs = argc - optind;
	}
	return RUN_GO;
}

/* --image DIR: its kernel, initramfs and command line (--cmdline appended),
 * its root file system as the first disk, its machine size unless given. */
static int setup_image(struct run_settings *rsp, struct run_cli *cli)
{
	static struct image im;
	struct tvm_err err = { "" };
	if (!cli->image)
		return RUN_GO;
	if (rsp->lo.kernel || rsp->lo.initrd || rsp->lo.cpio || rsp->app)
		return usage_error("--image and --kernel, --initrd, --cpio or --app do not go together (the image "
				   "holds the kernel, the initramfs and the root disk)");
	if (rsp->ndisks >= MAX_DISKS - 1)
		return usage_error("--image: its root file system and its core channel take two virtio slots, and %d "
				   "more disks do not fit (at most %d)", rsp->ndisks, MAX_DISKS - 2);
	if (image_open(cli->image, &im, &err) < 0) {
		tvm_log("error: --image: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	int n = snprintf(cli->cmdline_buf, sizeof(cli->cmdline_buf), "%s%s%s", im.cmdline, rsp->lo.cmdline ? " " : "",
			 rsp->lo.cmdline ? rsp->lo.cmdline : "");
	if (n < 0 || (size_t)n >= sizeof(cli->cmdline_buf))
		return usage_error("the command line is longer than %u bytes", TVM_CMDLINE_MAX - 1);
	if (cli->app_nargs > 0 && rsp->restore)
		return usage_error("--restore with arguments for the program: it is already running in the snapshot");
	if (cli->app_nargs > 0 && image_args_append(cli->cmdline_buf, sizeof(cli->cmdline_buf), cli->app_args,
						    cli->app_nargs, &err) < 0)
		return usage_error("%s", err.msg);
	struct disk_spec root;
	if (disk_spec_parse(im.rootfs, &root, &err) < 0) {
		tvm_log("error: --image: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	memmove(&rsp->disks[1], &rsp->disks[0], (size_t)rsp->ndisks * sizeof(rsp->disks[0]));
	rsp->disks[0] = root;
	rsp->ndisks++;
	rsp->lo.kernel = im.kernel;
	rsp->lo.initrd = im.initrd;
	rsp->lo.cmdline = cli->cmdline_buf;
	rsp->core_channel = true;
	if (!rsp->restore && !cli->mem_given)
		rsp->cfg.ram_size = im.mem;
	if (!rsp->restore && !cli->cpus_given)
		rsp->cfg.ncpus = im.cpus;
	return RUN_GO;
}

/* --app: trialos as the kernel, the program as its initrd, and its name and
 * arguments quoted onto the command line. RUN_GO or an exit status. */
static int setup_app(struct run_settings *rsp, struct run_cli *cli)
{
	struct tvm_err err = { "" };
	char *cmdline_buf = cli->cmdline_buf;
	const size_t cmdline_cap = sizeof(cli->cmdline_buf);
	if (rsp->app) {
		if (rsp->lo.kernel)
			return usage_error("--app and --kernel do not go together (--app boots trialos; use --trialos to "
					   "choose the trialos kernel)");
		if (rsp->lo.initrd)
			return usage_error("--app and --initrd do not go together (--app is the initrd)");
		if (check_app(rsp->app, &err) < 0) {
			tvm_log("error: %s", err.msg);
			return TVM_EXIT_USAGE;
		}
		const char *trialos = cli->trialos;
		if (!trialos)
			trialos = rsp->trialos_found = find_trialos();
		if (!trialos) {
			tvm_log("error: the trialos kernel was not found next to trialvm; build it with 'make' "
				"or give --trialos FILE");
			return TVM_EXIT_ERROR;
		}
		rsp->lo.kernel = trialos;
		rsp->lo.initrd = rsp->app;
		size_t pos = 0;
		cmdline_buf[0] = 0;
		if (rsp->lo.cmdline) {
			pos = (size_t)snprintf(cmdline_buf, cmdline_cap, "%s", rsp->lo.cmdline);
			if (pos >= cmdline_cap)
				return usage_error("the command line is longer than %u bytes", TVM_CMDLINE_MAX - 1);
		}
		const char *base = strrchr(rsp->app, '/');
		base = base ? base + 1 : rsp->app;
		int n = snprintf(cmdline_buf + pos, cmdline_cap - pos, "%s--", pos ? " " : "");
		if (n < 0 || (size_t)n >= cmdline_cap - pos)
			return usage_error("the command line is longer than %u bytes", TVM_CMDLINE_MAX - 1);
		pos += (size_t)n;
		if (append_quoted(cmdline_buf, cmdline_cap, &pos, base) < 0)
			return usage_error("the command line is longer than %u bytes", TVM_CMDLINE_MAX - 1);
		for (int i = 0; i < cli->app_nargs; i++)
			if (append_quoted(cmdline_buf, cmdline_cap, &pos, cli->app_args[i]) < 0)
				return usage_error("the application's arguments are longer than the %u-byte command line",
						   TVM_CMDLINE_MAX - 1);
		rsp->lo.cmdline = cmdline_buf;
	}
	if (!rsp->lo.kernel)
		return usage_error("nothing to boot: give --kernel FILE or --app PROGRAM");
	return RUN_GO;
}

/* --crash-on: every symbol resolved before anything starts. */
static int resolve_crash_on(struct run_settings *rsp, const struct run_cli *cli)
{
	if (rsp->gdb_spec && rsp->ncrash_on)
		return usage_error("--gdb and --crash-on cannot be combined: set the breakpoint in gdb instead (break SYMBOL)");
	if (rsp->ncrash_on) {
		const char *symfile = rsp->kernel_symbols ? rsp->kernel_symbols : rsp->lo.kernel;
		struct symtab *st = symtab_load(symfile);
		if (!st) {
			tvm_log("error: --crash-on needs the kernel's symbols, and %s has none; give --kernel-symbols "
				"FILE (a vmlinux with symbols or a System.map)", symfile);
			return TVM_EXIT_USAGE;
		}
		for (int i = 0; i < rsp->ncrash_on; i++)
			if (symtab_find(st, cli->crash_on[i], &rsp->bp_addr[i]) < 0) {
				tvm_log("error: --crash-on %s: no such symbol in %s", cli->crash_on[i], symfile);
				symtab_free(st);
				return TVM_EXIT_USAGE;
			}
		symtab_free(st);
	}
	return RUN_GO;
}

/* The console, the stop signals, the stdin thread, then one VM after
 * another while --on-crash restart asks for it. The exit status. */
static int run_vms(struct run_settings *rsp, const struct run_cli *cli)
{
	struct tvm_err err = { "" };
	long max_restarts = cli->max_restarts;
	if (console_open(cli->console_log, cli->quiet, &err) < 0) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	/* SIGINT/SIGTERM/SIGHUP through a signalfd (vmm/stopsig.h), blocked
	 * before any thread starts so that every thread inherits the mask. */
	if (stop_signals_init(&err) < 0) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	if (!rsp->replay_log) /* a replay's console input is the log's */
		uart_start_input();
	/* The main thread's event loop (vmm/evloop.h), made before the sandbox. */
	if (!(rsp->loop = evloop_new(&err)) ||
	    (rsp->control_path && !(rsp->control = control_open(rsp->control_path, &rsp->images, rsp->origin.buf,
								 rsp->origin.len, rsp->loop, &err))) ||
	    (rsp->gdb_spec && !(rsp->gdb = gdbstub_open(rsp->gdb_spec, rsp->loop, &err)))) {
		tvm_log("error: %s", err.msg);
		evloop_free(rsp->loop);
		rsp->loop = NULL;
		return TVM_EXIT_ERROR;
	}
	if (rsp->report_dir) /* reports a killed trialvm left half-written */
		report_clean_partials(rsp->report_dir);

	int status = TVM_EXIT_ERROR;
	bool crashed = false;
	for (long restarts = 0;; restarts++) {
		status = run_once(rsp, &crashed);
		if (!crashed || rsp->on_crash != ON_CRASH_RESTART || stop_signal_pending())
			break;
		if (restarts >= max_restarts) {
			tvm_log("the guest crashed %ld times; not restarting again (--max-restarts %ld)", restarts + 1,
				max_restarts);
			break;
		}
		tvm_log("restarting a fresh VM from the same images (restart %ld of at most %ld)", restarts + 1,
			max_restarts);
	}
	control_close(rsp->control);
	rsp->control = NULL;
	gdbstub_close(rsp->gdb);
	rsp->gdb = NULL;
	evloop_free(rsp->loop);
	rsp->loop = NULL;
	if (console_close(&err) < 0) {
		tvm_log("error: %s", err.msg);
		if (!crashed)
			status = TVM_EXIT_ERROR;
	}
	return status;
}

/* The origin section of the snapshots this run writes: the images by
 * absolute path, so that `run --restore SNAPSHOT` alone finds them. */
enum { OR_KERNEL = 1, OR_INITRD = 2, OR_CPIO = 3, OR_APP = 4, OR_DISK0 = 16 };

static void put_path(struct vs_out *o, uint16_t tag, const char *path)
{
	if (!path)
		return;
	char *abs = realpath(path, NULL);
	const char *p = abs ? abs : path;
	vs_put(o, tag, p, (uint32_t)strlen(p));
	free(abs);
}

static int build_origin(struct run_settings *rsp)
{
	struct tvm_err err = { "" };
	vs_out_free(&rsp->origin);
	put_path(&rsp->origin, OR_KERNEL, rsp->lo.kernel);
	put_path(&rsp->origin, OR_INITRD, rsp->lo.initrd);
	put_path(&rsp->origin, OR_CPIO, rsp->lo.cpio);
	put_path(&rsp->origin, OR_APP, rsp->app);
	for (int i = 0; i < rsp->ndisks; i++) {
		char *abs = realpath(rsp->disks[i].path, NULL);
		char spec[4200];
		snprintf(spec, sizeof(spec), "%s%s", abs ? abs : rsp->disks[i].path, rsp->disks[i].ro ? ",ro" : "");
		free(abs);
		vs_put(&rsp->origin, (uint16_t)(OR_DISK0 + i), spec, (uint32_t)strlen(spec));
	}
	if (vs_out_error(&rsp->origin, &err) < 0) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	return RUN_GO;
}

/* A string field of the origin record, NUL-terminated into buf; NULL when
 * absent or unusable. */
static const char *origin_str(const struct vs_in *in, uint16_t tag, char *buf, size_t cap)
{
	const void *d;
	uint32_t len;
	if (!vs_find(in, tag, &d, &len) || len == 0 || len >= cap || memchr(d, 0, len))
		return NULL;
	memcpy(buf, d, len);
	buf[len] = 0;
	return buf;
}

/* --restore of an incremental snapshot: its parents (vmm/snapshot.h). */
static int open_chain(struct run_settings *rsp, struct tvm_err *err)
{
	int n = 0;
	if (snapshot_open_chain(rsp->restore, &rsp->restore_chain, NULL, &n, err) < 0)
		return -1;
	rsp->restore_n = n;
	rsp->restore_r = rsp->restore_chain[n - 1];
	return 0;
}

/* --restore: the chain's memory decompressed once into the memory cache
 * (monitor/ramcache.h; DIR/ID.ram, mode 0600), mapped by every restore of
 * that snapshot: a restore then reads only the pages the guest touches.
 * Where that cannot be done the memory is copied in instead (said with -v). */
static void use_memory_cache(struct run_settings *rsp)
{
	struct tvm_err err = { "" };
	char dir[3000];
	if (ram_cache_dir(dir, sizeof(dir)) < 0)
		return;
	const uint8_t *id = snap_header_of(rsp->restore_r)->id;
	char hex[33];
	hex_bytes(id, 16, hex);
	snprintf(rsp->ram_cache, sizeof(rsp->ram_cache), "%s/%s.ram", dir, hex);
	struct stat st;
	uint64_t budget = ram_cache_budget();
	if (stat(rsp->ram_cache, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != rsp->cfg.ram_size) {
		/* Room first: at most the snapshots' memory more will be used. */
		ram_cache_prune(dir, rsp->ram_cache, rsp->cfg.ram_size, budget);
		if (isatty(2))
			tvm_log("materialising the snapshot's memory into %s (once per snapshot)", rsp->ram_cache);
		unlink(rsp->ram_cache); /* a damaged one */
		if (snapshot_materialize(rsp->restore_chain, rsp->restore_n, rsp->ram_cache, &err) < 0) {
			tvm_debug("restore: no memory cache (%s); copying the snapshot's memory in", err.msg);
			rsp->ram_cache[0] = 0;
			return;
		}
	} else {
		ram_cache_prune(dir, rsp->ram_cache, 0, budget);
	}
	ram_cache_touch(rsp->ram_cache);
	tvm_debug("restore: guest memory mapped from %s", rsp->ram_cache);
	rsp->cfg.ram_file = rsp->ram_cache;
}

/* --restore: open and check the snapshot (and its parents), take the
 * machine's size from it, and the images from its origin section when none
 * were given. */
static int prepare_restore(struct run_settings *rsp, struct run_cli *cli)
{
	struct tvm_err err = { "" };
	if (open_chain(rsp, &err) < 0) {
		tvm_log("error: --restore %s: %s", rsp->restore, err.msg);
		return TVM_EXIT_ERROR;
	}
	struct vm_config cfg;
	if (vm_snapshot_config(rsp->restore_r, &cfg, &err) < 0) {
		tvm_log("error: --restore %s: %s", rsp->restore, err.msg);
		return TVM_EXIT_ERROR;
	}
	if ((cli->mem_given && cfg.ram_size != rsp->cfg.ram_size) || (cli->cpus_given && cfg.ncpus != rsp->cfg.ncpus))
		return usage_error("--restore %s: the snapshot is of a VM with --mem %lluM --cpus %d; leave --mem and "
				   "--cpus out, or give those", rsp->restore, (unsigned long long)(cfg.ram_size >> 20),
				   cfg.ncpus);
	rsp->cfg = cfg;
	use_memory_cache(rsp);
	if (rsp->lo.kernel || rsp->app)
		return RUN_GO; /* the images given; checked against the snapshot's hashes */
	bool disks_given = rsp->ndisks > 0; /* then those, with the kernel the snapshot names */
	uint8_t *buf = NULL;
	struct vs_in in;
	int got = snapshot_record(rsp->restore_r, SNAP_SEC_ORIGIN, &buf, &in, "the origin", &err);
	if (got < 0) {
		tvm_log("error: --restore %s: %s", rsp->restore, err.msg);
		return TVM_EXIT_ERROR;
	}
	if (got == 0)
		return usage_error("--restore %s: the snapshot does not say which images it was taken from; give them "
				   "(--app or --kernel, --disk ...)", rsp->restore);
	static char paths[4][4096];
	int rc = RUN_GO;
	if (vs_check(&in, NULL, 0, &err) < 0) {
		tvm_log("error: --restore %s: %s", rsp->restore, err.msg);
		rc = TVM_EXIT_ERROR;
	} else {
		const char *app = origin_str(&in, OR_APP, paths[0], sizeof(paths[0]));
		const char *kernel = origin_str(&in, OR_KERNEL, paths[1], sizeof(paths[1]));
		if (app) {
			rsp->app = app;
			cli->trialos = kernel;
		} else {
			rsp->lo.kernel = kernel;
			rsp->lo.initrd = origin_str(&in, OR_INITRD, paths[2], sizeof(paths[2]));
		}
		rsp->lo.cpio = origin_str(&in, OR_CPIO, paths[3], sizeof(paths[3]));
		for (int i = 0; rc == RUN_GO && !disks_given && i < MAX_DISKS; i++) {
			char spec[4200];
			if (!origin_str(&in, (uint16_t)(OR_DISK0 + i), spec, sizeof(spec)))
				break;
			if (disk_spec_parse(spec, &rsp->disks[rsp->ndisks], &err) < 0) {
				tvm_log("error: --restore %s: its disk %s: %s", rsp->restore, spec, err.msg);
				rc = TVM_EXIT_ERROR;
			} else {
				rsp->ndisks++;
			}
		}
		if (rc == RUN_GO && !app && !kernel) {
			tvm_log("error: --restore %s: the snapshot names no kernel; give --app or --kernel", rsp->restore);
			rc = TVM_EXIT_USAGE;
		}
	}
	free(buf);
	return rc;
}

/* The images' hashes (for snapshots' headers and a restore's check). */
static int hash_images(struct run_settings *rsp)
{
	if (!rsp->restore && !rsp->snaps.dir && !rsp->snaps.checkpoint && !rsp->control_path)
		return RUN_GO;
	struct tvm_err err = { "" };
	const char *disks[MAX_DISKS];
	for (int i = 0; i < rsp->ndisks; i++)
		disks[i] = rsp->disks[i].path;
	struct snap_images im = { .kernel = rsp->lo.kernel, .initrd = rsp->lo.initrd, .cpio = rsp->lo.cpio,
				  .disks = disks, .ndisks = rsp->ndisks };
	if (snap_images_hash(&im, &rsp->images, &err) < 0) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	if (rsp->restore && snap_images_match(rsp->restore, snap_header_of(rsp->restore_r), &rsp->images, &err) < 0) {
		tvm_log("error: --restore: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	return build_origin(rsp);
}

static int run_command(struct run_settings *rsp, int argc, char **argv)
{
	static struct run_cli cli; /* rsp->lo.cmdline may point into it for the whole run */
	memset(&cli, 0, sizeof(cli));
	int rc = parse_run_options(rsp, &cli, argc, argv);
	if (rc == RUN_GO && rsp->replay_log) { /* a bad log is said before anything starts */
		struct evlog_reader r;
		struct tvm_err err = { "" };
		if (evlog_open(rsp->replay_log, &r, &err) < 0) {
			tvm_log("error: replay: %s", err.msg);
			rc = TVM_EXIT_ERROR;
		} else {
			evlog_reader_close(&r);
		}
	}
	if (rc == RUN_GO)
		rc = setup_image(rsp, &cli);
	if (rc == RUN_GO && rsp->restore)
		rc = prepare_restore(rsp, &cli);
	if (rc == RUN_GO)
		rc = setup_app(rsp, &cli);
	if (rc == RUN_GO)
		rc = resolve_crash_on(rsp, &cli);
	if (rc == RUN_GO)
		rc = hash_images(rsp);
	return rc == RUN_GO ? run_vms(rsp, &cli) : rc;
}

static void run_settings_free(struct run_settings *rs)
{
	for (int i = 0; i < rs->ndisks; i++)
		disk_spec_free(&rs->disks[i]);
	free(rs->trialos_found);
	for (int i = 0; i < rs->restore_n; i++)
		snap_close(rs->restore_chain[i]);
	free(rs->restore_chain);
	vs_out_free(&rs->origin);
}

#define RUN_DEFAULTS { .cfg = { .ram_size = 128ull << 20, .ncpus = 1 }, .report_dir = "trialvm-reports", \
		       .disk_mode = DISK_DISCARD, .on_crash = ON_CRASH_EXIT }

static const char usage_checkpoint[] =
	"Usage: trialvm snapshot checkpoint [RUN OPTIONS] --at-console STRING -o FILE\n"
	"\n"
	"Boot the VM 'trialvm run' would with the same options, wait until the guest\n"
	"console prints STRING (the application's \"ready\" line), write a snapshot\n"
	"of the whole machine to FILE at that exit and stop: the booted checkpoint\n"
	"that trials start from with 'trialvm run --restore FILE'. Exit status 0\n"
	"when FILE was written; 125 when the guest ended (or crashed) first or the\n"
	"snapshot could not be written; 126 for a bad command line.\n"
	"\n"
	"  --at-console STRING  the console output to wait for (1 to 256 bytes)\n"
	"  -o, --output FILE    the snapshot to write (replaced atomically)\n"
	"RUN OPTIONS: see 'trialvm run --help'.\n";

/* `snapshot checkpoint`: run's options plus --at-console and -o (taken out
 * before the rest goes to run's parser; none after "--"). */
static int cmd_checkpoint(int argc, char **argv)
{
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	if (!rest)
		return TVM_EXIT_ERROR;
	const char *at = NULL, *out = NULL;
	int n = 0;
	bool dashdash = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (i > 0 && !dashdash && !strcmp(a, "--"))
			dashdash = true;
		if (i > 0 && !dashdash && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			fputs(usage_checkpoint, stdout);
			free(rest);
			return 0;
		}
		const char **dst = NULL;
		if (i > 0 && !dashdash && !strcmp(a, "--at-console"))
			dst = &at;
		else if (i > 0 && !dashdash && (!strcmp(a, "-o") || !strcmp(a, "--output")))
			dst = &out;
		if (dst) {
			if (i + 1 >= argc) {
				free(rest);
				fprintf(stderr, "trialvm: option %s needs a value\nTry 'trialvm snapshot checkpoint --help'.\n", a);
				return TVM_EXIT_USAGE;
			}
			*dst = argv[++i];
			continue;
		}
		rest[n++] = argv[i];
	}
	if (!at || !out) {
		free(rest);
		fprintf(stderr, "trialvm: snapshot checkpoint needs --at-console STRING and -o FILE\n"
				"Try 'trialvm snapshot checkpoint --help'.\n");
		return TVM_EXIT_USAGE;
	}
	if (!at[0] || strlen(at) > CONSOLE_WATCH_MAX) {
		free(rest);
		fprintf(stderr, "trialvm: --at-console: give 1 to %d bytes\n", CONSOLE_WATCH_MAX);
		return TVM_EXIT_USAGE;
	}
	struct run_settings rs = RUN_DEFAULTS;
	rs.snaps.checkpoint = out;
	rs.snaps.at_console = at;
	int status = run_command(&rs, n, rest);
	run_settings_free(&rs);
	free(rest);
	return status;
}

static const char usage_replay[] =
	"Usage: trialvm replay (LOG | SNAPSHOT LOG | REPORT_DIR) [--until crash|snapshot|exit N]\n"
	"                      [--gdb PORT] [RUN OPTIONS]\n"
	"\n"
	"Run a recorded event log again (README \"Record and replay\"): the machine\n"
	"is restored from the snapshot the segment LOG starts at (DIR/snap-N.tvs\n"
	"beside DIR/snap-N.tvl, or SNAPSHOT when given), or booted for a segment\n"
	"from the start of a run (DIR/start-N.tvl: give the run's images, --app or\n"
	"--kernel ...), and every exit is checked against the log while every input\n"
	"comes from it: what the guest read from device registers (console input\n"
	"among it), the clock, random and virtio-rng bytes; disk reads are checked.\n"
	"Where a segment ends at a snapshot the replay goes on into the next one\n"
	"beside it (start-N.tvl, then snap-N.tvl, snap-N+1.tvl, ...).\n"
	"REPORT_DIR: the segment its report.json names, which ends at the crash.\n"
	"The guest's console output is printed as in the recorded run; standard\n"
	"input is not read. --until snapshot stops at LOG's own end; --until exit N\n"
	"stops after vCPU 0's exit N, counted from the replay's start (status 0),\n"
	"or for gdb there with --gdb (README \"Debugging with gdb\").\n"
	"A recording of more than one vCPU replays best-effort: each vCPU's exits\n"
	"are checked in their own order, not against each other's.\n"
	"\n"
	"Exit status: as the recorded run's (a crash: 123, with its diagnosis; no\n"
	"report unless --report-dir is given); 0 when the log ends at a snapshot\n"
	"and every exit matched; 122 when the guest diverged from the log (the\n"
	"report names the record, what the log has, what the guest did and its\n"
	"RIP); 125 a corrupt log or a snapshot that is not the one the log starts\n"
	"at; 126 usage.\n";

/* trialvm replay: LOG (or the one REPORT_DIR/report.json names), its
 * snapshot, then run's options. */
static int cmd_replay(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_replay, argc < 2 ? stderr : stdout);
		return argc < 2 ? TVM_EXIT_USAGE : 0;
	}
	static char log[4096], snap[4096];
	struct stat st;
	struct tvm_err err = { "" };
	/* SNAPSHOT LOG: run's LOG --restore SNAPSHOT. */
	size_t l1 = strlen(argv[1]), l2 = argc > 2 ? strlen(argv[2]) : 0;
	bool snap_log = l1 > 4 && l2 > 4 && !strcmp(argv[1] + l1 - 4, ".tvs") && !strcmp(argv[2] + l2 - 4, ".tvl");
	if (snap_log) {
		snprintf(snap, sizeof(snap), "%s", argv[1]);
		snprintf(log, sizeof(log), "%s", argv[2]);
	} else if (stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode)) {
		char rj[4096];
		snprintf(rj, sizeof(rj), "%s/report.json", argv[1]);
		if (report_event_log(rj, log, sizeof(log), &err) < 0) {
			tvm_log("error: replay: %s", err.msg);
			return TVM_EXIT_ERROR;
		}
	} else {
		snprintf(log, sizeof(log), "%s", argv[1]);
	}
	bool have_restore = false, have_report = false;
	int first = snap_log ? 3 : 2; /* run's options */
	for (int i = first; i < argc && strcmp(argv[i], "--"); i++) {
		have_restore = have_restore || !strcmp(argv[i], "--restore") || !strncmp(argv[i], "--restore=", 10);
		have_report = have_report || !strcmp(argv[i], "--report-dir") || !strncmp(argv[i], "--report-dir=", 13);
	}
	/* DIR/snap-N.tvl starts at DIR/snap-N.tvs. */
	size_t n = strlen(log);
	const char *base = strrchr(log, '/') ? strrchr(log, '/') + 1 : log;
	bool from_snapshot = snap_log || (!have_restore && n > 4 && !strcmp(log + n - 4, ".tvl") && !strncmp(base, "snap-", 5));
	if (snap_log && have_restore) {
		tvm_log("error: replay %s %s: the snapshot is given already; drop --restore", argv[1], argv[2]);
		return TVM_EXIT_USAGE;
	}
	if (from_snapshot && !snap_log) {
		snprintf(snap, sizeof(snap), "%.*s.tvs", (int)(n - 4), log);
	}
	char **args = calloc((size_t)argc + 8, sizeof(char *));
	if (!args)
		return TVM_EXIT_ERROR;
	int k = 0;
	args[k++] = "replay";
	args[k++] = "--replay";
	args[k++] = log;
	if (from_snapshot) {
		args[k++] = "--restore";
		args[k++] = snap;
	}
	if (!have_report)
		args[k++] = "--no-report";
	static char until[64];
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--until") && i + 2 < argc && !strcmp(argv[i + 1], "exit")) { /* --until exit N */
			snprintf(until, sizeof(until), "exit %s", argv[i + 2]);
			args[k++] = argv[i];
			args[k++] = until;
			i += 2;
			continue;
		}
		args[k++] = argv[i];
	}
	struct run_settings rs = RUN_DEFAULTS;
	int status = run_command(&rs, k, args);
	run_settings_free(&rs);
	free(args);
	return status;
}

static int cmd_run(int argc, char **argv)
{
	struct run_settings rs = RUN_DEFAULTS;
	int status = run_command(&rs, argc, argv);
	run_settings_free(&rs);
	return status;
}

static const char usage_inspect[] =
	"Usage: trialvm inspect [--read-phys GPA:LEN] FILE\n"
	"\n"
	"Validate a crash artifact and print a summary of it: a guest ELF dump\n"
	"(core.elf), a Windows full memory dump (memory.dmp), an application core\n"
	"(app.core), a report.json (whose listed files are checked too) or an\n"
	"event log segment (a recorded run's .tvl: every record checked). Exits 0\n"
	"when the file is well-formed, 125 when it is not (the error says where).\n"
	"\n"
	"  --read-phys GPA:LEN  write the raw bytes of guest-physical [GPA, GPA+LEN)\n"
	"                       as the dump holds them to stdout (core.elf, memory.dmp;\n"
	"                       LEN up to 1M; numbers in decimal or 0x hex)\n";

static int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "read-phys", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct inspect_opts io = { 0 };
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': {
			char *colon = strchr(optarg, ':'), *end;
			errno = 0;
			io.read_phys_gpa = strtoull(optarg, &end, 0);
			if (!colon || end != colon || errno)
				goto bad_range;
			io.read_phys_len = strtoull(colon + 1, &end, 0);
			if (*end || end == colon + 1 || errno || io.read_phys_len == 0 ||
			    io.read_phys_len > TVM_INSPECT_READ_MAX)
				goto bad_range;
			io.read_phys = true;
			break;
bad_range:
			fprintf(stderr, "trialvm: --read-phys %s: give GPA:LEN, LEN from 1 to %u\nTry 'trialvm inspect --help'.\n",
				optarg, TVM_INSPECT_READ_MAX);
			return TVM_EXIT_USAGE;
		}
		case 'h': fputs(usage_inspect, stdout); return 0;
		case ':':
			fprintf(stderr, "trialvm: option %s needs a value\nTry 'trialvm inspect --help'.\n", argv[optind - 1]);
			return TVM_EXIT_USAGE;
		default:
			fprintf(stderr, "trialvm: unknown option %s\nTry 'trialvm inspect --help'.\n", argv[optind - 1]);
			return TVM_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "trialvm: inspect takes one FILE\nTry 'trialvm inspect --help'.\n");
		return TVM_EXIT_USAGE;
	}
	struct tvm_err err = { "" };
	if (inspect_file(argv[optind], &io, stdout, &err) < 0) {
		fflush(stdout);
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	return fflush(stdout) == 0 ? 0 : TVM_EXIT_ERROR;
}

int main(int argc, char **argv)
{
	/* A file-size limit (ulimit -f) must end a write with EFBIG, reported
	 * like a full disk, not kill trialvm halfway through a report or commit. */
	signal(SIGXFSZ, SIG_IGN);
	if (argc < 2) {
		fputs(usage_main, stderr);
		return TVM_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("trialvm %s (guest ABI %d)\n", TRIALVM_VERSION, 1);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(cmd, "replay"))
		return cmd_replay(argc - 1, argv + 1);
	if (!strcmp(cmd, "disk"))
		return disk_cli_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "image"))
		return image_cli_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "spool"))
		return spool_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "report"))
		return report_cli_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "trust"))
		return package_trust_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "launch"))
		return launch_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "ctl"))
		return control_client_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "snapshot") && argc > 2 && !strcmp(argv[2], "checkpoint"))
		return cmd_checkpoint(argc - 2, argv + 2);
	if (!strcmp(cmd, "snapshot"))
		return snapshot_cli_main(argc - 1, argv + 1);
	fprintf(stderr, "trialvm: unknown command '%s'\nTry 'trialvm --help'.\n", cmd);
	return TVM_EXIT_USAGE;
}
