/* A session's files on disk as the public API sees them: garbage
 * collection of workspace layers and parent snapshots, and the difference
 * of two snapshots' workspaces. */
#include "api/api_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dump/snap_chain.h"
#include "overlay/workspace.h"

/* One session directory collected into item it: its unused parent
 * snapshots, then its unused layers. What fails is said in it. */
static int gc_one(const char *name, const char *dir, forkpoint_info *it)
{
	fp_error e = { 0 };
	unsigned removed = 0, kept = 0;
	if (api_info_set(it, "session", "%s", name) < 0)
		return -1;
	if (fp_snap_chain_gc(dir, &removed, &kept, &e) < 0) {
		if (api_info_set(it, "snaps_error", "%s", e.msg) < 0)
			return -1;
	} else if (api_info_set(it, "snaps_removed", "%u", removed) < 0 ||
		   api_info_set(it, "snaps_kept", "%u", kept) < 0) {
		return -1;
	}
	char store[PATH_MAX + 16];
	snprintf(store, sizeof(store), "%s/workspace", dir);
	if (access(store, F_OK) < 0)
		return api_info_set(it, "workspace", "0"); /* no layers: its snapshots were collected above */
	struct fp_ws *ws;
	struct fp_ws_gc_stats st;
	int r = fp_ws_open(store, NULL, &ws, &e);
	if (r == 0) {
		r = fp_ws_gc(ws, &st, &e);
		fp_ws_close(ws);
	}
	if (api_info_set(it, "workspace", "1") < 0)
		return -1;
	if (r < 0)
		return api_info_set(it, "error", "%s", e.msg);
	if (api_info_set(it, "layers_removed", "%u", st.layers_removed) < 0 ||
	    api_info_set(it, "layers_kept", "%u", st.layers_kept) < 0 ||
	    api_info_set(it, "workdirs_removed", "%u", st.workdirs_removed) < 0)
		return -1;
	return 0;
}

int forkpoint_gc(const char *name, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	fp_error e = { 0 };
	char dir[PATH_MAX];
	forkpoint_info *all = api_info_new();
	int oom = !all;
	if (name) {
		if (fp_session_dir(name, dir, sizeof(dir), &e) < 0) {
			forkpoint_info_free(all);
			return api_error(err, &e);
		}
		forkpoint_info *it = all ? api_info_add_item(all) : NULL;
		oom = !it || gc_one(name, dir, it) < 0;
	} else {
		char root[PATH_MAX];
		if (fp_sessions_root(root, sizeof(root), 0, &e) < 0) {
			forkpoint_info_free(all);
			return api_error(err, &e);
		}
		DIR *d = opendir(root);
		struct dirent *de;
		while (!oom && d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
			forkpoint_info *it = api_info_add_item(all);
			oom = !it || gc_one(de->d_name, dir, it) < 0;
		}
		if (d)
			closedir(d);
	}
	if (oom) {
		forkpoint_info_free(all);
		all = NULL;
	}
	return api_info_out(all, res, err);
}

/* $SESSION_DIR/workspace, with a clear error when the session has none. */
static int store_of(const char *session, char *buf, size_t len, fp_error *err)
{
	char dir[PATH_MAX];
	if (fp_session_dir(session, dir, sizeof(dir), err) < 0)
		return -1;
	if (access(dir, F_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT, "no session '%s' (see `forkpoint ps`)", session);
	snprintf(buf, len, "%s/workspace", dir);
	if (access(buf, F_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT,
				    "session '%s' has no workspace (it was not started with --workdir)", session);
	return 0;
}

int forkpoint_session_diff(const char *name, const char *a, const char *b, forkpoint_info **res,
			   forkpoint_error *err)
{
	static const struct {
		unsigned bit;
		const char *name;
	} what[] = { { FP_WS_D_TYPE, "type" }, { FP_WS_D_CONTENT, "content" }, { FP_WS_D_MODE, "mode" },
		     { FP_WS_D_OWNER, "owner" }, { FP_WS_D_XATTR, "xattr" }, { FP_WS_D_MTIME, "mtime" } };
	if (res)
		*res = NULL;
	if (!name || !a || !b)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_session_diff needs a session and two snapshots");
	fp_error e = { 0 };
	char store[PATH_MAX + 16];
	struct fp_ws *ws;
	if (store_of(name, store, sizeof(store), &e) < 0 || fp_ws_open(store, NULL, &ws, &e) < 0)
		return api_error(err, &e);
	struct fp_ws_diff_entry *d;
	size_t n;
	int r = fp_ws_diff(ws, a, b, &d, &n, &e);
	fp_ws_close(ws);
	if (r < 0)
		return api_error(err, &e);
	forkpoint_info *all = api_info_new();
	for (size_t i = 0; all && i < n; i++) {
		char w[64] = "";
		size_t used = 0;
		for (size_t k = 0; k < sizeof(what) / sizeof(what[0]); k++)
			if (d[i].what & what[k].bit)
				used += (size_t)snprintf(w + used, sizeof(w) - used, "%s%s", used ? "," : "", what[k].name);
		forkpoint_info *it = api_info_add_item(all);
		if (!it || api_info_set(it, "change", "%c", d[i].change) < 0 ||
		    api_info_set(it, "type", "%c", d[i].type) < 0 || api_info_set(it, "path", "%s", d[i].path) < 0 ||
		    api_info_set(it, "what", "%s", w) < 0) {
			forkpoint_info_free(all);
			all = NULL;
		}
	}
	fp_ws_diff_free(d, n);
	return api_info_out(all, res, err);
}
