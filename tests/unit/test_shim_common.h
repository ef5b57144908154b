/* Shared by the test_shim_* programs: start tests/targets/shim_exercise under
 * the shim with pipes for its commands and answers, talk to it with a
 * deadline on every read, and compare its table with /proc. */
#ifndef FP_TEST_SHIM_COMMON_H
#define FP_TEST_SHIM_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fp_test.h"
#include "dump/shim_check.h"
#include "dump/shim_reader.h"

#define TGT_TIMEOUT_MS 20000

struct tgt {
	pid_t pid;     /* the process we started (and must reap) */
	int cmd;       /* write end of its command pipe */
	int out;       /* read end of its stdout */
	int pidfd;
	char buf[4096]; /* unread answer bytes */
	size_t have;
	char dir[256]; /* its working directory */
};

static inline uint64_t tgt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline const char *shim_path(void)
{
	static char p[4096];
	char rel[4096];
	fp_test_build_path(rel, sizeof(rel), "lib/libforkpoint-preload.so");
	if (!realpath(rel, p))
		SKIP("the shim is not built (%s)", rel);
	return p;
}

static inline const char *exerciser_path(void)
{
	static char p[4096];
	char rel[4096];
	fp_test_build_path(rel, sizeof(rel), "tests/targets/shim_exercise");
	if (!realpath(rel, p))
		SKIP("the target is not built (%s)", rel);
	return p;
}

/* Starts shim_exercise with LD_PRELOAD in a fresh temporary directory. */
static inline int tgt_start(struct tgt *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/fp-shim-test.XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	const char *shim = shim_path(), *exe = exerciser_path();
	char e1[4200], e2[4200];
	snprintf(e1, sizeof(e1), "LD_PRELOAD=%s", shim);
	snprintf(e2, sizeof(e2), "FORKPOINT_SHIM=%s", shim);
	char *envp[] = {e1, e2, "FORKPOINT_SESSION=shim-test", "PATH=/usr/bin:/bin", NULL};
	char *argv[] = {(char *)exe, "--dir", t->dir, NULL};
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execve(exe, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	t->pid = pid;
	t->cmd = in[1];
	t->out = out[0];
	t->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

/* Next answer line (without newline), waiting at most timeout_ms. */
static inline int tgt_line(struct tgt *t, char *line, size_t len, int timeout_ms)
{
	uint64_t deadline = tgt_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		char *nl = memchr(t->buf, '\n', t->have);
		if (nl) {
			size_t n = (size_t)(nl - t->buf);
			snprintf(line, len, "%.*s", (int)n, t->buf);
			memmove(t->buf, nl + 1, t->have - n - 1);
			t->have -= n + 1;
			return 0;
		}
		uint64_t now = tgt_now_ms();
		if (now >= deadline) {
			fprintf(stderr, "timed out waiting for the target %d to answer\n", (int)t->pid);
			return -1;
		}
		struct pollfd pf = {t->out, POLLIN, 0};
		int r = poll(&pf, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(t->out, t->buf + t->have, sizeof(t->buf) - t->have - 1);
		if (n <= 0) {
			fprintf(stderr, "the target %d closed its output\n", (int)t->pid);
			return -1;
		}
		t->have += (size_t)n;
	}
}

static inline int tgt_send(struct tgt *t, const char *cmd)
{
	size_t n = strlen(cmd);
	char buf[512];
	snprintf(buf, sizeof(buf), "%s\n", cmd);
	return write(t->cmd, buf, n + 1) == (ssize_t)(n + 1) ? 0 : -1;
}

/* Sends cmd and expects an answer starting with "ok" (copied to reply). */
static inline int tgt_cmd(struct tgt *t, const char *cmd, char *reply, size_t len)
{
	char line[512];
	if (tgt_send(t, cmd) < 0 || tgt_line(t, line, sizeof(line), TGT_TIMEOUT_MS) < 0)
		return -1;
	if (reply)
		snprintf(reply, len, "%s", line);
	if (strncmp(line, "ok", 2)) {
		fprintf(stderr, "target answered \"%s\" to \"%s\"\n", line, cmd);
		return -1;
	}
	return 0;
}

/* Waits for the process to end (pidfd, with a deadline), kills it if needed. */
static inline int tgt_finish(struct tgt *t, bool send_exit)
{
	int status = -1;
	if (t->pid <= 0)
		return -1;
	if (send_exit)
		tgt_send(t, "exit");
	close(t->cmd);
	struct pollfd pf = {t->pidfd, POLLIN, 0};
	if (t->pidfd < 0 || poll(&pf, 1, TGT_TIMEOUT_MS) <= 0) {
		fprintf(stderr, "target %d did not exit in time: killing it\n", (int)t->pid);
		kill(t->pid, SIGKILL);
	}
	waitpid(t->pid, &status, 0);
	close(t->out);
	if (t->pidfd >= 0)
		close(t->pidfd);
	t->pid = 0;
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Reads the table of pid (waiting for a starting shim) into *c. */
static inline int read_table(pid_t pid, struct fp_shim_copy *c)
{
	fp_error err;
	uint64_t deadline = tgt_now_ms() + 5000;
	for (;;) {
		int r = fp_shim_read(pid, NULL, c, &err);
		if (r < 0) {
			fprintf(stderr, "reading the table of %d: %s\n", (int)pid, err.msg);
			return -1;
		}
		if (r == 1)
			return 0;
		if (c->state == FP_SHIM_ABSENT) {
			fprintf(stderr, "process %d is not under the shim\n", (int)pid);
			return -1;
		}
		if (tgt_now_ms() > deadline) {
			fprintf(stderr, "the shim of %d never finished starting\n", (int)pid);
			return -1;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

/* Table vs /proc for pid: returns the number of disagreements (printed),
 * -1 if either could not be read. *kinds (may be NULL) gets a bit per
 * enum fp_shim_dis_kind seen. */
static inline int shim_disagreements_kinds(pid_t pid, const char *label, unsigned *kinds)
{
	struct fp_shim_copy c;
	if (read_table(pid, &c) < 0)
		return -1;
	struct fp_shim_report r;
	fp_error err;
	if (fp_shim_check(pid, c.t, &r, &err) < 0) {
		fprintf(stderr, "%s: %s\n", label, err.msg);
		fp_shim_copy_free(&c);
		return -1;
	}
	if (kinds)
		*kinds = 0;
	for (size_t i = 0; i < r.n; i++) {
		fprintf(stderr, "%s: [%s] %s\n", label, fp_shim_dis_kind_name(r.v[i].kind),
			r.v[i].msg);
		if (kinds)
			*kinds |= 1u << r.v[i].kind;
	}
	if (getenv("FP_SHIM_TEST_VERBOSE"))
		fprintf(stderr, "%s: pid %d, %zu fds, %zu maps, %zu threads compared; table: %u fds "
				"(hwm), %u maps, %u threads, %llu calls, %llu resyncs; shim: %zu "
				"maps, %zu fds\n",
			label, (int)pid, r.fds, r.maps, r.threads, c.t->fd_hwm, c.t->map_count,
			c.t->thread_count, (unsigned long long)c.t->calls,
			(unsigned long long)c.t->resyncs, r.n_shim_maps, r.n_shim_fds);
	int n = (int)r.n;
	if (r.fds == 0 || r.maps == 0 || r.threads == 0) {
		fprintf(stderr, "%s: compared nothing?\n", label);
		n++;
	}
	fp_shim_report_free(&r);
	fp_shim_copy_free(&c);
	return n;
}

static inline int shim_disagreements(pid_t pid, const char *label)
{
	return shim_disagreements_kinds(pid, label, NULL);
}

#endif
