/* devices/disk_cli.c - `trialvm disk diff|commit`: inspect an overlay and
 * merge it into a new image. Nothing here ever writes the master or the
 * overlay (both are opened read-only; OVERLAY_INSPECT). */
#include "devices.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vmm/fileio.h"
#include "../vmm/util.h"
#include "overlay.h"

static const char usage_text[] =
	"Usage: trialvm disk COMMAND ARGS...\n"
	"\n"
	"Commands:\n"
	"  diff MASTER OVERLAY          list the clusters OVERLAY changed (64 KiB each)\n"
	"  commit MASTER OVERLAY OUT    write MASTER with OVERLAY applied to a new file OUT\n"
	"                               (via a new OUT.XXXXXX, fsync'ed and renamed; OUT may\n"
	"                               not be MASTER, OVERLAY or an existing non-regular\n"
	"                               file; zero clusters are left sparse)\n"
	"  --help                       this text\n"
	"\n"
	"OVERLAY is the path given with --disk FILE,overlay=PATH (its map is PATH.map).\n"
	"Exit status: 0 done, 125 error, 126 bad command line.\n";

static int usage_error(const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, arg);
	tvm_log("disk: %s (see trialvm disk --help)", msg);
	return TVM_EXIT_USAGE;
}

static int cmd_diff(const char *master, const char *ovl_path)
{
	struct overlay *ov;
	struct tvm_err err;
	if (overlay_open(master, ovl_path, OVERLAY_INSPECT, &ov, &err) < 0) {
		tvm_log("disk diff: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	uint64_t bytes = 0;
	for (int64_t c = overlay_next_changed(ov, 0); c >= 0; c = overlay_next_changed(ov, (uint64_t)c + 1)) {
		uint64_t off, len;
		overlay_cluster_extent(ov, (uint64_t)c, &off, &len);
		printf("cluster %lld  offset 0x%llx  length %llu\n", (long long)c, (unsigned long long)off,
		       (unsigned long long)len);
		bytes += len;
	}
	printf("%llu of %llu clusters changed (%llu bytes)\n", (unsigned long long)overlay_changed_count(ov),
	       (unsigned long long)overlay_clusters(ov), (unsigned long long)bytes);
	overlay_abandon(ov);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tvm_log("disk diff: cannot write the list: %s", strerror(errno));
		return TVM_EXIT_ERROR;
	}
	return 0;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static bool same_inode(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int cmd_commit(const char *master, const char *ovl_path, const char *out)
{
	char map_path[PATH_MAX], tmp[PATH_MAX];
	if (snprintf(map_path, sizeof(map_path), "%s.map", ovl_path) >= (int)sizeof(map_path) ||
	    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", out) >= (int)sizeof(tmp))
		return usage_error("path too long: %s", out);
	const char *inputs[] = { master, ovl_path, map_path };
	for (unsigned i = 0; i < 3; i++) {
		if (strcmp(out, inputs[i]) == 0 || same_inode(out, inputs[i]))
			return usage_error("refusing to write %s: it is one of the inputs (commit never works in place)",
					   out);
	}
	/* The rename at the end replaces OUT: only ever a regular file (never a
	 * device node, FIFO, directory or symbolic link). */
	struct stat so;
	if (lstat(out, &so) == 0 && !S_ISREG(so.st_mode))
		return usage_error("refusing to write %s: it exists and is not a regular file (a device, FIFO, "
				   "directory or symbolic link); give a new path, or a regular file to replace",
				   out);
	struct overlay *ov;
	struct tvm_err err;
	if (overlay_open(master, ovl_path, OVERLAY_INSPECT, &ov, &err) < 0) {
		tvm_log("disk commit: %s", err.msg);
		return TVM_EXIT_ERROR;
	}
	uint64_t size = overlay_size(ov);
	uint8_t *buf = malloc(OVERLAY_CLUSTER);
	int fd = -1, rc = TVM_EXIT_ERROR;
	const char *what = "write";
	if (!buf) {
		errno = ENOMEM;
		goto fail;
	}
	/* A new, unpredictable temporary name (O_EXCL): nothing that exists,
	 * an interrupted commit's leftover included, is ever deleted or reused. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0644) < 0) {
		what = "create a temporary file for";
		goto fail_tmp_open;
	}
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail_tmp;
	bool tty = isatty(2);
	unsigned last_pct = 101;
	for (uint64_t off = 0; off < size; off += OVERLAY_CLUSTER) {
		size_t n = size - off < OVERLAY_CLUSTER ? (size_t)(size - off) : OVERLAY_CLUSTER;
		int r = overlay_read(ov, off, buf, n);
		if (r < 0) {
			errno = -r;
			what = "read the disk for";
			goto fail_tmp;
		}
		if (!is_zero(buf, n)) { /* zeroes stay a hole of the sparse file */
			int w = pwrite_all(fd, buf, n, off);
			if (w < 0) {
				errno = -w;
				goto fail_tmp;
			}
		}
		unsigned pct = (unsigned)((off + n) * 100 / size);
		if (tty && pct != last_pct) {
			fprintf(stderr, "\rtrialvm: commit %s: %3u%%", out, pct);
			last_pct = pct;
		}
	}
	if (tty)
		fputc('\n', stderr);
	if (fsync(fd) < 0)
		goto fail_tmp;
	if (close(fd) < 0) {
		fd = -1;
		goto fail_tmp;
	}
	fd = -1;
	if (rename(tmp, out) < 0) {
		what = "rename into place";
		goto fail_tmp;
	}
	int e = fsync_parent(out);
	if (e < 0 && e != -ENOENT && e != -EACCES) { /* an unopenable directory was never fsync'ed before either */
		errno = -e;
		what = "sync the directory of";
		goto fail;
	}
	fprintf(stderr, "trialvm: wrote %s (%llu bytes, %llu changed clusters from %s)\n", out,
		(unsigned long long)size, (unsigned long long)overlay_changed_count(ov), ovl_path);
	rc = 0;
	goto out;
fail_tmp_open:
	if (fd < 0)
		goto fail;
fail_tmp: {
	int e = errno;
	if (fd >= 0)
		close(fd);
	fd = -1;
	unlink(tmp);
	errno = e;
}
fail:
	tvm_log("disk commit: cannot %s %s: %s", what, out, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	overlay_abandon(ov);
	return rc;
}

static int disk_cli(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return TVM_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
	if (strcmp(cmd, "diff") == 0) {
		if (argc != 4)
			return usage_error("%s needs MASTER OVERLAY", "diff");
		return cmd_diff(argv[2], argv[3]);
	}
	if (strcmp(cmd, "commit") == 0) {
		if (argc != 5)
			return usage_error("%s needs MASTER OVERLAY OUT", "commit");
		return cmd_commit(argv[2], argv[3], argv[4]);
	}
	return usage_error("unknown disk command '%s'", cmd);
}

int disk_cli_main(int argc, char **argv)
{
	int rc = disk_cli(argc, argv);
	if (fflush(stdout) != 0 && rc == 0) {
		tvm_log("disk: cannot write to standard output: %s", strerror(errno));
		rc = TVM_EXIT_ERROR;
	}
	return rc;
}
