/* fp_session_branch: see session_branch.h.
 *
 * The caller (the CLI, or libforkpoint) creates each branch's helper with
 * clone3(CLONE_NEWPID | CLONE_NEWNS): the child is pid 1 of its namespace,
 * sets up /proc and the workspace there, restores the snapshot as its own
 * child (every pid free, so exact pids), reports through a pipe and then
 * serves the session like any helper (fp_session_serve). As pid 1 it reaps
 * everything in the branch, and when it ends the kernel ends the branch. */
#include "session_branch.h"
#include "session_branch_int.h"
#include "fp_clock.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "hygiene.h"
#include "paths.h"
#include "session/session_helper.h"
#include "session/session_shell.h"
#include "session/session_branch_spare.h"
#include "session/session_hot.h"
#include "session/session_pidns.h"
#include "session/snapshots.h"
#include "overlay/workspace.h"
#include "restore/restore.h"
#include "images/img_verify.h"


int fp_session_branch_of(const char *dir, char *parent, size_t plen, char *snap, size_t slen)
{
	char path[PATH_MAX + 16], buf[512];
	snprintf(path, sizeof(path), "%s/branch", dir);
	if (fp_read_file(path, buf, sizeof(buf), NULL) < 0)
		return 0;
	parent[0] = snap[0] = '\0';
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "parent=", 7))
			snprintf(parent, plen, "%s", line + 7);
		else if (!strncmp(line, "snap=", 5))
			snprintf(snap, slen, "%s", line + 5);
	}
	return parent[0] != '\0';
}

/* ---- inside the branch (pid 1 of its namespace) ---- */

static int outer_proc = -1; /* the /proc of the caller's namespace */
static pid_t outer_self;    /* this helper's pid there */

/* A child's pid outside, from its pid inside (NSpid: OUTER ... INNER). */
static pid_t outer_view(pid_t inner)
{
	return fp_pidns_child_outside(outer_proc, outer_self, inner);
}

/* Nothing of the caller's (a test's pipe, a terminal) may stay open in a
 * helper that outlives it. */
void fp_branch_close_inherited(int keep)
{
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && nul >= 0; fd++)
		dup2(nul, fd);
	fp_close_fds_above_stdio(keep);
}


/* A shell session's bash comes back on a terminal of the branch's own: the
 * restore gives a terminal job the pty slave it finds on the restorer's fd
 * 0 (rst_tty.c), so the branch's new pty is lent there meanwhile. */
static int lend_terminal(struct fp_shell *sh, fp_error *err)
{
	if (fp_shell_pty_open(sh, err) < 0)
		return fp_wrap(err, "the branch's terminal");
	if (dup2(sh->slave, 0) < 0)
		return fp_fail(err, errno, "cannot lend the branch's terminal to the restore: %s", strerror(errno));
	return 0;
}

static void take_terminal_back(void)
{
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, 0);
		close(nul);
	}
}

/* The snapshot's process forked from its frozen copy by the helper that
 * keeps it (session_hot_fork.c), then everything but memory restored. */
static int hot_start(struct branch_job *j, const struct fp_restore_opts *ro, struct fp_restore_result *r,
		     double *fork_ms, fp_error *err)
{
	if (j->spare_pid > 0) { /* forked before the branch was asked for */
		if (j->spare_pid != j->hot_pid)
			return fp_fail(err, ESRCH, "the spare holds process %d, the snapshot's root is %d",
				       (int)j->spare_pid, (int)j->hot_pid);
		*fork_ms = 0; /* made before the call: not part of its time */
		return fp_restore_adopt(ro, j->hot_pid, j->spare_ip, r, err);
	}
	uint64_t ip = 0;
	if (fp_branch_hotfork(j, fork_ms, &ip, err) < 0)
		return -1;
	return fp_restore_adopt(ro, j->hot_pid, ip, r, err);
}

int fp_branch_hotfork(const struct branch_job *j, double *fork_ms, uint64_t *ip, fp_error *err)
{
	double t0 = fp_mono_ms_f();
	char sock[PATH_MAX + 16], req[256], resp[1024];
	snprintf(sock, sizeof(sock), "%s/control.sock", j->from->dir);
	snprintf(req, sizeof(req), "hotfork %s %d %d", j->snap, (int)outer_self, (int)j->hot_pid);
	if (fp_ctl_request(sock, req, resp, sizeof(resp), j->timeout_ms, err) < 0)
		return fp_wrap(err, "asking session '%s' for a fork of its hot snapshot", j->from->name);
	if (strncmp(resp, "ok", 2)) {
		const char *m = strchr(resp, '\n');
		return fp_fail(err, EIO, "%s", m ? m + 1 : resp);
	}
	*fork_ms = fp_mono_ms_f() - t0;
	const char *p = strstr(resp, "sysret=");
	if (!p)
		return fp_fail(err, EIO, "session '%s' answered the fork without its details", j->from->name);
	*ip = strtoull(p + 7, NULL, 10);
	return 0;
}

/* After a failed hot start: the fork, if one was made, is gone before the
 * snapshot's pid is asked for again. */
static void free_pid(pid_t pid)
{
	for (int i = 0; i < 2000; i++) {
		if (waitpid(pid, NULL, WNOHANG | __WALL) == pid || (kill(pid, 0) < 0 && errno == ESRCH))
			return;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
}

int fp_branch_ns_begin(struct branch_job *j, fp_error *err)
{
	if (fp_pidns_own_proc(&outer_self, &j->helper_start, &outer_proc, "the branch", err) < 0)
		return -1;
	j->ns_ready = true;
	return 0;
}

pid_t fp_branch_outer_self(void)
{
	return outer_self;
}

static int branch_setup(struct branch_job *j, struct fp_ws **ws, int *lsock, pid_t *target,
			struct fp_shell *sh, struct branch_report *rep, fp_error *err)
{
	struct fp_session_info *info = &j->info;
	if (!j->ns_ready && fp_branch_ns_begin(j, err) < 0)
		return -1;
	info->helper_pid = outer_self;
	info->helper_start = j->helper_start;
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
	*lsock = fp_ctl_listen(sock, err);
	if (*lsock < 0)
		return -1;
	info->started = (long long)time(NULL);
	info->detached = 0; /* nothing of its own to keep: no output.log */
	info->shim = j->from->shim;
	info->shell = j->from->shell;
	snprintf(info->state, sizeof(info->state), "starting");
	snprintf(info->cwd, sizeof(info->cwd), "%s", j->from->cwd);
	snprintf(info->cmd, sizeof(info->cmd), "%s", j->from->cmd);
	char rec[512], path[PATH_MAX + 16];
	int rl = snprintf(rec, sizeof(rec), "parent=%s\nsnap=%s\n", j->from->name, j->snap);
	snprintf(path, sizeof(path), "%s/branch", info->dir);
	/* Not synced: a branch does not outlive a crash of the machine. */
	if (fp_write_file_replace(path, rec, (size_t)rl, err) < 0)
		return -1;
	if (j->from->workdir[0]) {
		char store[PATH_MAX + 16], from_store[PATH_MAX + 16];
		snprintf(store, sizeof(store), "%s/workspace", info->dir);
		snprintf(from_store, sizeof(from_store), "%s/workspace", j->from->dir);
		struct fp_ws_opts wo = { .sync = true };
		if (fp_ws_create_branch(store, from_store, j->snap, &wo, ws, err) < 0)
			return -1;
		if (fp_ws_mount(*ws, err) < 0)
			return fp_wrap(err, "workspace");
		snprintf(info->workdir, sizeof(info->workdir), "%s", j->from->workdir);
	}
	if (fp_session_save(info, err) < 0)
		return -1;
	if (info->shell && lend_terminal(sh, err) < 0)
		return -1;
	char log[PATH_MAX + 16];
	snprintf(log, sizeof(log), "%s/restore.log", info->dir);
	struct fp_restore_opts ro = {
		.dir = j->snap_dir,
		.engine = FP_RESTORE_AUTO,
		.exact_pids = true,
		.log_path = log,
		.adopt = true,
		.foreground = info->shell != 0,
		.timeout_ms = j->timeout_ms,
	};
	struct fp_restore_result r;
	int rrc = -1;
	if (j->hot) {
		/* Checked here, where the workspace's files are in place (the
		 * image names the open ones). */
		fp_error he;
		fp_error_clear(&he);
		j->hot_pid = fp_restore_adopt_check(j->snap_dir, rep->hot_why, sizeof(rep->hot_why), &he);
		if (j->hot_pid < 0)
			snprintf(rep->hot_why, sizeof(rep->hot_why), "%s", he.msg);
		if (j->hot_pid > 0 && !rep->hot_why[0]) {
			rrc = hot_start(j, &ro, &r, &rep->fork_ms, &he);
			rep->hot = rrc == 0;
			rep->spare = rep->hot && j->spare_pid > 0;
			if (rrc < 0) {
				snprintf(rep->hot_why, sizeof(rep->hot_why), "%s", he.msg);
				free_pid(j->hot_pid);
			}
		}
	}
	if (j->spare_pid > 0 && !rep->hot) { /* a spare that was not used */
		kill(j->spare_pid, SIGKILL);
		free_pid(j->spare_pid);
	}
	if (rrc < 0)
		rrc = fp_restore(&ro, &r, err);
	if (info->shell)
		take_terminal_back();
	if (rrc < 0)
		return fp_wrap(err, "restoring snapshot '%s' of session '%s' in a new pid namespace", j->snap,
			       j->from->name);
	*target = r.pid;
	rep->restore_ms = r.elapsed_ms;
	rep->engine_criu = r.engine_used == FP_RESTORE_CRIU;
	rep->ns_pid = r.pid;
	rep->pid = outer_view(r.pid);
	info->target_pid = r.pid;
	snprintf(info->state, sizeof(info->state), "running");
	fp_session_set_pid_view(outer_view);
	return fp_session_save(info, err);
}

static __attribute__((noreturn)) void branch_main(struct branch_job *j, int wfd)
{
	setsid();
	fp_branch_close_inherited(wfd);
	fp_branch_run(j, wfd);
}

void fp_branch_run(struct branch_job *j, int wfd)
{
	struct branch_report rep;
	memset(&rep, 0, sizeof(rep));
	fp_error err;
	fp_error_clear(&err);
	struct fp_ws *ws = NULL;
	int lsock = -1;
	pid_t target = -1;
	struct fp_shell shell = { .master = -1, .slave = -1 };
	rep.rc = branch_setup(j, &ws, &lsock, &target, &shell, &rep, &err);
	rep.exit_code = err.exit_code;
	rep.helper_pid = outer_self;
	rep.ms = fp_mono_ms_f() - j->t0;
	snprintf(rep.msg, sizeof(rep.msg), "%s", err.msg);
	ssize_t w = write(wfd, &rep, sizeof(rep));
	close(wfd);
	if (rep.rc < 0 || w != (ssize_t)sizeof(rep)) {
		/* Nothing was restored, or the caller is gone and will report
		 * this branch as failed: leave nothing behind. */
		if (target > 0)
			kill(target, SIGKILL);
		fp_ws_close(ws);
		fp_shell_close(&shell);
		fp_rm_rf(j->info.dir, NULL);
		_exit(1);
	}
	fp_session_serve(&j->info, target, lsock, ws, &shell); /* closes ws and lsock, records the end */
	_exit(0);
}

/* ---- in the caller ---- */

static int reserve_name(const struct fp_branch_opts *o, int i, int count, struct fp_session_info *info,
			fp_error *err)
{
	char cand[FP_SESSION_NAME_MAX + 16];
	if (o->name) {
		if (count > 1)
			snprintf(cand, sizeof(cand), "%s-%d", o->name, i + 1);
		else
			snprintf(cand, sizeof(cand), "%s", o->name);
		return fp_session_reserve(cand, NULL, info, err);
	}
	for (int k = 1; k < 10000; k++) {
		if (snprintf(cand, sizeof(cand), "%s-b%d", o->session, k) > FP_SESSION_NAME_MAX)
			return fp_fail_code(err, FP_EXIT_USAGE, ENAMETOOLONG,
					    "the branch name %s is longer than %d characters; give --name", cand,
					    FP_SESSION_NAME_MAX);
		if (fp_session_reserve(cand, NULL, info, err) == 0)
			return 0;
		if (err->errnum != EEXIST)
			return -1;
	}
	return fp_fail(err, EEXIST, "no free branch name for session '%s'", o->session);
}

/* Ends a branch that started (its helper takes the namespace with it). */
static void end_branch(pid_t helper, const char *dir)
{
	int pfd = (int)syscall(SYS_pidfd_open, helper, 0);
	kill(helper, SIGKILL);
	if (waitpid(helper, NULL, 0) < 0 && pfd >= 0) { /* a spare's: not our child */
		struct pollfd p = { .fd = pfd, .events = POLLIN };
		poll(&p, 1, 5000);
	}
	if (pfd >= 0)
		close(pfd);
	fp_rm_rf(dir, NULL);
}

int fp_session_branch(const struct fp_branch_opts *o, struct fp_branch_info *out, fp_error *err)
{
	double t0 = fp_mono_ms_f();
	int count = o->count ? o->count : 1;
	if (count < 1 || count > FP_BRANCH_MAX)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "-n must be 1 to %d", FP_BRANCH_MAX);
	if (geteuid() != 0)
		return fp_fail_code(err, FP_EXIT_PERM, EPERM,
				    "branch needs root (each branch gets its own pid and mount namespace)");
	struct fp_session_info from;
	if (fp_session_load(o->session, &from, err) < 0)
		return -1;
	if (fp_snap_name_valid(o->snap, err) < 0)
		return -1;
	struct branch_job *jobs = calloc((size_t)count, sizeof(*jobs));
	pid_t *helpers = calloc((size_t)count, sizeof(*helpers));
	int *rfd = calloc((size_t)count, sizeof(*rfd));
	if (!jobs || !helpers || !rfd) {
		free(jobs), free(helpers), free(rfd);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	int started = 0, rc = 0;
	unsigned spares_used = 0;
	char snap_dir[PATH_MAX + 80];
	snprintf(snap_dir, sizeof(snap_dir), "%s/snapshots/%s", from.dir, o->snap);
	/* Only whether it is complete: its size (fp_snap_read) is not needed. */
	char manifest[PATH_MAX + 128];
	snprintf(manifest, sizeof(manifest), "%s/%s", snap_dir, FP_MANIFEST_NAME);
	if (access(manifest, R_OK) < 0) {
		rc = fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT,
				  "session '%s' has no complete snapshot '%s' (see `forkpoint list %s`)", o->session,
				  o->snap, o->session);
		goto out;
	}
	/* A hot snapshot is forked from memory when its helper runs here and
	 * the image allows it; else the branch says why it was not. */
	bool hot = false;
	char hot_why[256] = "";
	if (fp_session_helper_alive(&from) && fp_hot_listed(from.dir, o->snap)) {
		char parent[FP_SESSION_NAME_MAX + 1], psnap[FP_SNAP_NAME_MAX + 1];
		/* A copy joins the branch's pid namespace only if that one is
		 * nested in its own; a branch's branch is not nested in it (it
		 * must outlive it), so it restores from disk. */
		if (fp_session_branch_of(from.dir, parent, sizeof(parent), psnap, sizeof(psnap)))
			snprintf(hot_why, sizeof(hot_why),
				 "session '%s' is itself a branch: its frozen copies are in another pid namespace", o->session);
		else
			hot = true;
	}
	fflush(NULL);
	for (; started < count; started++) {
		struct branch_job *j = &jobs[started];
		j->from = &from;
		j->snap = o->snap;
		snprintf(j->snap_dir, sizeof(j->snap_dir), "%s", snap_dir);
		j->t0 = t0;
		j->timeout_ms = o->timeout_ms ? o->timeout_ms : 120000;
		j->hot = hot;
		if (reserve_name(o, started, count, &j->info, err) < 0) {
			rc = -1;
			break;
		}
		/* A directory without session.meta counts as a crashed start
		 * that the next reservation may reclaim: claim it at once, as
		 * ours until the branch's helper takes over. */
		j->info.helper_pid = getpid();
		j->info.helper_start = fp_proc_starttime(getpid());
		snprintf(j->info.state, sizeof(j->info.state), "starting");
		if (fp_session_save(&j->info, err) < 0) {
			fp_rm_rf(j->info.dir, NULL);
			rc = -1;
			break;
		}
		if (hot && fp_branch_spare_take(&from, o->snap, j->info.name, t0, j->timeout_ms, &spares_used,
						&rfd[started], &helpers[started]) == 1)
			continue; /* a spare runs the rest */
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0) {
			rc = fp_fail(err, errno, "pipe: %s", strerror(errno));
			fp_rm_rf(j->info.dir, NULL);
			break;
		}
		long pid = fp_fork_new_pidns();
		if (pid == 0) {
			close(p[0]);
			branch_main(j, p[1]);
		}
		close(p[1]);
		if (pid < 0) {
			int e = errno;
			close(p[0]);
			fp_rm_rf(j->info.dir, NULL);
			rc = fp_fail_code(err, e == EPERM ? FP_EXIT_PERM : FP_EXIT_FAIL, e,
					  "cannot create the branch's pid namespace: %s", strerror(e));
			break;
		}
		helpers[started] = (pid_t)pid;
		rfd[started] = p[0];
	}
	for (int i = 0; i < started; i++) {
		struct branch_report rep;
		memset(&rep, 0, sizeof(rep));
		struct pollfd pf = { .fd = rfd[i], .events = POLLIN };
		int left = (int)(t0 + jobs[i].timeout_ms + 5000 - fp_mono_ms_f()), pr;
		do
			pr = poll(&pf, 1, left > 0 ? left : 0);
		while (pr < 0 && errno == EINTR);
		ssize_t n = pr > 0 ? read(rfd[i], &rep, sizeof(rep)) : -1;
		close(rfd[i]);
		rfd[i] = -1;
		if (n != (ssize_t)sizeof(rep) || rep.rc < 0) {
			if (rc == 0) {
				if (n != (ssize_t)sizeof(rep))
					fp_fail_code(err, pr == 0 ? FP_EXIT_TIMEOUT : FP_EXIT_FAIL, EIO,
						     "branch '%s' %s before it ran", jobs[i].info.name,
						     pr == 0 ? "timed out" : "died");
				else
					fp_fail_code(err, rep.exit_code ? rep.exit_code : FP_EXIT_FAIL, EIO,
						     "branch '%s': %s", jobs[i].info.name, rep.msg);
			}
			rc = -1;
			end_branch(helpers[i], jobs[i].info.dir);
			helpers[i] = 0;
			continue;
		}
		if (!jobs[i].hot && hot_why[0])
			snprintf(rep.hot_why, sizeof(rep.hot_why), "%s", hot_why);
		struct fp_branch_info *b = &out[i];
		snprintf(b->name, sizeof(b->name), "%s", jobs[i].info.name);
		b->pid = rep.pid;
		b->ns_pid = rep.ns_pid;
		b->helper_pid = rep.helper_pid;
		b->ms = rep.ms;
		b->restore_ms = rep.restore_ms;
		b->engine_criu = rep.engine_criu;
		b->hot = rep.hot;
		b->fork_ms = rep.fork_ms;
		b->spare = rep.spare;
		snprintf(b->hot_why, sizeof(b->hot_why), "%s", rep.hot_why);
	}
	if (rc < 0) /* all or none */
		for (int i = 0; i < started; i++)
			if (helpers[i] > 0)
				end_branch(helpers[i], jobs[i].info.dir);
	if (rc == 0 && hot) /* the next branches' spares, made while nobody waits */
		fp_branch_spare_spawn(&from, o->snap, count);
out:
	for (int i = 0; i < started; i++)
		if (rfd[i] > 0)
			close(rfd[i]);
	free(jobs), free(helpers), free(rfd);
	return rc;
}
