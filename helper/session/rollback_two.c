/* Rollback in place: work split over two CPUs (rollback_int.h).
 *
 * As the dump's copies of scattered pages (dump_two_cpus): both threads
 * take chunks of ranges from one counter. But the rollback waits for the
 * second thread only while it is inside a chunk. On a loaded machine the
 * new thread may get its CPU only after the first one has taken every
 * chunk; waiting to join it then cost the rollback's stop up to a
 * scheduler time slice for nothing (apply went from 3-8 ms on one CPU to
 * 4-40 ms on two at a load average of 12). A thread that starts after the
 * work is done finds it over and touches nothing of the caller's. */
#include "session/rollback_int.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "dump/dump_int.h"

#define CHUNK 64
#define MIN_FOR_THREAD 256

struct ctl {
	void (*fn)(void *arg, size_t from, size_t to);
	void *arg;
	size_t n;
	size_t chunk; /* items taken at a time */
	size_t next; /* the first item no thread took yet */
	int over;    /* the caller is done: take nothing more */
	int inside;  /* the second thread is in a chunk (or deciding) */
	int refs;    /* the caller and the thread: the last frees */
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
		c->fn(c->arg, at, at + c->chunk < c->n ? at + c->chunk : c->n);
		__atomic_store_n(&c->inside, 0, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(&c->inside, 0, __ATOMIC_SEQ_CST);
	put(c);
	return NULL;
}

/* On a CPU other than this one, if there is one. */
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

void rb_two_cpus(size_t n, void (*fn)(void *arg, size_t from, size_t to), void *arg)
{
	rb_two_cpus_by(n, CHUNK, MIN_FOR_THREAD, fn, arg);
}

void rb_two_cpus_by(size_t n, size_t chunk, size_t min, void (*fn)(void *arg, size_t from, size_t to), void *arg)
{
	struct ctl *c = n >= min && chunk ? calloc(1, sizeof(*c)) : NULL;
	if (c) {
		*c = (struct ctl){ .fn = fn, .arg = arg, .n = n, .chunk = chunk, .refs = 2 };
		if (!start(c)) {
			free(c);
			c = NULL;
		}
	}
	if (!c) {
		fn(arg, 0, n);
		return;
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
	put(c);
}
