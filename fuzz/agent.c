/* Fuzz target: the agent's decoding of the driver's requests
 * (src/agent/requests.c, apply.c; jit.c makes its debug object): LOOKUP, ALLOC and the APPLY patch
 * message. The agent's files behind the requests are compiled in whole to
 * reach the static parser; what they need from the rest of the agent is
 * stubbed below. Nothing is ever applied: a patch is parsed, checked
 * against a pretend region the way the agent checks it before writing
 * anything, and freed; what the check lets through must lie where the
 * agent may write.
 *
 * The first input byte picks the request, the rest is its payload.
 *
 * Built with RW_FUZZ_REPLAY this is build/unit/test_fuzz_agent, which
 * replays fuzz/corpus/agent and fuzz/regress/agent. */
#define _GNU_SOURCE
#ifdef RW_FUZZ_REPLAY
#include "replay.h"	/* before the agent, which poisons exit */
#endif
#include "fuzz.h"
#include "../src/agent/apply.c"
#include "../src/agent/history.c"
#include "../src/agent/jit.c"
#include "../src/agent/registry.c"
#include "../src/agent/requests.c"
#include <stdarg.h>

/* --- the rest of the agent, stubbed -------------------------------------- */

/* What ALLOC hands out and APPLY may fill, and below it what earlier
 * patches committed (where an entry jump may go): never mapped, never
 * touched. */
#define FAKE_LO 0x7f0000000000ull
#define FAKE_SIZE (16ull << 20)

static int fake_in(uint64_t lo, uint64_t addr, uint64_t size)
{
	return addr >= lo && size <= FAKE_SIZE && addr - lo <= FAKE_SIZE - size;
}

uint64_t agent_page_size = 4096;
int agent_emulated;

int agent_fail(struct agent_err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int agent_dl_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
	return dl_iterate_phdr(cb, data);	/* one thread, no fork */
}

int agent_is_held(void)
{
	return 0;
}

uint64_t agent_now_ns(void)
{
	return 0;
}

int region_alloc(uint64_t lo, uint64_t hi, uint64_t size, uint64_t *addr, struct agent_err *e)
{
	if (!size || size > FAKE_SIZE)
		return agent_fail(e, "no room for %#lx bytes", (unsigned long)size);
	*addr = FAKE_LO;
	return 0;
}

int region_is_pending(uint64_t addr, uint64_t size)
{
	return fake_in(FAKE_LO, addr, size);
}

int region_is_committed(uint64_t addr, uint64_t size)
{
	return fake_in(FAKE_LO - FAKE_SIZE, addr, size);
}

void region_commit(void)
{
}

void region_usage(uint64_t *used, uint64_t *reserved)
{
	*used = 0, *reserved = FAKE_SIZE;
}

void region_rollback(void)
{
}

int api_run(int (*run)(void *ctx, struct api_note *note, struct agent_err *e), void *ctx,
	    struct agent_err *e)
{
	return agent_fail(e, "nothing is applied in a fuzz run");
}

int stop_world_and(const struct stop_range *ranges, size_t nranges,
		   int (*write)(void *ctx, struct agent_err *e), void *ctx,
		   uint64_t *pause_ns, uint32_t *nthreads, struct agent_err *e)
{
	return agent_fail(e, "the world is not stopped in a fuzz run");
}

/* --- the target ------------------------------------------------------------ */

static volatile uint8_t agent_sink;

/* What a parsed patch holds is what check_patch and the writers use
 * without further checks: segment bytes inside the message, every name a
 * string. */
static void agent_check_patch(const struct patch *p, const struct proto_reader *r)
{
	for (uint32_t i = 0; i < p->m.nsegs; i++) {
		const struct msg_segment *s = &p->m.segs[i];
		FUZZ_CHECK(s->data && s->data >= r->p && (size_t)(s->data - r->p) + s->len <= r->len);
		if (s->len)
			agent_sink ^= s->data[0] ^ s->data[s->len - 1];
	}
	for (uint32_t i = 0; i < p->m.nredirs; i++)
		FUZZ_CHECK(p->m.redirs[i].name && p->m.redirs[i].display &&
			   p->funcs[i] == p->m.redirs[i].name && p->displays[i] == p->m.redirs[i].display);
	for (uint32_t i = 0; i < p->m.nsyms; i++)
		FUZZ_CHECK(p->m.syms[i].scope && p->m.syms[i].name);
}

/* [lo, lo+n) inside an executable segment of a loaded module, computed
 * without wrapping. */
static int agent_text_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	const uint64_t *want = data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && want[0] >= lo &&
		    want[1] <= ph->p_filesz && want[0] - lo <= ph->p_filesz - want[1])
			return 1;
	}
	return 0;
}

static int agent_in_text(uint64_t lo, uint64_t n)
{
	uint64_t want[2] = {lo, n};
	return dl_iterate_phdr(agent_text_cb, want);
}

/* What check_patch accepted is safe to act on: the writers copy into the
 * segments, read and write the bytes at each entry (and its padding), and
 * call the constructors. */
static void agent_check_accepted(const struct patch *p)
{
	for (uint32_t i = 0; i < p->m.nsegs; i++)
		FUZZ_CHECK(region_is_pending(p->m.segs[i].addr, p->m.segs[i].size));
	for (uint32_t i = 0; i < p->m.nredirs; i++) {
		const struct msg_redirect *d = &p->m.redirs[i];
		uint64_t at = d->via ? d->via : d->from;
		uint64_t n = d->via ? d->from - d->via + 2 : ARCH_JUMP_SIZE;
		FUZZ_CHECK(at + n > at);
		FUZZ_CHECK(agent_in_text(at, n) || region_is_committed(at, n));
		FUZZ_CHECK(is_new_code(p, d->to));
	}
	for (uint32_t i = 0; i < p->m.ninits; i++)
		FUZZ_CHECK(is_new_code(p, p->m.inits[i]));
}

static int agent_patch(struct proto_reader *r, struct agent_err *e)
{
	struct patch p = {.memfd = -1};
	int rc = parse_patch(r, &p, e);
	if (rc == 0) {
		agent_check_patch(&p, r);
		rc = check_patch(&p, e);
	}
	if (rc == 0)
		agent_check_accepted(&p);
	patch_free(&p);
	return rc;
}

static int fuzz_agent(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	struct proto_reader r = {data + 1, size - 1, 0, 0};
	struct proto_buf reply = {0};
	struct agent_err e = {{0}};
	int rc;
	switch (data[0] % 3) {
	case 0:
		rc = request_lookup(&r, &reply, &e);
		/* Per name: what was found, its address, its TLS module. */
		if (rc == 0 && !reply.err)
			FUZZ_CHECK(reply.len >= 4 && (reply.len - 4) % 17 == 0);
		break;
	case 1:
		rc = request_alloc(&r, &reply, &e);
		if (rc == 0 && !reply.err)
			FUZZ_CHECK(reply.len == 8);
		break;
	default:
		rc = agent_patch(&r, &e);
		break;
	}
	FUZZ_CHECK(rc == 0 || (rc == -1 && e.msg[0]));
	FUZZ_CHECK(r.off <= r.len);
	proto_buf_free(&reply);
	return rc == 0;
}

RW_FUZZ_ENTRY(fuzz_agent)

#ifdef RW_FUZZ_REPLAY
static const struct replay_target agent_targets[] = {
	{"agent", fuzz_agent, NULL},
};

int main(void)
{
	return replay_main(agent_targets, 1);
}
#endif
