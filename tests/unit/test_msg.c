/* Unit test of the channel's messages (src/proto/msg.c): what one side
 * encodes, the other decodes to the same fields; a message cut short at
 * any byte is an error, never a partial read taken as whole; a count
 * larger than the bytes left is refused before anything is allocated for
 * it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/msg.h"

static int failed;

static void check(int ok, const char *name, const char *why)
{
	printf(ok ? "PASS msg: %s\n" : "FAIL msg: %s: %s\n", name, why);
	failed |= !ok;
}

static struct msg_hello sample_hello(void)
{
	static struct msg_module mods[2] = {
		{.path = "/usr/bin/game", .base = 0x555500000000, .text_lo = 0x555500001000,
		 .text_hi = 0x555500009000, .build_id = {1, 2, 3, 4}, .build_id_len = 4},
		{.path = "/lib/libc.so.6", .base = 0x7f0000000000, .tls_modid = 1, .tls_static = 1,
		 .tls_tpoff = -128},
	};
	static struct msg_regsym reg[1] = {
		{.scope = "game.c", .name = "step", .kind = RW_KIND_FUNC, .orig = 0x1000,
		 .addr = 0x2000, .size = 64},
	};
	return (struct msg_hello){.pid = 42, .mods = mods, .nmods = 2, .reg = reg, .nreg = 1,
				  .version = 3, .gen = 7, .held = 1};
}

static int same_module(const struct msg_module *a, const struct msg_module *b)
{
	return !strcmp(a->path, b->path) && a->base == b->base && a->text_lo == b->text_lo &&
	       a->text_hi == b->text_hi && a->build_id_len == b->build_id_len &&
	       !memcmp(a->build_id, b->build_id, a->build_id_len) && a->tls_modid == b->tls_modid &&
	       a->tls_static == b->tls_static && a->tls_tpoff == b->tls_tpoff;
}

static int same_regsym(const struct msg_regsym *a, const struct msg_regsym *b)
{
	return !strcmp(a->scope, b->scope) && !strcmp(a->name, b->name) && a->kind == b->kind &&
	       a->orig == b->orig && a->addr == b->addr && a->size == b->size;
}

static void test_hello(void)
{
	struct msg_hello h = sample_hello(), d;
	struct proto_buf b = {0};
	msg_put_hello(&b, &h);
	struct proto_reader r = {b.p, b.len, 0, 0};
	int ok = msg_get_hello(&r, &d) == 0 && r.off == b.len && d.pid == 42 && d.nmods == 2 &&
		 same_module(&d.mods[0], &h.mods[0]) && same_module(&d.mods[1], &h.mods[1]) &&
		 d.nreg == 1 && same_regsym(&d.reg[0], &h.reg[0]) && d.version == 3 && d.gen == 7 &&
		 d.held == 1;
	msg_hello_free(&d);
	check(ok, "HELLO decodes to what was encoded", "a field differs");
	int cut_ok = 1;
	for (size_t n = 0; n < b.len; n++) {
		struct proto_reader c = {b.p, n, 0, 0};
		cut_ok &= msg_get_hello(&c, &d) < 0;
		msg_hello_free(&d);
	}
	check(cut_ok, "HELLO cut short at any byte is an error", "a prefix was accepted");
	proto_buf_free(&b);
}

static void test_apply(void)
{
	static const uint8_t code[] = {0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3};
	struct msg_segment segs[1] = {{0x7f0000000000, 4096, RW_PROT_RX, code, sizeof code}};
	uint64_t inits[1] = {0x7f0000000004};
	struct msg_redirect redirs[1] = {{0x401000, 0x7f0000000000, 0, "_ZN4Game6updateEf",
					  "Game::update(float)"}};
	struct msg_regsym syms[1] = {{"", "_ZN4Game6updateEf", RW_KIND_FUNC, 0x401000,
				     0x7f0000000000, 6}};
	static const uint8_t elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	struct msg_blob files[2] = {{elf, sizeof elf}, {code, 2}};
	struct msg_apply a = {segs, 1, 0x7f0000000100, inits, 1, redirs, 1, syms, 1, 9, files, 2}, d;
	struct proto_buf b = {0};
	msg_put_apply(&b, &a);
	struct proto_reader r = {b.p, b.len, 0, 0};
	int ok = msg_get_apply(&r, &d) == 0 && r.off == b.len && d.nsegs == 1 &&
		 d.segs[0].addr == segs[0].addr && d.segs[0].size == 4096 &&
		 d.segs[0].prot == RW_PROT_RX && d.segs[0].len == sizeof code &&
		 !memcmp(d.segs[0].data, code, sizeof code) && d.eh_frame == a.eh_frame &&
		 d.ninits == 1 && d.inits[0] == inits[0] && d.nredirs == 1 &&
		 d.redirs[0].from == 0x401000 && d.redirs[0].to == 0x7f0000000000 && !d.redirs[0].via &&
		 !strcmp(d.redirs[0].name, "_ZN4Game6updateEf") &&
		 !strcmp(d.redirs[0].display, "Game::update(float)") && d.nsyms == 1 &&
		 same_regsym(&d.syms[0], &syms[0]) && d.gen == 9 && d.nsymfiles == 2 &&
		 d.symfiles[0].len == sizeof elf && !memcmp(d.symfiles[0].data, elf, sizeof elf) &&
		 d.symfiles[1].len == 2 && !memcmp(d.symfiles[1].data, code, 2);
	msg_apply_free(&d);
	check(ok, "APPLY decodes to what was encoded (both names of a function, the symbol files)", "a field differs");
	int cut_ok = 1;
	for (size_t n = 0; n < b.len; n++) {
		struct proto_reader c = {b.p, n, 0, 0};
		cut_ok &= msg_get_apply(&c, &d) < 0;
		msg_apply_free(&d);
	}
	check(cut_ok, "APPLY cut short at any byte is an error", "a prefix was accepted");
	proto_buf_free(&b);
}

/* A count of a billion segments in a message of a few bytes. */
static void test_hostile_count(void)
{
	struct proto_buf b = {0};
	struct msg_apply d;
	proto_put_u32(&b, 1000000000u);
	proto_put_u64(&b, 0);
	struct proto_reader r = {b.p, b.len, 0, 0};
	int rc = msg_get_apply(&r, &d);
	check(rc < 0 && !d.segs && !d.nsegs, "a count beyond the bytes left is refused",
	      "it was taken");
	msg_apply_free(&d);
	proto_buf_free(&b);
	uint32_t n;
	b = (struct proto_buf){0};
	proto_put_u32(&b, 3);
	proto_put_str(&b, "malloc");
	r = (struct proto_reader){b.p, b.len, 0, 0};
	check(msg_get_lookup_count(&r, &n) < 0, "LOOKUP: 3 names in the bytes of 1 is refused",
	      "accepted");
	proto_buf_free(&b);
}

static void test_revert(void)
{
	struct proto_buf b = {0};
	struct msg_revert rv = {1, 7}, dv;
	msg_put_revert(&b, &rv);
	struct proto_reader r = {b.p, b.len, 0, 0};
	int ok = msg_get_revert(&r, &dv) == 0 && dv.by_gen == 1 && dv.to == 7 && r.off == b.len;
	proto_buf_free(&b);
	b = (struct proto_buf){0};
	struct msg_reverted out = {3, 5, 2, 6}, d;
	msg_put_reverted(&b, &out);
	r = (struct proto_reader){b.p, b.len, 0, 0};
	ok &= msg_get_reverted(&r, &d) == 0 && d.first == 3 && d.last == 5 && d.version == 2 &&
	      d.gen == 6;
	check(ok, "REVERT and its answer decode to what was encoded", "a field differs");
	int cut_ok = 1;
	for (size_t n = 0; n < b.len; n++) {
		struct proto_reader c = {b.p, n, 0, 0};
		cut_ok &= msg_get_reverted(&c, &d) < 0;
	}
	proto_buf_free(&b);
	b = (struct proto_buf){0};
	proto_put_u8(&b, 2);
	proto_put_u32(&b, 1);
	r = (struct proto_reader){b.p, b.len, 0, 0};
	cut_ok &= msg_get_revert(&r, &dv) < 0;
	proto_buf_free(&b);
	check(cut_ok, "REVERT: a cut answer or an unknown kind is an error", "it was taken");
}

int main(void)
{
	test_hello();
	test_apply();
	test_revert();
	test_hostile_count();
	return failed;
}
