/* Rollback in place: what an event fd holds (rollback_int.h).
 *
 * An event fd stays as it is at a rollback in place (rollback_fdkind.c
 * proves it is of SNAP's kind). What it holds must be SNAP's too, or the
 * processes would run on at SNAP with an event loop that is not: an epoll
 * that stopped watching a socket SNAP's program waits on never wakes it,
 * an eventfd whose count was taken since is never signalled again. So each
 * is read as the dump reads it (/proc/PID/fdinfo, dump_evfd.c) and
 * compared with SNAP's entry:
 *   eventfd   its count
 *   epoll     its watches (fd, events, data), as a set
 *   signalfd  its mask
 *   timerfd   its clock, flags and interval, and disarmed with no
 *             expiration unread at SNAP and now (the time left of an armed
 *             one is not rolled back in place)
 *   inotify   its watches (inode, device, mask), none of its events unread
 * A difference makes it a full restore, which makes them as SNAP had them,
 * and says which. */
#include "session/rollback_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump/dump_int.h"

static int by_watch(const void *a, const void *b)
{
	const cr_epoll_tfd *x = a, *y = b;
	if (x->tfd != y->tfd)
		return x->tfd < y->tfd ? -1 : 1;
	if (x->events != y->events)
		return x->events < y->events ? -1 : 1;
	return x->data < y->data ? -1 : x->data > y->data;
}

#define CMP(f) \
	if (x->f != y->f) \
		return x->f < y->f ? -1 : 1
static int by_wd(const void *a, const void *b)
{
	const cr_inotify_wd *x = a, *y = b;
	CMP(wd);
	CMP(i_ino);
	CMP(s_dev);
	CMP(mask);
	CMP(ignored_mask);
	return 0;
}
#undef CMP

/* Whether a[0..n) and b[0..n) hold the same elements in any order (cmp:
 * an order where 0 means the same). */
static bool same_set(const void *a, const void *b, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	uint8_t *x = malloc(n ? n * size : 1), *y = malloc(n ? n * size : 1);
	bool same = x && y;
	if (same && n) {
		memcpy(x, a, n * size);
		memcpy(y, b, n * size);
		qsort(x, n, size, cmp);
		qsort(y, n, size, cmp);
		for (size_t i = 0; i < n && same; i++)
			same = !cmp(x + i * size, y + i * size);
	}
	free(x);
	free(y);
	return same;
}

static bool same_watches(const cr_eventpoll *a, const cr_eventpoll *b)
{
	return a->n_tfd == b->n_tfd && same_set(a->tfd, b->tfd, a->n_tfd, sizeof(*a->tfd), by_watch);
}

static bool same_inotify(const cr_inotify *a, const cr_inotify *b)
{
	return a->n_wd == b->n_wd && same_set(a->wd, b->wd, a->n_wd, sizeof(*a->wd), by_wd);
}

static bool timer_idle(const cr_timerfd *t)
{
	return !t->vsec && !t->vnsec && !t->ticks;
}

int rb_event_same(pid_t pid, int fd, const cr_fdinfo *fi, const cr_file *f, char *why, size_t len)
{
	struct fp_dump_opts o = { .pid = pid };
	struct dump_ctx dc = { 0 };
	dc.o = &o, dc.dirfd = -1;
	cr_file live = { .type = f->type, .id = f->id };
	fp_error e;
	if (dump_event_file(&dc, pid, fd, fi->flags, &live, &e)) {
		cr_file_free(&live);
		return NOT("process %d: event fd %d cannot be compared with SNAP's: %s", (int)pid, fd, e.msg);
	}
	int rc = 1;
	switch (f->type) {
	case CR_FD_EVENTFD:
		if (!f->has_efd || live.efd.counter != f->efd.counter)
			rc = NOT("process %d: eventfd %d counts %llu, SNAP %llu", (int)pid, fd,
				 (unsigned long long)live.efd.counter, (unsigned long long)f->efd.counter);
		break;
	case CR_FD_EVENTPOLL:
		if (!f->has_epfd || !same_watches(&live.epfd, &f->epfd))
			rc = NOT("process %d: epoll fd %d watches other fds or events than SNAP's (%zu watches, SNAP %zu)",
				 (int)pid, fd, live.epfd.n_tfd, f->has_epfd ? f->epfd.n_tfd : 0);
		break;
	case CR_FD_SIGNALFD:
		if (!f->has_sgfd || live.sgfd.sigmask != f->sgfd.sigmask)
			rc = NOT("process %d: signalfd %d takes other signals than SNAP's", (int)pid, fd);
		break;
	case CR_FD_TIMERFD:
		if (!f->has_tfd || live.tfd.clockid != f->tfd.clockid || live.tfd.settime_flags != f->tfd.settime_flags ||
		    live.tfd.isec != f->tfd.isec || live.tfd.insec != f->tfd.insec)
			rc = NOT("process %d: timerfd %d was set otherwise since SNAP", (int)pid, fd);
		else if (!timer_idle(&live.tfd) || !timer_idle(&f->tfd))
			rc = NOT("process %d: timerfd %d is armed or has expirations unread (its time is made again by a "
				 "full restore)", (int)pid, fd);
		break;
	case CR_FD_INOTIFY:
		if (!f->has_ify || !same_inotify(&live.ify, &f->ify))
			rc = NOT("process %d: inotify fd %d watches other files than SNAP's", (int)pid, fd);
		break;
	default:
		break;
	}
	cr_file_free(&live);
	return rc;
}
