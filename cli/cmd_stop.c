#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "session/control.h"
#include "session/session_store.h"

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
	/* The helper kills the rest of the tree within 5 s, then reaps it
	 * (up to 10 s for processes stuck in the kernel). */
	struct timespec pause = { 0, 2000000 };
	for (int i = 0; i < 10000 && fp_session_helper_alive(&info); i++)
		nanosleep(&pause, NULL);
	if (fp_session_helper_alive(&info)) {
		fprintf(stderr, "forkpoint: session '%s' (helper %d) has not ended within 20 s; "
				"see `forkpoint inspect %s` for what still runs\n", name, (int)info.helper_pid, name);
		return FP_EXIT_TIMEOUT;
	}
	return 0;
}
