/* Signal and thread-library state of a thread that ptrace (or a syscall
 * from outside) can read directly: blocked mask, pending queues, rseq,
 * robust futex list. */
#include "ptrace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

int fp_pt_get_sigmask(pid_t tid, uint64_t *mask, fp_error *err)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask))
		return fp_fail(err, errno, "cannot read the signal mask of thread %d: PTRACE_GETSIGMASK: %s", tid, strerror(errno));
	return 0;
}

int fp_pt_set_sigmask(pid_t tid, uint64_t mask, fp_error *err)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask))
		return fp_fail(err, errno, "cannot set the signal mask of thread %d: PTRACE_SETSIGMASK: %s", tid, strerror(errno));
	return 0;
}

int fp_pt_peek_signals(pid_t tid, const fp_pt_thread *t, bool shared, siginfo_t **out, size_t *n, fp_error *err)
{
	size_t cap = 16, cnt = 0;
	siginfo_t *v = malloc(cap * sizeof(*v));
	if (!v)
		return fp_fail(err, ENOMEM, "out of memory");
	if (!shared && t)
		for (int i = 0; i < t->nheld; i++) {
			if (cnt == cap)
				break; /* cap >= FP_PT_MAX_HELD */
			v[cnt++] = t->held[i];
		}
	for (;;) {
		if (cnt == cap) {
			siginfo_t *nv = realloc(v, 2 * cap * sizeof(*v));
			if (!nv) {
				free(v);
				return fp_fail(err, ENOMEM, "out of memory");
			}
			v = nv;
			cap *= 2;
		}
		size_t from_queue = cnt - (!shared && t ? (size_t)t->nheld : 0);
		struct __ptrace_peeksiginfo_args a = {
			.off = from_queue,
			.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
			.nr = (int32_t)(cap - cnt),
		};
		long r = ptrace(PTRACE_PEEKSIGINFO, tid, &a, v + cnt);
		if (r < 0) {
			int e = errno;
			free(v);
			return fp_fail(err, e, "cannot read the %s pending signals of thread %d: PTRACE_PEEKSIGINFO: %s",
				       shared ? "process-wide" : "thread's", tid, strerror(e));
		}
		if (r == 0)
			break;
		cnt += (size_t)r;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int fp_pt_get_rseq(pid_t tid, fp_rseq_config *c, fp_error *err)
{
	/* Kernel ABI: u64 pointer, u32 size, u32 signature, u32 flags, u32 pad. */
	struct {
		uint64_t ptr;
		uint32_t size, sig, flags, pad;
	} k;
	memset(&k, 0, sizeof(k));
	long r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(k), &k);
	if (r < 0)
		return fp_fail(err, errno, "cannot read the rseq registration of thread %d: PTRACE_GET_RSEQ_CONFIGURATION: %s%s", tid,
			       strerror(errno), errno == EIO ? " (kernel without CONFIG_RSEQ?)" : "");
	c->abi_pointer = k.ptr;
	c->abi_size = k.size;
	c->signature = k.sig;
	c->flags = k.flags;
	return 0;
}

int fp_pt_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len, fp_error *err)
{
	void *h = NULL;
	size_t l = 0;
	if (syscall(SYS_get_robust_list, tid, &h, &l))
		return fp_fail(err, errno, "cannot read the robust futex list of thread %d: get_robust_list: %s", tid,
			       strerror(errno));
	*head = (uint64_t)(uintptr_t)h;
	*len = l;
	return 0;
}
