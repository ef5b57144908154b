/* Target for the ptrace tests: 8 threads in different states.
 *   main       blocked in pthread_join (futex)
 *   compute x2 spinning on a deterministic hash; every round must match the first
 *   futex x2   blocked in FUTEX_WAIT
 *   sleep x2   looping over 2 ms nanosleeps
 *   reader     blocked in read(0)
 * With argument "idle" the compute threads wait in futex instead; with
 * "churn" one of them creates and joins short-lived threads in a loop.
 * Prints "ready" once all run, then waits for 'q' on stdin. Exits 0 and
 * prints "ok ..." when no thread ever saw a wrong result or an EINTR (a
 * tracer that stops and resumes us must be invisible). */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop, fails, started, rounds, sleeps;
static atomic_int futex_word;
static volatile int rounds_len = 200000; /* volatile: keep the compiler from folding the hash */

static void fail(const char *what, int e)
{
	atomic_fetch_add(&fails, 1);
	dprintf(2, "pt_threads: %s: %s\n", what, strerror(e));
}

static uint64_t hash_round(void)
{
	uint64_t x = 88172645463325252ULL, h = 0;
	for (int i = 0; i < rounds_len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		h += x * (uint64_t)(i | 1);
	}
	return h;
}

static void *compute(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	uint64_t ref = hash_round();
	while (!atomic_load(&stop)) {
		if (hash_round() != ref)
			fail("hash mismatch", 0);
		atomic_fetch_add(&rounds, 1);
	}
	return NULL;
}

static void *futex_waiter(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop)) {
		long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		if (r < 0 && errno != EAGAIN)
			fail("futex wait", errno);
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop)) {
		struct timespec ts = { 0, 2000000 };
		if (nanosleep(&ts, NULL))
			fail("nanosleep", errno);
		atomic_fetch_add(&sleeps, 1);
	}
	return NULL;
}

static void *nothing(void *arg)
{
	return arg;
}

/* Creates and joins short-lived threads as fast as it can, so that a
 * tracer sees threads appear and vanish while it seizes. */
static void *churn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop)) {
		pthread_t t;
		int e = pthread_create(&t, NULL, nothing, NULL);
		if (e) {
			fail("pthread_create", e);
			break;
		}
		pthread_join(t, NULL);
		atomic_fetch_add(&rounds, 1);
	}
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0) {
			fail("read", errno);
			if (errno != EINTR)
				break;
			continue;
		}
		if (r == 0 || c == 'q')
			break;
	}
	atomic_store(&stop, 1);
	atomic_store(&futex_word, 1);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 100, NULL, NULL, 0);
	return NULL;
}

int main(int argc, char **argv)
{
	void *(*fns[7])(void *) = { compute, compute, futex_waiter, futex_waiter, sleeper, sleeper, reader };
	if (argc > 1 && !strcmp(argv[1], "idle")) /* no spinning threads: for cost measurements */
		fns[0] = fns[1] = futex_waiter;
	if (argc > 1 && !strcmp(argv[1], "churn")) /* one thread creating threads all the time */
		fns[1] = churn;
	pthread_t th[7];
	for (int i = 0; i < 7; i++)
		if (pthread_create(&th[i], NULL, fns[i], NULL)) {
			dprintf(2, "pthread_create failed\n");
			return 2;
		}
	while (atomic_load(&started) < 7)
		sched_yield();
	dprintf(1, "ready\n");
	pthread_join(th[6], NULL);
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	dprintf(1, "ok rounds=%d sleeps=%d fails=%d\n", atomic_load(&rounds), atomic_load(&sleeps), atomic_load(&fails));
	return atomic_load(&fails) ? 1 : 0;
}
