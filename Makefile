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
# The forkpoint command links its libraries statically when their archives
# are there: every `forkpoint exec` is a new process, and the loader's
# mapping and relocating of eight shared objects was most of its start-up
# (bench/exec_latency.sh). libunwind-ptrace.a is not built for PIE, hence
# -no-pie. The sanitizer build stays dynamic.
STATIC_LIBS := $(shell pkg-config --libs --static $(PKGS) 2>/dev/null | tr ' ' '\n' | grep '^-l' | grep -v pthread | awk '!seen[$$0]++' | tr '\n' ' ')
STATIC_OK   := $(shell for l in $(patsubst -l%,%,$(STATIC_LIBS)); do [ -e /usr/lib/x86_64-linux-gnu/lib$$l.a ] || { echo no; break; }; done)
ifeq ($(SAN)$(STATIC_OK),0)
BIN_LDFLAGS := -no-pie
BIN_LIBS    := -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic -lpthread
else
BIN_LIBS    := $(LDLIBS_ALL)
endif

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

.PHONY: all setup check check-san demo install bench clean
all: $(BIN) $(EXTRA_ALL) $(UNIT_BINS) $(TARGET_BINS) $(BENCH_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/cli/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(BIN_LDFLAGS) -o $@ $^ $(BIN_LIBS)

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

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
