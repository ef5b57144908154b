/* POSIX timers (timer_create) of a process, into core's task_timers_entry.
 *
 * /proc/PID/timers gives each timer's id, signal, value, notification and
 * clock; the time left, the interval and the overrun count only the process
 * itself can ask for (injected timer_gettime and timer_getoverrun, while it
 * is stopped, at most 100 timers per round trip: one itimerspec each in
 * the injection data page). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "dump_int.h"
#include "ptrace/pt_mem.h"

#define TIMERS_PER_ROUND 100
#define PROC_TIMERS_MAX (1u << 20)

/* sigev_notify values (the kernel's): SIGEV_SIGNAL 0, SIGEV_NONE 1,
 * SIGEV_THREAD 2, SIGEV_THREAD_ID 4 (or'd with the others). */
static int notify_kind(const char *s, const char *target, uint32_t *out)
{
	if (!strcmp(s, "signal"))
		*out = SIGEV_SIGNAL;
	else if (!strcmp(s, "none"))
		*out = SIGEV_NONE;
	else if (!strcmp(s, "thread"))
		*out = SIGEV_THREAD;
	else
		return -1;
	if (!strcmp(target, "tid"))
		*out |= SIGEV_THREAD_ID;
	else if (strcmp(target, "pid"))
		return -1;
	return 0;
}

/* Parses /proc/PID/timers into t->posix (values still to be asked). */
static int parse_timers(pid_t pid, const char *text, cr_timers *t, fp_error *err)
{
	size_t cap = 0;
	cr_posix_timer *cur = NULL;
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		int id, signo, clock, tid;
		unsigned long long ptr;
		char kind[16], target[8];
		if (sscanf(l, "ID: %d", &id) == 1) {
			if (t->n_posix == cap) {
				cap = cap ? cap * 2 : 8;
				cr_posix_timer *n = realloc(t->posix, cap * sizeof(*n));
				if (!n)
					return fp_fail(err, ENOMEM, "out of memory");
				t->posix = n;
			}
			cur = &t->posix[t->n_posix++];
			memset(cur, 0, sizeof(*cur));
			cur->it_id = (uint32_t)id;
		} else if (!cur) {
			continue;
		} else if (sscanf(l, "signal: %d/%llx", &signo, &ptr) == 2) {
			cur->si_signo = (uint32_t)signo;
			cur->sival_ptr = ptr;
		} else if (sscanf(l, "notify: %15[a-z]/%7[a-z].%d", kind, target, &tid) == 3) {
			if (notify_kind(kind, target, &cur->it_sigev_notify))
				return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
						    "%d: timer %u notifies in a way forkpoint does not know (%s/%s)",
						    (int)pid, cur->it_id, kind, target);
			if (cur->it_sigev_notify & SIGEV_THREAD_ID) {
				cur->has_notify_thread_id = true;
				cur->notify_thread_id = tid;
			}
		} else if (sscanf(l, "ClockID: %d", &clock) == 1) {
			/* A CPU-time clock encodes ~pid << 3, a per-thread bit (4) and
			 * the clock kind; pid 0 is the process itself. */
			if (clock < 0 && (~(clock >> 3) != 0 || (clock & 4)))
				return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
						    "%d: timer %u counts the CPU time of a thread or of another "
						    "process (clock %d), which cannot be restored",
						    (int)pid, cur->it_id, clock);
			cur->clock_id = (uint32_t)clock;
		}
	}
	return 0;
}

int dump_timers_list(pid_t pid, cr_timers *t, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/timers", (int)pid);
	char *text = malloc(PROC_TIMERS_MAX);
	if (!text)
		return fp_fail(err, ENOMEM, "out of memory");
	long n = dump_read_proc(path, text, PROC_TIMERS_MAX);
	int rc = n < 0 ? fp_fail(err, errno, "cannot read %s: %s", path, strerror(errno))
		       : parse_timers(pid, n > 0 ? text : "", t, err);
	free(text);
	return rc;
}

int dump_posix_timers(struct dump_ctx *c, struct dump_proc *p, cr_timers *t, fp_error *err)
{
	int rc = dump_timers_list(p->pid, t, err);
	if (rc || !t->n_posix)
		return rc;
	for (size_t first = 0; first < t->n_posix && !rc; first += TIMERS_PER_ROUND) {
		size_t k = t->n_posix - first < TIMERS_PER_ROUND ? t->n_posix - first : TIMERS_PER_ROUND;
		if (dinj_begin(p, p->pid, err))
			return -1;
		uint64_t d = dinj_data(p);
		for (size_t i = 0; i < k && !rc; i++) {
			cr_posix_timer *pt = &t->posix[first + i];
			int64_t r = 0;
			uint64_t g[6] = { pt->it_id, d + i * sizeof(struct itimerspec), 0, 0, 0, 0 };
			uint64_t o[6] = { pt->it_id, 0, 0, 0, 0, 0 };
			if (dinj_call(p, SYS_timer_gettime, g, &r, err) ||
			    (r < 0 && r >= -4095 && fp_fail(err, (int)-r, "timer_gettime(%u): %s", pt->it_id, strerror((int)-r))) ||
			    dinj_call(p, SYS_timer_getoverrun, o, &r, err) ||
			    (r < 0 && r >= -4095 && fp_fail(err, (int)-r, "timer_getoverrun(%u): %s", pt->it_id, strerror((int)-r))))
				rc = -1;
			else
				pt->overrun = (uint32_t)r;
		}
		struct itimerspec v[TIMERS_PER_ROUND];
		if (!rc)
			rc = fp_mem_read(p->pid, d, v, k * sizeof(v[0]), err);
		if (dinj_end(p, rc ? NULL : err))
			rc = -1;
		for (size_t i = 0; i < k && !rc; i++) {
			cr_posix_timer *pt = &t->posix[first + i];
			pt->isec = (uint64_t)v[i].it_interval.tv_sec;
			pt->insec = (uint64_t)v[i].it_interval.tv_nsec;
			pt->vsec = (uint64_t)v[i].it_value.tv_sec;
			pt->vnsec = (uint64_t)v[i].it_value.tv_nsec;
		}
	}
	dlogv(c, "%d: %zu POSIX timers", p->pid, t->n_posix);
	return rc;
}
