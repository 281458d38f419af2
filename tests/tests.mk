# Test guests (tests/guests): tiny PVH kernels, one per VMM path.
TINY_VARIANTS := hello triple panic reset hostile spin count
TINY_GUESTS := $(TINY_VARIANTS:%=$(BUILD)/tests/guests/tiny-%.elf)

$(BUILD)/tests/guests/tiny-%.elf: tests/guests/tiny.S
	@mkdir -p $(dir $@)
	$(CC) -DVARIANT_$* -c -o $(@:.elf=.o) $<
	ld -m elf_x86_64 -static -nostdlib -Ttext=0x100000 -e _start -o $@ $(@:.elf=.o)

# A guest linked at 256 MiB: loading it into a 64 MiB VM must fail cleanly.
TINY_GUESTS += $(BUILD)/tests/guests/tiny-high.elf
$(BUILD)/tests/guests/tiny-high.elf: tests/guests/tiny.S
	@mkdir -p $(dir $@)
	$(CC) -DVARIANT_hello -c -o $(@:.elf=.o) $<
	ld -m elf_x86_64 -static -nostdlib -Ttext=0x10000000 -e _start -o $@ $(@:.elf=.o)

# Test tools (tests/tools/*.c), linked against the VMM library.
TEST_TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libtrialvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libtrialvm.a $(LDFLAGS) $(LDLIBS)

# Benchmark tools (tests/bench/*.c), standalone programs used by ci/bench.sh.
BENCH_TOOLS := $(patsubst tests/bench/%.c,$(BUILD)/tests/bench/%,$(wildcard tests/bench/*.c))
$(BUILD)/tests/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

# ---------------------------------------------------------------- fuzzing
# libFuzzer harnesses (tests/fuzz/<name>.c), built with clang into
# $(BUILD)/fuzz/<name> from their sources compiled directly (not from the
# gcc libtrialvm.a); run by `make fuzz` (tests/fuzz.sh) over the seeds in
# tests/fuzz/corpus/<name>/. A target is added by defining one variable:
#   FUZZ_SRCS_<name> := tests/fuzz/<name>.c devices/....c ...
# (and FUZZ_LIBS_<name> for extra libraries, when needed).
FUZZ_CC ?= clang
FUZZ_CFLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 \
	-D_GNU_SOURCE -Wno-gnu-variable-sized-type-not-at-end -I.
# The virtio transport and devices with what they need of vmm/ (guest memory
# accessor, bus, logging); vm.c is linked for gmem_ptr but never opens KVM.
FUZZ_VIRTIO_SRCS := devices/virtqueue.c devices/virtio_mmio.c devices/virtio_rng.c devices/virtio_console.c vmm/vmstate.c \
	devices/console.c devices/entropy.c vmm/vm.c vmm/evlog.c vmm/evloop.c vmm/stopsig.c vmm/breakpoints.c vmm/debug.c vmm/memory.c vmm/bus.c vmm/util.c vmm/fileio.c vmm/sandbox.c
FUZZ_SRCS_fuzz_virtqueue := tests/fuzz/fuzz_virtqueue.c $(FUZZ_VIRTIO_SRCS)
FUZZ_SRCS_fuzz_mmio := tests/fuzz/fuzz_mmio.c $(FUZZ_VIRTIO_SRCS)
# virtio-blk request parser (needs only gmem_ptr from vm.c) and the overlay map decoder.
FUZZ_SRCS_fuzz_blk := tests/fuzz/fuzz_blk.c devices/virtio_blk_req.c $(FUZZ_VIRTIO_SRCS)
FUZZ_SRCS_fuzz_ovlmap := tests/fuzz/fuzz_ovlmap.c devices/overlay.c vmm/util.c vmm/fileio.c
FUZZ_LIBS_fuzz_ovlmap := -lcrypto -lz
# A harness may also define its variables in tests/fuzz/<name>.mk.
include $(wildcard tests/fuzz/*.mk)
# Every FUZZ_SRCS_<name> defined anywhere (recursive: evaluated at use).
FUZZ_TARGETS = $(sort $(patsubst FUZZ_SRCS_%,%,$(filter FUZZ_SRCS_%,$(.VARIABLES))))
FUZZ_BINS = $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

.SECONDEXPANSION:
$(BUILD)/fuzz/%: $$(FUZZ_SRCS_$$*) $$(wildcard devices/*.h vmm/*.h reporter/*.h monitor/*.h tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS_$*) $(FUZZ_LIBS_$*) -lcrypto -lseccomp -lz -lpthread
