/* bench_threads: the 16-thread benchmark workload. Main plus 16 idle workers,
 * each with its own name, __thread data, stack data and a 1 MiB patterned
 * malloc block (so glibc spreads them over several arenas), all blocked in
 * FUTEX_WAIT. Speaks the ct_* status-file protocol (tests/targets/ct_proto.h):
 * "ready PID", then SIGUSR2 -> every worker re-checks its own state and
 * reports, main writes "verify N ok|FAIL". Idle on purpose: a spinning thread
 * would steal one of this machine's two cores from the tool being measured.
 *
 *   bench_threads STATUS [--seed=N] [common ct options]
 */
#include "tests/targets/ct_proto.h"

#include <pthread.h>

#define NWORKERS 16
#define TLS_LEN 512
#define STACK_LEN 4096
#define AREA_LEN (1u << 20)
#define REPLY_TIMEOUT_S 20

struct worker {
	int idx;
	char name[16];
	unsigned char *area;
	char why[160];
	int failed;
	unsigned done; /* last verification this worker reported on */
	pthread_t th;
};

static struct worker workers[NWORKERS];
static int req;     /* futex word: the verification being requested */
static int reports; /* futex word: bumped by every report and start */
static uint64_t seed;
static __thread unsigned char tls_buf[TLS_LEN];

static uint64_t wseed(int idx, unsigned what)
{
	return seed ^ ((uint64_t)idx << 40) ^ ((uint64_t)what << 56);
}

static void bump_reports(void)
{
	__atomic_fetch_add(&reports, 1, __ATOMIC_SEQ_CST);
	ct_futex(&reports, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

static void check_worker(struct worker *w, const unsigned char *stack)
{
	long off;
	w->why[0] = 0;
	w->failed = 0;
	if ((off = ct_check_fill(stack, STACK_LEN, wseed(w->idx, 1))) >= 0)
		w->failed = 1, snprintf(w->why, sizeof(w->why), "stack differs at %ld", off);
	else if ((off = ct_check_fill(tls_buf, TLS_LEN, wseed(w->idx, 2))) >= 0)
		w->failed = 1, snprintf(w->why, sizeof(w->why), "__thread data differs at %ld", off);
	else if ((off = ct_check_fill(w->area, AREA_LEN, wseed(w->idx, 3))) >= 0)
		w->failed = 1, snprintf(w->why, sizeof(w->why), "heap block differs at %ld", off);
	char name[16] = "";
	prctl(PR_GET_NAME, name);
	if (!w->failed && strcmp(name, w->name))
		w->failed = 1, snprintf(w->why, sizeof(w->why), "thread name is '%s'", name);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char stack[STACK_LEN];
	ct_fill(stack, STACK_LEN, wseed(w->idx, 1));
	ct_fill(tls_buf, TLS_LEN, wseed(w->idx, 2));
	prctl(PR_SET_NAME, w->name);
	bump_reports();
	for (;;) {
		unsigned n;
		while ((n = (unsigned)__atomic_load_n(&req, __ATOMIC_ACQUIRE)) == w->done)
			ct_futex(&req, FUTEX_WAIT_PRIVATE, (int)w->done, NULL);
		check_worker(w, stack);
		__atomic_store_n(&w->done, n, __ATOMIC_RELEASE);
		bump_reports();
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until pred(arg) holds or the deadline passes; true if it holds. */
static bool wait_reports(bool (*pred)(unsigned), unsigned arg)
{
	double deadline = now() + REPLY_TIMEOUT_S;
	for (;;) {
		int seen = __atomic_load_n(&reports, __ATOMIC_SEQ_CST);
		if (pred(arg))
			return true;
		if (now() > deadline)
			return false;
		struct timespec ts = { 0, 100000000 };
		ct_futex(&reports, FUTEX_WAIT_PRIVATE, seen, &ts);
	}
}

static bool all_started(unsigned unused)
{
	(void)unused;
	return __atomic_load_n(&reports, __ATOMIC_SEQ_CST) >= NWORKERS;
}

static bool all_done(unsigned n)
{
	for (int i = 0; i < NWORKERS; i++)
		if (__atomic_load_n(&workers[i].done, __ATOMIC_ACQUIRE) != n)
			return false;
	return true;
}

static void verify_workers(const unsigned char *stack)
{
	unsigned n = ct.n;
	long off;
	if ((off = ct_check_fill(stack, STACK_LEN, wseed(99, 1))) >= 0)
		ct_fail("main thread stack differs at %ld", off);
	__atomic_store_n(&req, (int)n, __ATOMIC_RELEASE);
	ct_futex(&req, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	wait_reports(all_done, n);
	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];
		if (__atomic_load_n(&w->done, __ATOMIC_ACQUIRE) != n)
			ct_fail("%s did not report within %d s", w->name, REPLY_TIMEOUT_S);
		else if (w->failed)
			ct_fail("%s: %s", w->name, w->why);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_threads STATUS [--seed=N] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "bench_threads";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long s = 1;
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--seed", &s))
			usage();
	seed = s;
	ct_setup();
	ct.nthreads = NWORKERS + 1;

	unsigned char stack[STACK_LEN];
	ct_fill(stack, STACK_LEN, wseed(99, 1));
	/* Workers block the requests: SIGUSR2 and SIGTERM go to main. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < NWORKERS; i++) {
		struct worker *w = &workers[i];
		w->idx = i;
		snprintf(w->name, sizeof(w->name), "bt-worker%02d", i);
		w->area = malloc(AREA_LEN);
		if (!w->area)
			ct_die("out of memory");
		ct_fill(w->area, AREA_LEN, wseed(i, 3));
		int e = pthread_create(&w->th, NULL, worker_main, w);
		if (e)
			ct_die("pthread_create: %s", strerror(e));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!wait_reports(all_started, 0))
		ct_die("only %d of %d threads started", __atomic_load_n(&reports, __ATOMIC_SEQ_CST), NWORKERS);
	ct_ready();

	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		verify_workers(stack);
		bool ok = ct_verify_end(NULL);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
