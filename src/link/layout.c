/* Lay a planned patch out in memory the agent gave us, apply its
 * relocations, and encode it for the agent.
 *
 * Three segments, each starting on a page so each gets its own protection:
 *   code (RX): executable sections, then call stubs for far targets
 *              (libraries; and the program's functions when the patch is
 *              placed far from the program: see below)
 *   ro   (R) : .eh_frame of every object back to back and a zero
 *              terminator, the GOT, then read-only data
 *   rw   (RW): writable data and .bss
 * GOT slots are filled here with final values (addresses, TLS offsets,
 * module ids): nothing is left for a dynamic loader to do.
 *
 * Placed far. When the agent finds no memory within the calls' reach of
 * the program (2 GiB on x86-64, 128 MiB on aarch64: an attached program
 * whose address space near it is taken, or a reservation used up), it
 * hands out memory farther, and the address tells (on aarch64 within
 * adrp's 4 GiB first). The patch is then linked to work from there: its
 * calls and jumps to the program's functions go through stubs of its own
 * (jmp *slot(%rip); ldr x16 + br x16), GOT-relative references through
 * its GOT as always, and the entry jumps become absolute ones
 * (link_plan_jumps). What cannot be served from far - an offset or
 * absolute address of the program's data that does not reach, or of
 * anything the patch holds in absolute 32-bit form - refuses the whole
 * patch, naming the symbol. */
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "linker.h"
#include "util.h"

#define PAGE 4096ull
/* Bytes of int3 after each code section: room for the jump a later patch
 * writes at its last function, however short (an absolute one, 14 bytes,
 * when that patch is placed far). */
#define CODE_TAIL 16

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int is_eh(const struct elf_section *s)
{
	return !strcmp(s->name, ".eh_frame") || s->type == SHT_X86_64_UNWIND;
}

/* Places the sections of segment seg (eh: only .eh_frame, or none of it). */
static uint64_t place(struct link *l, int seg, int eh, uint64_t off)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		struct elf_object *o = &l->objs[oi];
		for (uint16_t si = 1; si < o->nsections; si++) {
			struct loaded *ld = &l->secs[oi][si];
			const struct elf_section *s = &o->sections[si];
			if (ld->load != seg || is_eh(s) != eh)
				continue;
			off = align_up(off, s->align ? s->align : 1);
			ld->addr = off;		/* relative until link_layout adds the base */
			off += s->size + (seg == SEG_CODE ? CODE_TAIL : 0);
		}
	}
	return off;
}

/* Stubs: one per called library symbol, then, placed far, one per called
 * function of the program; each with its slot after the GOT's. */
static uint64_t nstubs(const struct link *l)
{
	return l->nstubs + (l->far ? l->nfcalls : 0);
}

static void compute_sizes(struct link *l)
{
	uint64_t code = place(l, SEG_CODE, 0, 0);
	code = align_up(code, 8);
	l->stub_addr = code;
	l->seg_size[SEG_CODE] = code + nstubs(l) * ARCH_STUB_SIZE;

	uint64_t ro = place(l, SEG_RO, 1, 0);
	l->eh_size = ro;
	ro = align_up(ro + 4, 8);	/* zero terminator of .eh_frame */
	l->got_addr = ro;
	ro += 8ull * (l->ngot + nstubs(l));
	l->seg_size[SEG_RO] = place(l, SEG_RO, 0, ro);
	l->seg_size[SEG_RW] = place(l, SEG_RW, 0, 0);
}

static uint64_t total_size(struct link *l)
{
	compute_sizes(l);
	uint64_t total = 0;
	for (int s = SEG_CODE; s < NSEG; s++)
		total += align_up(l->seg_size[s], PAGE);
	return total;
}

/* Where the patch goes is known only from the agent's answer: ask for
 * enough for far (address space only: pages it does not use stay
 * PROT_NONE). */
uint64_t link_size(struct link *l)
{
	int far = l->far;
	l->far = 1;
	uint64_t total = total_size(l);
	l->far = far;
	return total;
}

int link_layout(struct link *l, uint64_t base, uint64_t lo, uint64_t hi)
{
	l->far = 0;
	l->far = !arch_reaches(lo, hi, base, base + total_size(l));
	if (l->far)
		compute_sizes(l);
	uint64_t at = base;
	l->base = base;
	for (int s = SEG_CODE; s < NSEG; s++) {
		l->seg_addr[s] = at;
		l->seg_data[s] = rw_calloc(1, l->seg_size[s]);
		at += align_up(l->seg_size[s], PAGE);
	}
	l->size = at - base;
	for (uint32_t oi = 0; oi < l->nobjs; oi++)
		for (uint16_t si = 1; si < l->objs[oi].nsections; si++)
			if (l->secs[oi][si].load)
				l->secs[oi][si].addr += l->seg_addr[l->secs[oi][si].load];
	l->stub_addr += l->seg_addr[SEG_CODE];
	l->got_addr += l->seg_addr[SEG_RO];
	l->eh_addr = l->eh_size ? l->seg_addr[SEG_RO] : 0;
	return link_plan_jumps(l);
}

static uint8_t *at_addr(struct link *l, uint64_t addr)
{
	for (int s = SEG_CODE; s < NSEG; s++)
		if (addr >= l->seg_addr[s] && addr < l->seg_addr[s] + l->seg_size[s])
			return l->seg_data[s] + (addr - l->seg_addr[s]);
	return NULL;
}

static const struct msg_module *tls_module(struct link *l, const struct target *t, const char *what)
{
	const struct msg_module *m = &l->proc->mods[t->mod];
	if (!m->tls_modid) {
		rw_fail("%s: thread-local in %s, which has no TLS block", what, m->path);
		return NULL;
	}
	return m;
}

/* The value of a target (S), and for thread-locals the offsets. */
static int target_value(struct link *l, const struct target *t, int call, struct relval *v,
			uint64_t *modid, const char *what)
{
	v->tpoff = v->dtpoff = 0;
	*modid = 0;
	switch (t->bind) {
	case BIND_ADDR: v->S = t->value; return 0;
	case BIND_SECTION: v->S = l->secs[t->obj][t->sec].addr + t->value; return 0;
	case BIND_GOTBASE: v->S = l->got_addr; return 0;
	case BIND_ZERO: v->S = 0; return 0;
	case BIND_EH_NULL: break;
	case BIND_DYN: {
		const struct dynsym *d = &l->dyn[t->value];
		if (d->found == RW_FOUND_TLS) {
			for (size_t i = 0; i < l->proc->nmods; i++)
				if (l->proc->mods[i].tls_modid == d->modid) {
					struct target tt = {.bind = BIND_TLS, .mod = (uint32_t)i, .value = d->addr};
					return target_value(l, &tt, call, v, modid, what);
				}
			return rw_fail("%s: thread-local of an unknown module", what);
		}
		v->S = call && d->stub >= 0 ? l->stub_addr + (uint64_t)d->stub * ARCH_STUB_SIZE : d->addr;
		return 0;
	}
	case BIND_TLS: {
		const struct msg_module *m = tls_module(l, t, what);
		if (!m)
			return -1;
		v->S = t->value;
		v->dtpoff = (int64_t)t->value;
		v->tpoff = m->tls_static ? m->tls_tpoff + (int64_t)t->value : 0;
		*modid = m->tls_modid;
		return 0;
	}
	}
	return rw_fail("%s: unresolved", what);
}

static void fill_got(struct link *l, const struct reloc_kind *k, const struct target *t,
		     const struct relval *v, uint64_t modid)
{
	uint64_t *slot = (uint64_t *)at_addr(l, l->got_addr + 8ull * (uint64_t)t->got);
	switch (k->got) {
	case GOT_ADDR: slot[0] = v->S; break;
	case GOT_TPOFF: slot[0] = (uint64_t)v->tpoff; break;
	case GOT_TLSGD: slot[0] = modid; slot[1] = (uint64_t)v->dtpoff; break;
	case GOT_TLSLD: slot[0] = modid; slot[1] = 0; break;
	}
}

static const char *target_name(const struct elf_object *o, const struct elf_rela *r)
{
	const struct elf_symbol *s = &o->symbols[r->sym];
	if (s->type == STT_SECTION && s->shndx < o->nsections)
		return o->sections[s->shndx].name;
	return s->name;
}

static uint64_t far_stub(const struct link *l, int32_t i)
{
	return l->stub_addr + (l->nstubs + (uint64_t)i) * ARCH_STUB_SIZE;
}

/* What a relocation refers to, by name: for section + addend, the symbol
 * the offset falls in (GNU as writes file statics so). */
static const char *referred_name(struct link *l, uint32_t oi, uint16_t si, const struct elf_rela *r,
				 const struct reloc_kind *k)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_symbol *s = &o->symbols[r->sym];
	if (s->type != STT_SECTION)
		return rw_demangle(s->name);
	int64_t off = r->addend + (k->pcrel ? arch_pc_tail(l->secs[oi][si].starts, r->offset,
							     o->sections[si].size, NULL) : 0);
	const struct elf_symbol *f = off >= 0 ? elf_object_symbol_at(o, s->shndx, (uint64_t)off) : NULL;
	return f && f->name[0] ? rw_demangle(f->name) : target_name(o, r);
}

/* A 32-bit reference that does not reach from a patch placed far. */
static int far_refusal(struct link *l, uint32_t oi, uint16_t si, const struct elf_rela *r,
		       const struct reloc_kind *k, const struct target *t)
{
	const struct elf_object *o = &l->objs[oi];
	const struct elf_symbol *in = elf_object_symbol_at(o, si, r->offset);
	char *from = rw_strdup(in && in->name[0] ? rw_demangle(in->name) : o->sections[si].name);
	const char *what = t->bind == BIND_SECTION ? "in the patch" :
			   t->bind == BIND_DYN ? "of a library" :
			   t->is_func ? "a function of the program" : "data of the program";
	int rc = rw_fail("%s: %s refers to %s (%s) by a %s, and no memory is free within %s of the "
			 "program: the patch is placed far from it and cannot reach that (start the "
			 "program under rewire run, which keeps memory near it)",
			 rw_basename(o->path), from, referred_name(l, oi, si, r, k), what,
			 k->pcrel ? rw_arch->pcrel_ref : "32-bit absolute address", rw_arch->reach);
	free(from);
	return rc;
}

static int relocate_one(struct link *l, uint32_t oi, uint16_t si, size_t ri, uint8_t *data)
{
	struct elf_object *o = &l->objs[oi];
	const struct elf_section *sec = &o->sections[si];
	const struct elf_rela *r = &sec->relas[ri];
	const struct target *t = &l->targets[oi][si][ri];
	struct reloc_kind k;
	struct relval v = {0};
	uint64_t modid;
	const char *name = target_name(o, r);

	arch_reloc_kind(r->type, &k);
	int call = k.call || (k.pcrel && !k.got && (sec->flags & SHF_EXECINSTR) &&
			      arch_is_call_site(sec->data, r->offset));
	if (t->bind == BIND_EH_NULL) {
		arch_null_field(r->type, data + r->offset, l->secs[oi][si].addr + r->offset);
		return 0;
	}
	if (target_value(l, t, call, &v, &modid, name) < 0)
		return -1;
	if (l->far && call && t->stub >= 0)	/* a function of the program, from far */
		v.S += far_stub(l, t->stub) - arch_call_target(v.S, r->addend);
	if (k.tls && t->bind == BIND_TLS && !v.tpoff && (k.got == GOT_TPOFF || k.tpoff))
		return rw_fail("%s: %s: initial-exec access to a thread-local of a module without "
			       "static TLS", o->path, name);
	v.P = l->secs[oi][si].addr + r->offset;
	v.A = r->addend;
	v.GOT = l->got_addr;
	v.Z = t->size;
	if (t->got >= 0) {
		v.G = 8ull * (uint64_t)t->got;
		fill_got(l, &k, t, &v, modid);
	}
	if (arch_apply(r->type, data + r->offset, &v) < 0)
		return l->far ? far_refusal(l, oi, si, r, &k, t) :
			rw_fail("%s: %s+%#llx against %s: %s", o->path, sec->name,
				(unsigned long long)r->offset, name, rw_error());
	return 0;
}

static void write_stubs(struct link *l)
{
	uint64_t slot0 = l->got_addr + 8ull * l->ngot;
	for (size_t i = 0; i < l->ndyn; i++) {
		const struct dynsym *d = &l->dyn[i];
		if (d->stub < 0)
			continue;
		uint64_t at = l->stub_addr + (uint64_t)d->stub * ARCH_STUB_SIZE;
		uint64_t slot = slot0 + 8ull * (uint64_t)d->stub;
		memcpy(at_addr(l, slot), &d->addr, 8);
		arch_write_stub(at_addr(l, at), at, slot);
	}
	for (size_t i = 0; l->far && i < l->nfcalls; i++) {
		uint64_t at = far_stub(l, (int32_t)i);
		uint64_t slot = slot0 + 8ull * (l->nstubs + i);
		memcpy(at_addr(l, slot), &l->fcalls[i], 8);
		arch_write_stub(at_addr(l, at), at, slot);
	}
}

int link_relocate(struct link *l)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		struct elf_object *o = &l->objs[oi];
		for (uint16_t si = 1; si < o->nsections; si++) {
			const struct elf_section *s = &o->sections[si];
			if (!l->secs[oi][si].load)
				continue;
			uint8_t *data = at_addr(l, l->secs[oi][si].addr);
			if (s->data && s->type != SHT_NOBITS && s->size)
				memcpy(data, s->data, s->size);
			if (l->secs[oi][si].load == SEG_CODE)
				memset(data + s->size, 0xcc, CODE_TAIL);
			for (size_t ri = 0; ri < s->nrelas; ri++)
				if (relocate_one(l, oi, si, ri, data) < 0)
					return -1;
		}
	}
	write_stubs(l);
	return 0;
}

/* --- the message ----------------------------------------------------------- */

/* Room after a function in its section: what a later jump may overwrite. */
static uint64_t room_after(const struct elf_object *o, const struct elf_symbol *f)
{
	uint64_t end = o->sections[f->shndx].size + CODE_TAIL;
	const uint32_t *list;
	size_t n = elf_object_section_symbols(o, f->shndx, &list);
	for (size_t k = 0; k < n; k++) {	/* by value: the first one past f */
		const struct elf_symbol *s = &o->symbols[list[k]];
		if (s->value > f->value) {
			if (s->value < end)
				end = s->value;
			break;
		}
	}
	return end - f->value;
}

static const struct redirect *redirect_of(struct link *l, uint32_t oi, const struct elf_symbol *s)
{
	for (size_t i = 0; i < l->nredirs; i++) {
		const struct redirect *r = &l->redirs[i];
		if (r->obj == oi && r->sec == s->shndx && r->off == s->value && !strcmp(r->name, s->name))
			return r;
	}
	return NULL;
}

/* Symbols this patch gives storage or code to, for the next patches. */
static struct msg_regsym *patch_symbols(struct link *l, uint32_t *n)
{
	struct msg_regsym *syms = NULL;
	size_t cap = 0;
	*n = 0;
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		const struct elf_object *o = &l->objs[oi];
		for (size_t j = 1; j < o->nsymbols; j++) {
			const struct elf_symbol *s = &o->symbols[j];
			if ((s->type != STT_FUNC && s->type != STT_OBJECT) || !s->name[0] ||
			    s->shndx == SHN_UNDEF || s->shndx >= o->nsections || !l->secs[oi][s->shndx].load)
				continue;
			int func = s->type == STT_FUNC;
			uint64_t addr = l->secs[oi][s->shndx].addr + s->value;
			const struct redirect *r = func ? redirect_of(l, oi, s) : NULL;
			if (!func && link_is_running_data(l, oi, s))
				continue;	/* bound to the program's storage */
			if (func && !r && !link_is_changed(l, oi, s))
				continue;	/* unchanged: its running version stays the newest */
			syms = rw_grow(syms, &cap, *n, sizeof *syms);
			syms[(*n)++] = (struct msg_regsym){
				.scope = (char *)(s->bind == STB_LOCAL ? rw_basename(s->file) : ""),
				.name = (char *)s->name,
				.kind = func ? RW_KIND_FUNC : RW_KIND_DATA,
				.orig = r ? r->from : addr,
				.addr = addr,
				.size = func ? room_after(o, s) : s->size,
			};
		}
	}
	return syms;
}

void link_encode(struct link *l, uint32_t gen, struct proto_buf *b)
{
	static const uint8_t prot[NSEG] = {0, RW_PROT_RX, RW_PROT_R, RW_PROT_RW};
	struct msg_segment segs[NSEG];
	struct msg_apply m = {.segs = segs, .eh_frame = l->eh_addr, .gen = gen};
	for (int s = SEG_CODE; s < NSEG; s++)
		if (l->seg_size[s])
			segs[m.nsegs++] = (struct msg_segment){
				l->seg_addr[s], align_up(l->seg_size[s], PAGE), prot[s],
				l->seg_data[s], (uint32_t)l->seg_size[s]};
	m.ninits = (uint32_t)l->ninits;
	m.inits = rw_calloc(l->ninits + 1, sizeof *m.inits);
	for (size_t i = 0; i < l->ninits; i++) {
		uint64_t key = l->inits[2 * i];
		m.inits[i] = l->secs[key >> 16][key & 0xffff].addr + l->inits[2 * i + 1];
	}
	m.nredirs = (uint32_t)l->nredirs;
	m.redirs = rw_calloc(l->nredirs + 1, sizeof *m.redirs);
	for (size_t i = 0; i < l->nredirs; i++) {
		const struct redirect *r = &l->redirs[i];
		m.redirs[i] = (struct msg_redirect){
			r->from, l->secs[r->obj][r->sec].addr + r->off, r->via,
			(char *)r->name, rw_strdup(rw_demangle(r->name))};
	}
	m.syms = patch_symbols(l, &m.nsyms);
	/* Library code: its names, not the library's DWARF (megabytes of std
	 * a patch pulled one function from). */
	m.nsymfiles = (uint32_t)l->nobjs;
	m.symfiles = rw_calloc(l->nobjs + 1, sizeof *m.symfiles);
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		size_t len;
		m.symfiles[oi].data = link_symfile(l, oi, !(l->lib && l->lib[oi]), &len);
		m.symfiles[oi].len = (uint32_t)len;
	}
	msg_put_apply(b, &m);
	for (uint32_t oi = 0; oi < l->nobjs; oi++)
		free((void *)m.symfiles[oi].data);
	free(m.symfiles);
	for (size_t i = 0; i < l->nredirs; i++)
		free(m.redirs[i].display);
	free(m.redirs);
	free(m.inits);
	free(m.syms);
}

/* perf's map of code without a file (perf-PID.map): a line "ADDR SIZE
 * NAME", in hex, for each function the patch loaded. */
void link_perf_map(const struct link *l, FILE *out)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		const struct elf_object *o = &l->objs[oi];
		for (size_t j = 1; j < o->nsymbols; j++) {
			const struct elf_symbol *s = &o->symbols[j];
			if (s->type != STT_FUNC || !s->name[0] || s->shndx == SHN_UNDEF ||
			    s->shndx >= o->nsections || l->secs[oi][s->shndx].load != SEG_CODE)
				continue;
			uint64_t size = s->size ? s->size : room_after(o, s);
			fprintf(out, "%" PRIx64 " %" PRIx64 " %s\n", l->secs[oi][s->shndx].addr + s->value,
				size, rw_demangle(s->name));
		}
	}
}

void link_free(struct link *l)
{
	for (uint32_t oi = 0; oi < l->nobjs; oi++) {
		for (uint16_t si = 0; l->targets && l->targets[oi] && si < l->objs[oi].nsections; si++)
			free(l->targets[oi][si]);
		if (l->targets)
			free(l->targets[oi]);
		for (uint16_t si = 0; l->secs && l->secs[oi] && si < l->objs[oi].nsections; si++)
			free(l->secs[oi][si].starts);
		if (l->secs)
			free(l->secs[oi]);
		for (uint16_t si = 0; l->eh_dead && l->eh_dead[oi] && si < l->objs[oi].nsections; si++)
			free(l->eh_dead[oi][si]);
		if (l->eh_dead)
			free(l->eh_dead[oi]);
	}
	free(l->eh_dead);
	free(l->globals);
	rw_index_free(&l->gdefs);
	free(l->targets);
	free(l->secs);
	free(l->dyn);
	free(l->fcalls);
	free(l->gotkeys);
	for (uint32_t oi = 0; l->const_anch && oi < l->nobjs; oi++)
		free(l->const_anch[oi]);
	free(l->const_anch);
	rw_index_free(&l->gotidx);
	free(l->redirs);
	free(l->inits);
	for (size_t i = 0; i < l->npairs; i++)
		free(l->pairs[i].exe_name);
	free(l->pairs);
	for (int s = 0; s < NSEG; s++)
		free(l->seg_data[s]);
}
