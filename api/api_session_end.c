/* Ending things: a snapshot (rm), a session's program (stop), a session and
 * everything it kept (cleanup). */
#include "api/api_int.h"
#include "api/session_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dump/snap_chain.h"
#include "overlay/workspace.h"
#include "paths.h"
#include "session/control.h"
#include "session/snapshots.h"
#include "session/session_cleanup.h"
#include "session/session_hot.h"

static int rm_one(const struct fp_session_info *info, const char *snap, fp_error *err)
{
	if (fp_snap_name_valid(snap, err) < 0)
		return -1;
	char dir[PATH_MAX], gone[PATH_MAX + 32], store[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/snapshots/%s", info->dir, snap);
	snprintf(store, sizeof(store), "%s/workspace", info->dir);
	int has_ws = access(store, F_OK) == 0;
	api_session_settled(info); /* a snapshot it still writes is a child of snap's, or snap */
	if (access(dir, F_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT, "session '%s' has no snapshot '%s'",
				    info->name, snap);
	/* Out of every listing first (one rename), then freed at leisure: an
	 * interruption leaves a hidden leftover, never half a snapshot. A
	 * snapshot that is another's parent keeps its data (dump/snap_chain.h). */
	/* A hot snapshot's copies go first (the helper holds them). */
	if (fp_hot_listed(info->dir, snap) && fp_session_helper_alive(info)) {
		char sock[PATH_MAX + 16], req[FP_SNAP_NAME_MAX + 16], resp[256];
		snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
		snprintf(req, sizeof(req), "unhot %s", snap);
		if (fp_ctl_request(sock, req, resp, sizeof(resp), 30000, err) < 0)
			return fp_wrap(err, "releasing the frozen copies of hot snapshot '%s'", snap);
	}
	int kept = 0;
	if (fp_snap_retire(info->dir, snap, gone, sizeof(gone), &kept, err) < 0)
		return -1;
	/* What the helper kept of it for rollbacks goes too (a helper that
	 * does not answer only keeps it until it finds it gone). */
	if (fp_session_helper_alive(info)) {
		char sock[PATH_MAX + 16], req[FP_SNAP_NAME_MAX + 16], resp[256];
		fp_error ign;
		snprintf(sock, sizeof(sock), "%s/control.sock", info->dir);
		snprintf(req, sizeof(req), "forget %s", snap);
		(void)fp_ctl_request(sock, req, resp, sizeof(resp), 30000, &ign);
	}
	if (has_ws) {
		struct fp_ws *ws;
		if (fp_ws_open(store, NULL, &ws, err) < 0)
			return fp_wrap(err, "workspace of '%s'", info->name);
		struct fp_ws_gc_stats st;
		int rc = fp_ws_rm(ws, snap, err);
		if (rc == 0 || (err && err->errnum == ENOENT))
			rc = fp_ws_gc(ws, &st, err);
		fp_ws_close(ws);
		if (rc < 0)
			return fp_wrap(err, "workspace of '%s'", info->name);
	}
	return kept ? 0 : fp_rm_rf(gone, err);
}

int forkpoint_session_rm(forkpoint_session *s, const char *snap, forkpoint_error *err)
{
	if (!s || !snap)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_rm needs a session and a snapshot name");
	fp_error e = { 0 };
	return rm_one(&s->info, snap, &e) < 0 ? api_error(err, &e) : 0;
}

int forkpoint_session_stop(forkpoint_session *s, int hard, forkpoint_error *err)
{
	if (!s)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no session handle");
	fp_error e = { 0 };
	const char *name = s->info.name;
	if (fp_session_load(name, &s->info, &e) < 0)
		return api_error(err, &e);
	if (!fp_session_helper_alive(&s->info))
		return api_fail(err, FORKPOINT_ENOTFOUND, ESRCH, "session '%s' is not running", name);
	char sock[PATH_MAX + 16], resp[FP_CTL_MAX_MSG];
	snprintf(sock, sizeof(sock), "%s/control.sock", s->info.dir);
	if (fp_ctl_request(sock, hard ? "stop kill" : "stop", resp, sizeof(resp), 5000, &e) < 0)
		return api_error(err, &e);
	if (strncmp(resp, "ok", 2))
		return api_fail(err, FORKPOINT_EFAIL, 0, "%s", strchr(resp, '\n') ? strchr(resp, '\n') + 1 : resp);
	/* The helper kills the rest of the tree within 5 s, then reaps it
	 * (up to 10 s for processes stuck in the kernel). */
	struct timespec pause = { 0, 2000000 };
	for (int i = 0; i < 10000 && fp_session_helper_alive(&s->info); i++)
		nanosleep(&pause, NULL);
	if (fp_session_helper_alive(&s->info))
		return api_fail(err, FORKPOINT_ETIMEOUT, ETIMEDOUT,
				"session '%s' (helper %d) has not ended within 20 s; "
				"see `forkpoint inspect %s` for what still runs", name, (int)s->info.helper_pid, name);
	return 0;
}

int forkpoint_session_cleanup(forkpoint_session *s, forkpoint_error *err)
{
	if (!s)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no session handle");
	forkpoint_error se;
	if (forkpoint_session_stop(s, 1, &se) < 0 && se.code != FORKPOINT_ENOTFOUND) {
		if (err)
			*err = se;
		return -1;
	}
	fp_error e = { 0 };
	if (fp_rm_rf(s->info.dir, &e) < 0)
		return api_error(err, &e);
	return 0;
}

int forkpoint_cleanup(const char *name, unsigned flags, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (!name)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_cleanup needs a session name");
	struct fp_cleanup_result r;
	fp_error e = { 0 };
	if (fp_session_cleanup(name, flags & FORKPOINT_CLEANUP_FORCE, &r, &e) < 0)
		return api_error(err, &e);
	forkpoint_info *i = api_info_new();
	if (i && (api_info_set(i, "killed", "%d", r.killed) < 0 || api_info_set(i, "unmounted", "%d", r.unmounted) < 0 ||
		  api_info_set(i, "helper_killed", "%d", r.helper_killed) < 0)) {
		forkpoint_info_free(i);
		i = NULL;
	}
	return api_info_out(i, res, err);
}
