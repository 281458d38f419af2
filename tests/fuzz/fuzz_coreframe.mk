# tests/fuzz/fuzz_coreframe.mk - the core channel's frame parser (what a
# Linux guest sends over hvc1); the device is linked with the virtio
# transport it registers on, which the harness never drives.
FUZZ_SRCS_fuzz_coreframe := tests/fuzz/fuzz_coreframe.c devices/core_channel.c $(FUZZ_VIRTIO_SRCS)
