/* reporter/upload.c - the upload client of the feedback protocol (upload.h). */
#include "upload.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../vmm/text.h"
#include "../vmm/util.h"

#define RESPONSE_MAX (1u << 20) /* a reply larger than this is refused */
#define CHUNK_RESENDS 3         /* a chunk the server says arrived damaged */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_start(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

bool upload_url_ok(const char *url)
{
	const char *host = !strncmp(url, "https://", 8) ? url + 8 : !strncmp(url, "http://", 7) ? url + 7 : NULL;
	if (!host || !*host || *host == '/' || strlen(url) >= sizeof(((struct upload_dest *)0)->url))
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

void http_client_defaults(void *curl)
{
	CURL *c = curl;
	pthread_once(&curl_once, curl_start);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 512L); /* a stalled server: under 512 B/s for 30 s */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "trialvm/" TRIALVM_VERSION);
	const char *ca = getenv("TRIALVM_CA_FILE");
	if (ca && *ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
}

struct http {
	CURL *c;
	char *resp;
	size_t resp_len;
	bool resp_over;
	long status;
	double retry_after; /* seconds; < 0: none given */
	const uint8_t *body;
	size_t body_len, body_pos;
	char errbuf[CURL_ERROR_SIZE];
	/* progress */
	bool progress;
	uint64_t sent, total, last_ns;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct http *h = arg;
	size_t len = size * n;
	if (h->resp_len + len > RESPONSE_MAX) {
		h->resp_over = true;
		return 0; /* aborts the transfer */
	}
	char *q = realloc(h->resp, h->resp_len + len + 1);
	if (!q)
		return 0;
	memcpy(q + h->resp_len, p, len);
	h->resp = q;
	h->resp_len += len;
	q[h->resp_len] = 0;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct http *h = arg;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		char v[128];
		size_t k = len - 12 < sizeof(v) - 1 ? len - 12 : sizeof(v) - 1;
		memcpy(v, p + 12, k);
		v[k] = 0;
		char *end;
		double s = strtod(v, &end);
		if (end != v && s >= 0 && s < 1e7) {
			h->retry_after = s;
		} else {
			time_t t = curl_getdate(v, NULL); /* an HTTP date */
			if (t > 0)
				h->retry_after = t > time(NULL) ? (double)(t - time(NULL)) : 0;
		}
	}
	return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct http *h = arg;
	size_t k = size * n < h->body_len - h->body_pos ? size * n : h->body_len - h->body_pos;
	memcpy(p, h->body + h->body_pos, k);
	h->body_pos += k;
	return k;
}

static int on_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct http *h = arg;
	(void)dlt, (void)dln, (void)ult;
	uint64_t now = now_ns();
	if (h->progress && h->total && now - h->last_ns > 500000000ull) {
		h->last_ns = now;
		fprintf(stderr, "\rtrialvm: upload: %3llu%% of %llu KiB", (unsigned long long)((h->sent + (uint64_t)uln) * 100 / h->total),
			(unsigned long long)(h->total >> 10));
	}
	return 0;
}

/* One request. 0 with h->status (and h->resp) when the server answered;
 * -1 when it could not be reached or the transfer broke (h->errbuf). */
static int http_do(struct http *h, const char *method, const char *url, const char *token, const void *body,
		   size_t len)
{
	CURL *c = h->c;
	free(h->resp);
	h->resp = NULL;
	h->resp_len = 0;
	h->resp_over = false;
	h->status = 0;
	h->retry_after = -1;
	h->body = body;
	h->body_len = len;
	h->body_pos = 0;
	h->errbuf[0] = 0;
	curl_easy_reset(c);
	struct curl_slist *hdr = NULL;
	char auth[300];
	if (token && token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdr = curl_slist_append(hdr, auth);
	}
	hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
	hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
	http_client_defaults(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (!strcmp(method, "PUT")) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, h);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	} else if (!strcmp(method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	CURLcode r = curl_easy_perform(c);
	curl_slist_free_all(hdr);
	if (r != CURLE_OK) {
		if (h->resp_over)
			snprintf(h->errbuf, sizeof(h->errbuf), "the server's reply is longer than %u bytes", RESPONSE_MAX);
		else if (!h->errbuf[0])
			snprintf(h->errbuf, sizeof(h->errbuf), "%s", curl_easy_strerror(r));
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	return 0;
}

/* The reply as JSON (NULL when it is not an object). */
static json_t *reply_json(const struct http *h)
{
	json_t *j = h->resp ? json_loadb(h->resp, h->resp_len, 0, NULL) : NULL;
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* The server's error sentence, printable. */
static void reply_error(const struct http *h, char *out, size_t cap)
{
	json_t *j = reply_json(h);
	const char *e = json_string_value(json_object_get(j, "error"));
	if (e)
		tvm_escape(e, strlen(e) < 400 ? strlen(e) : 400, TVM_ESC_TERMINAL, out, cap);
	else
		snprintf(out, cap, "no error message");
	json_decref(j);
}

/* What a reply (or a broken request) means for the upload. */
static enum upload_outcome classify(const struct http *h, int rc, const char *what, const char *url,
				    struct tvm_err *err)
{
	char why[512];
	if (rc < 0) {
		tvm_seterr(err, "%s: cannot reach the feedback server at %s: %s", what, url, h->errbuf);
		return UPLOAD_LATER;
	}
	reply_error(h, why, sizeof(why));
	if (h->status == 408 || h->status == 429 || h->status >= 500) {
		tvm_seterr(err, "%s: the feedback server answered %ld (%s)", what, h->status, why);
		return UPLOAD_LATER;
	}
	if (h->status == 401 || h->status == 403) {
		tvm_seterr(err, "%s: the feedback server refused the package's token (%ld: %s): it may have expired; the "
				"vendor's newer package will have a new one", what, h->status, why);
		return UPLOAD_REFUSED;
	}
	tvm_seterr(err, "%s: the feedback server refused it (%ld: %s)", what, h->status, why);
	return UPLOAD_REFUSED;
}

/* The chunks the server lacks, from a reply: names of the bundle's own chunks only, each once. */
static int missing_of(const struct bundle *b, const struct http *h, const char ***out, int *n, struct tvm_err *err)
{
	json_t *j = reply_json(h);
	json_t *m = json_object_get(j, "missing");
	*n = 0;
	*out = NULL;
	if (!m || !json_is_array(m)) {
		json_decref(j);
		return tvm_seterr(err, "the feedback server's reply has no list of missing chunks");
	}
	*out = calloc((size_t)bundle_nchunks(b) + 1, sizeof(char *));
	if (!*out) {
		json_decref(j);
		return tvm_seterr(err, "out of memory");
	}
	for (int i = 0; i < bundle_nchunks(b); i++) {
		const char *name;
		uint64_t size;
		bundle_chunk(b, i, &name, &size);
		size_t k;
		json_t *v;
		json_array_foreach(m, k, v) {
			const char *s = json_string_value(v);
			if (s && !strcmp(s, name)) {
				(*out)[(*n)++] = name;
				break;
			}
		}
	}
	json_decref(j);
	return 0;
}

/* One pass of the protocol. */
static enum upload_outcome attempt(struct http *h, const struct bundle *b, const struct upload_dest *d,
				   struct tvm_err *err)
{
	char base[1100], url[1400];
	snprintf(base, sizeof(base), "%s", d->url);
	for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
		base[n - 1] = 0;
	snprintf(url, sizeof(url), "%s/api/v1/reports/%s", base, bundle_id(b));
	uint8_t *man = NULL;
	size_t mlen = 0;
	char mpath[PATH_MAX + 32];
	snprintf(mpath, sizeof(mpath), "%s/manifest.json", bundle_dir(b));
	if (read_file(mpath, BUNDLE_MANIFEST_MAX, &man, &mlen, err) < 0)
		return UPLOAD_REFUSED;
	int rc = http_do(h, "PUT", url, d->token, man, mlen);
	free(man);
	if (rc < 0 || (h->status != 200 && h->status != 201))
		return classify(h, rc, "creating the report", d->url, err);
	const char **missing;
	int nm;
	if (missing_of(b, h, &missing, &nm, err) < 0)
		return UPLOAD_LATER;
	h->sent = 0;
	h->total = 0;
	for (int i = 0; i < nm; i++)
		for (int k = 0; k < bundle_nchunks(b); k++) {
			const char *name;
			uint64_t size;
			bundle_chunk(b, k, &name, &size);
			if (name == missing[i])
				h->total += size;
		}
	enum upload_outcome out = UPLOAD_DONE;
	for (int i = 0; out == UPLOAD_DONE && i < nm; i++) {
		uint8_t *data;
		size_t len;
		if (bundle_read_chunk(b, missing[i], &data, &len, err) < 0) {
			tvm_seterr(err, "the bundle in the spool is damaged: %.3000s", err->msg);
			out = UPLOAD_REFUSED;
			break;
		}
		char curl_[1500];
		snprintf(curl_, sizeof(curl_), "%s/chunks/%s", url, missing[i]);
		for (int t = 0;; t++) {
			rc = http_do(h, "PUT", curl_, d->token, data, len);
			if (rc == 0 && (h->status == 200 || h->status == 201))
				break;
			if (rc == 0 && h->status == 422 && t + 1 < CHUNK_RESENDS)
				continue; /* it arrived damaged: again */
			out = classify(h, rc, "sending a chunk", d->url, err);
			if (rc == 0 && h->status == 422) {
				tvm_seterr(err, "the chunk %.16s... arrived damaged %d times", missing[i], CHUNK_RESENDS);
				out = UPLOAD_LATER;
			}
			break;
		}
		h->sent += len;
		free(data);
	}
	free(missing);
	if (h->progress && h->total)
		fputc('\n', stderr);
	if (out != UPLOAD_DONE)
		return out;
	snprintf(url + strlen(url), sizeof(url) - strlen(url), "/finalize");
	rc = http_do(h, "POST", url, d->token, NULL, 0);
	if (rc == 0 && h->status == 200) {
		json_t *j = reply_json(h);
		const char *state = json_string_value(json_object_get(j, "state"));
		bool done = state && !strcmp(state, "complete");
		json_decref(j);
		if (done)
			return UPLOAD_DONE;
		tvm_seterr(err, "the feedback server did not confirm the report as complete");
		return UPLOAD_LATER;
	}
	if (rc == 0 && h->status == 409) {
		tvm_seterr(err, "the feedback server still lacks chunks of the report");
		return UPLOAD_LATER;
	}
	return classify(h, rc, "finishing the report", d->url, err);
}

enum upload_outcome upload_bundle(const struct bundle *b, const struct upload_dest *dest, const struct upload_opts *o,
				  struct tvm_err *err)
{
	if (!upload_url_ok(dest->url)) {
		tvm_seterr(err, "the feedback URL \"%.200s\" is not an http:// or https:// URL", dest->url);
		return UPLOAD_REFUSED;
	}
	pthread_once(&curl_once, curl_start);
	struct http h = { .c = curl_easy_init(), .progress = o->progress };
	if (!h.c) {
		tvm_seterr(err, "cannot start libcurl");
		return UPLOAD_LATER;
	}
	enum upload_outcome out = UPLOAD_LATER;
	unsigned seed = (unsigned)(now_ns() ^ (uint64_t)getpid());
	for (int t = 0; t < (o->tries > 0 ? o->tries : 1); t++) {
		out = attempt(&h, b, dest, err);
		if (out != UPLOAD_LATER || t + 1 >= o->tries)
			break;
		/* Exponential backoff with jitter, or what the server asks. */
		double wait = 0.5 * (double)(1u << (t < 7 ? t : 7));
		wait = (wait > 60 ? 60 : wait) * (0.5 + (double)rand_r(&seed) / RAND_MAX);
		if (h.retry_after >= 0)
			wait = h.retry_after;
		if (wait > o->max_wait) {
			tvm_seterr(err, "%.3000s; the next try would be in %.0f s", err->msg, wait);
			break;
		}
		if (!o->quiet)
			tvm_log("upload: %s; trying again in %.1f s", err->msg, wait);
		struct timespec ts = { (time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	free(h.resp);
	curl_easy_cleanup(h.c);
	return out;
}
