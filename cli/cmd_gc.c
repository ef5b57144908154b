#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "cli_json.h"
#include "session/session_store.h"
#include "dump/snap_chain.h"
#include "overlay/workspace.h"

static const char gc_usage[] =
	"usage: forkpoint gc [SESSION...] [--json]\n"
	"\n"
	"Frees workspace layers that no snapshot and no live session uses (after\n"
	"`forkpoint rm`, squashes, restores and interrupted snapshots), and the page\n"
	"data of removed snapshots that no incremental snapshot relies on any more.\n"
	"A layer a snapshot or the running session still needs is never removed.\n"
	"Without SESSION, every session directory is collected.\n";

static int gc_one(const char *name, const char *store, fp_json *j, int *failed)
{
	fp_error err;
	struct fp_ws *ws;
	struct fp_ws_gc_stats st;
	int r = fp_ws_open(store, NULL, &ws, &err);
	if (r == 0) {
		r = fp_ws_gc(ws, &st, &err);
		fp_ws_close(ws);
	}
	if (r < 0) {
		fprintf(stderr, "forkpoint: gc of session '%s': %s\n", name, err.msg);
		*failed = 1;
		return -1;
	}
	if (j) {
		fp_json_obj_begin(j, NULL);
		fp_json_str(j, "session", name);
		fp_json_uint(j, "layers_removed", st.layers_removed);
		fp_json_uint(j, "layers_kept", st.layers_kept);
		fp_json_uint(j, "workdirs_removed", st.workdirs_removed);
		fp_json_obj_end(j);
	} else {
		printf("%s: removed %u layers, kept %u\n", name, st.layers_removed, st.layers_kept);
	}
	return 0;
}

/* Kept parents of incremental snapshots that nothing uses any more
 * (dump/snap_chain.h). */
static void gc_snaps(const char *name, const char *dir, int json, int *failed)
{
	fp_error err;
	unsigned removed, kept;
	if (fp_snap_chain_gc(dir, &removed, &kept, &err) < 0) {
		fprintf(stderr, "forkpoint: gc of session '%s': %s\n", name, err.msg);
		*failed = 1;
	} else if (!json && (removed || kept)) {
		printf("%s: removed %u unused parent snapshots, kept %u\n", name, removed, kept);
	}
}

int cmd_gc(int argc, char **argv)
{
	int json = 0, nnamed = 0, failed = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(gc_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(gc_usage, "unknown option '%s'", argv[i]);
		else
			nnamed++;
	}
	fp_json j;
	if (json) {
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
	}
	fp_error err;
	char dir[PATH_MAX], store[PATH_MAX + 16];
	if (nnamed) {
		for (int i = 1; i < argc; i++) {
			if (argv[i][0] == '-')
				continue;
			if (fp_session_dir(argv[i], dir, sizeof(dir), &err) < 0)
				return cli_report(&err);
			gc_snaps(argv[i], dir, json, &failed);
			snprintf(store, sizeof(store), "%s/workspace", dir);
			if (access(store, F_OK) < 0)
				continue; /* no layers: its snapshots were collected above */
			gc_one(argv[i], store, json ? &j : NULL, &failed);
		}
	} else {
		char root[PATH_MAX];
		if (fp_sessions_root(root, sizeof(root), 0, &err) < 0)
			return cli_report(&err);
		DIR *d = opendir(root);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
			gc_snaps(de->d_name, dir, json, &failed);
			snprintf(store, sizeof(store), "%s/%s/workspace", root, de->d_name);
			if (access(store, F_OK) == 0)
				gc_one(de->d_name, store, json ? &j : NULL, &failed);
		}
		if (d)
			closedir(d);
	}
	if (json) {
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	}
	return failed ? FP_EXIT_FAIL : 0;
}
