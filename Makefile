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
LIBS        += $(FEATURE_LIBS)
LAYER_FLAGS  = $(if $(findstring /core/,$<),$(CORE_INC),$(if $(findstring /drivers/,$<),$(UV_INC),$(if $(findstring /compositor/,$<),$(COMP_INC),$(LUA_INC) -I$(LUA_INCDIR))))
OBJ_OF       = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJ    := $(call OBJ_OF,$(CORE_SRC))
UV_OBJ      := $(call OBJ_OF,$(UV_SRC))
COMP_OBJ    := $(call OBJ_OF,$(COMP_SRC))
MODULE_OBJ  := $(call OBJ_OF,$(MODULE_SRC))
HEADERS     := $(wildcard csrc/include/*.h csrc/*/*.h csrc/drivers/*/*.h)

.PHONY: luajit-build all deps bench-deps check-rockspecs check-spec-tags test unit check asan valgrind demo clean rock dist \
        luajit lua5.1 lua5.3 soak

all: $(BUILD)/sip/core.so $(BUILD)/sip-compositor $(BUILD)/sip-publish $(BUILD)/examples/publish \
     $(BUILD)/spec/driver_faults $(BUILD)/spec/core_seams $(BUILD)/spec/uv_resolve $(BUILD)/spec/stall

# The sip-publish command from the source tree (the rock installs it with LuaRocks' wrapper).
$(BUILD)/sip-publish: bin/sip-publish.lua
	@mkdir -p $(dir $@)
	@printf '#!/bin/sh\n# sip-publish from the source tree %s\nexec env LUA_PATH="%s/lua/?.lua;%s/lua/?/init.lua;$$LUA_PATH;;" LUA_CPATH="%s/$(BUILD)/?.so;$$LUA_CPATH;;" $(LUA) %s/bin/sip-publish.lua "$$@"\n' \
	  "$(CURDIR)" "$(CURDIR)" "$(CURDIR)" "$(CURDIR)" "$(CURDIR)" > $@
	@chmod +x $@

# The driver under injected sendmmsg faults (spec/integration/driver_spec.lua runs it).
$(BUILD)/spec/driver_faults: spec/support/driver_faults.c $(CORE_OBJ) $(UV_OBJ) $(COMP_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc/include -o $@ $< $(CORE_OBJ) $(UV_OBJ) $(COMP_OBJ) $(LIBS) -ldl

# The core's transport and resolver seams under a fake io, and the libuv driver's side of the
# resolver seam against the test compositor (spec/unit/core_seams_spec.lua runs them).
$(BUILD)/spec/core_seams: spec/support/core_seams.c $(CORE_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc/include -o $@ $< $(CORE_OBJ) $(LIBS)

# The core after a loop stall, driven from C as a driver drives it (spec/unit/stall_spec.lua).
$(BUILD)/spec/stall: spec/support/stall.c $(CORE_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc/include -o $@ $< $(CORE_OBJ) $(LIBS)

$(BUILD)/spec/uv_resolve: spec/support/uv_resolve.c $(CORE_OBJ) $(UV_OBJ) $(COMP_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -Icsrc/include -o $@ $< $(CORE_OBJ) $(UV_OBJ) $(COMP_OBJ) $(LIBS)

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

# The compositor program takes from the core only its reason phrases, libosip2 initialisation
# and message framer.
COMP_CORE_OBJ := $(call OBJ_OF,csrc/core/causes.c csrc/core/osip.c csrc/core/frame.c)
$(BUILD)/sip-compositor: $(COMP_MAIN) $(COMP_OBJ) $(COMP_CORE_OBJ) $(HEADERS)
	$(CC) $(BASE_CFLAGS) $(COMP_INC) -o $@ $(COMP_MAIN) $(COMP_OBJ) $(COMP_CORE_OBJ) -losip2 -losipparser2 -luv

# Debian packages: one list per purpose in mk/packages/ (build, test, check, luajit, fuzz,
# bench, and one per feature switch), one install rule (mk/deps.sh) that installs what is
# missing. `make deps` covers everything but the benchmarks; `make bench-deps` adds them.
DEPS_FOR ?= build test lua check luajit openresty doc fuzz $(FEATURE_DEPS)

deps:
	@sh mk/deps.sh $(DEPS_FOR)

bench-deps:
	@sh mk/deps.sh $(DEPS_FOR) bench

# The rockspecs build sip.core through mk/rock.mk, from mk/sources.mk's lists: one source
# list; the scm and the release rockspec agree.
check-rockspecs:
	@$(LUA) mk/check-rockspecs.lua rockspec/lua-sip-publish-scm-1.rockspec \
	  $$(ls rockspec/lua-sip-publish-[0-9]*.rockspec | sort -V | tail -n 1)

# `make unit` and `make luajit` select spec/unit/ by tag: the folders and the `integration`
# tag must agree.
check-spec-tags: all
	@sh mk/check-spec-tags.sh $(BUSTED)

# The whole suite on Lua 5.4 and on LuaJIT: unit specs (virtual clock), the test compositor
# over loopback UDP, Kamailio started by the specs themselves on a loopback port; then the
# unit specs on Lua 5.1 and 5.3. Each Lua has its own build of sip.core (build/<lua>/).
test: deps check-rockspecs all luajit-build check-spec-tags
	$(BUSTED) --run=ci
	SIP_BUILD=build/luajit luajit /usr/bin/busted --run=ci
	$(MAKE) --no-print-directory lua5.1 lua5.3

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

# The same C built against LuaJIT's headers alone (as OpenResty installs them: the Lua 5.1 API
# plus the lua-compat-5.3 layer shipped in csrc/lua/compat), with the unit specs under it.
luajit: deps luajit-build
	SIP_BUILD=build/luajit luajit /usr/bin/busted --exclude-tags=integration

luajit-build:
	$(MAKE) --no-print-directory BUILD=build/luajit LUA=luajit LUA_INCDIR=/usr/include/luajit-2.1 \
	  build/luajit/sip/core.so build/luajit/sip-compositor

# The unit specs on Lua 5.1 and 5.3, each against its own build.
lua5.1 lua5.3: all
	$(MAKE) --no-print-directory BUILD=build/$@ LUA=$@ LUA_INCDIR=/usr/include/$@ build/$@/sip/core.so
	SIP_BUILD=build/$@ $@ /usr/bin/busted --exclude-tags=integration

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

# The release's source rock (build/dist/): installs with no network, `luarocks install FILE`.
dist:
	@sh mk/dist.sh

clean:
	rm -rf build rocktree sip

# ---- fuzzing (clang libFuzzer, ASan+UBSan, leak detection): fuzz/README.md --------------------
# `make fuzz` builds every target in fuzz/ and runs each for FUZZ_SECONDS (corpus kept in
# build/fuzz/corpus/, crashes written to build/fuzz/artifacts/); `make fuzz-regress` replays
# fuzz/regressions/TARGET/* once through each target.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := response pubnew scan stream
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
# Packages: mk/packages/bench.txt (`make bench-deps`, above).

# The API reference: LDoc (mk/packages/doc.txt) over the doc comments of lua/sip/*.lua, as
# config.ld says, into build/doc/ (index.html). Not committed.
.PHONY: doc
doc:
	@sh mk/deps.sh doc
	rm -rf $(BUILD)/doc && mkdir -p $(BUILD)
	ldoc -d $(BUILD)/doc . > $(BUILD)/ldoc.log 2>&1 || { cat $(BUILD)/ldoc.log; exit 1; }
	@if grep -v -e '^reading configuration' -e '^output written' -e '^format:' $(BUILD)/ldoc.log; \
	  then echo "make doc: LDoc warnings above" >&2; exit 1; fi
	@echo "make doc: $(BUILD)/doc/index.html"

.PHONY: bench bench-build bench-openresty

bench-build: bench-deps all luajit-build
	$(MAKE) --no-print-directory -f bench/bench.mk BUILD=$(BUILD) CC="$(CC)" \
	  BASE_CFLAGS="$(BASE_CFLAGS)" CORE_OBJ="$(CORE_OBJ)" LIBS="$(LIBS)"

bench: bench-build
	SIP_BUILD=$(BUILD) BENCH_BIN=$(BUILD)/bench LUA=$(LUA) $(LUA) bench/run.lua

# The OpenResty driver against the libuv driver (Lua 5.4, LuaJIT), same life, same compositor:
# prints a table (bench/openresty/run.lua); needs nginx with its Lua module.
bench-openresty: all luajit-build
	$(LUA) bench/openresty/run.lua

