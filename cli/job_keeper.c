/* `restore -d` on a terminal: the process that restores a job that comes
 * back stopped stays behind as its keeper (why: api/api_job.c), while the
 * command the shell waits for returns. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

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
	forkpoint_error err;
	_exit(forkpoint_job_keep(keep_fd, &err) < 0 ? err.code : 0);
}
