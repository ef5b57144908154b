#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "cli_json.h"
#include "session/session_store.h"
#include "overlay/workspace.h"

static const char diff_usage[] =
	"usage: forkpoint diff SESSION A B [--json]\n"
	"\n"
	"Lists what changed in the session's workspace (--workdir) from snapshot A\n"
	"to snapshot B, one path per line:\n"
	"  A  added      D  deleted\n"
	"  M  modified, with what: content (bytes or symlink target), mode, owner,\n"
	"     xattr, type (e.g. a file became a directory), mtime (nothing else)\n"
	"Only the layers the two snapshots do not share are read.\n";

/* $SESSION_DIR/workspace, with a clear error when the session has none. */
static int store_of(const char *session, char *buf, size_t len, fp_error *err)
{
	char dir[PATH_MAX];
	if (fp_session_dir(session, dir, sizeof(dir), err) < 0)
		return -1;
	if (access(dir, F_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT, "no session '%s' (see `forkpoint ps`)",
				    session);
	snprintf(buf, len, "%s/workspace", dir);
	if (access(buf, F_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT,
				    "session '%s' has no workspace (it was not started with --workdir)",
				    session);
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	const char *arg[3] = { 0 };
	int nargs = 0, json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(diff_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(diff_usage, "unknown option '%s'", argv[i]);
		else if (nargs < 3)
			arg[nargs++] = argv[i];
		else
			return cli_usage_error(diff_usage, "too many arguments");
	}
	if (nargs < 3)
		return cli_usage_error(diff_usage, "need SESSION, A and B");
	fp_error err;
	char store[PATH_MAX + 16];
	struct fp_ws *ws;
	if (store_of(arg[0], store, sizeof(store), &err) < 0 || fp_ws_open(store, NULL, &ws, &err) < 0)
		return cli_report(&err);
	struct fp_ws_diff_entry *e;
	size_t n;
	int r = fp_ws_diff(ws, arg[1], arg[2], &e, &n, &err);
	fp_ws_close(ws);
	if (r < 0)
		return cli_report(&err);
	if (json) {
		static const struct {
			unsigned bit;
			const char *name;
		} what[] = { { FP_WS_D_TYPE, "type" },   { FP_WS_D_CONTENT, "content" },
			     { FP_WS_D_MODE, "mode" },   { FP_WS_D_OWNER, "owner" },
			     { FP_WS_D_XATTR, "xattr" }, { FP_WS_D_MTIME, "mtime" } };
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_obj_begin(&j, NULL);
		fp_json_str(&j, "session", arg[0]);
		fp_json_str(&j, "from", arg[1]);
		fp_json_str(&j, "to", arg[2]);
		fp_json_arr_begin(&j, "changes");
		for (size_t i = 0; i < n; i++) {
			char c[2] = { e[i].change, 0 }, t[2] = { e[i].type, 0 };
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "change", c);
			fp_json_str(&j, "type", t);
			fp_json_str(&j, "path", e[i].path);
			fp_json_arr_begin(&j, "what");
			for (size_t k = 0; k < sizeof(what) / sizeof(what[0]); k++)
				if (e[i].what & what[k].bit)
					fp_json_str(&j, NULL, what[k].name);
			fp_json_arr_end(&j);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_obj_end(&j);
		fp_json_finish(&j);
	} else {
		fp_ws_diff_print(stdout, e, n);
	}
	fp_ws_diff_free(e, n);
	return 0;
}
