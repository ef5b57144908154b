#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"

static const char branch_usage[] =
	"usage: forkpoint branch SESSION SNAP [--name NAME] [-n K] [--json]\n"
	"\n"
	"Starts K (default 1) new live sessions from snapshot SNAP of SESSION while\n"
	"SESSION keeps running (or after it ended). Each branch is a session of its\n"
	"own (snap, restore, exec, stop, branch work on it), named SESSION-bN by\n"
	"default, or NAME (NAME-1..NAME-K with -n). It runs in its own pid namespace,\n"
	"where its processes keep the snapshot's pids, and its own mount namespace:\n"
	"with a workspace, a fresh upper layer over SNAP's files. Nothing a branch\n"
	"writes, in memory or files, is seen by another branch or by SESSION.\n"
	"Prints each branch's name (with --json its name, pid, the pid inside its\n"
	"namespace, and the time from the command to running). Root only.\n"
	"\n"
	"From a hot snapshot (`snap --hot`) of a running session, each branch's\n"
	"process is forked from the snapshot's frozen copy instead of restored from\n"
	"disk: no page is copied. --json says \"hot\": true, or \"hot_why\" when the\n"
	"snapshot is hot but the branch was restored from disk (a process tree,\n"
	"writable shared memory, a session that is itself a branch). The fork is\n"
	"made ahead, in a spare branch that waits after `snap --hot` and after\n"
	"each branch (K of them after -n K, up to 4): \"spare\": true when one was\n"
	"taken (README, \"Spare branches\").\n"
	"\n"
	"  --name NAME  name of the branch (NAME-1.. with -n K > 1)\n"
	"  -n K         start K branches at once (1..64); all or none\n"
	"  --json       machine-readable output\n";

int cmd_branch(int argc, char **argv)
{
	const char *session = NULL, *snap = NULL, *name = NULL;
	int count = 1, json = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(branch_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--name")) {
			if (++i >= argc)
				return cli_usage_error(branch_usage, "--name needs a value");
			name = argv[i];
		} else if (!strncmp(a, "--name=", 7)) {
			name = a + 7;
		} else if (!strcmp(a, "-n")) {
			char *end;
			if (++i >= argc || (count = (int)strtol(argv[i], &end, 10), *end) || count < 1 ||
			    count > FORKPOINT_BRANCH_MAX)
				return cli_usage_error(branch_usage, "-n needs a number from 1 to %d", FORKPOINT_BRANCH_MAX);
		} else if (a[0] == '-') {
			return cli_usage_error(branch_usage, "unknown option '%s'", a);
		} else if (!session) {
			session = a;
		} else if (!snap) {
			snap = a;
		} else {
			return cli_usage_error(branch_usage, "too many arguments");
		}
	}
	if (!session || !snap)
		return cli_usage_error(branch_usage, "give a session and one of its snapshots");
	forkpoint_error err;
	forkpoint_session *s;
	forkpoint_info *all;
	if (forkpoint_session_open(session, &s, &err) < 0)
		return cli_report_api(&err);
	int rc = forkpoint_session_branch_with(s, snap, name, count, &all, &err);
	forkpoint_session_close(s);
	if (rc < 0)
		return cli_report_api(&err);
	size_t n = forkpoint_info_items(all);
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
		for (size_t i = 0; i < n; i++) {
			const forkpoint_info *b = forkpoint_info_item(all, i);
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "name", forkpoint_info_get(b, "name"));
			fp_json_int(&j, "pid", forkpoint_info_int(b, "pid"));
			fp_json_int(&j, "ns_pid", forkpoint_info_int(b, "ns_pid"));
			fp_json_int(&j, "helper_pid", forkpoint_info_int(b, "helper_pid"));
			fp_json_double(&j, "ms", forkpoint_info_double(b, "ms"));
			fp_json_double(&j, "restore_ms", forkpoint_info_double(b, "restore_ms"));
			fp_json_str(&j, "engine", forkpoint_info_get(b, "engine"));
			int hot = forkpoint_info_int(b, "hot") != 0;
			fp_json_bool(&j, "hot", hot);
			if (hot) {
				fp_json_double(&j, "fork_ms", forkpoint_info_double(b, "fork_ms"));
				fp_json_bool(&j, "spare", forkpoint_info_int(b, "spare") != 0);
			}
			if (forkpoint_info_get(b, "hot_why")[0])
				fp_json_str(&j, "hot_why", forkpoint_info_get(b, "hot_why"));
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", forkpoint_info_get(forkpoint_info_item(all, i), "name"));
	}
	forkpoint_info_free(all);
	return 0;
}
