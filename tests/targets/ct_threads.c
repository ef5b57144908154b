/* ct_threads: main plus 8 threads in different states:
 *   ct-compute0/1  spinning on arithmetic with a known invariant
 *   ct-futex0/1    blocked in FUTEX_WAIT (0: private, 1: shared futex)
 *   ct-sleep0/1    in long sleeps (0: nanosleep, 1: absolute clock_nanosleep
 *                  on CLOCK_MONOTONIC), re-armed in a loop, so a restore may
 *                  resume them mid-sleep or make them return EINTR
 *   ct-read0/1     blocked in read() on a pipe, each its own
 * Each thread has its own signal mask, alternate signal stack, name,
 * __thread data and stack data. At a verification the main thread wakes each
 * thread the way its state needs (futex word + FUTEX_WAKE, one byte per
 * reader pipe, a SIGUSR1 to the sleepers, found by thread name since tids may
 * change in a restore; the computing threads poll) and waits for every
 * thread's own report; it then waits until every thread is back in its
 * waiting system call before writing the verify line, so a checkpoint taken
 * after any "ready" or "verify" line sees every thread in its shape.
 *
 *   ct_threads STATUS [--seed=N] [common options]
 */
#include "ct_proto.h"

#include <pthread.h>
#include <sys/mman.h>

#define NWORKERS 8
#define TLS_LEN 512
#define STACK_LEN 2048
#define ALTSTACK_LEN (64 * 1024)
#define REPLY_TIMEOUT_S 20

enum role { COMPUTE, FUTEX, SLEEP, READ };
static const char *const role_names[] = { "compute", "futex", "sleep", "read" };

struct slot {
	int idx;
	enum role role;
	int k; /* 0 or 1 within the role */
	char name[16];
	sigset_t mask;
	pid_t tid0, tid;     /* at setup, at the last report */
	unsigned done;       /* last verification this thread reported on */
	int failed;
	char why[256];
	char sticky[160];    /* something that happened between verifications */
	int pipe[2];         /* readers */
	int fword;           /* futex waiters */
	uint64_t progress;   /* computing threads: iterations at the last report */
	void *altstack;
	unsigned char *tls_addr, *stack_addr;
	pthread_t th;
};

static struct slot slots[NWORKERS];
static unsigned req;       /* the verification being requested */
static int reports;        /* futex word: bumped by every report */
static int started;
static uint64_t seed;
static __thread unsigned char tls_buf[TLS_LEN];
static __thread uint64_t tls_tag;

static const uint64_t LCG_A = 6364136223846793005ULL, LCG_C = 1442695040888963407ULL;

/* x after n steps of x = A*x + C, in O(log n). */
static uint64_t lcg_skip(uint64_t x, uint64_t n)
{
	uint64_t a = LCG_A, c = LCG_C, am = 1, cm = 0;
	while (n) {
		if (n & 1) {
			am *= a;
			cm = cm * a + c;
		}
		c *= a + 1;
		a *= a;
		n >>= 1;
	}
	return am * x + cm;
}

static inline unsigned char reader_byte(unsigned n, int idx)
{
	return (unsigned char)(ct_mix(seed ^ ((uint64_t)n << 8) ^ (uint64_t)idx) | 1);
}

__attribute__((format(printf, 2, 3))) static void slot_fail(struct slot *s, const char *fmt, ...)
{
	size_t len = strlen(s->why);
	if (len + 8 >= sizeof(s->why))
		return;
	if (len)
		len += (size_t)snprintf(s->why + len, sizeof(s->why) - len, ", ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why + len, sizeof(s->why) - len, fmt, ap);
	va_end(ap);
	s->failed = 1;
}

/* The checks every thread makes on itself, then its report to main. */
static void thread_report(struct slot *s, const unsigned char *stack, unsigned n)
{
	pid_t tid = ct_gettid();
	if (ct.opt_same_pid && tid != s->tid0)
		slot_fail(s, "tid changed from %d to %d", (int)s->tid0, (int)tid);
	long off;
	if (tls_tag != ct_mix(seed ^ (uint64_t)s->idx))
		slot_fail(s, "__thread tag differs");
	if ((off = ct_check_fill(tls_buf, TLS_LEN, seed ^ ((uint64_t)s->idx << 32))) >= 0)
		slot_fail(s, "__thread data differs at %ld", off);
	if (tls_buf != s->tls_addr)
		slot_fail(s, "__thread data moved from %p to %p", (void *)s->tls_addr, (void *)tls_buf);
	if ((off = ct_check_fill(stack, STACK_LEN, seed ^ ((uint64_t)s->idx << 40))) >= 0)
		slot_fail(s, "stack data differs at %ld", off);
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&cur, sig) != sigismember(&s->mask, sig)) {
			slot_fail(s, "signal %d is %sblocked", sig, sigismember(&cur, sig) ? "" : "un");
			break;
		}
	char name[16] = "";
	prctl(PR_GET_NAME, name);
	if (strcmp(name, s->name))
		slot_fail(s, "thread name is '%s'", name);
	stack_t ss;
	if (sigaltstack(NULL, &ss) < 0 || ss.ss_sp != s->altstack || ss.ss_size != ALTSTACK_LEN)
		slot_fail(s, "alternate signal stack is %p+%zu, expected %p+%d", ss.ss_sp, ss.ss_size, s->altstack,
			  ALTSTACK_LEN);
	if (ct.rseq_usable) {
		int e = ct_rseq_probe();
		if (e != EBUSY)
			slot_fail(s, "rseq area %s", e == 0 ? "was not registered" : strerror(e));
	}
	if (s->sticky[0])
		slot_fail(s, "%s", s->sticky);
	s->tid = tid;
	__atomic_store_n(&s->done, n, __ATOMIC_RELEASE);
	__atomic_fetch_add(&reports, 1, __ATOMIC_SEQ_CST);
	ct_futex(&reports, FUTEX_WAKE_PRIVATE, 1, NULL);
}

static void on_usr1(int sig)
{
	(void)sig; /* only interrupts a sleeper */
}

static void run_compute(struct slot *s, const unsigned char *stack)
{
	uint64_t start = ct_mix(seed ^ (uint64_t)s->idx), x = start, i = 0, sum = 0;
	double f = 0;
	for (;;) {
		for (int k = 0; k < 65536; k++) {
			i++;
			x = x * LCG_A + LCG_C;
			sum += i;
			f += 1.0;
		}
		unsigned n = __atomic_load_n(&req, __ATOMIC_ACQUIRE);
		if (n == s->done)
			continue;
		s->why[0] = 0;
		s->failed = 0;
		if (x != lcg_skip(start, i))
			slot_fail(s, "generator state lost after %" PRIu64 " steps", i);
		if (sum != (i % 2 ? (i + 1) / 2 * i : i / 2 * (i + 1)))
			slot_fail(s, "sum %" PRIu64 " is not the sum of 1..%" PRIu64, sum, i);
		if (i < (1ULL << 53) && f != (double)i)
			slot_fail(s, "floating-point counter %.0f, expected %" PRIu64, f, i);
		if (i <= s->progress)
			slot_fail(s, "no progress since the last verification");
		s->progress = i;
		thread_report(s, stack, n);
	}
}

static void run_futex(struct slot *s, const unsigned char *stack)
{
	int op = s->k == 0 ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT;
	for (;;) {
		int seen = (int)s->done;
		while (__atomic_load_n(&s->fword, __ATOMIC_ACQUIRE) == seen)
			ct_futex(&s->fword, op, seen, NULL);
		unsigned n = __atomic_load_n(&req, __ATOMIC_ACQUIRE);
		int w = __atomic_load_n(&s->fword, __ATOMIC_ACQUIRE);
		s->why[0] = 0;
		s->failed = 0;
		if ((unsigned)w != n || n != s->done + 1)
			slot_fail(s, "woken with futex word %d, request %u, last %u", w, n, s->done);
		thread_report(s, stack, n);
	}
}

static void run_sleep(struct slot *s, const unsigned char *stack)
{
	for (;;) {
		if (s->k == 0) {
			struct timespec ts = { 3600, 0 };
			syscall(SYS_nanosleep, &ts, NULL);
		} else {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 3600;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
		unsigned n = __atomic_load_n(&req, __ATOMIC_ACQUIRE);
		if (n == s->done)
			continue; /* interrupted (by a restore, say) with nothing to do */
		s->why[0] = 0;
		s->failed = 0;
		thread_report(s, stack, n);
	}
}

static void run_read(struct slot *s, const unsigned char *stack)
{
	for (;;) {
		unsigned char b;
		ssize_t r = read(s->pipe[0], &b, 1);
		if (r < 0 && errno == EINTR)
			continue;
		unsigned n = __atomic_load_n(&req, __ATOMIC_ACQUIRE);
		if (r != 1 || n == s->done) {
			if (!s->sticky[0])
				snprintf(s->sticky, sizeof(s->sticky), "read returned %zd (%s) byte %#x with no request pending",
					 r, r < 0 ? strerror(errno) : "ok", r == 1 ? b : 0);
			if (r != 1) /* nothing more will come: wait for requests on the futex word instead */
				for (;;) {
					while (__atomic_load_n(&req, __ATOMIC_ACQUIRE) == s->done)
						ct_futex((int *)&req, FUTEX_WAIT_PRIVATE, (int)s->done, NULL);
					thread_report(s, stack, __atomic_load_n(&req, __ATOMIC_ACQUIRE));
				}
			continue;
		}
		s->why[0] = 0;
		s->failed = 0;
		if (b != reader_byte(n, s->idx))
			slot_fail(s, "read byte %#x, expected %#x", b, reader_byte(n, s->idx));
		int left = -1;
		if (ioctl(s->pipe[0], FIONREAD, &left) < 0 || left != 0)
			slot_fail(s, "%d more bytes queued in the pipe", left);
		thread_report(s, stack, n);
	}
}

static void *worker(void *arg)
{
	struct slot *s = arg;
	unsigned char stack[STACK_LEN];
	ct_fill(stack, STACK_LEN, seed ^ ((uint64_t)s->idx << 40));
	ct_fill(tls_buf, TLS_LEN, seed ^ ((uint64_t)s->idx << 32));
	tls_tag = ct_mix(seed ^ (uint64_t)s->idx);
	s->tls_addr = tls_buf;
	s->stack_addr = stack;
	prctl(PR_SET_NAME, s->name);
	stack_t ss = { .ss_sp = s->altstack, .ss_size = ALTSTACK_LEN };
	if (sigaltstack(&ss, NULL) < 0)
		snprintf(s->sticky, sizeof(s->sticky), "sigaltstack: %s", strerror(errno));
	pthread_sigmask(SIG_SETMASK, &s->mask, NULL);
	s->tid0 = s->tid = ct_gettid();
	__atomic_fetch_add(&started, 1, __ATOMIC_SEQ_CST);
	ct_futex(&started, FUTEX_WAKE_PRIVATE, 1, NULL);
	switch (s->role) {
	case COMPUTE: run_compute(s, stack); break;
	case FUTEX: run_futex(s, stack); break;
	case SLEEP: run_sleep(s, stack); break;
	case READ: run_read(s, stack); break;
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Current tid of the thread named name (tids may change in a restore). */
static pid_t tid_by_name(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	pid_t found = -1;
	struct dirent *e;
	while ((e = readdir(d)) && found < 0) {
		if (e->d_name[0] == '.')
			continue;
		char path[64], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = 0;
			if (!strcmp(comm, name))
				found = atoi(e->d_name);
		}
		if (f)
			fclose(f);
	}
	closedir(d);
	return found;
}

/* The system call a thread is blocked in, -1 if it is running or not in one. */
static long thread_syscall(pid_t tid)
{
	char path[64], buf[64] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -2;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (buf[0] < '0' || buf[0] > '9')
		return -1;
	return strtol(buf, NULL, 10);
}

static long expected_syscall(const struct slot *s)
{
	switch (s->role) {
	case FUTEX: return SYS_futex;
	case SLEEP: return s->k == 0 ? SYS_nanosleep : SYS_clock_nanosleep;
	case READ: return SYS_read;
	default: return -1;
	}
}

/* Waits until every blocking thread sits in its system call; true if so. */
static bool wait_shapes(double deadline, bool report)
{
	for (;;) {
		int missing = -1;
		for (int i = 0; i < NWORKERS && missing < 0; i++) {
			long in = thread_syscall(slots[i].tid), want = expected_syscall(&slots[i]);
			/* A sleep that a ptrace stop interrupted goes on as
			 * restart_syscall (the kernel's restart block keeps the
			 * time left): still the same wait. */
			bool waits = in == want || (slots[i].role == SLEEP && in == SYS_restart_syscall);
			if (want >= 0 && !waits)
				missing = i;
		}
		if (missing < 0)
			return true;
		if (now() > deadline) {
			if (report)
				ct_fail("%s did not return to its waiting system call (in %ld, expected %ld)",
					slots[missing].name, thread_syscall(slots[missing].tid),
					expected_syscall(&slots[missing]));
			return false;
		}
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL); /* polling our own threads, not syncing with the test */
	}
}

static void wake_sleeper(const struct slot *s)
{
	pid_t tid = tid_by_name(s->name);
	if (tid < 0 || syscall(SYS_tgkill, getpid(), tid, SIGUSR1) < 0)
		ct_fail("cannot wake %s: no thread by that name", s->name);
}

static void verify_threads(const unsigned char *stack, char *extra, size_t extra_len)
{
	unsigned n = ct.n;
	long off;
	if (tls_tag != ct_mix(seed ^ 99) || (off = ct_check_fill(tls_buf, TLS_LEN, seed ^ (99ULL << 32))) >= 0)
		ct_fail("main thread __thread data differs");
	if ((off = ct_check_fill(stack, STACK_LEN, seed ^ (99ULL << 40))) >= 0)
		ct_fail("main thread stack differs at %ld", off);

	__atomic_store_n(&req, n, __ATOMIC_RELEASE);
	ct_futex((int *)&req, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	for (int i = 0; i < NWORKERS; i++) {
		struct slot *s = &slots[i];
		if (s->role == FUTEX) {
			__atomic_store_n(&s->fword, (int)n, __ATOMIC_RELEASE);
			ct_futex(&s->fword, s->k == 0 ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE, 1, NULL);
		} else if (s->role == READ) {
			unsigned char b = reader_byte(n, s->idx);
			if (write(s->pipe[1], &b, 1) != 1)
				ct_fail("cannot write to %s's pipe: %s", s->name, strerror(errno));
		} else if (s->role == SLEEP) {
			wake_sleeper(s);
		}
	}
	double deadline = now() + REPLY_TIMEOUT_S, rewake = now() + 0.5;
	for (;;) {
		int seen = __atomic_load_n(&reports, __ATOMIC_SEQ_CST), pending = 0;
		for (int i = 0; i < NWORKERS; i++)
			pending += __atomic_load_n(&slots[i].done, __ATOMIC_ACQUIRE) != n;
		if (!pending || now() > deadline)
			break;
		/* A signal that lands after a sleeper read req but before it
		 * entered its sleep is handled and then slept through: an
		 * inherent window of waking a sleeper by signal, as small as a
		 * few instructions. Wake the ones still silent again. */
		if (now() > rewake) {
			for (int i = 0; i < NWORKERS; i++)
				if (slots[i].role == SLEEP && __atomic_load_n(&slots[i].done, __ATOMIC_ACQUIRE) != n)
					wake_sleeper(&slots[i]);
			rewake = now() + 0.5;
		}
		struct timespec ts = { 0, 100000000 };
		ct_futex(&reports, FUTEX_WAIT_PRIVATE, seen, &ts);
	}
	size_t len = (size_t)snprintf(extra, extra_len, "tids=");
	for (int i = 0; i < NWORKERS; i++) {
		struct slot *s = &slots[i];
		if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != n)
			ct_fail("%s did not report within %d s", s->name, REPLY_TIMEOUT_S);
		else if (s->failed)
			ct_fail("%s: %s", s->name, s->why);
		if (len < extra_len)
			len += (size_t)snprintf(extra + len, extra_len - len, "%s%d", i ? "," : "", (int)s->tid);
	}
	wait_shapes(now() + REPLY_TIMEOUT_S, true);
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_threads STATUS [--seed=N] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_threads";
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

	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	unsigned char stack[STACK_LEN];
	ct_fill(stack, STACK_LEN, seed ^ (99ULL << 40));
	ct_fill(tls_buf, TLS_LEN, seed ^ (99ULL << 32));
	tls_tag = ct_mix(seed ^ 99);

	/* Threads start with everything blocked and set their own mask. */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (int i = 0; i < NWORKERS; i++) {
		struct slot *sl = &slots[i];
		sl->idx = i;
		sl->role = (enum role)(i / 2);
		sl->k = i % 2;
		snprintf(sl->name, sizeof(sl->name), "ct-%s%d", role_names[sl->role], sl->k);
		/* Requests go to main: every worker blocks them, plus its own set. */
		sigemptyset(&sl->mask);
		sigaddset(&sl->mask, SIGUSR2);
		sigaddset(&sl->mask, SIGTERM);
		if (sl->role != SLEEP)
			sigaddset(&sl->mask, SIGUSR1);
		if (i & 1)
			sigaddset(&sl->mask, SIGINT);
		if (i & 2)
			sigaddset(&sl->mask, SIGQUIT);
		if (i & 4)
			sigaddset(&sl->mask, SIGALRM);
		sigaddset(&sl->mask, SIGRTMIN + 2 + i);
		sl->altstack = mmap(NULL, ALTSTACK_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (sl->altstack == MAP_FAILED)
			ct_die("mmap: %s", strerror(errno));
		if (sl->role == READ && pipe2(sl->pipe, 0) < 0)
			ct_die("pipe: %s", strerror(errno));
		int e = pthread_create(&sl->th, NULL, worker, sl);
		if (e)
			ct_die("pthread_create: %s", strerror(e));
	}
	/* Main's own mask differs from every worker's. */
	sigset_t mine;
	sigemptyset(&mine);
	sigaddset(&mine, SIGUSR1);
	sigaddset(&mine, SIGRTMIN + 1);
	pthread_sigmask(SIG_SETMASK, &mine, NULL);
	if (ct.shape == CT_WAIT_SIGSUSPEND) {
		sigaddset(&mine, SIGUSR2);
		sigaddset(&mine, SIGTERM);
		pthread_sigmask(SIG_SETMASK, &mine, NULL);
		sigprocmask(SIG_BLOCK, NULL, &ct.suspend_mask);
		sigdelset(&ct.suspend_mask, SIGUSR2);
		sigdelset(&ct.suspend_mask, SIGTERM);
	}
	double deadline = now() + REPLY_TIMEOUT_S;
	for (int v; (v = __atomic_load_n(&started, __ATOMIC_SEQ_CST)) < NWORKERS;) {
		if (now() > deadline)
			ct_die("only %d of %d threads started", v, NWORKERS);
		struct timespec ts = { 0, 100000000 };
		ct_futex(&started, FUTEX_WAIT_PRIVATE, v, &ts);
	}
	for (int i = 0; i < NWORKERS; i++) {
		if (slots[i].sticky[0])
			ct_die("%s: %s", slots[i].name, slots[i].sticky);
		ct_info("thread %s %d tls %p %d stack %p %d", slots[i].name, (int)slots[i].tid0,
			(void *)slots[i].tls_addr, TLS_LEN, (void *)slots[i].stack_addr, STACK_LEN);
		if (slots[i].role == READ)
			ct_info("fd %s-pipe-write %d", slots[i].name, slots[i].pipe[1]);
		if (slots[i].role == FUTEX)
			ct_info("futex %s %p", slots[i].name, (void *)&slots[i].fword);
	}
	if (!wait_shapes(now() + REPLY_TIMEOUT_S, false))
		ct_die("threads did not reach their waiting system calls");
	ct_ready();

	char extra[256];
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		extra[0] = 0;
		verify_threads(stack, extra, sizeof(extra));
		bool ok = ct_verify_end(extra);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
