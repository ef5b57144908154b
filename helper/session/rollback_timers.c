/* Rollback in place: timers (rollback_int.h).
 *
 * The processes go on after a rollback from where it stopped them, and so
 * would their timers: an alarm() made since SNAP would still fire, one
 * that SNAP had armed would be gone or late. No file tells a process's
 * interval timers (setitimer), so every rollback sets SNAP's three, each
 * injected setitimer handing back the live value that an undo sets again.
 * The POSIX timers must be SNAP's own, as /proc/PID/timers lists them
 * (id, clock, signal, value, target), or the rollback is a full restore,
 * which makes them anew; they get SNAP's times the same way. */
#include "session/rollback_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "dump/dump_int.h"
#include "ptrace/pt_mem.h"

static const cr_timers *snap_timers(const struct rb_proc *p)
{
	for (size_t i = 0; i < p->nth; i++)
		if (p->th[i].core.has_tc)
			return p->th[i].core.tc.has_timers ? &p->th[i].core.tc.timers : NULL;
	return NULL;
}

static int by_id(const void *a, const void *b)
{
	uint32_t x = ((const cr_posix_timer *)a)->it_id, y = ((const cr_posix_timer *)b)->it_id;
	return x < y ? -1 : x > y;
}

static bool same_timer(const cr_posix_timer *a, const cr_posix_timer *b)
{
	return a->it_id == b->it_id && a->clock_id == b->clock_id && a->si_signo == b->si_signo &&
	       a->sival_ptr == b->sival_ptr && a->it_sigev_notify == b->it_sigev_notify &&
	       a->has_notify_thread_id == b->has_notify_thread_id &&
	       (!a->has_notify_thread_id || a->notify_thread_id == b->notify_thread_id);
}

int rb_diff_timers(struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	const cr_timers *s = snap_timers(p);
	size_t ns = s ? s->n_posix : 0;
	cr_timers live = { 0 };
	fp_error le;
	if (dump_timers_list(p->pid, &live, &le)) {
		free(live.posix);
		if (le.errnum == ENOMEM)
			return fp_fail(err, ENOMEM, "out of memory");
		return NOT("process %d: its POSIX timers: %s", (int)p->pid, le.msg);
	}
	int rc = 1;
	cr_posix_timer *snap = ns ? malloc(ns * sizeof(*snap)) : NULL;
	if (live.n_posix != ns)
		rc = NOT("process %d has %zu POSIX timers, SNAP has %zu", (int)p->pid, live.n_posix, ns);
	else if (ns && !snap)
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc == 1 && ns) {
		memcpy(snap, s->posix, ns * sizeof(*snap));
		qsort(snap, ns, sizeof(*snap), by_id);
		qsort(live.posix, ns, sizeof(*snap), by_id);
		for (size_t i = 0; i < ns && rc == 1; i++)
			if (!same_timer(&snap[i], &live.posix[i]))
				rc = NOT("process %d: POSIX timer %u is not SNAP's timer %u (made again, or another "
					 "clock, signal or target)", (int)p->pid, live.posix[i].it_id, snap[i].it_id);
	}
	free(snap);
	free(live.posix);
	return rc;
}

static struct itimerval itv(const cr_itimer *t)
{
	return (struct itimerval){ .it_interval = { (time_t)t->isec, (suseconds_t)t->iusec },
				   .it_value = { (time_t)t->vsec, (suseconds_t)t->vusec } };
}

static struct itimerspec its(const cr_posix_timer *t)
{
	return (struct itimerspec){ .it_interval = { (time_t)t->isec, (long)t->insec },
				    .it_value = { (time_t)t->vsec, (long)t->vnsec } };
}

/* Scratch layout: the values to set (3 itimervals, then one itimerspec per
 * POSIX timer), then as much again for the values they replace. */
int rb_timers_set(struct rb_proc *p, bool undo, fp_error *err)
{
	const cr_timers *s = snap_timers(p);
	size_t np = s ? s->n_posix : 0, calls = undo ? p->timers_set : 3 + np;
	size_t half = 3 * sizeof(struct itimerval) + np * sizeof(struct itimerspec);
	if (!undo && np && !p->pt_old && !(p->pt_old = calloc(np, sizeof(*p->pt_old))))
		return fp_fail(err, ENOMEM, "out of memory");
	uint8_t *buf = calloc(1, 2 * half);
	if (!buf)
		return fp_fail(err, ENOMEM, "out of memory");
	struct itimerval *iv = (struct itimerval *)buf;
	struct itimerspec *pv = (struct itimerspec *)(buf + 3 * sizeof(struct itimerval));
	const cr_itimer zero = { 0 };
	for (int w = 0; w < 3; w++) {
		const cr_itimer *t = !s ? &zero : w == 0 ? &s->real : w == 1 ? &s->virt : &s->prof;
		iv[w] = undo ? p->it_old[w] : itv(t);
	}
	for (size_t i = 0; i < np; i++)
		pv[i] = undo ? p->pt_old[i] : its(&s->posix[i]);
	uint64_t a;
	int rc = rb_scratch(p, 2 * half, &a, err) || fp_mem_write(p->pid, a, buf, half, err) ? -1 : 0;
	size_t done = 0;
	for (; done < calls && !rc; done++) {
		int64_t r;
		uint64_t old = a + half;
		if (done < 3)
			rc = rb_inject(p, SYS_setitimer, done, a + done * sizeof(*iv), old + done * sizeof(*iv), 0, 0, 0, &r, err);
		else
			rc = rb_inject(p, SYS_timer_settime, s->posix[done - 3].it_id, 0,
				       a + 3 * sizeof(*iv) + (done - 3) * sizeof(*pv),
				       old + 3 * sizeof(*iv) + (done - 3) * sizeof(*pv), 0, 0, &r, err);
		if (!rc && r < 0)
			rc = done < 3 ? fp_fail(err, (int)-r, "process %d: setitimer(%zu) failed: %s", (int)p->pid, done,
						strerror((int)-r))
				      : fp_fail(err, (int)-r, "process %d: timer_settime of POSIX timer %u failed: %s",
						(int)p->pid, s->posix[done - 3].it_id, strerror((int)-r));
		if (rc)
			break;
	}
	if (!undo) { /* what the calls made replaced, for an undo */
		fp_error e2;
		if (done && fp_mem_read(p->pid, a + half, buf + half, half, rc ? &e2 : err)) {
			rc = -1;
			done = 0;
		}
		struct itimerval *ov = (struct itimerval *)(buf + half);
		struct itimerspec *op = (struct itimerspec *)(buf + half + 3 * sizeof(struct itimerval));
		for (size_t i = 0; i < done; i++)
			if (i < 3)
				p->it_old[i] = ov[i];
			else
				p->pt_old[i - 3] = op[i - 3];
		p->timers_set = done;
	} else if (!rc) {
		p->timers_set = 0;
	}
	free(buf);
	return rc;
}
