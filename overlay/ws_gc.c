/* rm and gc: a layer lives while the live state or any chain names it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "overlay/ws_int.h"
#include "paths.h"

int fp_ws_rm(struct fp_ws *ws, const char *snap, fp_error *err)
{
	unsigned *ids;
	unsigned n;
	if (fp_ws_chain(ws->store, snap, &ids, &n, err) < 0)
		return -1;
	free(ids);
	if (ws_lock(ws, err) < 0)
		return -1;
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/chains/%s", ws->store, snap);
	int r = 0;
	if (unlink(path) < 0)
		r = fp_fail(err, errno, "cannot remove %s: %s", path, strerror(errno));
	ws_unlock(ws);
	return r;
}

struct idset {
	unsigned *v;
	size_t n, cap;
};

static int idset_add(struct idset *s, const unsigned *ids, size_t n)
{
	if (s->n + n > s->cap) {
		size_t cap = (s->n + n) * 2 + 16;
		unsigned *nv = realloc(s->v, cap * sizeof(unsigned));
		if (!nv)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	memcpy(s->v + s->n, ids, n * sizeof(unsigned));
	s->n += n;
	return 0;
}

static int cmp_u(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

static bool idset_has(const struct idset *s, unsigned id)
{
	return bsearch(&id, s->v, s->n, sizeof(unsigned), cmp_u) != NULL;
}

/* Numeric names only; "N.tmp" (an interrupted squash) counts as garbage. */
static int parse_id(const char *name, unsigned *id, bool *tmp)
{
	char *end;
	unsigned long v = strtoul(name, &end, 10);
	if (end == name || name[0] < '0' || name[0] > '9')
		return -1;
	*tmp = !strcmp(end, ".tmp");
	if (*end && !*tmp)
		return -1;
	*id = (unsigned)v;
	return 0;
}

int fp_ws_gc(struct fp_ws *ws, struct fp_ws_gc_stats *st, fp_error *err)
{
	struct fp_ws_gc_stats local = { 0 };
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (ws_lock(ws, err) < 0)
		return -1;
	int r = -1;
	struct idset refs = { 0 };
	char **snaps = NULL;
	size_t nsnaps = 0;
	/* The state on disk is the truth: another process (the session
	 * helper) may have switched since this handle was opened. */
	if (ws_load_state(ws, err) < 0)
		goto out;
	if (idset_add(&refs, &ws->upper, 1) < 0 || idset_add(&refs, ws->lowers, ws->nlowers) < 0 ||
	    (ws->sq_id && idset_add(&refs, &ws->sq_id, 1) < 0))
		goto oom;
	if (fp_ws_snapshots(ws->store, &snaps, &nsnaps, err) < 0)
		goto out;
	for (size_t i = 0; i < nsnaps; i++) {
		unsigned *ids, n;
		/* An unreadable chain keeps everything: never guess. */
		if (fp_ws_chain(ws->store, snaps[i], &ids, &n, err) < 0)
			goto out;
		int a = idset_add(&refs, ids, n);
		free(ids);
		if (a < 0)
			goto oom;
	}
	/* Layers that branches of this session stand on (ws_branch.c). */
	unsigned *pinned;
	size_t npinned;
	if (ws_pinned_ids(ws->store, &pinned, &npinned, err) < 0)
		goto out;
	int a = npinned ? idset_add(&refs, pinned, npinned) : 0;
	free(pinned);
	if (a < 0)
		goto oom;
	qsort(refs.v, refs.n, sizeof(unsigned), cmp_u);
	const char *sub[] = { "layers", "work" };
	for (int k = 0; k < 2; k++) {
		char dir[PATH_MAX + 8];
		snprintf(dir, sizeof(dir), "%s/%s", ws->store, sub[k]);
		DIR *d = opendir(dir);
		if (!d) {
			fp_fail(err, errno, "%s: %s", dir, strerror(errno));
			goto out;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			unsigned id;
			bool tmp;
			if (parse_id(de->d_name, &id, &tmp) < 0)
				continue;
			/* A workdir is needed only by the live upper's mount. */
			bool keep = !tmp && (k == 0 ? idset_has(&refs, id) : id == ws->upper);
			if (keep) {
				if (k == 0)
					st->layers_kept++;
				continue;
			}
			char p[PATH_MAX * 2];
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			if (fp_rm_rf(p, err) < 0) {
				closedir(d);
				goto out;
			}
			if (k == 0)
				st->layers_removed++;
			else
				st->workdirs_removed++;
		}
		closedir(d);
	}
	r = 0;
	goto out;
oom:
	fp_fail(err, ENOMEM, "out of memory");
out:
	for (size_t i = 0; i < nsnaps; i++)
		free(snaps[i]);
	free(snaps);
	free(refs.v);
	ws_unlock(ws);
	return r;
}
