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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "procfs.h"

void cli_job_fork(int *keep_fd)
{
	int p[2];
	*keep_fd = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return; /* restore without a keeper, as before */
	fflush(NULL);
	pid_t c = fork();
	if (c < 0) {
		close(p[0]), close(p[1]);
		return;
	}
	if (c == 0) {
		close(p[0]);
		*keep_fd = p[1];
		return;
	}
	/* The command the shell waits for: it ends when the restore has (the
	 * child's status), or once the child has become the job's keeper. */
	close(p[1]);
	char b;
	ssize_t n;
	while ((n = read(p[0], &b, 1)) < 0 && errno == EINTR)
		;
	if (n == 1)
		_exit(0);
	int st;
	while (waitpid(c, &st, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	if (WIFSIGNALED(st)) {
		signal(WTERMSIG(st), SIG_DFL);
		raise(WTERMSIG(st));
	}
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

void cli_job_keep(int keep_fd, bool job_stopped)
{
	if (keep_fd < 0 || !job_stopped)
		return; /* the restored processes go to init, as with any -d */
	fflush(NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd); /* $(forkpoint restore -d) ends; nothing reads the terminal */
	prctl(PR_SET_NAME, "fp-job-keeper");
	while (write(keep_fd, "k", 1) < 0 && errno == EINTR)
		;
	close(keep_fd);
	while (waitpid(-1, NULL, 0) >= 0 || errno == EINTR)
		;
	_exit(0);
}

static const char fg_usage[] =
	"usage: forkpoint fg PID\n"
	"\n"
	"Continues PID's process group in the foreground of this terminal and waits\n"
	"until PID ends or stops again, as a shell's fg does. It is for jobs that\n"
	"`forkpoint restore -d` brought back on a terminal: one that had its\n"
	"terminal's foreground when it was dumped comes back stopped, so that it\n"
	"shares no keys with the shell the restore was typed in. Run it from that\n"
	"terminal's shell. Exits 0 when PID has ended, 148 when it stopped again.\n";

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
		fprintf(stderr, "\nforkpoint: %d stopped; `forkpoint fg %d` continues it\n", (int)pid, (int)pid);
		return 128 + SIGTSTP;
	}
	return 0;
}
