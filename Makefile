# SPDX-License-Identifier: MIT
# urt - one entry point for building, testing and running everything.
#
#   make            liburt (.a, .so, .pc) and the examples
#   make demo       the main job: a program that shows urt at work
#   make check      every test: liburt (plain, ASan, TSan), urt.ko in a VM
#   make vm-check   urt.ko and its kselftests in a qemu VM
#   make vm-shell   the same VM, interactive
#   make bench      benchmarks (side by side with tokio and Go)
#   make vm-bench   the monitor benchmarks in the VM: kmod vs bpf vs off
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean
#
# Variables: SAN=address|thread builds a sanitized copy in build-$(SAN)/.
# Every target first makes sure the Debian packages it needs are there
# (scripts/deps.sh): as root it installs them, otherwise it says how.

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
DESTDIR ?=
CC      ?= gcc
SAN     ?=
BUILD   ?= build$(if $(SAN),-$(SAN))
ARCH    := $(shell uname -m)
V       ?= 0
Q       := $(if $(filter 1,$(V)),,@)

URT_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-fPIC -D_GNU_SOURCE -Iinclude -iquote lib -pthread
ifneq ($(SAN),)
URT_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -O1
URT_LDFLAGS += -fsanitize=$(SAN)
endif
URT_CFLAGS += $(CFLAGS)

# The monitor's BPF backend (bpf/bpf.mk) adds generated headers and libraries.
BPF_GEN_HDRS :=
URT_LIBS :=
-include bpf/bpf.mk
URT_LDFLAGS += $(URT_LIBS) -pthread $(LDFLAGS)

LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_ASM  := $(wildcard lib/arch/$(ARCH)/*.S)
ifeq ($(LIB_ASM),)
$(error urt: no context-switch code for $(ARCH) (lib/arch/$(ARCH)/); x86_64 is supported)
endif
LIB_OBJS := $(patsubst lib/%.c,$(BUILD)/lib/%.o,$(LIB_SRCS)) \
	    $(patsubst lib/%.S,$(BUILD)/lib/%.o,$(LIB_ASM))

TEST_SRCS := $(sort $(wildcard selftests/lib/*_test.c))
TEST_BINS := $(patsubst selftests/lib/%.c,$(BUILD)/selftests/lib/%,$(TEST_SRCS))
EXAMPLES  := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all lib deps deps-vm test-lib check check-asan check-tsan vm-check vm-shell \
	demo bench install uninstall clean kselftest-headers
.DEFAULT_GOAL := all

all: deps lib $(EXAMPLES)
lib: $(BUILD)/liburt.a $(BUILD)/liburt.so $(BUILD)/liburt.pc

deps:
	$(Q)scripts/deps.sh build

$(BUILD)/lib/%.o: lib/%.c include/urt.h $(BPF_GEN_HDRS) | $(BUILD)/lib
	@echo "  CC      $@"
	$(Q)$(CC) $(URT_CFLAGS) -MMD -c -o $@ $<
$(BUILD)/lib/%.o: lib/%.S | $(BUILD)/lib
	@echo "  AS      $@"
	$(Q)mkdir -p $(dir $@) && $(CC) $(URT_CFLAGS) -c -o $@ $<
$(BUILD)/lib $(BUILD)/selftests/lib $(BUILD)/examples:
	$(Q)mkdir -p $@

$(BUILD)/liburt.a: $(LIB_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/liburt.so: $(LIB_OBJS) lib/liburt.map
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,liburt.so.0 -Wl,--version-script=lib/liburt.map \
		-o $@ $(LIB_OBJS) $(URT_LDFLAGS)
$(BUILD)/liburt.pc: lib/liburt.pc.in Makefile $(wildcard bpf/bpf.mk)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|0.1|; s|@LIBS@|$(URT_LIBS)|' $< > $@

# Tests and examples link the static library: one binary per file.
KSFT_DIR = $(shell scripts/fetch-kselftest.sh)
$(BUILD)/selftests/lib/%: selftests/lib/%.c $(BUILD)/liburt.a $(wildcard selftests/lib/*.h) | $(BUILD)/selftests/lib
	@echo "  CC      $@"
	$(Q)$(CC) $(URT_CFLAGS) -Wno-sign-compare -I$(KSFT_DIR) -Iselftests/lib -o $@ $< $(BUILD)/liburt.a $(URT_LDFLAGS)
$(BUILD)/examples/%: examples/%.c $(BUILD)/liburt.a | $(BUILD)/examples
	@echo "  CC      $@"
	$(Q)$(CC) $(URT_CFLAGS) -o $@ $< $(BUILD)/liburt.a $(URT_LDFLAGS)

test-lib: deps lib $(TEST_BINS)
	$(Q)scripts/run-tests.sh "liburt$(if $(SAN), ($(SAN)))" $(TEST_BINS)

check-asan:
	$(Q)$(MAKE) --no-print-directory SAN=address test-lib
check-tsan:
	$(Q)$(MAKE) --no-print-directory SAN=thread test-lib

# Every suite runs even when an earlier one fails; the summary decides.
check:
	$(Q)scripts/check.sh

vm-check:
	$(Q)selftests/vm/vm-check.sh
vm-shell:
	$(Q)selftests/vm/vm-shell.sh

# The main job: urt at work, the monitor handing off a blocked worker's
# slot (per backend), then a recorded trace of a handoff (needs root: BPF).
demo: all tools $(BUILD)/selftests/tools/victim
	$(Q)$(BUILD)/examples/demo
	@echo
	@echo "part 3: a trace of a handoff, recorded with urt-trace (tools/, BPF)"
	$(Q)if [ "$$(id -u)" -eq 0 ]; then BUILD=$(BUILD) scripts/trace-demo.sh; \
	else echo "        (skipped: recording needs root for BPF; run: sudo make demo)"; fi

# Benchmarks live in tools/bench (urt programs and the tokio/Go peers).
bench: deps lib
	$(Q)scripts/deps.sh bench
	$(Q)$(MAKE) --no-print-directory -C tools/bench run BUILD=$(abspath $(BUILD))

# Only the "inside the VM" part of make bench (urt.ko loads only there):
# selftests/vm/vm-bench.sh via run.py, which prints its table. Not in check.
.PHONY: vm-bench
vm-bench: deps lib
	$(Q)python3 tools/bench/run.py --bin $(abspath $(BUILD))/bench --vm-only $(RUN_FLAGS)

install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 644 $(BUILD)/liburt.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/liburt.so $(DESTDIR)$(LIBDIR)/liburt.so.0.1
	ln -sf liburt.so.0.1 $(DESTDIR)$(LIBDIR)/liburt.so.0
	ln -sf liburt.so.0 $(DESTDIR)$(LIBDIR)/liburt.so
	install -m 644 $(BUILD)/liburt.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 644 include/urt.h $(DESTDIR)$(INCDIR)/
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/liburt.* $(DESTDIR)$(LIBDIR)/pkgconfig/liburt.pc $(DESTDIR)$(INCDIR)/urt.h

clean:
	rm -rf build build-address build-thread
	$(Q)if [ -f kmod/Makefile ]; then $(MAKE) -s -C kmod clean >/dev/null 2>&1 || true; fi

# ---- VM copies of the liburt tests that need urt.ko ----------------------
# selftests/vm/lib.sh puts these in the VM's initramfs and vm-check runs them
# with urt.ko loaded. Static (the initramfs has no libc), and built with
# -DURT_VM_KMOD_ONLY: only their kmod variants are compiled in, so nothing
# in the VM skips. Never sanitized: SAN= builds them in $(BUILD)/vm-tests/.
#   make vm-tests          make print-vm-tests (their names, in run order)
VM_TESTS     := monitor_test handoff_test
VM_TEST_BINS := $(addprefix $(BUILD)/vm-tests/,$(VM_TESTS))
.PHONY: vm-tests print-vm-tests
ifeq ($(SAN),)
vm-tests: deps $(VM_TEST_BINS)
$(BUILD)/vm-tests:
	$(Q)mkdir -p $@
$(BUILD)/vm-tests/%: selftests/lib/%.c $(BUILD)/liburt.a $(wildcard selftests/lib/*.h) | $(BUILD)/vm-tests
	@echo "  CC      $@ (static, kmod only)"
	$(Q)$(CC) $(URT_CFLAGS) -DURT_VM_KMOD_ONLY -Wno-sign-compare -I$(KSFT_DIR) -Iselftests/lib \
		-static -o $@ $< $(BUILD)/liburt.a $(URT_LDFLAGS)
else
vm-tests:
	$(Q)$(MAKE) --no-print-directory SAN= vm-tests
endif
print-vm-tests:
	@echo $(VM_TESTS)
# ---- end of the VM copies ------------------------------------------------

-include $(LIB_OBJS:.o=.d)

# ---- tools: urt-top, urt-blocked, urt-trace (tools/tools.mk adds to all and install)
-include tools/tools.mk
