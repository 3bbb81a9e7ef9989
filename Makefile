# rewire: the driver (build/rewire) and the agent (build/librewire.so).
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
PREFIX  ?= /usr/local
B       := build

DRIVER_SRC := $(wildcard src/driver/*.c src/session/*.c src/elf/*.c src/arch/*.c src/link/*.c \
			 src/diff/*.c src/front/*.c) \
	      src/util.c src/proto/proto.c src/proto/msg.c
AGENT_SRC  := $(wildcard src/agent/*.c) src/proto/proto.c src/proto/msg.c src/guard/guard.c
UNIT_SRC   := $(wildcard tests/unit/*.c)

DRIVER_OBJ := $(DRIVER_SRC:%.c=$(B)/driver/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(B)/agent/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
LIB_OBJ    := $(filter-out $(B)/driver/src/driver/% $(B)/driver/src/session/%,$(DRIVER_OBJ))

all: $(B)/rewire $(B)/librewire.so $(B)/librewire-api.a $(B)/rewire.pc

$(B)/rewire: $(DRIVER_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -liberty -ljson-c -ldw -lelf -lz

# The agent lives inside other programs: hidden symbols, no exits (poisoned
# in agent.h), only libc.
$(B)/librewire.so: $(AGENT_OBJ)
	$(CC) $(CFLAGS) -shared -pthread -Wl,-z,now -Wl,--no-undefined -o $@ $^

# The agent for aarch64 programs, when a cross compiler is there (Debian:
# gcc-aarch64-linux-gnu): build/aarch64/librewire.so.
CROSS_A64 ?= aarch64-linux-gnu-gcc
HAVE_A64  := $(shell command -v $(CROSS_A64) 2>/dev/null)
A64_OBJ   := $(AGENT_SRC:%.c=$(B)/aarch64/agent/%.o)
ifneq ($(HAVE_A64),)
all: $(B)/aarch64/librewire.so
endif

$(B)/aarch64/librewire.so: $(A64_OBJ)
	$(CROSS_A64) $(CFLAGS) -shared -pthread -Wl,-z,now -Wl,--no-undefined -o $@ $^

$(B)/aarch64/agent/%.o: %.c
	@mkdir -p $(dir $@)
	$(CROSS_A64) $(CFLAGS) $(WARN) -Isrc -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

# The driver and its unit tests built for aarch64 (build/aarch64/host/), when
# scripts/deps.sh has unpacked Debian's arm64 libdw, json-c and libiberty
# into build/aarch64/root: the tests run them under qemu-user. The agent
# beside that driver is the aarch64 one.
A64_ROOT := $(CURDIR)/build/aarch64/root
A64_LIBS := $(A64_ROOT)/usr/lib/aarch64-linux-gnu
A64_HOST_CFLAGS := -O2 -g -I$(A64_ROOT)/usr/include -I$(A64_ROOT)/usr/include/aarch64-linux-gnu \
	-L$(A64_LIBS) -Wl,--disable-new-dtags,-rpath,$(A64_LIBS):$(A64_ROOT)/lib/aarch64-linux-gnu
ifneq ($(and $(HAVE_A64),$(wildcard $(A64_LIBS)/libdw.so)),)
ifeq ($(A64_HOST_BUILD),)
all: a64-host
endif
endif

a64-host: $(B)/aarch64/librewire.so
	$(MAKE) B=$(B)/aarch64/host CC=$(CROSS_A64) CFLAGS="$(A64_HOST_CFLAGS)" A64_HOST_BUILD=1 \
		$(B)/aarch64/host/rewire units
	cp $(B)/aarch64/librewire.so $(B)/aarch64/host/librewire.so

# The API a program links (include/rewire.h): calls into the agent when it
# is there, no-ops when not. Position-independent: it may go into a .so.
$(B)/librewire-api.a: $(B)/api/src/api/rewire.o $(B)/api/rewire_lib.o $(B)/api/src/guard/guard.o
	rm -f $@
	ar rcs $@ $^

# The dylib reload API (include/rewire_lib.h): one object, in which what
# its files share (hidden, src/api/lib.h) is made local, so that a program
# linking the archive meets only the rewire_lib_* names.
API_LIB_OBJ := $(patsubst %,$(B)/api/src/api/%.o,lib image files version calls reload crash)
$(B)/api/rewire_lib.o: $(API_LIB_OBJ)
	$(LD) -r -o $@ $^
	objcopy --localize-hidden $@

# Built as rewire asks programs to be (-fno-ipa-ra, when the compiler has
# it): a program that links the API is not warned of rewire's own code.
API_CFLAGS := $(shell $(CC) -Werror -fno-ipa-ra -x c -c /dev/null -o /dev/null 2>/dev/null && \
		echo -fno-ipa-ra)

$(B)/api/%.o: %.c include/rewire.h include/rewire_lib.h src/guard/guard.h src/api/lib.h src/grow.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(API_CFLAGS) $(WARN) -fPIC -c -o $@ $<

$(B)/rewire.pc: Makefile
	printf 'prefix=%s\nincludedir=$${prefix}/include\nlibdir=$${prefix}/lib\n\nName: rewire\nDescription: hot-patching of running programs: safe points, hooks, guarded calls\nVersion: 0.1\nCflags: -I$${includedir}\nLibs: -L$${libdir} -lrewire-api\n' '$(PREFIX)' >$@

$(B)/driver/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -MMD -MP -c -o $@ $<

$(B)/agent/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -fPIC -fvisibility=hidden -MMD -MP -c -o $@ $<

$(B)/unit/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -o $@ $< $(LIB_OBJ) -liberty -ljson-c -ldw -lelf -lz

# It compiles the agent's allocator in (#include "agent/region.c").
$(B)/unit/test_region: src/agent/region.c src/agent/agent.h

# It links the API library's objects as they are before rewire_lib.o makes
# what they share (src/api/lib.h) local, and calls that too.
$(B)/unit/test_api: tests/unit/test_api.c $(API_LIB_OBJ) $(B)/api/src/api/rewire.o \
		    $(B)/api/src/guard/guard.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -o $@ $^ -ldl -pthread

# test and demo install what they need first (Debian packages, when
# missing); `make check` installs nothing.
test:
	scripts/deps.sh
	$(MAKE) check

check: all units san
	tests/run.sh

# The driver and the unit tests built with ASan and UBSan (build/san/), for
# the sanitized part of the tests (tests/run.sh). The agent, which lives in
# other programs, is the plain one.
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
san: $(B)/librewire.so
	$(MAKE) B=$(B)/san CFLAGS="$(SAN_CFLAGS)" $(B)/san/rewire units
	cp $(B)/librewire.so $(B)/san/librewire.so

demo:
	scripts/deps.sh
	$(MAKE) all
	scripts/demo.sh

units: $(UNIT_BIN)

# Every benchmark, then docs/benchmarks.md and its plots (bench/run.sh).
bench: all
	bench/run.sh

# The oracle (tests/oracle/oracle.py): edits of real programs (GNU bc, Lua,
# muparser, a serde_json program), each patched into the running program and
# compared with a fresh build; the table goes to build/oracle/results-SEED.txt.
ORACLE_EDITS    ?= 30,muparser=8
ORACLE_SEED     ?= 1
ORACLE_PROGRAMS ?= bc,lua,muparser,rust-json
oracle: all
	scripts/deps.sh
	python3 tests/oracle/oracle.py --edits $(ORACLE_EDITS) --seed $(ORACLE_SEED) --programs $(ORACLE_PROGRAMS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/rewire
	install -m 755 $(B)/rewire $(DESTDIR)$(PREFIX)/bin/rewire
	install -m 644 $(B)/librewire.so $(DESTDIR)$(PREFIX)/lib/rewire/librewire.so
	if [ -f $(B)/aarch64/librewire.so ]; then \
		install -d $(DESTDIR)$(PREFIX)/lib/rewire/aarch64 && \
		install -m 644 $(B)/aarch64/librewire.so $(DESTDIR)$(PREFIX)/lib/rewire/aarch64/librewire.so; fi
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/rewire.h $(DESTDIR)$(PREFIX)/include/rewire.h
	install -m 644 include/rewire_lib.h $(DESTDIR)$(PREFIX)/include/rewire_lib.h
	install -m 644 $(B)/librewire-api.a $(DESTDIR)$(PREFIX)/lib/librewire-api.a
	$(MAKE) -B PREFIX='$(PREFIX)' $(B)/rewire.pc
	install -m 644 $(B)/rewire.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/rewire.pc
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 doc/rewire.1 $(DESTDIR)$(PREFIX)/share/man/man1/rewire.1

clean:
	rm -rf $(B)

.PHONY: all test check san demo units bench oracle install clean a64-host
-include $(DRIVER_OBJ:.o=.d) $(AGENT_OBJ:.o=.d) $(A64_OBJ:.o=.d)

# make fuzz: libFuzzer targets for every reader of untrusted bytes.
-include fuzz/fuzz.mk
