/* The session layer of include/forkpoint.h: starting and attaching, and the
 * requests that are one message to the helper and one answer (snap,
 * restore). Starting is api_start.c, exec api_exec.c; rm, stop and cleanup
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

/* One request to the running helper; body gets the key=value answer. */
static int call(forkpoint_session *s, const char *req, char *body, size_t len, int timeout_ms,
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

static uint64_t kv_u64(const char *body, const char *key)
{
	char v[64];
	return strtoull(api_kv(body, key, v, sizeof(v)), NULL, 10);
}

static double kv_double(const char *body, const char *key)
{
	char v[64];
	return atof(api_kv(body, key, v, sizeof(v)));
}

int forkpoint_session_snap(forkpoint_session *s, const char *name, forkpoint_snap_result *res,
			   forkpoint_error *err)
{
	fp_error e = { 0 };
	if (name && fp_snap_name_valid(name, &e) < 0)
		return api_error(err, &e);
	char req[128], body[4096];
	snprintf(req, sizeof(req), "snap%s%s", name ? " " : "", name ? name : "");
	if (call(s, req, body, sizeof(body), 30 * 60 * 1000, err) < 0)
		return -1;
	if (res) {
		memset(res, 0, sizeof(*res));
		api_kv(body, "name", res->name, sizeof(res->name));
		api_kv(body, "dir", res->dir, sizeof(res->dir));
		res->processes = (int)kv_u64(body, "processes");
		res->threads = (int)kv_u64(body, "threads");
		res->pause_ms = kv_double(body, "pause_ms");
		res->total_ms = kv_double(body, "total_ms");
		res->pages = kv_u64(body, "pages");
		res->bytes_written = kv_u64(body, "bytes_written");
		res->incremental = (int)kv_u64(body, "incremental");
		res->pages_parent = kv_u64(body, "pages_parent");
		api_kv(body, "why", res->why_full, sizeof(res->why_full));
	}
	return 0;
}

int forkpoint_session_restore(forkpoint_session *s, const char *snap, forkpoint_restore_result *res,
			      forkpoint_error *err)
{
	fp_error e = { 0 };
	if (!snap || fp_snap_name_valid(snap, &e) < 0)
		return snap ? api_error(err, &e) : api_fail(err, FORKPOINT_EINVAL, 0, "which snapshot? (none given)");
	char req[128], body[4096];
	snprintf(req, sizeof(req), "restore %s", snap);
	if (call(s, req, body, sizeof(body), 10 * 60 * 1000, err) < 0)
		return -1;
	s->info.target_pid = (pid_t)kv_u64(body, "pid");
	if (res) {
		memset(res, 0, sizeof(*res));
		res->pid = s->info.target_pid;
		api_kv(body, "engine", res->engine, sizeof(res->engine));
		api_kv(body, "fallback", res->fallback, sizeof(res->fallback));
		res->save_ms = kv_double(body, "save_ms");
		res->restore_ms = kv_double(body, "restore_ms");
		res->total_ms = kv_double(body, "total_ms");
	}
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
