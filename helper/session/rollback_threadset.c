/* Rollback in place: what only a thread itself can tell of its state, its
 * alternate signal stack and its parent-death signal (rollback_int.h).
 *
 * A rollback leaves the kernel's record of a thread's alternate signal
 * stack as it is now. One set up since SNAP (Python's faulthandler.enable(),
 * which pytest turns on, puts one on the main thread) points into memory
 * the process allocated since: after the rollback that memory is SNAP's
 * again, free or another object's, and the next signal handled on that
 * stack writes its frame over it. Only the thread itself can tell its
 * stack (sigaltstack), so every rollback sets SNAP's back on each thread
 * with one injected sigaltstack(SNAP's, &live), whose old value an undo
 * sets again. A thread running on its alternate stack now (inside a
 * handler) cannot have it changed (EPERM): the rollback is undone and
 * becomes a full restore. The parent-death signal (prctl) goes the same
 * way: read with the stack's call, set only where it is not SNAP's. The
 * calls run in a session of their own on each thread (about 22 us a
 * thread with the stack alone), with the values in the process's
 * injection scratch. */
#include "session/rollback_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "ptrace/pt_mem.h"

static bool has_stack(const struct rb_thread *t)
{
	return t->core.has_thread_core && t->core.thread_core.has_sas;
}

/* The dump records a parent-death signal only when there is one (as CRIU
 * does): none recorded is none (0). */
static bool has_pdeath(const struct rb_thread *t)
{
	return t->core.has_thread_core;
}

static uint32_t snap_pdeath(const struct rb_thread *t)
{
	return t->core.thread_core.has_pdeath_sig ? t->core.thread_core.pdeath_sig : 0;
}

static bool wanted(const struct rb_thread *t, bool undo)
{
	return undo ? t->sas_done || t->pdeath_done : has_stack(t) || has_pdeath(t);
}

/* Thread t's calls, in a session of its own: sigaltstack(a, old) and, for
 * a rollback, prctl(PR_GET_PDEATHSIG, pd); set_pd: prctl(PR_SET_PDEATHSIG,
 * pdeath) (an undo, or a signal found to differ from SNAP's). */
static int thread_calls(struct rb_proc *p, struct rb_thread *t, bool stack, uint64_t a, uint64_t old, uint64_t pd,
			bool set_pd, uint32_t pdeath, fp_error *err)
{
	if (fp_inject_begin(&p->ij, t->tid, err))
		return -1;
	int rc = 0;
	int64_t r;
	if (pd) {
		const uint64_t get[6] = { PR_GET_PDEATHSIG, pd };
		if (!(rc = fp_inject_call(&p->ij, SYS_prctl, get, &r, err)) && r < 0)
			rc = fp_fail(err, (int)-r, "thread %d: prctl(PR_GET_PDEATHSIG): %s", (int)t->tid,
				     strerror((int)-r));
	}
	if (!rc && set_pd) {
		const uint64_t set[6] = { PR_SET_PDEATHSIG, pdeath };
		if (!(rc = fp_inject_call(&p->ij, SYS_prctl, set, &r, err)) && r < 0)
			rc = fp_fail(err, (int)-r, "thread %d: prctl(PR_SET_PDEATHSIG): %s", (int)t->tid,
				     strerror((int)-r));
	}
	if (!rc && stack) {
		const uint64_t args[6] = { a, old };
		if (!(rc = fp_inject_call(&p->ij, SYS_sigaltstack, args, &r, err)) && r < 0)
			rc = fp_fail(err, (int)-r,
				     "thread %d: its alternate signal stack cannot be set back to SNAP's: %s%s", (int)t->tid,
				     strerror((int)-r), r == -EPERM ? " (it is running on it now)" : "");
	}
	fp_error e2;
	if (fp_inject_end(&p->ij, rc ? &e2 : err))
		rc = -1;
	return rc;
}

/* Scratch, per thread j of n: the stack to set at a + j * S, the one it
 * replaces at a + (n + j) * S, the parent-death signal at a + 2 * n * S
 * + 4 * j. A rollback reads every thread's signal and sets its stack in
 * one session per thread, then sets the signal only where it differs from
 * SNAP's (rarely: one more session). */
int rb_thread_attrs_set(struct rb_proc *p, bool undo, fp_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nth; i++)
		n += wanted(&p->th[i], undo);
	if (!n)
		return 0;
	const size_t S = sizeof(struct rb_kstack);
	size_t len = 2 * n * S + n * sizeof(int32_t);
	uint8_t *buf = calloc(1, len);
	size_t *which = calloc(n, sizeof(*which));
	int rc = buf && which ? 0 : fp_fail(err, ENOMEM, "out of memory");
	struct rb_kstack *want = (struct rb_kstack *)buf;
	size_t k = 0;
	for (size_t i = 0; !rc && i < p->nth; i++) {
		struct rb_thread *t = &p->th[i];
		if (!wanted(t, undo))
			continue;
		const cr_sas *s = &t->core.thread_core.sas;
		/* SS_ONSTACK (the thread was on it at SNAP) is not a mode to set */
		want[k] = undo ? t->sas_old
			       : (struct rb_kstack){ .sp = s->ss_sp,
						     .flags = (int32_t)(s->ss_flags & ~(uint32_t)SS_ONSTACK),
						     .size = s->ss_size };
		which[k++] = i;
	}
	uint64_t a = 0;
	if (!rc && (rb_scratch(p, len, &a, err) || fp_mem_write(p->pid, a, want, n * S, err) || rb_inject_end(p, err)))
		rc = -1;
	size_t done = 0; /* the threads whose calls all succeeded */
	for (; !rc && done < n; done++) {
		struct rb_thread *t = &p->th[which[done]];
		bool stack = undo ? t->sas_done : has_stack(t);
		bool pd = !undo && has_pdeath(t);
		if (thread_calls(p, t, stack, a + done * S, a + (n + done) * S, pd ? a + 2 * n * S + 4 * done : 0,
				 undo && t->pdeath_done, (uint32_t)t->pdeath_old, err)) {
			rc = -1;
			break;
		}
		if (undo)
			t->sas_done = t->pdeath_done = false;
	}
	fp_error e2;
	if (!undo && done && fp_mem_read(p->pid, a + n * S, buf + n * S, n * S + n * sizeof(int32_t), rc ? &e2 : err)) {
		rc = -1; /* nothing known to undo them with */
		done = 0;
	}
	for (size_t j = 0; !undo && j < done; j++) {
		struct rb_thread *t = &p->th[which[j]];
		int32_t now;
		memcpy(&now, buf + 2 * n * S + 4 * j, sizeof(now));
		if (has_stack(t)) {
			memcpy(&t->sas_old, buf + (n + j) * S, S);
			t->sas_done = true;
		}
		t->pdeath_old = now;
		if (!rc && has_pdeath(t) && (uint32_t)now != snap_pdeath(t)) {
			rc = thread_calls(p, t, false, 0, 0, 0, true, snap_pdeath(t), err);
			t->pdeath_done = !rc;
		}
	}
	/* the calls after these (the scratch dropped) run on the leader again */
	if (rb_inject_session(p, rc ? &e2 : err))
		rc = -1;
	free(buf);
	free(which);
	return rc;
}
