#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char tree_usage[] =
	"usage: forkpoint tree SESSION [--json]\n"
	"\n"
	"SESSION's snapshots (oldest first, each with its incremental parent and its\n"
	"size on disk) and the branches started from each (`forkpoint branch`), with\n"
	"their own snapshots and branches, as a tree. Snapshots are all cold (on\n"
	"disk), and a snapshot taken with `snap --hot` is also \"hot\" (its\n"
	"processes kept frozen in memory by the session's helper, for fast branches).\n";

/* Every session (forkpoint_sessions_with), each with where it was
 * branched from. */
struct forest {
	forkpoint_info *all;
	size_t n;
};

#define GET(r, k) forkpoint_info_get(r, k)
#define SESSION(f, k) forkpoint_info_item((f)->all, k)

static void print_session(const struct forest *f, size_t k, int json, fp_json *j, int depth);

static int snap_known(const forkpoint_info *snaps, const char *name)
{
	for (size_t i = 0; i < forkpoint_info_items(snaps); i++)
		if (!strcmp(GET(forkpoint_info_item(snaps, i), "name"), name))
			return 1;
	return 0;
}

/* Branches of session k from snapshot snap (NULL: from a snapshot that is gone). */
static void print_branches(const struct forest *f, size_t k, const char *snap, const forkpoint_info *snaps, int json,
			   fp_json *j, int depth)
{
	for (size_t b = 0; b < f->n; b++) {
		const forkpoint_info *s = SESSION(f, b);
		if (strcmp(GET(s, "branch_of"), GET(SESSION(f, k), "name")))
			continue;
		if (snap && strcmp(GET(s, "branch_snap"), snap))
			continue;
		if (!snap && snap_known(snaps, GET(s, "branch_snap")))
			continue;
		if (!json)
			printf("%*sbranch from %s: ", depth * 2, "", GET(s, "branch_snap"));
		print_session(f, b, json, j, depth);
	}
}

static void print_session(const struct forest *f, size_t k, int json, fp_json *j, int depth)
{
	const forkpoint_info *s = SESSION(f, k);
	forkpoint_info *snaps = NULL;
	forkpoint_error err;
	if (forkpoint_snapshots_with(GET(s, "name"), 0, &snaps, &err) < 0)
		snaps = NULL; /* read as none */
	if (json) {
		fp_json_obj_begin(j, NULL);
		fp_json_str(j, "name", GET(s, "name"));
		fp_json_str(j, "state", GET(s, "state"));
		fp_json_int(j, "pid", forkpoint_info_int(s, "pid"));
		fp_json_int(j, "helper_pid", forkpoint_info_int(s, "helper_pid"));
		if (GET(s, "branch_of")[0]) {
			fp_json_obj_begin(j, "branch_of");
			fp_json_str(j, "session", GET(s, "branch_of"));
			fp_json_str(j, "snapshot", GET(s, "branch_snap"));
			fp_json_obj_end(j);
		} else {
			fp_json_str(j, "branch_of", NULL);
		}
		fp_json_arr_begin(j, "snapshots");
	} else {
		printf("%s  %s  pid %s\n", GET(s, "name"), GET(s, "state"), GET(s, "pid"));
	}
	for (size_t i = 0; i < forkpoint_info_items(snaps); i++) {
		const forkpoint_info *n = forkpoint_info_item(snaps, i);
		const char *parent = GET(n, "parent");
		int hot = forkpoint_info_int(n, "hot") != 0, damaged = forkpoint_info_int(n, "damaged") != 0;
		unsigned long long bytes = strtoull(GET(n, "disk_bytes"), NULL, 10);
		if (json) {
			fp_json_obj_begin(j, NULL);
			fp_json_str(j, "name", GET(n, "name"));
			fp_json_str(j, "parent", parent[0] ? parent : NULL);
			fp_json_uint(j, "bytes", bytes);
			fp_json_uint(j, "pages", strtoull(GET(n, "pages"), NULL, 10));
			fp_json_int(j, "created", forkpoint_info_int(n, "created"));
			fp_json_bool(j, "hot", hot);
			fp_json_bool(j, "damaged", damaged);
			fp_json_arr_begin(j, "branches");
		} else {
			printf("%*s%s  %.1f MiB%s%s%s%s\n", depth * 2 + 2, "", GET(n, "name"), (double)bytes / 1048576.0,
			       parent[0] ? "  parent " : "", parent, hot ? "  hot" : "", damaged ? "  DAMAGED" : "");
		}
		print_branches(f, k, GET(n, "name"), snaps, json, j, depth + 2);
		if (json) {
			fp_json_arr_end(j);
			fp_json_obj_end(j);
		}
	}
	if (json) {
		fp_json_arr_end(j);
		fp_json_arr_begin(j, "branches"); /* from snapshots removed since */
	}
	print_branches(f, k, NULL, snaps, json, j, depth + 1);
	if (json) {
		fp_json_arr_end(j);
		fp_json_obj_end(j);
	}
	forkpoint_info_free(snaps);
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
	forkpoint_error err;
	if (forkpoint_sessions_with(FORKPOINT_SESSIONS_ALL, &f.all, &err) < 0)
		return cli_report_api(&err);
	f.n = forkpoint_info_items(f.all);
	size_t root = f.n;
	for (size_t k = 0; k < f.n; k++)
		if (!strcmp(GET(SESSION(&f, k), "name"), name))
			root = k;
	int rc = 0;
	if (root == f.n) {
		fprintf(stderr, "forkpoint: no session named '%s' (see `forkpoint list`)\n", name);
		rc = FORKPOINT_ENOTFOUND;
	} else if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		print_session(&f, root, 1, &j, 0);
		fp_json_finish(&j);
	} else {
		print_session(&f, root, 0, NULL, 0);
	}
	forkpoint_info_free(f.all);
	return rc;
}
