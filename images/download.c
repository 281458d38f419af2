/* images/download.c - trial packages fetched by URL (download.h). */
#include "download.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../reporter/upload.h"
#include "../vmm/fileio.h"
#include "../vmm/util.h"

#define TRIES 4

int cache_dir(const char *sub, char *out, size_t cap, struct tvm_err *err)
{
	return user_dir("TRIALVM_CACHE", "XDG_CACHE_HOME", ".cache", sub, out, cap, err);
}

bool download_is_url(const char *s) { return !strncmp(s, "https://", 8) || !strncmp(s, "http://", 7); }

struct dl {
	int fd;
	uint64_t at, start;      /* bytes in the file; where this request began */
	long status;             /* of the response whose body is being written */
	bool progress, restart;
	uint64_t total, last_ns;
	char why[256];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t len = size * n;
	if (d->status == 0) {
		/* The first bytes of the body: 206 goes on at the end of what we
		 * have, 200 is the whole file again. */
		d->status = 1;
		if (d->restart) {
			if (ftruncate(d->fd, 0) < 0) {
				snprintf(d->why, sizeof(d->why), "cannot truncate: %s", strerror(errno));
				return 0;
			}
			d->at = 0;
		}
	}
	if (d->at + len > DOWNLOAD_MAX) {
		snprintf(d->why, sizeof(d->why), "the package is larger than %llu GiB", DOWNLOAD_MAX >> 30);
		return 0;
	}
	int r = pwrite_all(d->fd, p, len, d->at);
	if (r < 0) {
		snprintf(d->why, sizeof(d->why), "cannot write the download: %s", strerror(-r));
		return 0;
	}
	d->at += len;
	uint64_t now = now_ns();
	if (d->progress && now - d->last_ns > 300000000ull) {
		d->last_ns = now;
		if (d->total)
			fprintf(stderr, "\rtrialvm: download: %3llu%% of %llu KiB", (unsigned long long)(d->at * 100 / d->total),
				(unsigned long long)(d->total >> 10));
		else
			fprintf(stderr, "\rtrialvm: download: %llu KiB", (unsigned long long)(d->at >> 10));
	}
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct dl *d = arg;
	size_t len = size * n;
	long code;
	if (len > 5 && !strncmp(p, "HTTP/", 5) && sscanf(p, "HTTP/%*s %ld", &code) == 1) {
		d->status = 0;
		d->restart = code == 200; /* the server ignored the range */
	}
	unsigned long long v;
	if (len > 15 && !strncasecmp(p, "Content-Length:", 15) && sscanf(p + 15, "%llu", &v) == 1)
		d->total = (d->restart ? 0 : d->start) + v;
	return len;
}

/* One GET of url into fd from its current end. 0 when the file is whole. */
static int fetch(CURL *c, const char *url, struct dl *d, struct tvm_err *err)
{
	char eb[CURL_ERROR_SIZE] = "";
	curl_easy_reset(c);
	http_client_defaults(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DOWNLOAD_MAX);
	d->start = d->at;
	d->status = 0;
	d->restart = false;
	d->total = 0;
	d->why[0] = 0;
	if (d->at)
		curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)d->at);
	CURLcode r = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (d->progress && d->last_ns)
		fputc('\n', stderr);
	d->last_ns = 0;
	if (r == CURLE_OK)
		return 0;
	if (code == 416 && d->start) /* nothing past what we have: it was whole */
		return 0;
	tvm_seterr(err, "%s", d->why[0] ? d->why : eb[0] ? eb : curl_easy_strerror(r));
	/* The server's no (404, 403...) stays no; a broken transfer, a timeout,
	 * 408, 429 and 5xx may go better. */
	return r == CURLE_HTTP_RETURNED_ERROR && code >= 400 && code < 500 && code != 408 && code != 429 ? -2 : -1;
}

int download_package(const char *url, bool refresh, bool progress, char *path, size_t cap, struct tvm_err *err)
{
	char dir[PATH_MAX], urlhash[65], part[PATH_MAX + 80], idx[PATH_MAX + 80];
	uint8_t md[32];
	if (!upload_url_ok(url))
		return tvm_seterr(err, "%s is not an http:// or https:// URL launch can fetch", url);
	if (cache_dir("downloads", dir, sizeof(dir), err) < 0)
		return -1;
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return tvm_seterr(err, "cannot create the download cache %s: %s", dir, strerror(-r));
	EVP_Q_digest(NULL, "SHA256", NULL, url, strlen(url), md, NULL);
	sha256_hex(md, urlhash);
	snprintf(part, sizeof(part), "%s/%s.partial", dir, urlhash);
	snprintf(idx, sizeof(idx), "%s/%s.url", dir, urlhash);
	/* Fetched before: the file it named, when it is still there. */
	uint8_t *text = NULL;
	size_t len = 0;
	struct tvm_err ierr = { "" };
	struct stat st;
	if (!refresh && read_file(idx, 128, &text, &len, &ierr) == 0 && len >= 64) {
		int n = snprintf(path, cap, "%s/%.64s.tvp", dir, (const char *)text);
		free(text);
		if (n > 0 && (size_t)n < cap && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			tvm_log("launch: %s, as downloaded before (--refresh fetches it again)", url);
			return 0;
		}
	} else {
		free(text);
	}
	int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return tvm_seterr(err, "cannot open %s: %s", part, strerror(errno));
	}
	struct dl d = { .fd = fd, .at = refresh ? 0 : (uint64_t)st.st_size, .progress = progress };
	if (refresh && ftruncate(fd, 0) < 0) {
		close(fd);
		return tvm_seterr(err, "cannot truncate %s: %s", part, strerror(errno));
	}
	CURL *c = curl_easy_init();
	int rc = c ? -1 : tvm_seterr(err, "cannot start libcurl");
	for (int t = 0; c && t < TRIES; t++) {
		if (d.at)
			tvm_log("launch: resuming the download of %s at byte %llu", url, (unsigned long long)d.at);
		else
			tvm_log("launch: downloading %s", url);
		if ((rc = fetch(c, url, &d, err)) == 0 || rc == -2)
			break;
		if (t + 1 < TRIES) {
			tvm_log("launch: the download stopped at byte %llu (%s); trying again", (unsigned long long)d.at, err->msg);
			sleep(1u << t);
		}
	}
	if (c)
		curl_easy_cleanup(c);
	if (rc == 0 && (fsync(fd) < 0 || ftruncate(fd, (off_t)d.at) < 0))
		rc = tvm_seterr(err, "cannot write %s: %s", part, strerror(errno));
	char hex[65];
	if (rc < 0)
		rc = -1;
	if (rc == 0 && (lseek(fd, 0, SEEK_SET) < 0 || (r = sha256_fd(fd, md)) < 0))
		rc = tvm_seterr(err, "cannot read %s: %s", part, strerror(errno));
	close(fd);
	if (rc < 0)
		return tvm_seterr(err, "downloading %s: %.3000s (%llu bytes are kept in %s; launch again to resume)", url,
				  err->msg, (unsigned long long)d.at, part);
	sha256_hex(md, hex);
	if ((size_t)snprintf(path, cap, "%s/%s.tvp", dir, hex) >= cap)
		return tvm_seterr(err, "the download cache's path is too long");
	if (rename(part, path) < 0)
		return tvm_seterr(err, "cannot move %s to %s: %s", part, path, strerror(errno));
	if (write_file_durably(idx, hex, 64, 0600, err) < 0)
		return -1;
	tvm_log("launch: downloaded %llu bytes, sha256 %s", (unsigned long long)d.at, hex);
	return 0;
}
