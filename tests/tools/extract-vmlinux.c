/* extract-vmlinux BZIMAGE OUT: write the vmlinux ELF inside a bzImage, using
 * trialvm's own host-side decompressor (tests and benchmarks use it to boot
 * the same kernel through the vmlinux path). */
#include <stdio.h>
#include <stdlib.h>

#include "../../vmm/loader.h"
#include "../../vmm/util.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: extract-vmlinux BZIMAGE OUT\n");
		return 2;
	}
	struct tvm_err err = { "" };
	uint8_t *img, *elf;
	size_t len, elflen;
	if (read_file(argv[1], 1ull << 30, &img, &len, &err) < 0 ||
	    bzimage_decompress(img, len, &elf, &elflen, &err) < 0) {
		fprintf(stderr, "extract-vmlinux: %s\n", err.msg);
		return 1;
	}
	FILE *f = fopen(argv[2], "wb");
	if (!f || fwrite(elf, 1, elflen, f) != elflen || fclose(f) != 0) {
		perror(argv[2]);
		return 1;
	}
	free(img);
	free(elf);
	return 0;
}
