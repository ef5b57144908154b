/* The session calls of version 0.2 (include/forkpoint.h): snap with a hot
 * copy, restore that also revives an ended session, branch by name with
 * what each branch took. Their results are forkpoint_info, so that what
 * the helper answers can grow. */
#include "api/api_int.h"
#include "api/session_client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "session/session_branch.h"
#include "session/session_branch_spare.h"
#include "session/session_hot.h"
#include "session/session_revive.h"
#include "session/snapshots.h"

_Static_assert(FORKPOINT_HOT_DEFAULT_LIMIT == FP_HOT_DEFAULT_LIMIT && FORKPOINT_HOT_MAX == FP_HOT_MAX,
	       "the public hot limits are the helper's");
_Static_assert(FORKPOINT_BRANCH_MAX == FP_BRANCH_MAX && FP_BRANCH_MAX <= API_START_MAX,
	       "the public branch limit is the session library's");

/* The helper's key=value answer as a forkpoint_info. */
static int body_out(const char *body, forkpoint_info **out, forkpoint_error *err)
{
	forkpoint_info *i = api_info_new();
	if (i && api_info_set_body(i, body) < 0) {
		forkpoint_info_free(i);
		i = NULL;
	}
	return api_info_out(i, out, err);
}

struct spare_args {
	const char *session;
	char snap[FP_SNAP_NAME_MAX + 1];
};

static int start_spare(void *arg, struct api_started *st, fp_error *err)
{
	const struct spare_args *a = arg;
	struct fp_session_info from;
	st->n = 0;
	if (fp_session_load(a->session, &from, err) < 0)
		return -1;
	fp_branch_spare_spawn(&from, a->snap, 1);
	return 0;
}

/* A hot snapshot's first spare branch (session_branch_spare.h), started
 * from a clean child so that it does not inherit the caller's threads or
 * fds. Best effort: without it, a branch forks the copy when asked. */
static void spare_after_snap(forkpoint_session *s, const char *body)
{
	const char *n = strstr(body, "name=");
	if (geteuid() != 0 || !n || (n != body && n[-1] != '\n'))
		return;
	struct spare_args a = { .session = s->info.name };
	snprintf(a.snap, sizeof(a.snap), "%.*s", (int)strcspn(n + 5, "\n"), n + 5);
	struct api_started *st = malloc(sizeof(*st));
	forkpoint_error ignored;
	if (st)
		api_start(start_spare, &a, st, &ignored);
	free(st);
}

int forkpoint_session_snap_with(forkpoint_session *s, const char *name, int hot_limit, unsigned flags,
				forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	fp_error e = { 0 };
	if (name && fp_snap_name_valid(name, &e) < 0)
		return api_error(err, &e);
	if (hot_limit < 0 || hot_limit > FORKPOINT_HOT_MAX)
		return api_fail(err, FORKPOINT_EINVAL, 0, "the hot limit must be 1 to %d (or 0: not hot), not %d",
				FORKPOINT_HOT_MAX, hot_limit);
	char req[160], body[4096];
	int rl = snprintf(req, sizeof(req), "snap%s%s", name ? " " : "", name ? name : "");
	const unsigned known = FORKPOINT_SNAP_TCP_ESTABLISHED | FORKPOINT_SNAP_EARLY_REPLY;
	if (flags & ~known)
		return api_fail(err, FORKPOINT_EINVAL, 0, "unknown snap flags %#x", flags & ~known);
	if (hot_limit && (flags & FORKPOINT_SNAP_EARLY_REPLY))
		return api_fail(err, FORKPOINT_EINVAL, 0, "a hot snapshot cannot reply early: its frozen copies are "
				"handed over after the images are written (drop one of the two)");
	if (hot_limit)
		rl += snprintf(req + rl, sizeof(req) - (size_t)rl, " --hot=%d", hot_limit);
	if (flags & FORKPOINT_SNAP_TCP_ESTABLISHED)
		rl += snprintf(req + rl, sizeof(req) - (size_t)rl, " --tcp-established");
	if (flags & FORKPOINT_SNAP_EARLY_REPLY)
		snprintf(req + rl, sizeof(req) - (size_t)rl, " --early-reply");
	if (api_session_request(s, req, body, sizeof(body), 30 * 60 * 1000, err) < 0)
		return -1;
	if (hot_limit && strstr(body, "\nhot=1\n"))
		spare_after_snap(s, body);
	return body_out(body, res, err);
}

/* loaded: s->info was just loaded and its helper found alive, so the
 * request goes straight to the socket (no third read of session.meta and
 * /proc/HELPER/stat in a `forkpoint restore`). */
static int restore_live(forkpoint_session *s, const char *snap, bool loaded, forkpoint_info **res,
			forkpoint_error *err)
{
	*res = NULL;
	fp_error e = { 0 };
	if (!snap || fp_snap_name_valid(snap, &e) < 0)
		return snap ? api_error(err, &e) : api_fail(err, FORKPOINT_EINVAL, 0, "which snapshot? (none given)");
	char req[128], body[4096];
	snprintf(req, sizeof(req), "restore %s", snap);
	const int timeout_ms = 10 * 60 * 1000;
	if (loaded && api_session_call(&s->info, req, body, sizeof(body), timeout_ms, &e) < 0)
		return api_error(err, &e);
	if (!loaded && api_session_request(s, req, body, sizeof(body), timeout_ms, err) < 0)
		return -1;
	if (body_out(body, res, err) < 0)
		return -1;
	s->info.target_pid = (pid_t)forkpoint_info_int(*res, "pid");
	if (api_info_set(*res, "workdir", "%s", s->info.workdir) < 0 || api_info_set(*res, "revived", "0") < 0) {
		forkpoint_info_free(*res);
		*res = NULL;
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	}
	return 0;
}

int api_session_restore_live(forkpoint_session *s, const char *snap, forkpoint_info **res, forkpoint_error *err)
{
	return restore_live(s, snap, false, res, err);
}

/* A helper that saved "exited" has closed its control socket and is on its
 * way out: the session is revived once it is gone. Waits up to 10 s. */
static bool helper_finishing(const struct fp_session_info *info)
{
	if (strcmp(info->state, "exited"))
		return false;
	struct timespec pause = { 0, 1000000 };
	for (int i = 0; i < 10000 && fp_session_helper_alive(info); i++)
		nanosleep(&pause, NULL);
	return fp_session_helper_alive(info);
}

int forkpoint_session_restore_with(forkpoint_session *s, const char *snap, forkpoint_info **res,
				   forkpoint_error *err)
{
	forkpoint_info *i = NULL;
	if (!s || !res)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_restore_with needs a session and a place for the result");
	fp_error e = { 0 };
	if (fp_session_load(s->info.name, &s->info, &e) < 0)
		return api_error(err, &e);
	if (helper_finishing(&s->info))
		return api_fail(err, FORKPOINT_ETIMEOUT, ETIMEDOUT,
				"session '%s' has ended, but its helper (pid %d) has not exited within 10 s; "
				"see `forkpoint inspect %s`, or `forkpoint cleanup --force %s` to end it",
				s->info.name, (int)s->info.helper_pid, s->info.name, s->info.name);
	if (fp_session_helper_alive(&s->info))
		return restore_live(s, snap, true, res, err);
	*res = NULL;
	if (!snap)
		return api_fail(err, FORKPOINT_EINVAL, 0, "which snapshot? (none given)");
	struct fp_revive_result r;
	if (fp_session_revive(s->info.name, snap, &r, &e) < 0)
		return api_error(err, &e);
	s->info.target_pid = r.pid;
	if ((i = api_info_new()) &&
	    (api_info_set(i, "pid", "%d", r.pid) < 0 || api_info_set(i, "workdir", "%s", r.workdir) < 0 ||
	     api_info_set(i, "revived", "1") < 0)) {
		forkpoint_info_free(i);
		i = NULL;
	}
	return api_info_out(i, res, err);
}

/* What each branch took, in the starter's report (api_start.c): one
 * key=value body per branch. */
static int start_branches(void *arg, struct api_started *st, fp_error *err)
{
	const struct fp_branch_opts *o = arg;
	struct fp_branch_info *b = calloc((size_t)o->count, sizeof(*b));
	if (!b)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = fp_session_branch(o, b, err);
	if (rc == 0) {
		st->n = o->count;
		for (int i = 0; i < o->count; i++) {
			snprintf(st->names[i], sizeof(st->names[i]), "%s", b[i].name);
			snprintf(st->info[i], sizeof(st->info[i]),
				 "name=%s\npid=%d\nns_pid=%d\nhelper_pid=%d\nms=%.17g\nrestore_ms=%.17g\n"
				 "engine=%s\nhot=%d\nspare=%d\nfork_ms=%.17g\nhot_why=%s\n",
				 b[i].name, (int)b[i].pid, (int)b[i].ns_pid, (int)b[i].helper_pid, b[i].ms,
				 b[i].restore_ms, b[i].engine_criu ? "criu" : "native", b[i].hot, b[i].spare, b[i].fork_ms,
				 b[i].hot_why);
		}
	}
	free(b);
	return rc;
}

int api_branch_start(const char *session, const char *snap, const char *name, int n, struct api_started *st,
		     forkpoint_error *err)
{
	if (!session || !snap || n < 1 || n > FORKPOINT_BRANCH_MAX)
		return api_fail(err, FORKPOINT_EINVAL, 0,
				"a branch needs a session, one of its snapshots and 1 to %d branches", FORKPOINT_BRANCH_MAX);
	struct fp_session_info info;
	fp_error ign;
	if (fp_session_load(session, &info, &ign) == 0)
		api_session_settled(&info); /* SNAP, taken with --early-reply, is on disk */
	struct fp_branch_opts o = { .session = session, .snap = snap, .name = name, .count = n };
	return api_start(start_branches, &o, st, err);
}

int forkpoint_session_branch_with(forkpoint_session *s, const char *snap, const char *name, int n,
				  forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (!s)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no session handle");
	struct api_started *st = malloc(sizeof(*st));
	if (!st)
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	if (api_branch_start(s->info.name, snap, name, n, st, err) < 0) {
		free(st);
		return -1;
	}
	forkpoint_info *all = api_info_new();
	for (int i = 0; all && i < st->n; i++) {
		forkpoint_info *it = api_info_add_item(all);
		if (!it || api_info_set_body(it, st->info[i]) < 0) {
			forkpoint_info_free(all);
			all = NULL;
		}
	}
	free(st);
	return api_info_out(all, res, err);
}
