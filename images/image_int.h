/* images/image_int.h - shared inside images/ only. */
#ifndef TVM_IMAGE_INT_H
#define TVM_IMAGE_INT_H

#define IMAGE_NPARTS 3
/* "kernel", "initrd", "rootfs": the manifest's part names. */
extern const char *const image_parts[IMAGE_NPARTS];

/* `trialvm image linux ...` (argv[0] = "linux"). */
int image_linux_main(int argc, char **argv);

#endif
