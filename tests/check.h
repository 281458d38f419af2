/* tests/check.h - the unit tests' one assertion: prints "ok NAME" or
 * "FAIL NAME: condition (line N)" and counts failures; a test's main
 * returns `failures ? 1 : 0`. */
#ifndef TVM_TEST_CHECK_H
#define TVM_TEST_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(name, cond)                                                          \
	do {                                                                       \
		if (cond)                                                          \
			printf("ok %s\n", name);                                   \
		else {                                                             \
			printf("FAIL %s: %s (line %d)\n", name, #cond, __LINE__); \
			failures++;                                                \
		}                                                                  \
	} while (0)

#endif
