# make fuzz: libFuzzer targets for every reader of untrusted bytes, each
# run for FUZZ_SECONDS (see fuzz/README). Included by the Makefile, last.
#
#   make fuzz                      build, then run every target for 60 s
#   make fuzz FUZZ_SECONDS=600     longer
#   make fuzz FUZZ_TARGETS=object  some of them
#   make fuzz-build                build only
#   make fuzz-merge                fold what the runs learned
#                                  (build/fuzz/corpus) into fuzz/corpus
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= object image proto agent $(if $(wildcard src/elf/archive.c),archive)
FB           := $(B)/fuzz

# Sanitizers make a bug a crash where it happens; UB is not recovered from,
# so libFuzzer keeps the input.
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) $(WARN) -Isrc -MMD -MP

# rewire's readers, built for the fuzzers: instrumented for coverage, no main.
FUZZ_LIB_SRC := $(wildcard src/elf/*.c) src/util.c src/proto/proto.c src/proto/msg.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FB)/obj/%.o)
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FB)/%)

fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: fuzz-deps $(FUZZ_BIN)

# Only when the compiler is missing: the fuzzers need clang's libFuzzer.
fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null || scripts/deps.sh

$(FB)/obj/%.o: %.c | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# The agent target compiles src/agent/apply.c and the files it uses into
# itself (requests.c, registry.c, history.c), the archive
# target src/elf/archive.c (see fuzz/agent.c, fuzz/archive.c).
FUZZ_OWN_archive := $(FB)/obj/src/elf/archive.o
$(FB)/%: fuzz/%.c $(FUZZ_LIB_OBJ) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(filter-out $(FUZZ_OWN_$*),$(FUZZ_LIB_OBJ)) -liberty

# The small inputs the runs kept that reach code the seeds do not, into
# the committed corpus (fuzz/merge.sh).
fuzz-merge: fuzz-build
	fuzz/merge.sh $(FUZZ_TARGETS)

# The inputs replayed without libFuzzer, in the unit tests: the readers'
# in tests/unit/test_fuzz_inputs.c, the agent's in test_fuzz_agent, built
# here from fuzz/agent.c (it cannot link with the driver's objects).
$(B)/unit/test_fuzz_inputs: fuzz/object.c fuzz/image.c fuzz/proto.c fuzz/archive.c \
			    fuzz/fuzz.h fuzz/replay.h fuzz/elf_check.h
$(B)/unit/test_fuzz_agent: fuzz/agent.c fuzz/fuzz.h fuzz/replay.h src/agent/apply.c \
			   src/agent/requests.c src/agent/registry.c src/agent/history.c \
			   $(wildcard src/agent/*.h) src/proto/proto.c src/proto/proto.h \
			   src/proto/msg.c src/proto/msg.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Isrc -DRW_FUZZ_REPLAY -o $@ fuzz/agent.c src/proto/proto.c \
		src/proto/msg.c -pthread
UNIT_BIN += $(B)/unit/test_fuzz_agent
units: $(B)/unit/test_fuzz_agent

# Built through the pattern rules only, but kept between runs.
.SECONDARY: $(FUZZ_LIB_OBJ)
.PHONY: fuzz fuzz-build fuzz-deps fuzz-merge
-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BIN:=.d)
