/* Plan a patch: what to load, what every relocation binds to, which entry
 * jumps to write.
 *
 * Load by section, redirect by function. Every executable section of the
 * new objects is loaded whole (gcc and clang resolve calls between
 * functions of one .text without relocations, so code only moves by
 * section), with .eh_frame for unwinding; other sections are loaded when a
 * loaded section refers to something new in them.
 *
 * A reference binds, in order, to:
 *  - the running program's data: globals, file statics, function statics
 *    and thread-locals that exist keep their storage (found by name; file
 *    statics within their translation unit);
 *  - for an existing function, its newest version when called, its
 *    original address when its address is taken (so pointers compare
 *    equal across patches and old pointers lead to the new code);
 *  - the new objects' own sections (new functions, new data, literals);
 *  - a symbol the agent finds in the process (libc and other libraries).
 * Nothing found: the patch is refused with the symbol's name.
 *
 * GNU as writes references to file-local symbols as section + addend. For
 * data, the section is mapped as a whole onto the running storage when all
 * its symbols that exist there sit at the same distance (the layout did not
 * change); otherwise each reference is mapped to the symbol it points into,
 * and refused when that is ambiguous. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linker.h"
#include "diff/diff.h"
#include "util.h"

struct running {
	int found;
	uint8_t kind;
	uint64_t addr, orig, size;	/* functions: size is the room at addr (newest) */
	uint64_t orig_room;		/* functions: room at orig, and */
	uint64_t pad;			/* bytes of padding before orig */
};

/* How a data section of a new object relates to the running storage. */
struct seccls {
	int done;
	int nexist, nnew, consistent;
	int64_t delta;
	const char *grew;	/* an existing symbol the new object makes larger */
	uint64_t grew_from, grew_to;
};

static const char *scope_of(const struct elf_symbol *s)
{
	return s->bind == STB_LOCAL ? s->file : NULL;
}

/* A Rust symbol name carries a hash of its crate and item: unique in the
 * program whatever codegen unit (STT_FILE scope) holds it, and codegen
 * units are repartitioned as code changes. */
static int is_rust_hashed(const char *name)
{
	size_t len = rw_name_len(name);
	if (!strncmp(name, "_R", 2))
		return 1;
	if (strncmp(name, "_ZN", 3) || len < 20 || name[len - 1] != 'E' ||
	    strncmp(name + len - 20, "17h", 3))
		return 0;
	for (size_t i = len - 17; i < len - 1; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

static int find_registry(struct link *l, const char *name, const char *file, struct running *r)
{
	const char *scope = file && !is_rust_hashed(name) ? rw_basename(file) : NULL;
	for (size_t i = l->proc->nreg; i-- > 0;) {
		struct msg_regsym *g = &l->proc->reg[i];
		if (rw_name_eq(g->name, name) && (scope ? !strcmp(g->scope, scope) :
						  !g->scope[0] || is_rust_hashed(name))) {
			*r = (struct running){1, g->kind, g->addr, g->orig, g->size, g->size, 0};
			return 1;
		}
	}
	return 0;
}

/* Padding before the function at addr: up to the end of the previous
 * symbol when sizes tell, else what looks like assembler padding. */
static uint64_t padding_before(const struct elf_image *exe, uint64_t addr)
{
	uint64_t pad = addr - elf_image_prev_end(exe, addr);
	for (size_t i = 1; !pad && i < exe->nsections; i++) {
		const struct elf_section *s = &exe->sections[i];
		if (s->data && (s->flags & SHF_EXECINSTR) && addr > s->addr && addr <= s->addr + s->size) {
			uint64_t avail = addr - s->addr < 32 ? addr - s->addr : 32;
			pad = arch_padding_before(s->data + (addr - s->addr), avail);
		}
	}
	return pad;
}

/* The executable's symbol for name up to a ".llvm.N" suffix (either side
 * may have one, with any number): in file's unit, or unique. */
static const struct elf_symbol *find_llvm_alias(struct link *l, const char *name, const char *file)
{
	struct elf_image *exe = l->proc->exe;
	size_t len = rw_name_len(name), nsuffixed;
	const struct elf_symbol *found = NULL;
	if (len != strlen(name)) {
		char *bare = rw_malloc(len + 1);
		memcpy(bare, name, len);
		bare[len] = 0;
		found = elf_image_find(exe, bare, file);
		free(bare);
		if (found)
			return found;
	}
	const uint32_t *suffixed = elf_image_suffixed(exe, &nsuffixed);
	for (size_t i = 0; i < nsuffixed; i++) {
		const struct elf_symbol *s = &exe->symbols[suffixed[i]];
		if (!rw_name_eq(s->name, name) || s->shndx == SHN_UNDEF ||
		    (file && s->file && strcmp(rw_basename(s->file), rw_basename(file))))
			continue;
		if (found)
			return NULL;	/* ambiguous */
		found = s;
	}
	return found;
}

/* The running program's symbol name (file-local to file when file is not
 * NULL): registry of earlier patches first, then the executable. */
static int find_running(struct link *l, const char *name, const char *file, struct running *r)
{
	memset(r, 0, sizeof *r);
	if (!name[0])
		return 0;
	const struct elf_image *exe = l->proc->exe;
	const struct elf_symbol *s = elf_image_find(exe, name, file);
	if (!s && file && is_rust_hashed(name))
		s = elf_image_find(exe, name, NULL);
	if (!s)
		s = find_llvm_alias(l, name, is_rust_hashed(name) ? NULL : file);
	uint64_t bias = l->proc->mods[l->proc->target].base;
	if (find_registry(l, name, file, r)) {
		/* Patched before: the jump at the original entry needs the
		 * original's room, not the newest version's. */
		if (r->kind == RW_KIND_FUNC && s && s->type == STT_FUNC && bias + s->value == r->orig) {
			uint64_t next = elf_image_next_boundary(exe, s->value);
			r->orig_room = next > s->value ? next - s->value : s->size;
			r->pad = padding_before(exe, s->value);
		}
		return 1;
	}
	if (!s || s->type == STT_GNU_IFUNC)
		return 0;
	r->found = 1;
	if (s->type == STT_TLS) {
		r->kind = RW_KIND_TLS;
		r->addr = r->orig = s->value;
	} else if (s->type == STT_FUNC) {
		r->kind = RW_KIND_FUNC;
		r->addr = r->orig = bias + s->value;
		uint64_t next = elf_image_next_boundary(exe, s->value);
		r->size = r->orig_room = next > s->value ? next - s->value : s->size;
		r->pad = padding_before(exe, s->value);
	} else {
		r->kind = RW_KIND_DATA;
		r->addr = r->orig = bias + s->value;
		r->size = s->size;
	}
	return 1;
}

/* The running counterpart of a symbol of the new objects: by name in its
 * scope, or for a renumbered static local by the pairing statics.c made. */
static int find_running_sym(struct link *l, const struct elf_symbol *s, struct running *r)
{
	int is_new = 0;
	const char *name = link_paired_name(l, s, &is_new);
	if (is_new) {
		memset(r, 0, sizeof *r);
		return 0;
	}
	return find_running(l, name ? name : s->name, scope_of(s), r);
}

static int is_lib(const struct link *l, uint32_t oi)
{
	return l->lib && l->lib[oi];
}

int link_is_changed(struct link *l, uint32_t oi, const struct elf_symbol *s)
{
	if (is_lib(l, oi))
		return 0;	/* library code is new or the program's, never a change */
	return l->diff ? diff_set_changed(l->diff, oi, &l->objs[oi], s) : 1;
}

int link_how_changed(const struct link *l, const struct redirect *r)
{
	const struct elf_object *o = &l->objs[r->obj];
	const uint32_t *list;
	size_t n = elf_object_section_symbols(o, r->sec, &list);
	for (size_t k = 0; k < n; k++)
		if (o->symbols[list[k]].type == STT_FUNC && !strcmp(o->symbols[list[k]].name, r->name))
			return link_is_changed((struct link *)l, r->obj, &o->symbols[list[k]]);
	return 1;
}

static int is_const_data(const struct elf_section *s);

int link_is_running_data(struct link *l, uint32_t oi, const struct elf_symbol *s)
{
	struct running r;
	const struct elf_object *o = &l->objs[oi];
	if (!find_running_sym(l, s, &r) || r.kind == RW_KIND_FUNC)
		return 0;
	return s->shndx >= o->nsections || !is_const_data(&o->sections[s->shndx]) ||
	       !link_is_changed(l, oi, s);
}

int link_running_storage(struct link *l, uint32_t oi, const struct elf_symbol *s, uint64_t *addr)
{
	struct running r;
	if (!link_is_running_data(l, oi, s) || !find_running_sym(l, s, &r) || r.kind != RW_KIND_DATA)
		return 0;
	*addr = r.addr;
	return 1;
}

static int is_exec(const struct elf_section *s)
{
	return (s->flags & SHF_ALLOC) && (s->flags & SHF_EXECINSTR);
}

/* Constants have no state to keep: new code uses the new ones. One that
 * did not change binds to the running copy, so that its address stays
 * what the program knows (a vtable, a typeinfo compared by address). */
static int is_const_data(const struct elf_section *s)
{
	return elf_section_is_const(s);
}

static int is_eh_frame(const struct elf_section *s)
{
	return (s->flags & SHF_ALLOC) && (!strcmp(s->name, ".eh_frame") || s->type == SHT_X86_64_UNWIND);
}

static int is_init_array(const struct elf_section *s)
{
	return s->type == SHT_INIT_ARRAY || !strncmp(s->name, ".init_array", 11);
}

/* Sections whose contents only the static linker uses. */
static int is_loadable(const struct elf_section *s)
{
	return (s->flags & SHF_ALLOC) && s->type != SHT_GROUP && !is_init_array(s) &&
	       s->type != SHT_FINI_ARRAY && s->type != SHT_PREINIT_ARRAY && s->type != SHT_NOTE;
}

/* --- the work list of sections to load ------------------------------------ */

struct work {
	uint32_t *items;	/* obj << 16 | sec */
	size_t n, cap;
};

static void push_work(struct work *w, uint32_t oi, uint16_t si)
{
	w->items = rw_grow(w->items, &w->cap, w->n, sizeof *w->items);
	w->items[w->n++] = oi << 16 | si;
}

static int load_section(struct link *l, struct work *w, uint32_t oi, uint16_t si)
{
	struct elf_object *o = &l->objs[oi];
	struct elf_section *s = &o->sections[si];
	struct loaded *ld = &l->secs[oi][si];
	if (ld->load)
		return 0;
	if (!is_loadable(s))
		return rw_fail("%s: section %s is referenced by the code but cannot be loaded",
			       o->path, s->name);
	if (s->flags & SHF_TLS)
		return rw_fail("%s: new thread-local storage in %s: a patch cannot add thread-locals "
			       "(their blocks are allocated when threads start)", o->path, s->name);
	ld->load = is_exec(s) ? SEG_CODE : is_eh_frame(s) || !(s->flags & SHF_WRITE) ? SEG_RO : SEG_RW;
	/* Decoded before its relocations are resolved: the scan adds some. */
	if (is_exec(s) && s->data && s->size)
		ld->starts = arch_scan_code(o, si);
	push_work(w, oi, si);
	return 0;
}

static int32_t add_dyn(struct link *l, const char *name, int weak)
{
	for (size_t i = 0; i < l->ndyn; i++)
		if (!strcmp(l->dyn[i].name, name)) {
			l->dyn[i].weak &= weak;
			return (int32_t)i;
		}
	l->dyn = rw_grow(l->dyn, &l->capdyn, l->ndyn, sizeof *l->dyn);
	l->dyn[l->ndyn] = (struct dynsym){.name = name, .weak = weak, .stub = -1};
	return (int32_t)l->ndyn++;
}

static void index_globals(struct link *l)
{
	size_t n = 0;
	for (uint32_t i = 0; i < l->nobjs; i++)
		n += l->objs[i].nsymbols;
	l->globals = rw_malloc(n * sizeof *l->globals);
	rw_index_init(&l->gdefs, n);
	n = 0;
	for (uint32_t i = 0; i < l->nobjs; i++)
		for (size_t j = 1; j < l->objs[i].nsymbols; j++) {
			const struct elf_symbol *s = &l->objs[i].symbols[j];
			if (s->bind == STB_LOCAL || s->shndx == SHN_UNDEF || !s->name[0])
				continue;
			rw_index_add(&l->gdefs, rw_hash(s->name), (uint32_t)n);
			l->globals[n++] = (uint64_t)i << 32 | j;
		}
}

/* A global defined by one of the new objects (libs: of the library
 * objects, else of the others): the first in object and symbol order. */
static int find_global_def(struct link *l, const char *name, int libs, uint32_t *oi,
			   const struct elf_symbol **sym)
{
	uint32_t best = RW_INDEX_END;
	size_t at;
	if (!l->globals)
		index_globals(l);
	for (uint32_t g = rw_index_first(&l->gdefs, rw_hash(name), &at); g != RW_INDEX_END;
	     g = rw_index_next(&l->gdefs, &at)) {
		uint32_t i = (uint32_t)(l->globals[g] >> 32);
		if (g < best && is_lib(l, i) == libs &&
		    !strcmp(l->objs[i].symbols[(uint32_t)l->globals[g]].name, name))
			best = g;
	}
	if (best == RW_INDEX_END)
		return 0;
	*oi = (uint32_t)(l->globals[best] >> 32);
	*sym = &l->objs[*oi].symbols[(uint32_t)l->globals[best]];
	return 1;
}

static int bind_running(struct link *l, const char *name, const struct running *r,
			const struct elf_symbol *s, int call, struct target *t)
{
	if (r->kind == RW_KIND_TLS) {
		t->bind = BIND_TLS;
		t->mod = (uint32_t)l->proc->target;
		t->value = r->addr;
		return 0;
	}
	if (r->kind == RW_KIND_DATA && s && s->size > r->size && r->size)
		return rw_fail("%s: data grew from %llu to %llu bytes: the running storage cannot hold "
			       "it (restart the program for this change)", rw_demangle(name),
			       (unsigned long long)r->size, (unsigned long long)s->size);
	t->bind = BIND_ADDR;
	t->is_func = r->kind == RW_KIND_FUNC;
	t->value = r->kind == RW_KIND_FUNC && !call ? r->orig : r->addr;
	return 0;
}

/* A symbol the new objects define. */
static int bind_defined(struct link *l, struct work *w, uint32_t oi, const struct elf_symbol *s,
			int call, struct target *t)
{
	struct elf_object *o = &l->objs[oi];
	struct running r;
	if (s->shndx == SHN_ABS) {
		t->bind = BIND_ADDR;
		t->value = s->value;
		return 0;
	}
	if (s->shndx == SHN_COMMON || s->shndx >= o->nsections)
		return rw_fail("%s: %s is a common symbol: compile with -fno-common", o->path,
			       rw_demangle(s->name));
	const struct elf_section *sec = &o->sections[s->shndx];
	find_running_sym(l, s, &r);
	t->size = s->size;
	if (s->type == STT_TLS) {
		if (!r.found || r.kind != RW_KIND_TLS)
			return rw_fail("%s: %s: a patch cannot add a thread-local variable", o->path,
				       rw_demangle(s->name));
		return bind_running(l, s->name, &r, s, call, t);
	}
	if (is_exec(sec)) {
		t->is_func = 1;
		if (r.found && r.kind == RW_KIND_FUNC && (!call || !link_is_changed(l, oi, s)))
			return bind_running(l, s->name, &r, s, call, t);
	} else if (r.found && r.kind == RW_KIND_DATA &&
		   (!is_const_data(sec) || !link_is_changed(l, oi, s))) {
		return bind_running(l, s->name, &r, s, call, t);
	}
	t->bind = BIND_SECTION;
	t->obj = oi;
	t->sec = s->shndx;
	t->value = s->value;
	return load_section(l, w, oi, s->shndx);
}

static int bind_undefined(struct link *l, struct work *w, uint32_t oi, const struct elf_symbol *s,
			  int call, struct target *t)
{
	uint32_t di;
	const struct elf_symbol *def;
	struct running r;
	if (find_global_def(l, s->name, 0, &di, &def))
		return bind_defined(l, w, di, def, call, t);
	if (find_running(l, s->name, NULL, &r))
		return bind_running(l, s->name, &r, NULL, call, t);
	if (find_global_def(l, s->name, 1, &di, &def))
		return bind_defined(l, w, di, def, call, t);
	if (!strcmp(s->name, "_GLOBAL_OFFSET_TABLE_")) {
		t->bind = BIND_GOTBASE;
		return 0;
	}
	t->bind = BIND_DYN;
	t->value = (uint64_t)add_dyn(l, s->name, s->bind == STB_WEAK);
	t->is_func = call;
	return 0;
}

/* --- references by section + addend ---------------------------------------- */

static struct seccls *classify(struct link *l, uint32_t oi, uint16_t si, struct seccls *cache)
{
	struct seccls *c = &cache[si];
	if (c->done)
		return c;
	struct elf_object *o = &l->objs[oi];
	int tls = (o->sections[si].flags & SHF_TLS) != 0;
	c->done = c->consistent = 1;
	const uint32_t *list;
	size_t n = elf_object_section_symbols(o, si, &list);
	for (size_t k = 0; k < n; k++) {
		const struct elf_symbol *s = &o->symbols[list[k]];
		struct running r;
		if (!find_running_sym(l, s, &r) || r.kind != (tls ? RW_KIND_TLS : RW_KIND_DATA)) {
			c->nnew++;
			continue;
		}
		int64_t d = (int64_t)(r.addr - s->value);
		if (c->nexist++ && d != c->delta)
			c->consistent = 0;
		c->delta = d;
		if (r.size && s->size > r.size && !c->grew)
			c->grew = s->name, c->grew_from = r.size, c->grew_to = s->size;
	}
	return c;
}

static int bind_new_section(struct link *l, struct work *w, uint32_t oi, uint16_t si, struct target *t)
{
	t->bind = BIND_SECTION;
	t->obj = oi;
	t->sec = si;
	t->value = 0;
	return load_section(l, w, oi, si);
}

static int bind_existing_at(struct link *l, uint32_t oi, uint16_t si, int64_t delta, struct target *t)
{
	if (l->objs[oi].sections[si].flags & SHF_TLS) {
		t->bind = BIND_TLS;
		t->mod = (uint32_t)l->proc->target;
	} else {
		t->bind = BIND_ADDR;
	}
	t->value = (uint64_t)delta;
	return 0;
}

/* A reference into a constant section at off (-1: not known exactly): to
 * the running copy of the constant it names when that did not change, else
 * to the new section. Unnamed constants (literals, pools) are always new. */
static int bind_const_ref(struct link *l, struct work *w, uint32_t oi, uint16_t si, int64_t off,
			  struct target *t)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_symbol *s = off >= 0 ? elf_object_symbol_at(o, si, (uint64_t)off) : NULL;
	struct running run;
	if (s && s->type == STT_OBJECT && s->size && (uint64_t)off - s->value < s->size &&
	    find_running_sym(l, s, &run) && run.kind == RW_KIND_DATA && !link_is_changed(l, oi, s))
		return bind_existing_at(l, oi, si, (int64_t)(run.addr - s->value), t);
	return bind_new_section(l, w, oi, si, t);
}

/* Does [off + lo, off + hi) leave the constant at off? */
static int reaches_beyond(const struct elf_object *o, uint16_t si, int64_t off, int64_t lo, int64_t hi)
{
	const struct elf_symbol *c = off >= 0 ? elf_object_symbol_at(o, si, (uint64_t)off) : NULL;
	if (!c || !c->name[0] || !c->size)
		return 1;
	return off + lo < (int64_t)c->value || off + hi > (int64_t)(c->value + c->size);
}

/* Does code of object oi reach constants of section ts from the address
 * of another (gcc's section anchors: arch_anchor_span)? Then the patch
 * uses its own copy of the section, whole, for every reference of the
 * object (the adrp and the add of one address alike): the program's has
 * other neighbours. Asked once per section. */
static int const_anchored(struct link *l, uint32_t oi, uint16_t ts)
{
	const struct elf_object *o = &l->objs[oi];
	if (!l->const_anch)
		l->const_anch = rw_calloc(l->nobjs, sizeof *l->const_anch);
	if (!l->const_anch[oi])
		l->const_anch[oi] = rw_calloc(o->nsections, 1);
	uint8_t *c = &l->const_anch[oi][ts];
	for (size_t si = 1; !*c && si < o->nsections; si++) {
		const struct elf_section *sec = &o->sections[si];
		for (size_t i = 0; is_exec(sec) && sec->data && i < sec->nrelas && !*c; i++) {
			const struct elf_rela *r = &sec->relas[i];
			const struct elf_symbol *s = r->sym < o->nsymbols ? &o->symbols[r->sym] : NULL;
			struct reloc_kind k;
			int64_t lo, hi;
			arch_reloc_kind(r->type, &k);
			if (!s || s->shndx != ts || k.pcrel || k.got ||
			    !arch_anchor_span(sec->data, sec->size, r->offset, &lo, &hi))
				continue;
			int64_t off = (s->type == STT_SECTION ? 0 : (int64_t)s->value) + r->addend;
			if (reaches_beyond(o, ts, off, lo, hi))
				*c = 2;
		}
	}
	if (!*c)
		*c = 1;
	return *c == 2;
}

/* More accesses from one anchor than rewire follows: refused, rather
 * than bound on a part of them. */
static int too_many_anchored(const struct elf_object *o, const struct elf_section *sec,
			     const struct elf_rela *r)
{
	const struct elf_symbol *in = elf_object_symbol_at(o, (uint16_t)(sec - o->sections), r->offset);
	return rw_fail("%s: %s reaches more than %d places from one address (gcc's section "
		       "anchors): compile with -fno-section-anchors", rw_basename(o->path),
		       in && in->name[0] ? rw_demangle(in->name) : sec->name, ARCH_MAX_ANCHORED);
}

struct anchor_use {
	int have, exists;
	int64_t delta;
	const struct elf_symbol *first, *other;
};

/* One access at offset off of section si: the variable there, running or
 * new, and at which distance from the patch's place. */
static void anchor_use_at(struct link *l, uint32_t oi, uint16_t si, int64_t off, struct anchor_use *u)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_symbol *s = off >= 0 ? elf_object_symbol_at(o, si, (uint64_t)off) : NULL;
	struct running run;
	if (!s || !s->name[0] || u->other)
		return;
	int exists = find_running_sym(l, s, &run);
	int64_t delta = exists ? (int64_t)(run.addr - s->value) : 0;
	if (!u->have)
		*u = (struct anchor_use){1, exists, delta, s, NULL};
	else if (exists != u->exists || delta != u->delta)
		u->other = s;
}

/* A reference to data section si (whose layout is not the program's)
 * from code section ci, where gcc's section anchors may form an address
 * (sym + addend of r) that the code reaches other variables from. Within
 * r's function (an adrp's register does not leave it), every use of that
 * address: the accesses from it, or the variable at it when used so. 1
 * with *delta when they are all the program's at one distance, 2 when
 * all new, 0 when no access is anchored (bound as usual); -1 said when
 * they are mixed. The adrp of the page binds as its partners do. */
static int anchored_binding(struct link *l, uint32_t oi, uint16_t ci, uint16_t si,
			    const struct elf_rela *r, int64_t *delta)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[ci];
	const struct elf_symbol *t = &o->symbols[r->sym];
	const struct elf_symbol *f = elf_object_symbol_at(o, ci, r->offset);
	int64_t base = (t->type == STT_SECTION ? 0 : (int64_t)t->value) + r->addend;
	int64_t offs[ARCH_MAX_ANCHORED];
	uint64_t lo = f && f->type == STT_FUNC ? f->value : 0, hi = f && f->type == STT_FUNC ? f->value + f->size : sec->size;
	struct anchor_use u = {0};
	int anchored = 0;
	if (!rw_arch->anchor_offsets || !is_exec(sec) || !sec->data)
		return 0;	/* x86-64: each variable has its own relocation */
	for (size_t i = 0; i < sec->nrelas && !u.other; i++) {
		const struct elf_rela *x = &sec->relas[i];
		const struct elf_symbol *xs = &o->symbols[x->sym];
		struct reloc_kind k;
		if (x->offset < lo || x->offset >= hi || xs->shndx != si ||
		    (xs->type == STT_SECTION ? 0 : (int64_t)xs->value) + x->addend != base)
			continue;
		arch_reloc_kind(x->type, &k);
		if (k.page)
			continue;
		int n = arch_anchor_offsets(sec->data, sec->size, x->offset, offs, ARCH_MAX_ANCHORED);
		if (n < 0)
			return too_many_anchored(o, sec, x);
		anchored |= n > 0;
		if (!n)
			anchor_use_at(l, oi, si, base, &u);
		for (int j = 0; j < n; j++)
			anchor_use_at(l, oi, si, base + offs[j], &u);
	}
	if (!anchored)
		return 0;
	if (u.other)
		return rw_fail("%s: %s and %s are reached from one address (gcc's section anchors), "
			       "and the program does not have them at the same distance from each other "
			       "as the patch (a variable added, removed or moved in %s): compile with "
			       "-fno-section-anchors, or restart the program for this change",
			       rw_basename(o->path), u.first->name, u.other->name, o->sections[si].name);
	*delta = u.delta;
	return !u.have ? 0 : u.exists ? 1 : 2;
}

/* exact: the offset into the section the reference means, when known (the
 * instruction was decoded, or the field is in data and has no immediate
 * after it). Unwind info always describes the new copy. */
static int bind_section_ref(struct link *l, struct work *w, uint32_t oi, uint16_t si,
			    const int64_t *exact, const struct elf_rela *r, const struct reloc_kind *k,
			    int call, struct target *t, struct seccls *cache, int from_eh, uint16_t from_si)
{
	struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[si];
	int64_t offs[4] = {r->addend};
	int n = exact ? (offs[0] = *exact, 1) : k->pcrel ? arch_pcrel_offsets(r->addend, offs) : 1;

	if (from_eh)
		return bind_new_section(l, w, oi, si, t);
	if (is_exec(sec)) {
		/* A call goes to the new copy of a changed function and to the
		 * running version of an unchanged one; an address taken of an
		 * existing function is its original address. */
		/* Only an entry names a function: an offset inside one (a jump
		 * table's target, a label) is a place in the new copy. */
		const struct elf_symbol *f = elf_object_symbol_at(o, si, (uint64_t)offs[0]);
		struct running run;
		if (f && f->type == STT_FUNC && f->value == (uint64_t)offs[0] &&
		    find_running(l, f->name, scope_of(f), &run) &&
		    run.kind == RW_KIND_FUNC && (!call || !link_is_changed(l, oi, f))) {
			t->bind = BIND_ADDR;
			t->is_func = 1;
			t->value = (call ? run.addr : run.orig) - f->value;
			return 0;
		}
		return bind_new_section(l, w, oi, si, t);
	}
	if (is_const_data(sec))
		return const_anchored(l, oi, si) ? bind_new_section(l, w, oi, si, t) :
			bind_const_ref(l, w, oi, si, n == 1 ? offs[0] : -1, t);
	struct seccls *c = classify(l, oi, si, cache);
	if (!c->nexist)
		return bind_new_section(l, w, oi, si, t);
	if (c->grew)
		return rw_fail("%s: %s grew from %llu to %llu bytes: the running storage cannot hold "
			       "it (restart the program for this change)", o->path,
			       rw_demangle(c->grew), (unsigned long long)c->grew_from,
			       (unsigned long long)c->grew_to);
	if (!c->nnew && c->consistent)
		return bind_existing_at(l, oi, si, c->delta, t);
	int64_t adelta = 0;
	int anch = anchored_binding(l, oi, from_si, si, r, &adelta);
	if (anch < 0)
		return -1;
	if (anch == 1)
		return bind_existing_at(l, oi, si, adelta, t);
	if (anch == 2)
		return bind_new_section(l, w, oi, si, t);

	/* Layout changed: find which symbol the reference points into. */
	int have = 0, isnew = 0;
	int64_t delta = 0;
	const char *first = NULL, *other = NULL;
	for (int i = 0; i < n; i++) {
		const struct elf_symbol *s = elf_object_symbol_at(o, si, (uint64_t)offs[i]);
		struct running run;
		if (!s)
			continue;
		int exists = find_running_sym(l, s, &run);
		int64_t d = exists ? (int64_t)(run.addr - s->value) : 0;
		if (!have) {
			have = 1, isnew = !exists, delta = d, first = s->name;
		} else if (isnew != !exists || d != delta) {
			other = s->name;
			break;
		}
	}
	if (other)
		return rw_fail("%s: a reference into %s at offset %lld may mean %s or %s: compile the "
			       "patch with -fdata-sections", o->path, sec->name,
			       (long long)offs[0], first, other);
	if (!have || isnew)
		return bind_new_section(l, w, oi, si, t);
	return bind_existing_at(l, oi, si, delta, t);
}

/* --- relocations ----------------------------------------------------------- */

/* A function of the program the patch calls: the stub number it gets when
 * the patch is placed far. */
static int32_t far_call(struct link *l, uint64_t addr)
{
	for (size_t i = 0; i < l->nfcalls; i++)
		if (l->fcalls[i] == addr)
			return (int32_t)i;
	l->fcalls = rw_grow(l->fcalls, &l->capfcalls, l->nfcalls, sizeof *l->fcalls);
	l->fcalls[l->nfcalls] = addr;
	return (int32_t)l->nfcalls++;
}

/* gcc's section anchors (aarch64): code forms the address of one
 * variable and reaches others at fixed offsets from it, as the object
 * lays them out. Right only while the program has them at the same
 * distances (or all of them are the patch's own): else refused, naming
 * two that moved. */
static int check_anchor(struct link *l, uint32_t oi, uint16_t si, const struct elf_rela *r)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[si];
	const struct elf_symbol *s = &o->symbols[r->sym];
	int64_t offs[ARCH_MAX_ANCHORED];
	struct anchor_use u = {0};
	if (s->shndx == SHN_UNDEF || s->shndx >= o->nsections || is_exec(&o->sections[s->shndx]))
		return 0;
	int n = arch_anchor_offsets(sec->data, sec->size, r->offset, offs, ARCH_MAX_ANCHORED);
	int64_t base = (s->type == STT_SECTION ? 0 : (int64_t)s->value) + r->addend;
	if (n < 0)
		return too_many_anchored(o, sec, r);
	/* A named base binds by its name: it is one of what must agree. */
	if (n > 0 && s->type != STT_SECTION)
		anchor_use_at(l, oi, s->shndx, base, &u);
	for (int i = 0; i < n; i++)
		anchor_use_at(l, oi, s->shndx, base + offs[i], &u);
	if (!u.other)
		return 0;
	const struct elf_symbol *in = elf_object_symbol_at(o, si, r->offset);
	return rw_fail("%s: %s reaches %s and %s from one address (gcc's section anchors), and the "
		       "program does not have them at the same distance from each other as the patch "
		       "(a variable added, removed or moved in %s): compile with -fno-section-anchors, "
		       "or restart the program for this change", rw_basename(o->path),
		       in && in->name[0] ? rw_demangle(in->name) : sec->name, u.first->name,
		       u.other->name, o->sections[s->shndx].name);
}

static uint32_t got_hash(uint32_t oi, const struct elf_rela *r, uint32_t kind)
{
	uint64_t key[3] = {(uint64_t)oi << 32 | r->sym, (uint64_t)r->addend, kind};
	return (uint32_t)rw_hash64(RW_HASH64_BASIS, key, sizeof key);
}

/* The GOT slot of what r refers to, for kind: the one given before to the
 * same target, else a new one. */
static int32_t got_slot(struct link *l, uint32_t oi, const struct elf_rela *r, uint32_t kind)
{
	size_t at;
	uint32_t h = got_hash(oi, r, kind);
	for (uint32_t v = rw_index_first(&l->gotidx, h, &at); v != RW_INDEX_END;
	     v = rw_index_next(&l->gotidx, &at)) {
		const struct got_key *g = &l->gotkeys[v];
		if (g->obj == oi && g->sym == r->sym && g->addend == r->addend && g->kind == kind)
			return (int32_t)g->slot;
	}
	if (l->ngotkeys + 1 > rw_index_room(&l->gotidx)) {
		rw_index_free(&l->gotidx);
		rw_index_init(&l->gotidx, 2 * l->ngotkeys + 64);
		for (size_t i = 0; i < l->ngotkeys; i++) {
			struct elf_rela rr = {.sym = l->gotkeys[i].sym, .addend = l->gotkeys[i].addend};
			rw_index_add(&l->gotidx, got_hash(l->gotkeys[i].obj, &rr, l->gotkeys[i].kind),
				     (uint32_t)i);
		}
	}
	l->gotkeys = rw_grow(l->gotkeys, &l->capgotkeys, l->ngotkeys, sizeof *l->gotkeys);
	l->gotkeys[l->ngotkeys] = (struct got_key){oi, r->sym, r->addend, kind, l->ngot};
	rw_index_add(&l->gotidx, h, (uint32_t)l->ngotkeys++);
	l->ngot += kind == GOT_TLSGD || kind == GOT_TLSLD ? 2 : 1;
	return (int32_t)l->gotkeys[l->ngotkeys - 1].slot;
}

static int resolve_reloc(struct link *l, struct work *w, uint32_t oi, uint16_t si, size_t ri,
			 struct seccls *cache)
{
	struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[si];
	const struct elf_rela *r = &sec->relas[ri];
	const struct elf_symbol *s = &o->symbols[r->sym];
	struct target *t = &l->targets[oi][si][ri];
	struct reloc_kind k;
	int rc;

	arch_reloc_kind(r->type, &k);
	t->got = t->stub = -1;
	if (!k.known)
		return rw_fail("%s: %s+%#llx: relocation type %u is not supported", o->path, sec->name,
			       (unsigned long long)r->offset, r->type);
	if (r->offset > sec->size || sec->size - r->offset < (uint64_t)arch_field_size(r->type))
		return rw_fail("%s: %s: relocation at %#llx is outside the section", o->path, sec->name,
			       (unsigned long long)r->offset);
	int call = k.call || (k.pcrel && !k.got && is_exec(sec) &&
			      arch_is_call_site(sec->data, r->offset));
	int64_t off = r->addend;
	int exact = 1;
	if (is_exec(sec) && k.pcrel) {
		off = r->addend + arch_pc_tail(l->secs[oi][si].starts, r->offset, sec->size, &exact);
	}
	if (r->sym == 0)
		t->bind = BIND_ZERO, rc = 0;
	else if (l->eh_dead && l->eh_dead[oi] && l->eh_dead[oi][si] && l->eh_dead[oi][si][ri])
		t->bind = BIND_EH_NULL, rc = 0;
	else if (s->type == STT_SECTION && (s->shndx == SHN_UNDEF || s->shndx >= o->nsections))
		rc = rw_fail("%s: %s: relocation against a section symbol of no section", o->path,
			     sec->name);
	else if (s->type == STT_SECTION)
		rc = bind_section_ref(l, w, oi, s->shndx, exact ? &off : NULL, r, &k, call, t, cache,
				      is_eh_frame(sec), si);
	else if (s->shndx == SHN_UNDEF)
		rc = bind_undefined(l, w, oi, s, call, t);
	else
		rc = bind_defined(l, w, oi, s, call, t);
	if (rc < 0)
		return -1;
	if (k.tls && t->bind != BIND_TLS && t->bind != BIND_DYN)
		return rw_fail("%s: %s: thread-local relocation %s against a symbol that is not "
			       "thread-local", o->path, rw_demangle(s->name), k.name);
	if (k.got)
		t->got = got_slot(l, oi, r, k.got);
	if (is_exec(sec) && !k.pcrel && !k.got && check_anchor(l, oi, si, r) < 0)
		return -1;
	if (call && t->bind == BIND_DYN)
		l->dyn[t->value].called = 1;
	if (call && t->bind == BIND_ADDR && t->is_func && k.pcrel)
		t->stub = far_call(l, arch_call_target(t->value, r->addend));
	return 0;
}

static int resolve_section(struct link *l, struct work *w, uint32_t oi, uint16_t si,
			   struct seccls *cache)
{
	const struct elf_section *sec = &l->objs[oi].sections[si];
	free(l->targets[oi][si]);	/* resolved again: see lib_unwind() */
	l->targets[oi][si] = rw_calloc(sec->nrelas, sizeof(struct target));
	for (size_t ri = 0; ri < sec->nrelas; ri++)
		if (resolve_reloc(l, w, oi, si, ri, cache) < 0)
			return -1;
	return 0;
}

/* --- entry jumps ----------------------------------------------------------- */

static struct redirect *add_redirect(struct link *l, const char *name, const struct running *r,
				     uint32_t oi, const struct elf_symbol *s)
{
	l->redirs = rw_grow(l->redirs, &l->capredirs, l->nredirs, sizeof *l->redirs);
	struct redirect *rd = &l->redirs[l->nredirs++];
	*rd = (struct redirect){.name = name, .from = r->orig, .obj = oi, .sec = s->shndx,
				.off = s->value, .room = r->orig_room, .pad = r->pad,
				.prev = r->addr != r->orig ? r->addr : 0, .prev_room = r->size};
	return rd;
}

/* The jump at a function's entry: there (enough room), or a short jump to
 * it in the padding before (after the previous function's end). need is
 * the size of the jump to the new code, need_prev of the one from its
 * newest version back to the entry. A patch placed far needs absolute
 * jumps, longer ones, and says so when one does not fit. */
static int plan_jump(struct redirect *rd, int need, int need_prev, int far)
{
	uint64_t room = rd->prev && rd->prev_room < rd->room ? rd->prev_room : rd->room;
	int prev_fits = !rd->prev || rd->prev_room >= (uint64_t)need_prev;
	rd->via = 0;
	if (rd->room >= (uint64_t)need && prev_fits)
		return 0;
	if (rd->room < (uint64_t)need && rw_arch->short_jump_size &&
	    rd->room >= rw_arch->short_jump_size && rd->pad >= (uint64_t)need && prev_fits) {
		rd->via = rd->from - (uint64_t)need;
		return 0;
	}
	if (far)
		return rw_fail("%s: the running function is %llu bytes long: too short for the %d-byte "
			       "absolute jump that reaches a patch placed far from the program (no "
			       "memory is free within %s of it)", rw_demangle(rd->name),
			       (unsigned long long)room, need > need_prev ? need : need_prev,
			       rw_arch->reach);
	return rw_fail("%s: the running function is %llu bytes long with no padding after or before "
		       "it: too short for a %d-byte jump", rw_demangle(rd->name),
		       (unsigned long long)room, need);
}

int link_plan_jumps(struct link *l)
{
	for (size_t i = 0; i < l->nredirs; i++) {
		struct redirect *rd = &l->redirs[i];
		uint64_t to = l->secs[rd->obj][rd->sec].addr + rd->off;
		int need = arch_jump_size(rd->from, to);
		int need_prev = rd->prev ? arch_jump_size(rd->prev, rd->from) : ARCH_JUMP_SIZE;
		if (plan_jump(rd, need, need_prev, need > ARCH_JUMP_SIZE || need_prev > ARCH_JUMP_SIZE) < 0)
			return -1;
	}
	return 0;
}

/* Every function the new objects define that runs in the process now gets
 * a jump from its entry to the new version. */
/* The code rewire compares with must be the program's. The patch would
 * redirect nothing of this object: f, changed or new by the diff, is not
 * in the process, nor is any changed function of the object, and most of
 * its functions are not either. The program runs another build of the
 * file (built since without rewire, or a Rust crate recorded by an older
 * rewire: other symbol hashes): all the patch brings would be "new" code
 * that nothing reaches. (New code in a file whose other functions run, or
 * an edit of a function the linker left out of such a file, is new code,
 * rightly.) */
static int check_runs(size_t running, size_t total, const struct elf_symbol *f)
{
	if (!f || 2 * running >= total)
		return 0;
	return rw_fail("%s is not in the running program, and only %zu of the %zu functions of its "
		       "file are: the program runs another build of the file; rebuild it under rewire "
		       "and start the program again", rw_demangle(f->name), running, total);
}

static int plan_redirects(struct link *l)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		struct elf_object *o = &l->objs[oi];
		const struct elf_symbol *had = NULL;	/* changed or new, not running */
		size_t running = 0, total = 0, changed_running = 0;
		for (size_t j = 1; j < o->nsymbols && !is_lib(l, oi); j++) {
			const struct elf_symbol *s = &o->symbols[j];
			struct running r;
			if (s->type != STT_FUNC || s->shndx == SHN_UNDEF || s->shndx >= o->nsections ||
			    !is_exec(&o->sections[s->shndx]) || diff_is_clone(s->name))
				continue;
			total++;
			if (!find_running(l, s->name, scope_of(s), &r) || r.kind != RW_KIND_FUNC) {
				if (!had && l->diff && link_is_changed(l, oi, s))
					had = s;
				l->nfuncs_new++;
				continue;
			}
			running++;
			if (!link_is_changed(l, oi, s))
				continue;
			changed_running++;
			/* Jumps of 5 bytes: refused here, before any memory is
			 * asked for; link_plan_jumps() decides again once the
			 * patch has its address. */
			if (plan_jump(add_redirect(l, s->name, &r, oi, s), ARCH_JUMP_SIZE,
				      ARCH_JUMP_SIZE, 0) < 0)
				return -1;
		}
		if (!is_lib(l, oi) && !changed_running && check_runs(running, total, had) < 0)
			return -1;
	}
	return 0;
}

/* The symbol a relocation of section si refers to: named, or the one its
 * section+addend falls in. */
static const struct elf_symbol *reloc_symbol(struct link *l, uint32_t oi, uint16_t si,
					    const struct elf_rela *r)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_symbol *s = &o->symbols[r->sym];
	if (s->type != STT_SECTION)
		return s;
	struct reloc_kind k;
	arch_reloc_kind(r->type, &k);
	int64_t off = r->addend + (k.pcrel ? arch_pc_tail(l->secs[oi][si].starts, r->offset,
							    o->sections[si].size, NULL) : 0);
	return off >= 0 ? elf_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
}

/* A constructor of a unit the program already runs is not run again. If
 * the code it reaches initializes data the program does not have yet (a
 * new C++ global with a constructor), that data would stay unconstructed:
 * refuse, naming it. */
static int initializes_new_data(struct link *l, uint32_t oi, const struct elf_symbol *init)
{
	const struct elf_object *o = &l->objs[oi];
	uint8_t *seen = rw_calloc(o->nsymbols, 1);
	size_t *stack = rw_calloc(o->nsymbols, sizeof *stack), n = 0;
	int rc = 0;
	stack[n++] = (size_t)(init - o->symbols);
	seen[stack[0]] = 1;
	while (n && rc == 0) {
		const struct elf_symbol *f = &o->symbols[stack[--n]];
		if (f->shndx == SHN_UNDEF || f->shndx >= o->nsections)
			continue;
		const struct elf_section *sec = &o->sections[f->shndx];
		for (size_t i = 0; i < sec->nrelas && rc == 0; i++) {
			const struct elf_rela *r = &sec->relas[i];
			const struct elf_symbol *t;
			struct running run;
			if (r->offset < f->value || r->offset >= f->value + f->size ||
			    !(t = reloc_symbol(l, oi, f->shndx, r)) || t->shndx == SHN_UNDEF ||
			    t->shndx >= o->nsections || seen[t - o->symbols])
				continue;
			seen[t - o->symbols] = 1;
			if (t->type == STT_FUNC)
				stack[n++] = (size_t)(t - o->symbols);
			else if (t->type == STT_OBJECT && (o->sections[t->shndx].flags & SHF_WRITE) &&
				 !find_running_sym(l, t, &run))
				rc = rw_fail("%s: %s is new and has a dynamic initializer: its file's "
					     "initializers ran when the program started and cannot run "
					     "again without resetting the others (restart the program "
					     "for this change)", o->path, rw_demangle(t->name));
		}
	}
	free(seen);
	free(stack);
	return rc;
}

/* Constructors (.init_array) of new objects run once, before the jumps.
 * Those of code that already ran in the program are not run again: they
 * would construct its live globals a second time. */
static int plan_inits(struct link *l, struct work *w)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		struct elf_object *o = &l->objs[oi];
		for (uint16_t si = 1; si < o->nsections && !is_lib(l, oi); si++) {
			const struct elf_section *sec = &o->sections[si];
			if (!is_init_array(sec))
				continue;
			for (size_t ri = 0; ri < sec->nrelas; ri++) {
				const struct elf_rela *r = &sec->relas[ri];
				const struct elf_symbol *s = &o->symbols[r->sym];
				uint16_t fsec = s->shndx;
				uint64_t off = s->type == STT_SECTION ? (uint64_t)r->addend : s->value;
				const struct elf_symbol *f = s->type == STT_SECTION ?
					elf_object_symbol_at(o, fsec, off) : s;
				struct running run;
				if (fsec == SHN_UNDEF || fsec >= o->nsections || !is_exec(&o->sections[fsec]))
					return rw_fail("%s: constructor is not code of the object", o->path);
				if (f && find_running(l, f->name, scope_of(f), &run)) {
					if (initializes_new_data(l, oi, f) < 0)
						return -1;
					continue;
				}
				if (load_section(l, w, oi, fsec) < 0)
					return -1;
				l->inits = rw_grow(l->inits, &l->capinits, l->ninits,
						   2 * sizeof *l->inits);	/* pairs */
				l->inits[2 * l->ninits] = (uint64_t)oi << 16 | fsec;
				l->inits[2 * l->ninits + 1] = off;
				l->ninits++;
			}
		}
	}
	return 0;
}

/* Two units of the program with one file name (a/util.c, b/util.c) each
 * with a static `count`: the symbol table cannot tell which is meant. */
static int check_unambiguous(struct link *l)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		const struct elf_object *o = &l->objs[oi];
		for (size_t j = 1; j < o->nsymbols && !is_lib(l, oi); j++) {
			const struct elf_symbol *s = &o->symbols[j];
			if (s->bind != STB_LOCAL || !s->name[0] || !s->file || !s->file[0] ||
			    (s->type != STT_OBJECT && s->type != STT_FUNC && s->type != STT_TLS))
				continue;
			if (elf_image_count_locals(l->proc->exe, s->name, s->file) > 1)
				return rw_fail("%s: %s: the program has several files named %s, each "
					       "with a %s: rewire cannot tell which one this is",
					       o->path, rw_demangle(s->name), rw_basename(s->file),
					       rw_demangle(s->name));
		}
	}
	return 0;
}

/* --- unwind info of library objects -------------------------------------- */

static size_t loaded_code(struct link *l, uint32_t oi)
{
	size_t n = 0;
	for (uint16_t si = 1; si < l->objs[oi].nsections; si++)
		n += l->secs[oi][si].load == SEG_CODE;
	return n;
}

/* The .eh_frame of an object describes all its code, most of it not
 * loaded (a library object, a Rust crate). Each record (CIE or FDE: a length, then an id, 0 for a CIE) is
 * kept; the relocations of an FDE whose code is not loaded are marked, to
 * be bound so that its start reads as 0, which unwinders skip. */
static const struct elf_rela *sort_relas;	/* for qsort: the driver is one thread */

static int cmp_rela_offset(const void *a, const void *b)
{
	uint64_t x = sort_relas[*(const uint32_t *)a].offset, y = sort_relas[*(const uint32_t *)b].offset;
	return x < y ? -1 : x > y;
}

static void mark_dead_fdes(struct link *l, uint32_t oi, uint16_t si)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[si];
	uint8_t *dead = rw_calloc(sec->nrelas ? sec->nrelas : 1, 1);
	uint32_t *by = rw_calloc(sec->nrelas ? sec->nrelas : 1, sizeof *by);	/* by offset */
	for (size_t ri = 0; ri < sec->nrelas; ri++)
		by[ri] = (uint32_t)ri;
	sort_relas = sec->relas;
	qsort(by, sec->nrelas, sizeof *by, cmp_rela_offset);
	size_t at = 0;	/* the first relocation of the record */
	for (uint64_t off = 0; sec->data && sec->size - off >= 8;) {
		uint32_t len, id;
		memcpy(&len, sec->data + off, 4);
		memcpy(&id, sec->data + off + 4, 4);
		if (len == 0 || len == 0xffffffffu || len > sec->size - off - 4)
			break;	/* terminator, or 64-bit records (not made for x86-64) */
		uint64_t end = off + 4 + len;
		int is_dead = 0;
		while (at < sec->nrelas && sec->relas[by[at]].offset < off)
			at++;
		size_t stop = at;
		while (stop < sec->nrelas && sec->relas[by[stop]].offset < end)
			stop++;
		for (size_t k = at; id && k < stop; k++) {
			const struct elf_rela *r = &sec->relas[by[k]];
			const struct elf_symbol *t = &o->symbols[r->sym];
			if (r->offset == off + 8 && t->shndx != SHN_UNDEF && t->shndx < o->nsections)
				is_dead = is_exec(&o->sections[t->shndx]) && !l->secs[oi][t->shndx].load;
		}
		for (size_t k = at; is_dead && k < stop; k++)
			dead[by[k]] = 1;
		at = stop;
		off = end;
	}
	free(by);
	free(l->eh_dead[oi][si]);
	l->eh_dead[oi][si] = dead;
}

/* Objects' unwind info, once the code to load is known; again when
 * resolving it (or what it refers to) loaded more code. Returns whether
 * there is new work. */
static int lib_unwind(struct link *l, struct work *w, size_t *ncode)
{
	int more = 0;
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		size_t n = loaded_code(l, oi);
		if (!n || n == ncode[oi])
			continue;
		ncode[oi] = n;
		if (!l->eh_dead[oi])
			l->eh_dead[oi] = rw_calloc(l->objs[oi].nsections, sizeof **l->eh_dead);
		for (uint16_t si = 1; si < l->objs[oi].nsections; si++) {
			if (!is_eh_frame(&l->objs[oi].sections[si]))
				continue;
			mark_dead_fdes(l, oi, si);
			if (l->secs[oi][si].load)
				push_work(w, oi, si);
			else if (load_section(l, w, oi, si) < 0)
				return -1;
			more = 1;
		}
	}
	return more;
}

/* Is section si code the patch must bring: a changed or new function, or
 * code of no function (nothing tells what it is)? The rest is loaded when
 * that code reaches it (a function the program lacks); unchanged code the
 * program has is called where it runs. */
static int holds_changed_code(struct link *l, uint32_t oi, uint16_t si)
{
	const struct elf_object *o = &l->objs[oi];
	const uint32_t *syms;
	size_t n = elf_object_section_symbols(o, si, &syms), funcs = 0;
	if (!is_exec(&o->sections[si]) || !o->sections[si].size)
		return 0;
	for (size_t k = 0; k < n; k++) {
		const struct elf_symbol *f = &o->symbols[syms[k]];
		if (f->type != STT_FUNC)
			continue;
		funcs++;
		if (link_is_changed(l, oi, f))
			return 1;
	}
	return !funcs;
}

int link_plan(struct link *l)
{
	if (check_unambiguous(l) < 0)
		return -1;

	struct work w = {0};
	struct seccls **cache = rw_calloc(l->nobjs, sizeof *cache);
	int rc = -1;
	l->secs = rw_calloc(l->nobjs, sizeof *l->secs);
	l->targets = rw_calloc(l->nobjs, sizeof *l->targets);
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		struct elf_object *o = &l->objs[oi];
		l->secs[oi] = rw_calloc(o->nsections, sizeof **l->secs);
		l->targets[oi] = rw_calloc(o->nsections, sizeof **l->targets);
		cache[oi] = rw_calloc(o->nsections, sizeof **cache);
		for (uint16_t si = 1; si < o->nsections && !is_lib(l, oi); si++)
			if (holds_changed_code(l, oi, si) && load_section(l, &w, oi, si) < 0)
				goto out;
	}
	if (link_pair_statics(l) < 0 || plan_redirects(l) < 0 || plan_inits(l, &w) < 0 ||
	    link_check_const_readers(l) < 0)
		goto out;
	l->eh_dead = rw_calloc(l->nobjs, sizeof *l->eh_dead);
	size_t *ncode = rw_calloc(l->nobjs, sizeof *ncode), done = 0;
	int more = 1;
	while (more > 0) {
		for (; done < w.n; done++)
			if (resolve_section(l, &w, w.items[done] >> 16, (uint16_t)w.items[done],
					    cache[w.items[done] >> 16]) < 0)
				break;
		more = done < w.n ? -1 : lib_unwind(l, &w, ncode);
	}
	free(ncode);
	rc = more;
out:
	for (uint32_t oi = 0; oi < l->nobjs; oi++)
		free(cache[oi]);
	free(cache);
	free(w.items);
	return rc;
}

int link_check_dynamic(struct link *l)
{
	for (size_t i = 0; i < l->ndyn; i++) {
		struct dynsym *d = &l->dyn[i];
		if (d->found == RW_FOUND_NONE && !d->weak)
			return rw_fail("undefined symbol %s: not in the program, the patch or any "
				       "library the process has loaded", rw_demangle(d->name));
		if (d->called && d->found == RW_FOUND_ADDR)
			d->stub = (int32_t)l->nstubs++;
	}
	return 0;
}
