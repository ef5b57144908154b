/* diff A B: only the layers the two chains do not share are walked; every
 * path they mention (and the subtrees of renamed, opaque, added or deleted
 * directories) is then resolved in both views and compared. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "overlay/ws_int.h"

struct strs {
	char **v;
	size_t n, cap;
};

static int strs_add(struct strs *s, const char *p)
{
	if (s->n == s->cap) {
		size_t c = s->cap ? s->cap * 2 : 64;
		char **nv = realloc(s->v, c * sizeof(char *));
		if (!nv)
			return -1;
		s->v = nv;
		s->cap = c;
	}
	return (s->v[s->n++] = strdup(p)) ? 0 : -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strs_uniq(struct strs *s)
{
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(char *), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (w && !strcmp(s->v[w - 1], s->v[i]))
			free(s->v[i]);
		else
			s->v[w++] = s->v[i];
	}
	s->n = w;
}

/* Every path of one (raw) layer; `deep` collects dirs whose whole merged
 * subtree must be compared (opaque, redirected, and redirect sources). */
static int walk_layer(int dirfd, const char *rel, struct strs *out, struct strs *deep)
{
	int fd = openat(dirfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char p[PATH_MAX];
		ovl_join(p, sizeof(p), rel, de->d_name);
		if (strs_add(out, p) < 0) {
			r = -1;
			break;
		}
		struct stat st;
		if (fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		char fp[PATH_MAX + 32], v[PATH_MAX];
		snprintf(fp, sizeof(fp), "/proc/self/fd/%d/%s", dirfd, p);
		ssize_t n = lgetxattr(fp, "trusted.overlay.opaque", v, sizeof(v));
		if (n == 1 && v[0] == 'y')
			r = strs_add(deep, p);
		n = lgetxattr(fp, "trusted.overlay.redirect", v, sizeof(v) - 1);
		if (!r && n > 0) {
			v[n] = '\0';
			char src[PATH_MAX];
			if (v[0] == '/')
				snprintf(src, sizeof(src), "%s", v + 1);
			else
				ovl_join(src, sizeof(src), rel, v); /* approximate: parent may move too */
			r = strs_add(deep, p) < 0 || strs_add(deep, src) < 0 || strs_add(out, src) < 0 ? -1 : 0;
		}
		if (!r)
			r = walk_layer(dirfd, p, out, deep);
	}
	closedir(d);
	return r;
}

/* The merged subtree of path in view v (path itself excluded). */
static int enum_subtree(const struct ovl_view *v, const char *path, struct strs *out)
{
	unsigned top;
	struct stat st;
	struct ovl_dirstate ds = { 0 };
	int f = ovl_resolve(v, path, &top, &st, NULL, &ds);
	if (f <= 0 || !S_ISDIR(st.st_mode))
		return f < 0 ? -1 : 0;
	char **names = NULL;
	size_t n = 0;
	int r = ovl_list(v, &ds, &names, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		unsigned t2;
		struct stat s2;
		struct ovl_dirstate c = { 0 };
		int g = ovl_lookup(v, &ds, names[i], &t2, &s2, NULL, &c);
		if (g <= 0)
			continue;
		char p[PATH_MAX];
		ovl_join(p, sizeof(p), path, names[i]);
		r = strs_add(out, p);
		if (!r && S_ISDIR(s2.st_mode))
			r = enum_subtree(v, p, out);
		ovl_dirstate_free(&c);
	}
	if (n || names)
		ovl_free_names(names, n);
	ovl_dirstate_free(&ds);
	return r;
}

struct side {
	int found;
	unsigned top;
	struct stat st;
	char *tpath;
	char full[PATH_MAX + 32];
};

static void side_resolve(const struct ovl_view *v, const char *path, struct side *s)
{
	s->tpath = NULL;
	s->found = ovl_resolve(v, path, &s->top, &s->st, &s->tpath, NULL);
	if (s->found > 0)
		snprintf(s->full, sizeof(s->full), "/proc/self/fd/%d%s%s", v->root[s->top],
			 *s->tpath ? "/" : "", s->tpath);
}

static bool same_bytes(const char *a, const char *b, off_t size)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	bool same = fa >= 0 && fb >= 0;
	char *ba = malloc(1 << 16), *bb = malloc(1 << 16);
	same = same && ba && bb;
	for (off_t off = 0; same && off < size;) {
		ssize_t x = pread(fa, ba, 1 << 16, off), y = pread(fb, bb, 1 << 16, off);
		if (x <= 0 || x != y || memcmp(ba, bb, (size_t)x))
			same = false;
		off += x > 0 ? x : 1;
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	free(ba);
	free(bb);
	return same;
}

static bool same_xattrs(const char *a, const char *b)
{
	char la[4096], lb[4096];
	ssize_t na = llistxattr(a, la, sizeof(la)), nb = llistxattr(b, lb, sizeof(lb));
	if (na < 0)
		na = 0;
	if (nb < 0)
		nb = 0;
	/* Compare both ways, user-visible names only. */
	for (int pass = 0; pass < 2; pass++) {
		const char *l = pass ? lb : la, *x = pass ? b : a, *y = pass ? a : b;
		ssize_t n = pass ? nb : na;
		for (const char *k = l; k < l + n; k += strlen(k) + 1) {
			if (!strncmp(k, "trusted.overlay.", 16))
				continue;
			char va[4096], vb[4096];
			ssize_t sa = lgetxattr(x, k, va, sizeof(va)), sb = lgetxattr(y, k, vb, sizeof(vb));
			if (sa != sb || (sa > 0 && memcmp(va, vb, (size_t)sa)))
				return false;
		}
	}
	return true;
}

static char type_of(const struct stat *st)
{
	return S_ISREG(st->st_mode) ? 'f' : S_ISDIR(st->st_mode) ? 'd' : S_ISLNK(st->st_mode) ? 'l' : 'o';
}

static unsigned compare(const struct side *a, const struct side *b)
{
	const struct stat *x = &a->st, *y = &b->st;
	if ((x->st_mode & S_IFMT) != (y->st_mode & S_IFMT))
		return FP_WS_D_TYPE;
	unsigned w = 0;
	bool same_inode = x->st_dev == y->st_dev && x->st_ino == y->st_ino;
	if ((x->st_mode & 07777) != (y->st_mode & 07777))
		w |= FP_WS_D_MODE;
	if (x->st_uid != y->st_uid || x->st_gid != y->st_gid)
		w |= FP_WS_D_OWNER;
	if (same_inode)
		return w;
	if (!same_xattrs(a->full, b->full))
		w |= FP_WS_D_XATTR;
	if (S_ISREG(x->st_mode)) {
		if (x->st_size != y->st_size || !same_bytes(a->full, b->full, x->st_size))
			w |= FP_WS_D_CONTENT;
	} else if (S_ISLNK(x->st_mode)) {
		char ta[PATH_MAX], tb[PATH_MAX];
		ssize_t na = readlink(a->full, ta, sizeof(ta)), nb = readlink(b->full, tb, sizeof(tb));
		if (na != nb || (na > 0 && memcmp(ta, tb, (size_t)na)))
			w |= FP_WS_D_CONTENT;
	} else if (!S_ISDIR(x->st_mode) && x->st_rdev != y->st_rdev) {
		w |= FP_WS_D_CONTENT;
	}
	if (!w && !S_ISDIR(x->st_mode) &&
	    (x->st_mtim.tv_sec != y->st_mtim.tv_sec || x->st_mtim.tv_nsec != y->st_mtim.tv_nsec))
		w |= FP_WS_D_MTIME;
	return w;
}

int fp_ws_diff(struct fp_ws *ws, const char *snap_a, const char *snap_b,
	       struct fp_ws_diff_entry **out, size_t *nout, fp_error *err)
{
	const char *store = ws->store;
	unsigned *a = NULL, *b = NULL, na = 0, nb = 0;
	struct ovl_view va = { 0 }, vb = { 0 };
	struct strs cand = { 0 }, deep = { 0 };
	struct fp_ws_diff_entry *res = NULL;
	size_t nres = 0;
	int r = -1;
	if (fp_ws_chain(store, snap_a, &a, &na, err) < 0 || fp_ws_chain(store, snap_b, &b, &nb, err) < 0)
		goto out;
	unsigned shared = 0;
	while (shared < na && shared < nb && a[na - 1 - shared] == b[nb - 1 - shared])
		shared++;
	if (ws_view_open(ws, a, na, 1, &va, err) < 0 || ws_view_open(ws, b, nb, 1, &vb, err) < 0)
		goto out;
	for (unsigned i = 0; i + shared < na; i++)
		if (walk_layer(va.root[i], "", &cand, &deep) < 0)
			goto oom;
	for (unsigned i = 0; i + shared < nb; i++)
		if (walk_layer(vb.root[i], "", &cand, &deep) < 0)
			goto oom;
	strs_uniq(&deep);
	for (size_t i = 0; i < deep.n; i++)
		if (enum_subtree(&va, deep.v[i], &cand) < 0 || enum_subtree(&vb, deep.v[i], &cand) < 0)
			goto oom;
	/* Dirs present on one side only bring their whole subtree. */
	strs_uniq(&cand);
	size_t before = cand.n;
	for (size_t i = 0; i < before; i++) {
		struct side x, y;
		side_resolve(&va, cand.v[i], &x);
		side_resolve(&vb, cand.v[i], &y);
		bool dx = x.found > 0 && S_ISDIR(x.st.st_mode), dy = y.found > 0 && S_ISDIR(y.st.st_mode);
		int e = 0;
		if (dx && !dy)
			e = enum_subtree(&va, cand.v[i], &cand);
		else if (dy && !dx)
			e = enum_subtree(&vb, cand.v[i], &cand);
		free(x.tpath), free(y.tpath);
		if (e < 0)
			goto oom;
	}
	strs_uniq(&cand);
	res = calloc(cand.n ? cand.n : 1, sizeof(*res));
	if (!res)
		goto oom;
	for (size_t i = 0; i < cand.n; i++) {
		struct side x, y;
		side_resolve(&va, cand.v[i], &x);
		side_resolve(&vb, cand.v[i], &y);
		struct fp_ws_diff_entry e = { 0 };
		if (x.found > 0 && y.found <= 0) {
			e.change = FP_WS_DELETED;
			e.type = type_of(&x.st);
		} else if (x.found <= 0 && y.found > 0) {
			e.change = FP_WS_ADDED;
			e.type = type_of(&y.st);
		} else if (x.found > 0 && y.found > 0) {
			e.what = compare(&x, &y);
			if (e.what) {
				e.change = FP_WS_MODIFIED;
				e.type = type_of(&y.st);
			}
		}
		free(x.tpath), free(y.tpath);
		if (!e.change)
			continue;
		e.path = strdup(cand.v[i]);
		res[nres++] = e;
	}
	*out = res;
	*nout = nres;
	res = NULL;
	r = 0;
	goto out;
oom:
	fp_fail(err, ENOMEM, "out of memory while comparing '%s' and '%s'", snap_a, snap_b);
out:
	if (res)
		fp_ws_diff_free(res, nres);
	for (size_t i = 0; i < cand.n; i++)
		free(cand.v[i]);
	for (size_t i = 0; i < deep.n; i++)
		free(deep.v[i]);
	free(cand.v), free(deep.v);
	ovl_view_close(&va);
	ovl_view_close(&vb);
	free(a), free(b);
	return r;
}

void fp_ws_diff_free(struct fp_ws_diff_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].path);
	free(e);
}

void fp_ws_diff_print(FILE *f, const struct fp_ws_diff_entry *e, size_t n)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = { { FP_WS_D_TYPE, "type" },   { FP_WS_D_CONTENT, "content" },
		      { FP_WS_D_MODE, "mode" },   { FP_WS_D_OWNER, "owner" },
		      { FP_WS_D_XATTR, "xattr" }, { FP_WS_D_MTIME, "mtime" } };
	for (size_t i = 0; i < n; i++) {
		char what[64] = "";
		size_t used = 0;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (e[i].what & names[k].bit)
				used += (size_t)snprintf(what + used, sizeof(what) - used, "%s%s",
							 used ? "," : "", names[k].name);
		fprintf(f, "%c %-20s %s%s\n", e[i].change, what, e[i].path, e[i].type == 'd' ? "/" : "");
	}
}
