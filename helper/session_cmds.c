#include "session_cmds.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "control.h"

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

static const struct {
	const char *verb;
	void (*fn)(struct fp_session_ctx *, int, char *);
} cmds[] = {
	{ "status", cmd_status },
	{ "stop", cmd_stop },
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
