/* Terminals: an fd on a pseudo-terminal slave (/dev/pts/N) becomes, as in
 * CRIU, a TTY FileEntry that points at a REG entry naming the device
 * (regf_id) and at a tty-info.img entry describing the terminal: its index,
 * device numbers, owner, termios and window size, and - when it is the
 * controlling terminal of a dumped process - its session and foreground
 * process group. The master side stays outside the dump (the user's
 * terminal emulator, `script`, an ssh daemon): the restore gives the
 * process the terminal it is restored from, the way `criu --shell-job`
 * does. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "procfs.h"

bool dump_is_pty_slave(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && fp_dev_is_pty_slave(st->st_rdev);
}

/* The kernel's struct termios (asm/termbits.h), which TCGETS and
 * TIOCGLCKTRMIOS fill; glibc's struct of the same name is laid out
 * differently. */
struct ktermios_x86 {
	uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
	uint8_t c_line;
	uint8_t c_cc[19];
};

static void termios_to_image(const struct ktermios_x86 *t, cr_termios *o)
{
	o->c_iflag = t->c_iflag;
	o->c_oflag = t->c_oflag;
	o->c_cflag = t->c_cflag;
	o->c_lflag = t->c_lflag;
	o->c_line = t->c_line;
	/* The speeds live in c_cflag (CBAUD); glibc's accessors decode them. */
	struct termios g = { .c_cflag = t->c_cflag };
	o->c_ispeed = cfgetispeed(&g);
	o->c_ospeed = cfgetospeed(&g);
	/* CRIU refuses fewer control characters than glibc's NCCS (32);
	 * the kernel has 19, the rest is zero. */
	o->n_c_cc = CR_TERMIOS_NCC;
	for (size_t i = 0; i < o->n_c_cc; i++)
		o->c_cc[i] = i < sizeof(t->c_cc) ? t->c_cc[i] : 0;
}

/* What only an open file on the terminal tells: modes, locked modes, size,
 * exclusivity. Opened by us with O_NOCTTY, so the dumper never takes the
 * terminal. CRIU accepts a slave with all three of termios, locked termios
 * and window size or with none, so it is all or nothing (a terminal whose
 * master is gone has none). */
static void read_tty_state(pid_t pid, int fd, cr_tty_info *ti)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	int t = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (t < 0)
		return;
	struct ktermios_x86 tio, locked;
	struct winsize ws;
	if (ioctl(t, TCGETS, &tio) == 0 && ioctl(t, TIOCGLCKTRMIOS, &locked) == 0 && ioctl(t, TIOCGWINSZ, &ws) == 0) {
		termios_to_image(&tio, &ti->termios);
		termios_to_image(&locked, &ti->termios_locked);
		ti->winsize = (cr_winsize){ ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel };
		ti->has_termios = ti->has_termios_locked = ti->has_winsize = true;
	}
	int excl = 0;
	if (ioctl(t, TIOCGEXCL, &excl) == 0)
		ti->exclusive = excl != 0;
	close(t);
}

static int tty_info_for(struct dump_ctx *c, struct dump_proc *p, int fd, const struct stat *st, uint32_t *id,
			fp_error *err)
{
	uint32_t rdev = fp_dev_encode(st->st_rdev);
	for (size_t i = 0; i < c->nttys; i++)
		if (c->ttys[i].rdev == rdev) {
			*id = c->ttys[i].id;
			return 0;
		}
	if (c->nttys == c->capttys) {
		size_t cap = c->capttys ? c->capttys * 2 : 4;
		cr_tty_info *n = realloc(c->ttys, cap * sizeof(*n));
		if (!n)
			return fp_fail(err, ENOMEM, "out of memory");
		c->ttys = n;
		c->capttys = cap;
	}
	cr_tty_info *ti = &c->ttys[c->nttys];
	memset(ti, 0, sizeof(*ti));
	unsigned index = (major(st->st_rdev) - 136) * 256 + minor(st->st_rdev); /* 136: the first pts major */
	/* CRIU numbers a pty pair index*2 (slave) and index*2+1 (master). */
	ti->id = index << 1;
	ti->type = CR_TTY_PTY;
	ti->rdev = rdev;
	ti->has_pty = true;
	ti->pty.index = index;
	ti->has_dev = ti->has_uid = ti->has_gid = true;
	ti->dev = fp_dev_encode(st->st_dev);
	ti->uid = st->st_uid;
	ti->gid = st->st_gid;
	/* Session and foreground group only if it is the controlling terminal
	 * of a dumped process; 0 otherwise, as CRIU writes. */
	for (size_t i = 0; i < c->nprocs; i++) {
		struct fp_proc_stat ps;
		fp_error ignored;
		if (fp_proc_read_stat(c->procs[i].pid, 0, &ps, &ignored) == 0 && (uint32_t)ps.tty_nr == rdev) {
			ti->sid = (uint32_t)ps.session;
			ti->pgrp = ps.tpgid > 0 ? (uint32_t)ps.tpgid : 0;
			break;
		}
	}
	read_tty_state(p->pid, fd, ti);
	c->nttys++;
	*id = ti->id;
	dlogv(c, "%d fd %d: terminal pts/%u, sid %u, foreground group %u%s", p->pid, fd, index, ti->sid, ti->pgrp,
	      ti->has_termios ? "" : ", no termios (hung up?)");
	return 0;
}

int dump_tty_file(struct dump_ctx *c, struct dump_proc *p, int fd, const char *link, const struct stat *st,
		  uint32_t flags, uint32_t *info_id, uint32_t *regf_id, fp_error *err)
{
	if (strncmp(link, "/dev/pts/", 9))
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d is a pseudo-terminal seen as '%s', not under /dev/pts; forkpoint dumps the "
				    "terminals of the system's /dev/pts only",
				    fd, p->pid, link);
	if (tty_info_for(c, p, fd, st, info_id, err))
		return -1;
	/* The device path, as a REG entry the TTY entry points at (CRIU's
	 * regf_id); shared by every fd on the terminal with these flags. */
	return dump_file_path(c, link, flags, regf_id, err);
}

int dump_write_ttys(struct dump_ctx *c, fp_error *err)
{
	return c->nttys ? cr_write_tty_info(c->dirfd, c->ttys, c->nttys, err) : 0;
}
