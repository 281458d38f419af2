/* tests/check.h - the unit tests' one assertion style: CHECK, CHECKF and
 * SKIP print "ok NAME", "FAIL NAME: why (line N)" or "skip NAME: why" and
 * count; a test's main returns `failures ? 1 : 0`. */
#ifndef TVM_TEST_CHECK_H
#define TVM_TEST_CHECK_H

#include <stdio.h>

static int failures, checks;
/* CHECK(name, cond): "ok NAME", or "FAIL NAME: cond (line N)". */
#define CHECK(name, cond)                                                          \
	do {                                                                       \
		checks++;                                                          \
		if (cond)                                                          \
			printf("ok %s\n", name);                                   \
		else {                                                             \
			printf("FAIL %s: %s (line %d)\n", name, #cond, __LINE__); \
			failures++;                                                \
		}                                                                  \
	} while (0)
/* CHECKF(name, cond, fmt, ...): the same, saying why with a printf format. */
#define CHECKF(name, cond, ...)                                                    \
	do {                                                                       \
		checks++;                                                          \
		if (cond)                                                          \
			printf("ok %s\n", name);                                   \
		else {                                                             \
			printf("FAIL %s: ", name);                                 \
			printf(__VA_ARGS__);                                       \
			printf(" (line %d)\n", __LINE__);                          \
			failures++;                                                \
		}                                                                  \
	} while (0)
/* SKIP(name, why): "skip NAME: why" (tests/unit.sh reports it as a skip). */
#define SKIP(name, why) printf("skip %s: %s\n", (name), (why))

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* True when /dev/kvm opens and speaks the KVM API trialvm needs; tests that
 * create a VM skip (printing why) otherwise. */
static inline int kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int ok = ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
	close(fd);
	return ok;
}

#endif
