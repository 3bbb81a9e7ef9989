#include "msg.h"
#include <stdlib.h>
#include <string.h>

/* The fewest bytes each record takes on the wire: counts are checked
 * against them. A string is at least its u32 length. */
#define STR_MIN 4
#define MODULE_MIN (STR_MIN + 8 + 8 + 8 + 4 + 8 + 1 + 8)
#define REGSYM_MIN (STR_MIN + STR_MIN + 1 + 8 + 8 + 8)
#define FOUND_SIZE (1 + 8 + 8)
#define SEGMENT_MIN (8 + 8 + 1 + 4)
#define REDIRECT_MIN (8 + 8 + 8 + STR_MIN + STR_MIN)

char *msg_get_strdup(struct proto_reader *r)
{
	uint32_t n;
	const uint8_t *p = proto_get_bytes(r, &n);
	char *s = p && !memchr(p, 0, n) ? malloc((size_t)n + 1) : NULL;
	if (!s) {
		r->err = 1;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = 0;
	return s;
}

/* A count of records of at least min bytes each, and room for them. */
static void *get_array(struct proto_reader *r, uint32_t *n, size_t min, size_t elem)
{
	*n = proto_get_u32(r);
	void *a = NULL;
	if (!r->err && (size_t)*n <= (r->len - r->off) / min)
		a = calloc(*n ? *n : 1, elem);
	if (!a) {
		r->err = 1;
		*n = 0;
	}
	return a;
}

/* --- HELLO ---------------------------------------------------------------- */

void msg_put_module(struct proto_buf *b, const struct msg_module *m)
{
	proto_put_str(b, m->path);
	proto_put_u64(b, m->base);
	proto_put_u64(b, m->text_lo);
	proto_put_u64(b, m->text_hi);
	proto_put_bytes(b, m->build_id, m->build_id_len);
	proto_put_u64(b, m->tls_modid);
	proto_put_u8(b, (uint8_t)m->tls_static);
	proto_put_u64(b, (uint64_t)m->tls_tpoff);
}

static void get_module(struct proto_reader *r, struct msg_module *m)
{
	uint32_t n;
	m->path = msg_get_strdup(r);
	m->base = proto_get_u64(r);
	m->text_lo = proto_get_u64(r);
	m->text_hi = proto_get_u64(r);
	const uint8_t *id = proto_get_bytes(r, &n);
	m->build_id_len = n > sizeof m->build_id ? sizeof m->build_id : n;
	if (id)
		memcpy(m->build_id, id, m->build_id_len);
	m->tls_modid = proto_get_u64(r);
	m->tls_static = proto_get_u8(r);
	m->tls_tpoff = (int64_t)proto_get_u64(r);
}

void msg_put_regsym(struct proto_buf *b, const struct msg_regsym *s)
{
	proto_put_str(b, s->scope);
	proto_put_str(b, s->name);
	proto_put_u8(b, s->kind);
	proto_put_u64(b, s->orig);
	proto_put_u64(b, s->addr);
	proto_put_u64(b, s->size);
}

static void get_regsym(struct proto_reader *r, struct msg_regsym *s)
{
	s->scope = msg_get_strdup(r);
	s->name = msg_get_strdup(r);
	s->kind = proto_get_u8(r);
	s->orig = proto_get_u64(r);
	s->addr = proto_get_u64(r);
	s->size = proto_get_u64(r);
}

void msg_put_hello(struct proto_buf *b, const struct msg_hello *h)
{
	proto_put_u32(b, h->pid);
	proto_put_u32(b, h->nmods);
	for (uint32_t i = 0; i < h->nmods; i++)
		msg_put_module(b, &h->mods[i]);
	proto_put_u32(b, h->nreg);
	for (uint32_t i = 0; i < h->nreg; i++)
		msg_put_regsym(b, &h->reg[i]);
	proto_put_u32(b, h->version);
	proto_put_u32(b, h->gen);
	proto_put_u8(b, h->held);
}

int msg_get_hello(struct proto_reader *r, struct msg_hello *h)
{
	memset(h, 0, sizeof *h);
	h->pid = proto_get_u32(r);
	h->mods = get_array(r, &h->nmods, MODULE_MIN, sizeof *h->mods);
	for (uint32_t i = 0; !r->err && i < h->nmods; i++)
		get_module(r, &h->mods[i]);
	if (!r->err && !h->nmods)
		r->err = 1;	/* every process has its executable */
	h->reg = get_array(r, &h->nreg, REGSYM_MIN, sizeof *h->reg);
	for (uint32_t i = 0; !r->err && i < h->nreg; i++)
		get_regsym(r, &h->reg[i]);
	h->version = proto_get_u32(r);
	h->gen = proto_get_u32(r);
	h->held = proto_get_u8(r);
	return r->err ? -1 : 0;
}

void msg_hello_free(struct msg_hello *h)
{
	for (uint32_t i = 0; h->mods && i < h->nmods; i++)
		free(h->mods[i].path);
	for (uint32_t i = 0; h->reg && i < h->nreg; i++) {
		free(h->reg[i].scope);
		free(h->reg[i].name);
	}
	free(h->mods);
	free(h->reg);
	memset(h, 0, sizeof *h);
}

/* --- LOOKUP --------------------------------------------------------------- */

void msg_put_lookup(struct proto_buf *b, const char *const *names, uint32_t n)
{
	proto_put_u32(b, n);
	for (uint32_t i = 0; i < n; i++)
		proto_put_str(b, names[i]);
}

int msg_get_lookup_count(struct proto_reader *r, uint32_t *n)
{
	*n = proto_get_u32(r);
	if (r->err || *n > (r->len - r->off) / STR_MIN)
		r->err = 1;
	return r->err ? -1 : 0;
}

void msg_put_found(struct proto_buf *b, const struct msg_found *f)
{
	proto_put_u8(b, f->found);
	proto_put_u64(b, f->addr);
	proto_put_u64(b, f->modid);
}

void msg_get_found(struct proto_reader *r, struct msg_found *f)
{
	f->found = proto_get_u8(r);
	f->addr = proto_get_u64(r);
	f->modid = proto_get_u64(r);
}

/* --- ALLOC ---------------------------------------------------------------- */

void msg_put_alloc(struct proto_buf *b, const struct msg_alloc *a)
{
	proto_put_u64(b, a->lo);
	proto_put_u64(b, a->hi);
	proto_put_u64(b, a->size);
}

void msg_get_alloc(struct proto_reader *r, struct msg_alloc *a)
{
	a->lo = proto_get_u64(r);
	a->hi = proto_get_u64(r);
	a->size = proto_get_u64(r);
}

/* --- APPLY ---------------------------------------------------------------- */

void msg_put_apply(struct proto_buf *b, const struct msg_apply *a)
{
	proto_put_u32(b, a->nsegs);
	for (uint32_t i = 0; i < a->nsegs; i++) {
		const struct msg_segment *s = &a->segs[i];
		proto_put_u64(b, s->addr);
		proto_put_u64(b, s->size);
		proto_put_u8(b, s->prot);
		proto_put_bytes(b, s->data, s->len);
	}
	proto_put_u64(b, a->eh_frame);
	proto_put_u32(b, a->ninits);
	for (uint32_t i = 0; i < a->ninits; i++)
		proto_put_u64(b, a->inits[i]);
	proto_put_u32(b, a->nredirs);
	for (uint32_t i = 0; i < a->nredirs; i++) {
		const struct msg_redirect *d = &a->redirs[i];
		proto_put_u64(b, d->from);
		proto_put_u64(b, d->to);
		proto_put_u64(b, d->via);
		proto_put_str(b, d->name);
		proto_put_str(b, d->display);
	}
	proto_put_u32(b, a->nsyms);
	for (uint32_t i = 0; i < a->nsyms; i++)
		msg_put_regsym(b, &a->syms[i]);
	proto_put_u32(b, a->gen);
	proto_put_u32(b, a->nsymfiles);
	for (uint32_t i = 0; i < a->nsymfiles; i++)
		proto_put_bytes(b, a->symfiles[i].data, a->symfiles[i].len);
}

int msg_get_apply(struct proto_reader *r, struct msg_apply *a)
{
	memset(a, 0, sizeof *a);
	a->segs = get_array(r, &a->nsegs, SEGMENT_MIN, sizeof *a->segs);
	for (uint32_t i = 0; !r->err && i < a->nsegs; i++) {
		struct msg_segment *s = &a->segs[i];
		s->addr = proto_get_u64(r);
		s->size = proto_get_u64(r);
		s->prot = proto_get_u8(r);
		s->data = proto_get_bytes(r, &s->len);
	}
	a->eh_frame = proto_get_u64(r);
	a->inits = get_array(r, &a->ninits, 8, sizeof *a->inits);
	for (uint32_t i = 0; !r->err && i < a->ninits; i++)
		a->inits[i] = proto_get_u64(r);
	a->redirs = get_array(r, &a->nredirs, REDIRECT_MIN, sizeof *a->redirs);
	for (uint32_t i = 0; !r->err && i < a->nredirs; i++) {
		struct msg_redirect *d = &a->redirs[i];
		d->from = proto_get_u64(r);
		d->to = proto_get_u64(r);
		d->via = proto_get_u64(r);
		d->name = msg_get_strdup(r);
		d->display = msg_get_strdup(r);
	}
	a->syms = get_array(r, &a->nsyms, REGSYM_MIN, sizeof *a->syms);
	for (uint32_t i = 0; !r->err && i < a->nsyms; i++)
		get_regsym(r, &a->syms[i]);
	a->gen = proto_get_u32(r);
	a->symfiles = get_array(r, &a->nsymfiles, 4, sizeof *a->symfiles);
	for (uint32_t i = 0; !r->err && i < a->nsymfiles; i++)
		a->symfiles[i].data = proto_get_bytes(r, &a->symfiles[i].len);
	return r->err ? -1 : 0;
}

void msg_apply_free(struct msg_apply *a)
{
	for (uint32_t i = 0; a->redirs && i < a->nredirs; i++) {
		free(a->redirs[i].name);
		free(a->redirs[i].display);
	}
	for (uint32_t i = 0; a->syms && i < a->nsyms; i++) {
		free(a->syms[i].scope);
		free(a->syms[i].name);
	}
	free(a->symfiles);
	free(a->segs);
	free(a->inits);
	free(a->redirs);
	free(a->syms);
	memset(a, 0, sizeof *a);
}

void msg_put_apply_times(struct proto_buf *b, const struct msg_apply_times *t)
{
	proto_put_u64(b, t->write_ns);
	proto_put_u64(b, t->pause_ns);
	proto_put_u64(b, t->total_ns);
	proto_put_u32(b, t->nthreads);
}

void msg_get_apply_times(struct proto_reader *r, struct msg_apply_times *t)
{
	t->write_ns = proto_get_u64(r);
	t->pause_ns = proto_get_u64(r);
	t->total_ns = proto_get_u64(r);
	t->nthreads = proto_get_u32(r);
}

void msg_put_revert(struct proto_buf *b, const struct msg_revert *r)
{
	proto_put_u8(b, r->by_gen);
	proto_put_u32(b, r->to);
}

int msg_get_revert(struct proto_reader *r, struct msg_revert *v)
{
	v->by_gen = proto_get_u8(r);
	v->to = proto_get_u32(r);
	return r->err || v->by_gen > 1 ? -1 : 0;
}

void msg_put_reverted(struct proto_buf *b, const struct msg_reverted *r)
{
	proto_put_u32(b, r->first);
	proto_put_u32(b, r->last);
	proto_put_u32(b, r->version);
	proto_put_u32(b, r->gen);
}

int msg_get_reverted(struct proto_reader *r, struct msg_reverted *v)
{
	v->first = proto_get_u32(r);
	v->last = proto_get_u32(r);
	v->version = proto_get_u32(r);
	v->gen = proto_get_u32(r);
	return r->err ? -1 : 0;
}
