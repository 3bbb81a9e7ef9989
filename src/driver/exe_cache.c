/* What a patch reads of the program's files, kept from one patch to the
 * next: the image of the executable (or of the library patched) — its
 * symbols, their index by name and by address — and its type information
 * (types.c). On a program of a million symbols reading and indexing them
 * takes a few hundred ms, far more than the rest of a patch: a session
 * reads them once, `rewire apply` once per command.
 *
 * An entry is the file of one module, under the module's path. It serves
 * a patch only while it is still the file the process maps: the mapped
 * file (/proc/PID/exe, /proc/PID/map_files/..., or the path when the
 * process may not be looked at) has the device, inode, size and
 * modification time it had when the entry was read, and the module the
 * image's build-id. A rebuild, a restarted program that runs the rebuilt
 * file, a process that exec'd another build: another file, read again,
 * replacing the entry of that path. So the cache holds one image per path
 * the program's processes run; processes running two builds of one path
 * at once cost a read at each patch, never a wrong image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "driver.h"
#include "diff/types.h"

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct kept {
	char *path;		/* the module's path: the key */
	char *from;		/* the file read: the path, or the process's mapping of it */
	struct file_id id;	/* of the file mapped, when the entry was read */
	int has_id;		/* 0: unknown, the entry serves no other patch */
	struct elf_image img;
	struct types_prog *types;
};

/* Entries by pointer: an image handed out stays where it is while the
 * patch reads other modules. */
struct exe_cache {
	struct kept **v;
	size_t n, cap;
};

struct exe_cache *exe_cache_new(void)
{
	return rw_calloc(1, sizeof(struct exe_cache));
}

/* What the entry read; its path stays. */
static void drop(struct kept *k)
{
	if (k->img.map)
		elf_image_close(&k->img);
	types_prog_free(k->types);
	free(k->from);
	k->types = NULL;
	k->from = NULL;
	k->has_id = 0;
}

void exe_cache_free(struct exe_cache *c)
{
	for (size_t i = 0; c && i < c->n; i++) {
		drop(c->v[i]);
		free(c->v[i]->path);
		free(c->v[i]);
	}
	if (c)
		free(c->v);
	free(c);
}

/* /proc/PID/map_files/ entry of the first mapping of path: the file the
 * process mapped, even when a rebuild replaced it on disk since. */
static int mapped_file(int pid, const char *path, char *out, size_t cap)
{
	char maps[64], line[4096 + 128];
	snprintf(maps, sizeof maps, "/proc/%d/maps", pid);
	FILE *f = fopen(maps, "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f)) {
		char range[64];
		unsigned long long off;
		int name = 0;
		if (sscanf(line, "%63s %*s %llx %*s %*s %n", range, &off, &name) < 2 || !name)
			continue;
		line[strcspn(line, "\n")] = 0;
		size_t n = strlen(path);
		/* " (deleted)": the build replaced the file since it was mapped */
		if (off == 0 && !strncmp(line + name, path, n) &&
		    (!line[name + n] || !strcmp(line + name + n, " (deleted)"))) {
			snprintf(out, cap, "/proc/%d/map_files/%s", pid, range);
			found = 1;
		}
	}
	if (f)
		fclose(f);
	return found ? 0 : -1;
}

/* Is /proc/PID/exe the program's executable, path? Under an emulator
 * (qemu-user runs an aarch64 program) it is the emulator's. */
static int exe_is(int pid, const char *path)
{
	char link[64], target[4096 + 16];
	snprintf(link, sizeof link, "/proc/%d/exe", pid);
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n < 0)
		return 1;	/* not to be looked at: the build-id tells */
	target[n] = 0;
	size_t len = strlen(path);
	return !strncmp(target, path, len) && (!target[len] || !strcmp(target + len, " (deleted)"));
}

/* The kernel's name for the file module m of p maps, else its path. */
static void mapped_path(const struct link_process *p, size_t m, char *out, size_t cap)
{
	if (m == 0 && exe_is(p->pid, p->mods[0].path))
		snprintf(out, cap, "/proc/%d/exe", p->pid);
	else if (mapped_file(p->pid, p->mods[m].path, out, cap) < 0)
		snprintf(out, cap, "%s", p->mods[m].path);
}

static int file_id(const char *path, struct file_id *id)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	*id = (struct file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
	return 0;
}

/* Of the file module m of p maps; of its path when the process may not
 * be looked at (another user's): then the build-id tells the rest. */
static int mapped_id(const struct link_process *p, size_t m, struct file_id *id)
{
	char path[4096 + 64];
	mapped_path(p, m, path, sizeof path);
	return file_id(path, id) == 0 ? 0 : file_id(p->mods[m].path, id);
}

static int same_id(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static int same_build(const struct elf_image *img, const struct msg_module *m)
{
	return img->build_id_len == m->build_id_len &&
	       !memcmp(img->build_id, m->build_id, m->build_id_len);
}

/* Module m's file: the one at its path when it is the build the process
 * runs (the build-ids agree), else the one the kernel still has mapped. */
static int read_module(struct kept *k, const struct link_process *p, size_t m)
{
	const struct msg_module *mod = &p->mods[m];
	char alt[4096 + 64];
	mapped_path(p, m, alt, sizeof alt);
	const char *paths[2] = {mod->path, alt};
	for (int i = 0; i < 2; i++) {
		if (elf_image_open(&k->img, paths[i]) < 0)
			continue;
		if (same_build(&k->img, mod)) {
			k->from = rw_strdup(paths[i]);
			k->img.path = k->from;
			k->types = types_prog_open(k->from);
			return 0;
		}
		elf_image_close(&k->img);
	}
	return rw_fail("%s: the file on disk is not the one process %d runs (build-ids differ): "
		       "was it rebuilt after the program started?", mod->path, p->pid);
}

/* The entry of path, a new one (empty) when there is none. */
static struct kept *find(struct exe_cache *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i]->path, path))
			return c->v[i];
	c->v = rw_grow(c->v, &c->cap, c->n, sizeof *c->v);
	c->v[c->n] = rw_calloc(1, sizeof **c->v);
	c->v[c->n]->path = rw_strdup(path);
	return c->v[c->n++];
}

struct elf_image *exe_cache_image(struct exe_cache *c, const struct link_process *p, size_t m,
				 struct types_prog **types)
{
	struct file_id id = {0};
	int has_id = mapped_id(p, m, &id) == 0;
	struct kept *k = find(c, p->mods[m].path);
	if (!k->img.map || !has_id || !k->has_id || !same_id(&k->id, &id) ||
	    !same_build(&k->img, &p->mods[m])) {
		struct kept fresh = {.path = k->path, .id = id, .has_id = has_id};
		/* Unreadable now: what the entry holds stays, for the
		 * processes that run it. */
		if (read_module(&fresh, p, m) < 0)
			return NULL;
		drop(k);
		*k = fresh;
	}
	if (types)
		*types = k->types;
	return &k->img;
}
