/* Work split over two CPUs (dump_int.h): the dump's copies of scattered
 * pages and fdinfo reads, the page-table scans, and every such step of a
 * rollback in place.
 *
 * Both threads take chunks of items from one counter, so a thread that
 * gets less CPU takes fewer chunks. The caller waits for the second
 * thread only while it is inside a chunk, not for it to start or end: on
 * a loaded machine the new thread may get its CPU only after the caller
 * has taken every chunk, and joining it then cost a rollback's stop up to
 * a scheduler time slice for nothing (apply went from 3-8 ms on one CPU
 * to 4-40 ms on two at a load average of 12). A thread that starts after
 * the work is done finds it over and touches nothing of the caller's.
 * (The dump's runner used to join its thread; the rollback's was this
 * one; they are one since 2026-12-07.) */
#include "dump/dump_int.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

struct ctl {
	void (*fn)(void *arg, size_t from, size_t to);
	void *arg;
	size_t n;
	size_t chunk; /* items taken at a time */
	size_t next;  /* the first item no thread took yet */
	int over;     /* the caller is done: take nothing more */
	int inside;   /* the second thread is in a chunk (or deciding) */
	int took;     /* the second thread took a chunk */
	int refs;     /* the caller and the thread: the last frees */
};

static void put(struct ctl *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(c);
}

static void *second(void *arg)
{
	struct ctl *c = arg;
	for (;;) {
		__atomic_store_n(&c->inside, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&c->over, __ATOMIC_SEQ_CST))
			break;
		size_t at = __atomic_fetch_add(&c->next, c->chunk, __ATOMIC_RELAXED);
		if (at >= c->n)
			break;
		__atomic_store_n(&c->took, 1, __ATOMIC_RELAXED);
		c->fn(c->arg, at, at + c->chunk < c->n ? at + c->chunk : c->n);
		__atomic_store_n(&c->inside, 0, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(&c->inside, 0, __ATOMIC_SEQ_CST);
	put(c);
	return NULL;
}

bool dump_other_cpus(cpu_set_t *others)
{
	/* sysconf reads /sys/devices/system/cpu/online each time (4 opens a
	 * snapshot); a CPU gone offline since only makes the second thread
	 * fail to start, and the caller then works alone */
	static _Atomic long ncpu_seen;
	long ncpu = ncpu_seen;
	if (!ncpu)
		ncpu_seen = ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int here = sched_getcpu();
	if (ncpu < 2 || here < 0)
		return false;
	CPU_ZERO(others);
	for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++)
		if (i != here)
			CPU_SET(i, others);
	return true;
}

/* On a CPU other than this one (the dumper sits next to the target while
 * it is stopped), if there is one. */
static bool start(struct ctl *c)
{
	cpu_set_t others;
	if (!dump_other_cpus(&others))
		return false;
	pthread_attr_t at;
	pthread_t th;
	if (pthread_attr_init(&at))
		return false;
	bool ok = pthread_attr_setaffinity_np(&at, sizeof(others), &others) == 0 &&
		  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 && pthread_create(&th, &at, second, c) == 0;
	pthread_attr_destroy(&at);
	return ok;
}

int dump_two_cpus_by(size_t n, size_t chunk, size_t min, void (*fn)(void *arg, size_t from, size_t to), void *arg)
{
	if (!chunk)
		chunk = 1;
	struct ctl *c = n >= min && n > chunk ? calloc(1, sizeof(*c)) : NULL;
	if (c) {
		*c = (struct ctl){ .fn = fn, .arg = arg, .n = n, .chunk = chunk, .refs = 2 };
		if (!start(c)) {
			free(c);
			c = NULL;
		}
	}
	if (!c) {
		fn(arg, 0, n);
		return 1;
	}
	for (;;) {
		size_t at = __atomic_fetch_add(&c->next, chunk, __ATOMIC_RELAXED);
		if (at >= n)
			break;
		fn(arg, at, at + chunk < n ? at + chunk : n);
	}
	__atomic_store_n(&c->over, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&c->inside, __ATOMIC_SEQ_CST))
		sched_yield(); /* its chunk: what it writes or reads must be done */
	int two = __atomic_load_n(&c->took, __ATOMIC_RELAXED) ? 2 : 1;
	put(c);
	return two;
}

#define CHUNK 64
#define MIN_FOR_THREAD 512

int dump_two_cpus(size_t n, void (*fn)(void *arg, size_t from, size_t to), void *arg)
{
	return dump_two_cpus_by(n, CHUNK, MIN_FOR_THREAD, fn, arg);
}

/* Scattered pages (a snap's written pages, a rollback's saved ones) are
 * mostly the kernel's page walk and copy, one range each: read on two
 * CPUs while the process is stopped, as the fdinfo texts are. */
struct memread_job {
	pid_t pid;
	fp_mem_range *rg;
	int failed; /* atomic: the first failure claims err */
	fp_error err;
};

static void read_ranges_some(void *arg, size_t from, size_t to)
{
	struct memread_job *j = arg;
	if (__atomic_load_n(&j->failed, __ATOMIC_RELAXED))
		return;
	fp_error e;
	if (fp_mem_read_ranges(j->pid, j->rg + from, to - from, &e)) {
		int zero = 0;
		if (__atomic_compare_exchange_n(&j->failed, &zero, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			j->err = e;
	}
}

int dump_mem_read_two_cpus(pid_t pid, fp_mem_range *rg, size_t n, fp_error *err)
{
	struct memread_job j = { .pid = pid, .rg = rg };
	dump_two_cpus(n, read_ranges_some, &j);
	if (j.failed) {
		if (err)
			*err = j.err;
		return -1;
	}
	return 0;
}
