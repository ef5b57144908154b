#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char cleanup_usage[] =
	"usage: forkpoint cleanup [--force] [--quiet] SESSION\n"
	"\n"
	"Removes a session completely: its processes are killed (through its\n"
	"helper, as `stop --kill`), its mounts go, and its directory is deleted,\n"
	"snapshots and log included. The name is free afterwards.\n"
	"\n"
	"  --force   also for a half-dead session: a helper that does not answer is\n"
	"            killed; processes left by a killed helper (found by the mark in\n"
	"            their environment and by the session's mount namespace, wherever\n"
	"            they were reparented) are SIGKILLed; mounts that hold the\n"
	"            session's files or pin its mount namespace are detached.\n"
	"            Without --force such leftovers are named and nothing is removed.\n"
	"  --quiet   print nothing on success\n"
	"\n"
	"When something cannot be removed (a process stuck in the kernel, a mount\n"
	"that will not detach), cleanup says which (pid, state, wait channel; mount\n"
	"point) and keeps the directory.\n";

int cmd_cleanup(int argc, char **argv)
{
	const char *name = NULL;
	bool force = false, quiet = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			force = true;
		else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))
			quiet = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(cleanup_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(cleanup_usage, "unknown option '%s'", argv[i]);
		else if (!name)
			name = argv[i];
		else
			return cli_usage_error(cleanup_usage, "too many arguments");
	}
	if (!name)
		return cli_usage_error(cleanup_usage, "no session given");
	forkpoint_info *r;
	forkpoint_error err;
	if (forkpoint_cleanup(name, force ? FORKPOINT_CLEANUP_FORCE : 0, &r, &err) < 0)
		return cli_report_api(&err);
	int helper_killed = forkpoint_info_int(r, "helper_killed") != 0;
	int killed = (int)forkpoint_info_int(r, "killed"), unmounted = (int)forkpoint_info_int(r, "unmounted");
	forkpoint_info_free(r);
	if (!quiet) {
		printf("%s removed", name);
		if (helper_killed || killed || unmounted)
			printf(" (%s%d leftover processes killed, %d mounts detached)",
			       helper_killed ? "helper killed, " : "", killed, unmounted);
		printf("\n");
	}
	return 0;
}
