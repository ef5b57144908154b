/* forkpoint fg: a job that `restore -d` left stopped on this terminal,
 * continued in its foreground (forkpoint_job_foreground). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char fg_usage[] =
	"usage: forkpoint fg PID\n"
	"\n"
	"Continues PID's process group in the foreground of this terminal and waits\n"
	"until PID ends or stops again, as a shell's fg does. It is for jobs that\n"
	"`forkpoint restore -d` brought back on a terminal: one that had its\n"
	"terminal's foreground when it was dumped comes back stopped, so that it\n"
	"shares no keys with the shell the restore was typed in. Run it from that\n"
	"terminal's shell. Exits with PID's status when it has ended (128+N when\n"
	"signal N ended it), 148 when it stopped again.\n";

int cmd_fg(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(fg_usage, stdout);
		return 0;
	}
	char *end;
	long v = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end || v <= 0 || v > 0x3fffffff)
		return cli_usage_error(fg_usage, "give the pid of one process");
	int pid = (int)v;
	forkpoint_info *r;
	forkpoint_error err;
	if (forkpoint_job_foreground(pid, &r, &err) < 0)
		return cli_report_api(&err);
	int stopped = !strcmp(forkpoint_info_get(r, "state"), "stopped");
	int known = (int)forkpoint_info_int(r, "status_known");
	int code = (int)forkpoint_info_int(r, "exit_code");
	forkpoint_info_free(r);
	if (stopped) {
		fprintf(stderr, "\nforkpoint: %d stopped; `forkpoint fg %d` continues it\n", pid, pid);
		return 128 + SIGTSTP;
	}
	if (!known)
		fprintf(stderr, "forkpoint: %d has ended; its exit status is unknown (its parent is not the keeper "
				"that `restore -d` leaves)\n", pid);
	return code;
}
