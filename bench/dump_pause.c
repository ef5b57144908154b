/* The dump pause against the number of open fds or of mappings. A child
 * makes N of them and waits; a fresh dumper process (forked, so each run's
 * peak memory is its own) dumps it with --leave-running (fp_dump,
 * --compress none) three times and reports the medians of the pause, of
 * the capture (the part of the pause spent reading the process) and of the
 * whole dump, the pre-copy's short stop before (a process with 64 MiB or
 * more: the stop for its userfaultfd), and the dumper's largest max RSS.
 * Both should grow linearly
 * with N (issue 11).
 *
 *   build/bench/dump_pause fds [N...]   (default 1000 10000; needs root)
 *   build/bench/dump_pause maps [N...]  (default 1000 60000; vm.max_map_count
 *                                        must allow N)
 *   build/bench/fd_pause [N...], build/bench/maps_pause [N...]: the same,
 *   by the program's name (links to dump_pause).
 *
 * fds: the child is bench_many (next to this program): a third separate
 * opens of /dev/null, a third separate opens of one regular file at
 * distinct offsets, a third dups.
 * maps: every other mapping a written anonymous page, the others pages of a
 * file mapped privately (each with its path), plus MAPS_BIG_MIB (default
 * 118) MiB of ordinary heap.
 * DUMP_PAUSE_KEEP=1 (or MAPS_KEEP=1) keeps the images and their dump.log,
 * with the time of each step, in the printed directory. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/paths.h"
#include "dump/dump.h"

#define PG 4096

/* bench_many (next to this program) with n fds; its pid once it is ready. */
static pid_t start_fds_child(const char *self, int n, const char *status)
{
	char exe[4096], num[16];
	snprintf(exe, sizeof(exe), "%s", self);
	char *slash = strrchr(exe, '/');
	snprintf(slash ? slash + 1 : exe, sizeof(exe) - (size_t)(slash ? slash + 1 - exe : 0), "bench_many");
	snprintf(num, sizeof(num), "%d", n);
	unlink(status);
	pid_t pid = fork();
	if (pid == 0) {
		execl(exe, exe, "fds", num, status, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 6000; i++) {
		char line[64] = "";
		FILE *f = fopen(status, "r");
		if (f) {
			if (!fgets(line, sizeof(line), f))
				line[0] = '\0';
			fclose(f);
		}
		if (!strncmp(line, "ready ", 6))
			return pid;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

static pid_t start_maps_child(int n, int big_mib, const char *file, int file_pages)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		int fd = open(file, O_RDONLY);
		if (fd < 0)
			_exit(2);
		for (int i = 0; i < n; i++) {
			void *p;
			if (i % 2 == 0) {
				p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (p != MAP_FAILED)
					memset(p, i & 0xff, 16);
			} else {
				p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, (off_t)(i % file_pages) * PG);
			}
			if (p == MAP_FAILED)
				_exit(3);
		}
		size_t big = (size_t)big_mib << 20;
		char *h = big ? mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : NULL;
		if (h == MAP_FAILED)
			_exit(4);
		for (size_t o = 0; o < big; o += PG)
			h[o] = (char)(o >> 12);
		if (write(ready[1], "r", 1) != 1)
			_exit(5);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	ssize_t r = read(ready[0], &c, 1);
	close(ready[0]);
	return r == 1 ? pid : -1;
}

struct result {
	int ok;
	double pause_ms, capture_ms, total_ms, prestop_ms;
	long maxrss_kib;
	char msg[512];
};

/* One dump in a fresh process, so its peak memory is the dump's alone. */
static void dump_once(pid_t target, const char *dir, struct result *res)
{
	int p[2];
	memset(res, 0, sizeof(*res));
	if (pipe(p) < 0)
		return;
	pid_t d = fork();
	if (d == 0) {
		close(p[0]);
		struct result r;
		memset(&r, 0, sizeof(r));
		struct fp_dump_opts o = { .pid = target, .dir = dir, .leave_running = true, .compress = FP_DUMP_NONE };
		struct fp_dump_stats st;
		fp_error err;
		if (fp_dump(&o, &st, &err) < 0) {
			snprintf(r.msg, sizeof(r.msg), "%s", err.msg);
		} else {
			r.ok = 1;
			r.pause_ms = st.pause_ms;
			r.capture_ms = st.capture_ms;
			r.total_ms = st.total_ms;
			r.prestop_ms = st.prestop_ms;
		}
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		r.maxrss_kib = ru.ru_maxrss;
		_exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], res, sizeof(*res)) != sizeof(*res))
		snprintf(res->msg, sizeof(res->msg), "the dumper process died");
	close(p[0]);
	waitpid(d, NULL, 0);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int first = 1;
	bool maps;
	if (!strcmp(name, "fd_pause") || !strcmp(name, "maps_pause")) {
		maps = !strcmp(name, "maps_pause");
	} else if (argc > 1 && (!strcmp(argv[1], "fds") || !strcmp(argv[1], "maps"))) {
		maps = !strcmp(argv[1], "maps");
		first = 2;
	} else {
		fprintf(stderr, "usage: dump_pause fds|maps [N...]\n");
		return 2;
	}
	int defaults[] = { 1000, maps ? 60000 : 10000 };
	int nn = argc > first ? argc - first : 2;
	int big_mib = getenv("MAPS_BIG_MIB") ? atoi(getenv("MAPS_BIG_MIB")) : 118;
	bool keep = getenv("DUMP_PAUSE_KEEP") || getenv("MAPS_KEEP");
	char work[] = "/tmp/fp-bench-pause.XXXXXX";
	if (!mkdtemp(work))
		return 1;
	char file[600], status[600];
	snprintf(file, sizeof(file), "%s/mapped-file-with-a-path-of-ordinary-length", work);
	snprintf(status, sizeof(status), "%s/status", work);
	int file_pages = 256;
	if (maps) {
		int fd = open(file, O_WRONLY | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)file_pages * PG) < 0)
			return 1;
		close(fd);
	}
	for (int k = 0; k < nn; k++) {
		int n = argc > first ? atoi(argv[k + first]) : defaults[k];
		pid_t pid = maps ? start_maps_child(n, big_mib, file, file_pages) : start_fds_child(argv[0], n, status);
		if (pid < 0) {
			fprintf(stderr, "cannot start a child with %d %s\n", n,
				maps ? "mappings (vm.max_map_count?)" : "fds");
			return 1;
		}
		double pause[3], cap[3], total[3], pre[3];
		long rss = 0;
		int ok = 0;
		for (int r = 0; r < 3; r++) {
			char dir[700];
			snprintf(dir, sizeof(dir), "%s/d%d-%d", work, n, r);
			struct result res;
			dump_once(pid, dir, &res);
			if (!res.ok) {
				fprintf(stderr, "%d %s: dump failed: %s\n", n, maps ? "mappings" : "fds", res.msg);
				break;
			}
			pause[ok] = res.pause_ms, cap[ok] = res.capture_ms, total[ok] = res.total_ms, pre[ok] = res.prestop_ms;
			if (res.maxrss_kib > rss)
				rss = res.maxrss_kib;
			ok++;
			if (!keep)
				fp_rm_rf(dir, NULL);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (!ok)
			continue;
		qsort(pause, (size_t)ok, sizeof(double), cmp_d);
		qsort(cap, (size_t)ok, sizeof(double), cmp_d);
		qsort(total, (size_t)ok, sizeof(double), cmp_d);
		qsort(pre, (size_t)ok, sizeof(double), cmp_d);
		char what[64];
		if (maps)
			snprintf(what, sizeof(what), "%6d mappings + %d MiB", n, big_mib);
		else
			snprintf(what, sizeof(what), "%6d fds", n);
		printf("%s: pause %.1f ms, capture %.1f ms, pre-copy's stop %.1f ms, total %.1f ms (median of %d), dumper max RSS %.1f MiB\n",
		       what, pause[ok / 2], cap[ok / 2], pre[ok / 2], total[ok / 2], ok, rss / 1024.0);
		fflush(stdout);
	}
	if (keep)
		printf("images kept in %s\n", work);
	else
		fp_rm_rf(work, NULL);
	return 0;
}
