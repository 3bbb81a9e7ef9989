/* The messages of the driver <-> agent channel: what each carries, and
 * its encoding and decoding, in one place that both sides compile in.
 *
 *   HELLO   driver: nothing            agent: struct msg_hello
 *   LOOKUP  driver: names              agent: struct msg_found per name
 *   ALLOC   driver: struct msg_alloc   agent: u64 address
 *   APPLY   driver: struct msg_apply   agent: struct msg_apply_times
 *   GO      driver: nothing            agent: nothing
 *   ERROR   agent: str message, in place of OK
 *
 * Decoders check every count against the bytes left (a hostile count
 * cannot make them allocate more than the message could describe), set
 * the reader's error flag on anything malformed, and never exit: the agent
 * decodes inside other people's programs. What a decoder allocates, its
 * _free function gives back, also after an error. */
#ifndef RW_MSG_H
#define RW_MSG_H
#include "proto/proto.h"

/* A module (the executable or a shared library) of the process, as the
 * agent sees it with dl_iterate_phdr. */
struct msg_module {
	char *path;
	uint64_t base;			/* load bias */
	uint64_t text_lo, text_hi;	/* executable mappings */
	uint64_t load_lo, load_hi;	/* all PT_LOAD mappings (the driver's, not sent) */
	uint8_t build_id[64];
	uint32_t build_id_len;
	uint64_t tls_modid;
	int tls_static;
	int64_t tls_tpoff;		/* TLS block offset from the thread pointer */
};

/* A symbol defined by an earlier patch (kept by the agent). For functions,
 * orig is the address callers of the first version know, addr the newest
 * version, and size the room at addr before the next symbol (what a jump
 * may overwrite). For data, addr is the storage and size its size. */
struct msg_regsym {
	char *scope;			/* "" for globals, else the file's basename */
	char *name;
	uint8_t kind;			/* enum proto_kind */
	uint64_t orig, addr, size;
};

struct msg_hello {
	uint32_t pid;
	struct msg_module *mods;		/* [0] is the executable */
	uint32_t nmods;
	struct msg_regsym *reg;
	uint32_t nreg;
	uint32_t version;		/* the agent's number of its newest patch */
	uint32_t gen;			/* the session's number of it */
	uint8_t held;			/* it waits for GO before the program runs */
};

/* LOOKUP's answer for one name: dlsym in the process. */
struct msg_found {
	uint8_t found;			/* enum proto_found */
	uint64_t addr;			/* RW_FOUND_ADDR: address; TLS: offset */
	uint64_t modid;			/* TLS: its module */
};

struct msg_alloc {
	uint64_t lo, hi;		/* somewhere in [lo, hi) if it can */
	uint64_t size;
};

/* APPLY: a patch, fully linked for the addresses ALLOC gave. */
struct msg_segment {
	uint64_t addr, size;		/* size: page-aligned, of the mapping */
	uint8_t prot;			/* enum proto_prot */
	const uint8_t *data;		/* the bytes (len <= size), into the message */
	uint32_t len;
};

struct msg_blob {
	const uint8_t *data;		/* into the message */
	uint32_t len;
};

/* An entry jump: the function at from runs to from now on. */
struct msg_redirect {
	uint64_t from, to;
	uint64_t via;			/* padding for a short function's jump, or 0 */
	char *name;			/* linkage name */
	char *display;			/* demangled, for people */
};

struct msg_apply {
	struct msg_segment *segs;
	uint32_t nsegs;
	uint64_t eh_frame;		/* its .eh_frame, or 0 */
	uint64_t *inits;		/* constructors to run, in order */
	uint32_t ninits;
	struct msg_redirect *redirs;
	uint32_t nredirs;
	struct msg_regsym *syms;		/* what the patch defines, for the next ones */
	uint32_t nsyms;
	uint32_t gen;			/* the session's number for it, 0: none */
	/* For debuggers: a relocatable ELF file per object of the patch, its
	 * symbols and DWARF at the addresses of this patch (link/symfile.c). */
	struct msg_blob *symfiles;
	uint32_t nsymfiles;
};

struct msg_apply_times {
	uint64_t write_ns, pause_ns, total_ns;
	uint32_t nthreads;
};

void msg_put_module(struct proto_buf *b, const struct msg_module *m);
void msg_put_regsym(struct proto_buf *b, const struct msg_regsym *s);
void msg_put_hello(struct proto_buf *b, const struct msg_hello *h);
int msg_get_hello(struct proto_reader *r, struct msg_hello *h);
void msg_hello_free(struct msg_hello *h);

/* LOOKUP: u32 n, then n strings (read each with proto_get_str). */
void msg_put_lookup(struct proto_buf *b, const char *const *names, uint32_t n);
int msg_get_lookup_count(struct proto_reader *r, uint32_t *n);	/* -1: malformed */
void msg_put_found(struct proto_buf *b, const struct msg_found *f);
void msg_get_found(struct proto_reader *r, struct msg_found *f);

void msg_put_alloc(struct proto_buf *b, const struct msg_alloc *a);
void msg_get_alloc(struct proto_reader *r, struct msg_alloc *a);

void msg_put_apply(struct proto_buf *b, const struct msg_apply *a);
int msg_get_apply(struct proto_reader *r, struct msg_apply *a);
void msg_apply_free(struct msg_apply *a);
/* REVERT: every patch after `to` taken back — by the session's number
 * (by_gen), else by the process's own. The answer: the process's patches
 * taken back (first..last, 0 when none), and what it runs now. */
struct msg_revert {
	uint8_t by_gen;
	uint32_t to;
};
struct msg_reverted {
	uint32_t first, last;	/* versions taken back; 0: none */
	uint32_t version, gen;	/* the newest patch still in, and its session number */
};
void msg_put_revert(struct proto_buf *b, const struct msg_revert *r);
int msg_get_revert(struct proto_reader *r, struct msg_revert *v);
void msg_put_reverted(struct proto_buf *b, const struct msg_reverted *r);
int msg_get_reverted(struct proto_reader *r, struct msg_reverted *v);

void msg_put_apply_times(struct proto_buf *b, const struct msg_apply_times *t);
void msg_get_apply_times(struct proto_reader *r, struct msg_apply_times *t);

/* A string of the message, malloc'd; NULL and the error flag set when it
 * is malformed or memory is short. */
char *msg_get_strdup(struct proto_reader *r);

#endif
