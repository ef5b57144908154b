/* The dump pause and the dumper's peak memory against the number of
 * mappings: a child makes N mappings that the kernel cannot merge (every
 * other one a written anonymous page, the others pages of a file mapped
 * privately, each with its path) plus BIG MiB of ordinary heap, and waits;
 * a fresh dumper process (forked, so each run's peak is its own) dumps it
 * with --leave-running (fp_dump, --compress none) and reports the pause and
 * its own max RSS (getrusage). The dumper's memory should grow by a small
 * record per mapping, not by a path buffer per mapping.
 *
 *   build/bench/maps_pause [N...]   (default: 1000 60000; needs root;
 *                                     vm.max_map_count must allow N)
 *   MAPS_BIG_MIB=118 (default) the heap besides the mappings
 *   MAPS_KEEP=1 keeps the images (and their dump.log, with the time of
 *   each step) in the printed directory
 *
 * Prints one line per N: pause_ms, total_ms (median of 3), dumper max RSS
 * (the largest of the 3). */
#include <errno.h>
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

static pid_t start_child(int n, int big_mib, const char *file, int file_pages)
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
	double pause_ms, total_ms;
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
			r.total_ms = st.total_ms;
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
	int defaults[] = { 1000, 60000 };
	int nn = argc > 1 ? argc - 1 : 2;
	int big_mib = getenv("MAPS_BIG_MIB") ? atoi(getenv("MAPS_BIG_MIB")) : 118;
	char work[] = "/tmp/fp-bench-maps.XXXXXX";
	if (!mkdtemp(work))
		return 1;
	char file[600];
	snprintf(file, sizeof(file), "%s/mapped-file-with-a-path-of-ordinary-length", work);
	int file_pages = 256;
	int fd = open(file, O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)file_pages * PG) < 0)
		return 1;
	close(fd);
	for (int k = 0; k < nn; k++) {
		int n = argc > 1 ? atoi(argv[k + 1]) : defaults[k];
		pid_t pid = start_child(n, big_mib, file, file_pages);
		if (pid < 0) {
			fprintf(stderr, "cannot start a child with %d mappings (vm.max_map_count?)\n", n);
			return 1;
		}
		double pause[3], total[3];
		long rss = 0;
		int ok = 0;
		for (int r = 0; r < 3; r++) {
			char dir[700];
			snprintf(dir, sizeof(dir), "%s/d%d-%d", work, n, r);
			struct result res;
			dump_once(pid, dir, &res);
			if (!res.ok) {
				fprintf(stderr, "%d mappings: dump failed: %s\n", n, res.msg);
				break;
			}
			pause[ok] = res.pause_ms, total[ok] = res.total_ms;
			if (res.maxrss_kib > rss)
				rss = res.maxrss_kib;
			ok++;
			if (!getenv("MAPS_KEEP"))
				fp_rm_rf(dir, NULL);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (!ok)
			continue;
		qsort(pause, (size_t)ok, sizeof(double), cmp_d);
		qsort(total, (size_t)ok, sizeof(double), cmp_d);
		printf("%6d mappings + %d MiB: pause %.1f ms, total %.1f ms (median of %d), dumper max RSS %.1f MiB\n", n,
		       big_mib, pause[ok / 2], total[ok / 2], ok, rss / 1024.0);
		fflush(stdout);
	}
	if (getenv("MAPS_KEEP"))
		printf("images kept in %s\n", work);
	else
		fp_rm_rf(work, NULL);
	return 0;
}
