#include "snapshots.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/dump.h"
#include "images/img_verify.h"
#include "dir_collect.h"
#include "paths.h"

int fp_snap_name_valid(const char *name, fp_error *err)
{
	size_t len = strlen(name);
	if (len == 0 || len > FP_SNAP_NAME_MAX)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "snapshot name must be 1 to %d characters",
				    FP_SNAP_NAME_MAX);
	if (name[0] == '.' || name[0] == '-')
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
				    "snapshot name '%s' must not start with '.' or '-'", name);
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return fp_fail_code(err, FP_EXIT_USAGE, EINVAL,
					    "snapshot name '%s' may only contain letters, digits, '.', '_' and '-'",
					    name);
	return 0;
}

int fp_snap_new_path(const char *session_dir, const char *name, char *out_name, size_t name_len,
		     char *out_dir, size_t dir_len, fp_error *err)
{
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/snapshots", session_dir);
	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return fp_fail(err, errno, "cannot create %s: %s", root, strerror(errno));
	if (name) {
		if (fp_snap_name_valid(name, err) < 0)
			return -1;
		snprintf(out_dir, dir_len, "%s/%s", root, name);
		struct stat st;
		if (lstat(out_dir, &st) == 0) {
			char manifest[PATH_MAX + 32];
			snprintf(manifest, sizeof(manifest), "%s/%s", out_dir, FP_MANIFEST_NAME);
			if (access(manifest, F_OK) == 0)
				return fp_fail_code(err, FP_EXIT_FAIL, EEXIST,
						    "snapshot '%s' already exists; choose another name or "
						    "remove it first", name);
			return fp_fail_code(err, FP_EXIT_FAIL, EEXIST,
					    "%s is left over from an interrupted snapshot (it has no "
					    "manifest); remove it or choose another name", out_dir);
		}
		snprintf(out_name, name_len, "%s", name);
		return 0;
	}
	for (int i = 1; i < 1000000; i++) {
		char cand[32];
		snprintf(cand, sizeof(cand), "snap-%d", i);
		snprintf(out_dir, dir_len, "%s/%s", root, cand);
		struct stat st;
		if (lstat(out_dir, &st) < 0 && errno == ENOENT) {
			snprintf(out_name, name_len, "%s", cand);
			return 0;
		}
	}
	return fp_fail(err, EEXIST, "no free snapshot name in %s", root);
}

static uint64_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	uint64_t sum = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return sum;
}

int fp_snap_read(const char *snap_dir, struct fp_snap_info *info, fp_error *err)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", snap_dir, FP_MANIFEST_NAME);
	FILE *f = fopen(path, "re");
	if (!f)
		return fp_fail(err, errno, "%s is not a complete snapshot: no %s", snap_dir, FP_MANIFEST_NAME);
	memset(info, 0, sizeof(*info));
	const char *base = strrchr(snap_dir, '/');
	snprintf(info->name, sizeof(info->name), "%s", base ? base + 1 : snap_dir);
	snprintf(info->dir, sizeof(info->dir), "%s", snap_dir);
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp++ = '\0';
		if (!strcmp(line, "created"))
			info->created = atoll(sp);
		else if (!strcmp(line, "pause_ms"))
			info->pause_ms = atof(sp);
		else if (!strcmp(line, "total_ms"))
			info->total_ms = atof(sp);
		else if (!strcmp(line, "compress"))
			snprintf(info->compress, sizeof(info->compress), "%s", sp);
		else if (!strcmp(line, "pids"))
			snprintf(info->pids, sizeof(info->pids), "%s", sp);
		else if (!strcmp(line, "pages")) {
			unsigned id;
			unsigned long long n;
			if (sscanf(sp, "%u %llu", &id, &n) == 2)
				info->pages += n;
		}
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0)
		info->created_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	fclose(f);
	info->disk_bytes = dir_bytes(snap_dir);
	return 0;
}

static int by_created(const void *a, const void *b)
{
	const struct fp_snap_info *x = a, *y = b;
	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct list_ctx {
	const char *root;
	bool full;
};

static int load_snap(void *vctx, const char *name, void *rec)
{
	const struct list_ctx *ctx = vctx;
	struct fp_snap_info *si = rec;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/%s", ctx->root, name);
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return -1;
	fp_error e;
	if (fp_snap_read(dir, si, &e) < 0) {
		memset(si, 0, sizeof(*si));
		snprintf(si->name, sizeof(si->name), "%s", name);
		snprintf(si->dir, sizeof(si->dir), "%s", dir);
		si->created_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct img_verify_info vi = { 0 };
	if (dfd < 0) {
		si->damaged = true;
		snprintf(si->damage, sizeof(si->damage), "cannot open %s: %s", dir, strerror(errno));
	} else if (img_verify(dfd, dir, ctx->full ? IMG_VERIFY_FULL : IMG_VERIFY_SIZES, &vi, &e) < 0) {
		si->damaged = true;
		snprintf(si->damage, sizeof(si->damage), "%s", e.msg);
	} else if (vi.trust != IMG_TRUST_VERIFIED) {
		si->damaged = true;
		snprintf(si->damage, sizeof(si->damage), "%s has no %s", dir, FP_MANIFEST_NAME);
	}
	if (dfd >= 0)
		close(dfd);
	return 0;
}

int fp_snap_list(const char *session_dir, bool full_verify, struct fp_snap_info **out, size_t *n, fp_error *err)
{
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/snapshots", session_dir);
	struct list_ctx ctx = { root, full_verify };
	return fp_dir_collect(root, sizeof(**out), load_snap, &ctx, by_created, (void **)out, n, err);
}
