/* Which headers a unit includes, read from its sources without a compiler.
 *
 * A session needs each unit's headers from the start: a save of one
 * patches the units that include it. The build's depfiles give them when
 * it wrote some; else the preprocessor would, at a cost that grows with
 * the program (seconds of CPU for a hundred units). This reads the
 * #include lines instead, and errs on one side only: every branch of #if
 * is followed, so a header listed may be one the compiler skips (its save
 * costs a compile whose diff finds nothing), but none that the compiler
 * includes is missed.
 *
 * Names resolve as in gcc and clang: "x" in the directory of the file that
 * includes it (its directory as found, links in it resolved, the file's
 * own name kept: a header that is a link searches beside the link), then
 * -iquote, -I, CPATH, -isystem, C_INCLUDE_PATH (and CPLUS_, OBJC_),
 * -idirafter; <x> from -I on. A header found in none of those is one of
 * the compiler's own (libc, libstdc++): neither listed nor read, as -MMD
 * does. #include_next goes on from where its file was found, which the
 * scan does not track: every other match is taken. An #include of a macro
 * cannot be resolved without preprocessing: the unit's headers are then
 * unknown, and the caller asks the compiler.
 *
 * The lexer knows comments, string and character literals (C++ raw
 * strings and digit separators too), and backslash-newlines, so that the
 * opening of a comment inside a string does not hide the #include lines
 * after it. Each file is read once per cache; its includes are resolved
 * once per search path (the units of a program mostly share one or two). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "includes.h"
#include "util.h"

/* --- files and what they include ------------------------------------------- */

enum { INC_QUOTE = 1, INC_NEXT = 2 };

struct directive {
	char *name;		/* as written between the quotes or brackets */
	int flags;
};

/* A search path: -iquote's directories, then those <x> is searched in
 * from dirs[angle] on. Resolved; those that do not exist left out. */
struct search {
	char **dirs;
	size_t n, cap, angle;
};

struct hfile;
struct list {
	struct hfile **v;
	size_t n, cap;
};

/* A file's includes, resolved through one search path. */
struct edges {
	const struct search *s;
	struct list to;
};

struct hfile {
	char *key;		/* its directory resolved, and its own name */
	size_t dirlen;		/* key[0..dirlen): where its "x" are searched first */
	char *real;		/* links resolved: the name listed and watched */
	struct directive *incs;
	size_t nincs, capincs;
	int state;		/* 0: unread; 1: read; -1: unreadable, or includes a macro */
	unsigned walk;		/* the last unit whose walk reached it */
	struct edges *edges;
	size_t nedges, capedges;
};

struct inc_cache {
	struct rw_table files;	/* key → struct hfile */
	struct rw_table found;	/* a path the compiler would try → its hfile, or &missing */
	struct rw_table dirs;	/* a directory as named → resolved (char *), or &missing */
	struct rw_table searches;	/* a search path's directories, joined → struct search */
	unsigned walk;
};

static char missing;

static void push(struct list *l, struct hfile *f)
{
	l->v = rw_grow(l->v, &l->cap, l->n, sizeof *l->v);
	l->v[l->n++] = f;
}

/* dir with links, "." and ".." resolved; NULL when there is none. */
static const char *real_dir(struct inc_cache *c, const char *dir)
{
	int added;
	void **v = rw_table_put(&c->dirs, dir, &added);
	if (added) {
		char buf[PATH_MAX];
		*v = realpath(dir, buf) ? rw_strdup(buf) : (void *)&missing;
	}
	return *v == &missing ? NULL : *v;
}

static struct hfile *file_of(struct inc_cache *c, const char *key)
{
	int added;
	void **v = rw_table_put(&c->files, key, &added);
	if (added) {
		struct hfile *f = rw_calloc(1, sizeof *f);
		char buf[PATH_MAX];
		struct stat st;
		f->key = rw_strdup(key);
		f->dirlen = (size_t)(strrchr(key, '/') - key);
		f->real = rw_strdup(lstat(key, &st) == 0 && S_ISLNK(st.st_mode) && realpath(key, buf) ?
				    buf : key);
		*v = f;
	}
	return *v;
}

/* The file at path (absolute), or &missing. */
static void *look_up(struct inc_cache *c, const char *path)
{
	struct stat st;
	char dir[PATH_MAX], key[PATH_MAX * 2];
	const char *slash = strrchr(path, '/'), *rdir;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || !slash || slash - path >= PATH_MAX)
		return &missing;
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	if (!(rdir = real_dir(c, dir[0] ? dir : "/")))
		return &missing;
	snprintf(key, sizeof key, "%s/%s", strcmp(rdir, "/") ? rdir : "", slash + 1);
	return file_of(c, key);
}

/* The file at path, as the compiler tries it (a directory, '/', the name
 * written), or NULL. */
static struct hfile *find(struct inc_cache *c, const char *path)
{
	int added;
	void **v = rw_table_put(&c->found, path, &added);
	if (added)
		*v = look_up(c, path);
	return *v == &missing ? NULL : *v;
}

/* --- reading a file -------------------------------------------------------- */

static int is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       (unsigned char)c >= 0x80;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The compiler's first step: a backslash at the end of a line joins it
 * with the next. In place; the new length. */
static size_t splice_lines(char *t, size_t n)
{
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i] == '\\') {
			size_t k = i + 1;
			while (k < n && is_blank(t[k]) && t[k] != '\n')
				k++;
			if (k < n && t[k] == '\n') {
				i = k;
				continue;
			}
		}
		t[j++] = t[i];
	}
	return j;
}

static const char *past_comment(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '*' && p[1] == '/')
			return p + 2;
	return end;
}

static const char *past_blanks(const char *p, const char *end)
{
	for (;;) {
		while (p < end && is_blank(*p))
			p++;
		if (p + 1 < end && p[0] == '/' && p[1] == '*')
			p = past_comment(p + 2, end);
		else
			return p;
	}
}

/* A string or character literal ends at its quote, or at the end of the
 * line (an apostrophe in an #error's words, in #if 0 prose). */
static const char *past_literal(const char *p, const char *end)
{
	char q = *p++;
	while (p < end && *p != q && *p != '\n')
		p += *p == '\\' && p + 1 < end && p[1] != '\n' ? 2 : 1;
	return p < end && *p == q ? p + 1 : p;
}

/* A preprocessing number: digit separators (1'000) are no literals. */
static const char *past_number(const char *p, const char *end)
{
	for (p++; p < end;) {
		if (is_ident(*p) || *p == '.')
			p++;
		else if ((*p == '+' || *p == '-') && strchr("eEpP", p[-1]))
			p++;
		else if (*p == '\'' && p + 1 < end && is_ident(p[1]))
			p += 2;
		else
			break;
	}
	return p;
}

/* R"delim( ... )delim": p at its quote. NULL when that is no raw string. */
static const char *past_raw(const char *p, const char *end)
{
	const char *d = p + 1, *open = d;
	while (open < end && open - d <= 16 && !strchr(" ()\\\t\v\f\n\"", *open))
		open++;
	if (open >= end || *open != '(' || open - d > 16)
		return NULL;
	size_t n = (size_t)(open - d);
	for (const char *q = open + 1; q + n + 1 < end; q++)
		if (*q == ')' && !memcmp(q + 1, d, n) && q[n + 1] == '"')
			return q + n + 2;
	return NULL;
}

static int is_word(const char *w, size_t n, const char *word)
{
	return n == strlen(word) && !memcmp(w, word, n);
}

static const char *past_token(const char *p, const char *end)
{
	if (*p == '"' || *p == '\'')
		return past_literal(p, end);
	if ((*p >= '0' && *p <= '9') || (*p == '.' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
		return past_number(p, end);
	if (!is_ident(*p))
		return p + 1;
	const char *q = p, *raw;
	while (q < end && is_ident(*q))
		q++;
	size_t n = (size_t)(q - p);
	int prefix = is_word(p, n, "R") || is_word(p, n, "LR") || is_word(p, n, "uR") ||
		     is_word(p, n, "UR") || is_word(p, n, "u8R");
	if (prefix && q < end && *q == '"' && (raw = past_raw(q, end)))
		return raw;
	return q;
}

static void add_directive(struct hfile *f, const char *name, size_t n, int flags)
{
	f->incs = rw_grow(f->incs, &f->capincs, f->nincs, sizeof *f->incs);
	f->incs[f->nincs].name = rw_malloc(n + 1);
	memcpy(f->incs[f->nincs].name, name, n);
	f->incs[f->nincs].name[n] = 0;
	f->incs[f->nincs++].flags = flags;
}

/* After a '#' that starts a line: an include is noted; anything after it
 * on the line is read as other text is. */
static const char *directive(struct hfile *f, const char *p, const char *end)
{
	const char *w = p = past_blanks(p, end);
	while (p < end && is_ident(*p))
		p++;
	size_t n = (size_t)(p - w);
	int flags = 0;
	if (is_word(w, n, "include_next"))
		flags = INC_NEXT;
	else if (!is_word(w, n, "include") && !is_word(w, n, "import"))
		return p;
	p = past_blanks(p, end);
	char close = p < end && *p == '"' ? '"' : p < end && *p == '<' ? '>' : 0;
	const char *name = p + 1, *e = name;
	while (close && e < end && *e != close && *e != '\n')
		e++;
	if (!close || e >= end || *e != close || e == name) {
		f->state = -1;	/* a macro: only the preprocessor knows */
		return p;
	}
	add_directive(f, name, (size_t)(e - name), flags | (close == '"' ? INC_QUOTE : 0));
	return e + 1;
}

static void scan_text(struct hfile *f, const char *p, const char *end)
{
	int bol = 1;	/* only blanks and comments since the line began */
	while (p < end) {
		if (*p == '\n') {
			bol = 1;
			p++;
		} else if (is_blank(*p)) {
			p++;
		} else if (p + 1 < end && p[0] == '/' && p[1] == '*') {
			p = past_comment(p + 2, end);
		} else if (p + 1 < end && p[0] == '/' && p[1] == '/') {
			while (p < end && *p != '\n')
				p++;
		} else if (*p == '#' && bol) {
			p = directive(f, p + 1, end);
			bol = 0;
		} else {
			p = past_token(p, end);
			bol = 0;
		}
	}
}

static int read_all(const char *path, char **text, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t n = 0, cap = (size_t)st.st_size + 1;
	char *t = rw_malloc(cap);
	for (ssize_t r; n < cap && (r = read(fd, t + n, cap - n)) != 0; n += (size_t)r) {
		if (r < 0 && errno == EINTR)
			r = 0;
		else if (r < 0)
			break;
	}
	close(fd);
	*text = t;
	*len = n < cap ? n : cap - 1;	/* grown since fstat: its start is enough */
	return 0;
}

/* Its includes, once: 1, or -1 when it cannot be read or includes a macro. */
static int read_once(struct hfile *f)
{
	char *text;
	size_t n;
	if (f->state)
		return f->state;
	if (read_all(f->key, &text, &n) < 0)
		return f->state = -1;
	n = splice_lines(text, n);
	scan_text(f, text, text + n);
	free(text);
	if (!f->state)
		f->state = 1;
	return f->state;
}

/* --- resolving ------------------------------------------------------------- */

/* Where the compiler finds d, included from f: the first match (f itself
 * is no edge), and with #include_next every match. */
static void resolve(struct inc_cache *c, const struct hfile *f, const struct search *s,
		    const struct directive *d, struct list *to)
{
	char path[PATH_MAX * 2];
	struct hfile *h;
	int next = d->flags & INC_NEXT;
	if (d->name[0] == '/') {
		if ((h = find(c, d->name)) && h != f)
			push(to, h);
		return;
	}
	if (d->flags & INC_QUOTE) {
		snprintf(path, sizeof path, "%.*s/%s", (int)f->dirlen, f->key, d->name);
		if ((h = find(c, path)) && h != f)
			push(to, h);
		if (h && !next)
			return;
	}
	for (size_t i = d->flags & (INC_QUOTE | INC_NEXT) ? 0 : s->angle; i < s->n; i++) {
		snprintf(path, sizeof path, "%s/%s", strcmp(s->dirs[i], "/") ? s->dirs[i] : "", d->name);
		if ((h = find(c, path)) && h != f)
			push(to, h);
		if (h && !next)
			return;
	}
}

static const struct list *edges_of(struct inc_cache *c, struct hfile *f, const struct search *s)
{
	for (size_t i = 0; i < f->nedges; i++)
		if (f->edges[i].s == s)
			return &f->edges[i].to;
	struct list to = {0};
	for (size_t i = 0; i < f->nincs; i++)
		resolve(c, f, s, &f->incs[i], &to);
	f->edges = rw_grow(f->edges, &f->capedges, f->nedges, sizeof *f->edges);
	f->edges[f->nedges] = (struct edges){s, to};
	return &f->edges[f->nedges++].to;
}

/* --- a unit's command ------------------------------------------------------ */

struct names {
	const char **v;
	size_t n, cap;
};

static void add_name(struct names *l, const char *name)
{
	l->v = rw_grow(l->v, &l->cap, l->n, sizeof *l->v);
	l->v[l->n++] = name;
}

/* What the scan reads of a command: directories by kind, and the files
 * -include and -imacros read first. */
struct command {
	struct names quote, dirs, system, after, first;
};

/* The value of opt at argv[*i], joined ("-Idir") or next ("-I dir"). */
static const char *value_of(char **argv, int argc, int *i, const char *opt)
{
	size_t n = strlen(opt);
	if (strncmp(argv[*i], opt, n))
		return NULL;
	if (argv[*i][n])
		return argv[*i] + n;
	return *i + 1 < argc ? argv[++*i] : NULL;
}

/* -1 when options come from a file (@FILE): its -I are not read here. */
static int read_command(const struct cc_unit *u, struct command *cmd)
{
	const char *v;
	for (int i = 1; i < u->argc; i++) {
		if (u->argv[i][0] == '@')
			return -1;
		if (!strcmp(u->argv[i], "-I-"))
			continue;	/* old gcc's split of the chains: searching more is harmless */
		if ((v = value_of(u->argv, u->argc, &i, "-include")) ||
		    (v = value_of(u->argv, u->argc, &i, "-imacros")))
			add_name(&cmd->first, v);
		else if ((v = value_of(u->argv, u->argc, &i, "-iquote")))
			add_name(&cmd->quote, v);
		else if ((v = value_of(u->argv, u->argc, &i, "-isystem")))
			add_name(&cmd->system, v);
		else if ((v = value_of(u->argv, u->argc, &i, "-idirafter")))
			add_name(&cmd->after, v);
		else if ((v = value_of(u->argv, u->argc, &i, "-I")))
			add_name(&cmd->dirs, v);
	}
	return 0;
}

/* dir, resolved, at the end of s unless it is there already among the
 * directories from s->dirs[from] (the compiler drops a repeat too). */
static void add_dir(struct inc_cache *c, const struct cc_unit *u, struct search *s, size_t from,
		    const char *dir)
{
	char path[PATH_MAX * 2];
	const char *real;
	if (dir[0] == '/')
		snprintf(path, sizeof path, "%s", dir);
	else
		snprintf(path, sizeof path, "%s/%s", u->dir, dir[0] ? dir : ".");
	if (!(real = real_dir(c, path)))
		return;
	for (size_t i = from; i < s->n; i++)
		if (!strcmp(s->dirs[i], real))
			return;
	s->dirs = rw_grow(s->dirs, &s->cap, s->n, sizeof *s->dirs);
	s->dirs[s->n++] = (char *)real;
}

/* An environment variable's directories (colon-separated; empty: "."). */
static void add_env_dirs(struct inc_cache *c, const struct cc_unit *u, struct search *s,
			 const char *var)
{
	const char *v = getenv(var);
	char dir[PATH_MAX];
	while (v && *v) {
		size_t n = strcspn(v, ":");
		snprintf(dir, sizeof dir, "%.*s", (int)(n < sizeof dir ? n : sizeof dir - 1), v);
		add_dir(c, u, s, s->angle, dir);
		v += n + (v[n] == ':');
	}
}

static void add_dirs(struct inc_cache *c, const struct cc_unit *u, struct search *s, size_t from,
		     const struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		add_dir(c, u, s, from, l->v[i]);
}

/* The same search path for every unit whose command has the same one. */
static const struct search *intern_search(struct inc_cache *c, struct search *s)
{
	size_t len = 32;
	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->dirs[i]) + 1;
	char *key = rw_malloc(len);
	size_t k = (size_t)snprintf(key, len, "%zu", s->angle);
	for (size_t i = 0; i < s->n; i++)
		k += (size_t)snprintf(key + k, len - k, "\n%s", s->dirs[i]);
	int added;
	void **v = rw_table_put(&c->searches, key, &added);
	free(key);
	if (added) {
		*v = rw_malloc(sizeof *s);
		memcpy(*v, s, sizeof *s);
	} else {
		free(s->dirs);
	}
	return *v;
}

static const struct search *search_of(struct inc_cache *c, const struct cc_unit *u,
				      const struct command *cmd)
{
	struct search s = {0};
	add_dirs(c, u, &s, 0, &cmd->quote);
	s.angle = s.n;
	add_dirs(c, u, &s, s.angle, &cmd->dirs);
	add_env_dirs(c, u, &s, "CPATH");
	add_dirs(c, u, &s, s.angle, &cmd->system);
	add_env_dirs(c, u, &s, "C_INCLUDE_PATH");
	add_env_dirs(c, u, &s, "CPLUS_INCLUDE_PATH");
	add_env_dirs(c, u, &s, "OBJC_INCLUDE_PATH");
	add_dirs(c, u, &s, s.angle, &cmd->after);
	return intern_search(c, &s);
}

/* -include's and -imacros' file: in the directory the compiler runs in,
 * then along the "x" chain. */
static struct hfile *find_first(struct inc_cache *c, const struct cc_unit *u,
				const struct search *s, const char *name)
{
	char path[PATH_MAX * 2];
	struct hfile *h;
	const char *cwd = real_dir(c, u->dir);
	if (name[0] == '/')
		return find(c, name);
	snprintf(path, sizeof path, "%s/%s", cwd ? cwd : u->dir, name);
	for (size_t i = 0; !(h = find(c, path)) && i < s->n; i++)
		snprintf(path, sizeof path, "%s/%s", s->dirs[i], name);
	return h;
}

/* --- a unit's walk ---------------------------------------------------------- */

static void reach(struct inc_cache *c, struct hfile *f, struct list *todo, struct list *seen)
{
	if (f->walk == c->walk)
		return;
	f->walk = c->walk;
	push(todo, f);
	push(seen, f);
}

/* Every file the unit's roots reach, into seen; -1 when one cannot be read. */
static int walk(struct inc_cache *c, const struct search *s, struct list *todo, struct list *seen)
{
	while (todo->n) {
		struct hfile *f = todo->v[--todo->n];
		if (read_once(f) < 0)
			return -1;
		const struct list *to = edges_of(c, f, s);
		for (size_t i = 0; i < to->n; i++)
			reach(c, to->v[i], todo, seen);
	}
	return 0;
}

static void set_deps(struct cc_unit *u, const struct list *seen)
{
	for (size_t i = 0; i < u->ndeps; i++)
		free(u->deps[i]);
	free(u->deps);
	u->deps = rw_calloc(seen->n ? seen->n : 1, sizeof *u->deps);
	u->ndeps = 0;
	for (size_t i = 0; i < seen->n; i++)
		if (strcmp(seen->v[i]->real, u->src))
			u->deps[u->ndeps++] = rw_strdup(seen->v[i]->real);
}

int inc_unit_deps(struct inc_cache *c, struct cc_unit *u)
{
	struct command cmd = {0};
	struct list todo = {0}, seen = {0};
	int rc = read_command(u, &cmd);
	const struct search *s = search_of(c, u, &cmd);
	struct hfile *src = find(c, u->named ? u->named : u->src), *h;
	if (!src)
		rc = -1;
	c->walk++;
	for (size_t i = 0; i < cmd.first.n && rc == 0; i++)
		if ((h = find_first(c, u, s, cmd.first.v[i])))
			reach(c, h, &todo, &seen);
	if (src)
		reach(c, src, &todo, &seen);
	if (rc == 0)
		rc = walk(c, s, &todo, &seen);
	if (rc == 0)
		set_deps(u, &seen);
	free(cmd.quote.v), free(cmd.dirs.v), free(cmd.system.v), free(cmd.after.v), free(cmd.first.v);
	free(todo.v);
	free(seen.v);
	return rc;
}

struct inc_cache *inc_new(void)
{
	return rw_calloc(1, sizeof(struct inc_cache));
}

static void free_file(void *v)
{
	struct hfile *f = v;
	for (size_t i = 0; i < f->nincs; i++)
		free(f->incs[i].name);
	for (size_t i = 0; i < f->nedges; i++)
		free(f->edges[i].to.v);
	free(f->incs);
	free(f->edges);
	free(f->key);
	free(f->real);
	free(f);
}

static void free_dir(void *v)
{
	if (v != &missing)
		free(v);
}

static void free_search(void *v)
{
	struct search *s = v;
	free(s->dirs);
	free(s);
}

void inc_free(struct inc_cache *c)
{
	if (!c)
		return;
	rw_table_free(&c->files, free_file);
	rw_table_free(&c->found, NULL);
	rw_table_free(&c->dirs, free_dir);
	rw_table_free(&c->searches, free_search);
	free(c);
}
