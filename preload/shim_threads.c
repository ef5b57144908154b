/* The thread list and the pthread wrappers.
 *
 * A new thread starts in our trampoline, which records its tid and registers a
 * cleanup handler (pthread_cleanup_push) that removes it again, so a thread
 * leaves the list whether its start routine returns, it calls pthread_exit or
 * it is cancelled. pthread_create also records the new tid itself, so the
 * list is right as soon as pthread_create returns, without waiting for the
 * new thread to be scheduled.
 *
 * What the list cannot see: threads made with a raw clone(CLONE_THREAD) or
 * inside libc without the PLT (SIGEV_THREAD timer helpers, aio), and the
 * short time after a thread removed itself and before the kernel has
 * finished it (the checker waits for joins, and skips zombie tasks).
 *
 * Thread stacks are mapped and unmapped inside libc, where no wrapper sees
 * them, but without a resync from /proc each time (that cost more than the
 * thread): a new thread whose descriptor (pthread_t, at the top of its stack)
 * lies in a mapping the table knows got a stack from glibc's cache, and only
 * a thread on a new stack costs a resync. A join may let glibc unmap cached
 * stacks once its cache is full; then one system call probes the known
 * stacks (shim_maps.c). */
#include <fcntl.h>
#include <pthread.h>

#include "shim_internal.h"

static void threads_add_locked(int tid, int origin)
{
	uint32_t n = FP_T->thread_count, i;
	for (i = 0; i < n && FP_T->threads[i].tid != tid; i++)
		;
	if (i == n) {
		if (n < FP_SHIM_MAX_THREADS) {
			FP_T->threads[n].tid = tid;
			FP_T->threads[n].origin = (uint8_t)origin;
			FP_T->thread_count = n + 1;
		} else {
			FP_T->thread_overflow++;
		}
	}
}

/* A thread-list change in a signal handler on top of one of this thread's
 * own is dropped (the pthread calls are not async-signal-safe anyway). */
static void threads_add(int tid, int origin)
{
	if (!fp_list_lock(&fp_threads_lock))
		return;
	threads_add_locked(tid, origin);
	fp_list_unlock(&fp_threads_lock);
}

FP_HIDDEN void fp_threads_only_self(void)
{
	int tid = fp_gettid();
	if (!fp_list_lock(&fp_threads_lock))
		return;
	FP_T->threads[0].tid = tid;
	FP_T->threads[0].origin = FP_ORIGIN_INHERITED;
	FP_T->thread_count = 1;
	FP_T->thread_overflow = 0;
	fp_list_unlock(&fp_threads_lock);
}

FP_HIDDEN void fp_threads_seed(void)
{
	int dfd = fp_shim_open("/proc/self/task", O_RDONLY | O_DIRECTORY);
	if (dfd < 0) {
		threads_add(fp_gettid(), FP_ORIGIN_INHERITED);
		return;
	}
	char buf[2048] __attribute__((aligned(8)));
	long n;
	while ((n = fp_sys3(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct fp_dirent64 *d = (struct fp_dirent64 *)(buf + off);
			off += d->d_reclen;
			int tid = 0;
			const char *s = d->d_name;
			if (*s < '0' || *s > '9')
				continue;
			for (; *s >= '0' && *s <= '9'; s++)
				tid = tid * 10 + (*s - '0');
			threads_add(tid, FP_ORIGIN_INHERITED);
		}
	}
	fp_shim_close(dfd);
}

/* ---- pthread_create ---- */

/* A thread's tid through public API and without a system call (gettid would
 * be one): a thread CPU clock id encodes the tid (kernel ABI: ~tid << 3 | 6). */
static int tid_of(pthread_t th)
{
	clockid_t cid;
	if (pthread_getcpuclockid(th, &cid) != 0 || (cid & 7) != 6)
		return 0;
	int tid = ~(cid >> 3);
	return tid > 0 ? tid : 0;
}

/* Start records handed to the trampoline: a fixed pool (no malloc), one per
 * live thread. Two references: the creator drops its own after recording the
 * new tid, the thread drops its own when it ends. `finished` (written under
 * the thread list lock) stops a creator that comes late from recording a
 * thread that has already ended and removed itself. */
#define FP_START_POOL FP_SHIM_MAX_THREADS
struct fp_start {
	uint32_t refs; /* 0: free */
	uint32_t finished;
	void *(*fn)(void *);
	void *arg;
};
static struct fp_start fp_start_pool[FP_START_POOL];
static FP_TLS struct fp_start *fp_my_start; /* this thread's record, if any */

static struct fp_start *start_claim(void)
{
	for (int i = 0; i < FP_START_POOL; i++) {
		uint32_t f = 0;
		if (__atomic_load_n(&fp_start_pool[i].refs, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&fp_start_pool[i].refs, &f, 2, 0, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED)) {
			fp_start_pool[i].finished = 0;
			return &fp_start_pool[i];
		}
	}
	return NULL;
}

static void start_put(struct fp_start *s)
{
	__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

/* In a fork child only the calling thread exists: every record but its own
 * is free again. */
FP_HIDDEN void fp_threads_fork_child(void)
{
	for (int i = 0; i < FP_START_POOL; i++) {
		struct fp_start *s = &fp_start_pool[i];
		__atomic_store_n(&s->refs, s == fp_my_start ? 1 : 0, __ATOMIC_RELAXED);
	}
}

static void fp_thread_gone(void *arg)
{
	struct fp_start *s = arg;
	int tid = tid_of(pthread_self());
	if (!fp_list_lock(&fp_threads_lock)) {
		fp_my_start = NULL;
		start_put(s);
		return;
	}
	uint32_t n = FP_T->thread_count;
	for (uint32_t i = 0; i < n; i++) {
		if (FP_T->threads[i].tid == tid) {
			FP_T->threads[i] = FP_T->threads[n - 1];
			FP_T->thread_count = n - 1;
			break;
		}
	}
	s->finished = 1;
	fp_list_unlock(&fp_threads_lock);
	fp_my_start = NULL;
	start_put(s);
}

static void *fp_trampoline(void *p)
{
	struct fp_start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;
	fp_my_start = s;
	threads_add(tid_of(pthread_self()), FP_ORIGIN_PROGRAM);
	void *ret;
	pthread_cleanup_push(fp_thread_gone, s);
	ret = fn(arg);
	pthread_cleanup_pop(1);
	return ret;
}

FP_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
			     void *arg)
{
	int track = fp_enter();
	__typeof__(&pthread_create) real = FP_REAL(pthread_create);
	if (!real)
		return EAGAIN;
	if (!track)
		return real(th, attr, fn, arg);
	struct fp_start *s = start_claim();
	if (!s) {
		/* more live threads than the table holds: untracked */
		__atomic_fetch_add(&FP_T->thread_overflow, 1, __ATOMIC_RELAXED);
		int rc = real(th, attr, fn, arg);
		if (rc == 0)
			fp_maps_thread_stack((uint64_t)(uintptr_t)*th);
		return rc;
	}
	s->fn = fn;
	s->arg = arg;
	int rc = real(th, attr, fp_trampoline, s);
	if (rc != 0) {
		__atomic_store_n(&s->refs, 0, __ATOMIC_RELEASE);
		return rc;
	}
	/* Record it now rather than when it first runs, so the list is right
	 * as soon as pthread_create returns (the thread records itself too). */
	int tid = tid_of(*th);
	if (tid && fp_list_lock(&fp_threads_lock)) {
		if (!s->finished)
			threads_add_locked(tid, FP_ORIGIN_PROGRAM);
		fp_list_unlock(&fp_threads_lock);
	}
	start_put(s);
	fp_maps_thread_stack((uint64_t)(uintptr_t)*th);
	return rc;
}

#define FP_JOIN_WRAPPER(name, params, args)                          \
	FP_EXPORT int name params                                    \
	{                                                            \
		int track = fp_enter();                              \
		__typeof__(&name) real = FP_REAL(name);              \
		if (!real)                                           \
			return ENOSYS;                               \
		int rc = real args;                                  \
		if (track && rc == 0)                                \
			fp_maps_check_stacks();                      \
		return rc;                                           \
	}

FP_JOIN_WRAPPER(pthread_join, (pthread_t th, void **ret), (th, ret))
FP_JOIN_WRAPPER(pthread_tryjoin_np, (pthread_t th, void **ret), (th, ret))
FP_JOIN_WRAPPER(pthread_timedjoin_np, (pthread_t th, void **ret, const struct timespec *ts),
		(th, ret, ts))
FP_JOIN_WRAPPER(pthread_clockjoin_np,
		(pthread_t th, void **ret, clockid_t clk, const struct timespec *ts),
		(th, ret, clk, ts))
