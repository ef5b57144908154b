#include "hygiene.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fp_sanitize_self(struct fp_inherited_signals *saved)
{
	sigset_t all;
	sigfillset(&all);
	if (saved) {
		sigprocmask(SIG_SETMASK, NULL, &saved->blocked);
		sigemptyset(&saved->ignored);
	}
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct sigaction old;
		if (sigaction(sig, NULL, &old) < 0)
			continue;
		if (saved && old.sa_handler == SIG_IGN)
			sigaddset(&saved->ignored, sig);
		/* the default already: after an exec nearly all are (a call
		 * less each, on every start of the command) */
		if (old.sa_handler == SIG_DFL)
			continue;
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}
}

void fp_restore_inherited_signals(const struct fp_inherited_signals *saved)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = sigismember(&saved->ignored, sig) ? SIG_IGN : SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	sigprocmask(SIG_SETMASK, &saved->blocked, NULL);
}

void fp_close_fds_above_stdio(int keep)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int dfd = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] != '.' && fd > 2 && fd != keep && fd != dfd)
			close(fd);
	}
	closedir(d);
}
