# tally: build, test and benchmark.
#
#   make          build build/tally
#   make run      install missing packages, build, run `tally stats --all` on this node
#   make test     install missing packages, build, run every test (plain, then ASan+UBSan)
#   make bench    build and run the benchmarks (prints figures, asserts nothing)
#   make deps     install missing Debian packages (does nothing when all are present)
#   make vmlinux  regenerate vmlinux/<arch>/vmlinux.h from the running kernel's BTF
#   V=1           show full commands

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BUILD ?= build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
PKGS := libbpf libnl-3.0 libnl-route-3.0 zlib libelf libmicrohttpd

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Packages needed to build, test and benchmark (Debian names).
DEPS := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libnl-3-dev libnl-route-3-dev \
	libcriterion-dev pkg-config make gcc libc6-dev iproute2 util-linux linux-perf coreutils python3 \
	iperf3 libmicrohttpd-dev prometheus containerd runc containernetworking-plugins busybox-static

WARN := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS_BASE := -std=gnu11 -D_GNU_SOURCE -pthread -g $(WARN) -Iinclude -Isrc -I$(BUILD) -MMD -MP \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lbpf -lelf -lz -lnl-route-3 -lnl-3 -lmicrohttpd) -pthread
OPT ?= -O2
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

LIB_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
TEST_SRCS := $(wildcard tests/*.c)
BENCH_SRCS := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))

.SECONDARY:
.PHONY: all deps run test test-plain test-asan bench vmlinux clean format
.DEFAULT_GOAL := all

all: $(BUILD)/tally

deps:
	$(Q)missing=""; for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends $$missing; \
	fi

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(BUILD)/tally stats --all

# BPF objects: CO-RE against the checked-in vmlinux.h of this arch, then a skeleton.
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard include/tally/*.h) vmlinux/$(ARCH)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Iinclude \
		-Wall -Werror -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# Userspace, once optimised and once with sanitizers.
$(BUILD)/rel/%.o: %.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_BASE) $(OPT) -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(SKELS)
	$(call msg,CC-ASAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS_BASE) -O1 $(SAN) -c $< -o $@

$(BUILD)/tally: $(call obj,rel,src/main.c $(LIB_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $^ -o $@ $(LIBS)

$(BUILD)/test-tally: $(call obj,rel,$(LIB_SRCS) $(TEST_SRCS)) $(BUILD)/tally
	$(call msg,LINK,$@)
	$(Q)$(CC) $(call obj,rel,$(LIB_SRCS) $(TEST_SRCS)) -o $@ $(LIBS) -lcriterion

$(BUILD)/asan/test-tally: $(call obj,asan,$(LIB_SRCS) $(TEST_SRCS)) $(BUILD)/tally
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SAN) $(call obj,asan,$(LIB_SRCS) $(TEST_SRCS)) -o $@ $(LIBS) -lcriterion

$(BUILD)/bench-tally: $(call obj,rel,$(LIB_SRCS) $(BENCH_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $^ -o $@ $(LIBS) -lm

# Tests run from the repo root (fixtures are found relative to it). Criterion runs one
# test at a time: the CPU tests compare against the kernel and want the CPUs to themselves.
TEST_ARGS ?= --jobs 1 --verbose=0

test: deps
	$(Q)$(MAKE) --no-print-directory test-plain
	$(Q)$(MAKE) --no-print-directory test-asan

# tests/run keeps each pass's output in build/ and repeats the failed tests' lines at the end.
test-plain: $(BUILD)/test-tally
	tests/run $(BUILD)/test-plain.log $(BUILD)/test-tally $(TEST_ARGS)

test-asan: $(BUILD)/asan/test-tally
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		tests/run $(BUILD)/test-asan.log $(BUILD)/asan/test-tally $(TEST_ARGS)

bench: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/bench-tally $(BUILD)/tally
	$(BUILD)/bench-tally

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

format:
	clang-format -i $(wildcard src/*.[ch] bpf/*.c include/tally/*.h tests/*.c bench/*.c)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
