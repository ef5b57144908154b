/* Waiting for ptrace-stops with a deadline. The kernel offers no timed
 * waitpid and a pidfd does not become readable on a stop, so we poll
 * waitpid(WNOHANG) with a short backoff: a stop normally arrives within a
 * few microseconds, and the backoff keeps a slow thread from costing CPU. */
#include "pt_internal.h"

#include <errno.h>
#include <sys/wait.h>
#include <time.h>

int64_t fp_pt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fp_pt_deadline(int timeout_ms)
{
	return fp_pt_now_ns() + (int64_t)timeout_ms * 1000000;
}

void fp_pt_backoff(unsigned round)
{
	/* Poll hard first: a stop normally lands within tens of µs. Do not
	 * sched_yield: with spinning target threads on every CPU, a yield hands
	 * the CPU away for a whole slice (measured: 4x slower seize). Then
	 * sleep, doubling from 1 µs to 1 ms (timer slack adds ~50 µs). */
	if (round < 64)
		return;
	unsigned k = round - 64;
	long ns = 1000L << (k < 10 ? k : 10);
	struct timespec ts = { 0, ns < 1000000 ? ns : 1000000 };
	nanosleep(&ts, NULL);
}

int fp_pt_wait_one(pid_t tid, int64_t deadline_ns, int *status)
{
	for (unsigned round = 0;; round++) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);
		if (r == tid)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (fp_pt_now_ns() >= deadline_ns)
			return 0;
		fp_pt_backoff(round);
	}
}
