/* reporter/upload.h - sending a report bundle to the vendor's feedback
 * server (README "The upload protocol"), over HTTP(S) with libcurl.
 *
 * Under the package's feedback URL BASE, with `Authorization: Bearer
 * TOKEN` on every request:
 *   PUT  BASE/api/v1/reports/ID            the bundle's manifest.json (ID is
 *        its sha256): creates the report, or finds it (a retry never makes
 *        a second one); 200/201 {"id", "state", "missing": [CHUNK...]}
 *   GET  BASE/api/v1/reports/ID            the same reply, 404 when unknown
 *   PUT  BASE/api/v1/reports/ID/chunks/SHA256   one chunk's bytes; the
 *        server checks them against the name (422 when they differ: the
 *        client sends them again) and stores them durably; 200/201
 *   POST BASE/api/v1/reports/ID/finalize   200 {"state": "complete"} once
 *        every chunk is stored and the report is durable on the server;
 *        409 with "missing" when chunks are lacking
 * Errors are JSON {"error": "..."}. A connection failure, a timeout, 408,
 * 429, 5xx: tried again after an exponential backoff with jitter (0.5 s
 * doubling to 60 s), or after the Retry-After the server gives; 401 and
 * 403 (a token refused or expired), 400, 404 and 413: not tried again.
 * TLS certificates are verified (TRIALVM_CA_FILE: a CA bundle to verify
 * them with instead of the system's); no redirects are followed (the
 * token goes to the feedback URL only).
 *
 * Layer: reporter/. */
#ifndef TVM_UPLOAD_H
#define TVM_UPLOAD_H

#include <stdbool.h>

#include "bundle.h"

struct upload_dest {
	char url[1024];   /* the feedback URL (http:// or https://) */
	char token[256];  /* the bearer token; "" none */
};

struct upload_opts {
	int tries;        /* whole attempts (each resumes where the last ended), at least 1 */
	double max_wait;  /* the longest wait between attempts (s) it will sit through */
	bool progress;    /* bytes sent, on stderr */
	bool quiet;       /* no line per retry */
};

enum upload_outcome {
	UPLOAD_DONE,      /* the server confirmed durable receipt */
	UPLOAD_LATER,     /* not now (network, server busy or failing): try again later */
	UPLOAD_REFUSED,   /* the server refused it (token, bundle): trying again will not help */
};

/* Send bundle b to dest, resuming with what the server already holds.
 * The outcome; err says why for LATER and REFUSED. */
enum upload_outcome upload_bundle(const struct bundle *b, const struct upload_dest *dest, const struct upload_opts *o,
				  struct tvm_err *err);

/* The settings every HTTP(S) request of trialvm's takes (a CURL *
 * easy handle): http and https only, certificates verified (with
 * TRIALVM_CA_FILE when set), no redirects, a 15 s connect timeout, a
 * stalled transfer (under 512 B/s for 30 s) ended. Starts libcurl once. */
void http_client_defaults(void *curl);

/* dest's URL is one this client takes (http:// or https://, a host). */
bool upload_url_ok(const char *url);

#endif
