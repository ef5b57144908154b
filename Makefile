# forkpoint build.
#
# Layout (one folder per component, discovered by wildcard so adding a .c file
# needs no Makefile edit):
#   common/ images/ ptrace/ dump/ session/ restore/ overlay/ api/ cli/ helper/
#                                                          -> build/lib/libforkpoint.a
#   the same but cli/, exporting include/forkpoint.h only  -> build/lib/libforkpoint.so.0
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
# Transitional, see "Headers moved out of helper/" below.
COMPAT_INC := -iquote $(BUILD)/compat -iquote ptrace -iquote dump -iquote session
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# -fPIC: the same objects make libforkpoint.a and libforkpoint.so (api/Makefile.inc).
CFLAGS_ALL := $(BASEFLAGS) $(COMPAT_INC) -fPIC $(SANFLAGS) $(CFLAGS)

PKGS     := libzstd libelf libunwind-ptrace libunwind-generic
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS_ALL := $(PKG_LIBS) -lpthread

# helper/ is empty since the split into ptrace/ dump/ session/ (docs/hacking.md)
# but stays here, so a file another branch adds there still builds.
LIB_DIRS := common images ptrace dump session restore overlay api cli helper
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

# Headers moved out of helper/: code written before the split (other
# branches) includes "helper/X.h" or, from inside helper/, a bare "X.h".
# $(BUILD)/compat/helper/X.h forwards to X.h's new folder and the -iquote
# folders above find the bare names. Drop both once no branch predates it.
MOVED_DIRS  := ptrace dump session
COMPAT_HDRS := $(foreach d,$(MOVED_DIRS),$(patsubst $(d)/%.h,$(BUILD)/compat/helper/%.h,$(wildcard $(d)/*.h)))
define compat_rule
$(BUILD)/compat/helper/%.h: $(1)/%.h
	@mkdir -p $$(dir $$@)
	@printf '#include "$(1)/%s"\n' $$(notdir $$<) > $$@
endef
$(foreach d,$(MOVED_DIRS),$(eval $(call compat_rule,$(d))))
.SECONDARY: $(COMPAT_HDRS)

.PHONY: all setup check check-san demo install bench clean
all: $(BIN) $(EXTRA_ALL) $(UNIT_BINS) $(TARGET_BINS) $(BENCH_BINS)

# Objects are rebuilt when the flags change (e.g. -fPIC was added for
# libforkpoint.so): make itself only compares times.
FLAGS_STAMP := $(BUILD)/.cflags
$(shell mkdir -p $(BUILD) && (echo '$(CFLAGS_ALL)' | cmp -s - $(FLAGS_STAMP) || echo '$(CFLAGS_ALL)' > $(FLAGS_STAMP)))

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP) | $(COMPAT_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/obj/cli/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB) | $(COMPAT_HDRS)
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

$(BUILD)/bench/%: bench/%.c $(LIB) | $(COMPAT_HDRS)
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

# PREFIX is where it will live (compiled into forkpoint.pc), DESTDIR a
# staging root for packaging: files go to $(DESTDIR)$(PREFIX)/...
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/forkpoint $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/forkpoint
	install -m 0755 $(BUILD)/lib/libforkpoint-preload.so $(DESTDIR)$(PREFIX)/lib/forkpoint/
	install -m 0755 $(SO_REAL) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SO_REAL)) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libforkpoint.so
	install -m 0644 include/forkpoint.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(SO_VERSION)|g' scripts/forkpoint.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/forkpoint.pc

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
