/* vmm/snapfile_cli.c - `trialvm snapshot inspect FILE`: a snapshot's
 * header, parent and sections, after checking its frames and checksums. */
#include "snapfile.h"
#include "snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

static const char usage_text[] =
	"Usage: trialvm snapshot COMMAND ARGS...\n"
	"\n"
	"Commands:\n"
	"  checkpoint [RUN OPTIONS] --at-console STRING -o FILE\n"
	"                 boot, wait until the console prints STRING, write a\n"
	"                 snapshot of the machine to FILE and stop (the booted\n"
	"                 checkpoint; trialvm snapshot checkpoint --help)\n"
	"  inspect FILE   check a snapshot file (header, every section's frame and\n"
	"                 checksum) and print its header, parent and sections\n"
	"  memory FILE OUT  write the guest memory FILE holds (with its parents'),\n"
	"                 the machine's RAM as a restore has it, to OUT (sparse;\n"
	"                 temporary name, fsync, rename)\n"
	"  --help         this text\n"
	"\n"
	"Exit status: 0; 125 a damaged snapshot (the error says where) or OUT not\n"
	"written; 126 bad command line.\n"
	"inspect's exit status: 0 well-formed, 125 not (the error says where), 126 bad\n"
	"command line. Restore a snapshot with 'trialvm run --restore FILE'.\n";

static const char *role_name(uint8_t r)
{
	switch (r) {
	case SNAP_IMG_KERNEL: return "kernel";
	case SNAP_IMG_INITRD: return "initrd";
	case SNAP_IMG_CPIO: return "cpio";
	case SNAP_IMG_DISK: return "disk";
	}
	return "?";
}

static void hex(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%02x", p[i]);
}

static int cmd_inspect(const char *path)
{
	struct tvm_err err = { "" };
	struct snap_reader *r;
	if (snap_open(path, snap_any_type, 0, &r, &err) < 0) {
		tvm_log("error: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	const struct snap_header *h = snap_header_of(r);
	char ver[sizeof(h->trialvm_version) * 9];
	tvm_escape(h->trialvm_version, strnlen(h->trialvm_version, sizeof(h->trialvm_version)), TVM_ESC_TERMINAL, ver,
		   sizeof(ver));
	printf("snapshot format %u, written by trialvm %s\n  id     ", h->format_version, ver);
	hex(stdout, h->id, 16);
	static const uint8_t zero[16];
	if (memcmp(h->parent, zero, 16) == 0) {
		printf("\n  parent none (a full snapshot)\n");
	} else {
		printf("\n  parent ");
		hex(stdout, h->parent, 16);
		printf(" (an incremental snapshot)\n");
	}
	for (uint32_t i = 0; i < h->nimages; i++) {
		printf("  image  %s", role_name(h->images[i].role));
		if (h->images[i].role == SNAP_IMG_DISK)
			printf(" %u", h->images[i].index);
		printf(" sha256 ");
		hex(stdout, h->images[i].sha256, 32);
		printf("\n");
	}
	struct snap_section s;
	unsigned n = 0;
	uint64_t bytes = 0;
	while (snap_next(r, &s) == 1) {
		const char *name = snapshot_section_name(s.type);
		printf("  section %s (type %u) version %u, %s, %" PRIu64 " bytes at offset %" PRIu64 "\n",
		       name ? name : "unknown", s.type, s.version,
		       (s.flags & SNAP_SECTION_REQUIRED) ? "required" : "optional", s.length, s.offset);
		n++;
		bytes += s.length;
	}
	printf("  %u sections, %" PRIu64 " bytes of payload; frames and checksums ok\n", n, bytes);
	snap_close(r);
	return fflush(stdout) == 0 ? 0 : TVM_EXIT_ERROR;
}

/* snapshot memory FILE OUT */
static int cmd_memory(const char *path, const char *out)
{
	struct snap_reader **chain;
	int n;
	struct tvm_err err = { "" };
	if (snapshot_open_chain(path, &chain, NULL, &n, &err) < 0) {
		tvm_log("error: snapshot memory: %s: %s", path, err.msg);
		return TVM_EXIT_ERROR;
	}
	int rc = snapshot_materialize(chain, n, out, &err);
	for (int i = 0; i < n; i++)
		snap_close(chain[i]);
	free(chain);
	if (rc < 0) {
		tvm_log("error: snapshot memory: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	return 0;
}

int snapshot_cli_main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "memory"))
		return cmd_memory(argv[2], argv[3]);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "inspect"))
		return cmd_inspect(argv[2]);
	if (argc >= 2 && !strcmp(argv[1], "inspect"))
		tvm_log("snapshot inspect takes one FILE (see trialvm snapshot --help)");
	else if (argc >= 2)
		tvm_log("snapshot: unknown command '%s' (see trialvm snapshot --help)", argv[1]);
	else
		fputs(usage_text, stderr);
	return TVM_EXIT_USAGE;
}
