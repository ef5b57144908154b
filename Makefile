# forkpoint build.
#
# Layout (one folder per component, discovered by wildcard so adding a .c file
# needs no Makefile edit):
#   common/  images/  helper/  restore/  overlay/  cli/   -> build/lib/libforkpoint.a
#   cli/main.c                                             -> build/bin/forkpoint
#   preload/*.c                                            -> build/lib/libforkpoint-preload.so
#   tests/unit/*.c      one test program each, linked with libforkpoint.a
#   tests/targets/*.c   self-checking target programs (plain, no forkpoint code);
#                       tests/targets/NAME/*.c is one program NAME made of several files
#   bench/*.c           benchmark programs
#
# `make SAN=1` builds the same tree with ASan+UBSan into build-san/. The shim is
# excluded there (see preload/Makefile.inc) and always built plain.

CC       ?= gcc
PREFIX   ?= /usr/local
SAN      ?= 0
BUILD    := $(if $(filter 1,$(SAN)),build-san,build)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
BASEFLAGS := -std=c17 -D_GNU_SOURCE -g -O2 $(WARN) -Icommon -I.
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
CFLAGS_ALL := $(BASEFLAGS) $(SANFLAGS) $(CFLAGS)

PKGS     := libzstd libelf libunwind-ptrace libunwind-generic
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS_ALL := $(PKG_LIBS) -lpthread

LIB_DIRS := common images helper restore overlay cli
LIB_SRCS := $(filter-out cli/main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB      := $(BUILD)/lib/libforkpoint.a
BIN      := $(BUILD)/bin/forkpoint

UNIT_SRCS   := $(wildcard tests/unit/*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
TARGET_SRCS := $(wildcard tests/targets/*.c) $(wildcard examples/*.c)
TARGET_DIRS := $(patsubst %/,%,$(wildcard tests/targets/*/))
TARGET_BINS := $(patsubst %.c,$(BUILD)/%,$(TARGET_SRCS)) $(patsubst %,$(BUILD)/%,$(TARGET_DIRS))
BENCH_SRCS  := $(wildcard bench/*.c)
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

.DEFAULT_GOAL := all

# The shim and anything else with special build rules add themselves here.
EXTRA_ALL :=
include $(wildcard */Makefile.inc)

.PHONY: all setup check check-san demo install bench clean fuzz fuzz-run
all: $(BIN) $(EXTRA_ALL) $(UNIT_BINS) $(TARGET_BINS) $(BENCH_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/cli/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP -o $@ $< $(LIB) $(LDLIBS_ALL)

# Targets are ordinary programs a user might run: no sanitizer (CRIU and our
# own dumper must see a normal address space), no forkpoint code.
$(BUILD)/tests/targets/%: tests/targets/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -MMD -MP -pthread -o $@ $< -lrt

# A target made of several files: every .c of its folder, rebuilt when any
# of its files changes.
.SECONDEXPANSION:
$(patsubst %,$(BUILD)/%,$(TARGET_DIRS)): $(BUILD)/tests/targets/%: $$(wildcard tests/targets/%/*.c tests/targets/%/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -pthread -o $@ $(filter %.c,$^) -lrt

# static_*.c targets show how forkpoint treats binaries the shim cannot enter.
$(BUILD)/tests/targets/static_%: tests/targets/static_%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -MMD -MP -static -pthread -o $@ $<

$(BUILD)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) -pthread -o $@ $<

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -pthread -o $@ $< $(LIB) $(LDLIBS_ALL)

# Installs system packages and a working CRIU 4.x (see scripts/setup.sh).
setup:
	bash scripts/setup.sh

check: setup
	$(MAKE) all
	$(MAKE) SAN=1 all
	$(MAKE) fuzz
	bash tests/run.sh

demo: setup all
	bash examples/demo.sh

bench: setup all
	bash bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/forkpoint $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/forkpoint
	install -m 0755 $(BUILD)/lib/libforkpoint-preload.so $(DESTDIR)$(PREFIX)/lib/forkpoint/
	sed -e 's|@PREFIX@|$(PREFIX)|g' scripts/forkpoint.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/forkpoint.pc

# libFuzzer target of the image decoders and the page store
# (tests/fuzz/fuzz_images.c), with clang: images/ and common/ are compiled
# again into build-fuzz/ with coverage and ASan+UBSan. `make fuzz-run` runs
# it for FUZZ_SECONDS (60) from seeds made of real dumps; tests/run.sh runs
# the same as the test fuzz/images.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=c17 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wshadow -Wno-duplicate-decl-specifier -Icommon -I. \
	-fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := $(wildcard images/*.c) $(wildcard common/*.c)
FUZZ_OBJS    := $(patsubst %.c,build-fuzz/obj/%.o,$(FUZZ_SRCS))

build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build-fuzz/fuzz_images: tests/fuzz/fuzz_images.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

fuzz: build-fuzz/fuzz_images

fuzz-run: fuzz all
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/fuzz_images.sh

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(shell find build-fuzz -name '*.d' 2>/dev/null)
