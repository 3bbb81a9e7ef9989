/* What the fuzz targets share.
 *
 * A target is a function `static int fuzz_NAME(const uint8_t *data, size_t
 * size)` that hands the bytes to one of rewire's readers of untrusted input
 * (object files, images, the channel) and checks what the reader promises
 * about what it accepted. It returns 1 when the reader accepted the bytes,
 * 0 when it rejected them, and must never crash, leak or hang.
 *
 * RW_FUZZ_ENTRY(fn) makes fn libFuzzer's entry point. Built with
 * RW_FUZZ_REPLAY (the unit tests), the entry point is left out and a plain
 * main replays the committed inputs through the same functions. */
#ifndef RW_FUZZ_H
#define RW_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A broken promise is a crash, so that libFuzzer keeps the input; the
 * message says which promise. */
#define FUZZ_CHECK(cond)							\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: check failed: %s\n",		\
				__FILE__, __LINE__, #cond);			\
			__builtin_trap();					\
		}								\
	} while (0)

#ifdef RW_FUZZ_REPLAY
#define RW_FUZZ_ENTRY(fn)
#else
#define RW_FUZZ_ENTRY(fn)							\
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);		\
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)		\
	{									\
		fn(data, size);							\
		return 0;							\
	}
#endif

#endif
