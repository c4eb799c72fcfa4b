# SPDX-License-Identifier: MIT
# bpf/bpf.mk - the monitor's BPF backend. Included by the top-level Makefile
# before the liburt rules; it adds:
#   BPF_GEN_HDRS  headers generated here that every lib object depends on
#   URT_LIBS      link flags for liburt users (also liburt.pc Libs.private)
#   URT_CFLAGS    -I for the generated skeleton
#
# Everything generated lives in $(BUILD)/bpf/ and is never committed:
#   vmlinux.h          bpftool btf dump of the running kernel's BTF (CO-RE:
#                      the object relocates to whatever kernel loads it)
#   urt_mon.bpf.o      clang -target bpf, DWARF stripped (BTF kept)
#   urt_mon.skel.h     bpftool gen skeleton: the object embedded in liburt
#   mon_bench          measurement program (not built by default):
#                      make $(BUILD)/bpf/mon_bench && $(BUILD)/bpf/mon_bench -h

BPFTOOL     ?= bpftool
BPF_CLANG   ?= clang
LLVM_STRIP  ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_OUT     := $(BUILD)/bpf
BPF_ARCH    := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(shell uname -m)))
BPF_MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

BPF_GEN_HDRS += $(BPF_OUT)/urt_mon.skel.h
URT_LIBS     += -lbpf -lelf -lz
URT_CFLAGS   += -I$(BPF_OUT)

.PHONY: bpf-deps
bpf-deps:
	$(Q)scripts/deps.sh bpf

$(BPF_OUT):
	$(Q)mkdir -p $@

$(BPF_OUT)/vmlinux.h: | bpf-deps $(BPF_OUT)
	@echo "  GEN     $@"
	$(Q)test -r $(VMLINUX_BTF) || { echo "urt: $(VMLINUX_BTF) missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF); set VMLINUX_BTF=" >&2; exit 1; }
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(BPF_OUT)/%.bpf.o: bpf/%.bpf.c bpf/urt_mon.h $(BPF_OUT)/vmlinux.h
	@echo "  BPF     $@"
	$(Q)$(BPF_CLANG) -target bpf -mcpu=v3 -g -O2 -Wall -Werror -D__TARGET_ARCH_$(BPF_ARCH) \
		-I$(BPF_OUT) -Ibpf $(if $(BPF_MULTIARCH),-idirafter /usr/include/$(BPF_MULTIARCH)) \
		-c $< -o $@.tmp
	$(Q)$(LLVM_STRIP) -g $@.tmp && mv $@.tmp $@

.SECONDARY: $(BPF_OUT)/urt_mon.bpf.o
$(BPF_OUT)/%.skel.h: $(BPF_OUT)/%.bpf.o
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(BPF_OUT)/mon_bench: bpf/mon_bench.c $(BUILD)/liburt.a
	@echo "  CC      $@"
	$(Q)$(CC) $(URT_CFLAGS) -o $@ $< $(BUILD)/liburt.a $(URT_LDFLAGS)
