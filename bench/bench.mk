# bench/bench.mk — builds the benchmark programs into $(BUILD)/bench; run by `make bench` from
# the top directory, which passes BUILD, CC, BASE_CFLAGS, CORE_OBJ and LIBS.
BUILD       ?= build
CC          ?= cc
BASE_CFLAGS ?= -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -O2 -g
CORE_OBJ    ?= $(BUILD)/obj/core.o $(BUILD)/obj/message.o $(BUILD)/obj/causes.o
LIBS        ?= -losip2 -losipparser2 -luv
OUT         := $(BUILD)/bench
CFLAGS      := $(BASE_CFLAGS) -Icsrc/include -Ibench
# Sofia-SIP's headers as system headers: -Wextra -Werror apply to our code only.
SOFIA_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags sofia-sip-ua))
SOFIA_LIBS   := $(shell pkg-config --libs sofia-sip-ua)
CORE_HDRS    := $(wildcard csrc/include/*.h csrc/core/*.h) bench/inmem.h bench/countalloc.h

PROGRAMS := $(OUT)/cpu_of $(OUT)/raw_echo $(OUT)/raw_udp $(OUT)/fast_responder $(OUT)/sofia_publish \
            $(OUT)/core_roundtrip $(OUT)/core_roundtrip_count $(OUT)/mem_core $(OUT)/hostile

all: $(PROGRAMS)

$(OUT)/cpu_of $(OUT)/raw_echo $(OUT)/raw_udp: $(OUT)/%: bench/%.c
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) -o $@ $<

$(OUT)/fast_responder: bench/fast_responder.c $(CORE_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) -o $@ $<

$(OUT)/sofia_publish: bench/sofia_publish.c
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) $(SOFIA_CFLAGS) -o $@ $< $(SOFIA_LIBS)

$(OUT)/core_roundtrip: bench/core_roundtrip.c $(CORE_OBJ) $(CORE_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS)

$(OUT)/core_roundtrip_count: bench/core_roundtrip.c bench/countalloc.c $(CORE_OBJ) $(CORE_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) -DCOUNT_ALLOC -o $@ bench/core_roundtrip.c bench/countalloc.c $(CORE_OBJ) $(LIBS)

$(OUT)/mem_core: bench/mem_core.c bench/countalloc.c $(CORE_OBJ) $(CORE_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) -o $@ bench/mem_core.c bench/countalloc.c $(CORE_OBJ) $(LIBS)

$(OUT)/hostile: bench/hostile.c $(CORE_OBJ) $(CORE_HDRS)
	@mkdir -p $(OUT)
	$(CC) $(CFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS)

.PHONY: all
