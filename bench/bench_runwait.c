/* bench_runwait: runs one command and reports its wall time and peak memory.
 *
 *   bench_runwait OUTFILE TIMEOUT_S COMMAND [ARGS...]
 *
 * The command gets stdin on /dev/null and stdout+stderr in OUTFILE. On exit
 * it prints one line on its own stdout:
 *   rc=N wall_ns=N maxrss_kb=N timed_out=0|1
 * rc is the exit status, or -SIGNAL. wall_ns runs from just before fork to
 * wait4's return. maxrss_kb is wait4's ru_maxrss: the peak RSS of the
 * command and of any child it waited for. A process's peak includes what it
 * had before exec, so the measuring parent must be small: that is why this
 * is a C program and not the Python driver (whose 14 MiB would be the floor).
 * At the deadline the command is killed with SIGKILL (timed_out=1).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_runwait OUTFILE TIMEOUT_S COMMAND [ARGS...]\n");
		return 2;
	}
	int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (out < 0 || null < 0) {
		fprintf(stderr, "bench_runwait: cannot open %s or /dev/null: %s\n", argv[1], strerror(errno));
		return 2;
	}
	int timeout_ms = atoi(argv[2]) * 1000;

	long long t0 = now_ns();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench_runwait: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(127);
		execv(argv[3], argv + 3);
		dprintf(2, "bench_runwait: cannot run %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	/* A pidfd turns "exit or deadline" into one poll. */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int timed_out = 0;
	if (pidfd >= 0) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r;
		while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		if (r == 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
		}
	}
	int status;
	struct rusage ru;
	pid_t w;
	while ((w = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
		;
	long long t1 = now_ns();
	if (w < 0) {
		fprintf(stderr, "bench_runwait: wait4: %s\n", strerror(errno));
		return 2;
	}
	int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	printf("rc=%d wall_ns=%lld maxrss_kb=%ld timed_out=%d\n", rc, t1 - t0, ru.ru_maxrss, timed_out);
	return 0;
}
