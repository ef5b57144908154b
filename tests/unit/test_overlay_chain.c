/* A chain of 1000 snapshots with squashing (whiteouts, opaque dirs and
 * redirects crossing the squash), every sampled snapshot restored and
 * compared with what the session saw; and a 1 GiB file with a 4 KiB change. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"
#include "overlay/workspace.h"

static char top[256], base[300], store[300];

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* What the session sees: names, types, modes, sizes, link targets, data. */
static char *manifest(void)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && find . -printf '%%p %%y %%m %%s %%l\\n' | LC_ALL=C sort && "
		 "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum", base);
	FILE *f = popen(cmd, "r");
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (f && buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	if (f)
		pclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

static int snap(struct fp_ws *ws, const char *name)
{
	struct fp_ws_switch sw;
	fp_error err;
	/* This test keeps no fd or cwd in DIR: nothing to re-point. */
	if (fp_ws_freeze_begin(ws, &sw, &err) < 0 || fp_ws_freeze_commit(ws, &sw, name, &err) < 0) {
		fprintf(stderr, "snap %s: %s\n", name, err.msg);
		if (sw.kind)
			fp_ws_freeze_abort(ws, &sw);
		return -1;
	}
	bool did;
	if (fp_ws_maintain(ws, &did, &err) < 0) {
		fprintf(stderr, "maintain: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int restore(struct fp_ws *ws, const char *name)
{
	struct fp_ws_switch sw;
	fp_error err;
	if (fp_ws_restore_begin(ws, name, &sw, &err) < 0 || fp_ws_restore_commit(ws, &sw, &err) < 0) {
		fprintf(stderr, "restore %s: %s\n", name, err.msg);
		return -1;
	}
	return 0;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void test_chain(void)
{
	const int N = 1000, SAMPLE = 37;
	fp_error err;
	struct fp_ws *ws;
	sh("mkdir -p %s/d0/sub %s/d1 %s/keep && echo base > %s/d0/sub/b && echo k > %s/keep/k", base,
	   base, base, base, base);
	struct fp_ws_opts o = { .sync = false, .squash_at = 16 };
	CHECKF(fp_ws_create(store, base, &o, &ws, &err) == 0, "create: %s", err.msg);
	if (fp_ws_mount(ws, &err) < 0)
		SKIP("mount: %s", err.msg);
	char **want = calloc(N, sizeof(char *));
	unsigned maxdepth = 0;
	double t0 = now_ms();
	for (int i = 0; i < N; i++) {
		/* Changes of every kind, several crossing many layers. */
		switch (i % 6) {
		case 0: sh("echo %d > %s/f%d", i, base, i % 40); break;
		case 1: sh("rm -f %s/f%d", base, (i * 7) % 40); break;
		case 2: sh("[ -d %s/d0 ] && mv %s/d0 %s/d1/moved%d || mv %s/d1/moved* %s/d0", base, base, base,
			   i, base, base); break;
		case 3: sh("rm -rf %s/keep && mkdir %s/keep && echo %d > %s/keep/k%d", base, base, i, base,
			   i % 3); break;
		case 4: sh("ln -sf f%d %s/l%d && chmod %o %s/keep", i % 40, base, i % 5, 0700 + (i % 8) * 0010,
			   base); break;
		case 5: sh("echo x%d >> %s/d1/log", i, base); break;
		}
		char name[32];
		snprintf(name, sizeof(name), "s%d", i);
		if (i % SAMPLE == 0 || i == N - 1)
			want[i] = manifest();
		if (snap(ws, name) < 0) {
			CHECKF(0, "snapshot %d failed", i);
			break;
		}
		if (fp_ws_depth(ws) > maxdepth)
			maxdepth = fp_ws_depth(ws);
	}
	printf("%d snapshots in %.0f ms (including the shell commands), max depth %u\n", N,
	       now_ms() - t0, maxdepth);
	CHECKF(maxdepth <= 18, "depth %u stays near the squash threshold", maxdepth);
	unsigned *ids, n;
	CHECK(fp_ws_chain(store, "s999", &ids, &n, &err) == 0 && n <= 18);
	free(ids);
	char *last = manifest();
	CHECKF(want[N - 1] && !strcmp(want[N - 1], last), "live view after the chain");
	free(last);
	/* Every sampled snapshot, old (pre-squash layers) and new. */
	int bad = 0;
	for (int i = 0; i < N; i++) {
		if (!want[i])
			continue;
		char name[32];
		snprintf(name, sizeof(name), "s%d", i);
		CHECKF(restore(ws, name) == 0, "restore %s", name);
		char *m = manifest();
		if (!m || strcmp(m, want[i])) {
			bad++;
			if (bad == 1) {
				FILE *f = fopen("/tmp/fp-ovl-want.txt", "w");
				fputs(want[i], f);
				fclose(f);
				f = fopen("/tmp/fp-ovl-got.txt", "w");
				fputs(m ? m : "", f);
				fclose(f);
				fprintf(stderr, "%s differs: diff /tmp/fp-ovl-want.txt /tmp/fp-ovl-got.txt\n", name);
			}
		}
		free(m);
	}
	CHECKF(bad == 0, "%d restored snapshots differ", bad);
	/* gc after dropping most snapshots keeps what the rest need. */
	for (int i = 0; i < N; i++)
		if (i % 100) {
			char name[32];
			snprintf(name, sizeof(name), "s%d", i);
			fp_ws_rm(ws, name, &err);
		}
	struct fp_ws_gc_stats gs;
	CHECK(fp_ws_gc(ws, &gs, &err) == 0);
	printf("gc: removed %u layers, kept %u\n", gs.layers_removed, gs.layers_kept);
	CHECK(gs.layers_removed > 0);
	for (int i = 0; i < N; i += 100) {
		if (!want[i])
			continue;
		char name[32];
		snprintf(name, sizeof(name), "s%d", i);
		CHECKF(restore(ws, name) == 0, "restore %s after gc", name);
		char *m = manifest();
		CHECKF(m && !strcmp(m, want[i]), "%s after gc", name);
		free(m);
	}
	for (int i = 0; i < N; i++)
		free(want[i]);
	free(want);
	umount2(base, MNT_DETACH);
	fp_ws_close(ws);
}

/* A 1 GiB file (sparse: the disk stays free) with one 4 KiB write. */
static void test_big(void)
{
	fp_error err;
	struct fp_ws *ws;
	char s2[320], p[400];
	snprintf(s2, sizeof(s2), "%s2", store);
	snprintf(p, sizeof(p), "%s/big", base);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, 1LL << 30) == 0);
	static char page[4096];
	memset(page, 'a', sizeof(page));
	for (long long off = 0; off < (1LL << 30); off += 64LL << 20)
		CHECK(pwrite(fd, page, sizeof(page), off) == sizeof(page));
	close(fd);
	struct fp_ws_opts o = { .sync = true };
	CHECKF(fp_ws_create(s2, base, &o, &ws, &err) == 0, "create: %s", err.msg);
	CHECK(fp_ws_mount(ws, &err) == 0);
	double t0 = now_ms();
	fd = open(p, O_WRONLY);
	memset(page, 'b', sizeof(page));
	CHECK(fd >= 0 && pwrite(fd, page, sizeof(page), 512LL << 20) == sizeof(page));
	close(fd);
	double t1 = now_ms();
	CHECK(snap(ws, "big1") == 0);
	double t2 = now_ms();
	fd = open(p, O_WRONLY);
	memset(page, 'c', sizeof(page));
	CHECK(fd >= 0 && pwrite(fd, page, sizeof(page), 256LL << 20) == sizeof(page));
	close(fd);
	double t3 = now_ms();
	CHECK(snap(ws, "big2") == 0);
	double t4 = now_ms();
	struct stat st;
	char lp[400];
	long long blocks = 0;
	for (unsigned id = 1; id <= 3; id++) {
		snprintf(lp, sizeof(lp), "%s/layers/%u/big", s2, id);
		if (stat(lp, &st) == 0)
			blocks += st.st_blocks;
	}
	printf("1 GiB sparse file: first write (copy-up) %.1f ms, snapshot %.2f ms, next write "
	       "(copy-up from the frozen layer) %.1f ms, snapshot %.2f ms; layers hold %lld KiB\n",
	       t1 - t0, t2 - t1, t3 - t2, t4 - t3, blocks / 2);
	/* overlayfs copies up in 1 MiB chunks and skips only whole-chunk holes:
	 * 16 data pages cost 16 MiB, never the 1 GiB. */
	CHECKF(blocks / 2 < 64 * 1024, "layers hold %lld KiB for 4 KiB changes", blocks / 2);
	CHECK(restore(ws, "big1") == 0);
	fd = open(p, O_RDONLY);
	char c = 0;
	CHECK(pread(fd, &c, 1, 512LL << 20) == 1 && c == 'b');
	CHECK(pread(fd, &c, 1, 256LL << 20) == 1 && c == 'a');
	close(fd);
	umount2(base, MNT_DETACH);
	fp_ws_close(ws);
}

int main(void)
{
	if (geteuid() != 0)
		SKIP("needs root (overlay mounts in a private mount namespace)");
	fp_error err;
	if (fp_ws_private_ns(&err) < 0)
		SKIP("%s", err.msg);
	snprintf(top, sizeof(top), "/tmp/fp-ovl-chain.%d", (int)getpid());
	snprintf(base, sizeof(base), "%s/dir", top);
	snprintf(store, sizeof(store), "%s/store", top);
	sh("rm -rf %s && mkdir -p %s", top, base);
	test_chain();
	test_big();
	sh("rm -rf %s", top);
	return fp_test_done();
}
