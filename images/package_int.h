/* images/package_int.h - shared by package.c and package_cli.c only. */
#ifndef TVM_PACKAGE_INT_H
#define TVM_PACKAGE_INT_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../vmm/vm.h"

/* An Ed25519 key from a PEM file: a private one (want_private), or a
 * public or private one. NULL with err (the message says how to make one). */
EVP_PKEY *pkg_load_key(const char *path, bool want_private, struct tvm_err *err);
/* Its 32 public bytes. 0 or -1. */
int pkg_key_raw(EVP_PKEY *k, uint8_t raw[32]);
/* The sha256 of the 32 public bytes, hex. */
void pkg_fingerprint(const uint8_t raw[32], char hex[65]);
/* The 64-byte signature of msg. 0 or -1. */
int pkg_sign(EVP_PKEY *k, const void *msg, size_t len, uint8_t sig[64]);
/* Exactly 2n lowercase hex digits into n bytes. 0 or -1. */
int pkg_unhex(const char *s, uint8_t *out, size_t n);
/* The trust store's directory. 0 or -1 + err. */
int pkg_trust_dir(char *out, size_t cap, struct tvm_err *err);
/* Is that key in the trust store? 1, 0, or -1 + err. */
int pkg_trusted(const uint8_t raw[32], struct tvm_err *err);
/* Add it (durably); fpr gets its fingerprint, where its file. 0 or -1. */
int pkg_trust_add(const uint8_t raw[32], char fpr[65], char *where, size_t cap, struct tvm_err *err);
/* "YYYY-MM-DD" (the end of that day, UTC) or "YYYY-MM-DDTHH:MM:SSZ". 0 or -1. */
int pkg_parse_date(const char *s, time_t *out);
/* RFC 3339 UTC: "2027-06-30T23:59:59Z". */
void pkg_fmt_time(time_t t, char out[32]);

#endif
