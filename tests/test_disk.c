/* tests/test_disk.c - unit tests of the copy-on-write overlay
 * (devices/overlay.h), `trialvm disk diff|commit`, --disk parsing, the
 * virtio-blk request parser and the virtio-blk device driven through the
 * virtio-mmio register file over a fake guest memory. Every test works in
 * a fresh directory under $TMPDIR. Prints "ok NAME" / "FAIL NAME: why";
 * exits 1 on any failure. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../devices/devices.h"
#include "../devices/overlay.h"
#include "../devices/virtio.h"
#include "../devices/virtio_blk.h"
#include "../vmm/util.h"
#include "../vmm/vm.h"

#include "check.h"
#include "fake_vm.c"
/* An error sentence must name the file and say what is wrong. */
#define CHECK_ERR(name, rc, err, file, phrase)                                              \
	do {                                                                                \
		bool ok_ = (rc) < 0 && strstr((err).msg, (file)) && strstr((err).msg, (phrase)); \
		CHECK(name, ok_);                                                           \
		if (!ok_)                                                                   \
			printf("  got rc %d: %s\n", (int)(rc), (err).msg);                   \
	} while (0)

#define CL OVERLAY_CLUSTER

static char dir[256];
static char master[300], ovl[300], mapp[300];

/* ------------------------------------------------------------ helpers */

static bool file_has(const char *path, const char *s);
static uint8_t pattern(uint64_t i) { return (uint8_t)((i * 131) ^ (i >> 16) ^ 0x5a); }

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		perror(path);
		exit(2);
	}
	close(fd);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	uint8_t *d = NULL;
	struct tvm_err err;
	if (read_file(path, 1ull << 32, &d, len, &err) < 0)
		return NULL;
	return d;
}

static uint8_t *make_master(const char *path, uint64_t size)
{
	uint8_t *b = malloc(size);
	for (uint64_t i = 0; i < size; i++)
		b[i] = pattern(i);
	write_file(path, b, size);
	return b;
}

static void sha256_path(const char *path, uint8_t out[32])
{
	size_t len;
	uint8_t *d = slurp(path, &len);
	unsigned n = 0;
	EVP_Digest(d ? d : (uint8_t *)"", d ? len : 0, out, &n, EVP_sha256(), NULL);
	free(d);
}

static void rm_overlay(void)
{
	unlink(ovl);
	unlink(mapp);
}

/* Read the whole disk and compare with the model. */
static bool disk_equals(struct overlay *ov, const uint8_t *model, uint64_t size)
{
	uint8_t *b = malloc(size);
	bool ok = overlay_read(ov, 0, b, size) == 0 && memcmp(b, model, size) == 0;
	free(b);
	return ok;
}

static int wr(struct overlay *ov, uint8_t *model, uint64_t off, size_t len, uint8_t seed)
{
	uint8_t *b = malloc(len);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7);
	int rc = overlay_write(ov, off, b, len);
	if (rc == 0)
		memcpy(model + off, b, len);
	free(b);
	return rc;
}

/* ------------------------------------------------------------ overlay */

#define DISK_SIZE (10ull * CL + 1000) /* the last cluster is 1000 bytes */

static void test_cow(void)
{
	uint8_t sum0[32], sum1[32];
	uint8_t *m = make_master(master, DISK_SIZE);
	uint8_t *model = malloc(DISK_SIZE);
	memcpy(model, m, DISK_SIZE);
	sha256_path(master, sum0);
	struct tvm_err err;
	struct overlay *ov;
	int rc = overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	CHECK("cow-create", rc == 0);
	if (rc < 0) {
		printf("  %s\n", err.msg);
		exit(1);
	}
	CHECK("cow-size", overlay_size(ov) == DISK_SIZE && overlay_clusters(ov) == 11);
	CHECK("cow-map-written-at-create", access(mapp, F_OK) == 0);
	CHECK("cow-read-fresh", disk_equals(ov, model, DISK_SIZE));
	CHECK("cow-partial", wr(ov, model, CL + 100, 300, 1) == 0);
	CHECK("cow-span", wr(ov, model, 3 * CL - 50, 2 * CL + 100, 2) == 0); /* clusters 2,3,4,5 */
	CHECK("cow-full-cluster", wr(ov, model, 7 * CL, CL, 3) == 0);
	CHECK("cow-last-short", wr(ov, model, DISK_SIZE - 10, 10, 4) == 0);
	CHECK("cow-read-merged", disk_equals(ov, model, DISK_SIZE));
	CHECK("cow-rewrite", wr(ov, model, CL + 50, 100, 5) == 0 && disk_equals(ov, model, DISK_SIZE));
	uint8_t small[777];
	CHECK("cow-read-unaligned", overlay_read(ov, 3 * CL - 300, small, sizeof(small)) == 0 &&
					    memcmp(small, model + 3 * CL - 300, sizeof(small)) == 0);
	CHECK("cow-changed-count", overlay_changed_count(ov) == 7);
	uint64_t want[] = { 1, 2, 3, 4, 5, 7, 10 }, got[16];
	unsigned n = 0;
	for (int64_t c = overlay_next_changed(ov, 0); c >= 0 && n < 16; c = overlay_next_changed(ov, (uint64_t)c + 1))
		got[n++] = (uint64_t)c;
	CHECK("cow-iterator", n == 7 && memcmp(got, want, sizeof(want)) == 0);
	uint64_t off, len;
	overlay_cluster_extent(ov, 10, &off, &len);
	CHECK("cow-last-extent", off == 10 * CL && len == 1000);
	overlay_cluster_extent(ov, 3, &off, &len);
	CHECK("cow-extent", off == 3 * CL && len == CL);
	CHECK("cow-write-past-end", overlay_write(ov, DISK_SIZE - 1, small, 2) == -EINVAL);
	CHECK("cow-read-past-end", overlay_read(ov, DISK_SIZE, small, 1) == -EINVAL);
	CHECK("cow-offset-overflow", overlay_write(ov, UINT64_MAX - 1, small, 10) == -EINVAL &&
					     overlay_read(ov, UINT64_MAX, small, 2) == -EINVAL);
	CHECK("cow-zero-length", overlay_write(ov, DISK_SIZE, small, 0) == 0);
	/* write zeroes: partial cluster 0, whole cluster 8 (a hole), partial 9 */
	CHECK("cow-write-zeroes", overlay_write_zeroes(ov, CL - 10, 9 * CL) == 0);
	memset(model + CL - 10, 0, 9 * CL);
	CHECK("cow-zeroes-read", disk_equals(ov, model, DISK_SIZE));
	CHECK("cow-flush", overlay_flush(ov) == 0);
	rc = overlay_close(ov, &err);
	CHECK("cow-close", rc == 0);
	sha256_path(master, sum1);
	CHECK("cow-master-unchanged", memcmp(sum0, sum1, 32) == 0);

	/* persistence */
	rc = overlay_open(master, ovl, 0, &ov, &err);
	CHECK("persist-reopen", rc == 0);
	if (rc == 0) {
		CHECK("persist-data", disk_equals(ov, model, DISK_SIZE));
		CHECK("persist-count", overlay_changed_count(ov) == 11);
		CHECK("persist-write-again", wr(ov, model, 5, 5, 9) == 0);
		overlay_close(ov, &err);
	}
	rc = overlay_open(master, ovl, OVERLAY_INSPECT, &ov, &err);
	CHECK("inspect-open", rc == 0);
	if (rc == 0) {
		CHECK("inspect-data", disk_equals(ov, model, DISK_SIZE));
		CHECK("inspect-no-write", overlay_write(ov, 0, small, 1) == -EROFS && overlay_readonly(ov));
		/* a shared lock: two inspectors at once are fine, a writer is not */
		struct overlay *ov2;
		CHECK("inspect-twice", overlay_open(master, ovl, OVERLAY_INSPECT, &ov2, &err) == 0 &&
					       overlay_close(ov2, &err) == 0);
		rc = overlay_open(master, ovl, 0, &ov2, &err);
		CHECK_ERR("lock-writer-vs-inspect", rc, err, ovl, "in use");
		overlay_close(ov, &err);
	}
	sha256_path(master, sum1);
	CHECK("persist-master-unchanged", memcmp(sum0, sum1, 32) == 0);

	/* read-only: no overlay at all */
	rc = overlay_open(master, NULL, 0, &ov, &err);
	CHECK("ro-open", rc == 0);
	if (rc == 0) {
		CHECK("ro-read-master", disk_equals(ov, m, DISK_SIZE));
		CHECK("ro-write-refused", overlay_write(ov, 0, small, 1) == -EROFS &&
						  overlay_write_zeroes(ov, 0, 512) == -EROFS);
		CHECK("ro-flush", overlay_flush(ov) == 0 && overlay_changed_count(ov) == 0);
		overlay_close(ov, &err);
	}
	/* an aligned-size disk: no short last cluster */
	free(m);
	free(model);
}

static void test_open_errors(void)
{
	struct tvm_err err;
	struct overlay *ov = NULL;
	int rc;
	char other[300], path2[300];
	snprintf(other, sizeof(other), "%s/other.img", dir);
	snprintf(path2, sizeof(path2), "%s/none.ovl", dir);

	rc = overlay_open(other, ovl, 0, &ov, &err);
	CHECK_ERR("err-master-missing", rc, err, other, "No such file");
	write_file(other, "", 0);
	rc = overlay_open(other, NULL, 0, &ov, &err);
	CHECK_ERR("err-master-empty", rc, err, other, "empty");
	rc = overlay_open(dir, NULL, 0, &ov, &err);
	CHECK_ERR("err-master-dir", rc, err, dir, "not a regular file");
	rc = overlay_open(master, path2, 0, &ov, &err);
	CHECK_ERR("err-overlay-missing", rc, err, path2, "does not exist");
	rc = overlay_open(master, master, OVERLAY_CREATE, &ov, &err);
	CHECK_ERR("err-overlay-is-master", rc, err, master, "master image itself");
	char ln[300];
	snprintf(ln, sizeof(ln), "%s/hardlink.img", dir);
	CHECK("hardlink", link(master, ln) == 0);
	rc = overlay_open(master, ln, OVERLAY_CREATE, &ov, &err);
	CHECK_ERR("err-overlay-hardlink-master", rc, err, ln, "master image itself");
	unlink(ln);

	/* a good overlay with a few clusters, then damaged copies of its map */
	uint8_t *m = make_master(master, DISK_SIZE);
	free(m);
	rm_overlay();
	rc = overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	uint8_t buf[100] = { 1 };
	overlay_write(ov, 2 * CL, buf, sizeof(buf));
	overlay_close(ov, &err);
	size_t mlen;
	uint8_t *map = slurp(mapp, &mlen);
	CHECK("map-size", map && mlen == OVERLAY_MAP_HDR + 2 + 4);
	if (!map)
		return;
	CHECK("map-decode", overlay_map_decode(map, mlen, DISK_SIZE, NULL, NULL, NULL, &(const char *){ 0 }) == 0);
	rc = overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	CHECK("exclusive-lock", rc == 0);
	if (rc == 0) {
		struct overlay *ov2;
		int rc2 = overlay_open(master, ovl, 0, &ov2, &err);
		CHECK_ERR("err-locked", rc2, err, ovl, "in use by another process");
		overlay_close(ov, &err);
	}

	struct {
		const char *name;
		size_t len;      /* bytes of the map kept (0: all) */
		int flip;        /* byte to flip, -1 none */
		bool append;
		const char *phrase;
	} cases[] = {
		{ "err-map-empty", 1, -1, false, "truncated" },
		{ "err-map-short-header", 50, -1, false, "truncated" },
		{ "err-map-short-bitmap", OVERLAY_MAP_HDR + 1, -1, false, "truncated" },
		{ "err-map-no-crc", OVERLAY_MAP_HDR + 2, -1, false, "truncated" },
		{ "err-map-trailing", 0, -1, true, "trailing" },
		{ "err-map-magic", 0, 0, false, "bad magic" },
		{ "err-map-header-crc", 0, 30, false, "header checksum" },
		{ "err-map-bitmap-crc", 0, OVERLAY_MAP_HDR, false, "bitmap checksum" },
		{ "err-map-crc-field", 0, OVERLAY_MAP_HDR + 3, false, "checksum" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *b = malloc(mlen + 1);
		memcpy(b, map, mlen);
		size_t l = cases[i].len ? cases[i].len - (cases[i].len == 1) : mlen;
		if (cases[i].flip >= 0)
			b[cases[i].flip] ^= 0x40;
		if (cases[i].append)
			b[l++] = 0;
		write_file(mapp, b, l);
		free(b);
		rc = overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
		CHECK_ERR(cases[i].name, rc, err, mapp, cases[i].phrase);
		if (rc == 0)
			overlay_close(ov, &err);
	}
	write_file(mapp, map, mlen);
	rc = overlay_open(master, ovl, 0, &ov, &err);
	CHECK("map-restored", rc == 0);
	if (rc == 0)
		overlay_close(ov, &err);
	/* a file at PATH.map.tmp (an older trialvm's temporary name, or anyone's
	 * file) is ignored and never touched: flushes write new random names */
	char tmp[320];
	snprintf(tmp, sizeof(tmp), "%s.tmp", mapp);
	write_file(tmp, "garbage", 7);
	rc = overlay_open(master, ovl, 0, &ov, &err);
	CHECK("map-tmp-leftover-ignored", rc == 0);
	if (rc == 0) {
		overlay_write(ov, 0, buf, 1);
		CHECK("map-tmp-leftover-kept", overlay_close(ov, &err) == 0 && file_has(tmp, "garbage"));
		char cmd[700];
		snprintf(cmd, sizeof cmd, "ls %s.?????? 2>/dev/null | grep -q .", mapp);
		CHECK("map-flush-leaves-no-temporary", system(cmd) != 0);
	}
	unlink(tmp);
	map = (free(map), slurp(mapp, &mlen));

	/* another master of the same size */
	uint8_t *o = malloc(DISK_SIZE);
	memset(o, 0x11, DISK_SIZE);
	write_file(other, o, DISK_SIZE);
	rc = overlay_open(other, ovl, 0, &ov, &err);
	CHECK_ERR("err-foreign-master", rc, err, mapp, "different master");
	/* a master changed in the middle only (a sampled offset) */
	uint8_t *m2 = make_master(other, DISK_SIZE);
	m2[(8 * (DISK_SIZE / 16)) / CL * CL + 5] ^= 1; /* inside sample 8 only */
	write_file(other, m2, DISK_SIZE);
	rc = overlay_open(other, ovl, 0, &ov, &err);
	CHECK_ERR("err-master-modified", rc, err, mapp, "different master");
	free(m2);
	/* a master of another size */
	write_file(other, o, DISK_SIZE - 512);
	rc = overlay_open(other, ovl, 0, &ov, &err);
	CHECK_ERR("err-master-size", rc, err, mapp, "different size");
	free(o);
	/* the data file truncated */
	CHECK("truncate-data", truncate(ovl, DISK_SIZE - CL) == 0);
	rc = overlay_open(master, ovl, 0, &ov, &err);
	CHECK_ERR("err-data-truncated", rc, err, ovl, "truncated");
	CHECK("untruncate-data", truncate(ovl, DISK_SIZE) == 0);
	/* the map missing */
	unlink(mapp);
	rc = overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	CHECK_ERR("err-map-missing", rc, err, mapp, "no map");
	/* a map without its data file: not overwritten by a new overlay */
	write_file(mapp, map, mlen);
	unlink(ovl);
	rc = overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	CHECK_ERR("err-map-without-data", rc, err, mapp, "exists");
	free(map);
	rm_overlay();
	unlink(other);
}

/* Flushed data survives a SIGKILL; unflushed new clusters read from the master. */
static void test_crash(void)
{
	uint8_t *m = make_master(master, DISK_SIZE);
	rm_overlay();
	struct tvm_err err;
	struct overlay *ov;
	overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	uint8_t a[CL], b[CL], c[CL];
	memset(a, 0xaa, CL);
	memset(b, 0xbb, CL);
	memset(c, 0xcc, CL);
	overlay_write(ov, 1 * CL, a, CL);
	overlay_close(ov, &err);

	int pfd[2];
	if (pipe(pfd) < 0)
		exit(2);
	pid_t pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		struct overlay *o;
		if (overlay_open(master, ovl, 0, &o, &err) < 0)
			_exit(3);
		overlay_write(o, 2 * CL, b, CL);      /* new cluster, flushed */
		overlay_write(o, 1 * CL + 10, b, 10); /* rewrite, flushed */
		if (overlay_flush(o) < 0)
			_exit(4);
		overlay_write(o, 3 * CL + 100, c, 200); /* new cluster, never flushed */
		overlay_write(o, 4 * CL, c, CL);        /* new cluster, never flushed */
		(void)!write(pfd[1], "x", 1);
		pause();
		_exit(5);
	}
	close(pfd[1]);
	char x;
	bool synced = read(pfd[0], &x, 1) == 1;
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	close(pfd[0]);
	CHECK("crash-child-killed", synced && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	int rc = overlay_open(master, ovl, 0, &ov, &err);
	CHECK("crash-reopen", rc == 0);
	if (rc < 0) {
		printf("  %s\n", err.msg);
		free(m);
		return;
	}
	uint8_t r[CL];
	overlay_read(ov, 2 * CL, r, CL);
	CHECK("crash-flushed-cluster", memcmp(r, b, CL) == 0);
	overlay_read(ov, 1 * CL, r, CL);
	CHECK("crash-flushed-rewrite", memcmp(r, a, 10) == 0 && memcmp(r + 10, b, 10) == 0 &&
					       memcmp(r + 20, a, CL - 20) == 0);
	overlay_read(ov, 3 * CL, r, CL);
	CHECK("crash-unflushed-from-master", memcmp(r, m + 3 * CL, CL) == 0);
	overlay_read(ov, 4 * CL, r, CL);
	CHECK("crash-unflushed-full-from-master", memcmp(r, m + 4 * CL, CL) == 0);
	CHECK("crash-map-count", overlay_changed_count(ov) == 2);
	/* writing a partial cluster whose stale bytes are in the data file:
	 * the copy comes from the master, not from the stale data */
	overlay_write(ov, 3 * CL, c, 1);
	overlay_read(ov, 3 * CL, r, CL);
	CHECK("crash-stale-not-resurrected", r[0] == 0xcc && memcmp(r + 1, m + 3 * CL + 1, CL - 1) == 0);
	overlay_close(ov, &err);

	/* a child flushing in a loop, killed at a random moment: the map is
	 * always valid and holds every cluster acknowledged as flushed */
	pipe(pfd);
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		struct overlay *o;
		if (overlay_open(master, ovl, 0, &o, &err) < 0)
			_exit(3);
		for (uint8_t i = 0;; i++) {
			uint8_t blk[512];
			memset(blk, i, sizeof(blk));
			overlay_write(o, (uint64_t)(5 + i % 5) * CL + 512 * (i % 7), blk, sizeof(blk));
			if (overlay_flush(o) < 0)
				_exit(4);
			(void)!write(pfd[1], &i, 1);
		}
	}
	close(pfd[1]);
	unsigned acks = 0;
	uint8_t ack;
	while (acks < 40 && read(pfd[0], &ack, 1) == 1)
		acks++;
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	close(pfd[0]);
	rc = overlay_open(master, ovl, 0, &ov, &err);
	CHECK("crash-loop-map-valid", rc == 0);
	if (rc == 0) {
		bool all = true;
		for (uint64_t cl = 5; cl < 10; cl++)
			all = all && (overlay_next_changed(ov, cl) == (int64_t)cl);
		CHECK("crash-loop-acked-clusters", acks == 40 && all);
		overlay_close(ov, &err);
	}
	free(m);
	rm_overlay();
}

/* ------------------------------------------------------------ CLI */

/* Run disk_cli_main in a child with stdout/stderr to files; returns the
 * exit status. */
static int run_cli(int argc, char **argv, const char *out, const char *errf)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, 1);
		dup2(e, 2);
		_exit(disk_cli_main(argc, argv));
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool file_has(const char *path, const char *s)
{
	size_t len;
	uint8_t *d = slurp(path, &len);
	if (!d)
		return false;
	char *z = malloc(len + 1);
	memcpy(z, d, len);
	z[len] = 0;
	bool r = strstr(z, s) != NULL;
	free(z);
	free(d);
	return r;
}

static void test_cli(void)
{
	uint8_t *m = make_master(master, DISK_SIZE);
	uint8_t *model = malloc(DISK_SIZE);
	memcpy(model, m, DISK_SIZE);
	rm_overlay();
	struct tvm_err err;
	struct overlay *ov;
	overlay_open(master, ovl, OVERLAY_CREATE, &ov, &err);
	wr(ov, model, 3, 10, 1);
	wr(ov, model, 4 * CL + 5, 100, 2);
	wr(ov, model, DISK_SIZE - 1, 1, 3);
	overlay_write_zeroes(ov, 6 * CL, CL); /* a zero cluster: sparse in the output */
	memset(model + 6 * CL, 0, CL);
	overlay_close(ov, &err);
	uint8_t sum0[32], sum1[32];
	sha256_path(master, sum0);

	char out[300], errf[300], res[300];
	snprintf(out, sizeof(out), "%s/cli.out", dir);
	snprintf(errf, sizeof(errf), "%s/cli.err", dir);
	snprintf(res, sizeof(res), "%s/merged.img", dir);

	int rc = run_cli(4, (char *[]){ "disk", "diff", master, ovl, NULL }, out, errf);
	CHECK("diff-rc", rc == 0);
	const char *want = "cluster 0  offset 0x0  length 65536\n"
			   "cluster 4  offset 0x40000  length 65536\n"
			   "cluster 6  offset 0x60000  length 65536\n"
			   "cluster 10  offset 0xa0000  length 1000\n"
			   "4 of 11 clusters changed (197608 bytes)\n";
	size_t len;
	uint8_t *d = slurp(out, &len);
	CHECK("diff-output", d && len == strlen(want) && memcmp(d, want, len) == 0);
	if (d && (len != strlen(want) || memcmp(d, want, len)))
		printf("  got:\n%.*s", (int)len, (char *)d);
	free(d);

	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, res, NULL }, out, errf);
	CHECK("commit-rc", rc == 0);
	d = slurp(res, &len);
	CHECK("commit-merged", d && len == DISK_SIZE && memcmp(d, model, DISK_SIZE) == 0);
	free(d);
	struct stat st;
	CHECK("commit-sparse", stat(res, &st) == 0 && (uint64_t)st.st_blocks * 512 < DISK_SIZE);
	char tmp[320];
	snprintf(tmp, sizeof(tmp), "%s.tmp", res);
	char pat[330];
	snprintf(pat, sizeof(pat), "%s.??????", res);
	glob_t g;
	int gr = glob(pat, 0, NULL, &g);
	CHECK("commit-no-tmp-left", access(tmp, F_OK) != 0 && gr == GLOB_NOMATCH);
	if (gr == 0)
		globfree(&g);
	/* again over an existing OUT, beside an earlier commit's OUT.tmp, which
	 * is neither reused nor deleted (commit takes a new random name) */
	write_file(tmp, "stale", 5);
	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, res, NULL }, out, errf);
	d = slurp(res, &len);
	size_t tl = 0;
	uint8_t *t = slurp(tmp, &tl);
	CHECK("commit-replace", rc == 0 && d && len == DISK_SIZE && memcmp(d, model, DISK_SIZE) == 0 && t && tl == 5 &&
					memcmp(t, "stale", 5) == 0);
	free(d);
	free(t);
	unlink(tmp);

	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, master, NULL }, out, errf);
	CHECK("commit-refuse-master", rc == TVM_EXIT_USAGE && file_has(errf, "in place"));
	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, ovl, NULL }, out, errf);
	CHECK("commit-refuse-overlay", rc == TVM_EXIT_USAGE);
	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, mapp, NULL }, out, errf);
	CHECK("commit-refuse-map", rc == TVM_EXIT_USAGE);
	char sl[300];
	snprintf(sl, sizeof(sl), "%s/link-to-master", dir);
	symlink(master, sl);
	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, sl, NULL }, out, errf);
	CHECK("commit-refuse-symlink", rc == TVM_EXIT_USAGE);
	unlink(sl);
	char rel[300];
	snprintf(rel, sizeof(rel), "%s/./master.img", dir);
	rc = run_cli(5, (char *[]){ "disk", "commit", master, ovl, rel, NULL }, out, errf);
	CHECK("commit-refuse-other-spelling", rc == TVM_EXIT_USAGE);
	sha256_path(master, sum1);
	CHECK("commit-master-unchanged", memcmp(sum0, sum1, 32) == 0);

	rc = run_cli(2, (char *[]){ "disk", "--help", NULL }, out, errf);
	CHECK("cli-help", rc == 0 && file_has(out, "diff MASTER OVERLAY") && file_has(out, "commit MASTER OVERLAY OUT"));
	rc = run_cli(1, (char *[]){ "disk", NULL }, out, errf);
	CHECK("cli-no-command", rc == TVM_EXIT_USAGE);
	rc = run_cli(3, (char *[]){ "disk", "diff", master, NULL }, out, errf);
	CHECK("cli-diff-args", rc == TVM_EXIT_USAGE && file_has(errf, "needs MASTER OVERLAY"));
	rc = run_cli(3, (char *[]){ "disk", "frob", master, NULL }, out, errf);
	CHECK("cli-unknown", rc == TVM_EXIT_USAGE && file_has(errf, "unknown disk command 'frob'"));
	rc = run_cli(4, (char *[]){ "disk", "diff", master, res, NULL }, out, errf);
	CHECK("cli-diff-bad-overlay", rc == TVM_EXIT_ERROR && file_has(errf, "merged.img.map"));
	unlink(res);
	unlink(out);
	unlink(errf);
	rm_overlay();
	free(m);
	free(model);
}

/* ------------------------------------------------------------ --disk */

static void test_spec(void)
{
	struct disk_spec d;
	struct tvm_err err;
	CHECK("spec-plain", disk_spec_parse("a.img", &d, &err) == 0 && strcmp(d.path, "a.img") == 0 && !d.ro &&
				    !d.overlay);
	disk_spec_free(&d);
	CHECK("spec-ro", disk_spec_parse("/x/a.img,ro", &d, &err) == 0 && strcmp(d.path, "/x/a.img") == 0 && d.ro);
	disk_spec_free(&d);
	CHECK("spec-overlay", disk_spec_parse("a.img,overlay=/t/o", &d, &err) == 0 && strcmp(d.overlay, "/t/o") == 0 &&
				      !d.ro);
	disk_spec_free(&d);
	CHECK("spec-both", disk_spec_parse("a.img,overlay=o=1,ro", &d, &err) == 0 && strcmp(d.overlay, "o=1") == 0 &&
				   d.ro);
	disk_spec_free(&d);
	const char *bad[] = { "", ",ro", "a.img,", "a.img,rw", "a.img,ro,ro", "a.img,overlay=", "a.img,overlay=x,overlay=y",
			      "a.img,,ro", "a.img,RO" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "spec-bad-%u", i);
		int rc = disk_spec_parse(bad[i], &d, &err);
		CHECK(name, rc < 0 && err.msg[0] && d.storage == NULL);
		if (rc == 0)
			disk_spec_free(&d);
	}
	CHECK("spec-null", disk_spec_parse(NULL, &d, &err) < 0);
}

/* ------------------------------------------------------------ parser */

#define GMEM_SIZE (1u << 20)
static uint8_t *gram;
static struct mem_region greg;
static struct guest_mem gmem;

static void gmem_init(void)
{
	if (!gram)
		gram = aligned_alloc(4096, GMEM_SIZE);
	memset(gram, 0, GMEM_SIZE);
	greg = (struct mem_region){ .gpa = 0, .size = GMEM_SIZE, .host = gram };
	gmem = (struct guest_mem){ &greg, 1 };
}

static void put_hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	memcpy(gram + gpa, &type, 4);
	memset(gram + gpa + 4, 0, 4);
	memcpy(gram + gpa + 8, &sector, 8);
}

static struct virtq_elem E;
static void elem(unsigned nout, const struct virtq_seg *out, unsigned nin, const struct virtq_seg *in)
{
	memset(&E, 0, sizeof(E));
	E.n_out = nout;
	E.n_in = nin;
	for (unsigned i = 0; i < nout; i++) {
		E.out[i] = out[i];
		E.out_len += out[i].len;
	}
	for (unsigned i = 0; i < nin; i++) {
		E.in[i] = in[i];
		E.in_len += in[i].len;
	}
}

#define SEG(a, l) ((struct virtq_seg){ (a), (l) })

static void test_parser(void)
{
	gmem_init();
	struct blk_req r;
	const uint64_t cap = 1000; /* sectors */
	int rc;

	put_hdr(0x1000, VIRTIO_BLK_T_IN, 10);
	elem(1, &SEG(0x1000, 16), 2, (struct virtq_seg[]){ SEG(0x2000, 4096), SEG(0x9000, 1) });
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-read", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.type == VIRTIO_BLK_T_IN && r.off == 5120 &&
				  r.len == 4096 && r.status_off == 4096);
	/* the data and status may share a descriptor */
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x2000, 4097));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-read-one-seg", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.len == 4096 && r.status_off == 4096);
	rc = blk_parse_request(&E, &gmem, cap, true, &r);
	CHECK("req-read-ro-ok", rc == 0 && r.status == VIRTIO_BLK_S_OK);

	put_hdr(0x1000, VIRTIO_BLK_T_OUT, 999);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x2000, 512) }, 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-write-last-sector", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.off == 999 * 512 &&
					       r.len == 512 && r.data_off == 16);
	rc = blk_parse_request(&E, &gmem, cap, true, &r);
	CHECK("req-write-ro", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x2000, 1024) }, 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-write-past-end", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	put_hdr(0x1000, VIRTIO_BLK_T_OUT, 1000);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x2000, 0) }, 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-empty-at-end-ok", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.len == 0);
	put_hdr(0x1000, VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x2000, 513));
	rc = blk_parse_request(&E, &gmem, UINT64_MAX, false, &r);
	CHECK("req-sector-overflow", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	put_hdr(0x1000, VIRTIO_BLK_T_IN, UINT64_MAX / 512);
	rc = blk_parse_request(&E, &gmem, UINT64_MAX, false, &r);
	CHECK("req-end-overflow", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	put_hdr(0x1000, VIRTIO_BLK_T_IN, 0);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x2000, 1001));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-unaligned-length", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	elem(1, &SEG(0x1000, 8), 1, &SEG(0x2000, 513));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-short-header", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	elem(0, NULL, 1, &SEG(0x2000, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-no-header", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	put_hdr(0x1000, VIRTIO_BLK_T_OUT, 0);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x2000, 512) }, 0, NULL);
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-no-status", rc < 0 && r.why);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x2000, 512) }, 1, &SEG(0x9000, 0));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-empty-status-seg", rc < 0);
	elem(1, &SEG(0x1000, 16), 1, &SEG(GMEM_SIZE, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-status-outside-ram", rc < 0);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x9000, 1));
	E.in_len = 5;
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-inconsistent-totals", rc < 0);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x9000, 1));
	E.n_out = VIRTQ_MAX_SEGS + 1;
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-too-many-segs", rc < 0);
	/* header split over two descriptors */
	put_hdr(0x1000, VIRTIO_BLK_T_IN, 7);
	memcpy(gram + 0x3000, gram + 0x1008, 8);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 8), SEG(0x3000, 8) }, 1, &SEG(0x2000, 513));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-split-header", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.sector == 7 && r.len == 512);

	put_hdr(0x1000, VIRTIO_BLK_T_FLUSH, 0);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, cap, true, &r);
	CHECK("req-flush", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.type == VIRTIO_BLK_T_FLUSH);
	put_hdr(0x1000, VIRTIO_BLK_T_GET_ID, 0);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x2000, 21));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-get-id", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.len == 20 && r.status_off == 20);
	elem(1, &SEG(0x1000, 16), 1, &SEG(0x2000, 9));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-get-id-short", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.len == 8);
	put_hdr(0x1000, 99, 0);
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-unknown-type", rc == 0 && r.status == VIRTIO_BLK_S_UNSUPP);
	put_hdr(0x1000, VIRTIO_BLK_T_DISCARD, 0);
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-discard-unsupported", rc == 0 && r.status == VIRTIO_BLK_S_UNSUPP);

	/* write zeroes */
	put_hdr(0x1000, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	uint8_t seg[32] = { 0 };
	uint64_t s0 = 10, s1 = 990;
	uint32_t n0 = 20, n1 = 10, unmap = 1;
	memcpy(seg, &s0, 8);
	memcpy(seg + 8, &n0, 4);
	memcpy(seg + 12, &unmap, 4);
	memcpy(seg + 16, &s1, 8);
	memcpy(seg + 24, &n1, 4);
	memcpy(gram + 0x4000, seg, 32);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x4000, 32) }, 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-write-zeroes", rc == 0 && r.status == VIRTIO_BLK_S_OK && r.nranges == 2 && r.ranges[0].off == 5120 &&
					  r.ranges[0].len == 10240 && r.ranges[0].unmap && r.ranges[1].off == 990 * 512 &&
					  !r.ranges[1].unmap);
	rc = blk_parse_request(&E, &gmem, cap, true, &r);
	CHECK("req-write-zeroes-ro", rc == 0 && r.status != VIRTIO_BLK_S_OK);
	n1 = 11;
	memcpy(gram + 0x4000 + 24, &n1, 4);
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-write-zeroes-past-end", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	unmap = 2;
	memcpy(gram + 0x4000 + 12, &unmap, 4);
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-write-zeroes-reserved-flags", rc == 0 && r.status == VIRTIO_BLK_S_UNSUPP);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x4000, 24) }, 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, cap, false, &r);
	CHECK("req-write-zeroes-bad-list", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
	uint64_t big = UINT64_MAX / 256;
	memcpy(gram + 0x4000, &big, 8);
	memset(gram + 0x4000 + 12, 0, 4);
	elem(2, (struct virtq_seg[]){ SEG(0x1000, 16), SEG(0x4000, 16) }, 1, &SEG(0x9000, 1));
	rc = blk_parse_request(&E, &gmem, UINT64_MAX, false, &r);
	CHECK("req-write-zeroes-overflow", rc == 0 && r.status == VIRTIO_BLK_S_IOERR);
}

/* ------------------------------------------------------------ device */

static struct virtio_mmio T;
static uint32_t rd32(uint64_t off)
{
	uint32_t v = 0;
	virtio_mmio_access(&T, off, (uint8_t *)&v, 4, false);
	return v;
}
static void wr32(uint64_t off, uint32_t v) { virtio_mmio_access(&T, off, (uint8_t *)&v, 4, true); }

#define QDESC 0x1000u
#define QAVAIL 0x2000u
#define QUSED 0x3000u
#define QSZ 16u
static uint16_t avail_idx;

static bool dev_up(struct virtio_blk *b, uint64_t *features)
{
	gmem_init();
	avail_idx = 0;
	virtio_mmio_init(&T, &gmem, virtio_blk_ops(b), b);
	wr32(0x070, 1);
	wr32(0x070, 3);
	wr32(0x014, 0);
	uint64_t f = rd32(0x010);
	wr32(0x014, 1);
	f |= (uint64_t)rd32(0x010) << 32;
	*features = f;
	wr32(0x024, 0);
	wr32(0x020, (uint32_t)f);
	wr32(0x024, 1);
	wr32(0x020, (uint32_t)(f >> 32));
	wr32(0x070, 11);
	wr32(0x030, 0);
	wr32(0x038, QSZ);
	wr32(0x080, QDESC);
	wr32(0x090, QAVAIL);
	wr32(0x0a0, QUSED);
	wr32(0x044, 1);
	wr32(0x070, 15);
	return rd32(0x070) == 15;
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = gram + QDESC + 16 * i;
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Submit a 3-descriptor request (header, data, status) and notify. Returns
 * the status byte, or -1 if nothing came back. */
static int submit(uint32_t type, uint64_t sector, uint64_t data, uint32_t len, bool data_writable, uint32_t *used_len)
{
	put_hdr(0x8000, type, sector);
	gram[0x9000] = 0xee;
	desc(0, 0x8000, 16, VIRTQ_DESC_F_NEXT, 1);
	if (len) {
		desc(1, data, len, VIRTQ_DESC_F_NEXT | (data_writable ? VIRTQ_DESC_F_WRITE : 0), 2);
		desc(2, 0x9000, 1, VIRTQ_DESC_F_WRITE, 0);
	} else {
		desc(0, 0x8000, 16, VIRTQ_DESC_F_NEXT, 2);
		desc(2, 0x9000, 1, VIRTQ_DESC_F_WRITE, 0);
	}
	uint16_t slot = avail_idx % QSZ;
	memcpy(gram + QAVAIL + 4 + 2 * slot, &(uint16_t){ 0 }, 2);
	avail_idx++;
	memcpy(gram + QAVAIL + 2, &avail_idx, 2);
	uint16_t before;
	memcpy(&before, gram + QUSED + 2, 2);
	wr32(0x050, 0);
	uint16_t after;
	memcpy(&after, gram + QUSED + 2, 2);
	if (after != (uint16_t)(before + 1))
		return -1;
	if (used_len)
		memcpy(used_len, gram + QUSED + 4 + 8 * ((after - 1) % QSZ) + 4, 4);
	return gram[0x9000];
}

static void test_device(void)
{
	uint8_t *m = make_master(master, DISK_SIZE);
	uint8_t sum0[32], sum1[32];
	sha256_path(master, sum0);
	rm_overlay();
	struct disk_spec d;
	struct tvm_err err;
	char spec[700];
	snprintf(spec, sizeof(spec), "%s,overlay=%s", master, ovl);
	disk_spec_parse(spec, &d, &err);
	struct virtio_blk *b;
	int rc = virtio_blk_open(&d, DISK_PERSIST, &b, &err);
	CHECK("dev-open", rc == 0);
	if (rc < 0) {
		printf("  %s\n", err.msg);
		free(m);
		return;
	}
	uint64_t f = 0;
	CHECK("dev-up", dev_up(b, &f));
	CHECK("dev-id", rd32(0x008) == 2);
	CHECK("dev-features", (f & (1ull << VIRTIO_BLK_F_FLUSH)) && (f & (1ull << VIRTIO_BLK_F_SEG_MAX)) &&
				      (f & (1ull << VIRTIO_BLK_F_BLK_SIZE)) && !(f & (1ull << VIRTIO_BLK_F_RO)) &&
				      (f & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)));
	uint64_t capv = (uint64_t)rd32(0x100) | (uint64_t)rd32(0x104) << 32;
	CHECK("dev-capacity", capv == DISK_SIZE / 512);
	CHECK("dev-blk-size", rd32(0x100 + 20) == 512 && rd32(0x100 + 12) == BLK_SEG_MAX);

	uint32_t ul = 0;
	int st = submit(VIRTIO_BLK_T_IN, 128, 0x10000, 4096, true, &ul);
	CHECK("dev-read", st == VIRTIO_BLK_S_OK && ul == 4097 && memcmp(gram + 0x10000, m + 128 * 512, 4096) == 0);
	memset(gram + 0x20000, 0x77, 8192);
	st = submit(VIRTIO_BLK_T_OUT, 127, 0x20000, 8192, false, &ul);
	CHECK("dev-write", st == VIRTIO_BLK_S_OK && ul == 1);
	st = submit(VIRTIO_BLK_T_IN, 126, 0x30000, 4096 * 3, true, NULL);
	CHECK("dev-read-back", st == VIRTIO_BLK_S_OK && memcmp(gram + 0x30000, m + 126 * 512, 512) == 0 &&
				       gram[0x30000 + 512] == 0x77 && gram[0x30000 + 8192 + 511] == 0x77 &&
				       memcmp(gram + 0x30000 + 8704, m + 126 * 512 + 8704, 12288 - 8704) == 0);
	st = submit(VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, NULL);
	CHECK("dev-flush", st == VIRTIO_BLK_S_OK);
	st = submit(VIRTIO_BLK_T_GET_ID, 0, 0x40000, 20, true, &ul);
	CHECK("dev-get-id", st == VIRTIO_BLK_S_OK && memcmp(gram + 0x40000, "trialvm-vd", 10) == 0 && ul == 21);
	st = submit(VIRTIO_BLK_T_IN, DISK_SIZE / 512, 0x10000, 512, true, NULL);
	CHECK("dev-read-past-end", st == VIRTIO_BLK_S_IOERR);
	st = submit(VIRTIO_BLK_T_OUT, 0, 0x20000, 100, false, NULL);
	CHECK("dev-write-unaligned", st == VIRTIO_BLK_S_IOERR);
	st = submit(42, 0, 0x20000, 512, false, NULL);
	CHECK("dev-unsupported", st == VIRTIO_BLK_S_UNSUPP);
	/* A VM that is stopping: a large request stops after its first 256 KiB
	 * step (an I/O error for the guest) instead of running to the end. */
	struct vm *stopping = fake_vm_new(64ull << 20, 1);
	if (stopping) {
		stopping->stopping = true;
		T.vm = stopping;
		memset(gram + 0x40000, 0x99, 512 * 1024);
		uint64_t at = 128 * 1024; /* clear of what the checks below read back */
		st = submit(VIRTIO_BLK_T_OUT, at / 512, 0x40000, 512 * 1024, false, NULL);
		uint8_t first[512], after[512];
		struct overlay *ovb = virtio_blk_overlay(b);
		overlay_read(ovb, at + 256 * 1024 - 512, first, sizeof first);
		overlay_read(ovb, at + 256 * 1024, after, sizeof after);
		CHECK("dev-stop-cuts-large-request", st == VIRTIO_BLK_S_IOERR && first[0] == 0x99 && first[511] == 0x99 &&
							     memcmp(after, m + at + 256 * 1024, 512) == 0);
		T.vm = NULL;
		fake_vm_free(stopping);
	}
	CHECK("dev-still-alive", !(rd32(0x070) & VIRTIO_STATUS_NEEDS_RESET));
	/* a chain with no writable byte: the device fails, the VMM lives */
	desc(0, 0x8000, 16, 0, 0);
	put_hdr(0x8000, VIRTIO_BLK_T_IN, 0);
	memcpy(gram + QAVAIL + 4 + 2 * (avail_idx % QSZ), &(uint16_t){ 0 }, 2);
	avail_idx++;
	memcpy(gram + QAVAIL + 2, &avail_idx, 2);
	wr32(0x050, 0);
	CHECK("dev-no-status-fails", rd32(0x070) & VIRTIO_STATUS_NEEDS_RESET);

	const char *kept = NULL;
	rc = virtio_blk_finish(b, false, &kept, &err);
	CHECK("dev-finish-persist", rc == 0 && kept && strcmp(kept, ovl) == 0 && access(mapp, F_OK) == 0);
	virtio_blk_free(b);
	sha256_path(master, sum1);
	CHECK("dev-master-unchanged", memcmp(sum0, sum1, 32) == 0);
	/* the write is in the persisted overlay */
	struct overlay *ov;
	rc = overlay_open(master, ovl, 0, &ov, &err);
	uint8_t x[512];
	CHECK("dev-persisted", rc == 0 && overlay_read(ov, 127 * 512, x, 512) == 0 && x[0] == 0x77);
	if (rc == 0)
		overlay_close(ov, &err);

	/* ro: the feature is offered and writes fail */
	disk_spec_free(&d);
	snprintf(spec, sizeof(spec), "%s,ro", master);
	disk_spec_parse(spec, &d, &err);
	rc = virtio_blk_open(&d, DISK_DISCARD, &b, &err);
	CHECK("dev-ro-open", rc == 0);
	if (rc == 0) {
		CHECK("dev-ro-up", dev_up(b, &f) && (f & (1ull << VIRTIO_BLK_F_RO)));
		st = submit(VIRTIO_BLK_T_OUT, 0, 0x20000, 512, false, NULL);
		CHECK("dev-ro-write", st == VIRTIO_BLK_S_IOERR);
		st = submit(VIRTIO_BLK_T_IN, 0, 0x10000, 512, true, NULL);
		CHECK("dev-ro-read", st == VIRTIO_BLK_S_OK && memcmp(gram + 0x10000, m, 512) == 0);
		CHECK("dev-ro-finish", virtio_blk_finish(b, false, &kept, &err) == 0 && kept == NULL);
		st = submit(VIRTIO_BLK_T_IN, 0, 0x10000, 512, true, NULL);
		CHECK("dev-after-finish-ioerr", st == VIRTIO_BLK_S_IOERR);
		virtio_blk_free(b);
	}

	/* discard mode: a temporary overlay, deleted at exit unless kept */
	disk_spec_free(&d);
	disk_spec_parse(master, &d, &err);
	setenv("TMPDIR", dir, 1);
	rc = virtio_blk_open(&d, DISK_DISCARD, &b, &err);
	CHECK("dev-discard-open", rc == 0);
	if (rc == 0) {
		dev_up(b, &f);
		st = submit(VIRTIO_BLK_T_OUT, 0, 0x20000, 512, false, NULL);
		const char *p = overlay_path(virtio_blk_overlay(b));
		char saved[300];
		snprintf(saved, sizeof(saved), "%s", p);
		CHECK("dev-discard-where", strncmp(saved, dir, strlen(dir)) == 0 && strstr(saved, "/trialvm-disk-") &&
						   strstr(saved, "master.img.overlay") && access(saved, F_OK) == 0);
		CHECK("dev-discard-finish", virtio_blk_finish(b, false, &kept, &err) == 0 && kept == NULL &&
						    access(saved, F_OK) != 0);
		*strrchr(saved, '/') = 0;
		CHECK("dev-discard-dir-removed", access(saved, F_OK) != 0);
		virtio_blk_free(b);
	}
	rc = virtio_blk_open(&d, DISK_DISCARD, &b, &err);
	if (rc == 0) {
		dev_up(b, &f);
		st = submit(VIRTIO_BLK_T_OUT, 0, 0x20000, 512, false, NULL);
		CHECK("dev-discard-keep", virtio_blk_finish(b, true, &kept, &err) == 0 && kept &&
						  access(kept, F_OK) == 0);
		if (kept) {
			/* the kept overlay is complete: diff-able */
			rc = overlay_open(master, kept, OVERLAY_INSPECT, &ov, &err);
			CHECK("dev-discard-kept-valid", rc == 0 && overlay_changed_count(ov) == 1);
			if (rc == 0)
				overlay_close(ov, &err);
			char cmd[400];
			snprintf(cmd, sizeof(cmd), "%s", kept);
			unlink(cmd);
			strcat(cmd, ".map");
			unlink(cmd);
			*strrchr(cmd, '/') = 0;
			rmdir(cmd);
		}
		virtio_blk_free(b);
	}
	/* discard with overlay=PATH: PATH must not exist */
	disk_spec_free(&d);
	snprintf(spec, sizeof(spec), "%s,overlay=%s", master, ovl);
	disk_spec_parse(spec, &d, &err);
	rc = virtio_blk_open(&d, DISK_DISCARD, &b, &err);
	CHECK_ERR("dev-discard-path-exists", rc, err, ovl, "already exists");
	rm_overlay();
	rc = virtio_blk_open(&d, DISK_DISCARD, &b, &err);
	CHECK("dev-discard-path", rc == 0 && access(ovl, F_OK) == 0);
	if (rc == 0) {
		CHECK("dev-discard-path-removed", virtio_blk_finish(b, false, &kept, &err) == 0 && access(ovl, F_OK) != 0 &&
							  access(mapp, F_OK) != 0 && access(dir, F_OK) == 0);
		virtio_blk_free(b);
	}
	/* persist with the default path ./BASENAME.overlay */
	disk_spec_free(&d);
	disk_spec_parse(master, &d, &err);
	char cwd[512];
	if (getcwd(cwd, sizeof(cwd)) && chdir(dir) == 0) {
		rc = virtio_blk_open(&d, DISK_PERSIST, &b, &err);
		CHECK("dev-persist-default-path", rc == 0 && access("master.img.overlay", F_OK) == 0);
		if (rc == 0) {
			CHECK("dev-persist-kept", virtio_blk_finish(b, false, &kept, &err) == 0 && kept &&
							  strcmp(kept, "./master.img.overlay") == 0 &&
							  access("master.img.overlay.map", F_OK) == 0);
			virtio_blk_free(b);
		}
		unlink("master.img.overlay");
		unlink("master.img.overlay.map");
		if (chdir(cwd) != 0)
			exit(2);
	}
	/* a master too small for one sector */
	disk_spec_free(&d);
	char tiny[300];
	snprintf(tiny, sizeof(tiny), "%s/tiny.img", dir);
	write_file(tiny, "abc", 3);
	disk_spec_parse(tiny, &d, &err);
	rc = virtio_blk_open(&d, DISK_DISCARD, &b, &err);
	CHECK_ERR("dev-tiny-master", rc, err, tiny, "512-byte sector");
	unlink(tiny);
	disk_spec_free(&d);
	sha256_path(master, sum1);
	CHECK("dev-master-unchanged-end", memcmp(sum0, sum1, 32) == 0);
	free(m);
}

/* Registration: the next free slot; on a fake VM (no KVM), then on a real
 * one where /dev/kvm works. */
static void test_register(bool real)
{
	if (real && !kvm_usable()) {
		printf("skip register-kvm: /dev/kvm is not usable (the same checks ran on a fake VM)\n");
		return;
	}
	uint8_t *m = make_master(master, DISK_SIZE);
	free(m);
	struct tvm_err err;
	struct vm_config cfg = { .ram_size = 64ull << 20, .ncpus = 1 };
	struct vm *vm = real ? vm_create(&cfg, &err) : fake_vm_new(cfg.ram_size, 1);
	CHECK("register-vm", vm != NULL);
	if (!vm) {
		printf("  %s\n", err.msg);
		return;
	}
	virtio_mmio_reset_registry();
	struct disk_spec d;
	char spec[400];
	snprintf(spec, sizeof(spec), "%s,ro", master);
	disk_spec_parse(spec, &d, &err);
	struct virtio_blk *b1 = NULL, *b2 = NULL;
	int rc1 = virtio_blk_add(vm, &d, DISK_DISCARD, &b1, &err);
	int rc2 = virtio_blk_add(vm, &d, DISK_DISCARD, &b2, &err);
	char cmd[512];
	virtio_mmio_cmdline(cmd, sizeof(cmd));
	CHECK("register-two", rc1 == 0 && rc2 == 0 && virtio_mmio_count() == 2 &&
				      strstr(cmd, "4K@0xd0000000:5") && strstr(cmd, "4K@0xd0001000:6"));
	CHECK("register-finish", virtio_blk_finish(b1, false, NULL, &err) == 0 &&
					 virtio_blk_finish(b2, false, NULL, &err) == 0);
	if (real)
		vm_destroy(vm);
	else
		fake_vm_free(vm);
	virtio_mmio_reset_registry();
	virtio_blk_free(b1);
	virtio_blk_free(b2);
	disk_spec_free(&d);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test_disk-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(master, sizeof(master), "%s/master.img", dir);
	snprintf(ovl, sizeof(ovl), "%s/disk.ovl", dir);
	snprintf(mapp, sizeof(mapp), "%s/disk.ovl.map", dir);
	test_cow();
	test_open_errors();
	test_crash();
	test_cli();
	test_spec();
	test_parser();
	test_device();
	test_register(false);
	test_register(true);
	rm_overlay();
	unlink(master);
	if (rmdir(dir) < 0)
		printf("FAIL cleanup: %s not empty\n", dir), failures++;
	free(gram);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "done", failures);
	return failures ? 1 : 0;
}
