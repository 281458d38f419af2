/* images/image.h - vendor master images (README "Linux images").
 *
 * `trialvm image linux` builds one: a directory holding Debian's kernel
 * (vmlinuz), an initramfs (initrd.cpio: trialvm's /init and the kernel
 * modules it needs), an ext4 root file system (rootfs.ext4) with the
 * vendor's program, and manifest.json naming each part by file, size and
 * sha256, with the command line, machine size and the program to run. The
 * parts are read-only (0444); `trialvm run --image DIR` checks every hash
 * before it boots.
 *
 * Layer: under the command line (monitor/main.c), over vmm/ (files,
 * hashes). */
#ifndef TVM_IMAGE_H
#define TVM_IMAGE_H

#include <limits.h>
#include <stdint.h>

#include "../vmm/util.h"
#include "../vmm/vm.h"

#define IMAGE_FORMAT "trialvm-image"
#define IMAGE_VERSION 1
#define IMAGE_MANIFEST_MAX (1u << 20)

/* A master image, as image_open found it: absolute paths of its parts. */
struct image {
	char kernel[PATH_MAX], initrd[PATH_MAX], rootfs[PATH_MAX];
	char cmdline[4096];
	char app[1024];    /* the program inside the root file system */
	char release[128]; /* the kernel's release, "6.1.0-57-amd64" */
	uint64_t mem;
	int cpus;
};

/* Read DIR/manifest.json (format, version, every field checked) and verify
 * each part's size and sha256 (regular files only). 0, or -1 with err
 * saying which part is wrong and what to do. */
int image_open(const char *dir, struct image *im, struct tvm_err *err);

/* Append " -- " TVM_INIT_ARGS_MARKER and each of args, quoted for Linux's
 * command-line parser, to the NUL-terminated cmdline (cap bytes): the
 * image's /init runs its program with these arguments instead of the
 * image's. An argument holding '"' or a control character, or one that is
 * "--", cannot pass through Linux's parser and is refused. 0, or -1 with err. */
#define IMAGE_ARGS_MAX 28
int image_args_append(char *cmdline, size_t cap, char *const *args, int nargs, struct tvm_err *err);

/* `trialvm image ...` (argv[0] = "image"): the exit status. */
int image_cli_main(int argc, char **argv);

#endif
