# Developer entry points: build, test, check (sanitizers + valgrind), demo.
# `luarocks make --deps-mode=none` builds the same module through rockspec/*.rockspec.

LUA         ?= lua5.4
LUA_INCDIR  ?= /usr/include/$(LUA)
BUSTED      ?= $(LUA) /usr/bin/busted
CC          ?= cc
OPT         ?= -O2 -g
WARN        := -Wall -Wextra -Werror -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(OPT) $(SAN)
LIBS        := -losip2 -losipparser2 -luv -lcrypto

BUILD       ?= build
include mk/sources.mk

# Debian packages for `make deps`. LuaJIT comes as OpenResty's (luajit2, libluajit2-5.1-dev):
# Debian's luajit/libluajit-5.1-dev conflict with nginx's Lua module (doc/openresty.md).
DEB_PACKAGES := gcc make pkg-config lua5.4 liblua5.4-dev lua-busted libosip2-dev libuv1-dev libssl-dev openssl \
                luajit2 libluajit2-5.1-dev nginx libnginx-mod-http-lua lua-compat53-dev lua-socket clang libclang-rt-14-dev \
                kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3 sip-tester \
                valgrind luarocks curl
LAYER_FLAGS  = $(if $(findstring /core/,$<),$(CORE_INC),$(if $(findstring /drivers/,$<),$(UV_INC),$(if $(findstring /compositor/,$<),$(COMP_INC),$(LUA_INC) -I$(LUA_INCDIR))))
OBJ_OF       = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJ    := $(call OBJ_OF,$(CORE_SRC))
UV_OBJ      := $(call OBJ_OF,$(UV_SRC))
COMP_OBJ    := $(call OBJ_OF,$(COMP_SRC))
MODULE_OBJ  := $(call OBJ_OF,$(MODULE_SRC))
HEADERS     := $(wildcard csrc/include/*.h csrc/*/*.h csrc/drivers/*/*.h)

.PHONY: all deps test unit check asan valgrind demo clean rock luajit luajit-module soak

all: $(BUILD)/sip/core.so $(BUILD)/sip-compositor $(BUILD)/examples/publish $(BUILD)/spec/driver_faults

# The driver under injected sendmmsg faults (spec/driver_spec.lua runs it).
$(BUILD)/spec/driver_faults: spec/support/driver_faults.c $(CORE_OBJ) $(UV_OBJ) $(COMP_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc/include -o $@ $< $(CORE_OBJ) $(UV_OBJ) $(COMP_OBJ) $(LIBS) -ldl

# The C example: the core and the libuv driver without Lua.
$(BUILD)/examples/publish: examples/publish.c $(CORE_OBJ) $(UV_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc/include -o $@ examples/publish.c $(CORE_OBJ) $(UV_OBJ) $(LIBS)

# Each layer is compiled with its own include path (mk/sources.mk): the core cannot include
# libuv or Lua, drivers cannot include Lua.
$(BUILD)/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -fvisibility=hidden $(LAYER_FLAGS) -c $< -o $@

$(BUILD)/sip/core.so: $(MODULE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SAN) -o $@ $^ $(LIBS)

$(BUILD)/sip-compositor: $(COMP_MAIN) $(COMP_OBJ) $(call OBJ_OF,csrc/core/causes.c csrc/core/osip.c) $(HEADERS)
	$(CC) $(BASE_CFLAGS) $(COMP_INC) -o $@ $(COMP_MAIN) $(COMP_OBJ) $(call OBJ_OF,csrc/core/causes.c csrc/core/osip.c) -losip2 -losipparser2 -luv

# Installs the Debian packages the build and the suite need, when some are missing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing packages; run as root:"; echo "  apt-get install -y$$missing"; exit 1; fi

# The whole suite: unit specs (virtual clock), the test compositor over loopback UDP,
# and Kamailio started by the specs themselves on a loopback port.
test: deps all luajit-module
	$(BUSTED) --run=ci

unit: all
	$(BUSTED) --exclude-tags=integration

# Memory safety: the suite under ASan+UBSan, then under valgrind.
check: deps asan valgrind

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SIP_BUILD=build/asan $(BUSTED) --run=ci

valgrind: all
	SIP_VALGRIND=1 valgrind -q --error-exitcode=42 --leak-check=full --errors-for-leak-kinds=definite \
	  --suppressions=$(CURDIR)/.ci/valgrind.supp --trace-children=no \
	  $(BUSTED) --run=ci --exclude-tags=slow

# The same C built for LuaJIT (Lua 5.1 API + lua-compat-5.3), with the unit specs under it.
# luajit-module only builds it (what OpenResty loads: spec/integration/openresty_spec.lua).
luajit: deps luajit-module
	SIP_BUILD=build/luajit luajit /usr/bin/busted --exclude-tags=integration

luajit-module:
	@mkdir -p build/luajit/sip
	$(MAKE) --no-print-directory BUILD=build/luajit LUA_INCDIR="/usr/include/luajit-2.1 -I/usr/include/lua5.1" build/luajit/sip/core.so

# A bounded soak: publications with short Expires under random passing faults and one
# restart; RSS must stay flat and no refresh may be missed (SOAK_SECONDS, SOAK_N, SOAK_SEED).
SOAK_SECONDS ?= 300
SOAK_N       ?= 10000
soak: deps all
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_N=$(SOAK_N) $(LUA) soak/soak.lua

demo: deps all
	$(LUA) examples/demo.lua

rock:
	luarocks --lua-version=5.4 --tree=./rocktree make --deps-mode=none rockspec/lua-sip-publish-scm-1.rockspec

clean:
	rm -rf build rocktree sip

# ---- fuzzing (clang libFuzzer, ASan+UBSan, leak detection): fuzz/README.md --------------------
# `make fuzz` builds every target in fuzz/ and runs each for FUZZ_SECONDS (corpus kept in
# build/fuzz/corpus/, crashes written to build/fuzz/artifacts/); `make fuzz-regress` replays
# fuzz/regressions/TARGET/* once through each target.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := response pubnew scan
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(WARN) $(CORE_INC) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-regress

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRC) $(LIBS)

fuzz-build: deps $(FUZZ_BINS)

fuzz: fuzz-build
	@mkdir -p build/fuzz/artifacts
	@status=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  dict=""; [ -f fuzz/$$t.dict ] && dict="-dict=fuzz/$$t.dict"; \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
	    -artifact_prefix=build/fuzz/artifacts/$$t- build/fuzz/corpus/$$t fuzz/corpus/$$t \
	    > build/fuzz/$$t.log 2>&1 || status=1; \
	  grep -a -E '^#[0-9]+[[:space:]]+(DONE|INITED)|^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY' \
	    build/fuzz/$$t.log | tail -8; \
	done; \
	ls build/fuzz/artifacts/ 2>/dev/null | sed 's/^/artifact: /'; exit $$status

fuzz-regress: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  if ls fuzz/regressions/$$t/* >/dev/null 2>&1; then \
	    echo "== fuzz_$$t: replaying fuzz/regressions/$$t"; \
	    build/fuzz/fuzz_$$t fuzz/regressions/$$t/* || exit 1; \
	  fi; \
	done

# ---- benchmarks (bench/): `make bench`, never part of `make test` ------------------------
# Builds the bench programs, runs every benchmark on loopback and writes bench/RESULTS.md.
# Sizes: BENCH_N, BENCH_W, BENCH_REPEAT, BENCH_MEM_N, BENCH_SCALE_N, BENCH_SCALE_SECS... (bench/README.md).
BENCH_DEB_PACKAGES := sip-tester libsofia-sip-ua-dev valgrind

.PHONY: bench bench-deps bench-build bench-openresty

bench-deps: deps
	@missing=""; for p in $(BENCH_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "bench-deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "bench-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "bench-deps: missing packages; run as root:"; echo "  apt-get install -y$$missing"; exit 1; fi
	@dpkg-query -W -f='$${Status}\n' linux-perf 2>/dev/null | grep -q '^install ok installed' || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null 2>&1 || \
	    echo "bench-deps: linux-perf not installed (optional: the perf profile is skipped)"; }

bench-build: bench-deps all
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC="$(CC)" \
	  BASE_CFLAGS="$(BASE_CFLAGS)" CORE_OBJ="$(CORE_OBJ)" LIBS="$(LIBS)"

bench: bench-build
	SIP_BUILD=$(BUILD) BENCH_BIN=$(BUILD)/bench LUA=$(LUA) $(LUA) bench/run.lua

# The OpenResty driver against the libuv driver (Lua 5.4, LuaJIT), same life, same compositor:
# prints a table (bench/openresty/run.lua); needs nginx with its Lua module.
bench-openresty: all luajit-module
	$(LUA) bench/openresty/run.lua
