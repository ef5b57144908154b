/* An index of the FileEntries found so far, so that each fd and mapping
 * finds its entry without scanning every entry before it (which made a dump
 * pause grow with the square of the fd count).
 *
 * Path-based entries (mapped files, exe, cwd, root) are hashed by path and
 * flags. Entries of fd descriptions are grouped by inode, offset and flags
 * (which the fds of one description share); the descriptions of one group
 * (10,000 opens of /dev/null are 10,000 descriptions) are kept
 * sorted in kcmp(KCMP_FILE) order, the kernel's total order of open files,
 * so an fd finds its description, or where it goes, with log k kcmp calls.
 * Kind 1 compares the target's own fds (while it is stopped); kind 3 the
 * dumper's pidfd_getfd copies of them (dump_fdscan.c), after it resumed. */
#include "dump/dump_int.h"

#include <errno.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct bucket {
	int kind;       /* 0 path, 1 description; -1 empty slot */
	uint64_t k1, k2; /* path hash and flags, or description key and ino */
	uint32_t *v;    /* file indices (descriptions: in kcmp order) */
	uint32_t n, cap;
};

struct dump_findex {
	struct bucket *b;
	size_t cap, used; /* cap: a power of two */
};

static uint64_t mix(uint64_t a, uint64_t b, int kind)
{
	uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (uint64_t)kind);
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	return h ^ (h >> 32);
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int grow(struct dump_findex *x)
{
	size_t cap = x->cap ? x->cap * 2 : 256;
	struct bucket *nb = malloc(cap * sizeof(*nb));
	if (!nb)
		return -1;
	for (size_t i = 0; i < cap; i++)
		nb[i].kind = -1;
	for (size_t i = 0; i < x->cap; i++) {
		struct bucket *o = &x->b[i];
		if (o->kind < 0)
			continue;
		size_t j = mix(o->k1, o->k2, o->kind) & (cap - 1);
		while (nb[j].kind >= 0)
			j = (j + 1) & (cap - 1);
		nb[j] = *o;
	}
	free(x->b);
	x->b = nb;
	x->cap = cap;
	return 0;
}

/* The bucket of (kind, k1, k2), created empty if create. */
static struct bucket *bucket(struct dump_ctx *c, int kind, uint64_t k1, uint64_t k2, bool create)
{
	struct dump_findex *x = c->findex;
	if (!x) {
		if (!create || !(x = c->findex = calloc(1, sizeof(*x))))
			return NULL;
	}
	if (create && (x->used + 1) * 4 > x->cap * 3 && grow(x) < 0)
		return NULL;
	if (!x->cap)
		return NULL;
	size_t j = mix(k1, k2, kind) & (x->cap - 1);
	for (; x->b[j].kind >= 0; j = (j + 1) & (x->cap - 1))
		if (x->b[j].kind == kind && x->b[j].k1 == k1 && x->b[j].k2 == k2)
			return &x->b[j];
	if (!create)
		return NULL;
	x->used++;
	x->b[j] = (struct bucket){ .kind = kind, .k1 = k1, .k2 = k2 };
	return &x->b[j];
}

static int insert_at(struct bucket *b, size_t pos, uint32_t idx)
{
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 4;
		uint32_t *nv = realloc(b->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		b->v = nv;
		b->cap = cap;
	}
	memmove(&b->v[pos + 1], &b->v[pos], (b->n - pos) * sizeof(*b->v));
	b->v[pos] = idx;
	b->n++;
	return 0;
}

int dump_findex_path(struct dump_ctx *c, const char *path, uint32_t flags, uint32_t *id)
{
	struct bucket *b = bucket(c, 0, str_hash(path), flags, false);
	for (uint32_t i = 0; b && i < b->n; i++)
		if (!strcmp(c->files[b->v[i]].reg.name, path)) {
			*id = c->files[b->v[i]].id;
			return 1;
		}
	return 0;
}

int dump_findex_add_path(struct dump_ctx *c, const char *path, uint32_t flags, size_t file, fp_error *err)
{
	struct bucket *b = bucket(c, 0, str_hash(path), flags, true);
	if (!b || insert_at(b, b->n, (uint32_t)file) < 0)
		return fp_fail(err, ENOMEM, "out of memory");
	return 0;
}

int dump_findex_desc(struct dump_ctx *c, int kind, pid_t pid, int fd, uint64_t key, uint64_t ino, uint32_t *id,
		     size_t *pos)
{
	*pos = 0;
	struct bucket *b = bucket(c, kind, key, ino, false);
	if (!b)
		return 0;
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dump_fkey *k = &c->fkeys[b->v[mid]];
		long r = syscall(SYS_kcmp, pid, k->pid, KCMP_FILE, fd, k->fd);
		if (r == 0) {
			*id = c->files[b->v[mid]].id;
			return 1;
		}
		if (r < 0) { /* no order to go by: compare with each */
			for (uint32_t i = 0; i < b->n; i++) {
				k = &c->fkeys[b->v[i]];
				if (syscall(SYS_kcmp, pid, k->pid, KCMP_FILE, fd, k->fd) == 0) {
					*id = c->files[b->v[i]].id;
					return 1;
				}
			}
			*pos = b->n;
			return 0;
		}
		if (r == 1) /* ours orders before */
			hi = mid;
		else
			lo = mid + 1;
	}
	*pos = lo;
	return 0;
}

int dump_findex_add_desc(struct dump_ctx *c, int kind, uint64_t key, uint64_t ino, size_t pos, size_t file,
			 fp_error *err)
{
	struct bucket *b = bucket(c, kind, key, ino, true);
	if (!b || insert_at(b, pos <= b->n ? pos : b->n, (uint32_t)file) < 0)
		return fp_fail(err, ENOMEM, "out of memory");
	return 0;
}

void dump_findex_free(struct dump_ctx *c)
{
	struct dump_findex *x = c->findex;
	if (!x)
		return;
	for (size_t i = 0; i < x->cap; i++)
		if (x->b[i].kind >= 0)
			free(x->b[i].v);
	free(x->b);
	free(x);
	c->findex = NULL;
}
