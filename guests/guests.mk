# guests/guests.mk - trialos and the guest test applications.
# Included by the top-level Makefile (run from the repository root); also
# usable alone: make -f guests/guests.mk build/guests/trialos.elf
BUILD ?= build

GUEST_OUT := $(BUILD)/guests
GUEST_APP_OUT := $(GUEST_OUT)/apps

TRIALOS_CC ?= gcc
TRIALOS_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -nostdlib \
	-mno-red-zone -mcmodel=kernel -fno-pic -fno-pie -mgeneral-regs-only \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-fno-tree-loop-distribute-patterns -fno-strict-aliasing -MMD -MP
TRIALOS_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=4096 \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -T guests/trialos/linker.ld
TRIALOS_SRCS := guests/trialos/boot.S $(wildcard guests/trialos/*.c)
TRIALOS_OBJS := $(patsubst guests/trialos/%,$(GUEST_OUT)/trialos/%.o,$(TRIALOS_SRCS))

GUEST_MUSL_APPS := hello echo-args null-deref div-zero abort clock-rand sys-test spin mem-touch disk-test blk-bench jump-wild flood hostile-text counter dirty-pages tsc console-in
# hello-static-pie: glibc static-pie (Debian's musl has no rcrt1.o)
GUEST_GLIBC_APPS := hello-glibc null-deref-glibc hello-static-pie sys-test-glibc
GUEST_TARGETS := $(GUEST_OUT)/trialos.elf $(GUEST_OUT)/linux-init $(GUEST_OUT)/linux/crash-test \
	$(addprefix $(GUEST_APP_OUT)/,$(GUEST_MUSL_APPS) $(GUEST_GLIBC_APPS))

GUEST_APP_CFLAGS := -O2 -g -Wall -Wextra -Werror -fno-omit-frame-pointer
GUEST_CRASH_CFLAGS := -fno-inline -mno-omit-leaf-frame-pointer -fno-optimize-sibling-calls

_guests_saved_goal := $(.DEFAULT_GOAL)
.PHONY: guests guests-clean
guests: $(GUEST_TARGETS)
.DEFAULT_GOAL := $(_guests_saved_goal)

guests-clean:
	rm -rf $(GUEST_OUT)

$(GUEST_OUT)/trialos/%.o: guests/trialos/% guests/guests.mk
	@mkdir -p $(dir $@)
	$(TRIALOS_CC) $(TRIALOS_CFLAGS) -c $< -o $@

$(GUEST_OUT)/trialos.elf: $(TRIALOS_OBJS) guests/trialos/linker.ld
	@mkdir -p $(dir $@)
	$(TRIALOS_CC) $(TRIALOS_LDFLAGS) $(TRIALOS_OBJS) -o $@

-include $(TRIALOS_OBJS:.o=.d)

$(GUEST_APP_OUT)/%: guests/apps/%.c guests/guests.mk
	@mkdir -p $(dir $@)
	musl-gcc -static $(GUEST_APP_CFLAGS) $(if $(filter null-deref div-zero abort,$*),$(GUEST_CRASH_CFLAGS)) $< -o $@

# /init of the Linux images trialvm builds (images/linux.c)
$(GUEST_OUT)/linux-init: guests/linux/init.c guests/include/trialvm_abi.h guests/guests.mk
	@mkdir -p $(dir $@)
	musl-gcc -static $(GUEST_APP_CFLAGS) $< -o $@

# the tests' program for a Linux image: dynamically linked on purpose
$(GUEST_OUT)/linux/crash-test: guests/linux/crash-test.c guests/guests.mk
	@mkdir -p $(dir $@)
	gcc $(GUEST_APP_CFLAGS) $< -o $@

$(GUEST_APP_OUT)/hello-static-pie: guests/apps/hello.c guests/guests.mk
	@mkdir -p $(dir $@)
	gcc -static-pie -fPIE $(GUEST_APP_CFLAGS) $< -o $@

$(GUEST_APP_OUT)/%-glibc: guests/apps/%.c guests/guests.mk
	@mkdir -p $(dir $@)
	gcc -static $(GUEST_APP_CFLAGS) $(GUEST_CRASH_CFLAGS) $< -o $@
