# tests/fuzz/fuzz_devstate.mk - device state records as a snapshot restore
# hands them to the UART, the system ports and a virtio-mmio transport.
FUZZ_SRCS_fuzz_devstate := tests/fuzz/fuzz_devstate.c devices/uart.c devices/sysdev.c $(FUZZ_VIRTIO_SRCS)
