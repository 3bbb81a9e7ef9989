/* Unit tests of the differ (src/diff/diff.c): pairs of objects compiled
 * from small edits, and which functions it finds changed. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elf/elffile.h"
#include "diff/diff.h"
#include "util.h"

static char dir[] = "/tmp/rewire-diff.XXXXXX";

static const char base_src[] =
	"#include <stdio.h>\n"
	"static int counter;\n"
	"static void draw(int x) { printf(\"x=%d %c\\n\", x, 'o'); }\n"
	"int helper(int x) { return x * 3; }\n"
	"int other(int x) { return x + 1; }\n"
	"void tick(int x) { counter++; draw(helper(x)); }\n"
	"const char *name(void) { return \"alpha\"; }\n";

static void compile(const char *cc, const char *opt, const char *src, const char *name)
{
	char path[256], cmd[512];
	snprintf(path, sizeof path, "%s/%s.c", dir, name);
	FILE *f = fopen(path, "w");
	fputs(src, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "cd %s && %s %s -g -c %s.c -o %s.o", dir, cc, opt, name, name);
	if (system(cmd) != 0)
		printf("FAIL diff: cannot compile %s\n", name);
}

static char *edit_of(const char *src, const char *from, const char *to)
{
	const char *at = strstr(src, from);
	size_t cap = strlen(src) + strlen(to) + 1;
	char *out = rw_malloc(cap);
	snprintf(out, cap, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
	return out;
}

static char *edit(const char *from, const char *to)
{
	return edit_of(base_src, from, to);
}

/* Compile base and the edit in separate directories under the same file
 * name, and compare the set of changed functions with want (comma list). */
static void check_srcs(const char *cc, const char *opt, const char *title, const char *src_a,
		       const char *src_b, const char *want)
{
	char name[512], got[512] = "", path[256];
	compile(cc, opt, src_a, "a");
	compile(cc, opt, src_b, "b");
	struct elf_object a, b;
	snprintf(path, sizeof path, "%s/a.o", dir);
	elf_object_open(&a, path);
	snprintf(path, sizeof path, "%s/b.o", dir);
	elf_object_open(&b, path);
	struct diff_obj da, db;
	diff_obj_init(&da, &a);
	diff_obj_init(&db, &b);
	for (size_t i = 1; i < b.nsymbols; i++) {
		const struct elf_symbol *f = &b.symbols[i];
		if (f->type == STT_FUNC && f->shndx != SHN_UNDEF && diff_function_changed(&da, &db, f)) {
			if (got[0])
				strcat(got, ",");
			strncat(got, f->name, sizeof got - strlen(got) - 2);
		}
	}
	snprintf(name, sizeof name, "%s [%s %s]", title, cc, opt);
	if (!strcmp(got, want))
		printf("PASS diff: %s\n", name);
	else
		printf("FAIL diff: %s: changed {%s}, expected {%s}\n", name, got, want);
	diff_obj_free(&da);
	diff_obj_free(&db);
	elf_object_close(&a);
	elf_object_close(&b);
}

static void check(const char *cc, const char *opt, const char *title, const char *from,
		  const char *to, const char *want)
{
	char *src = edit(from, to);
	check_srcs(cc, opt, title, base_src, src, want);
	free(src);
}

/* LLVM's ThinLTO names a promoted local helper.llvm.<N>, N new at each
 * build: the same function, and calls to it are the same calls. */
static void check_llvm_suffix(const char *cc, const char *opt)
{
	const char *decl = "int helper(int x) { return x * 3; }";
	char *a = edit(decl, "int helper(int x) __asm__(\"helper.llvm.1111\");\n"
			     "int helper(int x) { return x * 3; }");
	char *b0 = edit_of(a, "helper.llvm.1111", "helper.llvm.2222");
	char *b = edit_of(b0, "x + 1", "x + 2");
	check_srcs(cc, opt, "a .llvm.N suffix that changed", a, b, "other");
	free(a);
	free(b0);
	free(b);
}

/* Read-only data is compared by contents, through the pointers in it:
 * a function whose bytes are the same but whose constant changed has
 * changed, and only it. */
static const char const_src[] =
	"static const char *const names[] = {\"alpha\", \"beta\"};\n"
	"const char *name(int i) { return names[i & 1]; }\n"
	"double scaled(int t) { return t * 1.5; }\n"
	"int price(int k) { switch (k & 7) { case 0: return 10; case 1: return 20;\n"
	"  case 2: return 35; case 3: return 50; case 4: return 70; case 5: return 90;\n"
	"  case 6: return 110; default: return 130; } }\n"
	"const char *other(void) { return \"gamma\"; }\n";

static void check_const(const char *cc, const char *opt, const char *title, const char *from,
			const char *to, const char *want)
{
	char *src = edit_of(const_src, from, to);
	check_srcs(cc, opt, title, const_src, src, want);
	free(src);
}

/* A chain of constants longer than the diff follows, one section each:
 * the leaf's change is still the function's. */
static void check_const_chain(const char *cc, const char *opt)
{
	size_t cap = 1 << 16, len = 0;
	char *a = rw_malloc(cap);
	len += (size_t)snprintf(a + len, cap - len, "static const char *const c0 = \"leaf\";\n");
	for (int i = 1; i <= 100; i++)
		len += (size_t)snprintf(a + len, cap - len,
					"static const void *const c%d = &c%d;\n", i, i - 1);
	snprintf(a + len, cap - len, "const void *top(void) { return &c100; }\n");
	char *b = edit_of(a, "\"leaf\"", "\"LEAF\"");
	char o[64];
	snprintf(o, sizeof o, "%s -fdata-sections", opt);
	check_srcs(cc, o, "a constant at the end of a chain of 100", a, b, "top");
	free(a);
	free(b);
}

/* diff_changed_set: gcc's -fipa-ra makes the callers of a changed function
 * in the same unit change with it; not with -fno-ipa-ra, nor for clang. */
static const char ipa_src[] =
	"__attribute__((noinline)) int step(int x) { return x * 2; }\n"
	"int loop(int n) { int s = 0; for (int i = 0; i < n; i++) s += step(i) ^ n; return s; }\n";

static void check_ipa_ra(const char *cc, const char *opt, const char *want)
{
	char name[256], got[256] = "", path[256];
	char *src = edit_of(ipa_src, "x * 2", "x * 2 + 1");
	compile(cc, opt, ipa_src, "a");
	compile(cc, opt, src, "b");
	free(src);
	struct elf_object a, b;
	snprintf(path, sizeof path, "%s/a.o", dir);
	elf_object_open(&a, path);
	snprintf(path, sizeof path, "%s/b.o", dir);
	elf_object_open(&b, path);
	struct diff_obj da, db;
	diff_obj_init(&da, &a);
	diff_obj_init(&db, &b);
	uint8_t *changed = rw_calloc(b.nsymbols, 1);
	diff_changed_set(&da, &db, changed);
	for (size_t i = 1; i < b.nsymbols; i++)
		if (b.symbols[i].type == STT_FUNC && changed[i])
			snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s%s", got[0] ? "," : "",
				 b.symbols[i].name, changed[i] == DIFF_IPA_RA ? "(ipa-ra)" : "");
	snprintf(name, sizeof name, "callers of a changed function [%s %s]", cc, opt);
	if (!strcmp(got, want))
		printf("PASS diff: %s\n", name);
	else
		printf("FAIL diff: %s: changed {%s}, expected {%s}\n", name, got, want);
	free(changed);
	diff_obj_free(&da);
	diff_obj_free(&db);
	elf_object_close(&a);
	elf_object_close(&b);
}

/* diff_producer_ipa_ra on gcc's DW_AT_producer strings. */
static void check_producers(void)
{
	static const struct { const char *p; int on; } t[] = {
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O0", 0},
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O1", 0},
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O", 0},
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -Og", 0},
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g", 0},
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O2", 1},
		{"GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -Os", 1},
		{"GNU C++17 12.2.0 -g -O3 -fasynchronous-unwind-tables", 1},
		{"GNU C17 12.2.0 -g -O2 -fno-ipa-ra", 0},
		{"GNU C17 12.2.0 -g -fno-ipa-ra -O2", 0},
		{"GNU C17 12.2.0 -g -O2 -flive-patching=inline-clone", 0},
		{"GNU C17 12.2.0 -g -O0 -fipa-ra", 1},
		{"GNU C17 12.2.0 -g -O2 -O0", 0},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		int flag;
		if (diff_producer_ipa_ra(t[i].p, t[i].p + strlen(t[i].p), &flag) != t[i].on) {
			printf("FAIL diff: -fipa-ra of producer '%s': expected %d\n", t[i].p, t[i].on);
			bad = 1;
		}
	}
	if (!bad)
		printf("PASS diff: -fipa-ra told from %zu producer strings\n", sizeof t / sizeof *t);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	const char *ccs[] = {"gcc", "clang"}, *opts[] = {"-O0", "-O2"};
	for (int c = 0; c < 2; c++)
		for (int o = 0; o < 2; o++) {
			const char *cc = ccs[c], *opt = opts[o];
			int o2 = o == 1;
			check(cc, opt, "no change", "x + 1", "x + 1", "");
			check(cc, opt, "a comment", "int other", "/* note */ int other", "");
			check(cc, opt, "one body", "x + 1", "x + 2", "other");
			check(cc, opt, "a string literal", "\"alpha\"", "\"beta\"", "name");
			/* draw is static: inlined into tick at -O2, its own function at -O0. */
			check(cc, opt, "a character constant in an inlined static", "'o'", "'@'",
			      o2 ? "tick" : "draw");
			/* Growing helper moves tick in .text: tick is the same at -O0;
			 * at -O2 helper is inlined into tick, which changes with it. */
			check(cc, opt, "a function before another grows", "x * 3", "x * 3 + x / 7",
			      o2 ? "helper,tick" : "helper");
			check_llvm_suffix(cc, opt);
			check_const(cc, opt, "a string in a table of pointers", "\"alpha\"",
				    "\"ALPHA\"", "name");
			check_const(cc, opt, "a floating-point literal", "1.5", "2.5", "scaled");
			check_const(cc, opt, "a switch's value", "return 50", "return 500", "price");
			check_const(cc, opt, "another string", "\"gamma\"", "\"delta\"", "other");
			check_const_chain(cc, opt);
		}
	check_producers();
	/* -O0 leaves -fipa-ra off, but an optimize attribute can turn it on:
	 * only -fno-ipa-ra rules it out. */
	check_ipa_ra("gcc", "-O0", "step,loop(ipa-ra)");
	check_ipa_ra("gcc", "-O2", "step,loop(ipa-ra)");
	check_ipa_ra("gcc", "-O2 -fno-ipa-ra", "step");
	check_ipa_ra("clang", "-O2", "step");
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
	return 0;
}
