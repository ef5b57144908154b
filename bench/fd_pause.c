/* The dump pause against the number of open fds: a child opens N fds (a
 * third separate opens of /dev/null, a third separate opens of one regular
 * file at distinct offsets, a third dups) and waits; it is dumped with
 * --leave-running (fp_dump) and the pause reported. The pause should grow
 * linearly with N.
 *
 *   build/bench/fd_pause [N...]      (default: 1000 10000; needs root)
 *
 * Prints one line per N: pause_ms, capture_ms, total_ms (median of 3). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/paths.h"
#include "dump/dump.h"

static pid_t start_child(int n, const char *file)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		struct rlimit rl = { (rlim_t)n + 64, (rlim_t)n + 64 };
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(2);
		int first = -1;
		for (int i = 0; i < n; i++) {
			int fd;
			if (i % 3 == 0)
				fd = open("/dev/null", O_RDWR);
			else if (i % 3 == 1) {
				fd = open(file, O_RDONLY);
				if (fd >= 0)
					lseek(fd, i, SEEK_SET);
			} else
				fd = dup(first);
			if (fd < 0)
				_exit(3);
			if (first < 0)
				first = fd;
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	ssize_t r = read(ready[0], &c, 1);
	close(ready[0]);
	return r == 1 ? pid : -1;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int defaults[] = { 1000, 10000 };
	int nn = argc > 1 ? argc - 1 : 2;
	char work[] = "/tmp/fp-bench-fds.XXXXXX";
	if (!mkdtemp(work))
		return 1;
	char file[600];
	snprintf(file, sizeof(file), "%s/data", work);
	int fd = open(file, O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		return 1;
	close(fd);
	for (int k = 0; k < nn; k++) {
		int n = argc > 1 ? atoi(argv[k + 1]) : defaults[k];
		pid_t pid = start_child(n, file);
		if (pid < 0) {
			fprintf(stderr, "cannot start a child with %d fds\n", n);
			return 1;
		}
		double pause[3], cap[3], total[3];
		int ok = 0;
		for (int r = 0; r < 3; r++) {
			char dir[700];
			snprintf(dir, sizeof(dir), "%s/d%d-%d", work, n, r);
			struct fp_dump_opts o = { .pid = pid, .dir = dir, .leave_running = true, .compress = FP_DUMP_NONE };
			struct fp_dump_stats st;
			fp_error err;
			if (fp_dump(&o, &st, &err) < 0) {
				fprintf(stderr, "%d fds: dump failed: %s\n", n, err.msg);
				break;
			}
			pause[ok] = st.pause_ms, cap[ok] = st.capture_ms, total[ok] = st.total_ms;
			ok++;
			fp_rm_rf(dir, NULL);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (!ok)
			continue;
		qsort(pause, (size_t)ok, sizeof(double), cmp_d);
		qsort(cap, (size_t)ok, sizeof(double), cmp_d);
		qsort(total, (size_t)ok, sizeof(double), cmp_d);
		printf("%6d fds: pause %.1f ms, capture %.1f ms, total %.1f ms (median of %d)\n", n, pause[ok / 2],
		       cap[ok / 2], total[ok / 2], ok);
		fflush(stdout);
	}
	fp_rm_rf(work, NULL);
	return 0;
}
