/* Jobs that a detached restore brings back on a terminal: the keeper that
 * stays their parent (forkpoint_job_keep), and forkpoint_job_foreground,
 * which continues one in the foreground as a shell's fg does.
 *
 * The shell the restore was typed in takes its terminal back when the
 * restore returns, so a job that had the terminal's foreground comes back
 * stopped (FORKPOINT_RESTORE_STOP_FOREGROUND_JOB). It needs a parent in its
 * terminal session but outside its own process group: without one the
 * group is orphaned, and the kernel hangs up a stopped orphaned group
 * (SIGHUP, then SIGCONT), and fails its terminal reads with EIO instead of
 * stopping it. The process that restored the job is such a place, so it
 * stays behind as the job's keeper until the job ends. Being the parent,
 * the keeper alone learns how the job ends; the foreground call asks it,
 * over an abstract unix socket named after the keeper's pid.
 * Requests: "PID"; answer: "WAIT_STATUS" once PID is reaped, or "unknown"
 * when PID is not (or no longer) one of its children. */
#include "api/api_int.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "fp_clock.h"
#include "procfs.h"

#define DONE_MAX 64
#define ASK_MAX 8

static pid_t ppid_of(pid_t pid)
{
	struct fp_proc_stat st;
	return fp_proc_read_stat(pid, 0, &st, NULL) < 0 ? -1 : st.ppid;
}

static char state_of(pid_t pid)
{
	struct fp_proc_stat st;
	return fp_proc_read_stat(pid, 0, &st, NULL) < 0 ? 0 : st.state;
}

static socklen_t keeper_addr(pid_t keeper, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "forkpoint-job-keeper.%d", (int)keeper);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

struct keeper {
	struct { pid_t pid; int status; } done[DONE_MAX];
	int ndone;
	struct { int fd; pid_t pid; } ask[ASK_MAX];
	int nask;
	int children; /* 0 once waitpid says there are none */
};

static void reap(struct keeper *k)
{
	int st;
	pid_t w;
	while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
		int i = k->ndone < DONE_MAX ? k->ndone++ : (int)(w % DONE_MAX);
		k->done[i].pid = w;
		k->done[i].status = st;
	}
	if (w < 0 && errno == ECHILD)
		k->children = 0;
}

/* Answers the requests it can: PID was reaped, or is not ours. */
static void answer(struct keeper *k)
{
	for (int a = 0; a < k->nask;) {
		char msg[32] = "";
		for (int i = 0; i < k->ndone && !msg[0]; i++)
			if (k->done[i].pid == k->ask[a].pid)
				snprintf(msg, sizeof(msg), "%d", k->done[i].status);
		if (!msg[0] && (!k->children || getpgid(k->ask[a].pid) < 0 || ppid_of(k->ask[a].pid) != getpid()))
			snprintf(msg, sizeof(msg), "unknown");
		if (!msg[0]) {
			a++;
			continue;
		}
		send(k->ask[a].fd, msg, strlen(msg), MSG_NOSIGNAL);
		close(k->ask[a].fd);
		k->ask[a] = k->ask[--k->nask];
	}
}

static void on_request(struct keeper *k, int ls)
{
	int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	char buf[32];
	ssize_t n = -1;
	struct pollfd pf = { .fd = c, .events = POLLIN };
	/* Only its own user learns how its jobs ended. */
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && (cr.uid == getuid() || cr.uid == 0) &&
	    poll(&pf, 1, 1000) == 1)
		n = recv(c, buf, sizeof(buf) - 1, 0);
	if (n <= 0 || k->nask == ASK_MAX) {
		close(c);
		return;
	}
	buf[n] = '\0';
	k->ask[k->nask].fd = c;
	k->ask[k->nask++].pid = (pid_t)atoi(buf);
}

/* Serves until no child is left and no question is open. */
static void serve(struct keeper *k, int sfd, int ls)
{
	for (;;) {
		reap(k);
		answer(k);
		if (!k->children && !k->nask)
			return;
		struct pollfd pf[2 + ASK_MAX] = { { .fd = sfd, .events = POLLIN }, { .fd = ls, .events = POLLIN } };
		for (int a = 0; a < k->nask; a++)
			pf[2 + a] = (struct pollfd){ .fd = k->ask[a].fd, .events = POLLIN };
		/* The timeout only bounds a SIGCHLD lost to a full signalfd. */
		if (poll(pf, 2 + (nfds_t)k->nask, 1000) < 0 && errno != EINTR)
			return;
		struct signalfd_siginfo si;
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) > 0)
			;
		if (pf[1].revents & POLLIN)
			on_request(k, ls);
		for (int a = k->nask - 1; a >= 0; a--) {
			if (!pf[2 + a].revents)
				continue;
			close(k->ask[a].fd); /* the asker left (its job stopped again) */
			k->ask[a] = k->ask[--k->nask];
		}
	}
}

int forkpoint_job_keep(int ready_fd, forkpoint_error *err)
{
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &chld, &old);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	struct sockaddr_un sa;
	socklen_t sl = keeper_addr(getpid(), &sa);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ls >= 0 && (bind(ls, (struct sockaddr *)&sa, sl) < 0 || listen(ls, ASK_MAX) < 0)) {
		close(ls);
		ls = -1; /* the foreground call then cannot learn the status, and says so */
	}
	/* Listening before the restore's command returns: fg may follow at once. */
	if (ready_fd >= 0) {
		while (write(ready_fd, "k", 1) < 0 && errno == EINTR)
			;
		close(ready_fd);
	}
	struct keeper *k = calloc(1, sizeof(*k));
	int rc = 0;
	if (k) {
		k->children = 1;
		serve(k, sfd, ls);
	} else {
		/* Still the parent the jobs need, only deaf to questions. */
		while (waitpid(-1, NULL, 0) >= 0 || errno == EINTR)
			;
		rc = api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory: the jobs' statuses were not kept");
	}
	free(k);
	if (ls >= 0)
		close(ls);
	if (sfd >= 0)
		close(sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

/* A question to pid's keeper (its parent), before pid is continued: -1
 * when its parent is no keeper. */
static int status_open(pid_t pid)
{
	pid_t keeper = ppid_of(pid);
	if (keeper <= 0)
		return -1;
	struct sockaddr_un sa;
	socklen_t sl = keeper_addr(keeper, &sa);
	int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	char req[32];
	int n = snprintf(req, sizeof(req), "%d", (int)pid);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sl) < 0 || send(c, req, (size_t)n, MSG_NOSIGNAL) < 0) {
		if (c >= 0)
			close(c);
		return -1;
	}
	return c;
}

/* The keeper's answer: 0 with the wait status, -1 when it does not know. */
static int status_wait(int fd, int timeout_ms, int *status)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	long long deadline = fp_mono_ms() + timeout_ms;
	int r;
	while ((r = poll(&pf, 1, (int)(deadline - fp_mono_ms()))) < 0 && errno == EINTR && fp_mono_ms() < deadline)
		;
	char buf[32];
	ssize_t n = r == 1 ? recv(fd, buf, sizeof(buf) - 1, 0) : -1;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (!strcmp(buf, "unknown"))
		return -1;
	*status = atoi(buf);
	return 0;
}

/* Continues pgid in the terminal's foreground and waits until pid ends or
 * stops ('T'); returns its last state (0: gone; -1: err is set). */
static int run_in_foreground(pid_t pid, pid_t pgid, forkpoint_error *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* Taking the terminal back from the background: with SIGTTOU blocked
	 * tcsetpgrp works and no signal is sent (the caller's dispositions
	 * stay as they are). */
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	int s = -1;
	if (tcsetpgrp(STDIN_FILENO, pgid) < 0) {
		api_fail(err, FORKPOINT_EFAIL, errno, "cannot give the terminal to process group %d: %s", (int)pgid,
			 strerror(errno));
		goto out;
	}
	kill(-pgid, SIGCONT); /* a group already running is fine */
	/* Not its parent: the end shows on the pidfd, a stop only in /proc. */
	for (;;) {
		s = state_of(pid);
		if (!s || s == 'Z' || s == 'X' || s == 'T')
			break;
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		if (pidfd >= 0)
			poll(&pf, 1, 20);
		else
			usleep(20000);
	}
	tcsetpgrp(STDIN_FILENO, getpgrp());
out:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pidfd >= 0)
		close(pidfd);
	return s;
}

int forkpoint_job_foreground(pid_t pid, forkpoint_info **res, forkpoint_error *err)
{
	if (res)
		*res = NULL;
	if (pid <= 0)
		return api_fail(err, FORKPOINT_EINVAL, EINVAL, "give the pid of a job (a process > 0), not %d", (int)pid);
	pid_t pgid = getpgid(pid);
	if (pgid < 0)
		return api_fail(err, FORKPOINT_ENOTFOUND, errno, "no process %d", (int)pid);
	if (getsid(pid) != getsid(0))
		return api_fail(err, FORKPOINT_EINVAL, 0,
				"%d belongs to another terminal session; continue it from the shell of its terminal",
				(int)pid);
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) != getpgrp())
		return api_fail(err, FORKPOINT_EINVAL, 0,
				"continuing %d in the foreground needs the foreground of its terminal: run it from "
				"that terminal's shell, not in the background", (int)pid);
	forkpoint_info *r = api_info_new();
	if (!r)
		return api_info_out(NULL, res, err);
	int keeper = status_open(pid);
	int s = run_in_foreground(pid, pgid, err);
	int st = 0, known = 0;
	if (s != 'T' && s != -1)
		known = keeper >= 0 && status_wait(keeper, 5000, &st) == 0;
	if (keeper >= 0)
		close(keeper);
	if (s == -1) {
		forkpoint_info_free(r);
		return -1;
	}
	int code = !known ? 0 : WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
	if (api_info_set(r, "state", "%s", s == 'T' ? "stopped" : "ended") < 0 ||
	    api_info_set(r, "status_known", "%d", known) < 0 || api_info_set(r, "exit_code", "%d", code) < 0) {
		forkpoint_info_free(r);
		r = NULL;
	}
	return api_info_out(r, res, err);
}
