/* Removing snapshots that are parents of others (snap_chain.h). */
#include "dump/snap_chain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"

/* The name (in snapshots/) that snapshots/<child>'s parent link points at,
 * or "" if it has none or it points elsewhere. */
static void parent_name(const char *root, const char *child, char *out, size_t len)
{
	char link[PATH_MAX + 300], target[PATH_MAX];
	out[0] = '\0';
	snprintf(link, sizeof(link), "%s/%s/parent", root, child);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	/* written as "../NAME" by the dumper */
	if (!strncmp(target, "../", 3) && !strchr(target + 3, '/'))
		snprintf(out, len, "%s", target + 3);
}

/* Re-points child's parent link at ../to, atomically (rename over it). */
static int relink(const char *root, const char *child, const char *to, fp_error *err)
{
	char tmp[PATH_MAX + 300], link[PATH_MAX + 300], target[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/%s/.parent-new", root, child);
	snprintf(link, sizeof(link), "%s/%s/parent", root, child);
	snprintf(target, sizeof(target), "../%s", to);
	unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
		int e = errno;
		unlink(tmp);
		return fp_fail(err, e, "cannot re-point the parent link of %s: %s", child, strerror(e));
	}
	return 0;
}

int fp_snap_retire(const char *session_dir, const char *name, char *gone, size_t len, int *kept, fp_error *err)
{
	char root[PATH_MAX], dir[PATH_MAX + 300];
	snprintf(root, sizeof(root), "%s/snapshots", session_dir);
	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	DIR *d = opendir(root);
	if (!d)
		return fp_fail(err, errno, "cannot read %s: %s", root, strerror(errno));
	char **kids = NULL;
	size_t nk = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char p[NAME_MAX + 1];
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		parent_name(root, de->d_name, p, sizeof(p));
		if (!strcmp(p, name)) {
			char **x = realloc(kids, (nk + 1) * sizeof(*x));
			if (!x || !(x[nk] = strdup(de->d_name))) {
				free(x ? x : kids);
				closedir(d);
				return fp_fail(err, ENOMEM, "out of memory");
			}
			kids = x;
			nk++;
		}
	}
	closedir(d);
	*kept = nk > 0;
	char base[NAME_MAX + 1];
	for (int i = 0;; i++) {
		snprintf(base, sizeof(base), "%s%s-%d", nk ? ".kept-" : ".rm-", name, (int)getpid() + i);
		snprintf(gone, len, "%s/%s", root, base);
		struct stat st;
		if (lstat(gone, &st) < 0)
			break;
	}
	int rc = 0;
	/* Out of every listing first (one rename); its children follow it. A
	 * child's link is dangling only between the rename and its relink. */
	if (rename(dir, gone) < 0)
		rc = fp_fail(err, errno, "cannot remove %s: %s", dir, strerror(errno));
	for (size_t i = 0; i < nk; i++) {
		if (!rc)
			rc = relink(root, kids[i], base, err);
		free(kids[i]);
	}
	free(kids);
	return rc;
}

int fp_snap_chain_gc(const char *session_dir, unsigned *removed, unsigned *kept, fp_error *err)
{
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/snapshots", session_dir);
	*removed = *kept = 0;
	/* A kept directory freed may free its own parent: repeat until none. */
	for (int again = 1; again;) {
		again = 0;
		DIR *d = opendir(root);
		if (!d)
			return errno == ENOENT ? 0 : fp_fail(err, errno, "cannot read %s: %s", root, strerror(errno));
		char **names = NULL;
		size_t n = 0;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			char **x = realloc(names, (n + 1) * sizeof(*x));
			if (!x)
				break;
			names = x;
			if ((names[n] = strdup(de->d_name)))
				n++;
		}
		closedir(d);
		*kept = 0;
		for (size_t i = 0; i < n; i++) {
			if (strncmp(names[i], ".kept-", 6))
				continue;
			bool used = false;
			for (size_t j = 0; j < n && !used; j++) {
				char p[NAME_MAX + 1];
				parent_name(root, names[j], p, sizeof(p));
				used = !strcmp(p, names[i]);
			}
			if (used) {
				(*kept)++;
				continue;
			}
			char path[PATH_MAX + 300];
			snprintf(path, sizeof(path), "%s/%s", root, names[i]);
			if (fp_rm_rf(path, err) == 0) {
				(*removed)++;
				again = 1;
			}
		}
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return 0;
}
