#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_internal.h"
#include "cli_json.h"
#include "session/session_branch.h"
#include "session/snapshots.h"
#include "session/session_hot.h"

static const char tree_usage[] =
	"usage: forkpoint tree SESSION [--json]\n"
	"\n"
	"SESSION's snapshots (oldest first, each with its incremental parent and its\n"
	"size on disk) and the branches started from each (`forkpoint branch`), with\n"
	"their own snapshots and branches, as a tree. Snapshots are all cold (on\n"
	"disk), and a snapshot taken with `snap --hot` is also \"hot\" (its\n"
	"processes kept frozen in memory by the session's helper, for fast branches).\n";

struct forest {
	struct fp_session_info *s;
	size_t n;
	char (*parent)[FP_SESSION_NAME_MAX + 1];
	char (*snap)[FP_SNAP_NAME_MAX + 1];
};

/* The incremental parent: the `parent` link "../NAME" (a removed parent
 * kept for its children reads ".kept-NAME-N"). */
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

static void print_session(const struct forest *f, size_t k, int json, fp_json *j, int depth);

/* Branches of session k from snapshot snap (NULL: from a snapshot that is gone). */
static void print_branches(const struct forest *f, size_t k, const char *snap, struct fp_snap_info *snaps,
			   size_t nsnaps, int json, fp_json *j, int depth)
{
	for (size_t b = 0; b < f->n; b++) {
		if (strcmp(f->parent[b], f->s[k].name))
			continue;
		if (snap && strcmp(f->snap[b], snap))
			continue;
		if (!snap) {
			int known = 0;
			for (size_t i = 0; i < nsnaps; i++)
				known |= !strcmp(snaps[i].name, f->snap[b]);
			if (known)
				continue;
		}
		if (!json)
			printf("%*sbranch from %s: ", depth * 2, "", f->snap[b]);
		print_session(f, b, json, j, depth);
	}
}

static void print_session(const struct forest *f, size_t k, int json, fp_json *j, int depth)
{
	const struct fp_session_info *s = &f->s[k];
	struct fp_snap_info *snaps = NULL;
	size_t nsnaps = 0;
	fp_error err;
	if (fp_snap_list(s->dir, false, &snaps, &nsnaps, &err) < 0)
		nsnaps = 0;
	bool alive = fp_session_helper_alive(s);
	if (json) {
		fp_json_obj_begin(j, NULL);
		fp_json_str(j, "name", s->name);
		fp_json_str(j, "state", s->state);
		fp_json_int(j, "pid", s->target_pid);
		fp_json_int(j, "helper_pid", s->helper_pid);
		if (f->parent[k][0]) {
			fp_json_obj_begin(j, "branch_of");
			fp_json_str(j, "session", f->parent[k]);
			fp_json_str(j, "snapshot", f->snap[k]);
			fp_json_obj_end(j);
		} else {
			fp_json_str(j, "branch_of", NULL);
		}
		fp_json_arr_begin(j, "snapshots");
	} else {
		printf("%s  %s  pid %d\n", s->name, s->state, (int)s->target_pid);
	}
	for (size_t i = 0; i < nsnaps; i++) {
		char parent[PATH_MAX];
		snap_parent(snaps[i].dir, parent, sizeof(parent));
		bool hot = alive && fp_hot_listed(s->dir, snaps[i].name);
		if (json) {
			fp_json_obj_begin(j, NULL);
			fp_json_str(j, "name", snaps[i].name);
			fp_json_str(j, "parent", parent[0] ? parent : NULL);
			fp_json_uint(j, "bytes", snaps[i].disk_bytes);
			fp_json_uint(j, "pages", snaps[i].pages);
			fp_json_int(j, "created", snaps[i].created);
			fp_json_bool(j, "hot", hot);
			fp_json_bool(j, "damaged", snaps[i].damaged);
			fp_json_arr_begin(j, "branches");
		} else {
			printf("%*s%s  %.1f MiB%s%s%s%s\n", depth * 2 + 2, "", snaps[i].name,
			       (double)snaps[i].disk_bytes / 1048576.0, parent[0] ? "  parent " : "", parent,
			       hot ? "  hot" : "", snaps[i].damaged ? "  DAMAGED" : "");
		}
		print_branches(f, k, snaps[i].name, snaps, nsnaps, json, j, depth + 2);
		if (json) {
			fp_json_arr_end(j);
			fp_json_obj_end(j);
		}
	}
	if (json) {
		fp_json_arr_end(j);
		fp_json_arr_begin(j, "branches"); /* from snapshots removed since */
	}
	print_branches(f, k, NULL, snaps, nsnaps, json, j, depth + 1);
	if (json) {
		fp_json_arr_end(j);
		fp_json_obj_end(j);
	}
	free(snaps);
}

int cmd_tree(int argc, char **argv)
{
	const char *name = NULL;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(tree_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(tree_usage, "unknown option '%s'", argv[i]);
		else if (!name)
			name = argv[i];
		else
			return cli_usage_error(tree_usage, "too many arguments");
	}
	if (!name)
		return cli_usage_error(tree_usage, "no session given");
	struct forest f = { 0 };
	fp_error err;
	if (fp_session_list_all(&f.s, &f.n, &err) < 0)
		return cli_report(&err);
	f.parent = calloc(f.n + 1, sizeof(*f.parent));
	f.snap = calloc(f.n + 1, sizeof(*f.snap));
	if (!f.parent || !f.snap)
		return 1;
	size_t root = f.n;
	for (size_t k = 0; k < f.n; k++) {
		fp_session_branch_of(f.s[k].dir, f.parent[k], sizeof(f.parent[k]), f.snap[k], sizeof(f.snap[k]));
		if (!strcmp(f.s[k].name, name))
			root = k;
	}
	int rc = 0;
	if (root == f.n) {
		fp_fail_code(&err, FP_EXIT_NOTFOUND, 0, "no session named '%s' (see `forkpoint list`)", name);
		rc = cli_report(&err);
	} else if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		print_session(&f, root, 1, &j, 0);
		fp_json_finish(&j);
	} else {
		print_session(&f, root, 0, NULL, 0);
	}
	free(f.s);
	free(f.parent);
	free(f.snap);
	return rc;
}
