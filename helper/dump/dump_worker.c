/* A second thread for a job of the stop, on a CPU the target did not run
 * on (the dumper moves next to the target while it drives it,
 * dump_pin_near).
 *
 * Its job is a share of work taken in pieces from a common counter (the
 * page-table walk of a big run, dump_pages.c), so a thread that starts late
 * or gets less CPU simply takes fewer pieces, and the poster waits only
 * for the pieces it took; the thread is joined after the resume. It is made per job, as the
 * copy's second thread is (dump_two_cpus): a thread parked through the
 * whole stop was tried and lost more than it gained. Spinning from the
 * seize on, it made the `cores`, `uninject` and `files` phases 0.2-0.4 ms
 * longer each (its CPU busy, and the dumper's own memory changes then need
 * that CPU's TLB flushed too); asleep until just before the walk, each
 * hand-over cost a cross-CPU wake-up and `files` grew by 3 ms
 * (bench/results/stoppause-20261205.md). FP_DUMP_NO_WORKER=1: no second
 * thread. */
#include "dump/dump_int.h"
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfs.h"

struct dump_worker {
	cpu_set_t others;
	pthread_t th;
	bool running;
	void (*fn)(void *);
	void *arg;
};

/* This thread's dump's (fp_dump may run on several threads of one process
 * at once: each has its own). */
static __thread struct dump_worker *cur;

static bool worker_wanted(void)
{
	static _Atomic int w = -1;
	if (w < 0) {
		w = !fp_env_flag("FP_DUMP_NO_WORKER");
	}
	return w;
}

void dump_worker_start(struct dump_ctx *c, pid_t near)
{
	if (cur || !worker_wanted())
		return;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 2)
		return;
	struct fp_proc_stat st;
	fp_error e;
	int tcpu = fp_proc_read_stat(near, 0, &st, &e) == 0 ? st.processor : -1;
	cpu_set_t mine;
	if (sched_getaffinity(0, sizeof(mine), &mine))
		return;
	struct dump_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	for (int i = 0; i < ncpu && i < CPU_SETSIZE; i++)
		if (i != tcpu && CPU_ISSET(i, &mine))
			CPU_SET(i, &w->others);
	if (!CPU_COUNT(&w->others)) {
		free(w);
		return;
	}
	cur = w;
	dlogv(c, "a second thread for the stop's walk: off cpu %d", tcpu);
}

void dump_worker_end(void)
{
	struct dump_worker *w = cur;
	if (!w)
		return;
	dump_worker_wait();
	cur = NULL;
	free(w);
}

static void *worker_main(void *arg)
{
	struct dump_worker *w = arg;
	w->fn(w->arg);
	return NULL;
}

bool dump_worker_post(void (*fn)(void *), void *arg)
{
	struct dump_worker *w = cur;
	if (!w)
		return false;
	dump_worker_wait(); /* the last job's thread, long done normally */
	w->fn = fn;
	w->arg = arg;
	pthread_attr_t at;
	if (pthread_attr_init(&at))
		return false;
	w->running = pthread_attr_setaffinity_np(&at, sizeof(w->others), &w->others) == 0 &&
		     pthread_create(&w->th, &at, worker_main, w) == 0;
	pthread_attr_destroy(&at);
	return w->running;
}

void dump_worker_wait(void)
{
	struct dump_worker *w = cur;
	if (!w || !w->running)
		return;
	pthread_join(w->th, NULL);
	w->running = false;
}
