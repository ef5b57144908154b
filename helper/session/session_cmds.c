#include "session_cmds.h"
#include "config.h"
#include "fp_clock.h"

#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
#include "session/session_full_restore.h"
#include "session/session_pidns.h"
#include "session/rollback_inplace.h"
#include "session/session_hot.h"
#include "session/session_hot_fork.h"

static void reply(int c, const char *msg)
{
	send(c, msg, strlen(msg), MSG_NOSIGNAL);
	/* The send wakes the client on this CPU (a unix socket's wakeup is a
	 * "sync" one: the sender is expected to sleep next), but the helper
	 * goes on with the request's work after its reply: the client then
	 * waited up to 4 ms for this CPU while the other one was idle (seen
	 * with perf's sched events after 1 in 3 rollbacks in place,
	 * 2026-12-07). Yielding lets it run at once (FP_SESSION_NO_YIELD=1:
	 * not, for A/B). */
	static int yield = -1;
	if (yield < 0)
		yield = !fp_env_flag("FP_SESSION_NO_YIELD");
	if (yield)
		sched_yield();
}

static void cmd_status(struct fp_session_ctx *ctx, int c, char *args)
{
	(void)args;
	char buf[4096];
	snprintf(buf, sizeof(buf), "ok\nname=%s\nhelper_pid=%d\ntarget_pid=%d\nstate=%s\nshim=%d\ncmd=%s\nahead_bytes=%llu\n",
		 ctx->info->name, (int)ctx->info->helper_pid, (int)ctx->target, ctx->info->state,
		 ctx->info->shim, ctx->info->cmd, (unsigned long long)fp_rollback_ahead_bytes());
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

/* What the last snapshot's work after its reply took (ms), for restore's
 * reply: a request made meanwhile waits for it. */
static struct {
	double settle_ms, preload_ms, reserve_ms, ahead_ms;
} snap_after;

static void snap_reply(int c, const char *name, const char *dir, const struct fp_dump_stats *st,
		       const struct fp_dump_hot *hot)
{
	char buf[FP_CTL_MAX_MSG];
	snprintf(buf, sizeof(buf),
		 "ok\nname=%s\ndir=%s\nprocesses=%d\nthreads=%d\npause_ms=%.3f\ntotal_ms=%.3f\n"
		 "pages=%llu\nbytes_written=%llu\nincremental=%d\npages_parent=%llu\npages_ahead=%llu\nwhy=%s\n"
		 "shim_checked=%d\nshim_disagree=%u\nshim_note=%s\nhot=%d\nhot_why=%s\nphases=%s\nearly_reply=%d\n",
		 name, dir, st->nprocs, st->nthreads, st->pause_ms, st->total_ms,
		 (unsigned long long)st->pages, (unsigned long long)st->bytes_written, st->incremental,
		 (unsigned long long)st->pages_parent, (unsigned long long)st->pages_ahead, st->full_why, st->shim_checked, st->shim_disagree, st->shim_note,
		 hot->n > 0, hot->n ? "" : hot->why, st->phases, st->replied_early);
	reply(c, buf);
}

/* --early-reply: the reply once the processes run again, before the
 * images are written (dump_early_reply.c); the next request, served after
 * this one, finds the snapshot published. */
struct early {
	int c;
	const char *name, *dir;
	const struct fp_dump_hot *hot;
};

static void reply_early(void *arg, const struct fp_dump_stats *st)
{
	const struct early *e = arg;
	snap_reply(e->c, e->name, e->dir, st, e->hot);
}

/* "snap [NAME]": a --leave-running dump of the session's process tree into
 * the session's snapshots/ directory. The helper does it itself: it is the
 * target's parent, so ptrace is always allowed, and requests are served one
 * at a time, so two snapshots never race. */
static void cmd_snap(struct fp_session_ctx *ctx, int c, char *args)
{
	char name[FP_SNAP_NAME_MAX + 1], dir[4096], buf[FP_CTL_MAX_MSG];
	fp_error err;
	/* "snap [NAME] [--hot=LIMIT] [--tcp-established]" */
	const char *want = NULL;
	int hot_limit = 0;
	bool tcp = fp_setting_yes("tcp_established"), early = false;
	for (char *tok = args ? strtok(args, " ") : NULL; tok; tok = strtok(NULL, " ")) {
		if (!strncmp(tok, "--hot=", 6))
			hot_limit = atoi(tok + 6);
		else if (!strcmp(tok, "--tcp-established"))
			tcp = true;
		else if (!strcmp(tok, "--early-reply"))
			early = true;
		else
			want = tok;
	}
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
		.tcp_established = tcp,
		/* plain pages: a rollback reads the few it needs in place,
		 * where a compressed store decodes whole chunks */
		.compress = FP_DUMP_NONE,
		.while_stopped = ctx->ws ? freeze_workspace : NULL,
		.while_stopped_arg = &wf,
		.track = fp_track_session(),
		.settle_later = true, /* after the reply, below */
		.verbose = fp_env_flag("FP_DUMP_VERBOSE"), /* each mapping and page list in dump.log */
	};
	struct fp_dump_hot hot;
	memset(&hot, 0, sizeof(hot));
	if (hot_limit > 0)
		o.hot = &hot;
	struct early er = { c, name, dir, &hot };
	if (early) { /* not with o.hot: fp_dump replies after writing then */
		o.early_reply = reply_early;
		o.early_reply_arg = &er;
	}
	struct fp_dump_stats st;
	int drc = fp_dump(&o, &st, &err);
	fp_error he;
	if (drc == 0 && hot.n && fp_hot_close_fds(&hot, &he) < 0) {
		fp_hot_keep(ctx->info->dir, name, &hot, FP_HOT_MAX); /* only to release them: evicts no other */
		fp_hot_release(ctx->info->dir, name);
		snprintf(hot.why, sizeof(hot.why), "%s", he.msg);
		hot.n = 0;
	} else if (drc == 0 && hot.n) {
		fp_hot_keep(ctx->info->dir, name, &hot, hot_limit);
	} else if (drc == 0 && hot_limit > 0 && !hot.why[0]) {
		snprintf(hot.why, sizeof(hot.why), "no frozen copy was made");
	}
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
	if (drc < 0 && st.replied_early) {
		/* its client was told it is taken: the log (NAME.failed.log)
		 * and the next snapshot's reason say it is not */
		fprintf(stderr, "forkpoint: snapshot '%s' of session '%s' failed after its early reply: %s\n", name,
			ctx->info->name, err.msg);
		fp_track_settle(fp_track_session());
		return;
	}
	if (drc < 0) {
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' of session '%s' failed: %s",
			 err.exit_code ? err.exit_code : 1, name, ctx->info->name, err.msg);
		reply(c, buf);
		fp_track_settle(fp_track_session()); /* nothing left to wait for, normally */
		return;
	}
	if (!st.replied_early)
		snap_reply(c, name, dir, &st, &hot);
	/* The re-protection of the pages this snapshot saw written ran beside
	 * it; what is left of it is waited for here, after the reply, and
	 * before the next request (served one at a time) uses the tracking. */
	double t_settle = fp_mono_ms_f();
	fp_track_settle(fp_track_session());
	double t_preload = fp_mono_ms_f();
	fp_rollback_preload(dir); /* after the reply: a rollback to it finds its pages resolved */
	double t_reserve = fp_mono_ms_f();
	snap_after.settle_ms = t_preload - t_settle;
	snap_after.preload_ms = t_reserve - t_preload;
	fp_track_reserve(fp_track_session(), ctx->info->dir); /* the next snapshot's page cache, filled by a thread */
	double t_ahead = fp_mono_ms_f();
	snap_after.reserve_ms = t_ahead - t_reserve;
	fp_rollback_ahead_start(fp_track_session(), ctx->info->dir); /* and a rollback's pages, read by another */
	snap_after.ahead_ms = fp_mono_ms_f() - t_ahead;
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
		ctx->stop_deadline_ms = fp_mono_ms() + STOP_GRACE_MS;
	reply(c, "ok\n");
}

/* Where SNAP's pages came from: "hot" (its frozen copy), "ahead" (read
 * before the request, rollback_ahead.c), "files" (read at the request),
 * joined by '+', or "none". */
static const char *pages_from(const struct fp_rb_result *rb, char *out, size_t len)
{
	snprintf(out, len, "%s%s%s%s%s", rb->hot_bytes ? "hot" : "", rb->hot_bytes && rb->ahead_bytes ? "+" : "",
		 rb->ahead_bytes ? "ahead" : "", (rb->hot_bytes || rb->ahead_bytes) && rb->files_bytes ? "+" : "",
		 rb->files_bytes ? "files" : "");
	return *out ? out : "none";
}

/* "restore SNAP": the session goes back to SNAP, in place when its
 * processes are SNAP's (rollback_inplace.h), else in full
 * (session_full_restore.h). Either way it ends in SNAP's state or in the
 * one before, never in neither. */
static void cmd_restore(struct fp_session_ctx *ctx, int c, char *args)
{
	char buf[FP_CTL_MAX_MSG], dir[4096], from[32];
	fp_error err;
	double t_in_f = fp_mono_ms_f();
	if (!args || !*args || fp_snap_name_valid(args, &err) < 0) {
		snprintf(buf, sizeof(buf), "error 2\n%s", args && *args ? err.msg : "no snapshot given");
		reply(c, buf);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/snapshots/%s", ctx->info->dir, args);
	struct fp_snap_info si;
	if (fp_snap_read(dir, &si, &err) < 0) {
		char failed[4200];
		snprintf(failed, sizeof(failed), "%s.failed.log", dir);
		bool lost = access(failed, F_OK) == 0; /* such as one written after an early reply */
		snprintf(buf, sizeof(buf), "error 3\nsession '%s' has no complete snapshot '%s'%s%s (see `forkpoint list %s`)",
			 ctx->info->name, args, lost ? ": taking it failed, its log is " : "", lost ? failed : "",
			 ctx->info->name);
		reply(c, buf);
		return;
	}
	/* The same processes as SNAP's: back in place, no new processes. */
	struct fp_rb_result rb = { 0 };
	rb.step_at = t_in_f;
	fp_rb_mark(&rb, "snap_read");
	int irc = FP_RB_NOT_POSSIBLE;
	/* A shell session's pty is the helper's own: the shell's terminal
	 * can go back in place too. */
	struct stat tst;
	dev_t tty = ctx->shell && fstat(ctx->shell->slave, &tst) == 0 ? tst.st_rdev : 0;
	fp_track_settle(fp_track_session()); /* the last snapshot's re-protection, if still running */
	fp_track_reserve_pause(fp_track_session()); /* the CPUs are the rollback's; goes on after it */
	fp_rb_mark(&rb, "settle");
	irc = fp_rollback_inplace(ctx->target, dir, args, ctx->ws, fp_track_session(), tty, &rb, &err);
	if (irc == FP_RB_DONE || irc == FP_RB_UNDONE) {
		if (irc == FP_RB_DONE)
			ctx->restores++; /* the same shell, back at SNAP: a running exec's command is gone */
		if (irc == FP_RB_DONE)
			snprintf(buf, sizeof(buf), "ok\npid=%d\nengine=in-place\nin_place=1\nrestore_ms=%.3f\nsave_ms=0\n"
				 "total_ms=%.3f\ncpu_ms=%.3f\npages=%llu\nvma_ops=%llu\nfd_ops=%llu\nverified_bytes=%llu\npagemap_from=%s\n"
				 "pages_from=%s\nhot_bytes=%llu\nfiles_bytes=%llu\nahead_bytes=%llu\nsaved_ahead_bytes=%llu\nfds_from=%s\nfds_note=%s\n"
				 "phases=load %.1f prefetch %.1f stop %.1f diff %.1f save %.1f apply %.1f rearm %.1f resume %.1f\n"
				 "steps=%s\nat_ms=%.3f\nidle_at_ms=%.3f\nsnap_after=settle %.2f preload %.2f reserve %.2f ahead %.2f\nahead_stop_ms=%.3f\n",
				 (int)fp_session_pidns_outer(ctx->target), rb.ms, fp_mono_ms_f() - t_in_f, rb.cpu_ms,
				 (unsigned long long)rb.pages, (unsigned long long)rb.vma_ops, (unsigned long long)rb.fd_ops,
				 (unsigned long long)rb.verified_bytes, rb.pagemap_from ? rb.pagemap_from : "files",
				 pages_from(&rb, from, sizeof(from)),
				 (unsigned long long)rb.hot_bytes, (unsigned long long)rb.files_bytes, (unsigned long long)rb.ahead_bytes, (unsigned long long)rb.saved_ahead_bytes, rb.fds_from, rb.fds_note, rb.load_ms, rb.prefetch_ms, rb.stop_ms, rb.diff_ms, rb.save_ms, rb.apply_ms, rb.rearm_ms, rb.resume_ms, rb.steps, t_in_f, fp_session_idle_at, snap_after.settle_ms, snap_after.preload_ms, snap_after.reserve_ms, snap_after.ahead_ms, fp_session_ahead_stop_ms);
		else
			snprintf(buf, sizeof(buf), "error %d\nrestoring snapshot '%s' in place failed: %s; the session is back in "
				 "its state from before the restore", err.exit_code ? err.exit_code : 1, args, err.msg);
		reply(c, buf);
		if (irc == FP_RB_DONE)
			fp_rollback_settle(fp_track_session());
		fp_track_reserve(fp_track_session(), ctx->info->dir);
		fp_rollback_ahead_start(fp_track_session(), ctx->info->dir);
		return;
	}
	if (irc == FP_RB_BROKEN)
		fprintf(stderr, "forkpoint: rollback in place of '%s' failed and could not be undone (%s): restoring it in full\n",
			args, err.msg);
	/* new processes, SNAP's or (failed) those from before: either way */
	ctx->restores++;
	fp_session_full_restore(ctx, c, args, dir, rb.why, !rb.mixed); /* session_full_restore.c */
}

/* "forget NAME": after `rm` of NAME, what rollbacks kept of it goes
 * (rollback_cache.c). */
static void cmd_forget(struct fp_session_ctx *ctx, int c, char *args)
{
	char dir[4096], buf[64];
	fp_error err;
	if (args && fp_snap_name_valid(args, &err) == 0) {
		snprintf(dir, sizeof(dir), "%s/snapshots/%s", ctx->info->dir, args);
		fp_rollback_forget(dir);
	}
	snprintf(buf, sizeof(buf), "ok\nkept=%zu\n", fp_rollback_cached());
	reply(c, buf);
}

/* "unhot NAME": `rm` of a hot snapshot lets its copies go. */
static void cmd_unhot(struct fp_session_ctx *ctx, int c, char *args)
{
	bool was = args && fp_hot_release(ctx->info->dir, args);
	reply(c, was ? "ok\nreleased=1\n" : "ok\nreleased=0\n");
}

static void cmd_hotfork(struct fp_session_ctx *ctx, int c, char *args)
{
	(void)ctx;
	fp_hot_fork_request(args, c);
}

static const struct {
	const char *verb;
	void (*fn)(struct fp_session_ctx *, int, char *);
	/* the read ahead (rollback_ahead.c) during it: goes on beside it (it
	 * touches nothing the read ahead uses), starts again after it (it
	 * changes nothing the read ahead depends on), or is the request's */
	enum { AHEAD_BESIDE, AHEAD_AFTER, AHEAD_OWN } ahead;
} cmds[] = {
	{ "status", cmd_status, AHEAD_BESIDE },
	{ "stop", cmd_stop, AHEAD_OWN },
	{ "snap", cmd_snap, AHEAD_OWN },
	{ "restore", cmd_restore, AHEAD_OWN },
	{ "unhot", cmd_unhot, AHEAD_AFTER },
	{ "forget", cmd_forget, AHEAD_AFTER },
	{ "hotfork", cmd_hotfork, AHEAD_AFTER },
};

double fp_session_idle_at;
double fp_session_ahead_stop_ms;

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
	/* an exec's command runs while the read ahead goes on (it is the
	 * step an exploration goes back from) */
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
			if (cmds[i].ahead != AHEAD_BESIDE) { /* the helper's state is the request's alone */
				double t_stop = fp_mono_ms_f();
				fp_rollback_ahead_stop();
				fp_session_ahead_stop_ms = fp_mono_ms_f() - t_stop;
			}
			cmds[i].fn(ctx, c, args);
			if (cmds[i].ahead == AHEAD_AFTER) /* what it read is read again */
				fp_rollback_ahead_start(fp_track_session(), ctx->info->dir);
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
