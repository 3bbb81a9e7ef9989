/* Fuzz target: the relocatable object reader (src/elf/object.c), which
 * reads the compiler's output for every patch. The bytes are opened from
 * memory, so that ASan sees any read past their end (a file's mmap would
 * hide it up to the page's end). An accepted object is checked against the
 * reader's promises and queried the way the linker queries it: the symbol
 * covering each symbol's value and each relocation's offset (elf_check.h,
 * shared with the archive target). */
#include "fuzz.h"
#include "elf_check.h"
#include "util.h"
#include <string.h>

static int fuzz_object(const uint8_t *data, size_t size)
{
	struct elf_object o;
	rw_fail("%s", "");
	if (elf_object_open_mem(&o, "fuzz.o", data, size)) {
		/* Rejected: with a message that names the file, and nothing
		 * left open. */
		FUZZ_CHECK(!strncmp(rw_error(), "fuzz.o: ", 8));
		FUZZ_CHECK(!o.map && !o.sections && !o.symbols);
		return 0;
	}
	obj_check(&o);
	obj_queries(&o);
	elf_object_close(&o);
	return 1;
}

RW_FUZZ_ENTRY(fuzz_object)
