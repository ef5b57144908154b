/* Rollback in place: what the kernel keeps of a process besides its
 * memory, fds, signals and timers (rollback_int.h).
 *
 * A rollback leaves the processes' attributes as they are now. Each must
 * be SNAP's, read the way the dump read it (dump_attrs.h), or the
 * processes would run on at SNAP with, say, the resource limits or the
 * thread names they set since. Per thread: creds (ids, groups,
 * capabilities, no_new_privs; under seccomp now, which SNAP cannot be),
 * name, scheduling policy, priority and nice. Per process: resource
 * limits, personality, oom_score_adj, process group, session and umask.
 * The umask (a shell's `umask 077`) is put back with an injected umask();
 * any other difference makes it a full restore, which sets them all, and
 * says which. Signal handlers: which signals are ignored and which caught
 * is compared (rollback_diff.c); a caught one's handler, flags and mask
 * only the process can tell, so each rollback sets SNAP's back with an
 * injected rt_sigaction per caught signal (a handful for most programs),
 * whose old value an undo sets again. File locks: rollback_locks.c; each
 * thread's alternate signal stack and parent-death signal, the
 * child-subreaper flag and securebits: rollback_threadset.c. */
#include "session/rollback_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/dump_attrs.h"
#include "dump/dump_int.h"
#include "ptrace/pt_mem.h"

static const char *const limit_names[CR_RLIMITS] = {
	"CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE",
	"MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};

static bool same_creds(const cr_creds *a, const cr_creds *b)
{
	if (a->uid != b->uid || a->gid != b->gid || a->euid != b->euid || a->egid != b->egid || a->suid != b->suid ||
	    a->sgid != b->sgid || a->fsuid != b->fsuid || a->fsgid != b->fsgid || a->n_groups != b->n_groups ||
	    (a->n_groups && memcmp(a->groups, b->groups, a->n_groups * sizeof(*a->groups))) ||
	    (a->has_no_new_privs && b->has_no_new_privs && a->no_new_privs != b->no_new_privs))
		return false;
	const uint32_t *x[] = { a->cap_inh, a->cap_prm, a->cap_eff, a->cap_bnd, a->cap_amb };
	const uint32_t *y[] = { b->cap_inh, b->cap_prm, b->cap_eff, b->cap_bnd, b->cap_amb };
	const size_t nx[] = { a->n_cap_inh, a->n_cap_prm, a->n_cap_eff, a->n_cap_bnd, a->n_cap_amb };
	const size_t ny[] = { b->n_cap_inh, b->n_cap_prm, b->n_cap_eff, b->n_cap_bnd, b->n_cap_amb };
	for (int i = 0; i < 5; i++)
		if (nx[i] && ny[i] && memcmp(x[i], y[i], (nx[i] < ny[i] ? nx[i] : ny[i]) * sizeof(uint32_t)))
			return false;
	return true;
}

/* 1: thread i is SNAP's in its creds, name and scheduling; *umask: the
 * process's (the leader's status says it), -1 if not shown. */
static int diff_thread(struct rb_proc *p, size_t i, long *umask, char *why, size_t len, fp_error *err)
{
	const struct rb_thread *t = &p->th[i];
	const cr_thread_core *tc = t->core.has_thread_core ? &t->core.thread_core : NULL;
	char path[96], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)p->pid, (int)t->tid);
	if (dump_read_proc(path, buf, sizeof(buf)) <= 0)
		return fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	const char *um = t->tid == p->pid ? strstr(buf, "\nUmask:") : NULL;
	if (um)
		*umask = strtol(um + 7, NULL, 8);
	if (tc && tc->has_creds) {
		cr_creds live = { 0 };
		fp_error ce;
		int rc = dump_creds_parse(buf, p->pid, t->tid, &live, &ce);
		bool same = !rc && same_creds(&live, &tc->creds);
		free(live.groups);
		if (rc)
			return NOT("thread %d of %d: %s", (int)t->tid, (int)p->pid, ce.msg);
		if (!same)
			return NOT("thread %d of %d changed its credentials since SNAP (ids, groups or capabilities)",
				   (int)t->tid, (int)p->pid);
	}
	if (tc && tc->has_comm) {
		char comm[CR_COMM_MAX];
		dump_read_comm(p->pid, t->tid, comm, sizeof(comm));
		if (strcmp(comm, tc->comm))
			return NOT("thread %d of %d is named \"%s\" now, \"%s\" in SNAP", (int)t->tid, (int)p->pid, comm,
				   tc->comm);
	}
	uint32_t pol, prio;
	int32_t nice;
	if (tc && tc->has_sched_policy && dump_read_sched(t->tid, &pol, &prio, &nice) &&
	    (pol != tc->sched_policy || prio != tc->sched_prio || nice != tc->sched_nice))
		return NOT("thread %d of %d changed its scheduling since SNAP (policy %u, priority %u, nice %d; SNAP: %u, "
			   "%u, %d)", (int)t->tid, (int)p->pid, pol, prio, nice, tc->sched_policy, tc->sched_prio,
			   tc->sched_nice);
	return 1;
}

static long read_num(pid_t pid, const char *what, int base, long dflt)
{
	char path[64], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	return dump_read_proc(path, buf, sizeof(buf)) > 0 ? strtol(buf, NULL, base) : dflt;
}

int rb_diff_attrs(struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	long umask = -1;
	for (size_t i = 0; i < p->nth; i++) {
		int rc = diff_thread(p, i, &umask, why, len, err);
		if (rc != 1)
			return rc;
	}
	const cr_task_core *tc = NULL;
	for (size_t i = 0; i < p->nth && !tc; i++)
		if (p->th[i].core.has_tc)
			tc = &p->th[i].core.tc;
	for (size_t r = 0; tc && tc->has_rlimits && r < tc->rlimits.n_rlimits && r < CR_RLIMITS; r++) {
		cr_rlimit now;
		const cr_rlimit *s = &tc->rlimits.rlimits[r];
		if (dump_read_rlimit(p->pid, (int)r, &now))
			return fp_fail(err, errno, "cannot read resource limit %zu of %d: %s", r, (int)p->pid, strerror(errno));
		if (now.cur != s->cur || now.max != s->max)
			return NOT("process %d changed its resource limit RLIMIT_%s since SNAP", (int)p->pid, limit_names[r]);
	}
	if (tc) {
		long pers = read_num(p->pid, "personality", 16, 0), adj = read_num(p->pid, "oom_score_adj", 10, 0);
		if ((uint32_t)pers != tc->personality)
			return NOT("process %d changed its personality since SNAP (0x%lx, SNAP 0x%x)", (int)p->pid, pers,
				   tc->personality);
		if (adj != (tc->has_oom_score_adj ? tc->oom_score_adj : 0))
			return NOT("process %d changed its oom_score_adj since SNAP (%ld, SNAP %d)", (int)p->pid, adj,
				   tc->has_oom_score_adj ? tc->oom_score_adj : 0);
	}
	if (p->ps) { /* a child that made itself a group leader (setpgid) or a session's (setsid) */
		pid_t g = getpgid(p->pid), s = getsid(p->pid);
		if ((g >= 0 && (uint32_t)g != p->ps->pgid) || (s >= 0 && (uint32_t)s != p->ps->sid))
			return NOT("process %d changed its process group or session since SNAP (%d/%d, SNAP %u/%u)",
				   (int)p->pid, (int)g, (int)s, p->ps->pgid, p->ps->sid);
	}
	p->umask_set = p->fs.has_umask && umask >= 0 && (uint32_t)umask != p->fs.umask;
	return 1;
}

static int umask_set(struct rb_proc *p, bool undo, fp_error *err)
{
	if (!p->umask_set || undo != p->umask_done)
		return 0;
	int64_t r;
	if (rb_inject(p, SYS_umask, undo ? p->umask_old : p->fs.umask, 0, 0, 0, 0, 0, &r, err))
		return -1;
	if (!undo)
		p->umask_old = (uint32_t)r;
	p->umask_done = !undo;
	return 0;
}

/* SNAP's handlers of the signals it catches; undo: the live ones of those
 * set. Scratch: the values to set, then the values they replace. */
static int handlers_set(struct rb_proc *p, bool undo, fp_error *err)
{
	const cr_task_core *tc = NULL;
	for (size_t i = 0; i < p->nth && !tc; i++)
		if (p->th[i].core.has_tc)
			tc = &p->th[i].core.tc;
	fp_ksigaction want[64];
	int sigs[64], n = 0;
	for (size_t i = 0, sig = 1; tc && i < tc->n_sigactions && sig <= 64; i++, sig++) {
		if (sig == 9 || sig == 19)
			sig++;
		if (sig == 9 || sig == 19)
			sig++;
		const cr_sa *sa = &tc->sigactions[i];
		bool set = p->sa_set & (1ull << (sig - 1));
		if (sig > 64 || (undo ? !set : sa->sigaction <= 1))
			continue;
		want[n] = undo ? p->sa_old[sig - 1]
			       : (fp_ksigaction){ .handler = sa->sigaction, .flags = sa->flags, .restorer = sa->restorer,
						  .mask = sa->mask };
		sigs[n++] = (int)sig;
	}
	if (!n)
		return 0;
	size_t half = (size_t)n * sizeof(fp_ksigaction);
	uint64_t a;
	if (rb_scratch(p, 2 * half, &a, err) || fp_mem_write(p->pid, a, want, half, err))
		return -1;
	int rc = 0, done = 0;
	for (; done < n && !rc; done++) {
		int64_t r;
		rc = rb_inject(p, SYS_rt_sigaction, (uint64_t)sigs[done], a + (uint64_t)done * sizeof(fp_ksigaction),
			       a + half + (uint64_t)done * sizeof(fp_ksigaction), 8, 0, 0, &r, err);
		if (!rc && r < 0)
			rc = fp_fail(err, (int)-r, "process %d: rt_sigaction(%d) failed: %s", (int)p->pid, sigs[done],
				     strerror((int)-r));
		if (rc)
			break;
	}
	if (undo) {
		for (int i = 0; i < done; i++)
			p->sa_set &= ~(1ull << (sigs[i] - 1));
		return rc;
	}
	fp_ksigaction old[64];
	fp_error e2;
	if (done && fp_mem_read(p->pid, a + half, old, (size_t)done * sizeof(fp_ksigaction), rc ? &e2 : err))
		return -1; /* nothing known to undo them with: the rollback fails without an undo of these */
	for (int i = 0; i < done; i++) {
		p->sa_old[sigs[i] - 1] = old[i];
		p->sa_set |= 1ull << (sigs[i] - 1);
	}
	return rc;
}

int rb_attrs_set(struct rb_proc *p, bool undo, fp_error *err)
{
	if (undo) { /* the other way round, each tried */
		fp_error e2;
		int h = handlers_set(p, true, err), u = umask_set(p, true, h ? &e2 : err);
		return h || u ? -1 : 0;
	}
	return umask_set(p, false, err) || handlers_set(p, false, err) ? -1 : 0;
}
