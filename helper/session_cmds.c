#include "session_cmds.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "control.h"
#include "helper/dump.h"
#include "helper/snapshots.h"

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

static void cmd_stop(struct fp_session_ctx *ctx, int c, char *args)
{
	int sig = SIGTERM;
	if (args && !strcmp(args, "kill"))
		sig = SIGKILL;
	if (kill(ctx->target, sig) < 0) {
		char buf[256];
		snprintf(buf, sizeof(buf), "error 1\ncannot signal target %d: %s", (int)ctx->target,
			 strerror(errno));
		reply(c, buf);
		return;
	}
	reply(c, "ok\n");
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
	struct fp_dump_opts o = {
		.pid = ctx->target,
		.dir = dir,
		.leave_running = true,
		.compress = FP_DUMP_ZSTD,
	};
	struct fp_dump_stats st;
	if (fp_dump(&o, &st, &err) < 0) {
		snprintf(buf, sizeof(buf), "error %d\nsnapshot '%s' of session '%s' failed: %s",
			 err.exit_code ? err.exit_code : 1, name, ctx->info->name, err.msg);
		reply(c, buf);
		return;
	}
	snprintf(buf, sizeof(buf),
		 "ok\nname=%s\ndir=%s\nprocesses=%d\nthreads=%d\npause_ms=%.3f\ntotal_ms=%.3f\n"
		 "pages=%llu\nbytes_written=%llu\n",
		 name, dir, st.nprocs, st.nthreads, st.pause_ms, st.total_ms,
		 (unsigned long long)st.pages, (unsigned long long)st.bytes_written);
	reply(c, buf);
}

static const struct {
	const char *verb;
	void (*fn)(struct fp_session_ctx *, int, char *);
} cmds[] = {
	{ "status", cmd_status },
	{ "stop", cmd_stop },
	{ "snap", cmd_snap },
};

void fp_session_handle_client(struct fp_session_ctx *ctx, int c)
{
	char req[FP_CTL_MAX_MSG];
	ssize_t n = recv(c, req, sizeof(req) - 1, 0);
	if (n <= 0)
		return;
	req[n] = '\0';
	req[strcspn(req, "\n")] = '\0';
	char *args = strchr(req, ' ');
	if (args)
		*args++ = '\0';
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(req, cmds[i].verb)) {
			cmds[i].fn(ctx, c, args);
			return;
		}
	char buf[256];
	snprintf(buf, sizeof(buf), "error 2\nunknown request '%.64s' (forkpoint and its helper differ in version?)",
		 req);
	reply(c, buf);
}
