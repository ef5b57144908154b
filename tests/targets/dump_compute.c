/* dump_compute: a deterministic computation for the --leave-running tests
 * (until ct_compute exists). Two threads advance hash chains through a
 * 16 MiB buffer they also write, in lock step per round. A verification
 * parks both threads at a round boundary, recomputes everything from the
 * seed up to that round in a fresh buffer and compares: the result does not
 * depend on timing, so any corruption by a dump (a register, a page, a
 * lost wake-up) shows as a mismatch. "verify N ok round=R result=H".
 *
 * After --rounds=N rounds (default 20000) the threads idle, and the status
 * file gets "finished round=N".
 *
 *   dump_compute STATUS [--rounds=N] [--sleep-us=N] [common options]
 */
#include "ct_proto.h"

#include <pthread.h>

#define WORDS (2u << 20) /* 16 MiB of uint64_t */
#define STEPS 512       /* per thread per round */

static uint64_t *buf;
static uint64_t chain[2];
static uint64_t round_no;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int parked, park_req, done_in_round;
static uint64_t max_rounds = 20000;
static unsigned long long sleep_us; /* per round, so a long run costs little CPU */

static void step(uint64_t *b, uint64_t *c, int t, uint64_t r)
{
	uint64_t x = *c;
	for (unsigned i = 0; i < STEPS; i++) {
		uint64_t idx = (x ^ (r * 2654435761u) ^ (uint64_t)t) % (WORDS / 2) * 2 + (uint64_t)t;
		x = ct_mix(x ^ b[idx]);
		b[idx] = x;
	}
	*c = x;
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint64_t my_round = 0;
	for (;;) {
		step(buf, &chain[t], t, my_round);
		if (sleep_us) {
			struct timespec ts = { (time_t)(sleep_us / 1000000), (long)(sleep_us % 1000000) * 1000 };
			nanosleep(&ts, NULL);
		}
		pthread_mutex_lock(&mu);
		my_round++;
		/* A barrier per round; the thread that completes it parks both
		 * (at the same round) when a verification asked for it. */
		if (++done_in_round == 2) {
			done_in_round = 0;
			round_no++;
			if (round_no == max_rounds)
				ct_line("finished round=%llu", (unsigned long long)round_no);
			if (park_req)
				parked = 1;
			pthread_cond_broadcast(&cv);
		}
		while (round_no < my_round || parked || round_no >= max_rounds)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void verify(void)
{
	ct_verify_begin();
	pthread_mutex_lock(&mu);
	park_req = 1;
	while (!parked && round_no < max_rounds)
		pthread_cond_wait(&cv, &mu);
	uint64_t rounds = round_no;
	uint64_t *ref = calloc(WORDS, sizeof(uint64_t));
	uint64_t c[2] = { 1, 2 };
	if (!ref)
		ct_fail("out of memory");
	else {
		for (uint64_t r = 0; r < rounds; r++)
			for (int t = 0; t < 2; t++)
				step(ref, &c[t], t, r);
		if (c[0] != chain[0] || c[1] != chain[1])
			ct_fail("round %llu: chains %llx %llx, expected %llx %llx", (unsigned long long)rounds,
				(unsigned long long)chain[0], (unsigned long long)chain[1], (unsigned long long)c[0],
				(unsigned long long)c[1]);
		else if (memcmp(ref, buf, WORDS * sizeof(uint64_t)))
			ct_fail("round %llu: the buffer differs from the recomputation", (unsigned long long)rounds);
		free(ref);
	}
	park_req = 0;
	parked = 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	char extra[96];
	snprintf(extra, sizeof(extra), "round=%llu result=%016llx", (unsigned long long)rounds,
		 (unsigned long long)(chain[0] ^ chain[1]));
	ct_verify_end(extra);
}

int main(int argc, char **argv)
{
	ct.prog = "dump_compute";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: dump_compute STATUS [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--rounds", (unsigned long long *)&max_rounds) &&
		    !ct_num_arg(argv[i], "--sleep-us", &sleep_us)) {
			fprintf(stderr, "dump_compute: unknown option %s\n", argv[i]);
			return 2;
		}
	(void)ct_info;
	ct_setup();
	ct.nthreads = 3;
	buf = calloc(WORDS, sizeof(uint64_t));
	if (!buf)
		ct_die("out of memory");
	chain[0] = 1;
	chain[1] = 2;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t th[2];
	for (int t = 0; t < 2; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t))
			ct_die("pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ct_serve(verify);
}
