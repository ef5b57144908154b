/* dump_threads: a small multi-threaded checkpoint target for the dumper's
 * tests (until ct_threads exists), on the ct_proto.h status-file protocol.
 * 7 workers besides the main thread: 2 computing, 2 in FUTEX_WAIT, 2 in
 * nanosleep loops, 1 blocked in read() on a pipe. A verification pokes every
 * worker and waits (deadline 5 s) for each to make progress, and checks that
 * each worker's thread-local data and name survived.
 *
 *   dump_threads STATUS [common options]
 */
#include "ct_proto.h"

#include <pthread.h>

#define NW 7
enum kind { K_COMPUTE, K_FUTEX, K_SLEEP, K_READ };
static const enum kind kinds[NW] = { K_COMPUTE, K_COMPUTE, K_FUTEX, K_FUTEX, K_SLEEP, K_SLEEP, K_READ };

struct worker {
	pthread_t th;
	int idx;
	uint64_t tick;  /* atomic */
	int word;       /* futex word */
	int bad;        /* a check failed inside the thread */
	uint64_t value; /* compute result, deterministic */
};
static struct worker w[NW];
static __thread uint64_t tls_tag;
static int rpipe[2];

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	tls_tag = 0x1234567800000000ULL | (uint64_t)me->idx;
	char name[16];
	snprintf(name, sizeof(name), "worker-%d", me->idx);
	prctl(PR_SET_NAME, name);
	uint64_t x = (uint64_t)me->idx + 1;
	for (;;) {
		switch (kinds[me->idx]) {
		case K_COMPUTE:
			for (int i = 0; i < 100000; i++)
				x = ct_mix(x);
			break;
		case K_FUTEX:
			while (__atomic_load_n(&me->word, __ATOMIC_SEQ_CST) == 0)
				ct_futex(&me->word, FUTEX_WAIT_PRIVATE, 0, NULL);
			__atomic_store_n(&me->word, 0, __ATOMIC_SEQ_CST);
			break;
		case K_SLEEP: {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			break;
		}
		case K_READ: {
			char b;
			ssize_t r = read(rpipe[0], &b, 1);
			if (r != 1 && !(r < 0 && errno == EINTR))
				me->bad = 1;
			break;
		}
		}
		char now[16] = "";
		prctl(PR_GET_NAME, now);
		if (tls_tag != (0x1234567800000000ULL | (uint64_t)me->idx) || strcmp(now, name))
			me->bad = 1;
		__atomic_fetch_add(&me->tick, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void verify(void)
{
	ct_verify_begin();
	uint64_t t0[NW];
	for (int i = 0; i < NW; i++)
		t0[i] = __atomic_load_n(&w[i].tick, __ATOMIC_SEQ_CST);
	for (int i = 0; i < NW; i++)
		if (kinds[i] == K_FUTEX) {
			__atomic_store_n(&w[i].word, 1, __ATOMIC_SEQ_CST);
			ct_futex(&w[i].word, FUTEX_WAKE_PRIVATE, 1, NULL);
		}
	if (write(rpipe[1], "x", 1) != 1)
		ct_fail("cannot poke the reader thread: %s", strerror(errno));
	int64_t deadline = now_ms() + 5000;
	for (int i = 0; i < NW; i++) {
		while (__atomic_load_n(&w[i].tick, __ATOMIC_SEQ_CST) == t0[i] && now_ms() < deadline) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		if (__atomic_load_n(&w[i].tick, __ATOMIC_SEQ_CST) == t0[i])
			ct_fail("worker %d (kind %d) made no progress in 5 s", i, kinds[i]);
		if (w[i].bad)
			ct_fail("worker %d saw its thread-local data or name change", i);
	}
	ct_verify_end(NULL);
}

int main(int argc, char **argv)
{
	ct.prog = "dump_threads";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: dump_threads STATUS [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "dump_threads: unknown option %s\n", argv[i]);
			return 2;
		}
	(void)ct_info; /* shared helpers this target does not need */
	(void)ct_num_arg;
	ct_setup();
	ct.nthreads = NW + 1;
	if (pipe(rpipe) < 0)
		ct_die("pipe: %s", strerror(errno));
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main thread */
	for (int i = 0; i < NW; i++) {
		w[i].idx = i;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			ct_die("pthread_create failed");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* Wait until every worker has run once (the reader needs a byte). */
	if (write(rpipe[1], "x", 1) != 1)
		ct_die("write: %s", strerror(errno));
	for (int i = 0; i < NW; i++)
		if (kinds[i] == K_FUTEX) {
			__atomic_store_n(&w[i].word, 1, __ATOMIC_SEQ_CST);
			ct_futex(&w[i].word, FUTEX_WAKE_PRIVATE, 1, NULL);
		}
	int64_t deadline = now_ms() + 10000;
	for (int i = 0; i < NW; i++)
		while (!__atomic_load_n(&w[i].tick, __ATOMIC_SEQ_CST)) {
			if (now_ms() > deadline)
				ct_die("worker %d did not start", i);
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	return ct_serve(verify);
}
