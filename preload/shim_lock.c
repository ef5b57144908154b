/* Locks for the mapping and thread lists.
 *
 * A writer takes a futex lock word (the critical sections are short, but a
 * resync reads /proc and must not make other threads burn CPU) and makes the
 * list's seq odd until it is done, which is what the out-of-process reader
 * checks. Uncontended, that is two atomic instructions and no system call;
 * while glibc counts one thread (__libc_single_threaded), the word is left
 * alone and a change costs no atomic instruction at all.
 *
 * Signals are not blocked (that was two system calls per change, more than
 * the change itself). Instead each thread knows, in thread-local state,
 * whether it is in the middle of changing a list. A signal handler that calls
 * a wrapper on top of such a change gets 0 from fp_list_lock: it must not
 * touch the list (it would see it half changed, or wait for itself forever),
 * and calls fp_list_missed() instead. The interrupted writer finds that mark
 * when it unlocks and resyncs the list from /proc, so what the handler did is
 * in the table before the wrapper it interrupted returns.
 *
 * The thread-local state is set before the lock word is taken and cleared
 * after it is released, so a handler can never wait for a lock its own thread
 * holds. What this gives up: a handler that leaves with longjmp while its
 * thread is inside a change (a window of a few hundred ns) leaves the lock
 * held; POSIX does not allow calling mmap & co. after such a jump either, and
 * asynchronous cancellation inside a wrapper is undefined for the same reason.
 *
 * Before taking the lock a writer honours the reader's gate (see
 * shim_table.h): it pauses while the gate is set, at most FP_SHIM_GATE_MAX_NS,
 * and then clears it itself so that a reader that died cannot slow the target
 * down for more than one pause. */
#include <linux/futex.h>
#include <time.h>

#include "shim_internal.h"

/* per lock: how deep this thread holds it, whether it is changing it, and
 * whether a handler on top of a change skipped its own (shim_internal.h:
 * the uncontended paths are inlined into the wrappers) */
FP_HIDDEN FP_TLS int fp_depth[2];
FP_HIDDEN FP_TLS int fp_changing[2];
FP_HIDDEN FP_TLS int fp_missed[2];
FP_HIDDEN FP_TLS int fp_word_held[2]; /* this thread took the lock word (not single-threaded) */

FP_HIDDEN const struct fp_list_lock fp_maps_lock = {
	&forkpoint_shim_table.maps_lock, &forkpoint_shim_table.maps_seq, FP_LOCK_MAPS};
FP_HIDDEN const struct fp_list_lock fp_threads_lock = {
	&forkpoint_shim_table.threads_lock, &forkpoint_shim_table.threads_seq, FP_LOCK_THREADS};

FP_HIDDEN void fp_futex_wait(uint32_t *w, uint32_t val, long timeout_ns)
{
	struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
	fp_sys4(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, timeout_ns > 0 ? &ts : NULL);
}

FP_HIDDEN void fp_futex_wake(uint32_t *w, int n)
{
	fp_sys3(SYS_futex, w, FUTEX_WAKE_PRIVATE, n);
}

static uint64_t fp_now_ns(void)
{
	struct timespec ts;
	fp_sys2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

FP_HIDDEN void fp_gate_wait(uint32_t gate)
{
	uint64_t t0 = fp_now_ns();
	while (__atomic_load_n(&FP_T->read_gate, __ATOMIC_ACQUIRE) == gate) {
		if (fp_now_ns() - t0 >= FP_SHIM_GATE_MAX_NS) {
			uint32_t g = gate;
			__atomic_compare_exchange_n(&FP_T->read_gate, &g, 0, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
			return;
		}
		struct timespec ts = {0, 20000};
		fp_sys2(SYS_nanosleep, &ts, 0);
	}
}

/* The lock word is taken: spin a little, then wait on the futex. */
FP_HIDDEN void fp_word_lock_slow(uint32_t *w)
{
	for (int i = 0; i < 200; i++) {
		uint32_t z = 0;
		if (__atomic_compare_exchange_n(w, &z, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		fp_cpu_relax();
	}
	/* 2 = locked with waiters */
	while (__atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE) != 0)
		fp_futex_wait(w, 2, 0);
}

/* fp_list_lock and fp_list_unlock are in shim_internal.h (inlined: a call
 * and the lock's fields read through a pointer were a third of the lock's
 * instructions). */

FP_HIDDEN void fp_list_fork_hold(const struct fp_list_lock *l)
{
	FP_SIGNAL_FENCE();
	fp_changing[l->which] = 0;
}

/* Thread-local on purpose: only the interrupted thread takes the mark, and
 * its handler has finished (system call included) when it does. */
FP_HIDDEN void fp_list_missed(const struct fp_list_lock *l)
{
	fp_missed[l->which] = 1;
	FP_SIGNAL_FENCE();
}

FP_HIDDEN int fp_list_reset(const struct fp_list_lock *l)
{
	int was_busy = __atomic_load_n(l->word, __ATOMIC_RELAXED) != 0 ||
		       (__atomic_load_n(l->seq, __ATOMIC_RELAXED) & 1);
	/* a thread of the parent held it: our own depth is the caller's business */
	__atomic_store_n(l->word, 0, __ATOMIC_RELAXED);
	uint32_t s = __atomic_load_n(l->seq, __ATOMIC_RELAXED);
	if (s & 1)
		__atomic_store_n(l->seq, s + 1, __ATOMIC_RELEASE);
	fp_depth[l->which] = 0;
	fp_changing[l->which] = 0;
	fp_missed[l->which] = 0;
	fp_word_held[l->which] = 0;
	return was_busy;
}
