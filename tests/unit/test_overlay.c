/* Workspaces on real overlay mounts, in a private mount namespace of this
 * test (root only). The test process plays the session: it holds fds and a
 * cwd in the workspace across snapshots and re-points them itself, as the
 * session helper will do with injected syscalls. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fp_test.h"
#include "overlay/workspace.h"
#include "paths.h"

static char top[256], base[300], store[300];
static int base_fd; /* the real DIR, under the overlay */

static void wfile(const char *rel, const char *data)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECKF(fd >= 0, "%s: %s", p, strerror(errno));
	if (fd >= 0) {
		CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
		close(fd);
	}
}

static const char *rfile(const char *rel)
{
	static char buf[8192];
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static int exists(const char *rel)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	return lstat(p, &st) == 0;
}

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* The helper's job, done on ourselves: re-point every reference to the old
 * mount (except the workspace's own fd of it) by reopening the same path,
 * which resolves in whatever mount is on top of DIR now. */
static int scan(uint64_t mnt_id, struct fp_ws_ref **refs, size_t *n)
{
	fp_error err;
	if (fp_ws_scan_refs(getpid(), mnt_id, base, refs, n, &err) < 0) {
		fprintf(stderr, "scan: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int repoint(const struct fp_ws_ref *refs, size_t n, int skip_fd)
{
	int moved = 0;
	for (size_t i = 0; i < n; i++) {
		const struct fp_ws_ref *r = &refs[i];
		if (r->kind == FP_WS_REF_FD && r->fd != skip_fd && !(r->flags & FP_WS_REF_DELETED)) {
			int fl = r->open_flags & ~(O_CREAT | O_EXCL | O_TRUNC);
			int nfd = open(r->path, fl);
			if (nfd < 0)
				return -1;
			lseek(nfd, r->pos, SEEK_SET);
			dup3(nfd, r->fd, fl & O_CLOEXEC);
			close(nfd);
			moved++;
		} else if (r->kind == FP_WS_REF_CWD) {
			if (chdir(r->path) < 0)
				return -1;
			moved++;
		} else if (r->kind == FP_WS_REF_MAP && (r->flags & FP_WS_REF_MAP_SHARED_W)) {
			int fd = open(r->path, O_RDWR);
			if (fd < 0)
				return -1;
			void *p = mmap((void *)(uintptr_t)r->start, r->end - r->start, r->prot,
				       MAP_SHARED | MAP_FIXED, fd, (off_t)r->offset);
			close(fd);
			if (p == MAP_FAILED)
				return -1;
			moved++;
		}
	}
	return moved;
}

static int snap(struct fp_ws *ws, const char *name)
{
	struct fp_ws_switch sw;
	fp_error err;
	if (fp_ws_freeze_begin(ws, &sw, &err) < 0) {
		fprintf(stderr, "freeze %s: %s\n", name, err.msg);
		return -1;
	}
	struct fp_ws_ref *refs = NULL;
	size_t n = 0;
	int skip = sw.old_mnt_fd;
	if (scan(sw.old_mnt_id, &refs, &n) < 0 || repoint(refs, n, skip) < 0 ||
	    fp_ws_freeze_commit(ws, &sw, name, &err) < 0) {
		fprintf(stderr, "commit %s: %s\n", name, err.msg);
		fp_ws_freeze_abort(ws, &sw);
		repoint(refs, n, skip); /* the same paths, in the old mount again */
		free(refs);
		return -1;
	}
	free(refs);
	return 0;
}

static int restore(struct fp_ws *ws, const char *name)
{
	struct fp_ws_switch sw;
	fp_error err;
	if (chdir("/") < 0)
		return -1;
	if (fp_ws_restore_begin(ws, name, &sw, &err) < 0 || fp_ws_restore_commit(ws, &sw, &err) < 0) {
		fprintf(stderr, "restore %s: %s\n", name, err.msg);
		return -1;
	}
	return 0;
}

static void test_basic(struct fp_ws *ws)
{
	/* Through the overlay: every kind of change. */
	CHECK(!strcmp(rfile("keep.txt"), "keep\n"));
	wfile("new.txt", "new\n");
	wfile("mod.txt", "modified\n");
	char p[512], q[512];
	snprintf(p, sizeof(p), "%s/del.txt", base);
	CHECK(unlink(p) == 0);
	snprintf(p, sizeof(p), "%s/dir", base);
	snprintf(q, sizeof(q), "%s/dir2", base);
	CHECKF(rename(p, q) == 0, "rename of a lower dir: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/mode.sh", base);
	CHECK(chmod(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/link", base);
	CHECK(symlink("keep.txt", p) == 0);
	snprintf(p, sizeof(p), "%s/hard1", base);
	snprintf(q, sizeof(q), "%s/hard2", base);
	wfile("hard1", "hard\n");
	CHECK(link(p, q) == 0);
	snprintf(p, sizeof(p), "%s/x.txt", base);
	wfile("x.txt", "x\n");
	CHECKF(setxattr(p, "user.tag", "v1", 2, 0) == 0, "user xattr on the overlay: %s", strerror(errno));
	snprintf(p, sizeof(p), "%s/sparse", base);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	CHECK(ftruncate(fd, 64 << 20) == 0);
	CHECK(pwrite(fd, "z", 1, 32 << 20) == 1);
	close(fd);
	/* DIR itself is never written. */
	struct stat st;
	CHECK(fstatat(base_fd, "new.txt", &st, 0) < 0 && errno == ENOENT);
	CHECK(fstatat(base_fd, "del.txt", &st, 0) == 0);
	CHECK(fstatat(base_fd, "dir/inner", &st, 0) == 0);
	(void)ws;
}

static void check_snap1_view(const char *label)
{
	const char *s;
	CHECKF((s = rfile("new.txt")) && !strcmp(s, "new\n"), "%s new.txt", label);
	CHECKF((s = rfile("mod.txt")) && !strcmp(s, "modified\n"), "%s mod.txt", label);
	CHECKF(!exists("del.txt"), "%s del.txt gone", label);
	CHECKF(!exists("dir") && exists("dir2/inner"), "%s dir renamed", label);
	char p[512], q[512], t[64];
	struct stat st, st2;
	snprintf(p, sizeof(p), "%s/mode.sh", base);
	CHECKF(stat(p, &st) == 0 && (st.st_mode & 0777) == 0755, "%s mode", label);
	snprintf(p, sizeof(p), "%s/link", base);
	ssize_t n = readlink(p, t, sizeof(t) - 1);
	CHECKF(n == 8 && !memcmp(t, "keep.txt", 8), "%s symlink", label);
	snprintf(p, sizeof(p), "%s/hard1", base);
	snprintf(q, sizeof(q), "%s/hard2", base);
	CHECKF(stat(p, &st) == 0 && stat(q, &st2) == 0 && st.st_ino == st2.st_ino && st.st_nlink == 2,
	       "%s hard link kept", label);
	snprintf(p, sizeof(p), "%s/x.txt", base);
	char v[8] = "";
	CHECKF(getxattr(p, "user.tag", v, sizeof(v)) == 2 && !memcmp(v, "v1", 2), "%s xattr", label);
	snprintf(p, sizeof(p), "%s/sparse", base);
	CHECKF(stat(p, &st) == 0 && st.st_size == 64 << 20 && st.st_blocks < 1024, "%s sparse (%lld blocks)",
	       label, (long long)st.st_blocks);
}

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	fp_error err;
	return fp_read_file(path, buf, sizeof(buf), &err) < 0 ? NULL : buf;
}

static void test_rollback(struct fp_ws *ws)
{
	const char *steps[] = { "syncfs", "mkdir", "mount", "attach", "seal", "chain", "state" };
	char statep[400], layers[400];
	snprintf(statep, sizeof(statep), "%s/state", store);
	snprintf(layers, sizeof(layers), "%s/layers", store);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char before[4096];
		snprintf(before, sizeof(before), "%s", slurp(statep));
		int nl = count_dir(layers);
		uint64_t mid = fp_ws_mnt_id(ws);
		int wfd = open("rb.txt", O_WRONLY | O_CREAT | O_APPEND, 0644); /* cwd is in DIR */
		CHECK(wfd >= 0 && write(wfd, "a", 1) == 1);
		setenv("FORKPOINT_WS_FAIL", steps[i], 1);
		CHECKF(snap(ws, "never") < 0, "step %s must fail", steps[i]);
		unsetenv("FORKPOINT_WS_FAIL");
		CHECKF(!strcmp(before, slurp(statep)), "state unchanged after failed %s", steps[i]);
		CHECKF(count_dir(layers) == nl, "layers unchanged after failed %s", steps[i]);
		CHECKF(fp_ws_mnt_id(ws) == mid, "same mount after failed %s", steps[i]);
		char cp[400];
		snprintf(cp, sizeof(cp), "%s/chains/never", store);
		CHECKF(access(cp, F_OK) < 0, "no chain after failed %s", steps[i]);
		/* The session still writes to the same, live upper. */
		CHECK(write(wfd, "b", 1) == 1);
		close(wfd);
	}
	const char *s = rfile("rb.txt");
	CHECKF(s && strlen(s) == 2 * sizeof(steps) / sizeof(steps[0]), "rb.txt '%s'", s ? s : "(null)");
}

static void test_diff(struct fp_ws *ws)
{
	struct fp_ws_diff_entry *e;
	size_t n;
	fp_error err;
	CHECKF(fp_ws_diff(ws, "s0", "s1", &e, &n, &err) == 0, "diff: %s", err.msg);
	char out[8192] = "";
	FILE *f = fmemopen(out, sizeof(out), "w");
	fp_ws_diff_print(f, e, n);
	fclose(f);
	printf("diff s0 s1:\n%s", out);
	const char *want[] = { "A                      new.txt", "M content              mod.txt",
			       "D                      del.txt", "D                      dir/",
			       "A                      dir2/", "M mode                 mode.sh",
			       "A                      link", "A                      hard1",
			       "A                      x.txt", "A                      sparse",
			       "D                      dir/inner", "A                      dir2/inner" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECKF(strstr(out, want[i]), "diff lacks '%s'", want[i]);
	CHECKF(!strstr(out, "keep.txt"), "unchanged file listed");
	fp_ws_diff_free(e, n);
	CHECK(fp_ws_diff(ws, "s1", "s1", &e, &n, &err) == 0 && n == 0);
	fp_ws_diff_free(e, n);
}

int main(void)
{
	if (geteuid() != 0)
		SKIP("needs root (overlay mounts in a private mount namespace)");
	fp_error err;
	if (fp_ws_private_ns(&err) < 0)
		SKIP("%s", err.msg);
	snprintf(top, sizeof(top), "/tmp/fp-ovl-test.%d", (int)getpid());
	snprintf(base, sizeof(base), "%s/dir", top);
	snprintf(store, sizeof(store), "%s/store", top);
	sh("rm -rf %s && mkdir -p %s/dir/inner %s", top, base, top);
	/* The session's base content. */
	wfile("keep.txt", "keep\n");
	wfile("mod.txt", "original\n");
	wfile("del.txt", "delete me\n");
	wfile("dir/inner/f", "inner\n");
	wfile("mode.sh", "#!/bin/sh\n");
	base_fd = open(base, O_PATH | O_DIRECTORY);

	struct fp_ws *ws;
	struct fp_ws_opts o = { .sync = false, .squash_at = 64 };
	CHECKF(fp_ws_create(store, base, &o, &ws, &err) == 0, "create: %s", err.msg);
	if (fp_ws_mount(ws, &err) < 0) {
		printf("mount: %s\n", err.msg);
		sh("rm -rf %s", top);
		SKIP("cannot mount an overlay here");
	}
	CHECK(snap(ws, "s0") == 0);
	test_basic(ws);

	/* An fd and a cwd opened before the snapshot keep working after it,
	 * and writes through them never reach the frozen layer. */
	CHECK(chdir(base) == 0);
	int wfd = open("live.txt", O_WRONLY | O_CREAT | O_APPEND, 0644);
	CHECK(write(wfd, "before\n", 7) == 7);
	int rfd = open("keep.txt", O_RDONLY);
	char shp[512];
	snprintf(shp, sizeof(shp), "%s/shared.bin", base);
	int mfd = open(shp, O_RDWR | O_CREAT, 0644);
	CHECK(ftruncate(mfd, 4096) == 0);
	char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	close(mfd);
	CHECK(map != MAP_FAILED);
	if (map == MAP_FAILED)
		return fp_test_done();
	memcpy(map, "one", 3);

	/* Commit refuses while a writer is left in the old mount. */
	struct fp_ws_switch sw;
	CHECK(fp_ws_freeze_begin(ws, &sw, &err) == 0);
	CHECKF(fp_ws_freeze_commit(ws, &sw, "s1", &err) < 0 && err.errnum == EBUSY,
	       "commit with an unmoved writer must fail with EBUSY");
	fp_ws_freeze_abort(ws, &sw);
	CHECK(write(wfd, "still\n", 6) == 6);

	unsigned frozen_id = 0;
	{
		CHECK(fp_ws_freeze_begin(ws, &sw, &err) == 0);
		frozen_id = sw.frozen;
		struct fp_ws_ref *refs;
		size_t nrefs;
		CHECK(scan(sw.old_mnt_id, &refs, &nrefs) == 0);
		int moved = repoint(refs, nrefs, sw.old_mnt_fd);
		free(refs);
		CHECKF(moved >= 4, "re-pointed %d refs (fd, fd, map, cwd)", moved);
		CHECKF(fp_ws_freeze_commit(ws, &sw, "s1", &err) == 0, "commit: %s", err.msg);
	}
	CHECK(write(wfd, "after\n", 6) == 6);
	memcpy(map, "two", 3);
	char frozen_live[512];
	snprintf(frozen_live, sizeof(frozen_live), "%s/layers/%u/live.txt", store, frozen_id);
	const char *fl = slurp(frozen_live);
	CHECKF(fl && !strcmp(fl, "before\nstill\n"), "frozen layer changed: '%s'", fl ? fl : "(null)");
	CHECKF(!strcmp(rfile("live.txt"), "before\nstill\nafter\n"), "live view: '%s'", rfile("live.txt"));
	char kb[16] = "";
	CHECK(read(rfd, kb, sizeof(kb)) == 5 && !memcmp(kb, "keep\n", 5));
	snprintf(frozen_live, sizeof(frozen_live), "%s/layers/%u/shared.bin", store, frozen_id);
	int ffd = open(frozen_live, O_RDONLY);
	CHECK(ffd >= 0 && pread(ffd, kb, 3, 0) == 3 && !memcmp(kb, "one", 3));
	close(ffd);
	CHECK(!memcmp(rfile("shared.bin"), "two", 3));
	munmap(map, 4096);
	close(rfd);
	close(wfd);
	check_snap1_view("live");

	test_rollback(ws);

	/* Later changes, then back to s1. */
	wfile("new.txt", "changed later\n");
	wfile("keep.txt", "clobbered\n");
	char p[512];
	snprintf(p, sizeof(p), "%s/dir2", base);
	CHECK(sh("rm -rf %s", p) == 0);
	CHECK(snap(ws, "s2") == 0);
	CHECK(restore(ws, "s1") == 0);
	check_snap1_view("restored s1");
	CHECK(!strcmp(rfile("keep.txt"), "keep\n"));
	CHECK(!strcmp(rfile("live.txt"), "before\nstill\n"));
	CHECK(restore(ws, "s2") == 0);
	CHECK(!strcmp(rfile("keep.txt"), "clobbered\n") && !exists("dir2"));
	CHECK(restore(ws, "s1") == 0);

	/* An interrupted restore leaves the old state (the state file is the
	 * commit point). */
	char statep[400], before[4096];
	snprintf(statep, sizeof(statep), "%s/state", store);
	snprintf(before, sizeof(before), "%s", slurp(statep));
	CHECK(fp_ws_restore_begin(ws, "s2", &sw, &err) == 0);
	setenv("FORKPOINT_WS_FAIL", "state", 1);
	CHECK(fp_ws_restore_commit(ws, &sw, &err) < 0);
	unsetenv("FORKPOINT_WS_FAIL");
	fp_ws_restore_abort(ws, &sw);
	CHECK(!strcmp(before, slurp(statep)));
	CHECK(!strcmp(rfile("keep.txt"), "keep\n"));

	test_diff(ws);

	/* rm and gc: never a layer a chain or the live state still names. */
	struct fp_ws_gc_stats gs;
	CHECK(fp_ws_gc(ws, &gs, &err) == 0);
	printf("gc: removed %u layers, kept %u, %u workdirs\n", gs.layers_removed, gs.layers_kept,
	       gs.workdirs_removed);
	CHECK(fp_ws_rm(ws, "s2", &err) == 0);
	CHECK(fp_ws_gc(ws, &gs, &err) == 0);
	CHECKF(gs.layers_removed >= 1, "s2's own layer removed (%u)", gs.layers_removed);
	CHECK(restore(ws, "s0") == 0);
	CHECK(!strcmp(rfile("mod.txt"), "original\n") && exists("del.txt"));
	CHECK(restore(ws, "s1") == 0);
	check_snap1_view("s1 after gc");
	CHECK(fp_ws_rm(ws, "s2", &err) < 0);

	fp_ws_close(ws);
	CHECK(chdir("/") == 0);
	umount2(base, MNT_DETACH);
	sh("rm -rf %s", top);
	return fp_test_done();
}
