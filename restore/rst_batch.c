/* System calls inside the process being built, queued and run in lists.
 *
 * Every ptrace round trip costs 35-130 µs on this machine (resume, wake the
 * tracee, its stop, wake us; machine-limits.md §2, §4), far more than the
 * system calls themselves. So calls are queued (rst_q), and rst_flush runs
 * each thread's list with the runner (rst_runner.c) in one round trip, all
 * threads at once: their lists are written into the scratch area with one
 * process_vm_writev, every thread is resumed, and the results come back with
 * one process_vm_readv after the last one has stopped.
 *
 * Rules for callers:
 *   - Calls of one thread run in the order queued; the lists of different
 *     threads in one flush run concurrently, in no set order.
 *   - A call needing a result in the restorer (an fd number for a later
 *     struct, an address to check) flushes first; a call that only needs
 *     an earlier call's result as an argument can take it in the target
 *     (RST_REF), after rst_q_room made sure both are in one flush.
 *   - Memory arguments go through rst_q_mem/rst_q_data (the batch's own
 *     data area), never rst_scratch_put: that area may be rewritten before
 *     the queue runs.
 *   - *ret pointers are filled by the flush that runs the call.
 *
 * Before the runner is in place (and for the call that unmaps it) one call
 * is made by single-stepping a `syscall` instruction instead (rst_step_sys). */
#include "restore/rst_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "ptrace/pt_mem.h"

#define BATCH_OFF (32 * 1024) /* in the scratch area: below are rst_scratch_put's fixed places */
#define LIST_LEN (64 * 1024)
#define DATA_LEN (128 * 1024)
#define MAX_ENTS (LIST_LEN / sizeof(rst_ent))
#define NOT_RUN ((int64_t)0x7ffffffffffff00dLL) /* no system call returns this */

_Static_assert(BATCH_OFF + LIST_LEN + DATA_LEN <= RST_SCRATCH_LEN - 4096, "the batch area overlaps the path slot");

struct qent {
	pid_t tid;
	unsigned flags;
	long nr;
	uint64_t a[6];
	int64_t *out;
	size_t what; /* offset in whats, SIZE_MAX for none */
};

struct rst_batch {
	size_t n, ndata, nwhats, capwhats;
	char *whats;
	struct qent q[MAX_ENTS];
	rst_ent ents[MAX_ENTS]; /* as written to and read back from the target */
	size_t order[MAX_ENTS]; /* q[] index of each ents[] slot */
	_Alignas(16) unsigned char data[DATA_LEN];
};

static uint64_t list_base(const rst_proc *p)
{
	return p->scratch + BATCH_OFF;
}

static int batch(rst_proc *p, fp_error *err)
{
	if (p->batch)
		return 0;
	if (!p->runner || !p->scratch)
		return fp_fail(err, EINVAL, "internal: system calls queued in %d before its runner is in place", (int)p->pid);
	p->batch = calloc(1, sizeof(*p->batch));
	return p->batch ? 0 : fp_fail(err, ENOMEM, "out of memory");
}

void rst_batch_free(rst_proc *p)
{
	if (p->batch)
		free(p->batch->whats);
	free(p->batch);
	p->batch = NULL;
}

static void reset(struct rst_batch *b)
{
	b->n = b->ndata = b->nwhats = 0;
}

int rst_q_room(rst_proc *p, size_t entries, size_t bytes, fp_error *err)
{
	if (batch(p, err))
		return -1;
	struct rst_batch *b = p->batch;
	if (entries > MAX_ENTS || bytes > DATA_LEN)
		return fp_fail(err, E2BIG, "internal: %zu system calls with %zu bytes do not fit one list", entries, bytes);
	if (b->n + entries <= MAX_ENTS && b->ndata + bytes <= DATA_LEN)
		return 0;
	return rst_flush(p, err);
}

void *rst_q_data(rst_proc *p, size_t len, uint64_t *remote, fp_error *err)
{
	size_t need = (len + 15) & ~(size_t)15;
	if (rst_q_room(p, 0, need, err))
		return NULL;
	struct rst_batch *b = p->batch;
	void *local = b->data + b->ndata;
	memset(local, 0, need);
	*remote = list_base(p) + LIST_LEN + b->ndata;
	b->ndata += need;
	return local;
}

static size_t keep_what(struct rst_batch *b, const char *what)
{
	if (!what)
		return SIZE_MAX;
	size_t len = strlen(what) + 1;
	if (b->nwhats + len > b->capwhats) {
		size_t cap = b->capwhats ? b->capwhats * 2 : 4096;
		while (cap < b->nwhats + len)
			cap *= 2;
		char *w = realloc(b->whats, cap);
		if (!w)
			return SIZE_MAX; /* only the message is lost */
		b->whats = w;
		b->capwhats = cap;
	}
	memcpy(b->whats + b->nwhats, what, len);
	b->nwhats += len;
	return b->nwhats - len;
}

int rst_q(rst_proc *p, pid_t tid, const char *what, unsigned flags, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	  uint64_t a3, uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err)
{
	if (batch(p, err))
		return -1;
	struct rst_batch *b = p->batch;
	if (flags & RST_CTL_REF) {
		/* The call it takes a result from must be in this flush. */
		size_t back = flags >> 16, seen = 0;
		for (size_t i = b->n; i-- > 0 && seen < back;)
			seen += b->q[i].tid == tid;
		if (seen < back || ((flags >> 8) & 0xff) > 5)
			return fp_fail(err, EINVAL, "internal: %s refers to a call not in the same list (use rst_q_room)",
				       what ? what : "a system call");
	} else if (rst_q_room(p, 1, 0, err)) {
		return -1;
	}
	if (b->n == MAX_ENTS)
		return fp_fail(err, E2BIG, "internal: the list is full (use rst_q_room)");
	struct qent *e = &b->q[b->n++];
	*e = (struct qent){ tid, flags, nr, { a0, a1, a2, a3, a4, a5 }, ret, keep_what(b, what) };
	return 0;
}

int rst_q_mem(rst_proc *p, pid_t tid, const char *what, unsigned flags, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	      uint64_t a3, uint64_t a4, uint64_t a5, int slot, const void *data, size_t len, int64_t *ret, fp_error *err)
{
	uint64_t a[6] = { a0, a1, a2, a3, a4, a5 }, remote;
	if (rst_q_room(p, 1, (len + 15) & ~(size_t)15, err))
		return -1;
	void *local = rst_q_data(p, len, &remote, err);
	if (!local)
		return -1;
	memcpy(local, data, len);
	a[slot] = remote;
	return rst_q(p, tid, what, flags, nr, a[0], a[1], a[2], a[3], a[4], a[5], ret, err);
}

/* ---- resuming a thread and waiting for the stop we expect ----------------- */

enum want { WANT_TRAP_AT, WANT_SYSCALL_STOP };

static int hold_signal(rst_proc *p, fp_pt_thread *t, fp_error *err)
{
	if (t->nheld >= FP_PT_MAX_HELD)
		return fp_fail(err, EAGAIN, "thread %d of %d has more than %d signals arriving; cannot run code in it now",
			       (int)t->tid, (int)p->pid, FP_PT_MAX_HELD);
	/* Kept and given back when the process is let go (fp_pt_detach). */
	if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &t->held[t->nheld]) == 0)
		t->nheld++;
	return 0;
}

static int resume(fp_pt_thread *t, int req, fp_error *err)
{
	if (ptrace(req, t->tid, 0, 0))
		return fp_fail(err, errno, "cannot resume thread %d: %s", (int)t->tid, strerror(errno));
	t->state = FP_PT_RUNNING;
	return 0;
}

/* Waits until t (resumed with req) stops where we want it: a SIGTRAP with ip
 * at `ip`, or a syscall-entry stop. On the way, signals are held, and
 * fork events and group-stops are passed by. */
static int wait_for(rst_proc *p, fp_pt_thread *t, int req, enum want want, uint64_t ip, int64_t deadline,
		    fp_error *err)
{
	for (int passes = 0;; passes++) {
		int st;
		int r = rst_wait(t->tid, deadline, &st);
		if (r == 0)
			return fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT,
					    "thread %d of %d did not finish its system calls in time", (int)t->tid, (int)p->pid);
		if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			t->state = FP_PT_GONE;
			if (t->tid == p->pid)
				p->pid = -p->pid; /* reaped: nothing left to kill */
			return fp_fail(err, ESRCH, "thread %d ended while running system calls (wait status 0x%x)", (int)t->tid,
				       r < 0 ? 0 : st);
		}
		if (!WIFSTOPPED(st))
			continue;
		t->state = FP_PT_STOPPED;
		int ev = st >> 16, sig = WSTOPSIG(st);
		if (ev == PTRACE_EVENT_CLONE || ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
			/* a traced child: its caller learns of it from the result */
		} else if (want == WANT_SYSCALL_STOP && ev == 0 && sig == (SIGTRAP | 0x80)) {
			return 0;
		} else if (want == WANT_TRAP_AT && ev == 0 && sig == SIGTRAP) {
			struct user_regs_struct regs;
			if (fp_pt_get_regs(t->tid, &regs, err))
				return -1;
			if (regs.rip == ip)
				return 0;
			if (hold_signal(p, t, err)) /* a SIGTRAP of its own */
				return -1;
		} else if (ev == PTRACE_EVENT_STOP) {
			if (passes > 8)
				return fp_fail(err, EIO, "thread %d keeps stopping (wait status 0x%x)", (int)t->tid, st);
		} else if (ev == 0 && sig != (SIGTRAP | 0x80)) {
			if (hold_signal(p, t, err))
				return -1;
		} else {
			return fp_fail(err, EIO, "thread %d stopped unexpectedly (wait status 0x%x)", (int)t->tid, st);
		}
		if (resume(t, req, err))
			return -1;
	}
}

static int64_t wait_deadline(const rst_proc *p, size_t calls)
{
	int64_t dl = rst_now_ns() + (int64_t)FP_PT_TIMEOUT_MS * 1000000 + (int64_t)calls * 10000000;
	return p->deadline_ns && p->deadline_ns < dl ? p->deadline_ns : dl;
}

static fp_pt_thread *stopped_thread(rst_proc *p, pid_t tid, fp_error *err)
{
	fp_pt_thread *t = fp_pt_find(&p->pt, tid);
	if (!t || t->state != FP_PT_STOPPED) {
		fp_fail(err, EINVAL, "internal: thread %d of %d is not stopped; cannot run system calls in it", (int)tid,
			(int)p->pid);
		return NULL;
	}
	return t;
}

int rst_step_sys(rst_proc *p, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 uint64_t a5, int64_t *ret, fp_error *err)
{
	if (p->deadline_ns && rst_now_ns() > p->deadline_ns)
		return fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT, "the restore ran past its deadline");
	fp_pt_thread *t = stopped_thread(p, tid, err);
	if (!t)
		return -1;
	struct user_regs_struct r = p->base_regs;
	r.rip = p->sys_ip;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1; /* no restart processing on our registers */
	r.rdi = a0, r.rsi = a1, r.rdx = a2, r.r10 = a3, r.r8 = a4, r.r9 = a5;
	if (fp_pt_set_regs(tid, &r, err) || resume(t, PTRACE_SINGLESTEP, err) ||
	    wait_for(p, t, PTRACE_SINGLESTEP, WANT_TRAP_AT, p->sys_ip + 2, wait_deadline(p, 1), err) ||
	    fp_pt_get_regs(tid, &r, err))
		return fp_wrap(err, "system call %ld in thread %d", nr, (int)tid);
	*ret = (int64_t)r.rax;
	rst_logf(p->log, 4, "  [%d] syscall %ld(0x%llx, 0x%llx, 0x%llx, 0x%llx, 0x%llx, 0x%llx) = %lld (stepped)", (int)tid,
		 nr, (unsigned long long)a0, (unsigned long long)a1, (unsigned long long)a2, (unsigned long long)a3,
		 (unsigned long long)a4, (unsigned long long)a5, (long long)*ret);
	return 0;
}

int rst_resume_to_syscall(rst_proc *p, const pid_t *tids, size_t n, fp_error *err)
{
	int64_t dl = wait_deadline(p, n);
	for (size_t i = 0; i < n; i++) {
		fp_pt_thread *t = stopped_thread(p, tids[i], err);
		if (!t || resume(t, PTRACE_SYSCALL, err))
			return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (wait_for(p, fp_pt_find(&p->pt, tids[i]), PTRACE_SYSCALL, WANT_SYSCALL_STOP, 0, dl, err))
			return fp_wrap(err, "taking thread %d back into its system call", (int)tids[i]);
	return 0;
}

/* ---- running the queue ----------------------------------------------------- */

static void log_results(rst_proc *p, size_t k)
{
	struct rst_batch *b = p->batch;
	if (!p->log || p->log->level < 4)
		return;
	for (size_t j = 0; j < k; j++) {
		const struct qent *e = &b->q[b->order[j]];
		int64_t r = b->ents[j].ret;
		if (r == NOT_RUN)
			rst_logf(p->log, 4, "  [%d] syscall %ld not run", (int)e->tid, e->nr);
		else
			rst_logf(p->log, 4, "  [%d] syscall %ld(0x%llx, 0x%llx, 0x%llx, 0x%llx, 0x%llx, 0x%llx) = %lld", (int)e->tid,
				 e->nr, (unsigned long long)b->ents[j].a[0], (unsigned long long)b->ents[j].a[1],
				 (unsigned long long)b->ents[j].a[2], (unsigned long long)b->ents[j].a[3],
				 (unsigned long long)b->ents[j].a[4], (unsigned long long)b->ents[j].a[5], (long long)r);
	}
}

/* The queue's results, in queue order: out pointers, then the first call
 * that failed, or one that did not run without a reason. */
static int collect(rst_proc *p, size_t k, fp_error *err)
{
	struct rst_batch *b = p->batch;
	size_t bad = SIZE_MAX;
	int64_t bad_ret = 0;
	for (size_t j = 0; j < k; j++) {
		size_t i = b->order[j];
		const struct qent *e = &b->q[i];
		int64_t r = b->ents[j].ret;
		if (e->out)
			*e->out = r;
		bool failed = (e->flags & RST_MUST) && r < 0 && r >= -4095;
		if ((failed || r == NOT_RUN) && i < bad) {
			bad = i;
			bad_ret = r;
		}
	}
	if (bad == SIZE_MAX)
		return 0;
	const struct qent *e = &b->q[bad];
	const char *what = e->what == SIZE_MAX ? NULL : b->whats + e->what;
	char nrbuf[48];
	if (!what) {
		snprintf(nrbuf, sizeof(nrbuf), "system call %ld", e->nr);
		what = nrbuf;
	}
	if (bad_ret == NOT_RUN)
		return fp_fail(err, EIO, "internal: %s in thread %d was not run", what, (int)e->tid);
	return fp_fail(err, (int)-bad_ret, "%s failed in the restored process: %s", what, strerror((int)-bad_ret));
}

int rst_flush(rst_proc *p, fp_error *err)
{
	struct rst_batch *b = p->batch;
	if (!b || !b->n)
		return 0;
	int rc = -1;
	pid_t *tids = NULL;
	size_t *start = NULL, *count = NULL;
	bool *taken = NULL;
	if (p->deadline_ns && rst_now_ns() > p->deadline_ns) {
		fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT, "the restore ran past its deadline");
		goto out;
	}
	/* One contiguous list per thread, threads in order of first call. */
	size_t nt = 0, k = 0;
	tids = malloc(b->n * sizeof(*tids));
	start = malloc(b->n * sizeof(*start));
	count = malloc(b->n * sizeof(*count));
	taken = calloc(b->n, sizeof(bool));
	if (!tids || !start || !count || !taken) {
		fp_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (taken[i])
			continue;
		pid_t tid = b->q[i].tid;
		tids[nt] = tid;
		start[nt] = k;
		for (size_t j = i; j < b->n; j++) {
			if (taken[j] || b->q[j].tid != tid)
				continue;
			taken[j] = true;
			const struct qent *e = &b->q[j];
			b->ents[k] = (rst_ent){ (uint64_t)e->nr, e->flags & (RST_CTL_STOP | RST_CTL_REF | 0xffff0700u),
						{ e->a[0], e->a[1], e->a[2], e->a[3], e->a[4], e->a[5] }, NOT_RUN };
			b->order[k++] = j;
		}
		count[nt] = k - start[nt];
		nt++;
	}
	struct iovec loc[2] = { { b->ents, k * sizeof(rst_ent) }, { b->data, b->ndata } };
	struct iovec rem[2] = { { (void *)(uintptr_t)list_base(p), k * sizeof(rst_ent) },
				{ (void *)(uintptr_t)(list_base(p) + LIST_LEN), b->ndata } };
	int niov = b->ndata ? 2 : 1;
	if (process_vm_writev(p->pid, loc, niov, rem, niov, 0) != (ssize_t)(loc[0].iov_len + b->ndata) &&
	    (fp_mem_write(p->pid, list_base(p), b->ents, k * sizeof(rst_ent), err) ||
	     (b->ndata && fp_mem_write(p->pid, list_base(p) + LIST_LEN, b->data, b->ndata, err))))
		goto out;
	uint64_t end = p->runner + (uint64_t)(fp_rst_runner_end - fp_rst_runner);
	for (size_t i = 0; i < nt; i++) {
		fp_pt_thread *t = stopped_thread(p, tids[i], err);
		if (!t)
			goto out;
		struct user_regs_struct r = p->base_regs;
		r.rip = p->runner;
		r.orig_rax = (unsigned long long)-1;
		r.r12 = list_base(p) + start[i] * sizeof(rst_ent);
		r.r13 = count[i];
		if (fp_pt_set_regs(tids[i], &r, err) || resume(t, PTRACE_CONT, err))
			goto out;
	}
	int64_t dl = wait_deadline(p, k);
	for (size_t i = 0; i < nt; i++)
		if (wait_for(p, fp_pt_find(&p->pt, tids[i]), PTRACE_CONT, WANT_TRAP_AT, end, dl, err))
			goto out;
	if (fp_mem_read(p->pid, list_base(p), b->ents, k * sizeof(rst_ent), err))
		goto out;
	log_results(p, k);
	rc = collect(p, k, err);
out:
	free(tids);
	free(start);
	free(count);
	free(taken);
	reset(b);
	return rc;
}

int rst_sys_raw(rst_proc *p, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5, int64_t *ret, fp_error *err)
{
	if (!p->runner)
		return rst_step_sys(p, tid, nr, a0, a1, a2, a3, a4, a5, ret, err);
	if (rst_q(p, tid, NULL, 0, nr, a0, a1, a2, a3, a4, a5, ret, err))
		return -1;
	return rst_flush(p, err);
}

int rst_sys(rst_proc *p, pid_t tid, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
	    uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err)
{
	int64_t r = 0;
	if (!p->runner) {
		if (rst_step_sys(p, tid, nr, a0, a1, a2, a3, a4, a5, &r, err))
			return fp_wrap(err, "%s", what);
		if (r < 0 && r >= -4095)
			return fp_fail(err, (int)-r, "%s failed in the restored process: %s", what, strerror((int)-r));
	} else if (rst_q(p, tid, what, RST_MUST, nr, a0, a1, a2, a3, a4, a5, &r, err) || rst_flush(p, err)) {
		return -1;
	}
	if (ret)
		*ret = r;
	return 0;
}
