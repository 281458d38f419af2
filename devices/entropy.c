/* devices/entropy.c - the one source of random bytes handed to the guest. */
#include "devices.h"

#include <errno.h>
#include <sys/random.h>

void entropy_fill(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = getrandom(p, len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* getrandom cannot fail for these sizes once the pool is
			 * ready; never hand out uninitialised memory. */
			for (size_t i = 0; i < len; i++)
				p[i] = 0;
			return;
		}
		p += r;
		len -= (size_t)r;
	}
}
