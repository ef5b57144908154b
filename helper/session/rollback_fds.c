/* Rollback in place: the fds and the cwd (rollback_int.h). The fds open
 * now, listed from the shim's table (rollback_fdtab.c) or /proc, against
 * SNAP's: an op for each fd to close, open again, move back (offset,
 * status flags, close-on-exec) or check by kind (rollback_fdkind.c,
 * rollback_evfd.c); what cannot be put back in place (another file on an
 * fd SNAP had, a pipe or socket closed since) makes it a full restore,
 * with the reason in why. */
#include "session/rollback_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump/dump_fdmark.h"
#include "dump/dump_int.h"
#include "fp_clock.h"
#include "overlay/workspace.h"

struct rb_fd_op *rb_fop_new(struct rb_proc *p)
{
	/* an op is 8 KiB (two paths): grown by doubling, not one at a time
	 * (300 ops copied 360 MB; 2.5 s of `diff` under ASan) */
	if (p->nfops == p->cap_fops) {
		size_t cap = p->cap_fops ? 2 * p->cap_fops : 16;
		struct rb_fd_op *x = realloc(p->fops, cap * sizeof(*x));
		if (!x)
			return NULL;
		p->fops = x;
		p->cap_fops = cap;
	}
	memset(&p->fops[p->nfops], 0, sizeof(p->fops[0]));
	return &p->fops[p->nfops++];
}

static bool under(const char *path, const char *base)
{
	size_t l = base ? strlen(base) : 0;
	return l && !strncmp(path, base, l) && (path[l] == '/' || path[l] == '\0');
}

/* SNAP's fds by number and files by id: a table of many fds is looked up
 * per fd, not searched. */
struct fd_index {
	const cr_fdinfo **by_fd;
	size_t nfd;
	const struct rb_ctx *c; /* SNAP's files by id: rb_file */
};

static int cmp_fi(const void *a, const void *b)
{
	uint32_t x = (*(const cr_fdinfo *const *)a)->fd, y = (*(const cr_fdinfo *const *)b)->fd;
	return (x > y) - (x < y);
}

static int index_fds(const struct rb_ctx *c, const struct rb_proc *p, struct fd_index *x)
{
	x->by_fd = malloc((p->nfdi + 1) * sizeof(*x->by_fd));
	if (!x->by_fd)
		return -1;
	for (size_t i = 0; i < p->nfdi; i++)
		x->by_fd[i] = &p->fdi[i];
	x->nfd = p->nfdi;
	x->c = c;
	qsort(x->by_fd, x->nfd, sizeof(*x->by_fd), cmp_fi);
	return 0;
}

static const cr_fdinfo *snap_fd(const struct fd_index *x, int fd)
{
	cr_fdinfo key = { .fd = (uint32_t)fd }, *kp = &key;
	const cr_fdinfo **r = fd < 0 ? NULL : bsearch(&kp, x->by_fd, x->nfd, sizeof(*x->by_fd), cmp_fi);
	return r ? *r : NULL;
}

static const cr_file *snap_file(const struct fd_index *x, uint32_t id)
{
	return rb_file(x->c, id);
}

/* The next fd open now: from the table's list, or /proc's. -1 at the end. */
static int next_fd(DIR *d, const struct rb_fdtab *tab, size_t *i)
{
	if (tab)
		return *i < tab->n ? tab->fds[(*i)++] : -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			return atoi(e->d_name);
	return -1;
}

/* diff_fd_list's answer when an fd the table called SNAP's is another
 * file: the fds are compared again from /proc. */
#define RB_TABLE_WRONG 2

/* Compares the fds open now (tab's, or /proc/PID/fd's when tab is NULL)
 * with SNAP's. */
static int diff_fd_list(struct rb_ctx *c, struct rb_proc *p, const struct rb_fdtab *tab, const struct fd_index *x,
			char *why, size_t len, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
	DIR *d = tab ? NULL : opendir(path);
	if (!tab && !d)
		return fp_fail(err, errno, "cannot list %s: %s", path, strerror(errno));
	/* Without the table every fd's link is read: the /proc path is the
	 * check, it takes nothing from the table (it used to take the link of
	 * an fd whose slot's seq was unchanged from SNAP's name, and a raw
	 * dup3 onto such an fd then stayed after the rollback). */
	const char *base = c->ws ? fp_ws_base(c->ws) : NULL;
	int rc = 1;
	struct rb_fdpos fpos;
	rb_fdpos_open(&fpos, p->pid);
	/* SNAP's fds found open, by their place in p->fdi (any fd number) */
	uint8_t *seen = calloc(p->nfdi + 1, 1);
	if (!seen)
		rc = fp_fail(err, ENOMEM, "out of memory");
	size_t ti = 0, nkf = 0;
	const struct dump_kfile *kf = tab && tab->same ? rb_kfiles(p, &nkf) : NULL;
	for (size_t k = 0; k < p->nfdi; k++)
		p->fd_max = (int)p->fdi[k].fd > p->fd_max ? (int)p->fdi[k].fd : p->fd_max;
	for (int fd; rc == 1 && (fd = next_fd(d, tab, &ti)) >= 0;) {
		char lp[80], link[PATH_MAX];
		p->fd_max = fd > p->fd_max ? fd : p->fd_max;
		const cr_fdinfo *fi = snap_fd(x, fd);
		const cr_file *f = fi ? snap_file(x, fi->id) : NULL;
		/* the table's word: SNAP's fd, no wrapper touched it since */
		const struct fp_fdmark_fd *mf = tab && fi ? tab->mark_of[ti - 1] : NULL;
		if (mf && !(f && f->has_reg))
			mf = NULL; /* a terminal's modes, a pipe's or socket's inode: compared below */
		int coe = mf ? rb_fdtab_cloexec(tab, fd) : -1;
		if (coe < 0)
			mf = NULL; /* its close-on-exec flag from its fdinfo, with the rest */
		/* SNAP's file by the table: its offset and status flags, proven
		 * to be SNAP's inode, by the kernel's fd iterator or through a
		 * copy (no offset for /dev/null & co.: nothing moves it); one
		 * that cannot be proven is read as without the table */
		uint64_t pos = UINT64_MAX;
		uint32_t fl = UINT32_MAX; /* status flags, when read */
		bool have_pos = false;
		if (mf && fi->type == CR_FD_REG && mf->kind == FP_FDM_FIXED) {
			/* proven against a raw dup2 of another file onto it: by
			 * the iterator, with its status flags; without it, by a
			 * stat of its /proc link */
			const struct dump_kfile *k = dump_fdfile_find(kf, nkf, fd);
			struct stat lst;
			if (!k)
				snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)p->pid, fd);
			if (k ? k->ino != mf->ino || k->dev != mf->dev
			      : stat(lp, &lst) || (uint64_t)lst.st_ino != mf->ino || (uint64_t)lst.st_dev != mf->dev) {
				rc = RB_TABLE_WRONG;
				snprintf(why, len, "fd %d of %d is not the file SNAP had, though the shim's table says no "
					 "wrapper touched it since", fd, (int)p->pid);
				break;
			}
			pos = f->reg.pos, have_pos = true;
			fl = k ? k->flags : UINT32_MAX;
		} else if (mf && fi->type == CR_FD_REG && mf->kind == FP_FDM_REG) {
			const struct dump_kfile *k = dump_fdfile_find(kf, nkf, fd);
			int r = k && k->ino == mf->ino && k->dev == mf->dev ? (pos = k->pos, fl = k->flags, 1)
									 : rb_fdpos_same(&fpos, fd, mf, &pos, &fl);
			if (r == 0) {
				rc = RB_TABLE_WRONG;
				snprintf(why, len, "fd %d of %d is not the file SNAP had, though the shim's table says no "
					 "wrapper touched it since", fd, (int)p->pid);
				break;
			}
			have_pos = r == 1;
		}
		if (!have_pos)
			mf = NULL;
		const char *lk = link; /* the fd's path: SNAP's by the table, else its /proc link */
		if (mf) {
			lk = f->reg.name;
		} else {
			snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)p->pid, fd);
			ssize_t n = readlink(lp, link, sizeof(link) - 1);
			link[n > 0 ? n : 0] = '\0';
		}
		if (!fi) { /* opened since SNAP: closed at the end */
			struct rb_fd_op *o = rb_fop_new(p);
			if (!o)
				rc = fp_fail(err, ENOMEM, "out of memory");
			else
				o->kind = RB_CLOSE, o->fd = fd, snprintf(o->old_path, sizeof(o->old_path), "%s", lk);
			continue;
		}
		seen[fi - p->fdi] = 1;
		/* the table's word for a marked fd (no wrapper touched it since)
		 * and the kernel's close-on-exec bit, one read of its fdinfo for
		 * any other: offset, status flags, close-on-exec */
		struct rb_fdinfo now = { UINT64_MAX, UINT32_MAX, coe };
		if (!mf)
			rb_fdinfo_read(p->pid, fd, &now);
		if ((rc = rb_diff_cloexec(p, fd, fi, now.cloexec, err)) != 1)
			continue;
		if (fi->type == CR_FD_TTY) {
			rc = f ? rb_diff_tty(c, p, fd, f, why, len, err)
			       : NOT("fd %d of %d: SNAP has no record of its terminal", fd, (int)p->pid);
			continue;
		}
		if (!f || fi->type != CR_FD_REG || !f->has_reg) {
			/* pipes, sockets, event fds: left as they are, if SNAP's */
			rc = rb_fd_same_object(c, p->pid, fd, fi, f, lk, why, len);
			if (rc == 1 && f)
				rc = rb_diff_status(p, fd, f, now.flags, err);
			continue;
		}
		if (!have_pos)
			pos = now.pos, fl = now.flags;
		if (under(f->reg.name, base)) {
			/* the workspace goes back to SNAP's files: open them again */
			struct rb_fd_op *o = rb_fop_new(p);
			if (!o) {
				rc = fp_fail(err, ENOMEM, "out of memory");
				continue;
			}
			o->kind = RB_REOPEN, o->fd = fd, o->pos = f->reg.pos, o->old_pos = pos;
			o->flags = (int)f->reg.flags | ((fi->flags & 1) ? O_CLOEXEC : 0);
			snprintf(o->path, sizeof(o->path), "%s", f->reg.name);
			snprintf(o->old_path, sizeof(o->old_path), "%s", lk);
			continue;
		}
		if (strcmp(lk, f->reg.name) && !rb_ghost_unchanged(c, p->pid, fd, f, lk)) {
			if (strstr(lk, " (deleted)"))
				rc = NOT("process %d: fd %d is %s, whose bytes SNAP kept: it is another file now or was "
					 "written since", (int)p->pid, fd, lk);
			else
				rc = NOT("process %d: fd %d is %s, SNAP has %s", (int)p->pid, fd, lk, f->reg.name);
			continue;
		}
		if (pos != f->reg.pos) {
			struct rb_fd_op *o = rb_fop_new(p);
			if (!o)
				rc = fp_fail(err, ENOMEM, "out of memory");
			else
				o->kind = RB_SEEK, o->fd = fd, o->pos = f->reg.pos, o->old_pos = pos;
		}
		if (rc == 1 && fl != UINT32_MAX)
			rc = rb_diff_status(p, fd, f, fl, err);
	}
	if (d)
		closedir(d);
	rb_fdpos_close(&fpos);
	/* closed since: a regular file is opened again (as its own open file
	 * description), anything else makes it a full restore */
	for (size_t k = 0; k < p->nfdi && rc == 1; k++) {
		if (seen && seen[k])
			continue;
		const cr_file *f = snap_file(x, p->fdi[k].id);
		if (!f || p->fdi[k].type != CR_FD_REG || !f->has_reg) {
			rc = NOT("process %d: fd %u of SNAP was closed since", (int)p->pid, p->fdi[k].fd);
			break;
		}
		struct rb_fd_op *o = rb_fop_new(p);
		if (!o) {
			rc = fp_fail(err, ENOMEM, "out of memory");
			break;
		}
		o->kind = RB_REOPEN, o->fd = (int)p->fdi[k].fd, o->pos = f->reg.pos;
		o->flags = (int)f->reg.flags | ((p->fdi[k].flags & 1) ? O_CLOEXEC : 0);
		snprintf(o->path, sizeof(o->path), "%s", f->reg.name); /* old_path "": undone by closing it */
	}
	free(seen);
	return rc;
}

int rb_diff_fds(struct rb_ctx *c, struct rb_proc *p, char *why, size_t len, fp_error *err)
{
	struct fd_index x = { 0 };
	if (index_fds(c, p, &x)) {
		free(x.by_fd);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	/* the fds created or closed since SNAP from the shim's table, with
	 * /proc's count as the check (rollback_fdtab.c); else /proc's list */
	struct rb_fdtab tab;
	char note[300];
	double t0 = fp_mono_ms_f();
	bool use = rb_fdtab_list(c, p, &tab, note, sizeof(note)) == 1;
	size_t nops = p->nfops;
	int rc = diff_fd_list(c, p, use ? &tab : NULL, &x, why, len, err);
	if (rc == RB_TABLE_WRONG) {
		snprintf(note, sizeof(note), "%s", why);
		why[0] = '\0';
		p->nfops = nops;
		use = false;
		rc = diff_fd_list(c, p, NULL, &x, why, len, err);
		if (rc == 0) { /* not in place: the reason says the table was wrong too */
			size_t l = strlen(why);
			snprintf(why + l, len - l, " (%s)", note);
		}
	}
	/* "proc" when any process's came from there, and its note says why */
	bool first_proc = !use && strcmp(c->r->fds_from, "proc");
	if (!use || !c->r->fds_from[0])
		snprintf(c->r->fds_from, sizeof(c->r->fds_from), "%s", use ? "table" : "proc");
	if (first_proc)
		snprintf(c->r->fds_note, sizeof(c->r->fds_note), "fds of %d listed from /proc: %s", (int)p->pid, note);
	else if (use && !c->r->fds_note[0])
		snprintf(c->r->fds_note, sizeof(c->r->fds_note),
			 "fds of %d listed from the shim's table: %zu, %zu of them SNAP's untouched (close-on-exec from %s), "
			 "in %.3f ms", (int)p->pid, tab.n, tab.same, tab.ncoe ? "the kernel's bitmap" : "fdinfo",
			 fp_mono_ms_f() - t0);
	rb_fdtab_free(&tab);
	free(x.by_fd);
	/* cwd */
	const char *base = c->ws ? fp_ws_base(c->ws) : NULL;
	const cr_file *cw = rb_file(c, p->fs.cwd_id);
	char cwd[PATH_MAX], lp[64];
	snprintf(lp, sizeof(lp), "/proc/%d/cwd", (int)p->pid);
	ssize_t n = readlink(lp, cwd, sizeof(cwd) - 1);
	cwd[n > 0 ? n : 0] = '\0';
	if (rc == 1 && cw && cw->has_reg && (strcmp(cwd, cw->reg.name) || under(cw->reg.name, base))) {
		struct rb_fd_op *o = rb_fop_new(p);
		if (!o)
			return fp_fail(err, ENOMEM, "out of memory");
		o->kind = RB_CHDIR;
		snprintf(o->path, sizeof(o->path), "%s", cw->reg.name);
		snprintf(o->old_path, sizeof(o->old_path), "%s", cwd);
	}
	return rc;
}
