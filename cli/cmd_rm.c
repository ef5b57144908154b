#include <stdio.h>

#include "cli.h"
#include "include/forkpoint.h"

static const char rm_usage[] =
	"usage: forkpoint rm SESSION SNAP...\n"
	"\n"
	"Deletes snapshots of a session: their images, and the workspace layers\n"
	"that no other snapshot (and not the running session) still uses. The page\n"
	"data of a snapshot that a later (incremental) snapshot relies on is kept,\n"
	"hidden, until `forkpoint gc` finds no snapshot using it.\n";

int cmd_rm(int argc, char **argv)
{
	if (cli_wants_help(argc, argv)) {
		fputs(rm_usage, stdout);
		return 0;
	}
	if (argc < 3)
		return cli_usage_error(rm_usage, "need a session and at least one snapshot");
	forkpoint_session *s;
	forkpoint_error err;
	if (forkpoint_session_open(argv[1], &s, &err) < 0)
		return cli_report_api(&err);
	int rc = 0;
	for (int i = 2; i < argc; i++)
		if (forkpoint_session_rm(s, argv[i], &err) < 0)
			rc = cli_report_api(&err);
	forkpoint_session_close(s);
	return rc;
}
