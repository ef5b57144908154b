/* Shared by the ptrace/inject/stack tests: start a target from
 * build/tests/targets with pipes on its stdin and stdout, read its lines with
 * a deadline, and wait for its exit with a deadline. */
#ifndef TEST_PTRACE_UTIL_H
#define TEST_PTRACE_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"

typedef struct pt_child {
	pid_t pid;
	int to;   /* its stdin */
	int from; /* its stdout */
} pt_child;

static inline double pt_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline int pt_spawn(pt_child *c, const char *target, const char *arg)
{
	char path[512], rel[128];
	snprintf(rel, sizeof(rel), "tests/targets/%s", target);
	fp_test_build_path(path, sizeof(path), rel);
	if (access(path, X_OK))
		SKIP("target %s not built (make %s)", path, path);
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		char *argv[] = { path, (char *)arg, NULL };
		execv(path, argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->pid = pid;
	c->to = in[1];
	c->from = out[0];
	return 0;
}

/* One line (without '\n') within timeout_ms; -1 on timeout or EOF. */
static inline int pt_readline(pt_child *c, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	double end = pt_now_us() + timeout_ms * 1000.0;
	while (n + 1 < len) {
		int left = (int)((end - pt_now_us()) / 1000);
		struct pollfd p = { c->from, POLLIN, 0 };
		if (left < 0 || poll(&p, 1, left) <= 0)
			break;
		char ch;
		ssize_t r = read(c->from, &ch, 1);
		if (r <= 0)
			break;
		if (ch == '\n') {
			buf[n] = '\0';
			return (int)n;
		}
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return -1;
}

static inline int pt_send(pt_child *c, const char *s)
{
	size_t len = strlen(s);
	return write(c->to, s, len) == (ssize_t)len ? 0 : -1;
}

/* Waits for the child's exit; *status is its wait status. -1 on timeout. */
static inline int pt_wait_exit(pt_child *c, int timeout_ms, int *status)
{
	int pfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (pfd >= 0) {
		struct pollfd p = { pfd, POLLIN, 0 };
		int r = poll(&p, 1, timeout_ms);
		close(pfd);
		if (r <= 0)
			return -1;
	}
	return waitpid(c->pid, status, 0) == c->pid ? 0 : -1;
}

static inline void pt_kill(pt_child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
	if (c->to >= 0)
		close(c->to);
	if (c->from >= 0)
		close(c->from);
	c->to = c->from = -1;
}

/* Closes stdin (EOF) and expects a clean exit 0. */
static inline int pt_finish(pt_child *c, int timeout_ms)
{
	int st = -1;
	close(c->to);
	c->to = -1;
	if (pt_wait_exit(c, timeout_ms, &st)) {
		pt_kill(c);
		return -1;
	}
	c->pid = 0;
	close(c->from);
	c->from = -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

#endif
