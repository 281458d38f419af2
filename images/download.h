/* images/download.h - trial packages fetched by URL (`trialvm launch URL`)
 * into a content-addressed download cache.
 *
 * CACHE/downloads/ (CACHE: ${TRIALVM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/
 * trialvm}): URLHASH.partial while a download is under way (kept when it
 * is interrupted; the next try resumes at its end with an HTTP Range
 * request), then SHA256.tvp (the file named by its content's sha256) and
 * URLHASH.url naming it. What is downloaded is checked as any package is,
 * before anything of it is used.
 *
 * Layer: images/ (libcurl through reporter/upload.h's settings). */
#ifndef TVM_DOWNLOAD_H
#define TVM_DOWNLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "../vmm/vm.h"

#define DOWNLOAD_MAX (64ull << 30) /* a package larger than this is refused */

/* CACHE/SUB into out. 0, or -1 with err. */
int cache_dir(const char *sub, char *out, size_t cap, struct tvm_err *err);

/* Is this a URL launch fetches (http:// or https://)? */
bool download_is_url(const char *s);

/* The package at url in the download cache (fetched, or resumed, unless
 * it was fetched before and refresh is false): its path. progress: a
 * progress line on stderr. 0, or -1 with err (a partial download is kept
 * for the next try). */
int download_package(const char *url, bool refresh, bool progress, char *path, size_t cap, struct tvm_err *err);

#endif
