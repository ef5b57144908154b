#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "helper/control.h"
#include "helper/session_store.h"

static const char stop_usage[] =
	"usage: forkpoint stop [--kill] SESSION\n"
	"\n"
	"Sends SIGTERM (or SIGKILL with --kill) to the session's program. The\n"
	"session ends when the program has exited.\n";

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
	struct fp_session_info info;
	fp_error err;
	if (fp_session_load(name, &info, &err) < 0)
		return cli_report(&err);
	if (!fp_session_helper_alive(&info)) {
		fprintf(stderr, "forkpoint: session '%s' is not running\n", name);
		return FP_EXIT_NOTFOUND;
	}
	char sock[PATH_MAX + 16], resp[FP_CTL_MAX_MSG];
	snprintf(sock, sizeof(sock), "%s/control.sock", info.dir);
	if (fp_ctl_request(sock, hard ? "stop kill" : "stop", resp, sizeof(resp), 5000, &err) < 0)
		return cli_report(&err);
	if (strncmp(resp, "ok", 2)) {
		fprintf(stderr, "forkpoint: %s\n", strchr(resp, '\n') ? strchr(resp, '\n') + 1 : resp);
		return 1;
	}
	return 0;
}
