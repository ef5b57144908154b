/* A branch's workspace store (overlay/ws_branch.c) on real overlay mounts:
 * it sees the snapshot's files, writes only its own upper, and the owner's
 * rm + gc keep the layers it stands on exactly as long as the branch store
 * exists (root only; a private mount namespace of this test). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fp_test.h"
#include "overlay/workspace.h"
#include "paths.h"

static char top[256], base[300], store[300], bstore[300];

static int put(const char *rel, const char *data)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, strlen(data));
	close(fd);
	return n == (ssize_t)strlen(data) ? 0 : -1;
}

static int has(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", base, rel);
	return access(p, F_OK) == 0;
}

static int freeze(struct fp_ws *ws, const char *name)
{
	struct fp_ws_switch sw;
	fp_error err;
	if (fp_ws_freeze_begin(ws, &sw, &err) < 0 || fp_ws_freeze_commit(ws, &sw, name, &err) < 0) {
		fprintf(stderr, "freeze %s: %s\n", name, err.msg);
		return -1;
	}
	return 0;
}

/* In a mount namespace of its own, as a branch's helper: mounts the branch
 * store, checks the snapshot's view, writes. Exit 0 if all held. */
static int branch_child(void)
{
	fp_error err;
	struct fp_ws *b;
	/* A branch's helper starts from the host's namespace, where DIR is
	 * not covered by the original's overlay. */
	if (fp_ws_private_ns(&err) < 0 || umount2(base, MNT_DETACH) < 0) {
		fprintf(stderr, "cannot leave the original's mount: %s\n", strerror(errno));
		return 1;
	}
	if (fp_ws_open(bstore, NULL, &b, &err) < 0 || fp_ws_mount(b, &err) < 0) {
		fprintf(stderr, "branch mount: %s\n", err.msg);
		return 1;
	}
	int bad = 0;
	if (!has("snap.txt") || has("after.txt"))
		fprintf(stderr, "the branch does not see snapshot s0's files\n"), bad = 1;
	bad |= put("branch.txt", "mine\n") < 0;
	bad |= freeze(b, "b0") < 0; /* a snapshot inside the branch */
	bad |= put("branch2.txt", "mine too\n") < 0;
	fp_ws_close(b);
	return bad;
}

int main(void)
{
	if (geteuid() != 0)
		SKIP("needs root (overlay mounts in a private mount namespace)");
	fp_error err;
	if (fp_ws_private_ns(&err) < 0)
		SKIP("%s", err.msg);
	snprintf(top, sizeof(top), "/tmp/fp-wsb-test.%d", (int)getpid());
	snprintf(base, sizeof(base), "%s/dir", top);
	snprintf(store, sizeof(store), "%s/orig/workspace", top);
	snprintf(bstore, sizeof(bstore), "%s/br/workspace", top);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s %s/br", top, base, top);
	CHECK(system(cmd) == 0);
	struct fp_ws *ws;
	struct fp_ws_opts o = { .sync = false };
	CHECKF(fp_ws_create(store, base, &o, &ws, &err) == 0, "create: %s", err.msg);
	if (fp_ws_mount(ws, &err) < 0) {
		printf("mount: %s\n", err.msg);
		SKIP("cannot mount an overlay here");
	}
	CHECK(freeze(ws, "e") == 0); /* before any file */
	CHECK(put("snap.txt", "at s0\n") == 0);
	CHECK(freeze(ws, "s0") == 0);
	CHECK(put("after.txt", "after s0\n") == 0);
	unsigned *ids, n;
	CHECK(fp_ws_chain(store, "s0", &ids, &n, &err) == 0 && n == 2);
	unsigned frozen = n ? ids[0] : 0;
	free(ids);

	struct fp_ws *b;
	CHECKF(fp_ws_create_branch(bstore, store, "s0", &o, &b, &err) == 0, "create branch: %s", err.msg);
	fp_ws_close(b);
	char p[PATH_MAX], real[PATH_MAX], want[PATH_MAX];
	snprintf(p, sizeof(p), "%s/layers/%u", bstore, frozen);
	snprintf(want, sizeof(want), "%s/layers/%u", store, frozen);
	CHECKF(realpath(p, real) && !strcmp(real, want), "%s should link to %s", p, want);
	snprintf(p, sizeof(p), "%s/pins/br", store);
	CHECKF(access(p, F_OK) == 0, "no pin %s", p);
	CHECK(fp_ws_pinned(store));

	pid_t c = fork();
	if (c == 0)
		_exit(branch_child());
	int st;
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The original sees nothing of the branch's writes. */
	CHECK(!has("branch.txt") && !has("branch2.txt") && has("after.txt"));

	/* The original goes back to e, so only s0 and the branch name s0's
	 * top layer; rm + gc in the owner keep it for the branch... */
	struct fp_ws_switch sw;
	CHECK(chdir("/") == 0);
	CHECKF(fp_ws_restore_begin(ws, "e", &sw, &err) == 0 && fp_ws_restore_commit(ws, &sw, &err) == 0,
	       "restore e: %s", err.msg);
	CHECK(!has("snap.txt"));
	CHECK(fp_ws_rm(ws, "s0", &err) == 0);
	struct fp_ws_gc_stats gs;
	CHECKF(fp_ws_gc(ws, &gs, &err) == 0, "gc: %s", err.msg);
	CHECKF(access(want, F_OK) == 0, "gc removed %s, which the branch stands on", want);
	/* ...the branch's own gc removes only links, never the owner's layer... */
	CHECK(fp_ws_open(bstore, NULL, &b, &err) == 0);
	CHECK(fp_ws_rm(b, "b0", &err) == 0);
	CHECK(fp_ws_gc(b, &gs, &err) == 0);
	fp_ws_close(b);
	CHECK(access(want, F_OK) == 0);
	/* ...and once the branch store is gone, the next gc frees it. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/br", top);
	CHECK(system(cmd) == 0);
	CHECK(!fp_ws_pinned(store));
	CHECKF(fp_ws_gc(ws, &gs, &err) == 0, "gc: %s", err.msg);
	CHECKF(access(want, F_OK) < 0, "%s outlived its last user", want);
	snprintf(p, sizeof(p), "%s/pins/br", store);
	CHECK(access(p, F_OK) < 0);
	fp_ws_close(ws);
	snprintf(cmd, sizeof(cmd), "umount -l %s 2>/dev/null; rm -rf %s", base, top);
	if (system(cmd) != 0) {
		/* best effort */
	}
	return fp_test_done();
}
