/* A second thread for the stop, started before it and parked on the CPU
 * the target does not run on.
 *
 * The stop of an incremental snapshot is mostly two kernel walks that split
 * well over two CPUs: the page-table walk (PAGEMAP_SCAN, ~1.3 ms per GiB of
 * present pages) and the copy of the written pages (process_vm_readv). A
 * thread created for each inside the stop costs its creation, its stack's
 * first faults and, above all, a cross-CPU wake-up (~50 us on this VM, see
 * dump_pin_near); this one is made before the seize and spins on a flag
 * while the stop lasts (a few ms), so that handing it a job costs a cache
 * line. When no job comes for a while it sleeps on a futex instead (a
 * stop that lasts, a failed dump), and a job wakes it. It ends after
 * the resume. FP_DUMP_NO_WORKER=1 turns it off (threads made per job, as
 * before). */
#include "dump/dump_int.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"

/* Spinning while waiting: up to the first job (the walk comes ~1-2 ms
 * after the seize), then only briefly (the copy follows the walk within
 * ~0.1 ms). A spinning thread also keeps per-CPU kernel work (a kworker)
 * off its CPU a while: seen as 20 ms in the `files` phase with a 20 ms
 * budget under SCHED_FIFO. */
#define WORKER_SPIN_FIRST_US 5000
#define WORKER_SPIN_AFTER_US 500

enum { W_IDLE, W_JOB, W_RUN, W_DONE, W_QUIT };

struct dump_worker {
	pthread_t th;
	_Atomic int state;  /* W_*: the futex word too */
	_Atomic int asleep; /* on the futex: a job must wake it */
	void (*fn)(void *);
	void *arg;
};

/* The dump running on this thread's worker (fp_dump may run on several
 * threads of one process at once: each has its own). */
static __thread struct dump_worker *cur;

static bool worker_wanted(void)
{
	static _Atomic int w = -1;
	if (w < 0) {
		const char *e = getenv("FP_DUMP_NO_WORKER");
		w = !(e && *e && strcmp(e, "0"));
	}
	return w;
}

static long futex(_Atomic int *addr, int op, int val)
{
	return syscall(SYS_futex, (int *)addr, op, val, NULL, NULL, 0);
}

static void *worker_main(void *arg)
{
	struct dump_worker *w = arg;
	int64_t idle_since = dump_now_ns(), budget = (int64_t)WORKER_SPIN_FIRST_US * 1000;
	for (;;) {
		int s = w->state;
		if (s == W_QUIT)
			return NULL;
		if (s == W_JOB) {
			int j = W_JOB;
			if (!atomic_compare_exchange_strong(&w->state, &j, W_RUN))
				continue; /* taken back: its poster did it all */
			w->fn(w->arg);
			w->state = W_DONE;
			idle_since = dump_now_ns();
			budget = (int64_t)WORKER_SPIN_AFTER_US * 1000;
			continue;
		}
		if (dump_now_ns() - idle_since < budget) {
			__builtin_ia32_pause();
			continue;
		}
		w->asleep = 1;
		if (w->state == s)
			futex(&w->state, FUTEX_WAIT_PRIVATE, s);
		w->asleep = 0;
		idle_since = dump_now_ns();
		budget = (int64_t)WORKER_SPIN_AFTER_US * 1000;
	}
}

void dump_worker_start(struct dump_ctx *c, pid_t near)
{
	if (cur || !worker_wanted())
		return;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 2)
		return;
	/* away from where the target ran: the dumper moves there to drive it */
	struct fp_proc_stat st;
	fp_error e;
	int tcpu = fp_proc_read_stat(near, 0, &st, &e) == 0 ? st.processor : -1;
	cpu_set_t mine, others;
	if (sched_getaffinity(0, sizeof(mine), &mine))
		return;
	CPU_ZERO(&others);
	for (int i = 0; i < ncpu && i < CPU_SETSIZE; i++)
		if (i != tcpu && CPU_ISSET(i, &mine))
			CPU_SET(i, &others);
	if (!CPU_COUNT(&others))
		return;
	struct dump_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return;
	pthread_attr_t at;
	if (pthread_attr_init(&at)) {
		free(w);
		return;
	}
	bool ok = pthread_attr_setaffinity_np(&at, sizeof(others), &others) == 0 &&
		  pthread_create(&w->th, &at, worker_main, w) == 0;
	pthread_attr_destroy(&at);
	if (!ok) {
		free(w);
		return;
	}
	cur = w;
	dlogv(c, "a second thread for the stop, off cpu %d", tcpu);
}

void dump_worker_end(void)
{
	struct dump_worker *w = cur;
	if (!w)
		return;
	cur = NULL;
	w->state = W_QUIT;
	futex(&w->state, FUTEX_WAKE_PRIVATE, 1);
	pthread_join(w->th, NULL);
	free(w);
}

bool dump_worker_post(void (*fn)(void *), void *arg)
{
	struct dump_worker *w = cur;
	if (!w || w->state != W_IDLE)
		return false;
	w->fn = fn;
	w->arg = arg;
	w->state = W_JOB;
	if (w->asleep)
		futex(&w->state, FUTEX_WAKE_PRIVATE, 1);
	return true;
}

void dump_worker_wait(void)
{
	struct dump_worker *w = cur;
	if (!w)
		return;
	/* Not begun yet (its CPU busy with something else): taken back, the
	 * job's work being shared (the caller did it all). */
	int j = W_JOB;
	if (atomic_compare_exchange_strong(&w->state, &j, W_IDLE))
		return;
	while (w->state == W_RUN)
		__builtin_ia32_pause();
	if (w->state == W_DONE)
		w->state = W_IDLE;
}
