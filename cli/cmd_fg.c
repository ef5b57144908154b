/* Jobs that `restore -d` brings back on a terminal: the keeper that stays
 * their parent, and `forkpoint fg`, which continues one in the foreground.
 *
 * The shell the restore was typed in takes its terminal back when the
 * restore returns, so a job that had the terminal's foreground comes back
 * stopped (restore.h, stop_foreground_job). It needs a parent in its
 * terminal session but outside its own process group: without one the
 * group is orphaned, and the kernel hangs up a stopped orphaned group
 * (SIGHUP, then SIGCONT), and fails its terminal reads with EIO instead of
 * stopping it. The restore's own process group is such a place, so the
 * process that restored the job stays behind as its keeper, silent and
 * off the terminal, until the job ends. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "procfs.h"

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

static char proc_state(pid_t pid)
{
	struct fp_proc_stat st;
	return fp_proc_read_stat(pid, 0, &st, NULL) < 0 ? 0 : st.state;
}

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
	pid_t pid = (pid_t)v;
	pid_t pgid = getpgid(pid);
	if (pgid < 0) {
		fprintf(stderr, "forkpoint: no process %d\n", (int)pid);
		return 1;
	}
	if (getsid(pid) != getsid(0)) {
		fprintf(stderr, "forkpoint: %d belongs to another terminal session; run `forkpoint fg %d` from the shell "
				"of its terminal\n", (int)pid, (int)pid);
		return 1;
	}
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp()) {
		fprintf(stderr, "forkpoint: fg needs the foreground of %d's terminal: run it from that terminal's shell, "
				"not in the background\n", (int)pid);
		return 1;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int keeper = cli_job_status_open(pid);
	signal(SIGTTOU, SIG_IGN); /* taking the terminal back from the background */
	if (tcsetpgrp(STDIN_FILENO, pgid) < 0) {
		fprintf(stderr, "forkpoint: cannot give the terminal to group %d: %s\n", (int)pgid, strerror(errno));
		return 1;
	}
	if (kill(-pgid, SIGCONT) < 0)
		fprintf(stderr, "forkpoint: cannot continue group %d: %s\n", (int)pgid, strerror(errno));
	/* Not its parent: the end shows on the pidfd, a stop only in /proc. */
	char s;
	for (;;) {
		s = proc_state(pid);
		if (!s || s == 'Z' || s == 'X' || s == 'T')
			break;
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		if (pidfd >= 0)
			poll(&pf, 1, 20);
		else
			usleep(20000);
	}
	tcsetpgrp(STDIN_FILENO, getpgrp());
	if (s == 'T') {
		if (keeper >= 0)
			close(keeper);
		fprintf(stderr, "\nforkpoint: %d stopped; `forkpoint fg %d` continues it\n", (int)pid, (int)pid);
		return 128 + SIGTSTP;
	}
	int st;
	int known = keeper >= 0 && cli_job_status_wait(keeper, 5000, &st) == 0;
	if (keeper >= 0)
		close(keeper);
	if (!known) {
		fprintf(stderr, "forkpoint: %d has ended; its exit status is unknown (its parent is not the keeper "
				"that `restore -d` leaves)\n", (int)pid);
		return 0;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
}
