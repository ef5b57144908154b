/* Rollback in place: each thread's alternate signal stack (rollback_int.h).
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
 * becomes a full restore. The calls run in a session of their own on each
 * thread, with the stack values in the process's injection scratch. */
#include "session/rollback_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "ptrace/pt_mem.h"

static bool has_stack(const struct rb_thread *t)
{
	return t->core.has_thread_core && t->core.thread_core.has_sas;
}

int rb_stacks_set(struct rb_proc *p, bool undo, fp_error *err)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nth; i++)
		n += undo ? p->th[i].sas_done : has_stack(&p->th[i]);
	if (!n)
		return 0;
	struct rb_kstack *want = calloc(n, sizeof(*want)), *old = calloc(n, sizeof(*old));
	size_t *which = calloc(n, sizeof(*which));
	int rc = want && old && which ? 0 : fp_fail(err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; !rc && i < p->nth; i++) {
		struct rb_thread *t = &p->th[i];
		if (undo ? !t->sas_done : !has_stack(t))
			continue;
		const cr_sas *s = &t->core.thread_core.sas;
		/* SS_ONSTACK (the thread was on it at SNAP) is not a mode to set */
		want[k] = undo ? t->sas_old
			       : (struct rb_kstack){ .sp = s->ss_sp,
						  .flags = (int32_t)(s->ss_flags & ~(uint32_t)SS_ONSTACK),
						  .size = s->ss_size };
		which[k++] = i;
	}
	size_t half = n * sizeof(struct rb_kstack);
	uint64_t a = 0;
	if (!rc && (rb_scratch(p, 2 * half, &a, err) || fp_mem_write(p->pid, a, want, half, err) ||
		    rb_inject_end(p, err)))
		rc = -1;
	size_t done = 0;
	for (; !rc && done < n; done++) {
		struct rb_thread *t = &p->th[which[done]];
		const uint64_t args[6] = { a + done * sizeof(struct rb_kstack), a + half + done * sizeof(struct rb_kstack) };
		int64_t r;
		if (fp_inject_syscall(&p->ij, t->tid, SYS_sigaltstack, args, &r, err))
			rc = -1;
		else if (r < 0)
			rc = fp_fail(err, (int)-r,
				     "thread %d: its alternate signal stack cannot be set back to SNAP's: %s%s", (int)t->tid,
				     strerror((int)-r), r == -EPERM ? " (it is running on it now)" : "");
		if (rc)
			break;
	}
	fp_error e2;
	if (done && !undo && fp_mem_read(p->pid, a + half, old, done * sizeof(struct rb_kstack), rc ? &e2 : err))
		rc = -1; /* nothing known to undo them with */
	else
		for (size_t j = 0; j < done; j++) {
			struct rb_thread *t = &p->th[which[j]];
			if (!undo)
				t->sas_old = old[j];
			t->sas_done = !undo;
		}
	/* the calls after these (the scratch dropped) run on the leader again */
	if (rb_inject_session(p, rc ? &e2 : err))
		rc = -1;
	free(want);
	free(old);
	free(which);
	return rc;
}
