/* Event fds made anew inside the process: eventfd (with its counter),
 * signalfd (its mask), timerfd (its clock, time left, interval and
 * expirations not yet read) and epoll (its watches, once every fd is in
 * place, since a watch names the watched file by its fd number). */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>

#define FP_TFD_TIMER_ABSTIME 1
#define FP_TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#define FP_EPOLL_CTL_ADD 1

/* struct epoll_event as x86_64's kernel reads it: packed. */
struct fp_epoll_event {
	uint32_t events;
	uint64_t data;
} __attribute__((packed));

/* Runs what is queued plus call nr now: its result (an fd) is needed. */
static int make_now(rst_proc *p, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		    int slot, const void *data, size_t len, int *fd, fp_error *err)
{
	int64_t r = -1;
	int rc = data ? rst_q_mem(p, p->pid, what, RST_MUST, nr, a0, a1, a2, a3, 0, 0, slot, data, len, &r, err)
		      : rst_q(p, p->pid, what, RST_MUST, nr, a0, a1, a2, a3, 0, 0, &r, err);
	if (rc || rst_flush(p, err))
		return -1;
	*fd = (int)r;
	return 0;
}

static int make_timerfd(rst_proc *p, const cr_timerfd *t, int *fd, fp_error *err)
{
	if (make_now(p, "timerfd_create", SYS_timerfd_create, t->clockid, O_CLOEXEC | (t->flags & O_NONBLOCK), 0, 0, 0,
		     NULL, 0, fd, err))
		return -1;
	/* fdinfo gives the time left, relative. A timer set with an absolute
	 * time gets one again (its flag shows in fdinfo, and a clock change
	 * must still move it): the time left from now on this clock, which is
	 * the target's too (the native restore makes no time namespace). */
	struct itimerspec its = { .it_interval = { (time_t)t->isec, (long)t->insec },
				  .it_value = { (time_t)t->vsec, (long)t->vnsec } };
	uint32_t flags = t->settime_flags;
	struct timespec now;
	if ((flags & FP_TFD_TIMER_ABSTIME) && clock_gettime((clockid_t)t->clockid, &now) == 0) {
		its.it_value.tv_sec += now.tv_sec;
		its.it_value.tv_nsec += now.tv_nsec;
		if (its.it_value.tv_nsec >= 1000000000L) {
			its.it_value.tv_sec++;
			its.it_value.tv_nsec -= 1000000000L;
		}
	} else {
		flags &= ~(uint32_t)FP_TFD_TIMER_ABSTIME;
	}
	if ((t->vsec || t->vnsec) &&
	    rst_q_mem(p, p->pid, "timerfd_settime", RST_MUST, SYS_timerfd_settime, (uint64_t)*fd, flags, 0, 0, 0, 0, 2,
		      &its, sizeof(its), NULL, err))
		return -1;
	if (t->ticks &&
	    rst_q_mem(p, p->pid, "setting a timerfd's expirations (TFD_IOC_SET_TICKS)", RST_MUST, SYS_ioctl,
		      (uint64_t)*fd, FP_TFD_IOC_SET_TICKS, 0, 0, 0, 0, 2, &t->ticks, sizeof(t->ticks), NULL, err))
		return -1;
	return 0;
}

int rst_evfd_make(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	switch (f->type) {
	case CR_FD_EVENTFD: {
		/* eventfd2 takes 32 bits; a bigger count is written after */
		uint64_t c = f->efd.counter;
		if (make_now(p, "eventfd2", SYS_eventfd2, c <= UINT32_MAX ? c : 0, O_CLOEXEC | (f->efd.flags & O_NONBLOCK), 0,
			     0, 0, NULL, 0, fd, err))
			return -1;
		if (c > UINT32_MAX &&
		    rst_q_mem(p, p->pid, "setting an eventfd's counter", RST_MUST, SYS_write, (uint64_t)*fd, 0, 8, 0, 0, 0, 1,
			      &c, sizeof(c), NULL, err))
			return -1;
		return 0;
	}
	case CR_FD_SIGNALFD:
		return make_now(p, "signalfd4", SYS_signalfd4, (uint64_t)-1, 0, 8, O_CLOEXEC | (f->sgfd.flags & O_NONBLOCK), 1,
				&f->sgfd.sigmask, sizeof(f->sgfd.sigmask), fd, err);
	case CR_FD_TIMERFD:
		return make_timerfd(p, &f->tfd, fd, err);
	case CR_FD_EVENTPOLL:
		return make_now(p, "epoll_create1", SYS_epoll_create1, O_CLOEXEC, 0, 0, 0, 0, NULL, 0, fd, err);
	default:
		return fp_fail(err, EINVAL, "internal: file %u is not an event fd", f->id);
	}
}

/* An fd of the image that holds file id, or -1. */
static int fd_of(const rst_image *im, uint32_t id)
{
	for (size_t i = 0; i < im->nfdi; i++)
		if (im->fdi[i].id == id)
			return (int)im->fdi[i].fd;
	return -1;
}

/* An epoll shared by several processes of a tree is made by one and handed
 * to the others: each adds the watches, and all but the first find them
 * there already (EEXIST). */
int rst_evfd_watches(rst_proc *p, fp_error *err)
{
	const rst_image *im = p->im;
	size_t n = 0;
	for (size_t i = 0; i < im->nfiles; i++) {
		const cr_file *f = &im->files[i];
		if (f->type == CR_FD_EVENTPOLL)
			n += f->epfd.n_tfd;
	}
	if (!n)
		return 0;
	int64_t *ret = calloc(n, sizeof(*ret));
	const cr_epoll_tfd **which = calloc(n, sizeof(*which));
	int rc = ret && which ? 0 : fp_fail(err, ENOMEM, "out of memory");
	size_t q = 0;
	for (size_t i = 0; i < im->nfiles && !rc; i++) {
		const cr_file *f = &im->files[i];
		int epfd = f->type == CR_FD_EVENTPOLL ? fd_of(im, f->id) : -1;
		for (size_t k = 0; epfd >= 0 && k < f->epfd.n_tfd && !rc; k++) {
			const cr_epoll_tfd *t = &f->epfd.tfd[k];
			struct fp_epoll_event ev = { t->events, t->data };
			which[q] = t;
			rc = rst_q_mem(p, p->pid, NULL, 0, SYS_epoll_ctl, (uint64_t)epfd, FP_EPOLL_CTL_ADD, t->tfd, 0, 0, 0, 3, &ev,
				       sizeof(ev), &ret[q], err);
			q++;
		}
	}
	if (!rc)
		rc = rst_flush(p, err);
	for (size_t k = 0; k < q && !rc; k++)
		if (ret[k] < 0 && ret[k] != -EEXIST)
			rc = fp_fail(err, (int)-ret[k], "adding the epoll watch of fd %u: %s", which[k]->tfd,
				     strerror((int)-ret[k]));
	if (!rc)
		rst_logf(p->log, 3, "%zu epoll watches added", q);
	free(ret);
	free(which);
	return rc;
}
