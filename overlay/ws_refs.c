/* What a process holds inside a mount: from /proc only, so the session helper
 * knows what to re-point after a freeze. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "overlay/ws_int.h"

static uint64_t mnt_of(const char *path)
{
	struct statx sx;
	if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, &sx) < 0)
		return 0;
	return sx.stx_mnt_id;
}

static int push(struct fp_ws_ref **v, size_t *n, size_t *cap, const struct fp_ws_ref *r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct fp_ws_ref *nv = realloc(*v, c * sizeof(**v));
		if (!nv)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *r;
	return 0;
}

static void set_path(struct fp_ws_ref *r, const char *link)
{
	ssize_t l = readlink(link, r->path, sizeof(r->path) - 1);
	if (l < 0)
		l = 0;
	r->path[l] = '\0';
	static const char del[] = " (deleted)";
	size_t dl = sizeof(del) - 1;
	if ((size_t)l > dl && !strcmp(r->path + l - dl, del)) {
		/* Ambiguous only if a live file's name really ends that way;
		 * st_nlink settles it. */
		struct stat st;
		if (stat(link, &st) == 0 && st.st_nlink == 0)
			r->flags |= FP_WS_REF_DELETED;
	}
}

static int fdinfo(pid_t pid, int fd, struct fp_ws_ref *r)
{
	char p[64], buf[4096];
	snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", (int)pid, fd);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	size_t got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	char *s = strstr(buf, "pos:");
	if (s)
		r->pos = strtoll(s + 4, NULL, 10);
	s = strstr(buf, "flags:");
	if (s)
		r->open_flags = (int)strtol(s + 6, NULL, 8);
	return 0;
}

int fp_ws_scan_refs(pid_t pid, uint64_t mnt_id, const char *mount_path, struct fp_ws_ref **out,
		    size_t *n, fp_error *err)
{
	(void)mount_path;
	struct fp_ws_ref *v = NULL;
	size_t k = 0, cap = 0;
	struct fp_ws_ref *r = calloc(1, sizeof(*r));
	char p[128];
	if (!r)
		return fp_fail(err, ENOMEM, "out of memory");
	const char *special[] = { "cwd", "root" };
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, special[i]);
		if (mnt_of(p) != mnt_id)
			continue;
		memset(r, 0, sizeof(*r));
		r->kind = i ? FP_WS_REF_ROOT : FP_WS_REF_CWD;
		r->fd = -1;
		set_path(r, p);
		if (push(&v, &k, &cap, r) < 0)
			goto oom;
	}
	snprintf(p, sizeof(p), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(p);
	if (!d) {
		int e = errno;
		free(r);
		free(v);
		return fp_fail(err, e, "cannot list %s: %s", p, strerror(e));
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/fd/%s", (int)pid, de->d_name);
		if (mnt_of(p) != mnt_id)
			continue;
		memset(r, 0, sizeof(*r));
		r->kind = FP_WS_REF_FD;
		r->fd = atoi(de->d_name);
		set_path(r, p);
		fdinfo(pid, r->fd, r);
		if ((r->open_flags & O_ACCMODE) != O_RDONLY)
			r->flags |= FP_WS_REF_WRITABLE;
		if (push(&v, &k, &cap, r) < 0) {
			closedir(d);
			goto oom;
		}
	}
	closedir(d);
	snprintf(p, sizeof(p), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f) {
		int e = errno;
		free(r);
		free(v);
		return fp_fail(err, e, "cannot read %s: %s", p, strerror(e));
	}
	char line[PATH_MAX + 256];
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s %llx", &s, &e, perms, &off) != 4)
			continue;
		if (!strchr(line, '/'))
			continue;
		char mf[128];
		snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", (int)pid, s, e);
		if (mnt_of(mf) != mnt_id)
			continue;
		memset(r, 0, sizeof(*r));
		r->kind = FP_WS_REF_MAP;
		r->fd = -1;
		r->start = s, r->end = e, r->offset = off;
		r->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		if (perms[3] == 's' && perms[1] == 'w')
			r->flags |= FP_WS_REF_MAP_SHARED_W;
		set_path(r, mf);
		if (push(&v, &k, &cap, r) < 0) {
			fclose(f);
			goto oom;
		}
	}
	fclose(f);
	free(r);
	*out = v;
	*n = k;
	return 0;
oom:
	free(r);
	free(v);
	return fp_fail(err, ENOMEM, "out of memory");
}
