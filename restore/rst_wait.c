/* Waiting for a stop of a process being restored, asleep rather than
 * polling, with a deadline.
 *
 * Why: a restore is hundreds of ptrace round trips. fp_pt_wait_one polls
 * waitpid and then sleeps in growing steps, which on this machine makes a
 * round trip cost 50-170 µs, most of it timer slack and spinning; sleeping
 * until the kernel says the tracee stopped costs about 35 µs
 * (machine-limits.md §2 and §4). The kernel has no timed waitpid, but every
 * ptrace-stop of a tracee sends SIGCHLD to the tracer: with SIGCHLD blocked
 * in this thread, sigtimedwait sleeps until it comes or the deadline passes,
 * and waitpid(WNOHANG) then collects the stop.
 *
 * SIGCHLD is blocked only between rst_wait_begin and rst_wait_end (the
 * native restore), in the restoring thread and in the threads it starts.
 * A SIGCHLD this takes that says some child exited (not one of our tracees
 * stopping) is sent again at the end, so a caller's handler or signalfd
 * still hears of it. If SIGCHLD does not come (the caller ignores it or set
 * SA_NOCLDSTOP, or another thread took it) the wait re-checks every 2 ms:
 * slower, never stuck. */
#include "restore/rst_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ptrace/pt_internal.h"

#define RECHECK_NS 2000000LL

static __thread int depth;
static __thread sigset_t saved_mask;
static __thread bool saw_exit;

void rst_wait_begin(void)
{
	if (depth++ > 0)
		return;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	saw_exit = false;
	pthread_sigmask(SIG_BLOCK, &chld, &saved_mask);
}

static void note(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED || si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED)
		saw_exit = true;
}

void rst_wait_end(void)
{
	if (depth <= 0 || --depth > 0)
		return;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&chld, &si, &zero) == SIGCHLD)
		note(&si);
	pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
	if (saw_exit)
		kill(getpid(), SIGCHLD);
}

int rst_wait(pid_t tid, int64_t deadline_ns, int *status)
{
	if (depth <= 0)
		return fp_pt_wait_one(tid, deadline_ns, status);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);
		if (r == tid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		long long left = deadline_ns - rst_now_ns();
		if (left <= 0)
			return 0;
		if (left > RECHECK_NS)
			left = RECHECK_NS;
		struct timespec ts = { 0, (long)left };
		siginfo_t si;
		if (sigtimedwait(&chld, &si, &ts) == SIGCHLD)
			note(&si);
	}
}
