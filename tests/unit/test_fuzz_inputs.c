/* Unit test: the fuzz inputs kept in fuzz/corpus/ and fuzz/regress/,
 * replayed without libFuzzer through the same functions the fuzzers call
 * (object, image, proto, and archive when there is an archive reader). Each input runs in a child: one that crashes,
 * hangs or breaks a reader's promise is a FAIL naming the file; a seed
 * (a real object, image or message) that the reader rejects is a FAIL with
 * the reader's message. The regression inputs are the ones that once
 * crashed a reader. The agent's inputs are replayed by test_fuzz_agent.
 *
 * Output: "PASS fuzz: <dir>: ..." per directory or "FAIL fuzz: <file>:
 * <why>" per input, then a summary. Exits 1 when anything failed. */
#define _GNU_SOURCE
#define RW_FUZZ_REPLAY
#include "../../fuzz/replay.h"
#include "../../fuzz/object.c"
#include "../../fuzz/image.c"
#include "../../fuzz/proto.c"
#if __has_include("elf/archive.h")
#include "../../fuzz/archive.c"
#define HAVE_ARCHIVE 1
#endif

static const struct replay_target targets[] = {
	{"object", fuzz_object, rw_error},
	{"image", fuzz_image, rw_error},
	{"proto", fuzz_proto, NULL},
#ifdef HAVE_ARCHIVE
	{"archive", fuzz_archive, rw_error},
#endif
};

int main(void)
{
	return replay_main(targets, sizeof targets / sizeof *targets);
}
