/* The keeper of the jobs that `restore -d` leaves stopped on a terminal
 * (why it must exist: cmd_fg.c). It is their parent, so it alone learns how
 * they end; `forkpoint fg` asks it, over an abstract unix socket named
 * after the keeper's pid, and exits with that status as a shell's fg does.
 * Requests: "PID"; answer: "WAIT_STATUS" once PID is reaped, or "unknown"
 * when PID is not (or no longer) one of its children. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fp_clock.h"
#include "procfs.h"

#define DONE_MAX 64
#define ASK_MAX 8

static pid_t ppid_of(pid_t pid)
{
	struct fp_proc_stat st;
	return fp_proc_read_stat(pid, 0, &st, NULL) < 0 ? -1 : st.ppid;
}

static socklen_t keeper_addr(pid_t keeper, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "forkpoint-job-keeper.%d", (int)keeper);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

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

void cli_job_keep(int keep_fd, bool job_stopped)
{
	if (keep_fd < 0 || !job_stopped)
		return; /* the restored processes go to init, as with any -d */
	fflush(NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd); /* $(forkpoint restore -d) ends; nothing reads the terminal */
	prctl(PR_SET_NAME, "fp-job-keeper");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	struct sockaddr_un sa;
	socklen_t sl = keeper_addr(getpid(), &sa);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ls >= 0 && (bind(ls, (struct sockaddr *)&sa, sl) < 0 || listen(ls, ASK_MAX) < 0)) {
		close(ls);
		ls = -1; /* fg then cannot learn the status, and says so */
	}
	/* Listening before the restore's command returns: fg may follow at once. */
	while (write(keep_fd, "k", 1) < 0 && errno == EINTR)
		;
	close(keep_fd);
	struct keeper *k = calloc(1, sizeof(*k));
	if (!k) {
		while (waitpid(-1, NULL, 0) >= 0 || errno == EINTR)
			;
		_exit(0);
	}
	k->children = 1;
	for (;;) {
		reap(k);
		answer(k);
		if (!k->children && !k->nask)
			break;
		struct pollfd pf[2 + ASK_MAX] = { { .fd = sfd, .events = POLLIN }, { .fd = ls, .events = POLLIN } };
		for (int a = 0; a < k->nask; a++)
			pf[2 + a] = (struct pollfd){ .fd = k->ask[a].fd, .events = POLLIN };
		/* The timeout only bounds a SIGCHLD lost to a full signalfd. */
		if (poll(pf, 2 + (nfds_t)k->nask, 1000) < 0 && errno != EINTR)
			break;
		struct signalfd_siginfo si;
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) > 0)
			;
		if (pf[1].revents & POLLIN)
			on_request(k, ls);
		for (int a = k->nask - 1; a >= 0; a--) {
			if (!pf[2 + a].revents)
				continue;
			close(k->ask[a].fd); /* fg left (its job stopped again) */
			k->ask[a] = k->ask[--k->nask];
		}
	}
	_exit(0);
}

int cli_job_status_open(pid_t pid)
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

int cli_job_status_wait(int fd, int timeout_ms, int *status)
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
