/* The workspace store on disk: base, state, layers/, work/, chains/, lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "overlay/ws_int.h"
#include "paths.h"

double ws_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int ws_inject(const char *step, fp_error *err)
{
	const char *f = getenv("FORKPOINT_WS_FAIL");
	if (f && !strcmp(f, step))
		return fp_fail(err, EIO, "injected failure at step '%s' (FORKPOINT_WS_FAIL)", step);
	return 0;
}

void ws_layer_path(const struct fp_ws *ws, unsigned id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/layers/%u", ws->store, id);
}

void ws_work_path(const struct fp_ws *ws, unsigned id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/work/%u", ws->store, id);
}

int ws_lock(struct fp_ws *ws, fp_error *err)
{
	if (ws->lock_depth++ > 0)
		return 0;
	double deadline = ws_now_ms() + 30000;
	while (flock(ws->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			ws->lock_depth--;
			return fp_fail(err, errno, "cannot lock %s/lock: %s", ws->store, strerror(errno));
		}
		if (ws_now_ms() > deadline) {
			ws->lock_depth--;
			return fp_fail(err, ETIMEDOUT,
				       "the workspace %s is busy (another snapshot, restore or gc "
				       "holds its lock for more than 30 s)", ws->store);
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

void ws_unlock(struct fp_ws *ws)
{
	if (ws->lock_depth > 0 && --ws->lock_depth == 0)
		flock(ws->lock_fd, LOCK_UN);
}

/* Writes small metadata: temp + rename, fsync only when durability is asked. */
static int write_small(struct fp_ws *ws, const char *path, const char *data, fp_error *err)
{
	if (ws->opts.sync)
		return fp_write_file_atomic(path, data, strlen(data), err);
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fp_fail(err, errno, "cannot create %s: %s", tmp, strerror(errno));
	size_t len = strlen(data);
	ssize_t w = write(fd, data, len);
	int e = w == (ssize_t)len ? 0 : (w < 0 ? errno : ENOSPC);
	close(fd);
	if (!e && rename(tmp, path) < 0)
		e = errno;
	if (e) {
		unlink(tmp);
		return fp_fail(err, e, "cannot write %s: %s", path, strerror(e));
	}
	return 0;
}

static void fmt_ids(char *buf, size_t len, const unsigned *ids, unsigned n)
{
	size_t used = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%u", i ? " " : "", ids[i]);
}

int ws_read_ids(const char *line, unsigned **ids, unsigned *n)
{
	unsigned cap = 16, k = 0;
	unsigned *v = malloc(cap * sizeof(*v));
	if (!v)
		return -1;
	const char *p = line;
	while (*p && *p != '\n') {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			break;
		char *end;
		unsigned long x = strtoul(p, &end, 10);
		if (end == p) {
			free(v);
			return -1;
		}
		if (k == cap) {
			cap *= 2;
			unsigned *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				return -1;
			}
			v = nv;
		}
		v[k++] = (unsigned)x;
		p = end;
	}
	*ids = v;
	*n = k;
	return 0;
}

static const char *find_key(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return p + kl + 1;
	return NULL;
}

/* Two buffers big enough for a list of n layer ids and a line around it. */
static int ids_buffers(unsigned n, size_t *len, char **buf, char **ids, fp_error *err)
{
	*len = 64 + (size_t)n * 12;
	*buf = malloc(*len);
	*ids = malloc(*len);
	if (*buf && *ids)
		return 0;
	free(*buf), free(*ids);
	return fp_fail(err, ENOMEM, "out of memory");
}

int ws_save_state(struct fp_ws *ws, unsigned upper, const unsigned *lowers, unsigned n,
		  unsigned next, fp_error *err)
{
	size_t len;
	char *buf, *ids;
	if (ids_buffers(n, &len, &buf, &ids, err) < 0)
		return -1;
	fmt_ids(ids, len, lowers, n);
	int o = snprintf(buf, len, "upper=%u\nlowers=%s\nnext=%u\n", upper, ids, next);
	if (ws->sq_id)
		snprintf(buf + o, len - (size_t)o, "squash=%u %u\n", ws->sq_id, ws->sq_n);
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/state", ws->store);
	int r = ws_inject("state", err) < 0 ? -1 : write_small(ws, path, buf, err);
	free(buf), free(ids);
	return r;
}

int ws_write_chain(struct fp_ws *ws, const char *snap, const unsigned *ids, unsigned n,
		   fp_error *err)
{
	size_t len;
	char *buf, *s;
	if (ids_buffers(n, &len, &buf, &s, err) < 0)
		return -1;
	fmt_ids(s, len, ids, n);
	snprintf(buf, len, "layers=%s\n", s);
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/chains/%s", ws->store, snap);
	int r = ws_inject("chain", err) < 0 ? -1 : write_small(ws, path, buf, err);
	free(buf), free(s);
	return r;
}

static int snap_name_ok(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* The whole small file at path, NUL-terminated (malloc'd), or NULL: with
 * *missing set to errno when it cannot be stat'ed (the caller says what
 * that means), else with err filled. */
static char *read_whole(const char *path, int *missing, fp_error *err)
{
	*missing = 0;
	struct stat st;
	if (stat(path, &st) < 0) {
		*missing = errno;
		return NULL;
	}
	size_t cap = (size_t)st.st_size + 2;
	char *buf = malloc(cap);
	if (!buf) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	if (fp_read_file(path, buf, cap, err) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int ws_load_state(struct fp_ws *ws, fp_error *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/state", ws->store);
	int missing;
	char *buf = read_whole(path, &missing, err);
	if (!buf)
		return missing ? fp_fail(err, missing, "%s: %s (not a workspace store?)", path, strerror(missing)) : -1;
	const char *u = find_key(buf, "upper"), *l = find_key(buf, "lowers"), *nx = find_key(buf, "next");
	free(ws->lowers);
	ws->lowers = NULL;
	if (!u || !l || !nx || ws_read_ids(l, &ws->lowers, &ws->nlowers) < 0) {
		free(buf);
		return fp_fail(err, EINVAL, "%s is damaged (expected upper=, lowers=, next=)", path);
	}
	const char *sq = find_key(buf, "squash");
	ws->sq_id = ws->sq_n = 0;
	if (sq && sscanf(sq, "%u %u", &ws->sq_id, &ws->sq_n) != 2)
		ws->sq_id = ws->sq_n = 0;
	ws->upper = (unsigned)strtoul(u, NULL, 10);
	ws->next = (unsigned)strtoul(nx, NULL, 10);
	free(buf);
	return 0;
}

static int ws_alloc(const char *store, const struct fp_ws_opts *o, struct fp_ws **out, fp_error *err)
{
	struct fp_ws *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return fp_fail(err, ENOMEM, "out of memory");
	if (snprintf(ws->store, sizeof(ws->store), "%s", store) >= (int)sizeof(ws->store)) {
		free(ws);
		return fp_fail(err, ENAMETOOLONG, "store path too long");
	}
	if (o)
		ws->opts = *o;
	if (!ws->opts.squash_at)
		ws->opts.squash_at = FP_WS_SQUASH_AT;
	if (ws->opts.squash_at > FP_WS_MAX_LOWERS - 2)
		ws->opts.squash_at = FP_WS_MAX_LOWERS - 2;
	ws->lock_fd = ws->base_fd = ws->mnt_fd = -1;
	*out = ws;
	return 0;
}

static int open_common(struct fp_ws *ws, fp_error *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/lock", ws->store);
	ws->lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (ws->lock_fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/base", ws->store);
	long n = fp_read_file(path, ws->base, sizeof(ws->base), err);
	if (n < 0)
		return fp_wrap(err, "workspace store %s", ws->store);
	if (n > 0 && ws->base[n - 1] == '\n')
		ws->base[n - 1] = '\0';
	if (ws_lock(ws, err) < 0)
		return -1;
	int r = ws_load_state(ws, err);
	ws_unlock(ws);
	return r;
}

int fp_ws_create(const char *store, const char *base, const struct fp_ws_opts *o,
		 struct fp_ws **out, fp_error *err)
{
	char rbase[PATH_MAX];
	if (!realpath(base, rbase))
		return fp_fail(err, errno, "workspace directory %s: %s", base, strerror(errno));
	struct stat st;
	if (stat(rbase, &st) < 0 || !S_ISDIR(st.st_mode))
		return fp_fail(err, ENOTDIR, "workspace %s is not a directory", rbase);
	struct fp_ws *ws;
	if (ws_alloc(store, o, &ws, err) < 0)
		return -1;
	snprintf(ws->base, sizeof(ws->base), "%s", rbase);
	char path[PATH_MAX + 16];
	const char *sub[] = { "", "/layers", "/work", "/chains" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", store, sub[i]);
		if (fp_mkdir_p(path, 0700, err) < 0)
			goto fail;
	}
	snprintf(path, sizeof(path), "%s/state", store);
	if (access(path, F_OK) == 0) {
		fp_fail(err, EEXIST, "%s already holds a workspace", store);
		goto fail;
	}
	char line[PATH_MAX + 2];
	snprintf(line, sizeof(line), "%s\n", rbase);
	snprintf(path, sizeof(path), "%s/base", store);
	if (fp_write_file_atomic(path, line, strlen(line), err) < 0)
		goto fail;
	/* The upper must hold trusted.* xattrs and d_type: the store's
	 * filesystem is checked by the first mount. */
	ws->upper = 1;
	ws->next = 2;
	char lp[PATH_MAX], wp[PATH_MAX];
	ws_layer_path(ws, 1, lp, sizeof(lp));
	ws_work_path(ws, 1, wp, sizeof(wp));
	if ((mkdir(lp, 0755) < 0 && errno != EEXIST) || (mkdir(wp, 0700) < 0 && errno != EEXIST)) {
		fp_fail(err, errno, "cannot create %s: %s", lp, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/lock", store);
	ws->lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (ws->lock_fd < 0) {
		fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (ws_save_state(ws, 1, NULL, 0, 2, err) < 0)
		goto fail;
	*out = ws;
	return 0;
fail:
	fp_ws_close(ws);
	return -1;
}

int fp_ws_open(const char *store, const struct fp_ws_opts *o, struct fp_ws **out, fp_error *err)
{
	struct fp_ws *ws;
	if (ws_alloc(store, o, &ws, err) < 0)
		return -1;
	if (open_common(ws, err) < 0) {
		fp_ws_close(ws);
		return -1;
	}
	*out = ws;
	return 0;
}

void fp_ws_close(struct fp_ws *ws)
{
	if (!ws)
		return;
	if (ws->lock_fd >= 0)
		close(ws->lock_fd);
	if (ws->base_fd >= 0)
		close(ws->base_fd);
	if (ws->mnt_fd >= 0)
		close(ws->mnt_fd);
	free(ws->lowers);
	free(ws);
}

const char *fp_ws_base(const struct fp_ws *ws)
{
	return ws->base;
}

uint64_t fp_ws_mnt_id(const struct fp_ws *ws)
{
	return ws->mnt_id;
}

unsigned fp_ws_depth(const struct fp_ws *ws)
{
	return ws->nlowers;
}

unsigned ws_alloc_id(struct fp_ws *ws)
{
	/* Ids only grow; skip leftovers of a crash between mkdir and the state. */
	char p[PATH_MAX];
	for (;;) {
		unsigned id = ws->next++;
		ws_layer_path(ws, id, p, sizeof(p));
		if (access(p, F_OK) < 0)
			return id;
	}
}

int ws_build_mount(struct fp_ws *ws, const unsigned *lowers, unsigned n, unsigned upper,
		   fp_error *err)
{
	if (n + 1 > FP_WS_MAX_LOWERS)
		return fp_fail(err, E2BIG,
			       "the workspace chain has %u layers; the kernel stacks at most %d "
			       "(call fp_ws_maintain to squash)", n + 1, FP_WS_MAX_LOWERS);
	if (ws->base_fd < 0) {
		ws->base_fd = open(ws->base, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (ws->base_fd < 0)
			return fp_fail(err, errno, "workspace directory %s: %s", ws->base, strerror(errno));
	}
	/* Paths go through /proc/self/fd for the base: DIR itself is covered by
	 * the workspace mount once it exists. fsconfig strings are capped at
	 * 256 bytes, so long store paths are refused with a clear message. */
	char **paths = calloc(n + 1, sizeof(char *));
	char up[PATH_MAX], wk[PATH_MAX];
	if (!paths)
		return fp_fail(err, ENOMEM, "out of memory");
	int r = -1;
	for (unsigned i = 0; i < n; i++) {
		paths[i] = malloc(PATH_MAX);
		if (!paths[i]) {
			fp_fail(err, ENOMEM, "out of memory");
			goto out;
		}
		ws_layer_path(ws, lowers[i], paths[i], PATH_MAX);
		if (strlen(paths[i]) > 255) {
			fp_fail(err, ENAMETOOLONG, "layer path %s is longer than the 255 bytes fsconfig "
				"accepts; use a shorter FORKPOINT_HOME", paths[i]);
			goto out;
		}
	}
	paths[n] = malloc(64);
	if (!paths[n]) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	snprintf(paths[n], 64, "/proc/self/fd/%d", ws->base_fd);
	ws_layer_path(ws, upper, up, sizeof(up));
	ws_work_path(ws, upper, wk, sizeof(wk));
	struct ovl_mount_spec s = { (const char *const *)paths, n + 1, upper ? up : NULL,
				    upper ? wk : NULL };
	r = ovl_build(&s, err);
out:
	for (unsigned i = 0; i <= n; i++)
		free(paths[i]);
	free(paths);
	return r;
}

int fp_ws_mount(struct fp_ws *ws, fp_error *err)
{
	if (ws->mnt_fd >= 0)
		return fp_fail(err, EBUSY, "the workspace is already mounted");
	if (ws_lock(ws, err) < 0)
		return -1;
	int r = -1;
	if (ws_load_state(ws, err) < 0)
		goto out;
	int m = ws_build_mount(ws, ws->lowers, ws->nlowers, ws->upper, err);
	if (m < 0)
		goto out;
	if (ovl_attach(m, ws->base, err) < 0) {
		close(m);
		goto out;
	}
	ws->mnt_fd = m;
	ws->mnt_id = ovl_mnt_id_fd(m);
	r = 0;
out:
	ws_unlock(ws);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int fp_ws_snapshots(const char *store, char ***out, size_t *n, fp_error *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/chains", store);
	DIR *d = opendir(path);
	if (!d)
		return fp_fail(err, errno, "%s: %s", path, strerror(errno));
	size_t cap = 16, k = 0;
	char **v = malloc(cap * sizeof(*v));
	struct dirent *de;
	while (v && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (!snap_name_ok(de->d_name) || (l > 4 && !strcmp(de->d_name + l - 4, ".tmp")) ||
		    strstr(de->d_name, ".tmp."))
			continue;
		if (k == cap) {
			cap *= 2;
			char **nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[k++] = strdup(de->d_name);
	}
	closedir(d);
	if (!v)
		return fp_fail(err, ENOMEM, "out of memory");
	qsort(v, k, sizeof(*v), cmp_str);
	*out = v;
	*n = k;
	return 0;
}

int fp_ws_chain(const char *store, const char *snap, unsigned **ids, unsigned *n, fp_error *err)
{
	if (!snap_name_ok(snap))
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "invalid snapshot name '%s'", snap);
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/chains/%s", store, snap);
	int missing;
	char *buf = read_whole(path, &missing, err);
	if (!buf)
		return missing ? fp_fail(err, missing, "snapshot '%s' has no workspace record (%s: %s)", snap, path,
					 strerror(missing))
			       : -1;
	const char *l = find_key(buf, "layers");
	int r = 0;
	if (!l || ws_read_ids(l, ids, n) < 0)
		r = fp_fail(err, EINVAL, "%s is damaged (expected layers=)", path);
	free(buf);
	return r;
}
