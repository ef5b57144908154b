/* A branch's workspace store, standing on another store's frozen layers.
 *
 * Frozen layers are never written again, so two stores may share one: the
 * branch's layers/<id> is a symbolic link to the real directory (overlayfs
 * follows it when the mount is built; gc removes only the link). What can
 * still remove a shared layer is the owner's gc once no chain of its own
 * names it (after `rm` of the snapshot the branch came from), so the branch
 * leaves a pin in every owner store; a pin lasts while its branch store
 * exists. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "overlay/ws_int.h"
#include "paths.h"

/* pins/<name> of an owner store: "store=PATH\nlayers=IDS\n". */
static int write_pin(const char *owner, const char *branch_store, const unsigned *ids, unsigned n,
		     fp_error *err)
{
	char dir[PATH_MAX + 8], path[PATH_MAX * 2];
	snprintf(dir, sizeof(dir), "%s/pins", owner);
	if (fp_mkdir_p(dir, 0700, err) < 0)
		return -1;
	/* The branch session's name: the store is SESSIONS/NAME/workspace. */
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", branch_store);
	char *name = basename(dirname(tmp));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	size_t len = strlen(branch_store) + 32 + (size_t)n * 12;
	char *buf = malloc(len);
	if (!buf)
		return fp_fail(err, ENOMEM, "out of memory");
	int off = snprintf(buf, len, "store=%s\nlayers=", branch_store);
	for (unsigned i = 0; i < n; i++)
		off += snprintf(buf + off, len - (size_t)off, "%s%u", i ? " " : "", ids[i]);
	off += snprintf(buf + off, len - (size_t)off, "\n");
	int r = fp_write_file_atomic(path, buf, (size_t)off, err);
	free(buf);
	return r;
}

/* The store that owns real layer directory `real` (STORE/layers/ID). */
static void owner_of(const char *real, char *out, size_t len)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", real);
	char *layers = dirname(tmp);
	snprintf(out, len, "%s", dirname(layers));
}

/* Links layers ids into ws (from from_store) and pins them at their owners. */
static int link_layers(struct fp_ws *ws, const char *from_store, const unsigned *ids, unsigned n,
		       fp_error *err)
{
	char (*owners)[PATH_MAX] = calloc(n ? n : 1, PATH_MAX);
	unsigned *oid = calloc(n ? n : 1, sizeof(unsigned));
	if (!owners || !oid) {
		free(owners), free(oid);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	int r = 0;
	for (unsigned i = 0; r == 0 && i < n; i++) {
		char src[PATH_MAX + 32], real[PATH_MAX], dst[PATH_MAX];
		snprintf(src, sizeof(src), "%s/layers/%u", from_store, ids[i]);
		if (!realpath(src, real)) {
			r = fp_fail(err, errno, "layer %u of the snapshot is missing (%s: %s)", ids[i], src,
				    strerror(errno));
			break;
		}
		ws_layer_path(ws, ids[i], dst, sizeof(dst));
		if (symlink(real, dst) < 0) {
			r = fp_fail(err, errno, "cannot link %s to %s: %s", dst, real, strerror(errno));
			break;
		}
		owner_of(real, owners[i], PATH_MAX);
	}
	/* One pin per owner, naming the ids it owns. */
	for (unsigned i = 0; r == 0 && i < n; i++) {
		if (!owners[i][0])
			continue;
		unsigned k = 0;
		for (unsigned j = i; j < n; j++)
			if (owners[j][0] && !strcmp(owners[j], owners[i]))
				oid[k++] = ids[j];
		char owner[PATH_MAX];
		snprintf(owner, sizeof(owner), "%s", owners[i]);
		for (unsigned j = i; j < n; j++)
			if (!strcmp(owners[j], owner))
				owners[j][0] = '\0';
		r = write_pin(owner, ws->store, oid, k, err);
	}
	free(owners);
	free(oid);
	return r;
}

int fp_ws_create_branch(const char *store, const char *from_store, const char *snap,
			const struct fp_ws_opts *o, struct fp_ws **out, fp_error *err)
{
	struct fp_ws *from;
	if (fp_ws_open(from_store, NULL, &from, err) < 0)
		return fp_wrap(err, "the workspace of the session branched from");
	/* Under the owner's lock, so its gc cannot take a layer between the
	 * chain read and the pin. */
	if (ws_lock(from, err) < 0) {
		fp_ws_close(from);
		return -1;
	}
	unsigned *ids = NULL, n = 0;
	struct fp_ws *ws = NULL;
	int r = fp_ws_chain(from_store, snap, &ids, &n, err);
	if (r == 0)
		r = ws_load_state(from, err);
	if (r == 0)
		r = fp_ws_create(store, from->base, o, &ws, err);
	if (r == 0) {
		/* fp_ws_create made layer 1 the upper; ids must not collide
		 * with the linked ones. */
		char p[PATH_MAX];
		ws_layer_path(ws, 1, p, sizeof(p));
		rmdir(p);
		ws_work_path(ws, 1, p, sizeof(p));
		rmdir(p);
		unsigned upper = from->next;
		for (unsigned i = 0; i < n; i++)
			if (ids[i] >= upper)
				upper = ids[i] + 1;
		r = link_layers(ws, from_store, ids, n, err);
		char lp[PATH_MAX], wp[PATH_MAX];
		ws_layer_path(ws, upper, lp, sizeof(lp));
		ws_work_path(ws, upper, wp, sizeof(wp));
		if (r == 0 && (mkdir(lp, 0755) < 0 || mkdir(wp, 0700) < 0))
			r = fp_fail(err, errno, "cannot create %s: %s", lp, strerror(errno));
		if (r == 0)
			r = ws_save_state(ws, upper, ids, n, upper + 1, err);
		if (r == 0) {
			free(ws->lowers);
			ws->lowers = NULL;
			r = ws_load_state(ws, err);
		}
	}
	ws_unlock(from);
	fp_ws_close(from);
	free(ids);
	if (r < 0) {
		fp_ws_close(ws);
		return fp_wrap(err, "branch workspace from snapshot '%s'", snap);
	}
	*out = ws;
	return 0;
}

/* Reads one pin; 1 if its branch store still exists (ids filled), 0 if not. */
static int read_pin(const char *path, unsigned **ids, unsigned *n, fp_error *err)
{
	char buf[65536];
	long len = fp_read_file(path, buf, sizeof(buf), err);
	if (len < 0)
		return -1;
	char *st = strstr(buf, "store="), *ly = strstr(buf, "layers=");
	if (!st || !ly)
		return fp_fail(err, EINVAL, "%s is damaged (expected store= and layers=)", path);
	st += 6;
	st[strcspn(st, "\n")] = '\0';
	char state[PATH_MAX + 8];
	snprintf(state, sizeof(state), "%s/state", st);
	if (access(state, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (ws_read_ids(ly + 7, ids, n) < 0)
		return fp_fail(err, EINVAL, "%s is damaged (bad layers=)", path);
	return 1;
}

static int each_pin(const char *store, bool prune, unsigned **all, size_t *nall, fp_error *err)
{
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/pins", store);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : fp_fail(err, errno, "%s: %s", dir, strerror(errno));
	int live = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unsigned *ids = NULL, n = 0;
		int r = read_pin(p, &ids, &n, err);
		if (r < 0) {
			closedir(d);
			return -1; /* an unreadable pin keeps everything: never guess */
		}
		if (r == 0) {
			if (prune)
				unlink(p);
			continue;
		}
		live++;
		if (all) {
			unsigned *nv = realloc(*all, (*nall + n + 1) * sizeof(unsigned));
			if (!nv) {
				free(ids);
				closedir(d);
				return fp_fail(err, ENOMEM, "out of memory");
			}
			memcpy(nv + *nall, ids, n * sizeof(unsigned));
			*all = nv;
			*nall += n;
		}
		free(ids);
	}
	closedir(d);
	return live;
}

int ws_pinned_ids(const char *store, unsigned **ids, size_t *n, fp_error *err)
{
	*ids = NULL;
	*n = 0;
	return each_pin(store, true, ids, n, err) < 0 ? -1 : 0;
}

bool fp_ws_pinned(const char *store)
{
	fp_error err;
	return each_pin(store, false, NULL, NULL, &err) != 0;
}
