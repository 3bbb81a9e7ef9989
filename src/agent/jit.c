/* Debuggers see patched code: each patch is registered through gdb's JIT
 * interface (gdb's manual, "JIT Compilation Interface"): one in-memory
 * ELF object per object of the patch, made by the driver
 * (link/symfile.c): its symbols and DWARF at the addresses the patch
 * gave them, so gdb names the new code's frames with file and line,
 * stops at `break FILE:LINE` in it, and shows its variables. gdb puts a
 * breakpoint in __jit_debug_register_code and reads the list when it
 * stops there, or when it attaches. The copies are made before the patch
 * and registered after it is in, outside the stop of the world (both
 * allocate); a failure leaves the patch unnamed, never undone. A patch
 * taken back is unregistered: its code never runs again. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "apply.h"

/* gdb's layout: a program that is a JIT itself links entries of its own
 * into the list. */
struct jit_code_entry {
	struct jit_code_entry *next_entry, *prev_entry;
	const char *symfile_addr;
	uint64_t symfile_size;
};

struct jit_descriptor {
	uint32_t version;
	uint32_t action_flag;	/* 1: register relevant_entry, 2: unregister it */
	struct jit_code_entry *relevant_entry, *first_entry;
};

/* Ours: gdb's entry, and the patch it describes; also in a list of our
 * own, so that only our entries are ever taken out. */
struct jit_entry {
	struct jit_code_entry gdb;
	uint32_t version;
	struct jit_entry *next;
};

static struct jit_entry *ours;

/* The names gdb looks for; a program that is a JIT itself shares them
 * with us (the agent comes first in the lookup: one list). */
__attribute__((visibility("default"), noinline)) void __jit_debug_register_code(void)
{
	__asm__ volatile("" ::: "memory");
}

__attribute__((visibility("default"))) struct jit_descriptor __jit_debug_descriptor = {1, 0, NULL, NULL};

void apply_jit_free(struct jit_entry *list)
{
	while (list) {
		struct jit_entry *next = list->next;
		free((void *)list->gdb.symfile_addr);
		free(list);
		list = next;
	}
}

/* Copies of the patch's symbol files (the message goes after the patch),
 * chained by next; NULL when there are none or memory is short. */
struct jit_entry *apply_jit_build(const struct msg_apply *m)
{
	struct jit_entry *list = NULL;
	for (uint32_t i = m->nsymfiles; i-- > 0;) {
		const struct msg_blob *b = &m->symfiles[i];
		struct jit_entry *e = calloc(1, sizeof *e);
		char *copy = e && b->len ? malloc(b->len) : NULL;
		if (!copy) {
			free(e);
			apply_jit_free(list);
			return NULL;
		}
		memcpy(copy, b->data, b->len);
		e->gdb.symfile_addr = copy, e->gdb.symfile_size = b->len;
		e->next = list;
		list = e;
	}
	return list;
}

static void tell_gdb(struct jit_code_entry *e, uint32_t action)
{
	__jit_debug_descriptor.relevant_entry = e;
	__jit_debug_descriptor.action_flag = action;
	__jit_debug_register_code();
	__jit_debug_descriptor.action_flag = 0;
}

/* Once the patch is in; the list is gdb's from now on. One thread at a
 * time: patches are applied one by one (patch_lock). */
void apply_jit_register(struct jit_entry *list, uint32_t version)
{
	while (list) {
		struct jit_entry *e = list;
		struct jit_code_entry *g = &e->gdb;
		list = e->next;
		e->version = version;
		e->next = ours;
		ours = e;
		g->prev_entry = NULL;
		g->next_entry = __jit_debug_descriptor.first_entry;
		if (g->next_entry)
			g->next_entry->prev_entry = g;
		__jit_debug_descriptor.first_entry = g;
		tell_gdb(g, 1);
	}
}

/* Patch version was taken back (patch_lock held). */
void apply_jit_unregister(int version)
{
	for (struct jit_entry **at = &ours; *at;) {
		struct jit_entry *e = *at;
		struct jit_code_entry *g = &e->gdb;
		if (e->version != (uint32_t)version) {
			at = &e->next;
			continue;
		}
		*at = e->next;
		if (g->prev_entry)
			g->prev_entry->next_entry = g->next_entry;
		else
			__jit_debug_descriptor.first_entry = g->next_entry;
		if (g->next_entry)
			g->next_entry->prev_entry = g->prev_entry;
		tell_gdb(g, 2);
		e->next = NULL;
		apply_jit_free(e);
	}
}
