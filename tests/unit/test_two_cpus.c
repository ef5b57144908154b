/* The two-CPU runner of the dump and of rollbacks in place
 * (helper/dump/dump_two_cpus.c): every item is taken exactly once, in
 * chunks of the size asked, whether or not the second thread starts in
 * time, and the caller's data is not touched after it returns. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fp_test.h"
#include "dump/dump_two_cpus.h"

struct job {
	size_t n, chunk;
	_Atomic unsigned char *seen; /* times each item was taken */
	_Atomic int bad_chunk;       /* a call longer than a chunk, or cut */
	_Atomic int calls;
};

static void take(void *arg, size_t from, size_t to)
{
	struct job *j = arg;
	atomic_fetch_add(&j->calls, 1);
	if (to <= from || to - from > j->chunk || (to - from < j->chunk && to != j->n) || from % j->chunk)
		atomic_store(&j->bad_chunk, 1);
	for (size_t i = from; i < to && i < j->n; i++)
		atomic_fetch_add(&j->seen[i], 1);
}

static void run(size_t n, size_t chunk, size_t min)
{
	struct job *j = calloc(1, sizeof(*j));
	j->n = n;
	j->chunk = chunk;
	j->seen = calloc(n ? n : 1, sizeof(*j->seen));
	int threads = dump_two_cpus_by(n, chunk, min, take, j);
	size_t once = 0;
	for (size_t i = 0; i < n; i++)
		once += atomic_load(&j->seen[i]) == 1;
	CHECKF(once == n, "n %zu chunk %zu: %zu of the items taken exactly once", n, chunk, once);
	CHECKF(threads == 1 || threads == 2, "%d threads", threads);
	if (n < min || n <= chunk)
		CHECKF(threads == 1 && atomic_load(&j->calls) == 1, "n %zu below min %zu: %d threads, %d calls", n, min,
		       threads, atomic_load(&j->calls));
	else
		CHECKF(!atomic_load(&j->bad_chunk), "n %zu chunk %zu: a call took other than one chunk", n, chunk);
	/* freed now: a second thread that starts late must find the work
	 * over without reading the job (ASan would catch it) */
	memset(j->seen, 0xa5, n ? n : 1);
	free(j->seen);
	free(j);
}

int main(void)
{
	for (int rep = 0; rep < 200; rep++) {
		run(0, 64, 256);
		run(100, 64, 256);
		run(1000, 64, 256);
		run(1001, 1, 4);
		run(2, 1, 2);
		run(12345, 64, 512);
	}
	return fp_test_done();
}
