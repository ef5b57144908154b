#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "include/forkpoint.h"

static const char stop_usage[] =
	"usage: forkpoint stop [--kill] SESSION\n"
	"\n"
	"Sends SIGTERM (SIGHUP to a shell session's bash) to the session's program,\n"
	"and SIGKILL to every process of the session if it has not ended within\n"
	"5 s (at once with --kill). The session ends with its program: whatever it\n"
	"started (children, grandchildren, setsid daemons) is killed too. Returns\n"
	"when the session has ended.\n";

int cmd_stop(int argc, char **argv)
{
	const char *name = NULL;
	int hard = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kill"))
			hard = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(stop_usage, stdout);
			return 0;
		} else if (argv[i][0] == '-')
			return cli_usage_error(stop_usage, "unknown option '%s'", argv[i]);
		else if (!name)
			name = argv[i];
		else
			return cli_usage_error(stop_usage, "too many arguments");
	}
	if (!name)
		return cli_usage_error(stop_usage, "no session given");
	forkpoint_session *s;
	forkpoint_error err;
	if (forkpoint_session_open(name, &s, &err) < 0)
		return cli_report_api(&err);
	int rc = forkpoint_session_stop(s, hard, &err);
	forkpoint_session_close(s);
	return rc < 0 ? cli_report_api(&err) : 0;
}
