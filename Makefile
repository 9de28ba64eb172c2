# OpenMSSP - one non-recursive GNU Makefile.
#
#   make            debug build of the library and programs (build/debug)
#   make test       unit tests + message corpus; last line "N passed, N failed"
#   make asan       the same tests under AddressSanitizer + UBSan (build/asan)
#   make fuzz       libFuzzer targets (clang), each run FUZZ_SECONDS seconds
#   make bench      throughput figures beside a baseline measured in the same run
#   make run        install what is missing, build, say what msspd will do
#   make deps       install the Debian packages of docs/stack.md that are missing
#   make clean
#
# Modules are globbed: adding src/<layer>/<mod>.c needs no edit here.

VARIANT   ?= debug
BUILD     ?= build/$(VARIANT)
CC        ?= gcc
ifeq ($(CC),cc)
CC        := gcc
endif

PKGS      := openssl libxml-2.0 jansson sqlite3 libevent libevent_openssl libevent_pthreads libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lwslay -lpthread
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wpointer-arith -Wsign-compare -Wformat=2 \
             -Wno-missing-field-initializers
CPPFLAGS  := -D_GNU_SOURCE -Isrc -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED -DMSSP_WEB_ROOT=\"$(CURDIR)/web\"
CFLAGS_debug   := -O1 -g
CFLAGS_release := -O2 -g -D_FORTIFY_SOURCE=2
CFLAGS_asan    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                  -fno-sanitize-recover=undefined
LDFLAGS_asan   := -fsanitize=address,undefined
CFLAGS    := -std=c17 $(WARN) -fstack-protector-strong $(CFLAGS_$(VARIANT)) $(PKG_CFLAGS) -MMD -MP
LDFLAGS   := -Wl,-z,relro,-z,now $(LDFLAGS_$(VARIANT))

LIB_SRC   := $(wildcard src/util/*.c src/net/*.c src/mss/*.c src/pki/*.c src/phone/*.c src/store/*.c src/roles/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libmssp.a
CMD_SRC   := $(wildcard src/cmd/*.c)
PROGS     := $(CMD_SRC:src/cmd/%.c=$(BUILD)/bin/%)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TESTS     := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test asan fuzz bench run deps deps-check deps-check-test clean lint
all: $(PROGS)

# V=1 shows the full command lines.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

.SECONDARY:

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# A program is src/cmd/<prog>.c plus its sub-command files src/cmd/<prog>/*.c.
# (A variable, because '%' written in a pattern rule's prerequisites would
# be replaced by the stem.)
cmd_objs = $(patsubst src/%.c,$(BUILD)/obj/src/%.o,$(wildcard src/cmd/$(1)/*.c))
.SECONDEXPANSION:
$(BUILD)/bin/%: $(BUILD)/obj/src/cmd/%.o $$(call cmd_objs,$$*) $(LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(filter %.o,$^) $(LIB) $(PKG_LIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $< $(LIB) $(PKG_LIBS) $(CMOCKA_LIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $< $(LIB) $(PKG_LIBS) -o $@

# Test objects may reach static functions through UNITTEST (see util/unittest.h).
$(BUILD)/obj/tests/%.o: CPPFLAGS += -DMSSP_UNITTEST

# The PKCS#11 engine glue is the one translation unit that needs OpenSSL's
# deprecated ENGINE API (pkcs11-provider is not in Debian 12).
$(BUILD)/obj/src/pki/%_engine.o: CPPFLAGS := $(filter-out -DOPENSSL_NO_DEPRECATED,$(CPPFLAGS)) -Wno-deprecated-declarations

deps-check:
	@scripts/deps.sh --check >/dev/null 2>&1 || scripts/deps.sh

deps-check-test:
	@scripts/deps.sh --check test >/dev/null 2>&1 || scripts/deps.sh test

deps:
	scripts/deps.sh

test: deps-check-test
	@$(MAKE) --no-print-directory VARIANT=$(VARIANT) $(PROGS) $(TESTS)
	@BUILD=$(BUILD) scripts/run-tests.sh

asan: deps-check-test
	@$(MAKE) --no-print-directory VARIANT=asan test

FUZZ_SECONDS ?= 20
fuzz: deps-check
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

bench: deps-check
	@$(MAKE) --no-print-directory VARIANT=release $(patsubst build/$(VARIANT)/%,build/release/%,$(BENCHES)) build/release/bin/msspctl build/release/bin/msspd build/release/bin/mss-ap build/release/bin/mss-phone
	@BUILD=build/release scripts/bench.sh

run: deps-check all
	@scripts/run.sh $(BUILD)

lint:
	@scripts/lint.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
