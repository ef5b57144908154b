/* Workspace part of a snapshot, against the size of the workspace.
 *
 *   sudo build/bench/overlay_snapshot [DIR]    (default /var/tmp; root)
 *
 * For a 10 MB and a 5 GB workspace (the 5 GB as 50 files of 100 MB made with
 * fallocate: allocated on disk, never written, so building it is quick;
 * overlayfs never reads unchanged files, so their content does not matter)
 * plus 1000 small files, each round writes 10 small files through the overlay,
 * then times the freeze (begin + commit; no fd to re-point), with and without
 * syncfs, and a restore of the previous snapshot. Reports medians, and the
 * disk each snapshot's layer takes. Needs about 5.1 GB free in DIR; removes
 * everything afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "overlay/workspace.h"

#define ROUNDS 31

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return v[n / 2];
}

static int make_base(const char *dir, long long big_bytes, int nbig)
{
	char p[600];
	mkdir(dir, 0755);
	for (int i = 0; i < nbig; i++) {
		snprintf(p, sizeof(p), "%s/big%02d", dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || fallocate(fd, 0, 0, big_bytes) < 0) {
			fprintf(stderr, "fallocate %s: %s\n", p, strerror(errno));
			return -1;
		}
		close(fd);
	}
	for (int d = 0; d < 10; d++) {
		snprintf(p, sizeof(p), "%s/src%d", dir, d);
		mkdir(p, 0755);
		for (int i = 0; i < 100; i++) {
			snprintf(p, sizeof(p), "%s/src%d/file%03d.c", dir, d, i);
			int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, "int x;\n", 7) != 7)
				return -1;
			close(fd);
		}
	}
	return 0;
}

static long long du_bytes(const char *path)
{
	char cmd[700], out[64] = "";
	snprintf(cmd, sizeof(cmd), "du -sB1 %s | cut -f1", path);
	FILE *f = popen(cmd, "r");
	if (f && !fgets(out, sizeof(out), f))
		out[0] = '\0';
	if (f)
		pclose(f);
	return atoll(out);
}

static int run(const char *root, const char *label, long long big_bytes, int nbig)
{
	char base[600], store[600];
	snprintf(base, sizeof(base), "%s/base-%s", root, label);
	snprintf(store, sizeof(store), "%s/store-%s", root, label);
	if (make_base(base, big_bytes, nbig) < 0)
		return -1;
	fp_error err;
	double snap_nosync[ROUNDS], snap_sync[ROUNDS], rest[ROUNDS], begin[ROUNDS];
	long long layer_bytes = 0;
	for (int sync = 0; sync < 2; sync++) {
		struct fp_ws *ws;
		struct fp_ws_opts o = { .sync = sync };
		char cmd[1300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", store);
		if (system(cmd) != 0)
			return -1;
		if (fp_ws_create(store, base, &o, &ws, &err) < 0 || fp_ws_mount(ws, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return -1;
		}
		for (int r = 0; r < ROUNDS; r++) {
			for (int k = 0; k < 10; k++) {
				char p[700];
				snprintf(p, sizeof(p), "%s/src%d/file%03d.c", base, k, r % 100);
				int fd = open(p, O_WRONLY | O_APPEND);
				if (fd < 0 || write(fd, "int y;\n", 7) != 7)
					return -1;
				close(fd);
			}
			char name[32];
			snprintf(name, sizeof(name), "s%d", r);
			struct fp_ws_switch sw;
			double t0 = now_ms();
			if (fp_ws_freeze_begin(ws, &sw, &err) < 0 || fp_ws_freeze_commit(ws, &sw, name, &err) < 0) {
				fprintf(stderr, "%s\n", err.msg);
				return -1;
			}
			double t1 = now_ms();
			(sync ? snap_sync : snap_nosync)[r] = t1 - t0;
			if (!sync)
				begin[r] = sw.begin_ms;
			if (!sync) {
				char lp[700];
				snprintf(lp, sizeof(lp), "%s/layers/%u", store, sw.frozen);
				layer_bytes += du_bytes(lp);
			}
		}
		if (!sync)
			for (int r = 0; r < ROUNDS; r++) {
				char name[32];
				snprintf(name, sizeof(name), "s%d", (r * 7) % ROUNDS);
				struct fp_ws_switch sw;
				double t0 = now_ms();
				if (fp_ws_restore_begin(ws, name, &sw, &err) < 0 ||
				    fp_ws_restore_commit(ws, &sw, &err) < 0) {
					fprintf(stderr, "%s\n", err.msg);
					return -1;
				}
				rest[r] = now_ms() - t0;
			}
		umount2(base, MNT_DETACH);
		fp_ws_close(ws);
	}
	printf("%-6s snapshot (workspace part, 10 files changed): median %.2f ms without syncfs "
	       "(begin %.2f), %.2f ms with; restore %.2f ms; disk per snapshot %lld KiB\n",
	       label, median(snap_nosync, ROUNDS), median(begin, ROUNDS), median(snap_sync, ROUNDS),
	       median(rest, ROUNDS),
	       layer_bytes / ROUNDS / 1024);
	char cmd[1300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", store, base);
	return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : "/var/tmp";
	if (geteuid() != 0) {
		fprintf(stderr, "overlay_snapshot: needs root\n");
		return 77;
	}
	struct statvfs sv;
	if (statvfs(root, &sv) == 0 && (long long)sv.f_bavail * (long long)sv.f_frsize < (6LL << 30)) {
		fprintf(stderr, "overlay_snapshot: less than 6 GB free in %s\n", root);
		return 77;
	}
	fp_error err;
	if (fp_ws_private_ns(&err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/fp-ovl-bench.%d", root, (int)getpid());
	mkdir(dir, 0700);
	int r = run(dir, "10MB", 100 * 1000, 100) < 0 || run(dir, "5GB", 100LL * 1000 * 1000, 50) < 0;
	rmdir(dir);
	return r;
}
