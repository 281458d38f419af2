# tests/fuzz/fuzz_bundle.mk - the report bundle reader and rebuild (reporter/bundle.c).
FUZZ_SRCS_fuzz_bundle := tests/fuzz/fuzz_bundle.c reporter/bundle.c vmm/snapshot.c vmm/snapfile.c vmm/text.c \
	$(FUZZ_VIRTIO_SRCS)
FUZZ_LIBS_fuzz_bundle := -ljansson -lzstd
