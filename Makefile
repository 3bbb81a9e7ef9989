# rewire: the driver (build/rewire) and the agent (build/librewire.so).
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
PREFIX  ?= /usr/local
B       := build

DRIVER_SRC := $(wildcard src/driver/*.c src/elf/*.c src/link/*.c src/patch/*.c src/front/*.c) \
	      src/util.c src/proto/proto.c
AGENT_SRC  := $(wildcard src/agent/*.c) src/proto/proto.c
UNIT_SRC   := $(wildcard tests/unit/*.c)

DRIVER_OBJ := $(DRIVER_SRC:%.c=$(B)/driver/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(B)/agent/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
LIB_OBJ    := $(filter-out $(B)/driver/src/driver/%,$(DRIVER_OBJ))

all: $(B)/rewire $(B)/librewire.so

$(B)/rewire: $(DRIVER_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -liberty -ljson-c

# The agent lives inside other programs: hidden symbols, no exits (poisoned
# in agent.h), only libc.
$(B)/librewire.so: $(AGENT_OBJ)
	$(CC) $(CFLAGS) -shared -pthread -Wl,-z,now -Wl,--no-undefined -o $@ $^

$(B)/driver/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -MMD -MP -c -o $@ $<

$(B)/agent/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

$(B)/unit/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -o $@ $< $(LIB_OBJ) -liberty -ljson-c

# It compiles the agent's allocator in (#include "agent/region.c").
$(B)/unit/test_region: src/agent/region.c src/agent/agent.h

# Both install what they need first (Debian packages, when missing).
test:
	scripts/deps.sh
	$(MAKE) all units
	tests/run.sh

demo:
	scripts/deps.sh
	$(MAKE) all
	scripts/demo.sh

units: $(UNIT_BIN)

bench: all
	bench/apply.sh
	bench/edit.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/rewire
	install -m 755 $(B)/rewire $(DESTDIR)$(PREFIX)/bin/rewire
	install -m 644 $(B)/librewire.so $(DESTDIR)$(PREFIX)/lib/rewire/librewire.so

clean:
	rm -rf $(B)

.PHONY: all test demo units bench install clean
-include $(DRIVER_OBJ:.o=.d) $(AGENT_OBJ:.o=.d)

# make fuzz: libFuzzer targets for every reader of untrusted bytes.
-include fuzz/fuzz.mk
