/* Locks for the mapping and thread lists.
 *
 * A writer blocks every signal (so a handler that calls mmap cannot run on top
 * of a half-changed list in the same thread), takes a futex lock word (the
 * critical sections are short, but a resync reads /proc and must not make
 * other threads burn CPU), and makes the list's seq odd until it is done, which
 * is what the out-of-process reader checks.
 *
 * Before taking the lock a writer honours the reader's gate (see
 * shim_table.h): it pauses while the gate is set, at most FP_SHIM_GATE_MAX_NS,
 * and then clears it itself so that a reader that died cannot slow the target
 * down for more than one pause. */
#include <linux/futex.h>
#include <time.h>

#include "shim_internal.h"

static FP_TLS int fp_depth[2];

FP_HIDDEN const struct fp_list_lock fp_maps_lock = {
	&forkpoint_shim_table.maps_lock, &forkpoint_shim_table.maps_seq, 0};
FP_HIDDEN const struct fp_list_lock fp_threads_lock = {
	&forkpoint_shim_table.threads_lock, &forkpoint_shim_table.threads_seq, 1};

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

static void fp_gate_wait(uint32_t gate)
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

static void fp_word_lock(uint32_t *w)
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

static void fp_word_unlock(uint32_t *w)
{
	if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) == 2)
		fp_futex_wake(w, 1);
}

FP_HIDDEN void fp_list_lock(const struct fp_list_lock *l, fp_ksigset *old)
{
	if (fp_depth[l->which] > 0) {
		/* this thread already holds it (signals are blocked since) */
		(fp_depth[l->which])++;
		return;
	}
	uint32_t gate = __atomic_load_n(&FP_T->read_gate, __ATOMIC_RELAXED);
	if (FP_UNLIKELY(gate))
		fp_gate_wait(gate);
	fp_block_all_signals(old);
	fp_word_lock(l->word);
	fp_depth[l->which] = 1;
	uint32_t s = __atomic_load_n(l->seq, __ATOMIC_RELAXED);
	__atomic_store_n(l->seq, s + 1, __ATOMIC_RELAXED);
	/* the odd seq must be visible before any change to the list */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

FP_HIDDEN void fp_list_unlock(const struct fp_list_lock *l, const fp_ksigset *old)
{
	if (--(fp_depth[l->which]) > 0)
		return;
	uint32_t s = __atomic_load_n(l->seq, __ATOMIC_RELAXED);
	__atomic_store_n(l->seq, s + 1, __ATOMIC_RELEASE);
	fp_word_unlock(l->word);
	fp_restore_signals(old);
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
	return was_busy;
}
