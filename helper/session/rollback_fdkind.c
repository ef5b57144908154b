/* Rollback in place: the fds that are not regular files (rollback_int.h).
 * A rollback leaves pipes, FIFOs, sockets and event fds as they are, and
 * puts back the modes of the session's own terminal. That is right only
 * for the objects SNAP had: an fd that is another pipe or socket now (a
 * dup2 since SNAP, a close and a new pipe at the same number) would keep
 * the new one, and the rollback would say SNAP's state without it being
 * so. Each is compared with SNAP's record: pipes, FIFOs and sockets by
 * their inode (SNAP's pipe_id, ino; or the one a full restore made for it,
 * rollback_objmap.c), the kinds without an inode of their
 * own (eventfd, epoll, signalfd, timerfd, inotify, fanotify: one anonymous
 * inode for all) by kind. A difference makes the rollback a full restore,
 * with the reason. */
#include "session/rollback_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "images/tty_modes.h"
#include "procfs.h"

/* A terminal stays in place only if it is the session's own (a shell
 * session's pty, which the helper holds: nobody else changes it behind
 * the session's back) and SNAP had that same one. Its foreground group
 * must be SNAP's; its modes are put back by the helper. Any other terminal
 * belongs to someone else: a full restore decides what to do with it. */
int rb_diff_tty(struct rb_ctx *c, struct rb_proc *p, int fd, const cr_file *f, char *why, size_t len,
		    fp_error *err)
{
	char lp[64];
	struct stat st;
	snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)p->pid, fd);
	if (!c->tty || stat(lp, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != c->tty)
		return NOT("fd %d of %d is a terminal that is not the session's own: its modes go back with a full restore",
			   fd, (int)p->pid);
	fp_error le;
	const cr_tty_info *ti = rb_tty_info(c, f, &le);
	if (!ti || ti->rdev != fp_dev_encode(st.st_rdev))
		return ti ? NOT("fd %d of %d: SNAP had another terminal there", fd, (int)p->pid)
			  : NOT("fd %d of %d: SNAP's record of its terminal: %s", fd, (int)p->pid, le.msg);
	struct fp_proc_stat ps;
	if (ti->sid && fp_proc_read_stat(p->pid, 0, &ps, NULL) == 0 && (uint32_t)ps.tty_nr == ti->rdev &&
	    (uint32_t)(ps.tpgid > 0 ? ps.tpgid : 0) != ti->pgrp)
		return NOT("the foreground group of %d's terminal is %d, SNAP's was %u", (int)p->pid, (int)ps.tpgid,
			   ti->pgrp);
	if (!ti->has_termios)
		return 1;
	struct termios now;
	int t = open(lp, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	int got = t >= 0 ? tcgetattr(t, &now) : -1;
	if (t >= 0)
		close(t);
	if (got < 0)
		return NOT("cannot read the modes of %d's terminal: %s", (int)p->pid, strerror(errno));
	struct termios want = now;
	cr_termios_to_kernel(&ti->termios, &want);
	if (!memcmp(&want, &now, sizeof(now)))
		return 1;
	/* one terminal, however many fds: set once */
	for (size_t i = 0; i < p->nfops; i++)
		if (p->fops[i].kind == RB_TTY_MODES)
			return 1;
	struct rb_fd_op *o = rb_fop_new(p);
	if (!o)
		return fp_fail(err, ENOMEM, "out of memory");
	o->kind = RB_TTY_MODES, o->fd = fd, o->tio = want, o->old_tio = now;
	return 1;
}

/* The link text of the kinds that share one anonymous inode. */
static const char *anon_link(uint32_t type)
{
	switch (type) {
	case CR_FD_EVENTFD:
		return "anon_inode:[eventfd]";
	case CR_FD_EVENTPOLL:
		return "anon_inode:[eventpoll]";
	case CR_FD_SIGNALFD:
		return "anon_inode:[signalfd]";
	case CR_FD_TIMERFD:
		return "anon_inode:[timerfd]";
	case CR_FD_INOTIFY:
		return "anon_inode:inotify";
	case CR_FD_FANOTIFY:
		return "anon_inode:[fanotify]";
	default:
		return NULL;
	}
}

int rb_fd_same_object(const struct rb_ctx *c, pid_t pid, int fd, const cr_fdinfo *fi, const cr_file *f,
		      const char *link, char *why, size_t len)
{
	if (!f)
		return 1; /* SNAP has no record to compare with */
	const char *anon = anon_link(fi->type);
	if (anon && strcmp(link, anon))
		return NOT("process %d: fd %d is %s, SNAP had %s there", (int)pid, fd, link, anon);
	if (anon) /* and what it holds (rollback_evfd.c) */
		return fi->type == CR_FD_FANOTIFY ? 1 : rb_event_same(pid, fd, fi, f, why, len);
	if (fi->type == CR_FD_MEMFD)
		return strncmp(link, "/memfd:", 7) ? NOT("process %d: fd %d is %s, SNAP had a memfd there", (int)pid, fd,
							 link)
						   : 1;
	uint64_t ino;
	mode_t fmt;
	if (!rb_snap_object(fi, f, &ino, &fmt))
		return 1;
	char lp[64];
	struct stat st;
	snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)pid, fd);
	if (stat(lp, &st) < 0)
		return NOT("process %d: fd %d cannot be compared with SNAP's (%s)", (int)pid, fd, strerror(errno));
	if ((st.st_mode & S_IFMT) != fmt || (ino && !rb_objmap_same(c->t, ino, st.st_ino)))
		return NOT("process %d: fd %d is %s, not the %s SNAP had there%s", (int)pid, fd, link,
			   fmt == S_IFIFO ? "pipe" : "socket", ino ? " (another inode)" : "");
	return 1;
}

/* The status flags SNAP recorded for f (without O_CLOEXEC); false if its
 * kind records none here. */
static bool snap_status(const cr_file *f, uint32_t *out)
{
	if (f->has_reg)
		*out = f->reg.flags;
	else if (f->has_pipe)
		*out = f->pipe.flags;
	else if (f->has_tty)
		*out = f->tty.flags;
	else if (f->has_efd)
		*out = f->efd.flags;
	else if (f->has_epfd)
		*out = f->epfd.flags;
	else if (f->has_sgfd)
		*out = f->sgfd.flags;
	else if (f->has_tfd)
		*out = f->tfd.flags;
	else if (f->has_isk)
		*out = f->isk.flags;
	else if (f->has_usk)
		*out = f->usk.flags;
	else if (f->has_memfd)
		*out = f->memfd.flags;
	else if (f->has_ify)
		*out = f->ify.flags;
	else
		return false;
	return true;
}

/* What F_SETFL changes of an open file description (the kernel's
 * SETFL_MASK): a program that made a pipe non-blocking since SNAP would
 * otherwise see EAGAIN where SNAP's waited. */
#define RB_SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

int rb_diff_status(struct rb_proc *p, int fd, const cr_file *f, uint32_t live, fp_error *err)
{
	uint32_t snap;
	if (live == UINT32_MAX || !snap_status(f, &snap) || !((snap ^ live) & RB_SETFL_MASK))
		return 1;
	struct rb_fd_op *o = rb_fop_new(p);
	if (!o)
		return fp_fail(err, ENOMEM, "out of memory");
	o->kind = RB_SETFL, o->fd = fd;
	o->flags = (int)((live & ~(uint32_t)RB_SETFL_MASK) | (snap & RB_SETFL_MASK));
	o->old_flags = (int)live;
	return 1;
}

int rb_diff_cloexec(struct rb_proc *p, int fd, const cr_fdinfo *fi, int live, fp_error *err)
{
	if (live < 0 || live == (int)(fi->flags & 1))
		return 1; /* not read: the fd's other checks say */
	struct rb_fd_op *o = rb_fop_new(p);
	if (!o)
		return fp_fail(err, ENOMEM, "out of memory");
	o->kind = RB_SETFD, o->fd = fd, o->flags = (fi->flags & 1) ? FD_CLOEXEC : 0, o->old_flags = live ? FD_CLOEXEC : 0;
	return 1;
}
