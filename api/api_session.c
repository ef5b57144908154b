/* The session layer of include/forkpoint.h: starting and attaching, and the
 * requests that are one message to the helper and one answer (snap,
 * restore, in their first forms; api_session_with.c has their later ones). Starting is api_start.c, exec api_exec.c; rm, stop and cleanup
 * are api_session_end.c. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/session_client.h"
#include "session/session_helper.h"
#include "session/snapshots.h"

static int start_run(void *arg, struct api_started *st, fp_error *err)
{
	struct fp_run_result res;
	if (fp_run_session(arg, &res, err) < 0)
		return -1;
	st->n = 1;
	snprintf(st->names[0], sizeof(st->names[0]), "%s", res.name);
	return 0;
}

int forkpoint_session_create(const char *name, const char *workdir, unsigned flags, char *const argv[],
			     forkpoint_session **out, forkpoint_error *err)
{
	if (!out)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_create needs a place for the handle");
	*out = NULL;
	int shell = !!(flags & FORKPOINT_SESSION_SHELL);
	if (shell == (argv && argv[0]))
		return api_fail(err, FORKPOINT_EINVAL, 0,
				shell ? "a shell session runs bash itself: give no argv"
				      : "give a command (argv) or FORKPOINT_SESSION_SHELL");
	struct fp_run_opts o = {
		.name = name,
		.argv = argv,
		.detach = 1,
		.shell = shell,
		.workdir = workdir,
		.no_shim = !!(flags & FORKPOINT_SESSION_NO_SHIM),
	};
	struct api_started st;
	if (api_start(start_run, &o, &st, err) < 0)
		return -1;
	return api_open_all(&st, out, err);
}

int forkpoint_session_open(const char *name, forkpoint_session **out, forkpoint_error *err)
{
	if (!name || !out)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_open needs a name and a place for the handle");
	*out = NULL;
	forkpoint_session *s = calloc(1, sizeof(*s));
	if (!s)
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	fp_error e = { 0 };
	if (fp_session_load(name, &s->info, &e) < 0) {
		free(s);
		return api_error(err, &e);
	}
	*out = s;
	return 0;
}

void forkpoint_session_close(forkpoint_session *s)
{
	free(s);
}

const char *forkpoint_session_name(const forkpoint_session *s)
{
	return s ? s->info.name : "";
}

pid_t forkpoint_session_pid(const forkpoint_session *s)
{
	return s ? s->info.target_pid : 0;
}

int api_session_request(forkpoint_session *s, const char *req, char *body, size_t len, int timeout_ms,
		forkpoint_error *err)
{
	if (!s)
		return api_fail(err, FORKPOINT_EINVAL, 0, "no session handle");
	fp_error e = { 0 };
	if (api_session_open(s->info.name, &s->info, &e) < 0 ||
	    api_session_call(&s->info, req, body, len, timeout_ms, &e) < 0)
		return api_error(err, &e);
	return 0;
}

int forkpoint_session_snap(forkpoint_session *s, const char *name, forkpoint_snap_result *res,
			   forkpoint_error *err)
{
	forkpoint_info *i;
	if (forkpoint_session_snap_with(s, name, 0, 0, &i, err) < 0)
		return -1;
	if (res) {
		memset(res, 0, sizeof(*res));
		snprintf(res->name, sizeof(res->name), "%s", forkpoint_info_get(i, "name"));
		snprintf(res->dir, sizeof(res->dir), "%s", forkpoint_info_get(i, "dir"));
		res->processes = (int)forkpoint_info_int(i, "processes");
		res->threads = (int)forkpoint_info_int(i, "threads");
		res->pause_ms = forkpoint_info_double(i, "pause_ms");
		res->total_ms = forkpoint_info_double(i, "total_ms");
		res->pages = strtoull(forkpoint_info_get(i, "pages"), NULL, 10);
		res->bytes_written = strtoull(forkpoint_info_get(i, "bytes_written"), NULL, 10);
		res->incremental = (int)forkpoint_info_int(i, "incremental");
		res->pages_parent = strtoull(forkpoint_info_get(i, "pages_parent"), NULL, 10);
		snprintf(res->why_full, sizeof(res->why_full), "%s", forkpoint_info_get(i, "why"));
	}
	forkpoint_info_free(i);
	return 0;
}

int forkpoint_session_restore(forkpoint_session *s, const char *snap, forkpoint_restore_result *res,
			      forkpoint_error *err)
{
	forkpoint_info *i;
	if (api_session_restore_live(s, snap, &i, err) < 0)
		return -1;
	if (res) {
		memset(res, 0, sizeof(*res));
		res->pid = (pid_t)forkpoint_info_int(i, "pid");
		snprintf(res->engine, sizeof(res->engine), "%s", forkpoint_info_get(i, "engine"));
		snprintf(res->fallback, sizeof(res->fallback), "%s", forkpoint_info_get(i, "fallback"));
		res->save_ms = forkpoint_info_double(i, "save_ms");
		res->restore_ms = forkpoint_info_double(i, "restore_ms");
		res->total_ms = forkpoint_info_double(i, "total_ms");
	}
	forkpoint_info_free(i);
	return 0;
}

int forkpoint_session_snapshots(forkpoint_session *s, forkpoint_snapshot **out, forkpoint_error *err)
{
	if (!s || !out)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_snapshots needs a session and a place for the list");
	*out = NULL;
	struct fp_snap_info *si;
	size_t n;
	fp_error e = { 0 };
	api_session_settled(&s->info); /* a snapshot written after an early reply is listed */
	if (fp_snap_list(s->info.dir, false, &si, &n, &e) < 0)
		return api_error(err, &e);
	forkpoint_snapshot *l = calloc(n ? n : 1, sizeof(*l));
	if (!l) {
		free(si);
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(l[i].name, sizeof(l[i].name), "%s", si[i].name);
		l[i].created = si[i].created;
		l[i].pause_ms = si[i].pause_ms;
		l[i].pages = si[i].pages;
		l[i].disk_bytes = si[i].disk_bytes;
		l[i].damaged = si[i].damaged;
		snprintf(l[i].damage, sizeof(l[i].damage), "%s", si[i].damage);
	}
	free(si);
	*out = l;
	return (int)n;
}

void forkpoint_snapshots_free(forkpoint_snapshot *list)
{
	free(list);
}
