/* Restore into a new pid namespace, for when the image's pids are taken.
 *
 * A forked copy of the restorer becomes pid 1 of a new pid namespace, with
 * its own mount namespace and a /proc of that pid namespace (a restored
 * program that reads /proc/<its pid> must find itself). Inside, every pid is
 * free, so it runs the ordinary exact-pid restore: the process keeps its
 * pids as it sees them, and only the outside sees other numbers. The copy
 * then stays as the namespace's init: it reaps, and when the restored root
 * ends it exits with the same status, which ends the namespace. The
 * outcome of the restore comes back through a pipe. */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore/restore.h"

struct ns_report {
	int rc;
	int exit_code;
	int engine_used;
	pid_t inner_pid;
	bool job_stopped;
	double elapsed_ms;
	char fallback_reason[512];
	char msg[1024];
};

static bool write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* pid 1 of the new namespace. Never returns. */
static __attribute__((noreturn)) void ns_init(const struct fp_restore_opts *o, int wfd)
{
	struct ns_report rep;
	memset(&rep, 0, sizeof(rep));
	fp_error err;
	fp_error_clear(&err);
	/* Our mounts must not leak back; then a /proc for this namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		rep.rc = -1;
		rep.exit_code = FP_EXIT_FAIL;
		snprintf(rep.msg, sizeof(rep.msg), "cannot mount /proc for the new pid namespace: %s", strerror(errno));
		write_all(wfd, &rep, sizeof(rep));
		_exit(1);
	}
	struct fp_restore_opts in = *o;
	in.exact_pids = true;
	in.no_verify = true; /* verified outside, before this process existed */
	in.adopt = true; /* a criu-restored root must become our child too */
	struct fp_restore_result r;
	rep.rc = fp_restore(&in, &r, &err);
	rep.exit_code = err.exit_code;
	rep.engine_used = (int)r.engine_used;
	rep.inner_pid = r.pid;
	rep.job_stopped = r.job_stopped;
	rep.elapsed_ms = r.elapsed_ms;
	snprintf(rep.fallback_reason, sizeof(rep.fallback_reason), "%s", r.fallback_reason);
	snprintf(rep.msg, sizeof(rep.msg), "%s", err.msg);
	write_all(wfd, &rep, sizeof(rep));
	close(wfd);
	if (rep.rc)
		_exit(1);
	/* Whoever reads the restorer's output must see it end when the
	 * restorer does, not when the namespace does. */
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && nul >= 0; fd++)
		dup2(nul, fd);
	syscall(SYS_close_range, 3, ~0U, 0);
	/* The namespace's reaper: its exit status is the restored root's. */
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			_exit(1);
		if (w == r.pid && (WIFEXITED(st) || WIFSIGNALED(st)))
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

/* The outside pid of init's only child: the restored root. */
static pid_t child_of(pid_t init)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
	FILE *f = fopen(path, "re");
	int c = -1;
	if (f) {
		if (fscanf(f, "%d", &c) != 1)
			c = -1;
		fclose(f);
	}
	return c;
}

int rst_pidns_restore(const struct fp_restore_opts *o, struct fp_restore_result *r, int timeout_ms, fp_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return fp_fail(err, errno, "pipe: %s", strerror(errno));
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWPID | CLONE_NEWNS;
	ca.exit_signal = SIGCHLD;
	long init = syscall(SYS_clone3, &ca, sizeof(ca));
	if (init == 0) {
		close(p[0]);
		ns_init(o, p[1]);
	}
	close(p[1]);
	if (init < 0) {
		int e = errno;
		close(p[0]);
		return fp_fail_code(err, e == EPERM ? FP_EXIT_PERM : FP_EXIT_FAIL, e,
				    "cannot create a pid namespace to restore into: %s%s", strerror(e),
				    e == EPERM ? " (needs CAP_SYS_ADMIN: run forkpoint as root)" : "");
	}
	struct ns_report rep;
	memset(&rep, 0, sizeof(rep));
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	int pr;
	do
		pr = poll(&pf, 1, timeout_ms + 5000);
	while (pr < 0 && errno == EINTR);
	ssize_t n = pr > 0 ? read(p[0], &rep, sizeof(rep)) : -1;
	close(p[0]);
	if (n != (ssize_t)sizeof(rep) || rep.rc) {
		kill((pid_t)init, SIGKILL); /* takes everything in the namespace with it */
		waitpid((pid_t)init, NULL, 0);
		if (n != (ssize_t)sizeof(rep))
			return fp_fail_code(err, pr == 0 ? FP_EXIT_TIMEOUT : FP_EXIT_FAIL, EIO,
					    "the restore in a new pid namespace %s", pr == 0 ? "timed out" : "died");
		fp_fail_code(err, rep.exit_code ? rep.exit_code : FP_EXIT_FAIL, EIO, "%s", rep.msg);
		return fp_wrap(err, "restoring in a new pid namespace");
	}
	r->pid = child_of((pid_t)init);
	r->ns_init = (pid_t)init;
	r->ns_pid = rep.inner_pid;
	r->job_stopped = rep.job_stopped; /* init, our child, keeps its group from orphaning */
	r->engine_used = (enum fp_restore_engine)rep.engine_used;
	r->elapsed_ms = rep.elapsed_ms;
	snprintf(r->fallback_reason, sizeof(r->fallback_reason), "%s", rep.fallback_reason);
	if (r->pid <= 0) {
		kill((pid_t)init, SIGKILL);
		waitpid((pid_t)init, NULL, 0);
		return fp_fail(err, ESRCH, "the process restored in a new pid namespace is gone already");
	}
	return 0;
}
