# Test guests (tests/guests): tiny PVH kernels, one per VMM path.
TINY_VARIANTS := hello triple panic reset hostile spin
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
