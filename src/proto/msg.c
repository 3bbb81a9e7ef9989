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

char *msg_get_strdup(struct rw_reader *r)
{
	uint32_t n;
	const uint8_t *p = rw_get_bytes(r, &n);
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
static void *get_array(struct rw_reader *r, uint32_t *n, size_t min, size_t elem)
{
	*n = rw_get_u32(r);
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

void msg_put_module(struct rw_buf *b, const struct rw_module *m)
{
	rw_put_str(b, m->path);
	rw_put_u64(b, m->base);
	rw_put_u64(b, m->text_lo);
	rw_put_u64(b, m->text_hi);
	rw_put_bytes(b, m->build_id, m->build_id_len);
	rw_put_u64(b, m->tls_modid);
	rw_put_u8(b, (uint8_t)m->tls_static);
	rw_put_u64(b, (uint64_t)m->tls_tpoff);
}

static void get_module(struct rw_reader *r, struct rw_module *m)
{
	uint32_t n;
	m->path = msg_get_strdup(r);
	m->base = rw_get_u64(r);
	m->text_lo = rw_get_u64(r);
	m->text_hi = rw_get_u64(r);
	const uint8_t *id = rw_get_bytes(r, &n);
	m->build_id_len = n > sizeof m->build_id ? sizeof m->build_id : n;
	if (id)
		memcpy(m->build_id, id, m->build_id_len);
	m->tls_modid = rw_get_u64(r);
	m->tls_static = rw_get_u8(r);
	m->tls_tpoff = (int64_t)rw_get_u64(r);
}

void msg_put_regsym(struct rw_buf *b, const struct rw_regsym *s)
{
	rw_put_str(b, s->scope);
	rw_put_str(b, s->name);
	rw_put_u8(b, s->kind);
	rw_put_u64(b, s->orig);
	rw_put_u64(b, s->addr);
	rw_put_u64(b, s->size);
}

static void get_regsym(struct rw_reader *r, struct rw_regsym *s)
{
	s->scope = msg_get_strdup(r);
	s->name = msg_get_strdup(r);
	s->kind = rw_get_u8(r);
	s->orig = rw_get_u64(r);
	s->addr = rw_get_u64(r);
	s->size = rw_get_u64(r);
}

void msg_put_hello(struct rw_buf *b, const struct msg_hello *h)
{
	rw_put_u32(b, h->pid);
	rw_put_u32(b, h->nmods);
	for (uint32_t i = 0; i < h->nmods; i++)
		msg_put_module(b, &h->mods[i]);
	rw_put_u32(b, h->nreg);
	for (uint32_t i = 0; i < h->nreg; i++)
		msg_put_regsym(b, &h->reg[i]);
	rw_put_u32(b, h->version);
	rw_put_u32(b, h->gen);
	rw_put_u8(b, h->held);
}

int msg_get_hello(struct rw_reader *r, struct msg_hello *h)
{
	memset(h, 0, sizeof *h);
	h->pid = rw_get_u32(r);
	h->mods = get_array(r, &h->nmods, MODULE_MIN, sizeof *h->mods);
	for (uint32_t i = 0; !r->err && i < h->nmods; i++)
		get_module(r, &h->mods[i]);
	if (!r->err && !h->nmods)
		r->err = 1;	/* every process has its executable */
	h->reg = get_array(r, &h->nreg, REGSYM_MIN, sizeof *h->reg);
	for (uint32_t i = 0; !r->err && i < h->nreg; i++)
		get_regsym(r, &h->reg[i]);
	h->version = rw_get_u32(r);
	h->gen = rw_get_u32(r);
	h->held = rw_get_u8(r);
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

void msg_put_lookup(struct rw_buf *b, const char *const *names, uint32_t n)
{
	rw_put_u32(b, n);
	for (uint32_t i = 0; i < n; i++)
		rw_put_str(b, names[i]);
}

int msg_get_lookup_count(struct rw_reader *r, uint32_t *n)
{
	*n = rw_get_u32(r);
	if (r->err || *n > (r->len - r->off) / STR_MIN)
		r->err = 1;
	return r->err ? -1 : 0;
}

void msg_put_found(struct rw_buf *b, const struct msg_found *f)
{
	rw_put_u8(b, f->found);
	rw_put_u64(b, f->addr);
	rw_put_u64(b, f->modid);
}

void msg_get_found(struct rw_reader *r, struct msg_found *f)
{
	f->found = rw_get_u8(r);
	f->addr = rw_get_u64(r);
	f->modid = rw_get_u64(r);
}

/* --- ALLOC ---------------------------------------------------------------- */

void msg_put_alloc(struct rw_buf *b, const struct msg_alloc *a)
{
	rw_put_u64(b, a->lo);
	rw_put_u64(b, a->hi);
	rw_put_u64(b, a->size);
}

void msg_get_alloc(struct rw_reader *r, struct msg_alloc *a)
{
	a->lo = rw_get_u64(r);
	a->hi = rw_get_u64(r);
	a->size = rw_get_u64(r);
}

/* --- APPLY ---------------------------------------------------------------- */

void msg_put_apply(struct rw_buf *b, const struct msg_apply *a)
{
	rw_put_u32(b, a->nsegs);
	for (uint32_t i = 0; i < a->nsegs; i++) {
		const struct msg_segment *s = &a->segs[i];
		rw_put_u64(b, s->addr);
		rw_put_u64(b, s->size);
		rw_put_u8(b, s->prot);
		rw_put_bytes(b, s->data, s->len);
	}
	rw_put_u64(b, a->eh_frame);
	rw_put_u32(b, a->ninits);
	for (uint32_t i = 0; i < a->ninits; i++)
		rw_put_u64(b, a->inits[i]);
	rw_put_u32(b, a->nredirs);
	for (uint32_t i = 0; i < a->nredirs; i++) {
		const struct msg_redirect *d = &a->redirs[i];
		rw_put_u64(b, d->from);
		rw_put_u64(b, d->to);
		rw_put_u64(b, d->via);
		rw_put_str(b, d->name);
		rw_put_str(b, d->display);
	}
	rw_put_u32(b, a->nsyms);
	for (uint32_t i = 0; i < a->nsyms; i++)
		msg_put_regsym(b, &a->syms[i]);
	rw_put_u32(b, a->gen);
}

int msg_get_apply(struct rw_reader *r, struct msg_apply *a)
{
	memset(a, 0, sizeof *a);
	a->segs = get_array(r, &a->nsegs, SEGMENT_MIN, sizeof *a->segs);
	for (uint32_t i = 0; !r->err && i < a->nsegs; i++) {
		struct msg_segment *s = &a->segs[i];
		s->addr = rw_get_u64(r);
		s->size = rw_get_u64(r);
		s->prot = rw_get_u8(r);
		s->data = rw_get_bytes(r, &s->len);
	}
	a->eh_frame = rw_get_u64(r);
	a->inits = get_array(r, &a->ninits, 8, sizeof *a->inits);
	for (uint32_t i = 0; !r->err && i < a->ninits; i++)
		a->inits[i] = rw_get_u64(r);
	a->redirs = get_array(r, &a->nredirs, REDIRECT_MIN, sizeof *a->redirs);
	for (uint32_t i = 0; !r->err && i < a->nredirs; i++) {
		struct msg_redirect *d = &a->redirs[i];
		d->from = rw_get_u64(r);
		d->to = rw_get_u64(r);
		d->via = rw_get_u64(r);
		d->name = msg_get_strdup(r);
		d->display = msg_get_strdup(r);
	}
	a->syms = get_array(r, &a->nsyms, REGSYM_MIN, sizeof *a->syms);
	for (uint32_t i = 0; !r->err && i < a->nsyms; i++)
		get_regsym(r, &a->syms[i]);
	a->gen = rw_get_u32(r);
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
	free(a->segs);
	free(a->inits);
	free(a->redirs);
	free(a->syms);
	memset(a, 0, sizeof *a);
}

void msg_put_apply_times(struct rw_buf *b, const struct msg_apply_times *t)
{
	rw_put_u64(b, t->write_ns);
	rw_put_u64(b, t->pause_ns);
	rw_put_u64(b, t->total_ns);
	rw_put_u32(b, t->nthreads);
}

void msg_get_apply_times(struct rw_reader *r, struct msg_apply_times *t)
{
	t->write_ns = rw_get_u64(r);
	t->pause_ns = rw_get_u64(r);
	t->total_ns = rw_get_u64(r);
	t->nthreads = rw_get_u32(r);
}
