#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_internal.h"
#include "cli_json.h"
#include "session/session_branch.h"

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
	"writable shared memory, a session that is itself a branch).\n"
	"\n"
	"  --name NAME  name of the branch (NAME-1.. with -n K > 1)\n"
	"  -n K         start K branches at once (1..64); all or none\n"
	"  --json       machine-readable output\n";

int cmd_branch(int argc, char **argv)
{
	struct fp_branch_opts o = { .count = 1 };
	int json = 0;
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
			o.name = argv[i];
		} else if (!strncmp(a, "--name=", 7)) {
			o.name = a + 7;
		} else if (!strcmp(a, "-n")) {
			char *end;
			if (++i >= argc || (o.count = (int)strtol(argv[i], &end, 10), *end) || o.count < 1 ||
			    o.count > FP_BRANCH_MAX)
				return cli_usage_error(branch_usage, "-n needs a number from 1 to %d", FP_BRANCH_MAX);
		} else if (a[0] == '-') {
			return cli_usage_error(branch_usage, "unknown option '%s'", a);
		} else if (!o.session) {
			o.session = a;
		} else if (!o.snap) {
			o.snap = a;
		} else {
			return cli_usage_error(branch_usage, "too many arguments");
		}
	}
	if (!o.session || !o.snap)
		return cli_usage_error(branch_usage, "give a session and one of its snapshots");
	struct fp_branch_info *b = calloc((size_t)o.count, sizeof(*b));
	if (!b)
		return 1;
	fp_error err;
	if (fp_session_branch(&o, b, &err) < 0) {
		free(b);
		return cli_report(&err);
	}
	if (json) {
		fp_json j;
		fp_json_init(&j, stdout, 1);
		fp_json_arr_begin(&j, NULL);
		for (int i = 0; i < o.count; i++) {
			fp_json_obj_begin(&j, NULL);
			fp_json_str(&j, "name", b[i].name);
			fp_json_int(&j, "pid", b[i].pid);
			fp_json_int(&j, "ns_pid", b[i].ns_pid);
			fp_json_int(&j, "helper_pid", b[i].helper_pid);
			fp_json_double(&j, "ms", b[i].ms);
			fp_json_double(&j, "restore_ms", b[i].restore_ms);
			fp_json_str(&j, "engine", b[i].engine_criu ? "criu" : "native");
			fp_json_bool(&j, "hot", b[i].hot);
			if (b[i].hot)
				fp_json_double(&j, "fork_ms", b[i].fork_ms);
			if (b[i].hot_why[0])
				fp_json_str(&j, "hot_why", b[i].hot_why);
			fp_json_obj_end(&j);
		}
		fp_json_arr_end(&j);
		fp_json_finish(&j);
	} else {
		for (int i = 0; i < o.count; i++)
			printf("%s\n", b[i].name);
	}
	free(b);
	return 0;
}
