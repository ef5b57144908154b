#include "fp_spawn.h"
#include "fp_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kill_tree.h"

extern char **environ;

/* How long a child may take to disappear after SIGKILL before we give up on
 * reaping it (it is in uninterruptible sleep; the kernel will finish it). */
#define KILL_GRACE_MS 5000

/* SIGCHLD ignored (or SA_NOCLDWAIT) makes the kernel reap our children itself
 * and waitid() fail with ECHILD. While any fp_spawn runs, SIGCHLD is made
 * waitable; the caller's setting comes back when the last one finishes. It
 * must be in place before fork, since a child may exit at once. */
static pthread_mutex_t chld_lock = PTHREAD_MUTEX_INITIALIZER;
static int chld_users;
static int chld_changed;
static struct sigaction chld_saved;

static void chld_acquire(void)
{
	pthread_mutex_lock(&chld_lock);
	if (chld_users++ == 0) {
		struct sigaction cur;
		chld_changed = 0;
		if (sigaction(SIGCHLD, NULL, &cur) == 0) {
			int ignored = !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_IGN;
			if (ignored || (cur.sa_flags & SA_NOCLDWAIT)) {
				struct sigaction fixed = cur;
				if (ignored)
					fixed.sa_handler = SIG_DFL;
				fixed.sa_flags &= ~SA_NOCLDWAIT;
				if (sigaction(SIGCHLD, &fixed, NULL) == 0) {
					chld_saved = cur;
					chld_changed = 1;
				}
			}
		}
	}
	pthread_mutex_unlock(&chld_lock);
}

static void chld_release(void)
{
	pthread_mutex_lock(&chld_lock);
	if (--chld_users == 0 && chld_changed) {
		sigaction(SIGCHLD, &chld_saved, NULL);
		chld_changed = 0;
	}
	pthread_mutex_unlock(&chld_lock);
}

/* If the caller runs with fds 0-2 closed, pipe() can hand those out; they
 * would then be clobbered by the child's dup2 onto 0-2. */
static int fd_above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int saved = errno;
	close(fd);
	errno = saved;
	return n;
}

static void close_if(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void describe(const char *const argv[], char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; argv[i] && used + 1 < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? " " : "", argv[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (used >= len && len > 4)
		memcpy(buf + len - 4, "...", 4);
}

int fp_which(const char *name, char *buf, size_t len, fp_error *err)
{
	if (!name || !*name)
		return fp_fail(err, EINVAL, "empty program name");
	if (strchr(name, '/')) {
		if (snprintf(buf, len, "%s", name) >= (int)len)
			return fp_fail(err, ENAMETOOLONG, "program path too long: %s", name);
		return 0;
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	const char *p = path;
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
		char cand[PATH_MAX];
		/* An empty PATH element means the current directory. */
		int n = dlen ? snprintf(cand, sizeof(cand), "%.*s/%s", (int)dlen, p, name)
			     : snprintf(cand, sizeof(cand), "./%s", name);
		struct stat st;
		if (n > 0 && (size_t)n < sizeof(cand) && stat(cand, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
			if ((size_t)n >= len)
				return fp_fail(err, ENAMETOOLONG, "program path too long: %s", cand);
			memcpy(buf, cand, (size_t)n + 1);
			return 0;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	return fp_fail(err, ENOENT, "cannot find `%s` on PATH (%s)", name, path);
}

/* Between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn))
child_exec(const char *exe, const char *const argv[], char *const envp[], const char *cwd,
	   int devnull, int outw, int errw, int maxfd, bool nofile_up)
{
	struct rlimit rl;
	if (nofile_up && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl); /* as it was where refused */
	}
	/* Every signal is blocked (the parent blocked them around fork), so no
	 * inherited handler can run here before it is reset. The raw syscall
	 * also reaches the two signals glibc reserves for itself (32, 33),
	 * which sigaction() refuses: a launcher may have left them ignored. */
	struct { unsigned long handler, flags, restorer, mask; } dfl = { 0, 0, 0, 0 };
	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP)
			syscall(SYS_rt_sigaction, s, &dfl, NULL, 8);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (dup2(devnull, 0) < 0 || dup2(outw, 1) < 0 || dup2(outw, 2) < 0)
		goto fail;
	if (cwd && chdir(cwd) < 0)
		goto fail;
	/* Nothing but 0-2 survives exec; errw goes away with the rest, which tells
	 * the parent the exec succeeded. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		for (int fd = 3; fd < maxfd; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	execve(exe, (char *const *)argv, envp);
fail:;
	int e = errno;
	ssize_t w = write(errw, &e, sizeof(e));
	(void)w;
	_exit(127);
}

/* Appends n bytes of output, keeping what fits and counting the rest. */
static void keep(char *out, size_t out_len, fp_spawn_result *r, const char *data, size_t n)
{
	if (!out || out_len == 0) {
		r->out_truncated |= n > 0;
		return;
	}
	size_t room = out_len - 1 - r->out_len;
	size_t take = n < room ? n : room;
	memcpy(out + r->out_len, data, take);
	r->out_len += take;
	out[r->out_len] = '\0';
	if (take < n)
		r->out_truncated = 1;
}

/* Reads whatever is available now; returns 0 at EOF (fd closed), 1 otherwise. */
static int drain(int *fd, char *out, size_t out_len, fp_spawn_result *r)
{
	char chunk[8192];
	for (;;) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n > 0) {
			keep(out, out_len, r, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		close_if(fd);
		return 0;
	}
}

int fp_spawn(const char *const argv[], const fp_spawn_opts *opts, char *out, size_t out_len,
	     fp_spawn_result *res, fp_error *err)
{
	fp_spawn_result r;
	memset(&r, 0, sizeof(r));
	r.pid = -1;
	if (res)
		*res = r;
	if (out && out_len)
		out[0] = '\0';
	if (!argv || !argv[0])
		return fp_fail(err, EINVAL, "fp_spawn: empty command");

	int timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : FP_SPAWN_DEFAULT_TIMEOUT_MS;
	char *const *envp = opts && opts->envp ? opts->envp : environ;
	const char *cwd = opts ? opts->cwd : NULL;
	char desc[256];
	describe(argv, desc, sizeof(desc));

	char exe[PATH_MAX];
	if (fp_which(argv[0], exe, sizeof(exe), err) < 0)
		return fp_wrap(err, "cannot run `%s`", desc);

	int devnull = -1, outp[2] = {-1, -1}, errp[2] = {-1, -1}, pidfd = -1;
	int ret = -1;
	devnull = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (devnull < 0) {
		fp_fail(err, errno, "cannot run `%s`: cannot open /dev/null: %s", desc, strerror(errno));
		goto out_fds;
	}
	for (int fd = 0; opts && opts->stdin_tty && fd < 3; fd++)
		if (isatty(fd)) {
			/* `criu restore --shell-job` hands its own terminal on. */
			int t = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (t >= 0) {
				close(devnull);
				devnull = t;
			}
			break;
		}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		fp_fail(err, errno, "cannot run `%s`: pipe: %s (too many open files?)", desc,
			strerror(errno));
		goto out_fds;
	}
	for (int i = 0; i < 2; i++) {
		outp[i] = fd_above_stdio(outp[i]);
		errp[i] = fd_above_stdio(errp[i]);
	}
	if (outp[0] < 0 || outp[1] < 0 || errp[0] < 0 || errp[1] < 0) {
		fp_fail(err, errno, "cannot run `%s`: dup: %s", desc, strerror(errno));
		goto out_fds;
	}
	long maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;

	sigset_t all, old;
	sigfillset(&all);
	chld_acquire();
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		child_exec(exe, argv, envp, cwd, devnull, outp[1], errp[1], (int)maxfd, opts && opts->nofile_up);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		chld_release();
		fp_fail(err, fork_errno, "cannot run `%s`: fork: %s", desc, strerror(fork_errno));
		goto out_fds;
	}
	r.pid = pid;
	close_if(&outp[1]);
	close_if(&errp[1]);
	close_if(&devnull);
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	/* A pidfd becomes readable when the child exits, so one poll covers output
	 * and exit. Without one (old kernel) we poll waitid every 20 ms. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	int exec_errno = 0, poll_errno = 0;
	long long deadline = fp_mono_ms() + timeout_ms;
	int exited = 0;
	for (;;) {
		struct pollfd pf[3];
		int nfds = 0, i_out = -1, i_err = -1, i_pid = -1;
		if (outp[0] >= 0) {
			i_out = nfds;
			pf[nfds++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
		}
		if (errp[0] >= 0) {
			i_err = nfds;
			pf[nfds++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
		}
		if (pidfd >= 0) {
			i_pid = nfds;
			pf[nfds++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
		long long left = deadline - fp_mono_ms();
		if (left <= 0)
			break;
		int wait_ms = left > INT_MAX ? INT_MAX : (int)left;
		if (pidfd < 0 && wait_ms > 20)
			wait_ms = 20;
		int n = poll(pf, (nfds_t)nfds, wait_ms);
		if (n < 0 && errno != EINTR) {
			poll_errno = errno;
			break;
		}
		if (n > 0 && i_out >= 0 && pf[i_out].revents)
			drain(&outp[0], out, out_len, &r);
		if (n > 0 && i_err >= 0 && pf[i_err].revents) {
			int e;
			ssize_t got = read(errp[0], &e, sizeof(e));
			if (got == (ssize_t)sizeof(e))
				exec_errno = e;
			if (got >= 0 || errno != EAGAIN)
				close_if(&errp[0]);
		}
		if (i_pid >= 0) {
			exited = n > 0 && pf[i_pid].revents;
		} else {
			siginfo_t si;
			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
				exited = si.si_pid == pid;
			else if (errno == ECHILD)
				exited = 1; /* reported by the reaping waitid below */
		}
		if (exited) {
			/* What it wrote before exiting is in the pipe; a grandchild
			 * holding the pipe open must not keep us here. */
			if (outp[0] >= 0)
				drain(&outp[0], out, out_len, &r);
			int e;
			if (errp[0] >= 0 && read(errp[0], &e, sizeof(e)) == (ssize_t)sizeof(e))
				exec_errno = e;
			break;
		}
	}

	if (!exited) {
		/* Deadline (or poll failure): kill it, then reap within a grace period. */
		r.timed_out = !poll_errno;
		fp_kill_tree(pid);
		long long grace_end = fp_mono_ms() + KILL_GRACE_MS;
		for (;;) {
			siginfo_t si;
			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
			    si.si_pid == pid)
				break;
			if (fp_mono_ms() > grace_end) {
				fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT,
					     "`%s` did not finish within %.1f s and did not die after "
					     "SIGKILL (pid %d is stuck in the kernel)",
					     desc, timeout_ms / 1000.0, pid);
				r.term_signal = SIGKILL;
				goto out_unlock;
			}
			if (pidfd >= 0) {
				struct pollfd pf = {.fd = pidfd, .events = POLLIN};
				poll(&pf, 1, 50);
			} else {
				struct timespec ts = {0, 10 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
		}
		if (outp[0] >= 0)
			drain(&outp[0], out, out_len, &r);
	}

	siginfo_t si;
	int w;
	do {
		memset(&si, 0, sizeof(si));
		w = waitid(P_PID, (id_t)pid, &si, WEXITED);
	} while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno == ECHILD)
			fp_fail(err, ECHILD,
				"lost the exit status of `%s` (pid %d): status stolen by another "
				"reaper (a SIGCHLD handler or thread in this process called wait() "
				"for it); only wait for children you started",
				desc, pid);
		else
			fp_fail(err, errno, "waiting for `%s` (pid %d): %s", desc, pid, strerror(errno));
		goto out_unlock;
	}
	if (si.si_code == CLD_EXITED) {
		r.exited = 1;
		r.exit_code = si.si_status;
	} else {
		r.term_signal = si.si_status;
	}

	if (poll_errno) {
		fp_fail(err, poll_errno, "waiting for `%s` (pid %d): poll: %s; killed it", desc, pid,
			strerror(poll_errno));
	} else if (r.timed_out) {
		fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT,
			     "`%s` did not finish within %.1f s; killed it and all it started (pid %d)", desc,
			     timeout_ms / 1000.0, pid);
	} else if (exec_errno) {
		fp_fail(err, exec_errno, "cannot run %s: %s%s", exe, strerror(exec_errno),
			exec_errno == ENOEXEC ? " (not a binary and no #! line)" : "");
	} else if (!r.exited) {
		const char *abbrev = sigabbrev_np(r.term_signal);
		fp_fail(err, EINTR, "`%s` was killed by signal %d (SIG%s)", desc, r.term_signal,
			abbrev ? abbrev : "?");
	} else {
		ret = 0;
	}

out_unlock:
	chld_release();
out_fds:
	close_if(&pidfd);
	close_if(&devnull);
	close_if(&outp[0]);
	close_if(&outp[1]);
	close_if(&errp[0]);
	close_if(&errp[1]);
	if (res)
		*res = r;
	return ret;
}
