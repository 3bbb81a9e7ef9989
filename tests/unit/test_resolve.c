/* Unit tests of the resolver (src/link/resolve.c, with statics.c and
 * readers.c, which link_plan runs): what each relocation of a patch binds
 * to, and what it refuses.
 *
 * Each test compiles a small program (old/ -> prog, a PIE, placed at BIAS
 * by a fake struct link_process) and the patch's objects (new/ -> *.o) with
 * cc at test time, runs link_plan on them and reads the targets it chose:
 * the running data first, then the newest code, then the new objects, then
 * the agent's lookups; file statics by translation unit; weak undefined
 * names; and the refusals with their messages.
 *
 * Output: one line per check, "PASS resolve: <name>" or "FAIL resolve:
 * <name>: <why>". Exits 0 unless the harness cannot run. */
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "link/linker.h"
#include "diff/diff.h"
#include "util.h"

#define BIAS 0x555555554000ull	/* where the fake process has its executable */
#define MAX_OBJS 4

static char tmp[256];

static void pass(const char *name) { printf("PASS resolve: %s\n", name); }

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("FAIL resolve: %s: ", name);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

#define CHECK(name, cond, ...) \
	do { if (cond) pass(name); else fail(name, __VA_ARGS__); } while (0)

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

/* dir/path under the temp dir, its directories made. */
static void put(const char *dir, const char *path, const char *text)
{
	char full[512];
	snprintf(full, sizeof full, "%s/%s/%s", tmp, dir, path);
	sh("mkdir -p \"$(dirname '%s')\"", full);
	FILE *f = fopen(full, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		fprintf(stderr, "test_resolve: cannot write %s\n", full);
		exit(2);
	}
}

/* ------------------------------------------------------------ the fixture */

struct fx {
	struct elf_image exe;
	int have_exe;
	struct msg_module mod;
	struct link_process proc;
	struct link l;
	char *paths[MAX_OBJS], *bases[MAX_OBJS];
	struct diff_set diff;
	int have_diff;
	int rc;			/* link_plan's */
	char err[2048];		/* and its message */
};

static const char *compiler(const char *srcs)
{
	return strstr(srcs, ".cc") ? "g++" : "cc";
}

/* The program from dir/old/<prog>, the patch from dir/new/<objs> (each
 * compiled on its own with obj_flags); base: also compile old/<objs> as the
 * diff's baselines, and give the link the diff. A failure is a FAIL line. */
static int fx_open(struct fx *f, const char *dir, const char *prog, const char *objs,
		   const char *obj_flags, int base)
{
	char path[512], list[256], *save = NULL;
	memset(f, 0, sizeof *f);
	f->rc = -1;
	snprintf(f->err, sizeof f->err, "(its setup failed)");
	if (sh("cd %s/old && %s -O0 -g -o ../prog %s", dir, compiler(prog), prog) < 0)
		return fail(dir, "cannot build the program"), -1;
	snprintf(path, sizeof path, "%s/%s/prog", tmp, dir);
	if (elf_image_open(&f->exe, path) < 0)
		return fail(dir, "%s", rw_error()), -1;
	f->have_exe = 1;
	f->mod = (struct msg_module){.path = "prog", .base = BIAS, .tls_modid = 1};
	f->proc = (struct link_process){.fd = -1, .mods = &f->mod, .nmods = 1, .exe = &f->exe};
	f->l.proc = &f->proc;
	f->l.objs = rw_calloc(MAX_OBJS, sizeof *f->l.objs);
	snprintf(list, sizeof list, "%s", objs);
	for (char *src = strtok_r(list, " ", &save); src; src = strtok_r(NULL, " ", &save)) {
		size_t i = f->l.nobjs;
		const char *cc = compiler(src);
		int stem = (int)(strrchr(src, '.') - src);
		/* A file the program lacks has no baseline. */
		snprintf(path, sizeof path, "%s/%s/old/%s", tmp, dir, src);
		int has_base = base && access(path, F_OK) == 0;
		if (sh("cd %s/new && %s -O0 -g %s -c %s -o %.*s.o", dir, cc, obj_flags, src, stem,
		       src) < 0 ||
		    (has_base && sh("mkdir -p %s/base && cd %s/old && "
				    "%s -O0 -g %s -c %s -o ../base/%.*s.o",
				    dir, dir, cc, obj_flags, src, stem, src) < 0))
			return fail(dir, "cannot compile %s", src), -1;
		snprintf(path, sizeof path, "%s/%s/new/%.*s.o", tmp, dir, stem, src);
		f->paths[i] = rw_strdup(path);
		snprintf(path, sizeof path, "%s/%s/base/%.*s.o", tmp, dir, stem, src);
		f->bases[i] = has_base ? rw_strdup(path) : NULL;
		if (elf_object_open(&f->l.objs[i], f->paths[i]) < 0)
			return fail(dir, "%s", rw_error()), -1;
		f->l.nobjs++;
	}
	if (base) {
		diff_set_make(&f->diff, f->paths, (const char *const *)f->bases, NULL, f->l.nobjs);
		f->have_diff = 1;
		f->l.diff = &f->diff;
	}
	return 0;
}

static int fx_plan(struct fx *f)
{
	f->rc = link_plan(&f->l);
	snprintf(f->err, sizeof f->err, "%s", f->rc < 0 ? rw_error() : "");
	return f->rc;
}

/* Back to before link_plan, for another (as the driver does). */
static void fx_replan(struct fx *f)
{
	struct link keep = f->l;
	link_free(&f->l);
	f->l = (struct link){.proc = keep.proc, .objs = keep.objs, .nobjs = keep.nobjs,
			     .diff = keep.diff, .lib = keep.lib};
}

static void fx_close(struct fx *f)
{
	link_free(&f->l);
	for (size_t i = 0; i < f->l.nobjs; i++)
		elf_object_close(&f->l.objs[i]);
	free(f->l.objs);
	for (size_t i = 0; i < MAX_OBJS; i++)
		free(f->paths[i]), free(f->bases[i]);
	if (f->have_diff)
		diff_set_free(&f->diff);
	if (f->have_exe)
		elf_image_close(&f->exe);
}

/* The running address of the program's name (a local of file when file is
 * not NULL); 1 when there is none, which no target equals. */
static uint64_t run_addr(struct fx *f, const char *name, const char *file)
{
	const struct elf_symbol *s = elf_image_find(&f->exe, name, file);
	return s ? BIAS + s->value : 1;
}

/* --------------------------------------------------------- the references */

/* A relocation of a loaded section of the patch and what the resolver made
 * of it. sym: the symbol it names, or for a section symbol the one at
 * off, the offset into that section it means. */
struct ref {
	const struct target *t;
	const struct elf_rela *r;
	const struct elf_symbol *sym;
	int section;		/* written as section + addend */
	int64_t off;
	uint16_t si;		/* the section it is in */
};

static int is_pcrel(uint32_t type)
{
	return type == R_X86_64_PC32 || type == R_X86_64_PLT32 || type == R_X86_64_GOTPCREL ||
	       type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
}

/* The first reference of object oi to name from a loaded section that is
 * not unwind info; type 0: of any type. The test sources have no immediate
 * after a RIP-relative operand: the field ends the instruction. */
static int find_ref(struct fx *f, uint32_t oi, const char *name, uint32_t type, struct ref *out)
{
	const struct elf_object *o = &f->l.objs[oi];
	for (uint16_t si = 1; f->l.secs && si < o->nsections; si++) {
		const struct elf_section *sec = &o->sections[si];
		if (!f->l.secs[oi][si].load || !f->l.targets[oi][si] || !strcmp(sec->name, ".eh_frame"))
			continue;
		for (size_t ri = 0; ri < sec->nrelas; ri++) {
			const struct elf_rela *r = &sec->relas[ri];
			const struct elf_symbol *s = &o->symbols[r->sym];
			struct ref x = {&f->l.targets[oi][si][ri], r, s, 0, 0, si};
			if (s->type == STT_SECTION) {
				x.section = 1;
				int code = (sec->flags & SHF_EXECINSTR) != 0;
				x.off = r->addend + (code && is_pcrel(r->type) ? 4 : 0);
				x.sym = x.off < 0 ? NULL :
					elf_object_symbol_at(o, s->shndx, (uint64_t)x.off);
			}
			if (x.sym && !strcmp(x.sym->name, name) && (!type || r->type == type)) {
				*out = x;
				return 1;
			}
		}
	}
	return 0;
}

/* The address a reference bound to the process means. */
static uint64_t ref_addr(const struct ref *x)
{
	return x->t->value + (x->section ? (uint64_t)x->off : 0);
}

/* Does x bind to the process at addr? */
static int binds_to(const struct ref *x, uint64_t addr)
{
	return x->t && x->t->bind == BIND_ADDR && ref_addr(x) == addr;
}

/* Does x bind to its symbol's own copy in the patch (object oi)? */
static int binds_new(struct fx *f, const struct ref *x, uint32_t oi)
{
	const struct elf_symbol *s = x->sym;
	const struct elf_object *o = &f->l.objs[oi];
	for (size_t i = 1; s && s->shndx == SHN_UNDEF && i < o->nsymbols; i++)
		if (o->symbols[i].shndx != SHN_UNDEF && !strcmp(o->symbols[i].name, s->name))
			s = &o->symbols[i];	/* defined by another object */
	if (!s || !x->t)
		return 0;
	if (x->t->bind != BIND_SECTION || x->t->obj != oi || !f->l.secs[oi][x->t->sec].load)
		return 0;
	if (x->section)
		return x->t->value + (uint64_t)x->off >= s->value &&
		       x->t->value + (uint64_t)x->off < s->value + (s->size ? s->size : 1) &&
		       x->t->sec == s->shndx;
	return x->t->value == s->value && x->t->sec == s->shndx;
}

static const char *bind_name(int b)
{
	static const char *const names[] = {"NONE", "ADDR", "SECTION", "DYN", "TLS", "GOTBASE",
					    "ZERO", "EH_NULL"};
	return b >= 0 && b < (int)(sizeof names / sizeof *names) ? names[b] : "?";
}

/* What x bound to, for a failure's message. */
static const char *said(const struct ref *x)
{
	static char buf[4][160];
	static int next;
	char *b = buf[next++ % 4];
	if (!x->t)
		return "no such reference";
	snprintf(b, sizeof buf[0], "bound %s obj %u sec %u value %#llx (means %#llx)",
		 bind_name(x->t->bind), x->t->obj, x->t->sec, (unsigned long long)x->t->value,
		 (unsigned long long)ref_addr(x));
	return b;
}

static struct ref get_ref(struct fx *f, uint32_t oi, const char *name, uint32_t type)
{
	struct ref x = {0};
	find_ref(f, oi, name, type, &x);
	return x;
}

static int has(const char *err, const char *part)
{
	return strstr(err, part) != NULL;
}

/* ------------------------------------------------------------------ tests */

static const char data_old[] =
	"#include <stdio.h>\n"
	"int counter = 5;\n"
	"static int hits;\n"
	"int helper(int x) { return x * 3; }\n"
	"int use(int x) { hits++; return helper(x) + counter + hits; }\n"
	"int main(void) { printf(\"%d\\n\", use(1)); return 0; }\n";

/* Data the program has keeps its storage: a global by name, a file static
 * (section + addend) by its unit, both at the program's load bias. */
static void test_running_data(void)
{
	struct fx f;
	put("data", "old/a.c", data_old);
	put("data", "new/a.c", data_old);	/* the same; no diff: all counts as changed */
	if (fx_open(&f, "data", "a.c", "a.c", "", 0) == 0 && fx_plan(&f) == 0) {
		struct ref c = get_ref(&f, 0, "counter", 0), h = get_ref(&f, 0, "hits", 0);
		CHECK("a global the program has binds to its storage",
		      binds_to(&c, run_addr(&f, "counter", NULL)), "%s, want %#llx", said(&c),
		      (unsigned long long)run_addr(&f, "counter", NULL));
		CHECK("a file static (section + addend) binds to its storage",
		      h.section && binds_to(&h, run_addr(&f, "hits", "a.c")),
		      "%s, want %#llx", said(&h), (unsigned long long)run_addr(&f, "hits", "a.c"));
		/* Without a diff every function is changed: calls go to the new
		 * copies, and each running function gets an entry jump. */
		struct ref call = get_ref(&f, 0, "helper", R_X86_64_PLT32);
		CHECK("without a diff, a call to a function of the patch goes to its new copy",
		      binds_new(&f, &call, 0) && call.t->is_func, "%s", said(&call));
		int all = f.l.nredirs == 3;
		for (size_t i = 0; i < f.l.nredirs; i++)
			all &= f.l.redirs[i].from == run_addr(&f, f.l.redirs[i].name, NULL);
		CHECK("without a diff, every running function gets an entry jump at its address",
		      all, "%zu redirects", f.l.nredirs);
	} else {
		fail("running data", "%s", f.err);
	}
	fx_close(&f);
}

/* With a diff: an unchanged function is called where it runs (through a
 * stub when the patch is placed far), and only the changed one gets a jump. */
static void test_diff_calls(void)
{
	struct fx f;
	char *edited = strdup(data_old);
	char *at = strstr(edited, "+ hits;");
	memcpy(at, "- hits;", 7);
	put("calls", "old/a.c", data_old);
	put("calls", "new/a.c", edited);
	free(edited);
	/* -fno-ipa-ra: else the diff counts main, which calls use, changed too. */
	if (fx_open(&f, "calls", "a.c", "a.c", "-fno-ipa-ra", 1) == 0 && fx_plan(&f) == 0) {
		struct ref call = get_ref(&f, 0, "helper", R_X86_64_PLT32);
		CHECK("a call to an unchanged function goes to the running one",
		      binds_to(&call, run_addr(&f, "helper", NULL)) && call.t->is_func, "%s",
		      said(&call));
		CHECK("only the changed function gets an entry jump", f.l.nredirs == 1 &&
		      !strcmp(f.l.redirs[0].name, "use") &&
		      f.l.redirs[0].from == run_addr(&f, "use", NULL) && f.l.redirs[0].room >= 5,
		      "%zu redirects, first %s", f.l.nredirs,
		      f.l.nredirs ? f.l.redirs[0].name : "-");
		CHECK("a call to a running function has a far-call stub number",
		      call.t && call.t->stub == 0 && f.l.nfcalls == 1 &&
		      f.l.fcalls[0] == arch_call_target(call.t->value, call.r->addend),
		      "stub %d, %zu far calls", call.t ? call.t->stub : -9, f.l.nfcalls);
	} else {
		fail("calls with a diff", "%s", f.err);
	}
	fx_close(&f);
}

/* Code the program runs, patched before (the agent's registry): a call
 * goes to the newest version, an address taken is the original address;
 * a file static an earlier patch added is found in its own unit only. */
static void test_newest_code(void)
{
	struct fx f;
	put("newest", "old/a.c", data_old);
	put("newest", "new/c.c",
	    "extern int helper(int);\n"
	    "int (*keep)(int);\n"
	    "static int later;\n"
	    "int callit(int x) { keep = helper; later++; return helper(x); }\n");
	if (fx_open(&f, "newest", "a.c", "c.c", "", 0) == 0) {
		uint64_t orig = run_addr(&f, "helper", NULL), newest = 0x7f0000001000ull;
		struct msg_regsym reg[] = {
			{"", "helper", RW_KIND_FUNC, orig, newest, 64},
			{"c.c", "later", RW_KIND_DATA, 0x7f0000002000ull, 0x7f0000002000ull, 4},
			{"b.c", "later", RW_KIND_DATA, 0x7f0000003000ull, 0x7f0000003000ull, 4},
		};
		f.proc.reg = reg, f.proc.nreg = 3;
		if (fx_plan(&f) == 0) {
			struct ref call = get_ref(&f, 0, "helper", R_X86_64_PLT32);
			struct ref addr = get_ref(&f, 0, "helper", R_X86_64_REX_GOTPCRELX);
			struct ref later = get_ref(&f, 0, "later", 0);
			CHECK("a call to a function patched before goes to its newest version",
			      binds_to(&call, newest), "%s", said(&call));
			CHECK("the address of a function patched before is its original address",
			      binds_to(&addr, orig) && addr.t->got >= 0 && f.l.ngot >= 1,
			      "%s, GOT slot %d", said(&addr), addr.t ? addr.t->got : -9);
			CHECK("a file static an earlier patch added binds in its own unit",
			      binds_to(&later, 0x7f0000002000ull), "%s", said(&later));
		} else {
			fail("newest code", "%s", f.err);
		}
		f.proc.reg = NULL, f.proc.nreg = 0;
	}
	fx_close(&f);
}

/* Two units of the program with a static of one name: each object of the
 * patch finds the one of its own unit. */
static void test_statics_by_unit(void)
{
	static const char a[] = "static int count = 1;\nint a_get(void) { return count; }\n"
				"int b_get(void);\nint main(void) { return a_get() + b_get(); }\n";
	static const char b[] = "static int pad[8];\nstatic int count = 2;\n"
				"int b_get(void) { return count + pad[1]; }\n";
	struct fx f;
	put("units", "old/a.c", a);
	put("units", "old/b.c", b);
	put("units", "new/a.c", a);
	put("units", "new/b.c", b);
	if (fx_open(&f, "units", "a.c b.c", "a.c b.c", "", 0) == 0 && fx_plan(&f) == 0) {
		struct ref ca = get_ref(&f, 0, "count", 0), cb = get_ref(&f, 1, "count", 0);
		uint64_t want_a = run_addr(&f, "count", "a.c"), want_b = run_addr(&f, "count", "b.c");
		CHECK("a static of a.c binds to a.c's storage", want_a != want_b &&
		      binds_to(&ca, want_a), "%s, want %#llx", said(&ca),
		      (unsigned long long)want_a);
		CHECK("a static of b.c binds to b.c's storage", binds_to(&cb, want_b),
		      "%s, want %#llx", said(&cb), (unsigned long long)want_b);
	} else {
		fail("statics by unit", "%s", f.err);
	}
	fx_close(&f);
}

/* What the program lacks: defined by the patch (new data, a function of
 * another new object), else looked up by the agent. */
static void test_new_then_dynamic(void)
{
	struct fx f;
	put("newdyn", "old/a.c", data_old);
	put("newdyn", "new/c.c",
	    "#include <stdio.h>\n"
	    "static int fresh;\n"
	    "int twice(int);\n"
	    "int newfn(int x) { fresh++; return twice(x) + puts(\"x\"); }\n");
	put("newdyn", "new/d.c", "int twice(int x) { return 2 * x; }\n");
	if (fx_open(&f, "newdyn", "a.c", "c.c d.c", "", 0) == 0 && fx_plan(&f) == 0) {
		struct ref fr = get_ref(&f, 0, "fresh", 0), tw = get_ref(&f, 0, "twice", 0);
		struct ref pu = get_ref(&f, 0, "puts", 0);
		CHECK("new data binds to the patch's own section, which is loaded",
		      binds_new(&f, &fr, 0) && f.l.secs[0][fr.t->sec].load == SEG_RW, "%s",
		      said(&fr));
		CHECK("a new function another object of the patch defines binds there",
		      binds_new(&f, &tw, 1) && tw.t->is_func, "%s", said(&tw));
		CHECK("a name nothing defines is left to the agent, as a called dynamic symbol",
		      pu.t && pu.t->bind == BIND_DYN && pu.t->value < f.l.ndyn &&
		      !strcmp(f.l.dyn[pu.t->value].name, "puts") && f.l.dyn[pu.t->value].called &&
		      !f.l.dyn[pu.t->value].weak, "%s", said(&pu));
		CHECK("new functions get no entry jump", f.l.nredirs == 0 && f.l.nfuncs_new == 2,
		      "%zu redirects, %llu new", f.l.nredirs, (unsigned long long)f.l.nfuncs_new);
	} else {
		fail("new then dynamic", "%s", f.err);
	}
	fx_close(&f);
}

/* Weak undefined names: not found, they are accepted (and read as 0); a
 * name also referenced strongly must be found. */
static void test_weak(void)
{
	struct fx f;
	put("weak", "old/a.c", data_old);
	put("weak", "new/w.c",
	    "extern void opt(void) __attribute__((weak));\n"
	    "extern void must(void);\n"
	    "void wf(void) { if (opt) opt(); must(); }\n");
	put("weak", "new/v.c",
	    "extern void both(void) __attribute__((weak));\n"
	    "void vf(void) { if (both) both(); }\n");
	put("weak", "new/u.c", "extern void both(void);\nvoid uf(void) { both(); }\n");
	if (fx_open(&f, "weak", "a.c", "w.c v.c u.c", "", 0) == 0 && fx_plan(&f) == 0) {
		int iopt = -1, imust = -1, iboth = -1;
		for (size_t i = 0; i < f.l.ndyn; i++) {
			if (!strcmp(f.l.dyn[i].name, "opt")) iopt = (int)i;
			if (!strcmp(f.l.dyn[i].name, "must")) imust = (int)i;
			if (!strcmp(f.l.dyn[i].name, "both")) iboth = (int)i;
		}
		CHECK("a weak undefined name is a weak dynamic symbol, the others are not",
		      iopt >= 0 && imust >= 0 && iboth >= 0 && f.l.dyn[iopt].weak &&
		      !f.l.dyn[imust].weak, "opt %d must %d both %d", iopt, imust, iboth);
		CHECK("a name referenced weakly and strongly is strong", iboth >= 0 &&
		      !f.l.dyn[iboth].weak, "weak");
		int rc = link_check_dynamic(&f.l);
		CHECK("an undefined name the agent did not find is refused, by name", rc < 0 &&
		      has(rw_error(), "undefined symbol must: not in the program"), "%d: %s", rc,
		      rw_error());
		if (imust >= 0 && iboth >= 0) {
			f.l.dyn[imust].found = f.l.dyn[iboth].found = RW_FOUND_ADDR;
			f.l.dyn[imust].addr = 0x7f0000005000ull;
		}
		f.l.nstubs = 0;
		rc = link_check_dynamic(&f.l);
		CHECK("a weak name not found is accepted; a called name found gets a stub",
		      rc == 0 && iopt >= 0 && f.l.dyn[iopt].stub == -1 && f.l.dyn[imust].stub >= 0,
		      "%d: %s", rc, rc ? rw_error() : "no stub");
	} else {
		fail("weak", "%s", f.err);
	}
	fx_close(&f);
}

/* An ifunc's symbol is its resolver's address, not the function's: the
 * agent looks the name up instead. */
static void test_ifunc(void)
{
	struct fx f;
	put("ifunc", "old/a.c",
	    "static int fast_impl(void) { return 1; }\n"
	    "static void *resolve_fast(void) { return (void *)fast_impl; }\n"
	    "int fast(void) __attribute__((ifunc(\"resolve_fast\")));\n"
	    "int main(void) { return fast(); }\n");
	put("ifunc", "new/c.c", "int fast(void);\nint callfast(void) { return fast() + 1; }\n");
	if (fx_open(&f, "ifunc", "a.c", "c.c", "", 0) == 0 && fx_plan(&f) == 0) {
		struct ref x = get_ref(&f, 0, "fast", 0);
		CHECK("a call to an ifunc of the program is looked up by the agent",
		      x.t && x.t->bind == BIND_DYN && !strcmp(f.l.dyn[x.t->value].name, "fast"),
		      "%s", said(&x));
	} else {
		fail("ifunc", "%s", f.err);
	}
	fx_close(&f);
}

/* Archive members (l->lib): after the program, before the agent; only
 * what the patch reaches is loaded, and the unwind records of code not
 * loaded read as address 0. (A member's common symbol, as gcc made them
 * before version 10, is the program's storage then, not a refusal.) */
static void test_library_objects(void)
{
	struct fx f;
	char prog[1024];
	snprintf(prog, sizeof prog, "int libcommon = 3;\n%s", data_old);
	put("lib", "old/a.c", prog);
	put("lib", "new/c.c",
	    "int helper(int);\nint libonly(int);\nextern int libcommon;\n"
	    "int usel(int x) { return helper(x) + libonly(x) + libcommon; }\n");
	put("lib", "new/m.c",
	    "int libcommon;\n"
	    "int helper(int x) { return x * 5; }\nint libonly(int x) { return x - 1; }\n");
	if (fx_open(&f, "lib", "a.c", "c.c m.c", "-ffunction-sections -fcommon", 0) < 0) {
		fx_close(&f);
		return;
	}
	static const uint8_t lib[] = {0, 1};
	f.l.lib = lib;
	if (fx_plan(&f) == 0) {
		struct ref h = get_ref(&f, 0, "helper", 0), lo = get_ref(&f, 0, "libonly", 0);
		CHECK("the program's function comes before an archive member's",
		      binds_to(&h, run_addr(&f, "helper", NULL)), "%s", said(&h));
		CHECK("what only an archive member has binds to the member", binds_new(&f, &lo, 1),
		      "%s", said(&lo));
		struct ref lc = get_ref(&f, 0, "libcommon", 0);
		CHECK("the program's data comes before an archive member's common symbol",
		      binds_to(&lc, run_addr(&f, "libcommon", NULL)), "%s", said(&lc));
		const struct elf_object *m = &f.l.objs[1];
		int helper_loaded = -1, eh_null = 0, eh_live = 0;
		for (uint16_t si = 1; si < m->nsections; si++) {
			if (!strcmp(m->sections[si].name, ".text.helper"))
				helper_loaded = f.l.secs[1][si].load;
			if (!strcmp(m->sections[si].name, ".eh_frame") && f.l.targets[1][si])
				for (size_t ri = 0; ri < m->sections[si].nrelas; ri++) {
					eh_null += f.l.targets[1][si][ri].bind == BIND_EH_NULL;
					eh_live += f.l.targets[1][si][ri].bind == BIND_SECTION;
				}
		}
		CHECK("an archive member's code the patch does not reach is not loaded",
		      helper_loaded == 0, "load %d", helper_loaded);
		CHECK("the unwind record of a member's code not loaded is bound to null",
		      eh_null == 1 && eh_live == 1, "%d null, %d live", eh_null, eh_live);
		CHECK("an archive member's function the program runs gets no entry jump",
		      f.l.nredirs == 0, "%zu redirects", f.l.nredirs);
	} else {
		fail("library objects", "%s", f.err);
	}
	f.l.lib = NULL;
	fx_close(&f);
}

/* Constants: a changed one is the new copy, an unchanged one the running
 * copy (its address stays what the program knows); a changed global
 * constant that other code of the program reads is refused. */
static void test_constants(void)
{
	static const char k_old[] =
		"const int limits[3] = {1, 2, 3};\n"
		"const int other[2] = {7, 8};\n"
		"int get(int i) { return limits[i] + other[i & 1]; }\n";
	struct fx f;
	put("consts", "old/k.c", k_old);
	put("consts", "old/m.c", "int get(int);\nint main(void) { return get(1); }\n");
	put("consts", "new/k.c",
	    "const int limits[3] = {1, 2, 4};\n"
	    "const int other[2] = {7, 8};\n"
	    "int get(int i) { return limits[i] + other[i & 1]; }\n");
	if (fx_open(&f, "consts", "k.c m.c", "k.c", "", 1) == 0 && fx_plan(&f) == 0) {
		struct ref lim = get_ref(&f, 0, "limits", 0), oth = get_ref(&f, 0, "other", 0);
		CHECK("a changed constant binds to its new copy", binds_new(&f, &lim, 0), "%s",
		      said(&lim));
		CHECK("an unchanged constant binds to the running copy",
		      binds_to(&oth, run_addr(&f, "other", NULL)), "%s", said(&oth));
	} else {
		fail("constants", "%s", f.err);
	}
	fx_close(&f);

	put("readers", "old/k.c", k_old);
	put("readers", "old/m.c",
	    "extern const int limits[3];\nint get(int);\n"
	    "int main(void) { return get(1) + limits[2]; }\n");
	put("readers", "new/k.c",
	    "const int limits[3] = {1, 2, 4};\n"
	    "const int other[2] = {7, 8};\n"
	    "int get(int i) { return limits[i] + other[i & 1]; }\n");
	if (fx_open(&f, "readers", "k.c m.c", "k.c", "", 1) == 0) {
		fx_plan(&f);
		CHECK("a changed constant other code of the program reads is refused, naming the reader",
		      f.rc < 0 && has(f.err, "limits: this constant changed, and main"), "%d: %s",
		      f.rc, f.err);
	}
	fx_close(&f);
}

/* Thread-locals: the program's are bound in its TLS block; a patch
 * cannot add one. */
static void test_tls(void)
{
	struct fx f;
	put("tls", "old/a.c", "__thread int first = 1;\n__thread int depth = 3;\n"
			      "int main(void) { return first + depth; }\n");
	put("tls", "new/c.c", "extern __thread int depth;\nint tget(void) { return depth; }\n");
	put("tls", "new/d.c", "__thread int newtls;\nint tnew(void) { return newtls; }\n");
	if (fx_open(&f, "tls", "a.c", "c.c", "", 0) == 0 && fx_plan(&f) == 0) {
		struct ref d = get_ref(&f, 0, "depth", 0);
		const struct elf_symbol *s = elf_image_find(&f.exe, "depth", NULL);
		CHECK("a thread-local of the program binds to its offset in the TLS block",
		      d.t && s && s->value && d.t->bind == BIND_TLS && d.t->mod == 0 &&
		      d.t->value == s->value,
		      "%s", said(&d));
	} else {
		fail("tls", "%s", f.err);
	}
	fx_close(&f);
	if (fx_open(&f, "tls", "a.c", "d.c", "", 0) == 0) {
		fx_plan(&f);
		CHECK("a new thread-local is refused", f.rc < 0 &&
		      has(f.err, "newtls: a patch cannot add a thread-local variable"), "%s",
		      f.err);
	}
	fx_close(&f);
}

/* Storage that grew cannot stay where it runs. */
static void test_grown(void)
{
	struct fx f;
	put("grow", "old/a.c", "int table[4];\nstatic int tab[4];\n"
			       "int main(void) { return table[1] + tab[1]; }\n");
	put("grow", "new/g.c", "int table[8];\nint gg(void) { return table[7]; }\n");
	put("grow", "new/a.c", "int table[4];\nstatic int tab[8];\n"
			       "int main(void) { return table[1] + tab[1]; }\n");
	if (fx_open(&f, "grow", "a.c", "g.c", "", 0) == 0) {
		fx_plan(&f);
		CHECK("a global that grew is refused with both sizes", f.rc < 0 &&
		      has(f.err, "table: data grew from 16 to 32 bytes"), "%s", f.err);
	}
	fx_close(&f);
	if (fx_open(&f, "grow", "a.c", "a.c", "", 0) == 0) {
		fx_plan(&f);
		CHECK("a file static that grew is refused with both sizes", f.rc < 0 &&
		      has(f.err, "a.o: tab grew from 16 to 32 bytes"), "%s", f.err);
	}
	fx_close(&f);
}

static void test_common(void)
{
	struct fx f;
	put("common", "old/a.c", data_old);
	put("common", "new/c.c", "int comm;\nint cget(void) { return comm; }\n");
	if (fx_open(&f, "common", "a.c", "c.c", "-fcommon", 0) == 0) {
		fx_plan(&f);
		CHECK("a common symbol is refused", f.rc < 0 &&
		      has(f.err, "comm is a common symbol: compile with -fno-common"), "%s", f.err);
	}
	fx_close(&f);
}

/* Two units named util.c, each with a static count: which is meant? */
static void test_ambiguous_units(void)
{
	struct fx f;
	static const char u[] = "static int count;\nint %s(void) { return ++count; }\n";
	char one[128], two[128];
	snprintf(one, sizeof one, u, "one");
	snprintf(two, sizeof two, u, "two");
	put("ambig", "old/x/util.c", one);
	put("ambig", "old/y/util.c", two);
	put("ambig", "old/m.c",
	    "int one(void);\nint two(void);\nint main(void) { return one() + two(); }\n");
	put("ambig", "new/util.c", one);
	if (fx_open(&f, "ambig", "x/util.c y/util.c m.c", "util.c", "", 0) == 0) {
		fx_plan(&f);
		CHECK("a static of a file name two units share is refused", f.rc < 0 &&
		      has(f.err, "count: the program has several files named util.c"), "%s", f.err);
	}
	fx_close(&f);
}

/* gcc numbers function-local statics backwards through the unit: adding
 * one after f renumbers f's. Each keeps its storage all the same. */
static void test_function_statics(void)
{
	struct fx f;
	static const char s_old[] =
		"int f(void) { static int count = 10; return ++count; }\n"
		"int g(void) { static int count = 20; return ++count; }\n"
		"int main(void) { return f() + g(); }\n";
	put("fstat", "old/s.c", s_old);
	put("fstat", "new/s.c",
	    "int f(void) { static int count = 10; return ++count; }\n"
	    "int g(void) { static int count = 20; return ++count; }\n"
	    "int h(void) { static int count = 30; return ++count; }\n"
	    "int main(void) { return f() + g() + h(); }\n");
	if (fx_open(&f, "fstat", "s.c", "s.c", "", 0) == 0 && fx_plan(&f) == 0) {
		/* The program's f uses count.1 (g count.0); the patch's f uses count.2. */
		struct ref fc = get_ref(&f, 0, "count.2", 0), hc = get_ref(&f, 0, "count.0", 0);
		CHECK("a renumbered function static binds to its function's storage",
		      binds_to(&fc, run_addr(&f, "count.1", "s.c")), "%s, want %#llx", said(&fc),
		      (unsigned long long)run_addr(&f, "count.1", "s.c"));
		CHECK("the static of a new function is new", binds_new(&f, &hc, 0), "%s",
		      said(&hc));
	} else {
		fail("function statics", "%s", f.err);
	}
	fx_close(&f);
}

/* Names the symbol table does not scope by unit: a Rust hash (unique in
 * the program, whatever unit holds it), and LLVM's .llvm.N suffix (new at
 * each build). A plain static of another unit is not the program's. */
static void test_names(void)
{
	struct fx f;
	put("names", "old/x.c",
	    "static int st __asm__(\"_ZN3app5STATE17h0123456789abcdefE\") = 1;\n"
	    "static int plain = 2;\n"
	    "__attribute__((visibility(\"hidden\"))) int hl(int x) __asm__(\"hl.llvm.1111\");\n"
	    "int hl(int x) { return x + 1; }\n"
	    "int main(void) { return st + plain + hl(1); }\n");
	put("names", "new/y.c",
	    "static int st __asm__(\"_ZN3app5STATE17h0123456789abcdefE\") = 1;\n"
	    "static int plain = 2;\n"
	    "int ry(void) { return st + plain; }\n");
	put("names", "new/x.c",
	    "static int st __asm__(\"_ZN3app5STATE17h0123456789abcdefE\") = 1;\n"
	    "static int plain = 2;\n"
	    "__attribute__((visibility(\"hidden\"))) int hl(int x) __asm__(\"hl.llvm.2222\");\n"
	    "int hl(int x) { return x + 2; }\n"
	    "int main(void) { return st + plain + hl(1); }\n");
	if (fx_open(&f, "names", "x.c", "y.c x.c", "", 0) == 0 && fx_plan(&f) == 0) {
		const char *rust = "_ZN3app5STATE17h0123456789abcdefE";
		struct ref r = get_ref(&f, 0, rust, 0), p = get_ref(&f, 0, "plain", 0);
		CHECK("a Rust-hashed static binds in whichever unit the program has it",
		      binds_to(&r, run_addr(&f, rust, "x.c")), "%s", said(&r));
		CHECK("a plain static of a unit the program lacks is new", binds_new(&f, &p, 0),
		      "%s", said(&p));
		int found = 0;
		for (size_t i = 0; i < f.l.nredirs; i++)
			found |= !strcmp(f.l.redirs[i].name, "hl.llvm.2222") &&
				 f.l.redirs[i].from == run_addr(&f, "hl.llvm.1111", NULL);
		CHECK("a function with another .llvm.N suffix is the running one", found,
		      "no redirect of hl.llvm.2222 to hl.llvm.1111");
	} else {
		fail("names", "%s", f.err);
	}
	fx_close(&f);
}

/* A running function too short for a jump, with padding before it (a
 * short jump to a long one there) or without. */
static void test_short_functions(void)
{
	static const char asm_fmt[] =
		"__asm__(\".pushsection .text.tiny,\\\"ax\\\",@progbits\\n\"\n"
		"        \".globl pre\\n.type pre,@function\\npre: ret\\n.size pre,1\\n\"\n"
		"        \"%s\"\n"
		"        \".globl tiny\\n.type tiny,@function\\n\"\n"
		"        \"tiny: xor %%eax,%%eax\\nret\\n.size tiny,3\\n\"\n"
		"        \".globl next\\n.type next,@function\\nnext: ret\\n.size next,1\\n\"\n"
		"        \".popsection\\n\");\n"
		"int tiny(void);\nint main(void) { return tiny(); }\n";
	char src[1024];
	struct fx f;
	snprintf(src, sizeof src, asm_fmt, "");
	put("short", "old/a.c", src);
	put("short", "new/t.c", "int tiny(void) { return 7; }\n");
	if (fx_open(&f, "short", "a.c", "t.c", "", 0) == 0) {
		fx_plan(&f);
		CHECK("a function too short for a jump, with no padding, is refused", f.rc < 0 &&
		      has(f.err, "tiny: the running function is 3 bytes long with no padding "
				 "after or before it: too short for a 5-byte jump"),
		      "%s", f.err);
	}
	fx_close(&f);
	snprintf(src, sizeof src, asm_fmt, ".byte 0xcc,0xcc,0xcc,0xcc,0xcc,0xcc,0xcc,0xcc\\n");
	put("short2", "old/a.c", src);
	put("short2", "new/t.c", "int tiny(void) { return 7; }\n");
	if (fx_open(&f, "short2", "a.c", "t.c", "", 0) == 0 && fx_plan(&f) == 0) {
		uint64_t from = run_addr(&f, "tiny", NULL);
		CHECK("with padding before it, the jump goes there", f.l.nredirs == 1 &&
		      f.l.redirs[0].from == from && f.l.redirs[0].via == from - 5 &&
		      f.l.redirs[0].pad == 8, "via %#llx pad %llu",
		      (unsigned long long)(f.l.nredirs ? f.l.redirs[0].via : 0),
		      (unsigned long long)(f.l.nredirs ? f.l.redirs[0].pad : 0));
	} else {
		fail("short function with padding", "%s", f.err);
	}
	fx_close(&f);
}

/* Constructors: a new unit's run once; one of a unit the program runs is
 * not run again, and refused if it would construct new data (C++). */
static void test_constructors(void)
{
	struct fx f;
	put("ctor", "old/a.c", data_old);
	put("ctor", "new/n.c", "int seen;\n__attribute__((constructor)) static void init_n(void) "
			       "{ seen = 1; }\n");
	if (fx_open(&f, "ctor", "a.c", "n.c", "", 0) == 0 && fx_plan(&f) == 0) {
		const struct elf_symbol *s = NULL;
		for (size_t i = 1; i < f.l.objs[0].nsymbols; i++)
			if (!strcmp(f.l.objs[0].symbols[i].name, "init_n"))
				s = &f.l.objs[0].symbols[i];
		CHECK("the constructor of a new unit is run", s && f.l.ninits == 1 &&
		      f.l.inits[0] == (uint64_t)s->shndx && f.l.inits[1] == s->value,
		      "%zu constructors", f.l.ninits);
	} else {
		fail("constructors", "%s", f.err);
	}
	fx_close(&f);

	static const char cc_old[] =
		"struct C { int v; C() : v(42) {} };\nC c1;\n"
		"int f() { return c1.v; }\nint main() { return f(); }\n";
	put("ctorcc", "old/s.cc", cc_old);
	put("ctorcc", "new/s.cc", cc_old);
	if (fx_open(&f, "ctorcc", "s.cc", "s.cc", "", 0) == 0 && fx_plan(&f) == 0)
		CHECK("the constructor of a unit the program runs is not run again",
		      f.l.ninits == 0, "%zu constructors", f.l.ninits);
	else
		fail("C++ constructors", "%s", f.err);
	fx_close(&f);
	put("ctorcc2", "old/s.cc", cc_old);
	put("ctorcc2", "new/s.cc",
	    "struct C { int v; C() : v(42) {} };\nC c1;\nC c2;\n"
	    "int f() { return c1.v + c2.v; }\nint main() { return f(); }\n");
	if (fx_open(&f, "ctorcc2", "s.cc", "s.cc", "", 0) == 0) {
		fx_plan(&f);
		CHECK("new data with a dynamic initializer in a running unit is refused",
		      f.rc < 0 && has(f.err, "c2 is new and has a dynamic initializer"), "%s",
		      f.err);
	}
	fx_close(&f);
}

/* A file whose functions the program does not run: another build; the
 * same file with one function added is new code, rightly. */
static void test_other_build(void)
{
	struct fx f;
	put("build", "old/a.c", data_old);
	put("build", "old/r.c", "int r1(int x) { return x; }\nint r2(int x) { return -x; }\n");
	put("build", "new/r.c", "int q1(int x) { return x; }\nint q2(int x) { return -x; }\n");
	if (fx_open(&f, "build", "a.c", "r.c", "", 1) == 0) {
		fx_plan(&f);
		CHECK("a file none of whose functions runs is refused as another build", f.rc < 0 &&
		      has(f.err, "q1 is not in the running program, and only 0 of the 2 "
				 "functions of its file are"),
		      "%d: %s", f.rc, f.err);
	}
	fx_close(&f);
	put("build2", "old/a.c", data_old);
	put("build2", "old/r.c", "int r1(int x) { return x; }\nint r2(int x) { return -x; }\n");
	put("build2", "new/r.c", "int r1(int x) { return x + 1; }\nint r2(int x) { return -x; }\n"
				 "int q1(int x) { return x; }\n");
	if (fx_open(&f, "build2", "a.c r.c", "r.c", "", 1) == 0 && fx_plan(&f) == 0)
		CHECK("a function added to a running file is new code", f.l.nfuncs_new == 1 &&
		      f.l.nredirs == 1 && !strcmp(f.l.redirs[0].name, "r1"),
		      "%llu new, %zu redirects", (unsigned long long)f.l.nfuncs_new, f.l.nredirs);
	else
		fail("a function added to a running file", "%s", f.err);
	fx_close(&f);
}

/* Damage no compiler makes, done to the objects in memory. */
static void test_bad_relocations(void)
{
	struct fx f;
	put("bad", "old/a.c", data_old);
	put("bad", "new/c.c", "extern int counter;\nint cf(void) { return counter; }\n");
	struct ref x;
	if (fx_open(&f, "bad", "a.c", "c.c", "", 0) == 0 && fx_plan(&f) == 0 &&
	    find_ref(&f, 0, "counter", 0, &x)) {
		struct elf_rela *r = (struct elf_rela *)x.r, keep = *r;
		fx_replan(&f);
		r->type = 9999;
		fx_plan(&f);
		CHECK("an unknown relocation type is refused with its number", f.rc < 0 &&
		      has(f.err, "relocation type 9999 is not supported"), "%s", f.err);
		fx_replan(&f);
		*r = keep;
		r->offset = f.l.objs[0].sections[x.si].size - 2;
		fx_plan(&f);
		CHECK("a relocation outside its section is refused", f.rc < 0 &&
		      has(f.err, "is outside the section"), "%s", f.err);
		*r = keep;
	} else {
		fail("bad relocations", "setup: %s", f.err);
	}
	fx_close(&f);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(tmp, sizeof tmp, "%s/rewire-resolve-XXXXXX", tmpdir);
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "test_resolve: mkdtemp failed\n");
		return 2;
	}
	test_running_data();
	test_diff_calls();
	test_newest_code();
	test_statics_by_unit();
	test_new_then_dynamic();
	test_weak();
	test_ifunc();
	test_library_objects();
	test_constants();
	test_tls();
	test_grown();
	test_common();
	test_ambiguous_units();
	test_function_statics();
	test_names();
	test_short_functions();
	test_constructors();
	test_other_build();
	test_bad_relocations();
	if (!getenv("KEEP_TMP"))
		sh("cd / && rm -rf '%s'", tmp);
	else
		printf("# files kept in %s\n", tmp);
	return 0;
}
