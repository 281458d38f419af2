/* vmm/util.h - small helpers shared by every layer: errors, logging, sizes, files. */
#ifndef TVM_UTIL_H
#define TVM_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vm.h"

/* Exit statuses of `trialvm run` (README "Exit status"). Any other value is
 * the guest's own exit status. */
#define TVM_EXIT_DIVERGED 122 /* a replay diverged from its event log */
#define TVM_EXIT_CRASHED 123  /* the guest or its application crashed */
#define TVM_EXIT_ERROR 125    /* trialvm failed (setup, I/O, KVM) */
#define TVM_EXIT_USAGE 126    /* bad command line */

/* The one version string (trialvm --version, report.json). */
#define TRIALVM_VERSION "0.1.0"

/* "SIGSEGV" for 11 and so on (Linux x86-64 numbers 1..31); NULL otherwise. */
const char *signal_name(unsigned signo);

extern int tvm_verbose;

/* "trialvm: ..." on stderr. */
void tvm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with --verbose. */
void tvm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A rate limiter for messages a guest can trigger: at most `burst` messages
 * per `interval_ms`; the rest are counted and summarised. Thread-safe. */
struct ratelimit {
	unsigned burst, interval_ms;
	uint64_t window_start_ms;
	unsigned in_window;
	unsigned long suppressed;
	int lock; /* spin lock, 0 = free */
};
#define RATELIMIT_INIT(burst_, ms_) { .burst = (burst_), .interval_ms = (ms_) }
/* True when a message may be printed now. */
bool ratelimit_ok(struct ratelimit *rl);
/* Log through a rate limiter ("trialvm: ..."). */
void tvm_log_limited(struct ratelimit *rl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse "64M", "1G", "1T", "4096" (bytes), "512K" (an optional "i"/"B"
 * after the unit: "64MiB"). -1 on syntax error/overflow. */
int parse_size(const char *s, uint64_t *out);

/* Read a whole regular file (at most max bytes) into a malloc'ed buffer. */
int read_file(const char *path, uint64_t max, uint8_t **data, size_t *len, struct tvm_err *err);

/* Open an input file read-only without blocking (a FIFO with no writer
 * would block open() forever; O_NONBLOCK changes nothing for regular files
 * and block devices) and fstat it into *st, so the caller can refuse what is
 * not a regular file before reading. The fd, or -1 with errno set. */
struct stat;
int open_input(const char *path, struct stat *st);
/* open_input, and a regular file only: the fd, or -1 with err ("cannot
 * open PATH: why" / "PATH is not a regular file"). */
int open_regular(const char *path, struct stat *st, struct tvm_err *err);

/* Checked arithmetic. */
static inline bool add_overflows(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool mul_overflows(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }
/* Little-endian fields of file formats and tables, at any alignment (x86 is
 * little-endian: a plain copy). */
static inline void le_put16(uint8_t *p, uint16_t v) { __builtin_memcpy(p, &v, 2); }
static inline void le_put32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
static inline void le_put64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }
static inline uint16_t le_get16(const uint8_t *p) { uint16_t v; __builtin_memcpy(&v, p, 2); return v; }
static inline uint32_t le_get32(const uint8_t *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
static inline uint64_t le_get64(const uint8_t *p) { uint64_t v; __builtin_memcpy(&v, p, 8); return v; }

uint64_t now_ns(void);

/* A file trialvm ships: $ENV when set (env may be NULL), else the first of
 * rel[] (relative to the directory of the running trialvm binary) that is
 * readable. malloc'ed, or NULL. */
char *find_installed(const char *env, const char *const rel[], size_t n);
/* trialos.elf: $TRIALVM_TRIALOS, or built or installed next to trialvm
 * (malloc'd; NULL when not found). */
char *find_trialos(void);

/* A command's usage error: "trialvm: CMD: MESSAGE" and "Try 'trialvm CMD
 * --help'." on stderr; TVM_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A directory of the user's for trialvm, SUB under: $OVERRIDE_ENV (when
 * given and set), else $XDG_ENV/trialvm, else $HOME/HOME_REL/trialvm
 * (XDG_CACHE_HOME/.cache, XDG_DATA_HOME/.local/share). 0, or -1 with err. */
struct tvm_err;
int user_dir(const char *override_env, const char *xdg_env, const char *home_rel, const char *sub, char *out,
	     size_t cap, struct tvm_err *err);

/* n bytes as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void hex_bytes(const uint8_t *p, size_t n, char *out);

/* CLOCK_REALTIME ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec;
void deadline_after_ms(unsigned ms, struct timespec *ts);

/* Start a thread with every signal blocked (the stop signals are the main
 * loop's, the kick signal is for vCPUs): 0, or the pthread_create error.
 * detach: nobody will join it (*t may then be NULL). */
int start_thread_nosignals(pthread_t *t, void *(*fn)(void *), void *arg, bool detach);

#endif
