# trialvm - top-level Makefile (plain GNU make).
#   make          build trialvm, trialos and the guest apps
#   make demo     install what is missing, build, run the demo
#   make test     install what is missing, build, run every test
#   make test-slow  the same with long fuzzing runs (FUZZ_SECONDS, default 300)
#                   and Debian's crash on Linux panic dumps (the -dbg vmlinux)
#   make asan     the same tests against an ASan+UBSan build
#   make bench    benchmarks (figures printed, nothing asserted)
# Where /dev/kvm does not work, the parts that run guests go into the
# emulated KVM host (ci/kvm-host; README "Testing on machines without KVM").

BUILD ?= build
.DEFAULT_GOAL := all
CC ?= gcc
PKGS := libelf zlib liblzma libzstd liblz4 jansson libcrypto capstone libseccomp libarchive libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# capstone is dlopen()ed by monitor/disasm.c when a crash needs it: headers only.
PKG_LIBS := $(shell pkg-config --libs $(filter-out capstone,$(PKGS)) 2>/dev/null || echo -lelf -lz -llzma -lzstd -llz4 -ljansson -lcrypto -lseccomp -larchive -lcurl)
SAN ?=
comma := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
CFLAGS := -std=gnu11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS := $(SANFLAGS)
LDLIBS := $(PKG_LIBS) -lpthread

VMM_SRCS := $(wildcard vmm/*.c) $(wildcard devices/*.c) $(wildcard reporter/*.c) $(wildcard images/*.c) $(filter-out monitor/main.c,$(wildcard monitor/*.c))
VMM_OBJS := $(VMM_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/monitor/main.o
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

-include guests/guests.mk
include tests/tests.mk

.PHONY: all guests deps demo test test-slow test-run asan bench fuzz fuzz-bins clean
all: $(BUILD)/trialvm $(BUILD)/tests/trialvm-hooks guests $(TEST_BINS) $(TEST_TOOLS) $(BENCH_TOOLS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libtrialvm.a: $(VMM_OBJS)
	@rm -f $@
	ar rcs $@ $^

guests: $(GUEST_TARGETS) $(TINY_GUESTS)

$(BUILD)/trialvm: $(MAIN_OBJ) $(BUILD)/libtrialvm.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The test build of trialvm: the same program with the test-only hooks of
# vmm/sandbox.c (TVM_TEST_HOOKS; tests/sandbox.sh). build/trialvm has none.
$(BUILD)/obj/vmm/sandbox-hooks.o: vmm/sandbox.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DTVM_TEST_HOOKS -MMD -MP -c $< -o $@

$(BUILD)/tests/trialvm-hooks: $(MAIN_OBJ) $(BUILD)/obj/vmm/sandbox-hooks.o $(BUILD)/libtrialvm.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libtrialvm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libtrialvm.a $(LDFLAGS) $(LDLIBS)


deps:
	@ci/deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@ci/with-kvm --timeout 1200 $(BUILD) -- ci/demo.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run.sh $(BUILD) # builds the fuzzers beside the first tests

test-slow: deps
	@$(MAKE) --no-print-directory all fuzz-bins
	@TVM_SLOW=1 FUZZ_SECONDS=$${FUZZ_SECONDS:-300} FUZZ_JOBS=$${FUZZ_JOBS:-2} tests/run.sh $(BUILD)

test-run: all fuzz-bins
	@tests/run.sh $(BUILD)

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 test-run

bench: deps
	@$(MAKE) --no-print-directory all
	@images/fetch-debian-kernel.sh $(BUILD)/images/debian >/dev/null || true
	@images/fetch-debian-kernel.sh --flavor amd64 --modules $(BUILD)/images/debian-amd64 >/dev/null || true
	@ci/with-kvm --timeout 3000 $(BUILD) -- ci/bench.sh $(BUILD)

fuzz-bins: $(FUZZ_BINS)

fuzz: fuzz-bins
	@tests/fuzz.sh $(BUILD) 60

clean:
	rm -rf build build-asan

-include $(VMM_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(BUILD)/obj/vmm/sandbox-hooks.d
