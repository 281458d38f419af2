/* tests/fuzz/fuzz_ovlmap.c - libFuzzer harness for the overlay map decoder,
 * overlay_map_decode() (devices/overlay.c): an overlay's PATH.map is a file
 * trialvm reads, hence hostile.
 *
 * Input layout (little-endian):
 *   0  u64 disk_size    the disk the map must describe (taken modulo 64 GiB,
 *                       so the bitmap stays small)
 *   8  u8  check        bit 0: also compare the master identity (bytes
 *                       9..40)
 *   9  32 bytes         master identity
 *  41  ...              the map file
 * The map is copied into its own exact-size allocation (ASan sees reads
 * past its end); the bitmap buffer has exactly the documented size.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/overlay.h"

#define HDR 41

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < HDR)
		return 0;
	uint64_t size;
	memcpy(&size, data, 8);
	size %= 64ull << 30;
	uint64_t clusters = size / OVERLAY_CLUSTER + (size % OVERLAY_CLUSTER != 0);
	size_t bm_bytes = (size_t)(clusters / 8 + (clusters % 8 != 0));
	size_t maplen = len - HDR;
	uint8_t *map = malloc(maplen ? maplen : 1);
	uint8_t *bm = malloc(bm_bytes ? bm_bytes : 1);
	if (!map || !bm)
		abort();
	memcpy(map, data + HDR, maplen);
	const char *why = NULL;
	uint64_t gen = 0;
	int rc = overlay_map_decode(map, maplen, size, (data[8] & 1) ? data + 9 : NULL, bm, &gen, &why);
	if (rc < 0 && !why)
		abort();
	if (rc == 0) {
		/* Accepted: exactly the documented length, and no bit past the
		 * last cluster. */
		if (maplen != OVERLAY_MAP_HDR + bm_bytes + 4)
			abort();
		if (clusters % 8 && (bm[bm_bytes - 1] >> (clusters % 8)))
			abort();
	}
	free(map);
	free(bm);
	return 0;
}
