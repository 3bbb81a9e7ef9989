/* Type checks from debug information: what a patch may not change about
 * data and calls that exist in the running program.
 *
 * The executable's DWARF says how the running code lays out its types and
 * calls its functions; the new objects' DWARF says how the new code will.
 * Two changes would make the new code misread the program (undefined
 * behaviour instead of an error), so they are refused, naming the type or
 * function and what changed:
 *  - a struct, class or union of a unit being patched whose layout (size,
 *    members' names, offsets and types) differs from the running unit's:
 *    its instances in memory keep the old layout;
 *  - a function that exists in the program whose parameters or result
 *    changed, when callers outside the patch may call it: an external
 *    C/C++ function (callers in other units pass the old arguments). A
 *    file-local one has all its callers in its unit, which is in the
 *    patch; Rust replays every crate that uses a changed one.
 * Units are paired by their compile unit's file name; types by name within
 * it (with their namespaces), except Rust's closures (see "closures" below);
 * functions by linkage name, else name. Without debug information on
 * either side there is nothing to compare. Read with libdw (elfutils). */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/arch.h"
#include "diff/diff.h"
#include "diff/types.h"
#include "util.h"

struct entry {
	char *key;	/* "unit|T|name", "unit|F|name" */
	char *val;	/* layout or signature */
	int local;	/* functions: file-local; types: unused */
	int rust;
	char *closures;	/* types: the closures the name holds (see below), or NULL */
};

struct table {
	struct entry *e;
	size_t n, cap;
	struct rw_index bykey;	/* entries by key */
};

static const struct entry *lookup(const struct table *t, const char *key)
{
	size_t at;
	for (uint32_t i = rw_index_first(&t->bykey, rw_hash(key), &at); i != RW_INDEX_END;
	     i = rw_index_next(&t->bykey, &at))
		if (!strcmp(t->e[i].key, key))
			return &t->e[i];
	return NULL;
}

static void reindex(struct table *t)
{
	rw_index_free(&t->bykey);
	rw_index_init(&t->bykey, 2 * t->n);
	for (size_t i = 0; i < t->n; i++)
		rw_index_add(&t->bykey, rw_hash(t->e[i].key), (uint32_t)i);
}

static void add(struct table *t, const char *key, const char *val, int local, int rust)
{
	if (lookup(t, key))
		return;	/* one definition per unit is enough */
	t->e = rw_grow(t->e, &t->cap, t->n, sizeof *t->e);
	t->e[t->n++] = (struct entry){rw_strdup(key), rw_strdup(val), local, rust, NULL};
	if (t->n > rw_index_room(&t->bykey))
		reindex(t);
	else
		rw_index_add(&t->bykey, rw_hash(key), (uint32_t)(t->n - 1));
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->e[i].key);
		free(t->e[i].val);
		free(t->e[i].closures);
	}
	free(t->e);
	rw_index_free(&t->bykey);
}

/* --- describing types ------------------------------------------------------ */

struct str {
	char buf[4096];
	size_t len;
};

static void put(struct str *s, const char *text)
{
	size_t n = strlen(text);
	if (s->len + n >= sizeof s->buf)
		n = sizeof s->buf - 1 - s->len;
	memcpy(s->buf + s->len, text, n);
	s->len += n;
	s->buf[s->len] = 0;
}

static Dwarf_Die *type_of(Dwarf_Die *die, Dwarf_Die *out)
{
	Dwarf_Attribute a;
	return dwarf_attr_integrate(die, DW_AT_type, &a) ? dwarf_formref_die(&a, out) : NULL;
}

/* A type as a reference: base types and enums by name and size, pointers
 * by what they point to (by name: no recursion), aggregates by name (their
 * layout is compared on its own), arrays with their length. */
static void type_ref(Dwarf_Die *die, struct str *s, int depth)
{
	Dwarf_Die t;
	char num[32];
	if (!die || depth > 8) {
		put(s, die ? "..." : "void");
		return;
	}
	const char *name = dwarf_diename(die);
	Dwarf_Word size;
	switch (dwarf_tag(die)) {
	case DW_TAG_typedef:
	case DW_TAG_const_type:
	case DW_TAG_volatile_type:
	case DW_TAG_restrict_type:
	case DW_TAG_atomic_type:
		type_ref(type_of(die, &t), s, depth + 1);
		return;
	case DW_TAG_pointer_type:
	case DW_TAG_reference_type:
	case DW_TAG_rvalue_reference_type: {
		Dwarf_Die *to = type_of(die, &t);
		put(s, "*");
		put(s, to && dwarf_diename(to) ? dwarf_diename(to) : to ? "?" : "void");
		return;
	}
	case DW_TAG_array_type: {
		type_ref(type_of(die, &t), s, depth + 1);
		Dwarf_Die sub;
		Dwarf_Word n = 0;
		if (dwarf_child(die, &sub) == 0) {
			Dwarf_Attribute a;
			if (dwarf_attr(&sub, DW_AT_count, &a))
				dwarf_formudata(&a, &n);
			else if (dwarf_attr(&sub, DW_AT_upper_bound, &a) && dwarf_formudata(&a, &n) == 0)
				n++;
		}
		snprintf(num, sizeof num, "[%llu]", (unsigned long long)n);
		put(s, num);
		return;
	}
	}
	put(s, name ? name : "?");
	if (dwarf_aggregate_size(die, &size) == 0) {
		snprintf(num, sizeof num, ":%llu", (unsigned long long)size);
		put(s, num);
	}
}

static int member_offset(Dwarf_Die *m, Dwarf_Word *off)
{
	Dwarf_Attribute a;
	*off = 0;
	return dwarf_attr(m, DW_AT_data_member_location, &a) ? dwarf_formudata(&a, off) : 0;
}

/* size, then each member: name@offset type */
static void layout(Dwarf_Die *die, struct str *s)
{
	Dwarf_Word size = 0, off;
	Dwarf_Die m;
	char num[64];
	dwarf_aggregate_size(die, &size);
	snprintf(num, sizeof num, "%llu bytes", (unsigned long long)size);
	put(s, num);
	if (dwarf_child(die, &m) != 0)
		return;
	do {
		Dwarf_Die t;
		if (dwarf_tag(&m) != DW_TAG_member && dwarf_tag(&m) != DW_TAG_inheritance)
			continue;
		if (dwarf_hasattr(&m, DW_AT_external))
			continue;	/* a static member: not in the instances */
		member_offset(&m, &off);
		snprintf(num, sizeof num, "; %s@%llu ", dwarf_diename(&m) ? dwarf_diename(&m) : "(base)",
			 (unsigned long long)off);
		put(s, num);
		type_ref(type_of(&m, &t), s, 0);
	} while (dwarf_siblingof(&m, &m) == 0);
}

static void signature(Dwarf_Die *fn, struct str *s)
{
	Dwarf_Die t, p;
	put(s, "(");
	int n = 0;
	if (dwarf_child(fn, &p) == 0) {
		do {
			if (dwarf_tag(&p) == DW_TAG_formal_parameter) {
				if (n++)
					put(s, ", ");
				type_ref(type_of(&p, &t), s, 0);
			} else if (dwarf_tag(&p) == DW_TAG_unspecified_parameters) {
				put(s, n++ ? ", ..." : "...");
			}
		} while (dwarf_siblingof(&p, &p) == 0);
	}
	put(s, ") -> ");
	type_ref(type_of(fn, &t), s, 0);
}

/* --- closures ------------------------------------------------------------------
 *
 * rustc names a closure's captures (its environment) after its place among
 * the closures of the function that has it: weighted::{closure_env#0} is
 * the first. A closure added before an existing one renumbers it, so by
 * name alone the new first closure's environment would be compared with
 * the old first one's, a different closure: a wrong refusal.
 *
 * What makes a changed environment dangerous is an old value of it
 * reaching new code that reads it with the new layout. Such a value lives
 * on a frame of old code (a loop running the old parent function) or is
 * kept longer (a Box<dyn Fn> made by old code, an iterator adapter in a
 * struct). Either way only code compiled for that closure type reads it:
 * its body, its call shims and drop glue, and generic instances over it
 * (Map<I, F>::next, ...). Old code reaches those by their old addresses,
 * and an old address leads to new code only when the diff pairs the
 * function with a new one of the same linkage name. All of those names
 * identify the closure the same way its body's name does: Rust's legacy
 * mangling hashes the closure's path (with its number) and its generic
 * arguments (its signature and the types of its captures); v0 mangling
 * spells the path with its number.
 *
 * So a closure environment is the same type in both builds exactly when
 * its body has the same linkage name, and only then must its layout be
 * the same. In legacy mangling (rustc's default) a renumbered closure, or
 * one whose captures changed, has a new name: its code is new, and old
 * values keep running the old body, which stays. In v0 mangling the
 * renumbered closure's name is its old neighbour's: the diff pairs the two
 * bodies, so a changed layout there is refused, rightly. The same holds for
 * a type whose name holds a closure (Map<Iter<u64>, weighted::{closure_env#0}>):
 * its code is generic over the closure. The body of each closure, from
 * the subprogram "{closure#N}" beside "{closure_env#N}", gives its identity;
 * a closure whose body is not found (inlined away, in a unit not read) is
 * compared by name, as before. */

/* The next closure environment named in name from *at: its start, and
 * the end of the mention (past its generic arguments). 0 when none. */
static int next_closure(const char *name, const char **at, const char **start, const char **end)
{
	const char *p = strstr(*at, "{closure_env#");
	if (!p)
		return 0;
	*start = p;
	while (*start > name && !strchr(" ,<>()&*[;", (*start)[-1]))
		--*start;
	p += strcspn(p, "}");
	if (*p)
		p++;
	if (*p == '<')
		for (int depth = 0; *p; p++) {
			if (*p == '<')
				depth++;
			else if (*p == '>' && p[-1] != '-' && --depth == 0) {
				p++;
				break;
			}
		}
	*end = p;
	*at = p;
	return 1;
}

/* The linkage names of the bodies of the closures that name holds, one
 * per closure, "?" for one not found; NULL when it holds none. */
static char *closure_ids(const char *name, const struct table *bodies)
{
	const char *at = name, *start, *end;
	struct str ids = {{0}, 0};
	int n = 0;
	while (next_closure(name, &at, &start, &end)) {
		char body[2048];
		const char *env = strstr(start, "{closure_env#");
		/* "path::{closure_env#N}<args>" -> "path::{closure#N}<args>" */
		snprintf(body, sizeof body, "%.*s{closure#%.*s", (int)(env - start), start,
			 (int)(end - env - 13), env + 13);
		const struct entry *b = lookup(bodies, body);
		put(&ids, n++ ? " " : "");
		put(&ids, b ? b->val : "?");
	}
	return n ? rw_strdup(ids.buf) : NULL;
}

/* Whether two types of the same name may be different closures: some
 * closure of their names has a body on both sides, and not the same. */
static int other_closures(const char *a, const char *b)
{
	while (a && b && *a && *b) {
		size_t la = strcspn(a, " "), lb = strcspn(b, " ");
		if (strncmp(a, "?", la) && strncmp(b, "?", lb) && (la != lb || strncmp(a, b, la)))
			return 1;
		a += la + (a[la] == ' '), b += lb + (b[lb] == ' ');
	}
	return 0;
}

/* --- reading a file --------------------------------------------------------- */

static const char *after_bar(const char *key, int n)
{
	for (; n > 0 && key; n--)
		key = strchr(key, '|') ? strchr(key, '|') + 1 : NULL;
	return key ? key : "";
}

struct walk {
	struct table *t;
	struct table *bodies;	/* "path::{closure#N}<args>" -> linkage name */
	const char *unit;
	int rust;
	struct table *generics;	/* linkage name -> "name<args>" (a patch's objects) */
};

/* The generic instances of the objects the last types_check() read, by
 * linkage name: Rust's legacy mangling names instances alike, DWARF with
 * their arguments (the patch line tells them apart, names.c). One patch
 * at a time: the driver is one thread. */
static struct table generics;

const char *types_generic_name(const char *linkage)
{
	const struct entry *e = lookup(&generics, linkage);
	return e ? e->val : NULL;
}

static void scope_name(const char *scope, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s", scope, scope[0] ? "::" : "", name);
}

static void walk(struct walk *w, Dwarf_Die *parent, const char *scope, int depth)
{
	Dwarf_Die d;
	if (depth > 16 || dwarf_child(parent, &d) != 0)
		return;
	do {
		const char *name = dwarf_diename(&d);
		char key[2048], qual[1024];
		struct str s = {{0}, 0};
		int tag = dwarf_tag(&d);
		if (tag == DW_TAG_namespace || tag == DW_TAG_module) {
			scope_name(scope, name ? name : "(anonymous)", qual, sizeof qual);
			walk(w, &d, qual, depth + 1);
			continue;
		}
		if ((tag == DW_TAG_structure_type || tag == DW_TAG_class_type ||
		     tag == DW_TAG_union_type) && name && !dwarf_hasattr(&d, DW_AT_declaration)) {
			scope_name(scope, name, qual, sizeof qual);
			layout(&d, &s);
			snprintf(key, sizeof key, "%s|T|%s", w->unit, qual);
			add(w->t, key, s.buf, 0, w->rust);
			walk(w, &d, qual, depth + 1);	/* nested types, Rust's methods */
			continue;
		}
		if (tag == DW_TAG_subprogram && w->rust && name && !strncmp(name, "{closure#", 9)) {
			Dwarf_Attribute a;
			const char *link = dwarf_formstring(dwarf_attr_integrate(&d, DW_AT_linkage_name, &a));
			scope_name(scope, name, qual, sizeof qual);
			if (link)
				add(w->bodies, qual, link, 0, 1);
		}
		if (tag == DW_TAG_subprogram && !dwarf_hasattr(&d, DW_AT_declaration) &&
		    dwarf_hasattr(&d, DW_AT_low_pc)) {
			Dwarf_Attribute a;
			const char *link = dwarf_formstring(dwarf_attr_integrate(&d, DW_AT_linkage_name, &a));
			const char *fname = link ? link : dwarf_diename(&d);
			if (!fname)
				continue;
			if (w->generics && w->rust && link && name && strchr(name, '<'))
				add(w->generics, link, name, 0, 1);
			signature(&d, &s);
			snprintf(key, sizeof key, "%s|F|%s", w->unit, fname);
			add(w->t, key, s.buf, !dwarf_hasattr_integrate(&d, DW_AT_external), w->rust);
		}
	} while (dwarf_siblingof(&d, &d) == 0);
}

static int wanted(const char *unit, char *const *units, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(units[i], unit))
			return 1;
	return !units;
}

/* A file's DWARF, through libdwfl and not bare libdw: an object file's
 * DWARF refers to its strings through relocations, which it applies. The
 * file is opened at once (and stays open), its compile units are indexed
 * when first needed: the program's side of the checks is kept across a
 * session's patches, and each check walks only the units it compares. */
struct unit_die {
	char *unit;		/* "body.c"; rustc's "src/main.rs/@/cgu" -> "main.rs#cgu" */
	Dwarf_Off hdr;		/* its header in .debug_info */
	Dwarf_Off off;		/* its compile unit's DIE */
	int rust;
};

/* Units by the offset of their header, sorted. */
struct unit_filter {
	const uint64_t *hdr;
	size_t n;
};

static int in_filter(const struct unit_filter *only, Dwarf_Off hdr)
{
	size_t lo = 0, hi = only ? only->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (only->hdr[mid] == hdr)
			return 1;
		if (only->hdr[mid] < hdr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return !only;
}

/* Is offset off of .debug_info (data, size) inside a unit of only? */
static int in_units(const struct unit_filter *only, const uint8_t *data, uint64_t size, uint64_t off)
{
	size_t lo = 0, hi = only ? only->n : 0;
	if (!only)
		return 1;
	while (lo < hi) {	/* the last unit starting at or before off */
		size_t mid = lo + (hi - lo) / 2;
		if (only->hdr[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return 0;
	uint64_t at = only->hdr[lo - 1];
	uint32_t len32;
	if (at + 4 > size)
		return 0;
	memcpy(&len32, data + at, 4);
	uint64_t len = len32;
	if (len32 == 0xffffffff && at + 12 <= size) {
		memcpy(&len, data + at + 4, 8);
		len += 8;
	}
	return off - at < 4 + len;
}

struct dwarf_file {
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Dwarf *dw;
	Elf *elf;		/* df_open_object: the mapping's ELF, and the mapping */
	void *image;
	size_t imagesize;
	const struct unit_filter *only;	/* the units relocated (NULL: all) */
	int indexed;
	struct unit_die *units;
	size_t nunits, capunits;
};

/* Names of compile units, owned. */
struct names {
	char **v;
	size_t n, cap;
};

struct types_prog {
	struct dwarf_file file;
	struct table old;	/* what the units read so far say */
	struct names read;	/* those units */
};

static void df_close(struct dwarf_file *f);

static int df_open(struct dwarf_file *f, const char *path)
{
	static const Dwfl_Callbacks cb = {.find_elf = dwfl_build_id_find_elf,
					  .find_debuginfo = dwfl_standard_find_debuginfo,
					  .section_address = dwfl_offline_section_address};
	memset(f, 0, sizeof *f);
	f->dwfl = dwfl_begin(&cb);
	f->mod = f->dwfl ? dwfl_report_offline(f->dwfl, path, path, -1) : NULL;
	return f->mod && dwfl_report_end(f->dwfl, NULL, NULL) == 0 ? 0 : -1;
}

/* In the private mapping of an object, its section header table cut to
 * the debug sections and the section names: libdw looks at every section
 * by name, thousands in a crate (a section per function). Relocation
 * sections go too: the mapping is relocated already. Left whole when it
 * is not as expected. */
static void keep_debug_sections(void *map, size_t size)
{
	Elf64_Ehdr *eh = map;
	if (size < sizeof *eh || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff >= size)
		return;
	Elf64_Shdr *sh = (Elf64_Shdr *)((uint8_t *)map + eh->e_shoff);
	size_t n = eh->e_shnum, strndx = eh->e_shstrndx;
	if (size - eh->e_shoff < sizeof *sh)
		return;
	if (n == 0)
		n = sh[0].sh_size;	/* more than 0xff00 sections: in the first */
	if (strndx == SHN_XINDEX)
		strndx = sh[0].sh_link;
	if (!n || n > (size - eh->e_shoff) / sizeof *sh || !strndx || strndx >= n ||
	    sh[strndx].sh_offset > size || sh[strndx].sh_size > size - sh[strndx].sh_offset)
		return;
	const char *names = (const char *)map + sh[strndx].sh_offset;
	size_t names_size = sh[strndx].sh_size, k = 1;
	Elf64_Shdr strtab = sh[strndx];
	for (size_t i = 1; i < n; i++)
		if (i != strndx && sh[i].sh_type != SHT_RELA && sh[i].sh_type != SHT_REL &&
		    sh[i].sh_name < names_size && !strncmp(names + sh[i].sh_name, ".debug_", 7)) {
			sh[k] = sh[i];
			sh[k++].sh_link = 0;
		}
	sh[k] = strtab;
	memset(&sh[0], 0, sizeof sh[0]);
	eh->e_shnum = (Elf64_Half)(k + 1);
	eh->e_shstrndx = (Elf64_Half)k;
}

/* A new object's DWARF, relocated by rewire: libdwfl would relocate every
 * debug section (line tables, ranges, locations: most of the time of a
 * check on a big object), when the walk reads only the units of changed
 * code in .debug_info, and the strings and abbreviations those point to
 * through their relocations. The file is mapped privately and the
 * relocations of those units applied to the mapping (the pages written
 * are copied, no others): each field gets its symbol's offset in its
 * section plus the addend, which is what an offset into another debug
 * section is. o: the object as the diff read it. -1: not so simple
 * (compressed debug sections): the caller takes libdwfl. */
static int df_open_object(struct dwarf_file *f, const struct elf_object *o,
			  const struct unit_filter *only)
{
	const struct elf_section *info = NULL;
	memset(f, 0, sizeof *f);
	for (size_t i = 1; i < o->nsections; i++) {
		const struct elf_section *s = &o->sections[i];
		if (!strncmp(s->name, ".debug_", 7) && (s->flags & SHF_COMPRESSED))
			return -1;
		if ((!strcmp(s->name, ".debug_str_offsets") || !strcmp(s->name, ".debug_addr")) &&
		    s->nrelas)
			return -1;	/* DWARF 5's indirect strings: relocated there too */
		if (!strcmp(s->name, ".debug_info"))
			info = s;
	}
	int fd = info && info->data ? open(o->path, O_RDONLY | O_CLOEXEC) : -1;
	void *map = fd < 0 ? MAP_FAILED : mmap(NULL, o->mapsize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fd >= 0)
		close(fd);
	if (map == MAP_FAILED)
		return -1;
	f->image = map, f->imagesize = o->mapsize, f->only = only;
	uint8_t *at = (uint8_t *)map + (info->data - (const uint8_t *)o->map);
	for (size_t i = 0; i < info->nrelas; i++) {
		const struct elf_rela *r = &info->relas[i];
		const struct elf_symbol *s = &o->symbols[r->sym];
		uint64_t v = (s->type == STT_SECTION ? 0 : s->value) + (uint64_t)r->addend;
		int size = arch_field_size(r->type);
		if (size > 0 && size <= 8 && r->offset + (uint64_t)size <= info->size &&
		    in_units(only, info->data, info->size, r->offset))
			memcpy(at + r->offset, &v, (size_t)size);	/* little-endian */
	}
	keep_debug_sections(map, o->mapsize);
	f->elf = elf_memory((char *)map, o->mapsize);
	f->dw = f->elf ? dwarf_begin_elf(f->elf, DWARF_C_READ, NULL) : NULL;
	if (f->dw)
		return 0;
	df_close(f);
	return -1;
}

static void df_close(struct dwarf_file *f)
{
	for (size_t i = 0; i < f->nunits; i++)
		free(f->units[i].unit);
	free(f->units);
	if (f->elf) {
		if (f->dw)
			dwarf_end(f->dw);
		elf_end(f->elf);
	}
	if (f->image)
		munmap(f->image, f->imagesize);
	if (f->dwfl)
		dwfl_end(f->dwfl);
	memset(f, 0, sizeof *f);
}

static void add_unit(struct dwarf_file *f, Dwarf_Die *cu, Dwarf_Off hdr, Dwarf_Off off)
{
	const char *name = dwarf_diename(cu), *at = name ? strstr(name, "/@/") : NULL;
	char path[512];
	Dwarf_Word lang = 0;
	Dwarf_Attribute a;
	if (at)
		snprintf(path, sizeof path, "%.*s#%s", (int)(at - name), name, at + 3);
	if (dwarf_attr(cu, DW_AT_language, &a))
		dwarf_formudata(&a, &lang);
	f->units = rw_grow(f->units, &f->capunits, f->nunits, sizeof *f->units);
	f->units[f->nunits++] = (struct unit_die){rw_strdup(rw_basename(at ? path : name ? name : "")),
						  hdr, off, lang == DW_LANG_Rust};
}

/* 0, or -1 when the file has no DWARF. */
static int df_index(struct dwarf_file *f)
{
	Dwarf_Addr bias;
	if (!f->indexed && (f->mod || f->dw)) {
		f->indexed = 1;
		if (!f->dw)
			f->dw = dwfl_module_getdwarf(f->mod, &bias);
		Dwarf_Off off = 0, next;
		size_t hsize;
		while (f->dw && dwarf_nextcu(f->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
			Dwarf_Die cu;
			if (in_filter(f->only, off) && dwarf_offdie(f->dw, off + hsize, &cu))
				add_unit(f, &cu, off, off + hsize);
			off = next;
		}
	}
	return f->dw ? 0 : -1;
}

static void names_add(struct names *l, const char *name)
{
	l->v = rw_grow(l->v, &l->cap, l->n, sizeof *l->v);
	l->v[l->n++] = rw_strdup(name);
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* The types and functions of f's compile units named in units (all when
 * units is NULL) and in only (all when NULL); seen (when not NULL) gets
 * the names of those read. */
static void read_units(struct dwarf_file *f, char *const *units, size_t nunits,
		       const struct unit_filter *only, struct table *t, struct names *seen,
		       struct table *gen)
{
	size_t first = t->n;
	struct table bodies = {0};
	for (size_t i = 0; i < f->nunits; i++) {
		const struct unit_die *u = &f->units[i];
		Dwarf_Die cu;
		if (!wanted(u->unit, units, nunits) || !in_filter(only, u->hdr) ||
		    !dwarf_offdie(f->dw, u->off, &cu))
			continue;
		struct walk w = {t, &bodies, u->unit, u->rust, gen};
		walk(&w, &cu, "", 0);
		if (seen)
			names_add(seen, u->unit);
	}
	/* A closure's body may be in another unit than its environment. */
	for (size_t i = first; i < t->n; i++)
		if (t->e[i].rust && strstr(t->e[i].key, "|T|"))
			t->e[i].closures = closure_ids(after_bar(t->e[i].key, 2), &bodies);
	table_free(&bodies);
}

struct types_prog *types_prog_open(const char *exe)
{
	struct types_prog *p = rw_calloc(1, sizeof *p);
	if (df_open(&p->file, exe) == 0)
		return p;
	types_prog_free(p);
	return NULL;
}

void types_prog_free(struct types_prog *p)
{
	if (p) {
		df_close(&p->file);
		table_free(&p->old);
		names_free(&p->read);
	}
	free(p);
}

/* --- comparing ---------------------------------------------------------------- */

/* Member i of a layout string ("N bytes; name@off type; ..."): its name
 * and the rest ("off type"), or 0 past the last. */
static int member_at(const char *val, int i, const char **name, size_t *nlen, const char **rest,
		     size_t *rlen)
{
	const char *p = val;
	for (int k = 0; k <= i; k++) {
		p = strstr(p, "; ");
		if (!p)
			return 0;
		p += 2;
	}
	const char *at = strchr(p, '@'), *end = strstr(p, "; ");
	if (!end)
		end = p + strlen(p);
	if (!at || at > end)
		return 0;
	*name = p, *nlen = (size_t)(at - p), *rest = at + 1, *rlen = (size_t)(end - at - 1);
	return 1;
}

static int has_member(const char *val, const char *name, size_t len)
{
	const char *n, *r;
	size_t nl, rl;
	for (int i = 0; member_at(val, i, &n, &nl, &r, &rl); i++)
		if (nl == len && !memcmp(n, name, len))
			return 1;
	return 0;
}

/* The same layout with members renamed: same size, and the same offsets
 * and types in the same order; a name that differs is new on one side
 * and gone on the other (a rename, not two members swapped). A running
 * instance reads the same under the new names (a closure's capture of a
 * renamed local is such a member). */
static int only_renamed(const char *o, const char *n)
{
	const char *on, *or, *nn, *nr;
	size_t onl, orl, nnl, nrl;
	size_t ohead = strcspn(o, ";"), nhead = strcspn(n, ";");
	if (ohead != nhead || memcmp(o, n, ohead))
		return 0;
	int i = 0;
	for (; member_at(o, i, &on, &onl, &or, &orl); i++) {
		if (!member_at(n, i, &nn, &nnl, &nr, &nrl) || orl != nrl || memcmp(or, nr, orl))
			return 0;
		if ((onl != nnl || memcmp(on, nn, onl)) &&
		    (has_member(n, on, onl) || has_member(o, nn, nnl)))
			return 0;
	}
	return !member_at(n, i, &nn, &nnl, &nr, &nrl);
}

static int compare(const struct table *old, const struct table *new)
{
	for (size_t i = 0; i < new->n; i++) {
		const struct entry *n = &new->e[i], *o = lookup(old, n->key);
		const char *what = after_bar(n->key, 2);
		char unit[256];	/* shown without a Rust unit's "#<codegen unit>" */
		snprintf(unit, sizeof unit, "%.*s", (int)strcspn(n->key, "|#"), n->key);
		if (!o || !strcmp(o->val, n->val))
			continue;
		if (o->closures && n->closures && other_closures(o->closures, n->closures))
			continue;	/* not the same closure: see "closures" above */
		if (strstr(n->key, "|T|") && only_renamed(o->val, n->val))
			continue;
		if (strstr(n->key, "|T|"))
			return rw_fail("type %s (%s) changed its layout (from {%s} to {%s}): its "
				       "instances in the running program keep the old one (restart the "
				       "program for this change)", rw_demangle(what), unit, o->val, n->val);
		if (n->local || n->rust)
			continue;
		return rw_fail("function %s (%s) changed its signature (from %s to %s): callers "
			       "outside the patch would pass the old arguments (restart the program "
			       "for this change)", rw_demangle(what), unit, o->val, n->val);
	}
	return 0;
}

/* Has l the name? */
static int names_has(const struct names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return 1;
	return 0;
}

/* The units of object i the diff says describe changed code (NULL: all). */
static const struct unit_filter *filter_of(const struct diff_set *set, size_t i, const char *path,
					   struct unit_filter *out)
{
	if (!set || i >= set->n || strcmp(set->v[i].path, path) || set->v[i].all_units)
		return NULL;
	*out = (struct unit_filter){set->v[i].units, set->v[i].nunits};
	return out;
}

int types_check(struct types_prog *prog, char *const *objs, size_t nobjs, const struct diff_set *set)
{
	struct table new = {0};
	struct names units = {0}, missing = {0};
	table_free(&generics);
	memset(&generics, 0, sizeof generics);
	for (size_t i = 0; i < nobjs; i++) {
		struct dwarf_file f;
		struct unit_filter only;
		const struct unit_filter *filter = filter_of(set, i, objs[i], &only);
		const struct elf_object *o = set && i < set->n && !strcmp(set->v[i].path, objs[i]) ?
					     set->v[i].obj : NULL;
		if (((o && df_open_object(&f, o, filter) == 0) || df_open(&f, objs[i]) == 0) &&
		    df_index(&f) == 0)
			read_units(&f, NULL, 0, filter, &new, &units, &generics);
		df_close(&f);
	}
	int rc = 0;
	if (new.n && prog && df_index(&prog->file) == 0) {
		/* The program's units are read once, when a patch first has them. */
		for (size_t i = 0; i < units.n; i++)
			if (!names_has(&prog->read, units.v[i]) && !names_has(&missing, units.v[i]))
				names_add(&missing, units.v[i]);
		if (missing.n)
			read_units(&prog->file, missing.v, missing.n, NULL, &prog->old, &prog->read, NULL);
		rc = compare(&prog->old, &new);
	}
	names_free(&units);
	names_free(&missing);
	table_free(&new);
	return rc;
}

/* --- what cannot be checked -------------------------------------------------- */

/* The file names of path's compile units (a Rust unit by its source,
 * "src/main.rs/@/<codegen unit>" → main.rs), or -1 without DWARF. */
static int unit_names(const char *path, struct names *names)
{
	struct dwarf_file f;
	Dwarf_Addr bias;
	Dwarf *dw = df_open(&f, path) == 0 ? dwfl_module_getdwarf(f.mod, &bias) : NULL;
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (dw && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		const char *name;
		if (dwarf_offdie(dw, off + hsize, &cu) && (name = dwarf_diename(&cu))) {
			const char *at = strstr(name, "/@/");
			char unit[512];
			snprintf(unit, sizeof unit, "%.*s", at ? (int)(at - name) : (int)strlen(name), name);
			names_add(names, rw_basename(unit));
		}
		off = next;
	}
	df_close(&f);
	return dw ? 0 : -1;
}

size_t types_units_unchecked(const char *exe, char *const *srcs, size_t nsrcs, const char **first)
{
	struct names names = {0};
	size_t missing = 0;
	unit_names(exe, &names);
	for (size_t i = 0; i < nsrcs; i++) {
		size_t k = 0;
		while (k < names.n && strcmp(names.v[k], rw_basename(srcs[i])))
			k++;
		if (k == names.n && !missing++)
			*first = srcs[i];
	}
	names_free(&names);
	return missing;
}
