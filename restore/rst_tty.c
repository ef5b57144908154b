/* Terminals. The dump holds only the slave side of a pseudo-terminal; its
 * master (a terminal emulator, `script`, sshd) was never part of the
 * process. As with `criu restore --shell-job`, the process comes back on
 * the terminal the restore runs in - for a session, the terminal of its
 * helper, which is the one the program was started from. Without one, the
 * dumped terminal itself is reopened if it still exists. Its termios (raw
 * or cooked mode, echo, control characters) is put back; the window size
 * is left to the terminal, which owns it. */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "images/tty_modes.h"
#include "procfs.h"

const cr_tty_info *rst_tty_info(const rst_image *im, const cr_file *f)
{
	for (size_t i = 0; f->has_tty && i < im->nttys; i++)
		if (im->ttys[i].id == f->tty.tty_info_id)
			return &im->ttys[i];
	return NULL;
}

int rst_tty_own_fd(void)
{
	struct stat st;
	for (int fd = 0; fd < 3; fd++)
		if (isatty(fd) && fstat(fd, &st) == 0 && fp_dev_is_pty_slave(st.st_rdev))
			return fd;
	return -1;
}

const char *rst_tty_path(const rst_image *im, const cr_file *f, char *buf, size_t len)
{
	struct stat st;
	int own = rst_tty_own_fd();
	if (own >= 0) {
		snprintf(buf, len, "/proc/%d/fd/%d", (int)getpid(), own);
		return buf;
	}
	const cr_tty_info *ti = rst_tty_info(im, f);
	const char *path = rst_file_path(im, f->tty.regf_id);
	if (ti && path && stat(path, &st) == 0 && S_ISCHR(st.st_mode) && fp_dev_encode(st.st_rdev) == ti->rdev) {
		snprintf(buf, len, "%s", path);
		return buf;
	}
	return NULL;
}

/* tcsetattr from a background process group would stop us with SIGTTOU. */
static int set_termios(const char *path, const cr_termios *ct, rst_log *log)
{
	int t = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (t < 0)
		return -1;
	struct termios tio;
	int rc = tcgetattr(t, &tio);
	if (rc == 0) {
		cr_termios_to_kernel(ct, &tio);
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;
		sigaction(SIGTTOU, &ign, &old);
		rc = tcsetattr(t, TCSANOW, &tio);
		sigaction(SIGTTOU, &old, NULL);
	}
	if (rc)
		rst_logf(log, 1, "warning: cannot put back the modes of terminal %s: %s", path, strerror(errno));
	close(t);
	return rc;
}

int rst_tty_finish(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	const cr_pstree *root = &im->ps[im->index]; /* this process */
	for (size_t i = 0; i < im->nttys; i++) {
		const cr_tty_info *ti = &im->ttys[i];
		const cr_file *f = NULL;
		int fd = -1;
		for (size_t k = 0; k < im->nfdi && !f; k++) {
			const cr_file *c = rst_file(im, im->fdi[k].id);
			if (c && c->type == CR_FD_TTY && c->tty.tty_info_id == ti->id)
				f = c, fd = (int)im->fdi[k].fd;
		}
		char buf[64];
		const char *path = f ? rst_tty_path(im, f, buf, sizeof(buf)) : NULL;
		if (!path)
			continue;
		if (ti->has_termios)
			set_termios(path, &ti->termios, p->log);
		/* A session leader gets its controlling terminal back, if no
		 * other session holds it. */
		if (ti->sid && ti->sid == root->pid && root->sid == root->pid) {
			int64_t r;
			if (rst_sys_raw(p, p->pid, SYS_ioctl, (uint64_t)fd, TIOCSCTTY, 0, 0, 0, 0, &r, err))
				return fp_wrap(err, "making fd %d the controlling terminal", fd);
			if (r < 0)
				rst_logf(p->log, 1, "warning: terminal %s stays without its session: TIOCSCTTY: %s", path,
					 strerror((int)-r));
		}
		rst_logf(p->log, 3, "fd %d: terminal %s (was pts/%u)", fd, path, ti->has_pty ? ti->pty.index : 0);
	}
	return 0;
}

/* The fd of a terminal whose foreground was this process's group at dump
 * time, -1 if none. */
static int fg_tty_fd(const rst_image *im)
{
	const cr_pstree *me = &im->ps[im->index];
	for (size_t i = 0; i < im->nttys; i++) {
		const cr_tty_info *ti = &im->ttys[i];
		if (ti->pgrp != me->pgid)
			continue;
		for (size_t k = 0; k < im->nfdi; k++) {
			const cr_file *c = rst_file(im, im->fdi[k].id);
			if (c && c->type == CR_FD_TTY && c->tty.tty_info_id == ti->id)
				return (int)im->fdi[k].fd;
		}
	}
	return -1;
}

bool rst_tty_had_foreground(const rst_image *im)
{
	return fg_tty_fd(im) >= 0;
}

/* The terminal keeps a reference to its foreground group even after every
 * process of it is gone, so the restored group, though it has the same
 * number, is a background group until someone says otherwise: the job's
 * first read from the terminal then fails with EIO (a shell exits) or
 * stops it with SIGTTIN. The group's leader says so itself (TIOCSPGRP works
 * only on one's own controlling terminal), while every signal is still
 * blocked, so no SIGTTOU stops it. */
int rst_tty_foreground(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	const cr_pstree *me = &im->ps[im->index];
	if (!im->take_foreground || me->pgid != me->pid)
		return 0;
	int fd = fg_tty_fd(im);
	if (fd < 0)
		return 0;
	int32_t pgrp = (int32_t)me->pgid;
	int64_t r = 0;
	if (rst_q_mem(p, p->pid, NULL, 0, SYS_ioctl, (uint64_t)fd, TIOCSPGRP, 0, 0, 0, 0, 2, &pgrp, sizeof(pgrp), &r, err) ||
	    rst_flush(p, err))
		return fp_wrap(err, "giving the terminal's foreground back to group %d", (int)pgrp);
	if (r < 0)
		rst_logf(p->log, 1, "warning: group %d does not get the terminal's foreground back: TIOCSPGRP: %s", (int)pgrp,
			 strerror((int)-r));
	else
		rst_logf(p->log, 3, "fd %d: the terminal's foreground group is %d again", fd, (int)pgrp);
	return 0;
}
