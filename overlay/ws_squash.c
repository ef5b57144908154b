/* Squash: the oldest frozen layers of the live chain merged into one new
 * layer, so the chain stays far below the kernel's 500. Snapshots that name
 * the old layers keep them (gc only drops what no chain names). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "overlay/ws_int.h"
#include "paths.h"

struct hl {             /* hard links inside the merged layers */
	dev_t dev;
	ino_t ino;
	char *path;
};

struct sq {
	const struct ovl_view *v;
	unsigned cont;       /* index of the continuation pseudo-layer */
	struct hl *hl;
	size_t nhl, cap;
	fp_error *err;
};

static const char *hl_find(struct sq *q, const struct stat *st)
{
	for (size_t i = 0; i < q->nhl; i++)
		if (q->hl[i].dev == st->st_dev && q->hl[i].ino == st->st_ino)
			return q->hl[i].path;
	return NULL;
}

static void hl_add(struct sq *q, const struct stat *st, const char *path)
{
	if (q->nhl == q->cap) {
		size_t c = q->cap ? q->cap * 2 : 16;
		struct hl *n = realloc(q->hl, c * sizeof(*n));
		if (!n)
			return;
		q->hl = n;
		q->cap = c;
	}
	q->hl[q->nhl++] = (struct hl){ st->st_dev, st->st_ino, strdup(path) };
}

static void layer_file(const struct sq *q, unsigned j, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d%s%s", q->v->root[j], *rel ? "/" : "", rel);
}

static int merge_dir(struct sq *q, const struct ovl_dirstate *d, const char *out)
{
	char **names;
	size_t n;
	if (ovl_list(q->v, d, &names, &n) < 0)
		return fp_fail(q->err, ENOMEM, "out of memory");
	bool reaches_below = d->end > q->cont && d->lp[q->cont];
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		unsigned top;
		struct stat st;
		char *tpath = NULL;
		struct ovl_dirstate c = { 0 };
		char dst[PATH_MAX], src[PATH_MAX + 32];
		snprintf(dst, sizeof(dst), "%s/%s", out, names[i]);
		int f = ovl_lookup(q->v, d, names[i], &top, &st, &tpath, &c);
		if (f < 0) {
			r = fp_fail(q->err, errno, "cannot read layer entry %s: %s", names[i], strerror(errno));
		} else if (f == 0) {
			/* Deleted in the merged layers: keep hiding what is below. */
			if (reaches_below && mknod(dst, S_IFCHR | 0, makedev(0, 0)) < 0)
				r = fp_fail(q->err, errno, "whiteout %s: %s", dst, strerror(errno));
		} else if (!S_ISDIR(st.st_mode)) {
			layer_file(q, top, tpath, src, sizeof(src));
			const char *prev = st.st_nlink > 1 ? hl_find(q, &st) : NULL;
			if (prev) {
				if (link(prev, dst) < 0)
					r = fp_fail(q->err, errno, "link %s: %s", dst, strerror(errno));
			} else {
				r = ovl_copy_node(src, &st, dst, q->err);
				if (!r && st.st_nlink > 1)
					hl_add(q, &st, dst);
			}
		} else {
			if (mkdir(dst, 0700) < 0)
				r = fp_fail(q->err, errno, "mkdir %s: %s", dst, strerror(errno));
			if (!r)
				r = merge_dir(q, &c, dst);
			const char *below = c.end > q->cont ? c.lp[q->cont] : NULL;
			char want[PATH_MAX];
			ovl_join(want, sizeof(want), d->lp[q->cont] ? d->lp[q->cont] : "", names[i]);
			if (!r && !below && lsetxattr(dst, "trusted.overlay.opaque", "y", 1, 0) < 0)
				r = fp_fail(q->err, errno, "set opaque on %s: %s", dst, strerror(errno));
			if (!r && below && strcmp(below, want)) {
				char red[PATH_MAX + 2];
				snprintf(red, sizeof(red), "/%s", below);
				if (lsetxattr(dst, "trusted.overlay.redirect", red, strlen(red), 0) < 0)
					r = fp_fail(q->err, errno, "set redirect on %s: %s", dst, strerror(errno));
			}
			if (!r) {
				layer_file(q, top, tpath, src, sizeof(src));
				r = ovl_copy_meta(src, &st, dst, q->err);
			}
		}
		free(tpath);
		ovl_dirstate_free(&c);
	}
	ovl_free_names(names, n);
	return r;
}

/* Merges layers ids[0..n-1] (newest first), which sit on top of other
 * layers, into the directory out. */
static int squash_into(struct fp_ws *ws, const unsigned *ids, unsigned n, const char *out,
		       fp_error *err)
{
	struct ovl_view v;
	int r = ws_view_open(ws, ids, n, 0, &v, err);
	if (r < 0)
		return -1;
	struct sq q = { .v = &v, .cont = n, .err = err };
	struct ovl_dirstate root;
	r = ovl_dirstate_root(&root, n + 1) < 0 ? fp_fail(err, ENOMEM, "out of memory") : 0;
	if (!r)
		r = merge_dir(&q, &root, out);
	if (!r) {
		struct stat st;
		char src[PATH_MAX + 32];
		layer_file(&q, 0, "", src, sizeof(src));
		if (stat(src, &st) == 0)
			r = ovl_copy_meta(src, &st, out, err);
	}
	ovl_dirstate_free(&root);
	for (size_t i = 0; i < q.nhl; i++)
		free(q.hl[i].path);
	free(q.hl);
	ovl_view_close(&v);
	return r;
}

int fp_ws_maintain(struct fp_ws *ws, bool *did, fp_error *err)
{
	if (did)
		*did = false;
	if (ws->nlowers <= ws->opts.squash_at || ws->sq_id)
		return 0;
	if (ws_lock(ws, err) < 0)
		return -1;
	/* Merge the oldest layers down to half the threshold: a squash every
	 * squash_at/2 snapshots, each copying only what those layers hold. */
	unsigned m = ws->nlowers - ws->opts.squash_at / 2;
	if (m < 2)
		m = 2;
	const unsigned *oldest = ws->lowers + (ws->nlowers - m);
	unsigned id = ws_alloc_id(ws);
	char dst[PATH_MAX], tmp[PATH_MAX + 8];
	ws_layer_path(ws, id, dst, sizeof(dst));
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	fp_rm_rf(tmp, NULL);
	int r = -1;
	if (ws_inject("squash", err) < 0)
		goto out;
	if (mkdir(tmp, 0755) < 0) {
		fp_fail(err, errno, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (squash_into(ws, oldest, m, tmp, err) < 0)
		goto out;
	if (ws->opts.sync) {
		int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			syncfs(fd);
			close(fd);
		}
	}
	if (rename(tmp, dst) < 0) {
		fp_fail(err, errno, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	ws->sq_id = id;
	ws->sq_n = m;
	if (ws_save_state(ws, ws->upper, ws->lowers, ws->nlowers, ws->next, err) < 0) {
		ws->sq_id = ws->sq_n = 0;
		fp_rm_rf(dst, NULL);
		goto out;
	}
	if (did)
		*did = true;
	r = 0;
out:
	if (r < 0)
		fp_rm_rf(tmp, NULL);
	ws_unlock(ws);
	return r < 0 ? fp_wrap(err, "workspace squash") : 0;
}
