/* The dump pause against the number of open fds: a child (bench_many fds)
 * opens N fds (a third separate opens of /dev/null, a third separate opens
 * of one regular file at distinct offsets, a third dups) and waits; it is
 * dumped with --leave-running (fp_dump) and the pause reported. The pause
 * should grow linearly with N.
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

/* bench_many (next to this program) with n fds; its pid once it is ready. */
static pid_t start_child(const char *self, int n, const char *status)
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
		int ready = !strncmp(line, "ready ", 6);
		if (ready)
			return pid;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
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
	char status[600];
	snprintf(status, sizeof(status), "%s/status", work);
	for (int k = 0; k < nn; k++) {
		int n = argc > 1 ? atoi(argv[k + 1]) : defaults[k];
		pid_t pid = start_child(argv[0], n, status);
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
