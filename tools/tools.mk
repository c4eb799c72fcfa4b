# SPDX-License-Identifier: MIT
# tools/tools.mk - urt-top, urt-blocked, urt-trace (libbpf tools) and their
# tests. Included by the top-level Makefile; adds to all, install, clean.
#
#   make tools            the three tools in $(BUILD)/tools/
#   make test-tools       selftests/tools: each tool against a program with
#                         known behaviour (needs root and BPF; CI=true: no skips)
#   make trace-demo       a recorded handoff: $(BUILD)/urt-demo-trace.json and
#                         Documentation/images/handoff.svg
#
# Generated here, never committed: $(BUILD)/tools/*.bpf.o, *.skel.h,
# syscall_names.h (from the system's asm/unistd_64.h).

TOOLS       := urt-top urt-blocked urt-trace
TOOLS_OUT   := $(BUILD)/tools
TOOLS_BINS  := $(addprefix $(TOOLS_OUT)/,$(TOOLS))
TOOLS_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
	-Itools -Ilib -I$(TOOLS_OUT) $(CFLAGS)
TOOLS_LIBS  := -lbpf -lelf -lz $(LDFLAGS)
MANDIR      ?= $(PREFIX)/share/man
BINDIR      ?= $(PREFIX)/bin
UNISTD_H    ?= $(firstword $(wildcard /usr/include/$(BPF_MULTIARCH)/asm/unistd_64.h /usr/include/asm/unistd_64.h))

.PHONY: tools test-tools install-tools trace-demo
all: tools
tools: $(TOOLS_BINS)

$(TOOLS_OUT):
	$(Q)mkdir -p $@

$(TOOLS_OUT)/syscall_names.h: | $(TOOLS_OUT)
	@echo "  GEN     $@"
	$(Q)awk 'BEGIN { print "/* generated from $(UNISTD_H) */"; print "static const char *const urt_syscall_names[] = {" } \
		/^#define __NR_[a-z0-9_]+ [0-9]+$$/ { n = $$2; sub("__NR_", "", n); printf "\t[%d] = \"%s\",\n", $$3, n } \
		END { print "};" }' $(UNISTD_H) > $@.tmp && mv $@.tmp $@

$(TOOLS_OUT)/%.bpf.o: tools/%.bpf.c tools/urt_block.bpf.h tools/urt_tools.h $(BPF_OUT)/vmlinux.h | $(TOOLS_OUT)
	@echo "  BPF     $@"
	$(Q)$(BPF_CLANG) -target bpf -mcpu=v3 -g -O2 -Wall -Werror -D__TARGET_ARCH_$(BPF_ARCH) \
		-I$(BPF_OUT) -Itools $(if $(BPF_MULTIARCH),-idirafter /usr/include/$(BPF_MULTIARCH)) \
		-c $< -o $@.tmp
	$(Q)$(LLVM_STRIP) -g $@.tmp && mv $@.tmp $@

.SECONDARY: $(patsubst %,$(TOOLS_OUT)/%.bpf.o,$(TOOLS))
$(TOOLS_OUT)/%.skel.h: $(TOOLS_OUT)/%.bpf.o
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(TOOLS_OUT)/common.o: tools/common.c tools/common.h tools/urt_tools.h lib/trace_shm.h $(TOOLS_OUT)/syscall_names.h
	@echo "  CC      $@"
	$(Q)$(CC) $(TOOLS_CFLAGS) -c -o $@ $<

$(TOOLS_OUT)/%: tools/%.c $(TOOLS_OUT)/%.skel.h $(TOOLS_OUT)/common.o tools/common.h tools/urt_tools.h lib/trace_shm.h
	@echo "  CC      $@"
	$(Q)$(CC) $(TOOLS_CFLAGS) -o $@ $< $(TOOLS_OUT)/common.o $(TOOLS_LIBS)

# The tests: a program with known behaviour, linked with liburt.
$(BUILD)/selftests/tools:
	$(Q)mkdir -p $@
$(BUILD)/selftests/tools/%: selftests/tools/%.c $(BUILD)/liburt.a | $(BUILD)/selftests/tools
	@echo "  CC      $@"
	$(Q)$(CC) $(URT_CFLAGS) -fno-omit-frame-pointer -o $@ $< $(BUILD)/liburt.a $(URT_LDFLAGS)

test-tools: deps lib tools $(BUILD)/selftests/tools/victim $(BUILD)/selftests/tools/yield_loop \
		$(BUILD)/selftests/tools/multirt
	$(Q)BUILD=$(BUILD) selftests/tools/run-tests.sh

# A trace of a handoff, and the picture in Documentation/ drawn from it.
trace-demo: tools $(BUILD)/selftests/tools/victim
	$(Q)BUILD=$(BUILD) SVG=Documentation/images/handoff.svg scripts/trace-demo.sh

install-tools: tools
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(TOOLS_BINS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(addprefix tools/man/,$(addsuffix .8,$(TOOLS))) $(DESTDIR)$(MANDIR)/man8/
install: install-tools

# ---- static copies for the VM suite (selftests/vm/tools_kmod.sh runs them
# with urt.ko loaded): the initramfs has no libc. libbpf.a, libelf.a and
# libz.a are Debian's (libbpf-dev, libelf-dev, zlib1g-dev).
#   make vm-tools          $(BUILD)/vm-tools/: the tools, victim, multirt, json_check
VM_TOOLS_OUT := $(BUILD)/vm-tools
VM_TOOLS     := urt-blocked urt-trace victim multirt json_check
.PHONY: vm-tools
vm-tools: deps $(addprefix $(VM_TOOLS_OUT)/,$(VM_TOOLS))
$(VM_TOOLS_OUT):
	$(Q)mkdir -p $@
$(VM_TOOLS_OUT)/urt-%: tools/urt-%.c $(TOOLS_OUT)/urt-%.skel.h $(TOOLS_OUT)/common.o tools/common.h tools/urt_tools.h lib/trace_shm.h | $(VM_TOOLS_OUT)
	@echo "  CC      $@ (static)"
	$(Q)$(CC) $(TOOLS_CFLAGS) -static -o $@ $< $(TOOLS_OUT)/common.o $(TOOLS_LIBS)
$(VM_TOOLS_OUT)/%: selftests/tools/%.c $(BUILD)/liburt.a | $(VM_TOOLS_OUT)
	@echo "  CC      $@ (static)"
	$(Q)$(CC) $(URT_CFLAGS) -fno-omit-frame-pointer -static -o $@ $< $(BUILD)/liburt.a $(URT_LDFLAGS)
