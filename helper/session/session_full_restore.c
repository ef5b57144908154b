/* A session's full restore (new processes in place of the live ones): see
 * session_full_restore.h, and session_hold.c for why it cannot cost the
 * session. */
#include "session/session_full_restore.h"
#include "fp_clock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "config.h"
#include "paths.h"
#include "images/criu_io.h"
#include "dump/dump.h"
#include "dump/dirty_tracker.h"
#include "overlay/workspace.h"
#include "restore/restore.h"
#include "session/rollback_inplace.h"
#include "session/session_exec.h"
#include "session/session_hold.h"
#include "session/session_pidns.h"
#include "session/session_reap.h"

static void reply(int c, const char *msg)
{
	send(c, msg, strlen(msg), MSG_NOSIGNAL);
}

/* Kills every process of the session and reaps it (the helper is the
 * target's parent and the subreaper of its tree), so every pid is free
 * again: zombies of killed parents come to us, and a pid is taken until
 * its zombie is reaped. An exec's own process is answered as killed. */
static int kill_session(struct fp_session_ctx *ctx, fp_error *err)
{
	long long deadline = fp_mono_ms() + 10000;
	for (;;) {
		fp_session_signal_all(SIGKILL);
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
			if (w != ctx->target)
				fp_exec_reaped(ctx, w, st);
		if (w < 0 && errno == ECHILD)
			return 0;
		if (fp_mono_ms() > deadline)
			return fp_fail(err, ETIMEDOUT, "the session's processes did not all die within 10 s of SIGKILL "
				       "(stuck in the kernel? see `ps -o pid,stat,wchan --ppid %d`)", (int)getpid());
		usleep(1000);
	}
}

/* The session's processes as they are, dumped (uncompressed, for speed)
 * and then killed: what a restore that fails half way brings back. They
 * stay stopped from the dump to their death, so memory and workspace
 * cannot drift apart in between. */
static int rollback_dump(struct fp_session_ctx *ctx, const char *rbdir, bool tcp, fp_error *err)
{
	fp_rm_rf(rbdir, NULL); /* a leftover from a helper killed mid-restore */
	struct fp_dump_opts o = {
		.pid = ctx->target,
		.dir = rbdir,
		.leave_running = false,
		.tcp_established = tcp,
		.drop_waiting = true, /* no image holds them: killed next */
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

/* Restores dir as the session's processes, the old ones dead: with the
 * image's pids here when they are all free (or the helper's namespace is
 * the session's own, where no one else takes a pid), else in a new pid
 * namespace, where they are free by construction. A restore here that
 * fails because a pid was taken meanwhile goes there too. In the old
 * helper, a move to a namespace does not return: the new helper goes on
 * from here, with *moved set. */
static int restore_somewhere(struct fp_session_ctx *ctx, int c, const char *dir, const char *log,
			     struct fp_restore_result *r, bool *moved, fp_error *err)
{
	*moved = false;
	char why[1024] = "";
	bool own = fp_session_in_own_pidns();
	if (own || fp_session_pids_free(dir, why, sizeof(why))) {
		/* tests: an outside process takes a pid of the image here */
		fp_session_fault_pause("session-pause-before-restore", ctx->info->dir);
		if (fp_session_restore_exact(dir, log, true, r, err) == 0)
			return 0;
		fp_error kerr;
		if (kill_session(ctx, &kerr) < 0) /* what the failed restore left holds pids */
			return fp_fail(err, kerr.errnum, "%s; then: %s", err->msg, kerr.msg);
		if (own || fp_session_pids_free(dir, why, sizeof(why)))
			return -1; /* not a matter of pids: a namespace would not help */
	}
	pid_t nh;
	switch (fp_session_pidns_restore(ctx->info, dir, log, r, &nh, err)) {
	case FP_PIDNS_FAILED:
		return fp_wrap(err, "restoring in a new pid namespace, as %s", why);
	case FP_PIDNS_HANDED_OVER:
		fp_session_pidns_relay(nh, !ctx->info->detached);
	case FP_PIDNS_NEW_HELPER:
		break;
	}
	(void)c; /* the new helper answers through it */
	*moved = true;
	return 0;
}

/* The session's target is now r's root. */
static void adopt(struct fp_session_ctx *ctx, const struct fp_restore_result *r)
{
	ctx->target = r->pid;
	ctx->info->target_pid = r->pid;
	fp_session_save(ctx->info, NULL);
}

/* After a failed restore of SNAP: the saved state comes back. */
static void roll_back(struct fp_session_ctx *ctx, int c, const char *snap, const char *rbdir, const char *log,
		      const fp_error *err)
{
	char buf[FP_CTL_MAX_MSG], rblog[4096];
	snprintf(rblog, sizeof(rblog), "%s/rollback.log", ctx->info->dir);
	fp_error rerr;
	struct fp_restore_result rr;
	bool moved;
	/* Whatever the failed restore left (a CRIU-restored tree is
	 * reparented to us) would hold the pids the saved state needs. */
	if (kill_session(ctx, &rerr) < 0 || restore_somewhere(ctx, c, rbdir, rblog, &rr, &moved, &rerr) < 0) {
		snprintf(buf, sizeof(buf),
			 "error %d\nrestoring snapshot '%s' failed (log: %s): %s; bringing back the state before it failed too, "
			 "the session ends (log: %s): %s",
			 err->exit_code ? err->exit_code : 1, snap, log, err->msg, rblog, rerr.msg);
		ctx->target = -1;
	} else {
		fp_rm_rf(rbdir, NULL);
		adopt(ctx, &rr);
		snprintf(buf, sizeof(buf),
			 "error %d\nrestoring snapshot '%s' failed (log: %s): %s; the session is back in its state from before "
			 "the restore%s",
			 err->exit_code ? err->exit_code : 1, snap, log, err->msg,
			 moved ? ", in a pid namespace of its own (its pids were taken)" : "");
	}
	reply(c, buf);
}

/* A full restore is the second choice: the user also learns why the first,
 * the rollback in place, could not be had (what to change to get it). */
static void refuse(int c, const char *snap, const char *how, const char *inplace_why, const fp_error *err)
{
	char buf[FP_CTL_MAX_MSG];
	snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' %s, the session is left as it was: %s%s%s%s",
		 err->exit_code ? err->exit_code : 1, snap, how, err->msg,
		 inplace_why && *inplace_why ? " (a rollback in place was not possible either: " : "",
		 inplace_why && *inplace_why ? inplace_why : "", inplace_why && *inplace_why ? ")" : "");
	reply(c, buf);
}

/* keep_live false, and SNAP cannot be restored: nothing is left to run. */
static void end_session(struct fp_session_ctx *ctx, int c, const char *snap, const char *inplace_why,
			const fp_error *err)
{
	char buf[FP_CTL_MAX_MSG];
	fp_error kerr;
	kill_session(ctx, &kerr);
	ctx->target = -1;
	snprintf(buf, sizeof(buf), "error %d\n%s; restoring snapshot '%s' in full failed too, the session ends: %s",
		 err->exit_code ? err->exit_code : 1, inplace_why, snap, err->msg);
	reply(c, buf);
}

void fp_session_full_restore(struct fp_session_ctx *ctx, int c, const char *snap, const char *dir,
			     const char *inplace_why, bool keep_live)
{
	char buf[FP_CTL_MAX_MSG], why[1024];
	fp_error err;
	long long t_in = fp_mono_ms();
	if (!keep_live && kill_session(ctx, &err) < 0) { /* the mix, gone before SNAP's pids are looked at */
		end_session(ctx, c, snap, inplace_why, &err);
		return;
	}
	/* With a workspace, the snapshot's file system goes up first (stacked on
	 * DIR, the live one still underneath), so the checks and the restored
	 * processes see the files as they were at the snapshot. */
	struct fp_ws_switch sw;
	if (ctx->ws && fp_ws_restore_begin(ctx->ws, snap, &sw, &err) < 0) {
		fp_wrap(&err, "workspace");
		keep_live ? refuse(c, snap, "cannot be restored", inplace_why, &err)
			  : end_session(ctx, c, snap, inplace_why, &err);
		return;
	}
	if (fp_restore_check_ex(dir, false, why, sizeof(why), &err) < 0) {
		if (ctx->ws)
			fp_ws_restore_abort(ctx->ws, &sw);
		keep_live ? refuse(c, snap, "cannot be restored", inplace_why, &err)
			  : end_session(ctx, c, snap, inplace_why, &err);
		return;
	}
	/* Validated: the workspace goes back to the live one while the
	 * current state is saved, so the saved fds name the live files. */
	if (ctx->ws)
		fp_ws_restore_abort(ctx->ws, &sw);
	/* session_hold.c: what would make this restore fail wherever it is
	 * made is checked while the session still runs untouched. */
	bool pids_here;
	if (fp_session_restore_preflight(dir, &pids_here, why, sizeof(why), &err) < 0) {
		keep_live ? refuse(c, snap, "cannot be restored", inplace_why, &err)
			  : end_session(ctx, c, snap, inplace_why, &err);
		return;
	}
	long long t0 = fp_mono_ms();
	char rbdir[4096], log[4096];
	snprintf(rbdir, sizeof(rbdir), "%s/rollback", ctx->info->dir);
	snprintf(log, sizeof(log), "%s/restore.log", ctx->info->dir);
	/* a snapshot with TCP connections was taken of a session that has them:
	 * the live ones are saved the same way (closed silently, locked) */
	bool tcp = fp_setting_yes("tcp_established") || cr_has_tcp_streams(dir);
	if (!keep_live) { /* nothing to save: the processes are gone (kill_session above) */
		fp_track_drop(fp_track_session(), "the session was restored from a snapshot (new processes)");
	} else if (rollback_dump(ctx, rbdir, tcp, &err) < 0) {
		fp_rm_rf(rbdir, NULL);
		refuse(c, snap, "was not restored", inplace_why, &err);
		return;
	}
	long long t_saved = fp_mono_ms();
	int kill_rc = kill_session(ctx, &err);
	long long t_killed = fp_mono_ms();
	if (kill_rc < 0 || (ctx->ws && fp_ws_restore_begin(ctx->ws, snap, &sw, &err) < 0)) {
		snprintf(buf, sizeof(buf), "error 1\n%s", err.msg);
		ctx->target = -1;
		reply(c, buf);
		return;
	}
	struct fp_restore_result r;
	bool moved;
	if (fp_session_fault("session-restore", &err) < 0 || restore_somewhere(ctx, c, dir, log, &r, &moved, &err) < 0) {
		if (ctx->ws)
			fp_ws_restore_abort(ctx->ws, &sw);
		if (keep_live)
			roll_back(ctx, c, snap, rbdir, log, &err);
		else
			end_session(ctx, c, snap, inplace_why, &err);
		return;
	}
	long long t_restored = fp_mono_ms();
	if (ctx->ws && fp_ws_restore_commit(ctx->ws, &sw, &err) < 0) {
		/* The restored processes already run on the snapshot's files;
		 * only the record of the switch failed. Say so, keep going. */
		fprintf(stderr, "forkpoint: warning: workspace restore commit: %s\n", err.msg);
	}
	adopt(ctx, &r);
	pid_t shown = fp_session_pidns_outer(r.pid);
	long long t_end = fp_mono_ms();
	snprintf(buf, sizeof(buf), "ok\npid=%d\nengine=%s\nfallback=%s\nrestore_ms=%.3f\nsave_ms=%lld\ntotal_ms=%lld\n"
		 "in_place=0\nwhy=%s\npidns=%d\nmoved=%d\nns_pid=%d\n"
		 "phases=check %lld save %lld kill %lld restore %lld record %lld\n",
		 (int)shown, r.engine_used == FP_RESTORE_CRIU ? "criu" : "native", r.fallback_reason,
		 r.elapsed_ms, t_saved - t0, t_end - t_in, inplace_why, fp_session_in_own_pidns(), moved, (int)r.pid,
		 t0 - t_in, t_saved - t0, t_killed - t_saved, t_restored - t_killed, t_end - t_restored);
	reply(c, buf);
	/* After the answer, before the next request (one at a time): the
	 * saved state's files (deleting them takes tens of ms on a busy
	 * disk; a leftover is removed by the next rollback_dump) and the
	 * arming of the next rollback in place. */
	fp_rm_rf(rbdir, NULL);
	/* tests: the restored processes run here before the arming */
	fp_session_fault_pause("session-pause-before-arm", ctx->info->dir);
	fp_rollback_arm(r.pid, dir, fp_track_session()); /* the next rollback can be in place */
}
