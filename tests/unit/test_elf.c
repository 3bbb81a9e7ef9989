/* Unit test of src/elf: compiles small programs with the system's compilers
 * (gcc as cc, clang when present) and checks what rewire reads from the
 * objects and images against what the program itself and readelf say; then
 * feeds it truncated, corrupt and foreign files, which must be rejected with
 * a message and no crash (run under valgrind to see stray reads).
 *
 * Output: one line per check, "PASS elf: <name>" or "FAIL elf: <name>:
 * <why>". Exits 0 unless the harness itself cannot run. */
#include "elf/elffile.h"
#include "util.h"
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp[256];

static void pass(const char *name) { printf("PASS elf: %s\n", name); }

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL elf: %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

#define CHECK(name, cond, ...) \
	do { if (cond) pass(name); else fail(name, __VA_ARGS__); } while (0)

static void die(const char *what)
{
	fprintf(stderr, "test_elf: %s\n", what);
	exit(2);
}

/* A path in the temp dir; a few rotating buffers so calls can nest. */
static const char *at(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", tmp, name);
	return b;
}

static void put_file(const char *name, const void *p, size_t n)
{
	FILE *f = fopen(at(name), "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		die("cannot write a temp file");
}

static void put_text(const char *name, const char *text)
{
	put_file(name, text, strlen(text));
}

static uint8_t *get_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	uint8_t *p = rw_malloc(cap);
	size_t r;
	while ((r = fread(p + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap)
			p = rw_realloc(p, cap *= 2);
	}
	fclose(f);
	*n = len;
	return p;
}

/* Run a shell command in the temp dir; 0 when it exited 0. */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	int n = snprintf(cmd, sizeof cmd, "cd '%s' && ( ", tmp);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	strncat(cmd, " ) >>log 2>&1", sizeof cmd - strlen(cmd) - 1);
	return system(cmd) == 0 ? 0 : -1;
}

static const struct elf_section *obj_section(const struct elf_object *o, const char *name)
{
	for (size_t i = 0; i < o->nsections; i++)
		if (!strcmp(o->sections[i].name, name))
			return &o->sections[i];
	return NULL;
}

static const struct elf_section *img_section(const struct elf_image *m, const char *name)
{
	for (size_t i = 0; i < m->nsections; i++)
		if (!strcmp(m->sections[i].name, name))
			return &m->sections[i];
	return NULL;
}

static const struct elf_symbol *obj_symbol(const struct elf_object *o, const char *name)
{
	for (size_t i = 0; i < o->nsymbols; i++)
		if (!strcmp(o->symbols[i].name, name))
			return &o->symbols[i];
	return NULL;
}

static char label[256];

static const char *L(const char *cc, const char *what)
{
	snprintf(label, sizeof label, "%s %s", cc, what);
	return label;
}

/* --- objects ---------------------------------------------------------- */

static const char obj_src[] =
	"extern int ext_fn(int);\n"
	"static int count;\n"
	"int first(void) { return 1; }\n"
	"static int helper(int x) { count += x; return ext_fn(count); }\n"
	"int (*fp)(int) = helper;\n"
	"int call(int x) { return helper(x) + first(); }\n";

/* The R_X86_64_64 that stores helper's address into fp: both gcc and
 * clang write it against the .text section symbol plus an offset. */
static const struct elf_rela *fp_reloc(const struct elf_object *o)
{
	for (size_t i = 0; i < o->nsections; i++) {
		const struct elf_section *s = &o->sections[i];
		if (strncmp(s->name, ".data", 5))
			continue;
		for (size_t j = 0; j < s->nrelas; j++)
			if (s->relas[j].type == R_X86_64_64)
				return &s->relas[j];
	}
	return NULL;
}

static void test_object(const char *cc)
{
	if (sh("%s -O0 -c src/obj.c -o obj_%s.o", cc, cc)) {
		fail(L(cc, "object: compile"), "%s -c failed, see %s", cc, at("log"));
		return;
	}
	char path[512];
	snprintf(path, sizeof path, "%s/obj_%s.o", tmp, cc);
	struct elf_object o;
	if (elf_object_open(&o, path)) {
		fail(L(cc, "object: open"), "%s", rw_error());
		return;
	}
	pass(L(cc, "object: open"));
	CHECK(L(cc, "object: file is the source basename"), !strcmp(o.file, "obj.c"),
	      "file is \"%s\"", o.file);
	const struct elf_section *text = obj_section(&o, ".text");
	const struct elf_section *bss = obj_section(&o, ".bss");
	CHECK(L(cc, "object: .text"),
	      text && text->type == SHT_PROGBITS && (text->flags & SHF_EXECINSTR) &&
	      text->data && text->size > 0 && text->align >= 1,
	      "missing or wrong");
	CHECK(L(cc, "object: .bss is nobits without data"),
	      bss && bss->type == SHT_NOBITS && !bss->data && bss->size >= 4,
	      "missing or wrong");
	CHECK(L(cc, "object: null section and symbol"),
	      o.sections[0].type == SHT_NULL && o.symbols[0].name[0] == 0 && o.nsymbols > 5,
	      "not there");
	CHECK(L(cc, "object: .text has relocations"),
	      text && text->nrelas > 0 && text->relas[0].offset < text->size,
	      "none attached to .text");
	const struct elf_symbol *count = obj_symbol(&o, "count");
	const struct elf_symbol *helper = obj_symbol(&o, "helper");
	const struct elf_symbol *call = obj_symbol(&o, "call");
	const struct elf_symbol *ext = obj_symbol(&o, "ext_fn");
	CHECK(L(cc, "object: static has its file"),
	      count && count->bind == STB_LOCAL && count->file && !strcmp(count->file, "obj.c") &&
	      count->type == STT_OBJECT && &o.sections[count->shndx] == bss,
	      "count: %s", count ? (count->file ? count->file : "(null file)") : "missing");
	CHECK(L(cc, "object: global has no file"),
	      call && call->bind == STB_GLOBAL && !call->file && call->type == STT_FUNC &&
	      &o.sections[call->shndx] == text,
	      "call wrong");
	CHECK(L(cc, "object: undefined extern"),
	      ext && ext->shndx == SHN_UNDEF && ext->bind == STB_GLOBAL, "ext_fn wrong");
	const struct elf_rela *r = fp_reloc(&o);
	const struct elf_symbol *rs = r ? &o.symbols[r->sym] : NULL;
	CHECK(L(cc, "object: fp relocation is against .text's section symbol"),
	      rs && rs->type == STT_SECTION && &o.sections[rs->shndx] == text && r->addend > 0,
	      "not found or not a section symbol");
	if (rs && helper) {
		const struct elf_symbol *back = elf_object_symbol_at(&o, rs->shndx, (uint64_t)r->addend);
		CHECK(L(cc, "object: section+offset maps back to the static function"),
		      back == helper, "got %s", back ? back->name : "NULL");
		back = elf_object_symbol_at(&o, rs->shndx, (uint64_t)r->addend + 3);
		CHECK(L(cc, "object: offset inside a function maps to it"),
		      back == helper, "got %s", back ? back->name : "NULL");
	}
	if (count) {
		const struct elf_symbol *back = elf_object_symbol_at(&o, count->shndx, 0);
		CHECK(L(cc, "object: .bss+0 maps to the static variable"),
		      back == count, "got %s", back ? back->name : "NULL");
		back = elf_object_symbol_at(&o, count->shndx, 4096);
		CHECK(L(cc, "object: offset past every symbol maps to nothing"),
		      !back, "got %s", back ? back->name : "");
	}
	elf_object_close(&o);
	CHECK(L(cc, "object: close clears"), !o.map && !o.sections && !o.symbols, "fields left");
}

/* Groups and symbol preference, from assembly so the layout is exact. */
static const char asm_src[] =
	"\t.text\n"
	"\t.globl f\n\t.type f,@function\n"
	"f:\tnop\n\tnop\nmid:\tnop\n\tnop\n\t.size f, 4\n"
	"label:\n"
	"\t.type g,@function\n"
	"g:\tret\n\t.size g, 1\n"
	"\t.section .text.inl,\"axG\",@progbits,inl,comdat\n"
	"\t.weak inl\n\t.type inl,@function\n"
	"inl:\tret\n\t.size inl, 1\n"
	"\t.section .data.inl,\"awG\",@progbits,inl,comdat\n"
	"\t.quad mid\n"
	"\t.section .note.GNU-stack,\"\",@progbits\n";

static void test_asm_object(void)
{
	put_text("src/asm.s", asm_src);
	if (sh("cc -c src/asm.s -o asm.o")) {
		fail("asm object: assemble", "cc -c asm.s failed");
		return;
	}
	struct elf_object o;
	if (elf_object_open(&o, at("asm.o"))) {
		fail("asm object: open", "%s", rw_error());
		return;
	}
	const struct elf_section *ti = obj_section(&o, ".text.inl");
	const struct elf_section *di = obj_section(&o, ".data.inl");
	const struct elf_section *ri = obj_section(&o, ".rela.data.inl");
	const struct elf_section *text = obj_section(&o, ".text");
	int ok = ti && di && ri && ti->group && ti->group == di->group && ri->group == ti->group &&
		 o.sections[ti->group].type == SHT_GROUP && text && !text->group;
	CHECK("asm object: COMDAT group members", ok, "group fields wrong");
	CHECK("asm object: no STT_FILE gives file \"\"",
	      !strcmp(o.file, "") && obj_symbol(&o, "mid") && !strcmp(obj_symbol(&o, "mid")->file, ""),
	      "file \"%s\"", o.file);
	CHECK("asm object: relocation in group section attached",
	      di && di->nrelas == 1 && di->relas[0].type == R_X86_64_64, "nrelas wrong");
	uint16_t t = text ? (uint16_t)(text - o.sections) : 0;
	const struct elf_symbol *s = elf_object_symbol_at(&o, t, 0);
	CHECK("asm object: function at 0", s && !strcmp(s->name, "f"), "got %s", s ? s->name : "NULL");
	s = elf_object_symbol_at(&o, t, 2);
	CHECK("asm object: FUNC covering beats NOTYPE label at offset",
	      s && !strcmp(s->name, "f"), "got %s", s ? s->name : "NULL");
	s = elf_object_symbol_at(&o, t, 4);
	CHECK("asm object: FUNC at offset beats NOTYPE label",
	      s && !strcmp(s->name, "g"), "got %s", s ? s->name : "NULL");
	s = elf_object_symbol_at(&o, t, 5);
	CHECK("asm object: past the end is nothing", !s, "got %s", s ? s->name : "");
	s = elf_object_symbol_at(&o, (uint16_t)(ti - o.sections), 0);
	CHECK("asm object: group function", s && !strcmp(s->name, "inl") && s->bind == STB_WEAK,
	      "got %s", s ? s->name : "NULL");
	elf_object_close(&o);
}

/* Many symbols: elf_object_symbol_at must stay fast. */
static void test_many_object_symbols(void)
{
	FILE *f = fopen(at("many.s"), "w");
	if (!f)
		die("cannot write many.s");
	fprintf(f, "\t.text\n");
	for (int i = 0; i < 20000; i++)
		fprintf(f, "s%d:\t.type s%d,@function\n\tret\n\t.size s%d,1\n", i, i, i);
	fclose(f);
	if (sh("cc -c many.s -o many.o")) {
		fail("many symbols: assemble", "failed");
		return;
	}
	struct elf_object o;
	if (elf_object_open(&o, at("many.o"))) {
		fail("many symbols: open", "%s", rw_error());
		return;
	}
	const struct elf_section *text = obj_section(&o, ".text");
	uint16_t t = (uint16_t)(text - o.sections);
	int bad = 0;
	char want[32];
	for (int i = 0; i < 20000; i++) {
		const struct elf_symbol *s = elf_object_symbol_at(&o, t, (uint64_t)i);
		snprintf(want, sizeof want, "s%d", i);
		bad += !s || strcmp(s->name, want);
	}
	CHECK("many symbols: every offset maps to its function", !bad, "%d wrong", bad);
	elf_object_close(&o);
}

/* --- images ----------------------------------------------------------- */

static const char a_src[] =
	"#include <stdio.h>\n"
	"static int count = 1;\n"
	"__attribute__((visibility(\"hidden\"))) int hid = 5;\n"
	"int glob = 7;\n"
	"void *a_addr(void) { return &count; }\n"
	"int f1(int x) { return x + count; }\n"
	"int f2(int x) { return x * count; }\n"
	"void *b_addr(void);\n"
	"int main(void) {\n"
	"	printf(\"%p %p\\n\", a_addr(), b_addr());\n"
	"	fflush(stdout);\n"
	"	return 0;\n"
	"}\n";

static const char b_src[] =
	"static int count = 2;\n"
	"__thread int tls1 = 3;\n"
	"__thread long tls2;\n"
	"long b_tls(void) { return tls1 + tls2; }\n"
	"void *b_addr(void) { return &count; }\n";

/* Bytes of the build-id as `readelf -n` prints it. */
static size_t readelf_build_id(const char *exe, uint8_t *out)
{
	if (sh("readelf -n %s | grep 'Build ID' | sed 's/.*Build ID: *//' > bid.txt", exe))
		return 0;
	size_t n;
	uint8_t *p = get_file(at("bid.txt"), &n);
	size_t len = 0;
	for (size_t i = 0; p && i + 1 < n && len < 64; i += 2) {
		unsigned v;
		char hex[3] = { (char)p[i], (char)p[i + 1], 0 };
		if (sscanf(hex, "%2x", &v) != 1)
			break;
		out[len++] = (uint8_t)v;
	}
	free(p);
	return len;
}

static void test_exec(const char *cc, const char *ld)
{
	char exe[64], name[128];
	snprintf(exe, sizeof exe, "prog_%s_%s", cc, ld[0] ? ld : "default");
	snprintf(name, sizeof name, "%s%s%s", cc, ld[0] ? " -fuse-ld=" : "", ld);
	char ldflag[64] = "";
	if (ld[0])
		snprintf(ldflag, sizeof ldflag, "-fuse-ld=%s", ld);
	if (sh("%s -O0 -c src/a.c -o a_%s.o && %s -O0 -c src/b.c -o b_%s.o && "
	       "%s %s -no-pie -Wl,--build-id -o %s a_%s.o b_%s.o && ./%s > %s.out",
	       cc, cc, cc, cc, cc, ldflag, exe, cc, cc, exe, exe)) {
		fail(L(name, "exec: build"), "see %s", at("log"));
		return;
	}
	struct elf_image m;
	if (elf_image_open(&m, at(exe))) {
		fail(L(name, "exec: open"), "%s", rw_error());
		return;
	}
	pass(L(name, "exec: open"));
	CHECK(L(name, "exec: ET_EXEC"), m.e_type == ET_EXEC, "e_type %u", m.e_type);
	size_t n;
	char outname[80];
	snprintf(outname, sizeof outname, "%s.out", exe);
	uint8_t *out = get_file(at(outname), &n);
	unsigned long long aaddr = 0, baddr = 0;
	if (out) {
		out = rw_realloc(out, n + 1);
		out[n] = 0;
		sscanf((char *)out, "%llx %llx", &aaddr, &baddr);
		free(out);
	}
	const struct elf_symbol *ca = elf_image_find(&m, "count", "a.c");
	const struct elf_symbol *cb = elf_image_find(&m, "count", "/some/dir/b.c");
	CHECK(L(name, "exec: static of a.c"), ca && ca->value == aaddr && !strcmp(ca->file, "a.c"),
	      "%s at %llx, program says %llx", ca ? "found" : "not found",
	      ca ? (unsigned long long)ca->value : 0, aaddr);
	CHECK(L(name, "exec: static of b.c by basename"), cb && cb->value == baddr &&
	      !strcmp(cb->file, "b.c"),
	      "%s at %llx, program says %llx", cb ? "found" : "not found",
	      cb ? (unsigned long long)cb->value : 0, baddr);
	const struct elf_symbol *s = elf_image_find(&m, "count", NULL);
	CHECK(L(name, "exec: ambiguous static without a file is not found"), !s,
	      "found one of %s", s ? s->file : "");
	s = elf_image_find(&m, "count", "c.c");
	CHECK(L(name, "exec: static of another file is not found"), !s, "found");
	s = elf_image_find(&m, "glob", NULL);
	CHECK(L(name, "exec: global"), s && s->bind == STB_GLOBAL && s->type == STT_OBJECT &&
	      !s->file && s->shndx != SHN_UNDEF, "wrong");
	s = elf_image_find(&m, "glob", "a.c");
	CHECK(L(name, "exec: global is not a static"), !s, "found");
	s = elf_image_find(&m, "hid", NULL);
	CHECK(L(name, "exec: hidden symbol found"), s && s->visibility == STV_HIDDEN &&
	      s->shndx != SHN_UNDEF, "not found");
	/* gcc reaches stdout directly, so a non-PIE link copies it into the
	 * executable (ld.bfd names it "stdout@GLIBC_2.2.5" in .symtab);
	 * clang goes through the GOT and it stays undefined. */
	s = elf_image_find(&m, "stdout", NULL);
	if (!strcmp(cc, "cc"))
		CHECK(L(name, "exec: copy-relocated stdout found by bare name"),
		      s && s->shndx != SHN_UNDEF && s->type == STT_OBJECT && s->size == 8,
		      "not found");
	else
		CHECK(L(name, "exec: stdout reached through the GOT is not defined here"), !s,
		      "found %s", s->name);
	s = elf_image_find(&m, "printf", NULL);
	CHECK(L(name, "exec: undefined printf not found"), !s, "found %s", s ? s->name : "");
	s = elf_image_find(&m, "no_such_symbol", NULL);
	CHECK(L(name, "exec: missing name"), !s, "found");

	/* Build-id against readelf. */
	uint8_t want[64];
	size_t wn = readelf_build_id(exe, want);
	CHECK(L(name, "exec: build-id matches readelf -n"),
	      wn > 0 && m.build_id_len == wn && !memcmp(m.build_id, want, wn),
	      "len %zu, readelf %zu", m.build_id_len, wn);

	/* TLS: an int and a long. */
	CHECK(L(name, "exec: PT_TLS"), m.tls_align == 8 && m.tls_memsz >= 16,
	      "align %llu memsz %llu", (unsigned long long)m.tls_align,
	      (unsigned long long)m.tls_memsz);

	/* Boundaries: f1 and f2 are consecutive. */
	const struct elf_symbol *f1 = elf_image_find(&m, "f1", NULL);
	const struct elf_symbol *f2 = elf_image_find(&m, "f2", NULL);
	if (f1 && f2) {
		uint64_t b = elf_image_next_boundary(&m, f1->value);
		CHECK(L(name, "exec: boundary after f1 is f2"), b == f2->value,
		      "%llx, f2 at %llx", (unsigned long long)b, (unsigned long long)f2->value);
		b = elf_image_next_boundary(&m, f1->value + 1);
		CHECK(L(name, "exec: boundary inside f1 is f2"), b == f2->value,
		      "%llx", (unsigned long long)b);
	} else {
		fail(L(name, "exec: f1 and f2"), "not found");
	}
	const struct elf_section *text = img_section(&m, ".text");
	if (text) {
		uint64_t end = text->addr + text->size;
		uint64_t b = elf_image_next_boundary(&m, end - 1);
		CHECK(L(name, "exec: boundary at the end of .text is its end"), b == end,
		      "%llx, end %llx", (unsigned long long)b, (unsigned long long)end);
	}
	CHECK(L(name, "exec: boundary outside every section is 0"),
	      elf_image_next_boundary(&m, 0x10) == 0 &&
	      elf_image_next_boundary(&m, 0x7fffffff0000ull) == 0, "not 0");
	elf_image_close(&m);
}

static void test_shared(const char *ld)
{
	char so[64], name[64];
	snprintf(so, sizeof so, "lib_%s.so", ld[0] ? ld : "default");
	snprintf(name, sizeof name, "cc%s%s", ld[0] ? " -fuse-ld=" : "", ld);
	char ldflag[64] = "";
	if (ld[0])
		snprintf(ldflag, sizeof ldflag, "-fuse-ld=%s", ld);
	if (sh("cc -fPIC -c src/a.c -o pa.o && cc -fPIC -c src/b.c -o pb.o && "
	       "cc %s -shared -Wl,--build-id=0x1234abcd -o %s pa.o pb.o && "
	       "strip --strip-all -o stripped_%s %s", ldflag, so, so, so)) {
		fail(L(name, "shared: build"), "see %s", at("log"));
		return;
	}
	struct elf_image m;
	if (elf_image_open(&m, at(so))) {
		fail(L(name, "shared: open"), "%s", rw_error());
		return;
	}
	CHECK(L(name, "shared: ET_DYN"), m.e_type == ET_DYN, "e_type %u", m.e_type);
	const struct elf_symbol *s = elf_image_find(&m, "hid", NULL);
	CHECK(L(name, "shared: hidden symbol made local is found"),
	      s && s->bind == STB_LOCAL && s->shndx != SHN_UNDEF, "not found");
	const struct elf_symbol *ca = elf_image_find(&m, "count", "a.c");
	const struct elf_symbol *cb = elf_image_find(&m, "count", "b.c");
	CHECK(L(name, "shared: statics per file"), ca && cb && ca != cb && ca->value != cb->value,
	      "not found");
	CHECK(L(name, "shared: given build-id"),
	      m.build_id_len == 4 && !memcmp(m.build_id, "\x12\x34\xab\xcd", 4),
	      "len %zu", m.build_id_len);
	elf_image_close(&m);

	char stripped[80];
	snprintf(stripped, sizeof stripped, "stripped_%s", so);
	if (elf_image_open(&m, at(stripped))) {
		fail(L(name, "stripped: open"), "%s", rw_error());
		return;
	}
	s = elf_image_find(&m, "glob", NULL);
	CHECK(L(name, "stripped: global from .dynsym"), s && s->bind == STB_GLOBAL, "not found");
	s = elf_image_find(&m, "count", "a.c");
	CHECK(L(name, "stripped: no statics"), !s, "found");
	CHECK(L(name, "stripped: build-id kept"), m.build_id_len == 4, "len %zu", m.build_id_len);
	elf_image_close(&m);
}

/* ThinLTO's ".llvm.<digits>" names: listed once, at the first ask. */
static void test_suffixed(void)
{
	FILE *f = fopen(at("sfx.s"), "w");
	if (!f)
		die("cannot write sfx.s");
	fprintf(f, "\t.text\n");
	const char *names[] = {"f.llvm.1234", "g", "h.llvm.9", "k.llvm.", "m.llvm.x1"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		fprintf(f, "\t.globl \"%s\"\n\"%s\":\tret\n", names[i], names[i]);
	fclose(f);
	if (sh("cc -c sfx.s -o sfx.o && cc -shared -nostdlib -o sfx.so sfx.o")) {
		fail("suffixed: build", "see %s", at("log"));
		return;
	}
	struct elf_image m;
	if (elf_image_open(&m, at("sfx.so"))) {
		fail("suffixed: open", "%s", rw_error());
		return;
	}
	size_t n, again;
	const uint32_t *list = elf_image_suffixed(&m, &n);
	int f1 = 0, h = 0;
	for (size_t i = 0; i < n; i++) {
		f1 += !strcmp(m.symbols[list[i]].name, "f.llvm.1234");
		h += !strcmp(m.symbols[list[i]].name, "h.llvm.9");
	}
	CHECK("suffixed: the .llvm.<digits> names, only those", n == 2 && f1 == 1 && h == 1,
	      "%zu listed", n);
	CHECK("suffixed: kept", elf_image_suffixed(&m, &again) == list && again == n, "listed again");
	elf_image_close(&m);
}

/* A big image: every symbol found, every boundary right (its speed is
 * measured by bench/scale.sh, not asserted here). */
static void test_big_image(void)
{
	enum { N = 300000 };
	FILE *f = fopen(at("big.s"), "w");
	if (!f)
		die("cannot write big.s");
	fprintf(f, "\t.text\n");
	for (int i = 0; i < N; i++)
		fprintf(f, "\t.globl g%d\n\t.type g%d,@function\ng%d:\tret\n\t.size g%d,1\n"
			"\t.type l%d,@function\nl%d:\tret\n", i, i, i, i, i, i);
	fclose(f);
	if (sh("cc -c big.s -o big.o && cc -shared -nostdlib -Wl,--hash-style=gnu -o big.so big.o")) {
		fail("big image: build", "see %s", at("log"));
		return;
	}
	struct elf_image m;
	if (elf_image_open(&m, at("big.so"))) {
		fail("big image: open", "%s", rw_error());
		return;
	}
	int bad = 0;
	char nm[32];
	for (int i = 0; i < N; i += 7) {
		snprintf(nm, sizeof nm, "g%d", i);
		const struct elf_symbol *g = elf_image_find(&m, nm, NULL);
		snprintf(nm, sizeof nm, "l%d", i);
		const struct elf_symbol *l = elf_image_find(&m, nm, NULL);
		bad += !g || !l || elf_image_next_boundary(&m, g->value) != l->value;
	}
	CHECK("big image: lookups and boundaries right", !bad, "%d wrong", bad);
	elf_image_close(&m);
}

/* --- bad files -------------------------------------------------------- */

/* Open as an object; the error must start with the path and contain want. */
static void expect_reject(const char *name, const char *file, const char *want)
{
	struct elf_object o;
	const char *path = at(file);
	if (!elf_object_open(&o, path)) {
		fail(name, "accepted");
		elf_object_close(&o);
		return;
	}
	const char *e = rw_error();
	CHECK(name, !strncmp(e, path, strlen(path)) && e[strlen(path)] == ':' &&
	      (!want || strstr(e, want)), "message \"%s\"", e);
}

static void expect_image_reject(const char *name, const char *file, const char *want)
{
	struct elf_image m;
	const char *path = at(file);
	if (!elf_image_open(&m, path)) {
		fail(name, "accepted");
		elf_image_close(&m);
		return;
	}
	const char *e = rw_error();
	CHECK(name, !strncmp(e, path, strlen(path)) && (!want || strstr(e, want)),
	      "message \"%s\"", e);
}

struct elf {
	uint8_t *p;
	size_t n;
	Elf64_Ehdr *eh;
};

static Elf64_Shdr *shdr(struct elf *e, size_t i)
{
	return (Elf64_Shdr *)(e->p + e->eh->e_shoff) + i;
}

static Elf64_Shdr *shdr_of_type(struct elf *e, uint32_t type)
{
	for (size_t i = 1; i < e->eh->e_shnum; i++)
		if (shdr(e, i)->sh_type == type)
			return shdr(e, i);
	return NULL;
}

/* A fresh copy of the good object to patch. */
static int load(struct elf *e, const char *file)
{
	e->p = get_file(at(file), &e->n);
	if (!e->p || e->n < sizeof(Elf64_Ehdr))
		return -1;
	e->eh = (Elf64_Ehdr *)e->p;
	return 0;
}

static void save(struct elf *e, const char *file)
{
	put_file(file, e->p, e->n);
	free(e->p);
}

static void test_bad_files(void)
{
	struct elf e;
	if (load(&e, "obj_cc.o")) {
		fail("bad files: setup", "no good object");
		return;
	}
	put_file("trunc.o", e.p, 100);
	put_file("trunc40.o", e.p, 40);
	put_file("trunc_tail.o", e.p, e.n - 10);
	put_file("empty.o", "", 0);
	put_text("text.o", "this is not an object file\n");
	save(&e, "copy.o");
	expect_reject("bad files: truncated to 100 bytes", "trunc.o", "outside");
	expect_reject("bad files: truncated inside the header", "trunc40.o", "truncated");
	expect_reject("bad files: last 10 bytes cut", "trunc_tail.o", NULL);
	expect_reject("bad files: zero-length file", "empty.o", "empty");
	expect_reject("bad files: not ELF", "text.o", "not an ELF file");
	expect_reject("bad files: missing file", "nonexistent.o", "cannot open");
	expect_reject("bad files: directory", "src", "not a regular file");

	load(&e, "obj_cc.o");
	e.eh->e_shoff = e.n + 1000;
	save(&e, "shoff.o");
	expect_reject("bad files: e_shoff past the end", "shoff.o", "section header table");

	load(&e, "obj_cc.o");
	e.eh->e_shentsize = 32;
	save(&e, "shentsize.o");
	expect_reject("bad files: wrong e_shentsize", "shentsize.o", "section header size");

	load(&e, "obj_cc.o");
	e.eh->e_shstrndx = (uint16_t)(e.eh->e_shnum + 3);
	save(&e, "shstrndx.o");
	expect_reject("bad files: e_shstrndx out of range", "shstrndx.o", "name table");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_PROGBITS)->sh_offset = 0xffffffffffff0000ull;
	save(&e, "shoffset.o");
	expect_reject("bad files: sh_offset past the end", "shoffset.o", "runs past the end");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_PROGBITS)->sh_size = e.n;
	save(&e, "shsize.o");
	expect_reject("bad files: sh_size past the end", "shsize.o", "runs past the end");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_PROGBITS)->sh_name = 0x7fffffff;
	save(&e, "shname.o");
	expect_reject("bad files: sh_name out of range", "shname.o", "name offset");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_SYMTAB)->sh_link = 500;
	save(&e, "shlink.o");
	expect_reject("bad files: sh_link out of range", "shlink.o", "links to section 500");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_SYMTAB)->sh_link = (uint32_t)(shdr_of_type(&e, SHT_SYMTAB) - shdr(&e, 0));
	save(&e, "symlink.o");
	expect_reject("bad files: symtab linked to a non-string table", "symlink.o", "string table");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_RELA)->sh_info = 999;
	save(&e, "relinfo.o");
	expect_reject("bad files: relocation target out of range", "relinfo.o", "section 999");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_PROGBITS)->sh_addralign = 3;
	save(&e, "align.o");
	expect_reject("bad files: alignment not a power of two", "align.o", "power of two");

	load(&e, "obj_cc.o");
	{
		Elf64_Shdr *st = shdr_of_type(&e, SHT_SYMTAB);
		Elf64_Sym *sym = (Elf64_Sym *)(e.p + st->sh_offset);
		sym[2].st_name = 0x7ffffff0;
		save(&e, "stname.o");
	}
	expect_reject("bad files: st_name out of range", "stname.o", "name offset");

	load(&e, "obj_cc.o");
	{
		Elf64_Shdr *st = shdr_of_type(&e, SHT_SYMTAB);
		Elf64_Sym *sym = (Elf64_Sym *)(e.p + st->sh_offset);
		sym[3].st_shndx = 700;
		save(&e, "stshndx.o");
	}
	expect_reject("bad files: st_shndx out of range", "stshndx.o", "section index 700");

	load(&e, "obj_cc.o");
	{
		Elf64_Shdr *st = shdr_of_type(&e, SHT_SYMTAB);
		Elf64_Sym *sym = (Elf64_Sym *)(e.p + st->sh_offset);
		sym[3].st_shndx = SHN_XINDEX;
		save(&e, "xindex.o");
	}
	expect_reject("bad files: SHN_XINDEX", "xindex.o", "SHN_XINDEX");

	load(&e, "obj_cc.o");
	{
		Elf64_Shdr *st = shdr_of_type(&e, SHT_SYMTAB);
		Elf64_Shdr *str = shdr(&e, st->sh_link);
		e.p[str->sh_offset + str->sh_size - 1] = 'x';
		save(&e, "strnul.o");
	}
	expect_reject("bad files: string table without final NUL", "strnul.o", "NUL");

	load(&e, "obj_cc.o");
	{
		Elf64_Shdr *rs = shdr_of_type(&e, SHT_RELA);
		Elf64_Rela *r = (Elf64_Rela *)(e.p + rs->sh_offset);
		r[0].r_info = ELF64_R_INFO((Elf64_Xword)99999, ELF64_R_TYPE(r[0].r_info));
		save(&e, "rsym.o");
	}
	expect_reject("bad files: relocation symbol out of range", "rsym.o", "symbol 99999");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_RELA)->sh_type = SHT_REL;
	save(&e, "rel.o");
	expect_reject("bad files: SHT_REL", "rel.o", "SHT_REL");

	load(&e, "obj_cc.o");
	shdr_of_type(&e, SHT_PROGBITS)->sh_type = SHT_SYMTAB;
	save(&e, "twosymtab.o");
	expect_reject("bad files: two symbol tables", "twosymtab.o", NULL);

	load(&e, "obj_cc.o");
	e.p[EI_CLASS] = ELFCLASS32;
	save(&e, "class32.o");
	expect_reject("bad files: 32-bit class", "class32.o", "32-bit");

	load(&e, "obj_cc.o");
	e.p[EI_DATA] = ELFDATA2MSB;
	save(&e, "msb.o");
	expect_reject("bad files: big-endian", "msb.o", "little-endian");

	/* aarch64 objects are read (the arch layer relocates them); another
	 * machine is refused, naming it. */
	if (sh("clang --target=aarch64-linux-gnu -c src/obj.c -o arm.o") == 0) {
		struct elf_object o;
		int rc = elf_object_open(&o, at("arm.o"));
		CHECK("bad files: an aarch64 object is read as aarch64", rc == 0 && o.machine == EM_AARCH64,
		      "%s", rc ? rw_error() : "another machine");
		if (rc == 0)
			elf_object_close(&o);
	}
	load(&e, "obj_cc.o");
	e.eh->e_machine = EM_RISCV;
	save(&e, "riscv.o");
	expect_reject("bad files: RISC-V object", "riscv.o", "machine 243 (RISC-V), not x86-64 or aarch64");
	expect_image_reject("bad files: RISC-V object as an image", "riscv.o", "machine 243");

	expect_reject("bad files: executable as an object", "prog_cc_default", "not a relocatable object");
	expect_image_reject("bad files: object as an image", "obj_cc.o", "not an executable");

	load(&e, "prog_cc_default");
	{
		Elf64_Phdr *ph = (Elf64_Phdr *)(e.p + e.eh->e_phoff);
		for (size_t i = 0; i < e.eh->e_phnum; i++)
			if (ph[i].p_type == PT_NOTE)
				ph[i].p_filesz += 4096 * 16;
		save(&e, "badnote");
	}
	expect_image_reject("bad files: PT_NOTE past the end", "badnote", "segment");

	load(&e, "prog_cc_default");
	{
		Elf64_Phdr *ph = (Elf64_Phdr *)(e.p + e.eh->e_phoff);
		for (size_t i = 0; i < e.eh->e_phnum; i++)
			if (ph[i].p_type == PT_NOTE) {
				uint32_t big = 0x7fffffff;
				memcpy(e.p + ph[i].p_offset + 4, &big, 4);	/* n_descsz */
			}
		save(&e, "badnote2");
	}
	expect_image_reject("bad files: note descriptor past its segment", "badnote2", "note");

	load(&e, "prog_cc_default");
	e.eh->e_phoff = e.n - 8;
	save(&e, "badphoff");
	expect_image_reject("bad files: program headers past the end", "badphoff", "program headers");
}

/* Every prefix of an object and random byte damage: never a crash; when
 * accepted, everything reachable is usable. */
static void use_object(const struct elf_object *o)
{
	for (size_t i = 0; i < o->nsections; i++) {
		const struct elf_section *s = &o->sections[i];
		volatile uint8_t sink = 0;
		if (s->data && s->size)
			sink ^= s->data[0] ^ s->data[s->size - 1];
		(void)strlen(s->name);
		for (size_t j = 0; j < s->nrelas; j++)
			(void)strlen(o->symbols[s->relas[j].sym].name);
		(void)sink;
	}
	for (size_t i = 0; i < o->nsymbols; i++) {
		const struct elf_symbol *s = &o->symbols[i];
		(void)strlen(s->name);
		if (s->file)
			(void)strlen(s->file);
		if (s->shndx && s->shndx < o->nsections)
			(void)elf_object_symbol_at(o, s->shndx, s->value);
	}
}

static void use_image(const struct elf_image *m)
{
	for (size_t i = 0; i < m->nsymbols; i++) {
		const struct elf_symbol *s = &m->symbols[i];
		(void)elf_image_find(m, s->name, s->file);
		(void)elf_image_next_boundary(m, s->value);
	}
	for (size_t i = 0; i < m->nsections; i++)
		(void)elf_image_next_boundary(m, m->sections[i].addr);
}

/* The same for an executable: its notes and program headers too. */
static void fuzz_image(void)
{
	size_t n;
	uint8_t *good = get_file(at("prog_cc_default"), &n);
	if (!good) {
		fail("fuzz image: setup", "no executable");
		return;
	}
	int accepted = 0;
	for (size_t len = 0; len < n; len += 97) {
		put_file("fz", good, len);
		struct elf_image m;
		if (!elf_image_open(&m, at("fz"))) {
			accepted++;
			use_image(&m);
			elf_image_close(&m);
		}
	}
	CHECK("fuzz image: every truncation rejected", !accepted, "%d accepted", accepted);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)good;
	uint8_t *p = rw_malloc(n);
	int opened = 0;
	for (int iter = 0; iter < 1000; iter++) {
		memcpy(p, good, n);
		for (int j = 1 + rand() % 4; j > 0; j--) {
			size_t off;
			switch (rand() % 4) {
			case 0: off = (size_t)rand() % 64; break;
			case 1: off = eh->e_phoff + (size_t)rand() % (eh->e_phnum * sizeof(Elf64_Phdr)); break;
			case 2: off = eh->e_shoff + (size_t)rand() % (eh->e_shnum * sizeof(Elf64_Shdr)); break;
			default: off = 0x300 + (size_t)rand() % 0x200; break;	/* the notes */
			}
			if (off < n)
				p[off] = (uint8_t)rand();
		}
		put_file("fz", p, n);
		struct elf_image m;
		if (!elf_image_open(&m, at("fz"))) {
			opened++;
			use_image(&m);
			elf_image_close(&m);
		}
	}
	printf("# fuzz: %d of 1000 damaged executables still opened\n", opened);
	pass("fuzz image: 1000 damaged executables without a crash");
	free(p);
	free(good);
}

static void test_fuzz(void)
{
	size_t n;
	uint8_t *good = get_file(at("obj_cc.o"), &n);
	if (!good) {
		fail("fuzz: setup", "no object");
		return;
	}
	int accepted = 0, noisy = 0;
	for (size_t len = 0; len < n; len += 13) {
		put_file("fz.o", good, len);
		struct elf_object o;
		if (!elf_object_open(&o, at("fz.o"))) {
			accepted++;
			elf_object_close(&o);
		} else if (strncmp(rw_error(), at("fz.o"), strlen(at("fz.o")))) {
			noisy++;
		}
	}
	CHECK("fuzz: every truncation rejected with the path", !accepted && !noisy,
	      "%d accepted, %d bad messages", accepted, noisy);
	uint8_t *p = rw_malloc(n);
	srand(12345);
	int opened = 0;
	for (int iter = 0; iter < 1500; iter++) {
		memcpy(p, good, n);
		int k = 1 + rand() % 4;
		for (int j = 0; j < k; j++) {
			/* Mostly hit the headers and tables, where damage matters. */
			size_t off = rand() % 2 ? (size_t)rand() % 64 : (size_t)rand() % n;
			if (rand() % 3 == 0) {
				const Elf64_Ehdr *eh = (const Elf64_Ehdr *)good;
				size_t t = eh->e_shoff + (size_t)rand() % (eh->e_shnum * sizeof(Elf64_Shdr));
				if (t < n)
					off = t;
			}
			p[off] = (uint8_t)rand();
		}
		put_file("fz.o", p, n);
		struct elf_object o;
		if (!elf_object_open(&o, at("fz.o"))) {
			opened++;
			use_object(&o);
			elf_object_close(&o);
		}
	}
	printf("# fuzz: %d of 1500 damaged objects still opened\n", opened);
	pass("fuzz: 1500 damaged objects without a crash");
	free(p);
	free(good);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(tmp, sizeof tmp, "%s/rewire-elf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp))
		die("mkdtemp failed");
	if (sh("mkdir -p src"))
		die("cannot make src");
	put_text("src/obj.c", obj_src);
	put_text("src/a.c", a_src);
	put_text("src/b.c", b_src);

	int have_clang = sh("clang --version") == 0;
	int have_lld = sh("echo 'int main(void){return 0;}' > m.c && cc -fuse-ld=lld -o m m.c") == 0;
	int have_gold = sh("cc -fuse-ld=gold -o m m.c") == 0;

	test_object("cc");
	if (have_clang)
		test_object("clang");
	test_asm_object();
	test_many_object_symbols();
	test_exec("cc", "");
	if (have_clang)
		test_exec("clang", "");
	if (have_lld)
		test_exec("cc", "lld");
	if (have_gold)
		test_exec("cc", "gold");
	test_shared("");
	if (have_lld)
		test_shared("lld");
	if (have_gold)
		test_shared("gold");
	test_big_image();
	test_suffixed();
	test_bad_files();
	test_fuzz();
	fuzz_image();

	if (!getenv("KEEP_TMP"))
		sh("cd / && rm -rf '%s'", tmp);
	else
		printf("# files kept in %s\n", tmp);
	return 0;
}
