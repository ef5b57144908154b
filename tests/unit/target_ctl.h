/* Driving the ct_* checkpoint targets (tests/targets/README.md) from a test:
 * start one, wait for "ready", trigger verifications, read its result, stop
 * it, and wait for a pid to be gone. Every wait has a deadline; a target that
 * dies is reported with the tail of its log.
 *
 *   struct tc_target t;
 *   const char *args[] = { "--setsid", NULL };
 *   if (tc_start(&t, "build/tests/targets/ct_idle", args, 0) < 0 ||
 *       tc_wait_ready(&t, 10000) < 0) ... t.err ...
 *   CHECK(tc_verify(&t, 10000) == 0);   // 1: "verify n FAIL ..." in t.line
 *   ... checkpoint, restore (possibly under another pid: tc_adopt) ...
 *   CHECK(tc_stop(&t, 10000) == 0);
 *   tc_cleanup(&t);
 *
 * Lines are matched by the pid they name, so an original and its restored
 * copies may share one status file. */
#ifndef TARGET_CTL_H
#define TARGET_CTL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TC_SETSID 1u /* the child calls setsid() before exec */

struct tc_target {
	pid_t pid;        /* current pid of the target */
	bool child;       /* pid is our child: waitpid works */
	bool reaped;      /* child exited and was reaped; status in wstatus */
	int wstatus;
	char dir[PATH_MAX / 4];    /* private temporary directory */
	char status[PATH_MAX / 2]; /* dir/status: the status file */
	char log[PATH_MAX / 2];    /* dir/log: the target's stdout and stderr */
	unsigned last_n;           /* n of the last verify line matched */
	char line[2048];           /* the last line matched */
	char err[4096];            /* why the last call failed */
};

static inline long long tc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Short pauses between polls of a file or /proc: waiting for a condition. */
static inline void tc_pause(int *delay_us)
{
	struct timespec ts = { 0, (long)*delay_us * 1000 };
	nanosleep(&ts, NULL);
	if (*delay_us < 20000)
		*delay_us *= 2;
}

/* Up to len-1 bytes from the end of path, starting at a line. */
static inline void tc_tail(const char *path, char *buf, size_t len)
{
	buf[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t size = lseek(fd, 0, SEEK_END), from = size > (off_t)len - 1 ? size - (off_t)len + 1 : 0;
	ssize_t n = pread(fd, buf, len - 1, from);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *nl = from ? strchr(buf, '\n') : NULL;
	if (nl)
		memmove(buf, nl + 1, strlen(nl + 1) + 1);
}

__attribute__((format(printf, 2, 3))) static inline int tc_fail(struct tc_target *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	char log[1024], status[1024];
	tc_tail(t->log, log, sizeof(log));
	tc_tail(t->status, status, sizeof(status));
	if (n >= 0 && (size_t)n < sizeof(t->err))
		snprintf(t->err + n, sizeof(t->err) - (size_t)n, "\n--- status file tail:\n%s--- log tail:\n%s", status,
			 log);
	return -1;
}

/* True while pid exists and is not a zombie. Reaps it if it is our child. */
static inline bool tc_alive(struct tc_target *t)
{
	if (t->pid <= 0 || t->reaped)
		return false;
	if (t->child) {
		pid_t r = waitpid(t->pid, &t->wstatus, WNOHANG);
		if (r == t->pid) {
			t->reaped = true;
			return false;
		}
		if (r == 0)
			return true;
		/* ECHILD: no longer ours (a restore replaced it); fall through. */
	}
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Waits until /proc/PID is gone (a killed process may be reaped late by
 * whoever its parent is). Reaps pid first if it is our child. 0 when gone. */
static inline int tc_wait_gone(pid_t pid, int timeout_ms)
{
	long long deadline = tc_now_ms() + timeout_ms;
	int delay = 500;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	for (;;) {
		int st;
		waitpid(pid, &st, WNOHANG);
		if (access(path, F_OK) < 0 && errno == ENOENT)
			return 0;
		if (tc_now_ms() > deadline)
			return -1;
		tc_pause(&delay);
	}
}

/* Starts argv[0] (a path) with stdin on /dev/null, stdout and stderr on
 * t->log, and every other fd closed. tc_start is the usual entry; this one
 * serves programs that are not ct_* targets. */
static inline int tc_spawn(struct tc_target *t, char *const argv[], unsigned flags)
{
	pid_t pid = fork();
	if (pid < 0)
		return tc_fail(t, "fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		const int reset[] = { SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE, SIGHUP, SIGINT };
		for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
			signal(reset[i], SIG_DFL);
		int in = open("/dev/null", O_RDONLY), out = open(t->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		syscall(SYS_close_range, 3U, ~0U, 0U);
		if ((flags & TC_SETSID) && setsid() < 0) {
			fprintf(stderr, "setsid: %s\n", strerror(errno));
			_exit(126);
		}
		execv(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	t->pid = pid;
	t->child = true;
	return 0;
}

/* Makes a temporary directory for the target's files. */
static inline int tc_init(struct tc_target *t)
{
	memset(t, 0, sizeof(*t));
	const char *tmp = getenv("TMPDIR");
	snprintf(t->dir, sizeof(t->dir), "%s/fp-target.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(t->dir))
		return tc_fail(t, "mkdtemp %s: %s", t->dir, strerror(errno));
	snprintf(t->status, sizeof(t->status), "%s/status", t->dir);
	snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
	return 0;
}

/* Initialises t and starts prog STATUS args... (args ends with NULL; may be
 * NULL). */
static inline int tc_start(struct tc_target *t, const char *prog, const char *const args[], unsigned flags)
{
	if (tc_init(t) < 0)
		return -1;
	char *argv[64];
	int n = 0;
	argv[n++] = (char *)prog;
	argv[n++] = t->status;
	for (int i = 0; args && args[i] && n < 63; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return tc_spawn(t, argv, flags);
}

/* The target is now pid (after a restore); child: whether it is our child. */
static inline void tc_adopt(struct tc_target *t, pid_t pid, bool child)
{
	t->pid = pid;
	t->child = child;
	t->reaped = false;
}

static inline off_t tc_status_size(const struct tc_target *t)
{
	struct stat st;
	return stat(t->status, &st) < 0 ? 0 : st.st_size;
}

/* Finds, in the status file from offset *from on, the first complete line
 * that starts with prefix and whose pid (the number after "ready", or
 * "pid=N" in verify lines) is t->pid; copies it to t->line. 1 found, 0 not
 * yet. *from advances past the lines read. */
static inline int tc_scan(struct tc_target *t, off_t *from, const char *prefix)
{
	FILE *f = fopen(t->status, "re");
	if (!f)
		return 0;
	if (fseeko(f, *from, SEEK_SET) < 0) {
		fclose(f);
		return 0;
	}
	char line[sizeof(t->line)];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		if (!len || line[len - 1] != '\n')
			break; /* incomplete: read it again next time */
		*from += (off_t)len;
		if (strncmp(line, prefix, strlen(prefix)))
			continue;
		int pid = -1;
		const char *p = strstr(line, " pid=");
		if (!strncmp(line, "ready ", 6))
			pid = atoi(line + 6);
		else if (p)
			pid = atoi(p + 5);
		else
			pid = t->pid; /* "result" and "error" lines carry no pid */
		if (pid != t->pid)
			continue;
		line[len - 1] = 0;
		snprintf(t->line, sizeof(t->line), "%s", line);
		found = 1;
	}
	fclose(f);
	return found;
}

/* Waits for a line starting with prefix written at or after offset from.
 * 0 found (in t->line), -1 timeout or the target died or wrote "error". */
static inline int tc_wait_line(struct tc_target *t, off_t from, const char *prefix, int timeout_ms)
{
	long long deadline = tc_now_ms() + timeout_ms;
	int delay = 200;
	for (;;) {
		bool alive = tc_alive(t);
		off_t err_from = from;
		if (tc_scan(t, &from, prefix))
			return 0;
		if (tc_scan(t, &err_from, "error "))
			return tc_fail(t, "target %d failed: %s", (int)t->pid, t->line);
		if (!alive) {
			if (t->reaped)
				return tc_fail(t, "target %d exited (status %#x) before writing \"%s...\"", (int)t->pid,
					       t->wstatus, prefix);
			return tc_fail(t, "target %d is gone before writing \"%s...\"", (int)t->pid, prefix);
		}
		if (tc_now_ms() > deadline)
			return tc_fail(t, "no \"%s...\" line from target %d within %d ms", prefix, (int)t->pid,
				       timeout_ms);
		tc_pause(&delay);
	}
}

static inline int tc_wait_ready(struct tc_target *t, int timeout_ms)
{
	return tc_wait_line(t, 0, "ready ", timeout_ms);
}

/* Reads "info KEY VALUE" from the status file: VALUE (the rest of the line)
 * into val. 0 found, -1 not. */
static inline int tc_info(struct tc_target *t, const char *key, char *val, size_t len)
{
	FILE *f = fopen(t->status, "re");
	if (!f)
		return -1;
	char line[1024];
	size_t klen = strlen(key);
	int rc = -1;
	while (rc < 0 && fgets(line, sizeof(line), f))
		if (!strncmp(line, "info ", 5) && !strncmp(line + 5, key, klen) && line[5 + klen] == ' ') {
			line[strcspn(line, "\n")] = 0;
			snprintf(val, len, "%s", line + 6 + klen);
			rc = 0;
		}
	fclose(f);
	return rc;
}

/* Parses t->line "verify N ok|FAIL ...": 0 ok, 1 FAIL, -1 malformed. */
static inline int tc_parse_verify(struct tc_target *t)
{
	unsigned n;
	char word[8];
	if (sscanf(t->line, "verify %u %7s", &n, word) != 2)
		return tc_fail(t, "malformed line: %s", t->line);
	t->last_n = n;
	return strcmp(word, "ok") ? 1 : 0;
}

/* Sends SIGUSR2 and waits for the next verify line of t->pid. 0 "ok",
 * 1 "FAIL" (the line is in t->line), -1 no answer (t->err). */
static inline int tc_verify(struct tc_target *t, int timeout_ms)
{
	off_t from = tc_status_size(t);
	if (kill(t->pid, SIGUSR2) < 0)
		return tc_fail(t, "cannot signal target %d: %s", (int)t->pid, strerror(errno));
	if (tc_wait_line(t, from, "verify ", timeout_ms) < 0)
		return -1;
	return tc_parse_verify(t);
}

/* Waits for ct_compute's "result HEX" line; the hex digits go to hex. */
static inline int tc_result(struct tc_target *t, int timeout_ms, char *hex, size_t len)
{
	if (tc_wait_line(t, 0, "result ", timeout_ms) < 0)
		return -1;
	snprintf(hex, len, "%s", t->line + 7);
	return 0;
}

/* Waits for the target to exit by itself; for our child, 0 when it exited 0. */
static inline int tc_wait_exit(struct tc_target *t, int timeout_ms)
{
	long long deadline = tc_now_ms() + timeout_ms;
	int delay = 200;
	while (tc_alive(t)) {
		if (tc_now_ms() > deadline)
			return tc_fail(t, "target %d still running after %d ms", (int)t->pid, timeout_ms);
		tc_pause(&delay);
	}
	if (t->reaped && !(WIFEXITED(t->wstatus) && WEXITSTATUS(t->wstatus) == 0))
		return tc_fail(t, "target %d ended with status %#x", (int)t->pid, t->wstatus);
	return 0;
}

/* SIGTERM: the target verifies a last time and exits. 0 when that final
 * verification said ok and (for our child) the exit status is 0, 1 when it
 * said FAIL (t->line), -1 otherwise; SIGKILL if it did not exit in time. The
 * pid is gone (from /proc, too) when this returns 0 or 1. */
static inline int tc_stop(struct tc_target *t, int timeout_ms)
{
	off_t from = tc_status_size(t);
	if (!tc_alive(t))
		return tc_fail(t, "target %d is not running", (int)t->pid);
	kill(t->pid, SIGTERM);
	int rc = tc_wait_exit(t, timeout_ms);
	if (tc_alive(t)) {
		kill(t->pid, SIGKILL);
		tc_wait_gone(t->pid, timeout_ms);
		return -1;
	}
	if (tc_wait_gone(t->pid, timeout_ms) < 0)
		return tc_fail(t, "target %d still in /proc after %d ms", (int)t->pid, timeout_ms);
	char saved[sizeof(t->err)];
	snprintf(saved, sizeof(saved), "%s", t->err);
	if (!tc_scan(t, &from, "verify "))
		return tc_fail(t, "target %d exited without a final verify line", (int)t->pid);
	int v = tc_parse_verify(t);
	if (v != 0)
		return v;
	if (rc < 0) {
		snprintf(t->err, sizeof(t->err), "%s", saved);
		return -1;
	}
	return 0;
}

static inline int tc_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	remove(path);
	return 0;
}

/* Kills the target if it still runs and removes its directory (kept when
 * FP_KEEP_TMP is set, for debugging). */
static inline void tc_cleanup(struct tc_target *t)
{
	if (tc_alive(t)) {
		kill(t->pid, SIGKILL);
		tc_wait_gone(t->pid, 10000);
	}
	if (t->dir[0] && !getenv("FP_KEEP_TMP"))
		nftw(t->dir, tc_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	t->dir[0] = 0;
}

#endif
