#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "paths.h"
#include "session/session_store.h"
#include "session/snapshots.h"
#include "dump/snap_chain.h"
#include "overlay/workspace.h"

static const char rm_usage[] =
	"usage: forkpoint rm SESSION SNAP...\n"
	"\n"
	"Deletes snapshots of a session: their images, and the workspace layers\n"
	"that no other snapshot (and not the running session) still uses. The page\n"
	"data of a snapshot that a later (incremental) snapshot relies on is kept,\n"
	"hidden, until `forkpoint gc` finds no snapshot using it.\n";

static int rm_one(const struct fp_session_info *info, const char *snap, fp_error *err)
{
	if (fp_snap_name_valid(snap, err) < 0)
		return -1;
	char dir[PATH_MAX], gone[PATH_MAX + 32], store[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/snapshots/%s", info->dir, snap);
	snprintf(store, sizeof(store), "%s/workspace", info->dir);
	int has_ws = access(store, F_OK) == 0;
	if (access(dir, F_OK) < 0)
		return fp_fail_code(err, FP_EXIT_NOTFOUND, ENOENT, "session '%s' has no snapshot '%s'",
				    info->name, snap);
	/* Out of every listing first (one rename), then freed at leisure: an
	 * interruption leaves a hidden leftover, never half a snapshot. A
	 * snapshot that is another's parent keeps its data (dump/snap_chain.h). */
	int kept = 0;
	if (fp_snap_retire(info->dir, snap, gone, sizeof(gone), &kept, err) < 0)
		return -1;
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

int cmd_rm(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(rm_usage, stdout);
		return 0;
	}
	if (argc < 3)
		return cli_usage_error(rm_usage, "need a session and at least one snapshot");
	fp_error err;
	struct fp_session_info info;
	if (fp_session_load(argv[1], &info, &err) < 0)
		return cli_report(&err);
	int rc = 0;
	for (int i = 2; i < argc; i++)
		if (rm_one(&info, argv[i], &err) < 0)
			rc = cli_report(&err);
	return rc;
}
