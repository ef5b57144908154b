/* Reading a stack of layers the way overlayfs does (whiteouts, opaque
 * directories, redirects), without mounting it: squash and diff use it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "overlay/ws_int.h"

#define OVL_XATTR "trusted.overlay."

bool ovl_is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

void ovl_join(char *buf, size_t len, const char *dir, const char *name)
{
	if (!dir || !*dir)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s/%s", dir, name);
}

static void in_path(char *buf, size_t len, int root, const char *path)
{
	snprintf(buf, len, "/proc/self/fd/%d%s%s", root, *path ? "/" : "", path);
}

int ovl_lstat_in(int root, const char *path, struct stat *st)
{
	if (!*path)
		return fstatat(root, "", st, AT_EMPTY_PATH);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return fstatat(root, path, st, AT_SYMLINK_NOFOLLOW);
	*slash = '\0';
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV };
	int fd = (int)syscall(SYS_openat2, root, dir, &how, sizeof(how));
	if (fd < 0)
		return -1;
	int r = fstatat(fd, slash + 1, st, AT_SYMLINK_NOFOLLOW);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static bool is_opaque(int root, const char *path)
{
	char p[PATH_MAX + 32], v[4];
	in_path(p, sizeof(p), root, path);
	ssize_t n = lgetxattr(p, OVL_XATTR "opaque", v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static int get_redirect(int root, const char *path, char *buf, size_t len)
{
	char p[PATH_MAX + 32];
	in_path(p, sizeof(p), root, path);
	ssize_t n = lgetxattr(p, OVL_XATTR "redirect", buf, len - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return 1;
}

int ovl_view_open(struct ovl_view *v, const char *const *paths, unsigned n, fp_error *err)
{
	v->n = n;
	v->root = malloc(n * sizeof(int));
	if (!v->root)
		return fp_fail(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++)
		v->root[i] = -1;
	for (unsigned i = 0; i < n; i++) {
		if (!paths[i])
			continue;
		v->root[i] = open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (v->root[i] < 0) {
			int e = errno;
			ovl_view_close(v);
			return fp_fail(err, e, "layer %s: %s", paths[i], strerror(e));
		}
	}
	return 0;
}

int ws_view_open(const struct fp_ws *ws, const unsigned *ids, unsigned n, int base, struct ovl_view *v,
		 fp_error *err)
{
	char **paths = calloc(n + 1, sizeof(char *));
	if (!paths)
		return fp_fail(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		paths[i] = malloc(PATH_MAX);
		if (paths[i])
			ws_layer_path(ws, ids[i], paths[i], PATH_MAX);
	}
	if (base && (paths[n] = malloc(PATH_MAX))) {
		if (ws->base_fd >= 0)
			snprintf(paths[n], PATH_MAX, "/proc/self/fd/%d", ws->base_fd);
		else
			snprintf(paths[n], PATH_MAX, "%s", ws->base);
	}
	int r = ovl_view_open(v, (const char *const *)paths, n + 1, err);
	for (unsigned i = 0; i <= n; i++)
		free(paths[i]);
	free(paths);
	return r;
}

void ovl_view_close(struct ovl_view *v)
{
	for (unsigned i = 0; v->root && i < v->n; i++)
		if (v->root[i] >= 0)
			close(v->root[i]);
	free(v->root);
	v->root = NULL;
}

int ovl_dirstate_root(struct ovl_dirstate *d, unsigned n)
{
	d->n = n;
	d->end = n;
	d->lp = calloc(n, sizeof(char *));
	if (!d->lp)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (!(d->lp[i] = strdup("")))
			return -1;
	return 0;
}

void ovl_dirstate_free(struct ovl_dirstate *d)
{
	for (unsigned i = 0; d->lp && i < d->n; i++)
		free(d->lp[i]);
	free(d->lp);
	d->lp = NULL;
}

int ovl_lookup(const struct ovl_view *v, const struct ovl_dirstate *parent, const char *name,
	       unsigned *top, struct stat *st, char **tpath, struct ovl_dirstate *child)
{
	struct ovl_dirstate c = { v->n, v->n, calloc(v->n, sizeof(char *)) };
	if (!c.lp)
		return -1;
	/* Lower layers are searched at the same name under the parent, unless
	 * a directory on the way carries a redirect: absolute ("/a/b", from
	 * every layer's root, even past the parent's opaque cut) or relative
	 * (a new name under the parent). */
	enum { NONE, ABS, REL } mode = NONE;
	char red[PATH_MAX] = "", path[PATH_MAX];
	int found = 0;
	bool dir = false;
	for (unsigned j = 0; j < v->n; j++) {
		if (mode != ABS && (j >= parent->end || !parent->lp[j])) {
			if (j >= parent->end)
				break;
			continue; /* the parent is absent from this layer */
		}
		if (mode == ABS)
			snprintf(path, sizeof(path), "%s", red);
		else
			ovl_join(path, sizeof(path), parent->lp[j], mode == REL ? red : name);
		if (v->root[j] < 0) { /* continuation below a squash */
			if (found && dir)
				c.lp[j] = strdup(path);
			break;
		}
		struct stat s;
		if (ovl_lstat_in(v->root[j], path, &s) < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EXDEV)
				continue;
			goto fail;
		}
		if (ovl_is_whiteout(&s) || !S_ISDIR(s.st_mode)) {
			if (found) { /* a dir above hides what is below */
				c.end = j;
				break;
			}
			if (ovl_is_whiteout(&s))
				break;
			found = 1;
			*top = j;
			*st = s;
			if (tpath)
				*tpath = strdup(path);
			c.end = j + 1;
			break;
		}
		if (!found) {
			found = 1;
			dir = true;
			*top = j;
			*st = s;
			if (tpath)
				*tpath = strdup(path);
		}
		c.lp[j] = strdup(path);
		if (is_opaque(v->root[j], path)) {
			c.end = j + 1;
			break;
		}
		char r[PATH_MAX];
		if (get_redirect(v->root[j], path, r, sizeof(r))) {
			if (r[0] == '/') {
				mode = ABS;
				snprintf(red, sizeof(red), "%s", r + 1);
			} else if (mode == ABS) {
				char *sl = strrchr(red, '/');
				if (sl)
					snprintf(sl + 1, sizeof(red) - (size_t)(sl + 1 - red), "%s", r);
				else
					snprintf(red, sizeof(red), "%s", r);
			} else {
				mode = REL;
				snprintf(red, sizeof(red), "%s", r);
			}
		}
	}
	if (found && dir && child)
		*child = c;
	else
		ovl_dirstate_free(&c);
	return found;
fail:
	ovl_dirstate_free(&c);
	return -1;
}

int ovl_resolve(const struct ovl_view *v, const char *path, unsigned *top, struct stat *st,
		char **tpath, struct ovl_dirstate *ds)
{
	struct ovl_dirstate cur;
	if (ovl_dirstate_root(&cur, v->n) < 0)
		return -1;
	*top = 0;
	if (tpath)
		*tpath = strdup("");
	for (unsigned j = 0; j < v->n; j++)
		if (v->root[j] >= 0 && fstatat(v->root[j], "", st, AT_EMPTY_PATH) == 0) {
			*top = j;
			break;
		}
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (!S_ISDIR(st->st_mode)) {
			ovl_dirstate_free(&cur);
			return 0;
		}
		struct ovl_dirstate next = { 0 };
		if (tpath) {
			free(*tpath);
			*tpath = NULL;
		}
		int r = ovl_lookup(v, &cur, comp, top, st, tpath, &next);
		ovl_dirstate_free(&cur);
		if (r <= 0)
			return r;
		cur = next;
	}
	if (ds && S_ISDIR(st->st_mode))
		*ds = cur;
	else
		ovl_dirstate_free(&cur);
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ovl_list(const struct ovl_view *v, const struct ovl_dirstate *d, char ***names, size_t *n)
{
	size_t cap = 32, k = 0;
	char **out = malloc(cap * sizeof(char *));
	if (!out)
		return -1;
	for (unsigned j = 0; j < d->end && j < v->n; j++) {
		if (!d->lp[j] || v->root[j] < 0)
			continue;
		int fd = *d->lp[j] ? openat(v->root[j], d->lp[j], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
				   : openat(v->root[j], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		DIR *dd = fdopendir(fd);
		if (!dd) {
			close(fd);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(dd))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (k == cap) {
				cap *= 2;
				char **no = realloc(out, cap * sizeof(char *));
				if (!no) {
					closedir(dd);
					ovl_free_names(out, k);
					return -1;
				}
				out = no;
			}
			out[k++] = strdup(de->d_name);
		}
		closedir(dd);
	}
	qsort(out, k, sizeof(char *), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < k; i++) {
		if (w && !strcmp(out[w - 1], out[i]))
			free(out[i]);
		else
			out[w++] = out[i];
	}
	*names = out;
	*n = w;
	return 0;
}

void ovl_free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int copy_xattrs(const char *src, const char *dst, fp_error *err)
{
	ssize_t len = llistxattr(src, NULL, 0);
	if (len <= 0)
		return 0;
	char *list = malloc((size_t)len), *val = malloc(65536);
	if (!list || !val) {
		free(list), free(val);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	len = llistxattr(src, list, (size_t)len);
	int r = 0;
	for (char *k = list; len > 0 && k < list + len; k += strlen(k) + 1) {
		if (!strncmp(k, OVL_XATTR, strlen(OVL_XATTR)))
			continue;
		ssize_t vl = lgetxattr(src, k, val, 65536);
		if (vl < 0)
			continue;
		if (lsetxattr(dst, k, val, (size_t)vl, 0) < 0) {
			r = fp_fail(err, errno, "cannot copy xattr %s to %s: %s", k, dst, strerror(errno));
			break;
		}
	}
	free(list), free(val);
	return r;
}

int ovl_copy_meta(const char *src, const struct stat *st, const char *dst, fp_error *err)
{
	if (lchown(dst, st->st_uid, st->st_gid) < 0)
		return fp_fail(err, errno, "chown %s: %s", dst, strerror(errno));
	if (!S_ISLNK(st->st_mode) && chmod(dst, st->st_mode & 07777) < 0)
		return fp_fail(err, errno, "chmod %s: %s", dst, strerror(errno));
	if (copy_xattrs(src, dst, err) < 0)
		return -1;
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return fp_fail(err, errno, "utimensat %s: %s", dst, strerror(errno));
	return 0;
}

/* Data only where the source has data: holes stay holes. */
static int copy_data(int in, int out, off_t size, fp_error *err, const char *dst)
{
	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			data = pos; /* no SEEK_DATA: copy everything */
		}
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			hole = size;
		off_t o_in = data, o_out = data;
		while (o_in < hole) {
			ssize_t c = copy_file_range(in, &o_in, out, &o_out, (size_t)(hole - o_in), 0);
			if (c < 0)
				return fp_fail(err, errno, "cannot copy data into %s: %s", dst, strerror(errno));
			if (c == 0)
				break;
		}
		pos = hole;
	}
	if (ftruncate(out, size) < 0)
		return fp_fail(err, errno, "ftruncate %s: %s", dst, strerror(errno));
	return 0;
}

int ovl_copy_node(const char *src, const struct stat *st, const char *dst, fp_error *err)
{
	if (S_ISREG(st->st_mode)) {
		int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (in < 0)
			return fp_fail(err, errno, "open %s: %s", src, strerror(errno));
		int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0) {
			int e = errno;
			close(in);
			return fp_fail(err, e, "create %s: %s", dst, strerror(e));
		}
		int r = copy_data(in, out, st->st_size, err, dst);
		close(in);
		close(out);
		if (r < 0)
			return -1;
	} else if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return fp_fail(err, errno, "readlink %s: %s", src, strerror(errno));
		target[n] = '\0';
		if (symlink(target, dst) < 0)
			return fp_fail(err, errno, "symlink %s: %s", dst, strerror(errno));
	} else {
		if (mknod(dst, st->st_mode, st->st_rdev) < 0)
			return fp_fail(err, errno, "mknod %s: %s", dst, strerror(errno));
	}
	return ovl_copy_meta(src, st, dst, err);
}
