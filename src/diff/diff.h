/* The diff stage: which functions of a newly compiled object differ from
 * the object of the code now running (the baseline). */
#ifndef RW_DIFF_H
#define RW_DIFF_H
#include <stdint.h>
#include "elf/elffile.h"

struct const_memo;

/* An object, decoded as the diff needs it: a section is scanned (code:
 * instruction starts, diff's own relocations) and its relocations sorted
 * when something of it is first compared, and a constant section's piece
 * boundaries found when first asked. A Rust crate's object has a section
 * per function: most of them are never looked at, being equal as a whole
 * to their twin section (diff_changed_set). */
struct diff_obj {
	struct elf_object *obj;	/* not owned: may be closed before diff_obj_free */
	size_t nsections;
	uint8_t *prepared;	/* [section]: scanned and sorted */
	uint8_t **starts;	/* [section], NULL for non-code sections */
	size_t *norig;		/* [section]: its relocations before the scan added some */
	struct rw_index byname;	/* defined symbols by name (up to .llvm.N) */
	uint32_t **rsorted;	/* [section]: its relocations' indexes by offset */
	size_t *nrsorted;
	uint8_t *bounded;	/* [constant section]: bounds found */
	uint64_t **bounds;	/* [constant section]: sorted offsets where a piece may begin */
	size_t *nbounds;
	uint64_t **incoming;	/* [constant section]: relocations into it, section << 32 | index */
	size_t *nincoming;
	int incoming_read;
	uint8_t *same;		/* [section]: equal as a whole to its twin in the base (SAME_*) */
	uint16_t *twins;	/* [section]: the base's section it was compared with, 0 none yet */
	struct const_memo *memo;	/* content hashes of pieces, filled as compared */
};

void diff_obj_init(struct diff_obj *d, struct elf_object *obj);
void diff_obj_free(struct diff_obj *d);

/* Does function f of nw differ from its twin (same name and scope) in
 * base: size, bytes outside relocation fields, or what each relocation
 * refers to (compared by symbol, and by contents for string literals)?
 * A function without a twin is new: 1. */
int diff_function_changed(const struct diff_obj *base, const struct diff_obj *nw,
			  const struct elf_symbol *f);

/* Does gcc's producer string p..end (DW_AT_producer: "GNU C17 12.2.0
 * -mtune=generic -g -O2 ...") turn -fipa-ra on? It is on from -O2 (and
 * -Os, -O3, -Ofast) unless -fno-ipa-ra or -flive-patching; -O0, -O1 and
 * -Og leave it off (a function's optimize attribute may still turn it on).
 * *flag: 1 or 0 when the string says -fipa-ra or -fno-ipa-ra (or
 * -flive-patching) itself, else -1. */
int diff_producer_ipa_ra(const char *p, const char *end, int *flag);

/* gcc's clones and split-off parts (foo.cold, foo.isra.0, foo.part.0,
 * foo.constprop.0) have no fixed calling convention: a new foo.isra.0 may
 * take other arguments than the running one, and foo.cold is not entered
 * by calls at all. They get no entry jump: old code keeps its own, new code
 * calls the new ones, and their callers in the file change with them
 * (diff_changed_set), so the new clone is reached. */
int diff_is_clone(const char *name);
/* The length of name without its clone suffix (foo.isra.0: 3). */
size_t diff_clone_base_len(const char *name);

/* Why changed[i] is set: the function or constant differs, or only its
 * callee does (gcc's -fipa-ra, below), or the function is new (the
 * baseline has none of its name). */
enum { DIFF_SAME, DIFF_CHANGED, DIFF_IPA_RA, DIFF_NEW };

/* changed[i] for every symbol i of nw: a function that differs (or is new,
 * or base is NULL), or (DIFF_IPA_RA) that calls one of the same object,
 * transitively, in an object gcc built with -fipa-ra: an unchanged caller
 * may rely on what its callee leaves untouched in registers. A constant (an object of a constant
 * section) is changed when its contents differ, followed through the
 * relocations in it, or it is new. */
void diff_changed_set(const struct diff_obj *base, const struct diff_obj *nw, uint8_t *changed);

/* Data of nw that base has too, with another initial value: the running
 * program keeps its current value, and should be told. Up to cap names. */
size_t diff_changed_inits(const struct diff_obj *base, const struct diff_obj *nw,
			  const char **names, size_t cap);

/* Functions of base that nw no longer has (a function renamed, or whose
 * C++ or Rust v0 signature changed its symbol): up to cap names. */
size_t diff_removed_functions(const struct diff_obj *base, const struct diff_obj *nw,
			      const char **names, size_t cap);
/* The diff of one patch (set.c): each new object against its baseline,
 * made once; the session reads how much changed, the linker which symbols
 * (linker.h). */
#define DIFF_MAX_INITS 8
struct diff_entry {
	const char *path;		/* the new object (not owned) */
	const char *base;		/* its baseline, NULL: none, all of it is new */
	struct elf_object *obj;		/* the new object as read, open until the set is freed */
	struct elf_object *base_obj;	/* the baseline already read (not owned), or NULL */
	uint8_t *changed;		/* per symbol of the new object (DIFF_*); NULL: all */
	size_t nsymbols;
	size_t nchanged;		/* functions and global constants changed */
	char *inits[DIFF_MAX_INITS];	/* data whose initial value changed */
	size_t ninits;
	char *removed[DIFF_MAX_INITS];	/* functions the baseline had, the new object not */
	size_t nremoved;
	int has_base;			/* compared with a baseline: DIFF_NEW means new */
	/* The debug units (offsets of their headers in .debug_info) that
	 * describe changed code or constants: the type checks read only
	 * those. all_units: no such restriction could be made (no diff, no
	 * relocations to go by): read every one. */
	uint64_t *units;
	size_t nunits;
	int all_units;
};
struct diff_set {
	struct diff_entry *v;
	size_t n;
};
/* Diff paths[i] against bases[i] (NULL: no baseline); base_objs (optional):
 * bases[i] already read, not read again (a session's last patch), NULL
 * entries read. Returns the number of functions and global constants
 * changed (an unreadable object counts as one: the link says what is wrong
 * with it). An object equal byte for byte to its baseline is not diffed. */
size_t diff_set_make(struct diff_set *d, char *const *paths, const char *const *bases,
		     struct elf_object *const *base_objs, size_t n);
/* Did symbol s of o, object oi of the patch, change? 1 for an object the
 * set does not have (an archive member) or a NULL set. */
int diff_set_changed(const struct diff_set *d, size_t oi, const struct elf_object *o,
		     const struct elf_symbol *s);
/* Object oi of the set as the diff read it, when it is path; NULL else.
 * It stays the set's (open until diff_set_free). */
const struct elf_object *diff_set_object(const struct diff_set *d, size_t oi, const char *path);
/* Object oi, read: the caller's now (elf_object_close, free), the set's no
 * longer. A session keeps it as the next patch's baseline. */
struct elf_object *diff_set_take(struct diff_set *d, size_t oi);
void diff_set_free(struct diff_set *d);

#endif
