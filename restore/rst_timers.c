/* POSIX timers (timer_create) come back with their ids, clocks, signals
 * and time left. A timer's id is a number the program holds, so it must be
 * the same: the kernel hands out a chosen id while the process has
 * PR_TIMER_CREATE_RESTORE_IDS on (Linux 6.15+; without it the image goes
 * to CRIU, see rst_image.c). Made after the threads, whose tids a
 * SIGEV_THREAD_ID timer names. The overrun count is not restored: the
 * kernel has no call to set it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "rst_int.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif

/* The kernel's struct sigevent as timer_create reads it (64 bytes). */
struct k_sigevent {
	uint64_t value;
	int32_t signo, notify;
	int32_t tid;
	int32_t pad[11];
};

bool rst_timers_supported(void)
{
	return prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0) >= 0;
}

static int by_id(const void *a, const void *b)
{
	uint32_t x = (*(const cr_posix_timer *const *)a)->it_id, y = (*(const cr_posix_timer *const *)b)->it_id;
	return x < y ? -1 : x > y;
}

static int make_timer(rst_proc *p, const cr_posix_timer *t, fp_error *err)
{
	uint64_t ev_at, id_at;
	struct k_sigevent *ev = rst_q_data(p, sizeof(*ev), &ev_at, err);
	if (!ev)
		return -1;
	ev->value = t->sival_ptr;
	ev->signo = (int32_t)t->si_signo;
	ev->notify = (int32_t)t->it_sigev_notify;
	ev->tid = t->has_notify_thread_id ? t->notify_thread_id : 0;
	int32_t *id = rst_q_data(p, sizeof(*id), &id_at, err);
	if (!id)
		return -1;
	*id = (int32_t)t->it_id;
	char what[96];
	snprintf(what, sizeof(what), "timer_create of POSIX timer %u (clock %d)", t->it_id, (int)t->clock_id);
	if (rst_q(p, p->pid, what, RST_MUST, SYS_timer_create, t->clock_id, ev_at, id_at, 0, 0, 0, NULL, err))
		return -1;
	if (!t->vsec && !t->vnsec)
		return 0; /* disarmed */
	struct itimerspec v = { .it_interval = { (time_t)t->isec, (long)t->insec },
				.it_value = { (time_t)t->vsec, (long)t->vnsec } };
	snprintf(what, sizeof(what), "timer_settime of POSIX timer %u", t->it_id);
	return rst_q_mem(p, p->pid, what, RST_MUST, SYS_timer_settime, t->it_id, 0, 0, 0, 0, 0, 2, &v, sizeof(v), NULL,
			 err);
}

int rst_posix_timers(rst_proc *p, fp_error *err)
{
	const cr_task_core *tc = &p->im->th[0].core.tc;
	size_t n = tc->has_timers ? tc->timers.n_posix : 0;
	if (!n)
		return 0;
	/* Made in the order of their ids, which is the order the kernel gave
	 * them out: /proc/PID/timers then lists them as before (newest first),
	 * whichever order the image (ours or CRIU's) has them in. */
	const cr_posix_timer **order = calloc(n, sizeof(*order));
	if (!order)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		order[i] = &tc->timers.posix[i];
	qsort(order, n, sizeof(*order), by_id);
	int rc = rst_q(p, p->pid, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", RST_MUST, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
		       PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0, 0, NULL, err);
	for (size_t i = 0; i < n && !rc; i++)
		rc = make_timer(p, order[i], err);
	free(order);
	if (rc ||
	    rst_q(p, p->pid, "prctl(PR_TIMER_CREATE_RESTORE_IDS off)", RST_MUST, SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
		  PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0, 0, NULL, err) ||
	    rst_flush(p, err))
		return -1;
	rst_logf(p->log, 3, "%zu POSIX timers", n);
	return 0;
}
