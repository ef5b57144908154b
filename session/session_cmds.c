#include "session_cmds.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "control.h"
#include "paths.h"
#include "dump/dump.h"
#include "dump/dirty_tracker.h"
#include "session/snapshots.h"
#include "restore/restore.h"
#include "overlay/workspace.h"
#include "session/session_ws.h"
#include "session/session_exec.h"
#include "session/session_reap.h"
#include "session/session_shell.h"
#include "session/session_hold.h"
#include "session/rollback_inplace.h"

static void reply(int c, const char *msg)
{
	send(c, msg, strlen(msg), MSG_NOSIGNAL);
}

static void cmd_status(struct fp_session_ctx *ctx, int c, char *args)
{
	(void)args;
	char buf[4096];
	snprintf(buf, sizeof(buf), "ok\nname=%s\nhelper_pid=%d\ntarget_pid=%d\nstate=%s\nshim=%d\ncmd=%s\n",
		 ctx->info->name, (int)ctx->info->helper_pid, (int)ctx->target, ctx->info->state,
		 ctx->info->shim, ctx->info->cmd);
	reply(c, buf);
}

struct ws_freeze {
	struct fp_ws *ws;
	const char *snap;
	bool committed;
	double ms;
};

/* Runs inside the dump's pause: the workspace is frozen at the instant the
 * memory is captured. */
static int freeze_workspace(void *arg, struct fp_pt_proc **procs, size_t n, fp_error *err)
{
	struct ws_freeze *wf = arg;
	if (wf->committed) {
		/* fp_dump tries again after a child ended mid-dump (a busy
		 * shell): the first attempt's layer goes, the files freeze anew. */
		fp_error e2;
		fp_ws_rm(wf->ws, wf->snap, &e2);
		wf->committed = false;
	}
	if (fp_session_ws_freeze(wf->ws, wf->snap, procs, n, &wf->ms, err) < 0)
		return -1;
	wf->committed = true;
	return 0;
}

/* "snap [NAME]": a --leave-running dump of the session's process tree into
 * the session's snapshots/ directory. The helper does it itself: it is the
 * target's parent, so ptrace is always allowed, and requests are served one
 * at a time, so two snapshots never race. */
static void cmd_snap(struct fp_session_ctx *ctx, int c, char *args)
{
	char name[FP_SNAP_NAME_MAX + 1], dir[4096], buf[FP_CTL_MAX_MSG];
	fp_error err;
	const char *want = args && *args ? args : NULL;
	if (fp_snap_new_path(ctx->info->dir, want, name, sizeof(name), dir, sizeof(dir), &err) < 0) {
		snprintf(buf, sizeof(buf), "error %d\n%s", err.exit_code ? err.exit_code : 1, err.msg);
		reply(c, buf);
		return;
	}
	struct ws_freeze wf = { .ws = ctx->ws, .snap = name };
	struct fp_dump_opts o = {
		.pid = ctx->target,
		.dir = dir,
		.leave_running = true,
		/* plain pages: a rollback reads the few it needs in place,
		 * where a compressed store decodes whole chunks */
		.compress = FP_DUMP_NONE,
		.while_stopped = ctx->ws ? freeze_workspace : NULL,
		.while_stopped_arg = &wf,
		.track = fp_track_session(),
	};
	struct fp_dump_stats st;
	int drc = fp_dump(&o, &st, &err);
	if (drc < 0 && wf.committed) {
		/* The files were frozen but the memory was not written: the
		 * snapshot does not exist, so neither may its layers' claim. */
		fp_error e2;
		fp_ws_rm(ctx->ws, name, &e2);
	}
	if (drc == 0 && ctx->ws) {
		fp_error e2;
		fp_ws_maintain(ctx->ws, NULL, &e2); /* squash a deep chain, outside the pause */
	}
	if (drc < 0) {
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' of session '%s' failed: %s",
			 err.exit_code ? err.exit_code : 1, name, ctx->info->name, err.msg);
		reply(c, buf);
		return;
	}
	snprintf(buf, sizeof(buf),
		 "ok\nname=%s\ndir=%s\nprocesses=%d\nthreads=%d\npause_ms=%.3f\ntotal_ms=%.3f\n"
		 "pages=%llu\nbytes_written=%llu\nincremental=%d\npages_parent=%llu\nwhy=%s\nphases=%s\n",
		 name, dir, st.nprocs, st.nthreads, st.pause_ms, st.total_ms,
		 (unsigned long long)st.pages, (unsigned long long)st.bytes_written, st.incremental,
		 (unsigned long long)st.pages_parent, st.full_why, st.phases);
	reply(c, buf);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* "stop [kill]": SIGTERM to the program (SIGHUP to a shell session's bash,
 * which ignores SIGTERM), and if it has not ended within STOP_GRACE_MS
 * (or at once with "kill"), SIGKILL to every process of the session. When
 * the program ends, whatever it left behind is killed too (serve()). */
#define STOP_GRACE_MS 5000
static void cmd_stop(struct fp_session_ctx *ctx, int c, char *args)
{
	if (args && !strcmp(args, "kill")) {
		fp_session_signal_all(SIGKILL);
		reply(c, "ok\n");
		return;
	}
	int sig = ctx->shell ? SIGHUP : SIGTERM;
	if (kill(ctx->target, sig) < 0) {
		char buf[256];
		snprintf(buf, sizeof(buf), "error 1\ncannot signal target %d: %s", (int)ctx->target,
			 strerror(errno));
		reply(c, buf);
		return;
	}
	if (!ctx->stop_deadline_ms)
		ctx->stop_deadline_ms = now_ms() + STOP_GRACE_MS;
	reply(c, "ok\n");
}

/* Kills every process of the session and reaps it (the helper is the
 * target's parent and the subreaper of its tree), so every pid is free
 * again: zombies of killed parents come to us, and a pid is taken until
 * its zombie is reaped. An exec's own process is answered as killed. */
static int kill_session(struct fp_session_ctx *ctx, fp_error *err)
{
	long long deadline = now_ms() + 10000;
	for (;;) {
		fp_session_signal_all(SIGKILL);
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
			if (w != ctx->target)
				fp_exec_reaped(ctx, w, st);
		if (w < 0 && errno == ECHILD)
			return 0;
		if (now_ms() > deadline)
			return fp_fail(err, ETIMEDOUT, "the session's processes did not all die within 10 s of SIGKILL "
				       "(stuck in the kernel? see `ps -o pid,stat,wchan --ppid %d`)", (int)getpid());
		usleep(1000);
	}
}

/* The session's processes as they are, dumped (uncompressed, for speed)
 * and then killed: what a restore that fails half way brings back. They
 * stay stopped from the dump to their death, so memory and workspace
 * cannot drift apart in between. */
static int rollback_dump(struct fp_session_ctx *ctx, const char *rbdir, fp_error *err)
{
	fp_rm_rf(rbdir, NULL); /* a leftover from a helper killed mid-restore */
	struct fp_dump_opts o = {
		.pid = ctx->target,
		.dir = rbdir,
		.leave_running = false,
		.compress = FP_DUMP_NONE,
		.track = fp_track_session(), /* only what changed since the last snapshot */
		.while_stopped = fp_session_save_fault, /* session_hold.c: tests only */
		.before_kill = fp_session_save_check,   /* session_hold.c */
	};
	struct fp_dump_stats st;
	int rc = fp_dump(&o, &st, err);
	/* the processes it tracked are killed next */
	fp_track_drop(o.track, "the session was restored from a snapshot (new processes)");
	if (rc < 0)
		return fp_wrap(err, "saving the session's current state before the restore");
	return 0;
}

static int restore_dir(const char *dir, const char *log, struct fp_restore_result *r, fp_error *err)
{
	struct fp_restore_opts o = {
		.dir = dir,
		.engine = FP_RESTORE_AUTO,
		.exact_pids = true,
		.log_path = log,
		.adopt = true,
		.foreground = true,
	};
	return fp_restore(&o, r, err);
}

/* "restore SNAP": the session goes back to SNAP. The snapshot is validated
 * first (all but pid availability), so a bad snapshot leaves the session
 * running untouched. The current processes are then saved (rollback_dump)
 * and killed, and the snapshot restored in their place, as children of this
 * helper. If that fails half way, the saved state comes back instead: the
 * session ends in the snapshot's state or in the one before, never a mix. */
static void cmd_restore(struct fp_session_ctx *ctx, int c, char *args)
{
	char buf[FP_CTL_MAX_MSG], dir[4096], why[512];
	fp_error err;
	if (!args || !*args || fp_snap_name_valid(args, &err) < 0) {
		snprintf(buf, sizeof(buf), "error 2\n%s", args && *args ? err.msg : "no snapshot given");
		reply(c, buf);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/snapshots/%s", ctx->info->dir, args);
	struct fp_snap_info si;
	if (fp_snap_read(dir, &si, &err) < 0) {
		snprintf(buf, sizeof(buf), "error 3\nsession '%s' has no complete snapshot '%s' (see `forkpoint list %s`)",
			 ctx->info->name, args, ctx->info->name);
		reply(c, buf);
		return;
	}
	long long t_in = now_ms();
	/* The same processes as SNAP's: back in place, no new processes. */
	struct fp_rb_result rb;
	int irc = fp_rollback_inplace(ctx->target, dir, args, ctx->ws, fp_track_session(), &rb, &err);
	if (irc == FP_RB_DONE || irc == FP_RB_UNDONE) {
		if (irc == FP_RB_DONE)
			snprintf(buf, sizeof(buf), "ok\npid=%d\nengine=in-place\nin_place=1\nrestore_ms=%.3f\nsave_ms=0\n"
				 "total_ms=%lld\npages=%llu\nvma_ops=%llu\nfd_ops=%llu\nphases=load %.1f stop %.1f diff %.1f "
				 "save %.1f apply %.1f rearm %.1f\n", (int)ctx->target, rb.ms, now_ms() - t_in,
				 (unsigned long long)rb.pages, (unsigned long long)rb.vma_ops, (unsigned long long)rb.fd_ops,
				 rb.load_ms, rb.stop_ms, rb.diff_ms, rb.save_ms, rb.apply_ms, rb.rearm_ms);
		else
			snprintf(buf, sizeof(buf), "error %d\nrestoring snapshot '%s' in place failed: %s; the session is back in "
				 "its state from before the restore", err.exit_code ? err.exit_code : 1, args, err.msg);
		reply(c, buf);
		return;
	}
	if (irc == FP_RB_BROKEN)
		fprintf(stderr, "forkpoint: rollback in place of '%s' failed and could not be undone (%s): restoring it in full\n",
			args, err.msg);
	/* With a workspace, the snapshot's file system goes up first (stacked on
	 * DIR, the live one still underneath), so the checks and the restored
	 * processes see the files as they were at the snapshot. */
	struct fp_ws_switch sw;
	if (ctx->ws && fp_ws_restore_begin(ctx->ws, args, &sw, &err) < 0) {
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' cannot be restored, the session is left as it was: workspace: %s",
			 err.exit_code ? err.exit_code : 1, args, err.msg);
		reply(c, buf);
		return;
	}
	if (fp_restore_check_ex(dir, false, why, sizeof(why), &err) < 0) {
		if (ctx->ws)
			fp_ws_restore_abort(ctx->ws, &sw);
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' cannot be restored, the session is left as it was: %s",
			 err.exit_code ? err.exit_code : 1, args, err.msg);
		reply(c, buf);
		return;
	}
	/* Validated: the workspace goes back to the live one while the
	 * current state is saved, so the saved fds name the live files. */
	if (ctx->ws)
		fp_ws_restore_abort(ctx->ws, &sw);
	/* session_hold.c: what would make this restore and its rollback
	 * fail is checked while the session still runs untouched. */
	if (fp_session_restore_preflight(dir, &err) < 0) {
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' cannot be restored, the session is left as it was: %s",
			 err.exit_code ? err.exit_code : 1, args, err.msg);
		reply(c, buf);
		return;
	}
	long long t0 = now_ms();
	char rbdir[4096], log[4096];
	snprintf(rbdir, sizeof(rbdir), "%s/rollback", ctx->info->dir);
	snprintf(log, sizeof(log), "%s/restore.log", ctx->info->dir);
	if (rollback_dump(ctx, rbdir, &err) < 0) {
		fp_rm_rf(rbdir, NULL);
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' was not restored, the session is left as it was: %s",
			 err.exit_code ? err.exit_code : 1, args, err.msg);
		reply(c, buf);
		return;
	}
	long long t_saved = now_ms();
	if (kill_session(ctx, &err) < 0 || (ctx->ws && fp_ws_restore_begin(ctx->ws, args, &sw, &err) < 0)) {
		snprintf(buf, sizeof(buf), "error 1\n%s", err.msg);
		ctx->target = -1;
		reply(c, buf);
		return;
	}
	struct fp_restore_result r;
	if (fp_session_fault("session-restore", &err) < 0 || restore_dir(dir, log, &r, &err) < 0) {
		if (ctx->ws)
			fp_ws_restore_abort(ctx->ws, &sw);
		fp_error rerr;
		struct fp_restore_result rr;
		char rblog[4096];
		snprintf(rblog, sizeof(rblog), "%s/rollback.log", ctx->info->dir);
		/* Whatever the failed restore left (a CRIU-restored tree is
		 * reparented to us) would hold the pids the saved state needs. */
		if (kill_session(ctx, &rerr) < 0 || restore_dir(rbdir, rblog, &rr, &rerr) < 0) {
			snprintf(buf, sizeof(buf),
				 "error %d\nrestoring snapshot '%s' failed (log: %s): %s; bringing back the state before it failed too, "
				 "the session ends (log: %s): %s",
				 err.exit_code ? err.exit_code : 1, args, log, err.msg, rblog, rerr.msg);
			ctx->target = -1;
		} else {
			fp_rm_rf(rbdir, NULL);
			ctx->target = rr.pid;
			ctx->info->target_pid = rr.pid;
			fp_session_save(ctx->info, NULL);
			snprintf(buf, sizeof(buf),
				 "error %d\nrestoring snapshot '%s' failed (log: %s): %s; the session is back in its state from before the restore",
				 err.exit_code ? err.exit_code : 1, args, log, err.msg);
		}
		reply(c, buf);
		return;
	}
	fp_rm_rf(rbdir, NULL);
	if (ctx->ws && fp_ws_restore_commit(ctx->ws, &sw, &err) < 0) {
		/* The restored processes already run on the snapshot's files;
		 * only the record of the switch failed. Say so, keep going. */
		fprintf(stderr, "forkpoint: warning: workspace restore commit: %s\n", err.msg);
	}
	ctx->target = r.pid;
	ctx->info->target_pid = r.pid;
	fp_session_save(ctx->info, NULL);
	fp_rollback_arm(r.pid, dir, fp_track_session()); /* the next rollback can be in place */
	snprintf(buf, sizeof(buf), "ok\npid=%d\nengine=%s\nfallback=%s\nrestore_ms=%.3f\nsave_ms=%lld\ntotal_ms=%lld\n"
		 "in_place=0\nwhy=%s\n",
		 (int)r.pid, r.engine_used == FP_RESTORE_CRIU ? "criu" : "native", r.fallback_reason,
		 r.elapsed_ms, t_saved - t0, now_ms() - t0, rb.why);
	reply(c, buf);
}

static const struct {
	const char *verb;
	void (*fn)(struct fp_session_ctx *, int, char *);
} cmds[] = {
	{ "status", cmd_status },
	{ "stop", cmd_stop },
	{ "snap", cmd_snap },
	{ "restore", cmd_restore },
};

int fp_session_handle_client(struct fp_session_ctx *ctx, int c)
{
	char *req = malloc(FP_CTL_MAX_MSG + 1);
	int fds[8], nfds = 0;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(fds))];
	} cm;
	struct iovec iov = { .iov_base = req, .iov_len = FP_CTL_MAX_MSG };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	ssize_t n = req ? recvmsg(c, &mh, MSG_CMSG_CLOEXEC) : -1;
	for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; h; h = CMSG_NXTHDR(&mh, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k && nfds < 8; i++)
				memcpy(&fds[nfds++], CMSG_DATA(h) + (size_t)i * sizeof(int), sizeof(int));
		}
	if (n <= 0) {
		free(req);
		return 0;
	}
	req[n] = '\0';
	if (!strncmp(req, "exec\n", 5)) {
		fp_exec_request(ctx, c, req, (size_t)n, fds, nfds);
		free(req);
		return 1;
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	req[strcspn(req, "\n")] = '\0';
	char *args = strchr(req, ' ');
	if (args)
		*args++ = '\0';
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(req, cmds[i].verb)) {
			cmds[i].fn(ctx, c, args);
			free(req);
			return 0;
		}
	char buf[256];
	snprintf(buf, sizeof(buf), "error 2\nunknown request '%.64s' (forkpoint and its helper differ in version?)",
		 req);
	reply(c, buf);
	free(req);
	return 0;
}
