/* Unit test of the x86-64 length decoder (src/arch/x86_64_insn.c): decode
 * the .text of real objects, as gcc and clang emit them (with SSE, AVX2
 * and AVX-512 code), and compare every instruction boundary with objdump's
 * disassembly. And the aarch64 scan (src/arch/aarch64.c): calls the
 * assembler resolved get relocations. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elf/elffile.h"
#include "link/linker.h"
#include "util.h"

static const char source[] =
	"#include <string.h>\n"
	"#include <math.h>\n"
	"static int counter; long big = 1;\n"
	"int f(int *a, int n, double *d) { long s = 0;\n"
	"  for (int i = 0; i < n; i++) s += a[i] * 3 + (a[i] >> 2);\n"
	"  for (int i = 0; i < n; i++) d[i] = sqrt(d[i]) * 1.5 + d[i] / 3;\n"
	"  counter += 1000; *(short *)a = 7; big = 0x123456789abLL;\n"
	"  switch (n) { case 1: return 5; case 2: return 9; case 3: return s; case 7: return 2; }\n"
	"  return (int)s + counter; }\n"
	"int (*g(void))(int *, int, double *) { return f; }\n"
	"void h(char *d, const char *s) { memcpy(d, s, strlen(s)); __builtin_prefetch(s); }\n";

static int failed;

static void result(int ok, const char *name, const char *why)
{
	printf(ok ? "PASS insn: %s\n" : "FAIL insn: %s: %s\n", name, why);
	failed |= !ok;
}

/* Instruction start offsets of section .text, from objdump. */
static size_t objdump_starts(const char *obj, uint64_t *out, size_t cap)
{
	char cmd[512], line[512];
	size_t n = 0;
	snprintf(cmd, sizeof cmd, "objdump -d --section=.text %s", obj);
	FILE *f = popen(cmd, "r");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long off;
		char colon;
		/* "  1f:\t48 89 ..." lines; skip continuation lines of long insns */
		if (sscanf(line, " %lx%c", &off, &colon) == 2 && colon == ':' && strchr(line, '\t')) {
			char *tab2 = strchr(strchr(line, '\t') + 1, '\t');
			if (tab2 && n < cap)
				out[n++] = off;
		}
	}
	if (f)
		pclose(f);
	return n;
}

/* dir/base.c compiled by cc with flags into dir/base.o, opened into o:
 * 1; 0 when it cannot be (said: SKIP when the compiler cannot, FAIL when
 * the object does not read). */
static int compile_open(const char *dir, const char *base, const char *cc, const char *flags,
			const char *name, struct elf_object *o)
{
	char cmd[1024], obj[256];
	snprintf(obj, sizeof obj, "%s/%s.o", dir, base);
	snprintf(cmd, sizeof cmd, "%s %s -c %s/%s.c -o %s 2>/dev/null", cc, flags, dir, base, obj);
	if (system(cmd) != 0) {
		printf("SKIP insn: %s: cannot compile\n", name);
		return 0;
	}
	if (elf_object_open(o, obj) < 0) {
		result(0, name, rw_error());
		return 0;
	}
	return 1;
}

static void check_object(const char *dir, const char *cc, const char *flags)
{
	char obj[256], name[256];
	snprintf(obj, sizeof obj, "%s/t.o", dir);
	snprintf(name, sizeof name, "boundaries match objdump [%s %s]", cc, flags);
	struct elf_object o;
	if (!compile_open(dir, "t", cc, flags, name, &o))
		return;
	const struct elf_section *text = NULL;
	for (size_t i = 1; i < o.nsections; i++)
		if (!strcmp(o.sections[i].name, ".text"))
			text = &o.sections[i];
	static uint64_t want[65536];
	size_t nwant = objdump_starts(obj, want, 65536), k = 0;
	char why[256] = "";
	for (uint64_t at = 0; text && at < text->size && !why[0]; k++) {
		struct insn in;
		if (k >= nwant || want[k] != at)
			snprintf(why, sizeof why, "instruction %zu starts at %#lx, objdump says %#lx", k,
				 (unsigned long)at, k < nwant ? (unsigned long)want[k] : 0ul);
		else if (x86_decode(text->data + at, text->size - at, &in) < 0)
			snprintf(why, sizeof why, "cannot decode at %#lx (%02x %02x %02x)", (unsigned long)at,
				 text->data[at], text->data[at + 1], text->data[at + 2]);
		else
			at += in.len;
	}
	if (!why[0] && k != nwant)
		snprintf(why, sizeof why, "decoded %zu instructions, objdump %zu", k, nwant);
	result(text && nwant > 20 && !why[0], name, why[0] ? why : "no .text");
	elf_object_close(&o);
}

/* aarch64: a bl and a b to a static function of the same section have no
 * relocation (the assembler resolved them); the scan gives them one, to
 * the function, so that they bind to its running version. */
static void check_a64_resolved(const char *dir, const char *cc, const char *flags)
{
	static const char src[] =
		"static int __attribute__((noinline)) f(int x) { return x * 3; }\n"
		"int g(int x) { return f(x) + 1; }\n"
		"int h(int x) { return f(x + 2); }\n";
	char path[256], name[128];
	snprintf(path, sizeof path, "%s/a64.c", dir);
	snprintf(name, sizeof name, "aarch64: resolved calls get relocations [%s %s]", cc, flags);
	FILE *f = fopen(path, "w");
	fputs(src, f);
	fclose(f);
	struct elf_object o;
	if (!compile_open(dir, "a64", cc, flags, name, &o))
		return;
	arch_select(o.machine);
	uint16_t text = 0;
	for (size_t i = 1; i < o.nsections; i++)
		if (!strcmp(o.sections[i].name, ".text"))
			text = (uint16_t)i;
	size_t before = o.sections[text].nrelas, calls = 0, jumps = 0;
	free(arch_scan_code(&o, text));
	for (size_t i = before; i < o.sections[text].nrelas; i++) {
		const struct elf_rela *r = &o.sections[text].relas[i];
		if (strcmp(o.symbols[r->sym].name, "f") || r->addend != 0)
			continue;
		calls += r->type == R_AARCH64_CALL26;
		jumps += r->type == R_AARCH64_JUMP26;
	}
	/* -O2: g calls f, h tail-calls it; -O0: both call */
	char why[128];
	snprintf(why, sizeof why, "%zu calls and %zu jumps to f given relocations, %zu before", calls,
		 jumps, before);
	result(text && calls + jumps == 2 && calls >= 1, name, why);
	arch_select(EM_X86_64);
	elf_object_close(&o);
}

int main(void)
{
	char dir[] = "/tmp/rewire-insn.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char path[256];
	snprintf(path, sizeof path, "%s/t.c", dir);
	FILE *f = fopen(path, "w");
	fputs(source, f);
	fclose(f);
	const char *ccs[] = {"gcc", "clang"};
	const char *flags[] = {"-O0", "-O2", "-O2 -fPIE", "-O3 -mavx2 -mfma", "-O3 -march=skylake-avx512",
			       "-Os -fno-pie", "-O2 -fcf-protection"};
	for (int c = 0; c < 2; c++)
		for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
			check_object(dir, ccs[c], flags[i]);
	check_a64_resolved(dir, "aarch64-linux-gnu-gcc", "-O0");
	check_a64_resolved(dir, "aarch64-linux-gnu-gcc", "-O2");
	check_a64_resolved(dir, "clang --target=aarch64-linux-gnu", "-O2");
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
	return 0;
}
