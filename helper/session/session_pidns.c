/* fp_session_pidns_restore: see session_pidns.h.
 *
 * Why. A session's full restore gives the snapshot's processes their pids
 * back, and the live processes hold those same pids, so the old tree is
 * killed before the new one is made (session_full_restore.c). In the host's
 * pid namespace a freed pid can be taken by any process of the machine
 * before the restore asks for it, and then the snapshot's restore and the
 * roll-back to the saved state (which needs the old pids) both fail. In a
 * new pid namespace every pid but 1 is free by construction: a restore
 * there cannot meet a taken pid. So when the image's pids cannot all be
 * had here, the session moves: a copy of the helper (fork with
 * CLONE_NEWPID | CLONE_NEWNS) becomes pid 1 of a new namespace, mounts a
 * /proc of it, restores the image as its child with the image's pids, and
 * serves the session from then on, as a branch's helper does
 * (session_branch.c). Snapshots taken there read that /proc, so they
 * record the pids the processes see, and restore inside it again, where
 * no outside process allocates pids at all.
 *
 * The old helper learns the outcome through a pipe. On failure it carries
 * on (nothing of the attempt is left: the new namespace dies with its pid
 * 1). On success it lets go of everything (fp_session_pidns_relay). */
#include "session/session_pidns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hygiene.h"
#include "paths.h"
#include "session/session_store.h"

#define CAP_SYS_ADMIN_BIT 21

bool fp_session_in_own_pidns(void)
{
	return getpid() == 1;
}

bool fp_session_pidns_allowed(void)
{
	char buf[4096];
	if (fp_read_file("/proc/self/status", buf, sizeof(buf), NULL) < 0)
		return false;
	const char *c = strstr(buf, "CapEff:");
	return c && (strtoull(c + 7, NULL, 16) >> CAP_SYS_ADMIN_BIT) & 1;
}

struct ns_report {
	int rc, exit_code, engine_criu;
	pid_t inner, outer;
	double elapsed_ms;
	char fallback[512];
	char msg[1024];
};

static int outer_proc = -1; /* the /proc of the namespace the session came from */
static pid_t outer_self;    /* the new helper's pid there */

/* The last field of the NSpid line of proc/PATH/status: the pid as the
 * innermost namespace sees it, or -1. */
static pid_t innermost(int proc, const char *path)
{
	char sp[96], st[4096];
	snprintf(sp, sizeof(sp), "%s/status", path);
	int fd = openat(proc, sp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t m = read(fd, st, sizeof(st) - 1);
	close(fd);
	if (m <= 0)
		return -1;
	st[m] = '\0';
	char *ns = strstr(st, "NSpid:");
	if (!ns)
		return -1;
	ns[strcspn(ns, "\n")] = '\0';
	char *last = strrchr(ns, '\t');
	return last ? (pid_t)atoi(last + 1) : -1;
}

pid_t fp_pidns_child_outside(int proc, pid_t self, pid_t inner)
{
	char path[96], buf[4096];
	snprintf(path, sizeof(path), "%d/task/%d/children", (int)self, (int)self);
	int fd = openat(proc, path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (char *save, *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (innermost(proc, tok) == inner)
			return (pid_t)atoi(tok);
	return 0;
}

/* A child's pid outside, from its pid inside: the session's target is
 * always a child of its helper. */
static pid_t outer_pid_of(pid_t inner)
{
	return fp_pidns_child_outside(outer_proc, outer_self, inner);
}

int fp_session_restore_exact(const char *dir, const char *log, bool checked, struct fp_restore_result *r,
			     fp_error *err)
{
	struct fp_restore_opts o = {
		.dir = dir,
		.engine = FP_RESTORE_AUTO,
		.exact_pids = true,
		.log_path = log,
		.adopt = true,
		.foreground = true,
		.no_verify = checked,
	};
	return fp_restore(&o, r, err);
}

pid_t fp_session_pidns_outer(pid_t pid)
{
	pid_t o = outer_proc >= 0 ? outer_pid_of(pid) : 0;
	return o > 0 ? o : pid;
}

/* Every other proc mount of the session (a built image's root/proc, where
 * a shell's exec finds the helper's fds) shows the new namespace too; the
 * ones under /proc are hidden by the new /proc already. Mount points with
 * spaces or escapes are not ours. */
static int remount_other_procs(fp_error *err)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return fp_fail(err, errno, "cannot read /proc/self/mountinfo: %s", strerror(errno));
	/* All read before any is mounted: a new mount joins the list. */
	char line[4096], type[64], at[8][1024];
	int n = 0;
	while (n < 8 && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");
		if (sep && sscanf(sep + 3, "%63s", type) == 1 && !strcmp(type, "proc") &&
		    sscanf(line, "%*s %*s %*s %*s %1023s", at[n]) == 1 && strcmp(at[n], "/proc") && strncmp(at[n], "/proc/", 6) &&
		    !strchr(at[n], '\\'))
			n++;
	}
	fclose(f);
	for (int i = 0; i < n; i++)
		if (mount("proc", at[i], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return fp_fail(err, errno, "cannot mount the new pid namespace's /proc on %s: %s", at[i],
				       strerror(errno));
	return 0;
}

/* In the new helper, pid 1 of its namespace: its own /proc, then the
 * restore. Mounts made here never reach the old helper's namespace. */
static int ns_restore(struct fp_session_info *info, const char *dir, const char *log, struct fp_restore_result *r,
		      struct ns_report *rep, fp_error *err)
{
	unsigned long long start;
	if (fp_pidns_own_proc(&outer_self, &start, &outer_proc, "the new pid namespace", err) < 0)
		return -1;
	if (remount_other_procs(err) < 0)
		return -1;
	if (fp_session_restore_exact(dir, log, false, r, err) < 0)
		return fp_wrap(err, "in a new pid namespace");
	info->helper_pid = outer_self;
	info->helper_start = start;
	if (info->mnt_ns) { /* the session's processes are found by it */
		struct stat ns;
		if (stat("/proc/self/ns/mnt", &ns) == 0)
			info->mnt_ns = (unsigned long long)ns.st_ino;
	}
	rep->inner = r->pid;
	rep->outer = outer_pid_of(r->pid);
	rep->engine_criu = r->engine_used == FP_RESTORE_CRIU;
	rep->elapsed_ms = r->elapsed_ms;
	snprintf(rep->fallback, sizeof(rep->fallback), "%s", r->fallback_reason);
	fp_session_set_pid_view(outer_pid_of);
	return 0;
}

int fp_pidns_own_proc(pid_t *self, unsigned long long *start, int *outer_proc_fd, const char *what, fp_error *err)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
	if (n <= 0)
		return fp_fail(err, errno, "cannot read /proc/self: %s", strerror(errno));
	buf[n] = '\0';
	*self = (pid_t)atoi(buf);
	*start = fp_proc_starttime(*self);
	*outer_proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	/* Mounts made here never reach the parent's namespace; then a /proc
	 * of this pid namespace, which the dumper and restorer read. */
	if (*outer_proc_fd < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return fp_fail(err, errno, "cannot set up %s's mounts and /proc: %s", what, strerror(errno));
	return 0;
}

long fp_fork_new_pidns(void)
{
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWPID | CLONE_NEWNS;
	ca.exit_signal = SIGCHLD;
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

enum fp_pidns_outcome fp_session_pidns_restore(struct fp_session_info *info, const char *dir, const char *log,
					       struct fp_restore_result *r, pid_t *new_helper, fp_error *err)
{
	memset(r, 0, sizeof(*r));
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		fp_fail(err, errno, "pipe: %s", strerror(errno));
		return FP_PIDNS_FAILED;
	}
	fflush(NULL);
	long pid = fp_fork_new_pidns();
	if (pid == 0) {
		close(p[0]);
		struct ns_report rep;
		memset(&rep, 0, sizeof(rep));
		fp_error cerr;
		fp_error_clear(&cerr);
		rep.rc = ns_restore(info, dir, log, r, &rep, &cerr);
		rep.exit_code = cerr.exit_code;
		snprintf(rep.msg, sizeof(rep.msg), "%s", cerr.msg);
		ssize_t w = write(p[1], &rep, sizeof(rep));
		close(p[1]);
		if (rep.rc < 0 || w != (ssize_t)sizeof(rep))
			_exit(1); /* as pid 1, takes whatever it restored with it */
		return FP_PIDNS_NEW_HELPER;
	}
	close(p[1]);
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		fp_fail(err, e, "cannot create a pid namespace for the session: %s", strerror(e));
		return FP_PIDNS_FAILED;
	}
	struct ns_report rep;
	ssize_t n;
	do
		n = read(p[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n != (ssize_t)sizeof(rep) || rep.rc < 0) {
		waitpid((pid_t)pid, NULL, 0);
		if (n != (ssize_t)sizeof(rep))
			fp_fail(err, EIO, "the session's new helper died before it restored anything");
		else
			fp_fail_code(err, rep.exit_code, EIO, "%s", rep.msg);
		return FP_PIDNS_FAILED;
	}
	r->pid = rep.outer;
	r->ns_pid = rep.inner;
	r->engine_used = rep.engine_criu ? FP_RESTORE_CRIU : FP_RESTORE_NATIVE;
	r->elapsed_ms = rep.elapsed_ms;
	snprintf(r->fallback_reason, sizeof(r->fallback_reason), "%s", rep.fallback);
	*new_helper = (pid_t)pid;
	return FP_PIDNS_HANDED_OVER;
}

void fp_session_pidns_relay(pid_t new_helper, bool foreground)
{
	fp_close_fds_above_stdio(-1);
	if (!foreground)
		_exit(0);
	sigset_t set;
	sigprocmask(SIG_BLOCK, NULL, &set); /* serve() blocked what it forwards */
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		int st;
		pid_t w = waitpid(new_helper, &st, WNOHANG);
		if (w == new_helper || (w < 0 && errno == ECHILD)) {
			if (w == new_helper && WIFSIGNALED(st)) {
				sigset_t one;
				sigemptyset(&one);
				sigaddset(&one, WTERMSIG(st));
				signal(WTERMSIG(st), SIG_DFL);
				sigprocmask(SIG_UNBLOCK, &one, NULL);
				raise(WTERMSIG(st));
				_exit(128 + WTERMSIG(st));
			}
			_exit(w == new_helper ? WEXITSTATUS(st) : 1);
		}
		int sig = sigwaitinfo(&set, NULL);
		/* The terminal's ^C, ^\ and resizes reach the new helper, in
		 * our process group, by themselves. */
		if (sig > 0 && sig != SIGCHLD && sig != SIGINT && sig != SIGQUIT && sig != SIGWINCH)
			kill(new_helper, sig);
	}
}
