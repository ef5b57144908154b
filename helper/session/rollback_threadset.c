/* Rollback in place: what only a thread itself can tell of its state: its
 * alternate signal stack, parent-death signal and securebits, and its
 * process's child-subreaper flag (rollback_int.h).
 *
 * A rollback leaves the kernel's record of these as it is now. An
 * alternate stack set up since SNAP (Python's faulthandler.enable(), which
 * pytest turns on, puts one on the main thread) points into memory the
 * process allocated since: after the rollback that memory is SNAP's again,
 * free or another object's, and the next signal handled on that stack
 * writes its frame over it. No /proc file shows them, so while the
 * processes are stopped each thread is asked, in an injection session of
 * its own (sigaltstack(NULL, &now), prctl(PR_GET_PDEATHSIG),
 * prctl(PR_GET_SECUREBITS): about 25 us a thread; the first thread also
 * PR_GET_CHILD_SUBREAPER), and the answers are compared with SNAP's.
 * Securebits that differ make it a full restore (the restorer sets them
 * with the credentials); a stack, signal or subreaper flag that differs is
 * set back in place during the apply, and an undo sets the live one
 * again. A thread running on its alternate stack now cannot have it
 * changed: a full restore then. The injection scratch made for the
 * questions serves the apply's calls too, unless one of the apply's mapping
 * changes could land on it: then it is dropped here. */
#include "session/rollback_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "ptrace/pt_mem.h"

static const cr_thread_core *core_of(const struct rb_thread *t)
{
	return t->core.has_thread_core ? &t->core.thread_core : NULL;
}

/* The dump records a parent-death signal only when there is one (as CRIU
 * does): none recorded is none. */
static uint32_t snap_pdeath(const struct rb_thread *t)
{
	const cr_thread_core *tc = core_of(t);
	return tc && tc->has_pdeath_sig ? tc->pdeath_sig : 0;
}

/* SNAP's stack as sigaltstack sets it: SS_ONSTACK (the thread was on it at
 * SNAP) is not a mode to set. */
static struct rb_kstack snap_stack(const struct rb_thread *t)
{
	const cr_sas *s = &t->core.thread_core.sas;
	return (struct rb_kstack){ .sp = s->ss_sp, .flags = (int32_t)(s->ss_flags & ~(uint32_t)SS_ONSTACK),
				   .size = s->ss_size };
}

static bool same_stack(struct rb_kstack a, struct rb_kstack b)
{
	a.flags &= ~SS_ONSTACK;
	b.flags &= ~SS_ONSTACK;
	if ((a.flags & SS_DISABLE) && (b.flags & SS_DISABLE))
		return true;
	return a.sp == b.sp && a.size == b.size && a.flags == b.flags;
}

/* SNAP's child-subreaper flag: recorded only when set */
static int32_t snap_subreaper(const struct rb_proc *p)
{
	for (size_t i = 0; i < p->nth; i++)
		if (p->th[i].core.has_tc)
			return p->th[i].core.tc.has_child_subreaper && p->th[i].core.tc.child_subreaper;
	return 0;
}

/* One thread's questions: its stack into st, its signal into pd, and (sub
 * not 0) its process's subreaper flag into sub. */
static int ask(struct rb_proc *p, const struct rb_thread *t, uint64_t st, uint64_t pd, uint64_t sub, int64_t *secbits,
	       fp_error *err)
{
	if (fp_inject_begin(&p->ij, t->tid, err))
		return -1;
	const uint64_t a1[6] = { 0, st }, a2[6] = { PR_GET_PDEATHSIG, pd }, a3[6] = { PR_GET_SECUREBITS },
		       a4[6] = { PR_GET_CHILD_SUBREAPER, sub };
	int64_t r1 = 0, r2 = 0, r4 = 0;
	int rc = fp_inject_call(&p->ij, SYS_sigaltstack, a1, &r1, err) ||
			 fp_inject_call(&p->ij, SYS_prctl, a2, &r2, err) ||
			 fp_inject_call(&p->ij, SYS_prctl, a3, secbits, err) ||
			 (sub && fp_inject_call(&p->ij, SYS_prctl, a4, &r4, err))
		 ? -1
		 : 0;
	if (!rc && (r1 < 0 || r2 < 0 || *secbits < 0 || r4 < 0)) {
		int64_t bad = r1 < 0 ? r1 : r2 < 0 ? r2 : *secbits < 0 ? *secbits : r4;
		rc = fp_fail(err, (int)-bad, "thread %d: %s failed: %s", (int)t->tid,
			     r1 < 0	      ? "sigaltstack"
			     : r2 < 0	      ? "prctl(PR_GET_PDEATHSIG)"
			     : *secbits < 0 ? "prctl(PR_GET_SECUREBITS)"
					      : "prctl(PR_GET_CHILD_SUBREAPER)",
			     strerror((int)-bad));
	}
	fp_error e2;
	if (fp_inject_end(&p->ij, rc ? &e2 : err))
		rc = -1;
	return rc;
}

int rb_diff_thread_attrs(struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	size_t n = p->nth;
	if (!n)
		return 1;
	/* the threads' stacks, their signals, the process's subreaper flag */
	const size_t S = sizeof(struct rb_kstack), size = n * (S + sizeof(int32_t)) + sizeof(int32_t);
	uint8_t *buf = malloc(size);
	if (!buf)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t a = 0;
	int rc = rb_scratch(p, size, &a, err) || rb_inject_end(p, err) ? -1 : 1;
	for (size_t j = 0; rc == 1 && j < n; j++) {
		const struct rb_thread *t = &p->th[j];
		int64_t sec = 0;
		if (ask(p, t, a + j * S, a + n * S + 4 * j, j ? 0 : a + n * (S + 4), &sec, err))
			rc = -1;
		else if (core_of(t) && core_of(t)->has_creds && (uint64_t)sec != core_of(t)->creds.secbits)
			rc = NOT("thread %d of %d changed its securebits since SNAP (0x%llx, SNAP 0x%x)", (int)t->tid,
				 (int)p->pid, (unsigned long long)sec, core_of(t)->creds.secbits);
	}
	if (rc == 1 && fp_mem_read(p->pid, a, buf, size, err))
		rc = -1;
	if (rc == 1) {
		memcpy(&p->sub_live, buf + n * (S + 4), sizeof(p->sub_live));
		p->sub_set = !p->sub_live != !snap_subreaper(p);
	}
	for (size_t j = 0; rc == 1 && j < n; j++) {
		struct rb_thread *t = &p->th[j];
		memcpy(&t->sas_live, buf + j * S, S);
		memcpy(&t->pdeath_live, buf + n * S + 4 * j, sizeof(t->pdeath_live));
		t->sas_set = core_of(t) && core_of(t)->has_sas && !same_stack(t->sas_live, snap_stack(t));
		t->pdeath_set = core_of(t) && (uint32_t)t->pdeath_live != snap_pdeath(t);
		if (t->sas_set && (t->sas_live.flags & SS_ONSTACK))
			rc = NOT("thread %d of %d runs on an alternate signal stack that is not SNAP's", (int)t->tid,
				 (int)p->pid);
	}
	/* the scratch stays for the apply's injected calls, unless one of its
	 * mapping changes (SNAP's mappings made again) could land on it */
	bool in_way = false;
	for (size_t i = 0; i < p->nvops; i++)
		in_way |= p->vops[i].start < p->ij.scratch + p->ij.scratch_len && p->ij.scratch < p->vops[i].end;
	fp_error e2;
	if (in_way && (rb_inject_session(p, rc < 0 ? &e2 : err) || fp_inject_scratch_drop(&p->ij, rc < 0 ? &e2 : err) ||
		       rb_inject_end(p, rc < 0 ? &e2 : err)))
		rc = -1;
	free(buf);
	return rc;
}

/* Thread t's signal (set_pd) and stack (at scratch st, if set_stack) set;
 * *pd_done, *st_done: which were. */
static int tell(struct rb_proc *p, const struct rb_thread *t, bool set_pd, uint32_t pd, bool set_stack, uint64_t st,
		bool *pd_done, bool *st_done, fp_error *err)
{
	*pd_done = *st_done = false;
	if (fp_inject_begin(&p->ij, t->tid, err))
		return -1;
	int rc = 0;
	int64_t r;
	if (set_pd) {
		const uint64_t a[6] = { PR_SET_PDEATHSIG, pd };
		if (!(rc = fp_inject_call(&p->ij, SYS_prctl, a, &r, err)) && r < 0)
			rc = fp_fail(err, (int)-r, "thread %d: prctl(PR_SET_PDEATHSIG): %s", (int)t->tid, strerror((int)-r));
		*pd_done = !rc;
	}
	if (!rc && set_stack) {
		const uint64_t a[6] = { st, 0 };
		if (!(rc = fp_inject_call(&p->ij, SYS_sigaltstack, a, &r, err)) && r < 0)
			rc = fp_fail(err, (int)-r, "thread %d: its alternate signal stack cannot be set: %s", (int)t->tid,
				     strerror((int)-r));
		*st_done = !rc;
	}
	fp_error e2;
	if (fp_inject_end(&p->ij, rc ? &e2 : err))
		rc = -1;
	return rc;
}

/* SNAP's flag set where it differs; undo: the live one back */
static int subreaper_set(struct rb_proc *p, bool undo, fp_error *err)
{
	if (undo ? !p->sub_done : !p->sub_set)
		return 0;
	int32_t want = undo ? p->sub_live : snap_subreaper(p);
	int64_t r;
	if (rb_inject(p, SYS_prctl, PR_SET_CHILD_SUBREAPER, (uint64_t)want, 0, 0, 0, 0, &r, err))
		return -1;
	if (r < 0)
		return fp_fail(err, (int)-r, "process %d: prctl(PR_SET_CHILD_SUBREAPER): %s", (int)p->pid,
			       strerror((int)-r));
	p->sub_done = !undo;
	return 0;
}

static int threads_set(struct rb_proc *p, bool undo, fp_error *err)
{
	const size_t S = sizeof(struct rb_kstack);
	bool any = false;
	for (size_t i = 0; i < p->nth; i++) {
		const struct rb_thread *t = &p->th[i];
		any |= undo ? t->sas_done || t->pdeath_done : t->sas_set || t->pdeath_set;
	}
	if (!any)
		return 0;
	struct rb_kstack *want = calloc(p->nth, S);
	if (!want)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nth; i++) {
		const struct rb_thread *t = &p->th[i];
		if (undo ? t->sas_done : t->sas_set)
			want[i] = undo ? t->sas_live : snap_stack(t);
	}
	uint64_t a = 0;
	int rc = rb_scratch(p, p->nth * S, &a, err) || fp_mem_write(p->pid, a, want, p->nth * S, err) ||
			 rb_inject_end(p, err)
		 ? -1
		 : 0;
	for (size_t i = 0; !rc && i < p->nth; i++) {
		struct rb_thread *t = &p->th[i];
		bool st = undo ? t->sas_done : t->sas_set, pd = undo ? t->pdeath_done : t->pdeath_set, st_did, pd_did;
		if (!st && !pd)
			continue;
		rc = tell(p, t, pd, undo ? (uint32_t)t->pdeath_live : snap_pdeath(t), st, a + i * S, &pd_did, &st_did,
			  err);
		/* done: SNAP's is set (an undo sets the live one back over it) */
		if (pd_did)
			t->pdeath_done = !undo;
		if (st_did)
			t->sas_done = !undo;
	}
	/* the calls after these (the scratch dropped) run on the leader again */
	fp_error e2;
	if (rb_inject_session(p, rc ? &e2 : err))
		rc = -1;
	free(want);
	return rc;
}

int rb_thread_attrs_set(struct rb_proc *p, bool undo, fp_error *err)
{
	if (!undo && subreaper_set(p, false, err))
		return -1;
	int rc = threads_set(p, undo, err);
	fp_error e2;
	if (undo && subreaper_set(p, true, rc ? &e2 : err))
		rc = -1;
	return rc;
}
