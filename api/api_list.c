/* forkpoint_sessions: the session directories of FORKPOINT_HOME as the
 * public struct. */
#include "api/api_int.h"
#include "api/session_client.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session/session_branch.h"
#include "session/session_hot.h"
#include "session/snapshots.h"

/* The sessions of FORKPOINT_HOME: running ones, or all with
 * FORKPOINT_SESSIONS_ALL. */
static int list(unsigned flags, struct fp_session_info **si, size_t *n, forkpoint_error *err)
{
	if (flags & ~(unsigned)FORKPOINT_SESSIONS_ALL)
		return api_fail(err, FORKPOINT_EINVAL, 0, "listing sessions: unknown flags 0x%x", flags);
	fp_error e = { 0 };
	int rc = (flags & FORKPOINT_SESSIONS_ALL) ? fp_session_list_all(si, n, &e) : fp_session_list(si, n, &e);
	return rc < 0 ? api_error(err, &e) : 0;
}

int forkpoint_sessions(unsigned flags, forkpoint_session_info **out, forkpoint_error *err)
{
	if (!out)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_sessions needs a place for the list");
	*out = NULL;
	struct fp_session_info *si;
	size_t n;
	if (list(flags, &si, &n, err) < 0)
		return -1;
	forkpoint_session_info *l = calloc(n ? n : 1, sizeof(*l));
	if (!l) {
		free(si);
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(l[i].name, sizeof(l[i].name), "%s", si[i].name);
		snprintf(l[i].state, sizeof(l[i].state), "%s", si[i].state);
		l[i].helper_pid = si[i].helper_pid;
		l[i].target_pid = si[i].target_pid;
		l[i].started = si[i].started;
		l[i].detached = si[i].detached;
		l[i].shim = si[i].shim;
		l[i].shell = si[i].shell;
		snprintf(l[i].command, sizeof(l[i].command), "%s", si[i].cmd);
		snprintf(l[i].cwd, sizeof(l[i].cwd), "%s", si[i].cwd);
		snprintf(l[i].workdir, sizeof(l[i].workdir), "%s", si[i].workdir);
	}
	free(si);
	*out = l;
	return (int)n;
}

void forkpoint_sessions_free(forkpoint_session_info *list)
{
	free(list);
}

/* The incremental parent: the `parent` link "../NAME" (a removed parent
 * kept for its children reads ".kept-NAME-N"); "" if none. */
static void snap_parent(const char *dir, char *out, size_t len)
{
	char path[PATH_MAX + 16], link[PATH_MAX];
	snprintf(path, sizeof(path), "%s/parent", dir);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	out[0] = '\0';
	if (n <= 0)
		return;
	link[n] = '\0';
	const char *b = strrchr(link, '/');
	snprintf(out, len, "%s", b ? b + 1 : link);
}

int forkpoint_snapshots_with(const char *name, unsigned flags, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (!name)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_snapshots_with needs a session name");
	struct fp_session_info info;
	struct fp_snap_info *si;
	size_t n;
	fp_error e = { 0 };
	if (fp_session_load(name, &info, &e) < 0)
		return api_error(err, &e);
	api_session_settled(&info);
	if (fp_snap_list(info.dir, flags & FORKPOINT_SNAPSHOTS_VERIFY, &si, &n, &e) < 0)
		return api_error(err, &e);
	bool alive = fp_session_helper_alive(&info);
	forkpoint_info *all = api_info_new();
	for (size_t k = 0; all && k < n; k++) {
		char parent[PATH_MAX];
		snap_parent(si[k].dir, parent, sizeof(parent));
		forkpoint_info *i = api_info_add_item(all);
		if (!i || api_info_set(i, "name", "%s", si[k].name) < 0 || api_info_set(i, "dir", "%s", si[k].dir) < 0 ||
		    api_info_set(i, "created", "%lld", si[k].created) < 0 ||
		    api_info_set(i, "pids", "%s", si[k].pids) < 0 ||
		    api_info_set(i, "compress", "%s", si[k].compress) < 0 ||
		    api_info_set(i, "pause_ms", "%.17g", si[k].pause_ms) < 0 ||
		    api_info_set(i, "total_ms", "%.17g", si[k].total_ms) < 0 ||
		    api_info_set(i, "pages", "%llu", (unsigned long long)si[k].pages) < 0 ||
		    api_info_set(i, "disk_bytes", "%llu", (unsigned long long)si[k].disk_bytes) < 0 ||
		    api_info_set(i, "damaged", "%d", si[k].damaged) < 0 ||
		    api_info_set(i, "damage", "%s", si[k].damage) < 0 || api_info_set(i, "parent", "%s", parent) < 0 ||
		    api_info_set(i, "hot", "%d", alive && fp_hot_listed(info.dir, si[k].name)) < 0) {
			forkpoint_info_free(all);
			all = NULL;
		}
	}
	free(si);
	return api_info_out(all, res, err);
}

int forkpoint_sessions_with(unsigned flags, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	struct fp_session_info *si;
	size_t n;
	if (list(flags, &si, &n, err) < 0)
		return -1;
	forkpoint_info *all = api_info_new();
	for (size_t k = 0; all && k < n; k++) {
		char parent[FP_SESSION_NAME_MAX + 1] = "", snap[FP_SNAP_NAME_MAX + 1] = "";
		fp_session_branch_of(si[k].dir, parent, sizeof(parent), snap, sizeof(snap));
		forkpoint_info *i = api_info_add_item(all);
		if (!i || api_info_set(i, "name", "%s", si[k].name) < 0 || api_info_set(i, "state", "%s", si[k].state) < 0 ||
		    api_info_set(i, "pid", "%d", (int)si[k].target_pid) < 0 ||
		    api_info_set(i, "helper_pid", "%d", (int)si[k].helper_pid) < 0 ||
		    api_info_set(i, "started", "%lld", (long long)si[k].started) < 0 ||
		    api_info_set(i, "command", "%s", si[k].cmd) < 0 || api_info_set(i, "workdir", "%s", si[k].workdir) < 0 ||
		    api_info_set(i, "branch_of", "%s", parent) < 0 || api_info_set(i, "branch_snap", "%s", snap) < 0) {
			forkpoint_info_free(all);
			all = NULL;
		}
	}
	free(si);
	return api_info_out(all, res, err);
}
