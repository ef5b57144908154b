/* Rollback in place: saving what is overwritten, writing SNAP's state
 * back, and undoing it (rollback_int.h). Order of the writes: injected
 * calls first (brk, munmap, mmap, mprotect, lseek, reopen, chdir, timers,
 * umask), then the pages, then the registers; undo goes the other way.
 * Closing the fds opened since SNAP is the one step that cannot be undone:
 * it comes last (rb_commit), once everything else succeeded. */
#include "session/rollback_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "ptrace/pagemap_scan.h"
#include "ptrace/pt_mem.h"
#include "ptrace/regs_convert.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static pid_t stopped_tid(struct rb_proc *p)
{
	for (size_t i = 0; i < p->pt.nthreads; i++)
		if (p->pt.threads[i].state == FP_PT_STOPPED)
			return p->pt.threads[i].tid;
	return 0;
}

static int session(struct rb_proc *p, fp_error *err)
{
	if (!p->ij_init) {
		if (fp_inject_init(&p->ij, &p->pt, err))
			return -1;
		p->ij_init = true;
	}
	return !p->ij.depth && fp_inject_begin(&p->ij, stopped_tid(p), err) ? -1 : 0;
}

int rb_inject(struct rb_proc *p, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
	      uint64_t a5, int64_t *ret, fp_error *err)
{
	if (session(p, err))
		return -1;
	const uint64_t a[6] = { a0, a1, a2, a3, a4, a5 };
	return fp_inject_call(&p->ij, nr, a, ret, err);
}

static int inject_ok(struct rb_proc *p, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		     uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err)
{
	int64_t r;
	if (rb_inject(p, nr, a0, a1, a2, a3, a4, a5, &r, err))
		return -1;
	if (r < 0)
		return fp_fail(err, (int)-r, "process %d: %s failed: %s", (int)p->pid, what, strerror((int)-r));
	if (ret)
		*ret = r;
	return 0;
}

static int inject_end(struct rb_proc *p, fp_error *err)
{
	return p->ij_init && p->ij.depth ? fp_inject_end(&p->ij, err) : 0;
}

int rb_inject_session(struct rb_proc *p, fp_error *err)
{
	return session(p, err);
}

int rb_inject_end(struct rb_proc *p, fp_error *err)
{
	return inject_end(p, err);
}

int rb_scratch(struct rb_proc *p, size_t len, uint64_t *addr, fp_error *err)
{
	return session(p, err) || fp_inject_scratch(&p->ij, len, addr, err) ? -1 : 0;
}

static int scratch_path(struct rb_proc *p, const char *path, uint64_t *addr, fp_error *err)
{
	if (rb_scratch(p, PATH_MAX + 16, addr, err))
		return -1;
	return fp_mem_write(p->pid, *addr, path, strlen(path) + 1, err);
}

/* ---- pages -------------------------------------------------------------- */

/* The contents of l's ranges: one after the other at data, or (ptrs) at
 * ptrs[i] each. */
static int write_ranges(pid_t pid, const struct fp_rlist *l, const uint8_t *data, const uint8_t *const *ptrs,
			uint64_t limit, uint64_t *done, fp_error *err)
{
	enum { BATCH = 512 };
	struct iovec liov[BATCH], riov[BATCH];
	size_t off = 0, i = 0;
	*done = 0;
	while (i < l->n && *done < limit) {
		size_t k = 0, total = 0;
		for (; i < l->n && k < BATCH; i++) {
			size_t len = l->r[i].end - l->r[i].start;
			if (*done + (total + len) / CR_PAGE_SIZE > limit)
				len = (limit - *done) * CR_PAGE_SIZE - total;
			if (!len)
				break;
			liov[k] = (struct iovec){ (void *)(ptrs ? ptrs[i] : data + off + total), len };
			riov[k] = (struct iovec){ (void *)(uintptr_t)l->r[i].start, len };
			total += len;
			k++;
			if (len < l->r[i].end - l->r[i].start) {
				i = l->n; /* the limit ends here */
				break;
			}
		}
		for (size_t j = 0; j < k;) { /* j: the first range not written yet */
			ssize_t got = process_vm_writev(pid, liov + j, k - j, riov + j, k - j, 0);
			size_t g = got > 0 ? (size_t)got : 0;
			while (j < k && g >= liov[j].iov_len)
				g -= liov[j++].iov_len;
			if (j == k)
				break;
			/* it stopped in range j (a read-only or protected page):
			 * that one through the /proc/PID/mem fallback, then on */
			if (fp_mem_write(pid, (uint64_t)(uintptr_t)riov[j].iov_base + g, (const uint8_t *)liov[j].iov_base + g,
					 liov[j].iov_len - g, err)) {
				/* some of this batch may be written: all of it
				 * counts, so that an undo covers it (writing the
				 * saved page over an unchanged one is harmless) */
				*done += total / CR_PAGE_SIZE;
				return -1;
			}
			j++;
		}
		off += total;
		*done += total / CR_PAGE_SIZE;
	}
	return 0;
}

/* SNAP's pages written back on two CPUs, as they were read: one range
 * each when written at random, the kernel's page walk per range. All of
 * l counts as written when any part fails (the undo writes the saved
 * pages over all of it: harmless where nothing was written yet). */
struct write_job {
	pid_t pid;
	const struct fp_range *r;
	const uint8_t *const *ptrs;
	int failed;
	fp_error err;
};

static void write_some(void *arg, size_t from, size_t to)
{
	struct write_job *j = arg;
	struct fp_rlist sub = { (struct fp_range *)j->r + from, to - from, to - from };
	uint64_t d;
	fp_error e;
	if (!__atomic_load_n(&j->failed, __ATOMIC_RELAXED) &&
	    write_ranges(j->pid, &sub, NULL, j->ptrs + from, UINT64_MAX, &d, &e)) {
		int zero = 0;
		if (__atomic_compare_exchange_n(&j->failed, &zero, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			j->err = e;
	}
}

static int write_two_cpus(pid_t pid, const struct fp_rlist *l, const uint8_t *const *ptrs, uint64_t *done,
			  fp_error *err)
{
	struct write_job j = { .pid = pid, .r = l->r, .ptrs = ptrs };
	rb_two_cpus(l->n, write_some, &j);
	*done = fp_rlist_bytes(l) / CR_PAGE_SIZE;
	if (j.failed) {
		*err = j.err;
		return -1;
	}
	return 0;
}

struct save_job {
	pid_t pid;
	const fp_mem_range *rg;
	int failed;
	fp_error err;
};

static void save_some(void *arg, size_t from, size_t to)
{
	struct save_job *j = arg;
	fp_error e;
	if (!__atomic_load_n(&j->failed, __ATOMIC_RELAXED) && fp_mem_read_ranges(j->pid, j->rg + from, to - from, &e)) {
		int zero = 0;
		if (__atomic_compare_exchange_n(&j->failed, &zero, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			j->err = e;
	}
}

/* rg[0..n) read on two CPUs: scattered like the snap's written pages */
static int read_ranges_now(pid_t pid, const fp_mem_range *rg, size_t n, fp_error *err)
{
	struct save_job j = { .pid = pid, .rg = rg };
	rb_two_cpus(n, save_some, &j);
	if (j.failed) {
		*err = j.err;
		return -1;
	}
	return 0;
}

static int read_list(pid_t pid, const struct fp_rlist *l, uint8_t *dst, fp_error *err)
{
	if (!l->n)
		return 0;
	fp_mem_range *rg = malloc(l->n * sizeof(*rg));
	if (!rg)
		return fp_fail(err, ENOMEM, "out of memory");
	size_t off = 0;
	for (size_t i = 0; i < l->n; i++) {
		size_t len = l->r[i].end - l->r[i].start;
		rg[i] = (fp_mem_range){ l->r[i].start, len, dst + off };
		off += len;
	}
	int rc = read_ranges_now(pid, rg, l->n, err);
	free(rg);
	return rc;
}

/* The live contents of wr, for an undo: p->old_ptr[i] for wr's range i.
 * A range wholly inside a copy that the read ahead made after protecting
 * its pages, and not written since (live_ok), points there; the others
 * are read now, one after the other into p->old. */
static int save_old(struct rb_proc *p, fp_error *err)
{
	size_t n = p->wr.n, m = 0, k = 0, off = 0;
	p->old_ptr = malloc((n ? n : 1) * sizeof(*p->old_ptr));
	fp_mem_range *rg = malloc((n ? n : 1) * sizeof(*rg));
	if (!p->old_ptr || !rg) {
		free(rg);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t s = p->wr.r[i].start, e = p->wr.r[i].end;
		while (k < p->live_ok.n && p->live_ok.r[k].end <= s)
			k++;
		if (k < p->live_ok.n && p->live_ok.r[k].start <= s && e <= p->live_ok.r[k].end) {
			p->old_ptr[i] = p->live_ok_ptr[k] + (s - p->live_ok.r[k].start);
			p->saved_ahead += e - s;
			continue;
		}
		p->old_ptr[i] = p->old + off;
		rg[m++] = (fp_mem_range){ s, (size_t)(e - s), p->old + off };
		off += e - s;
	}
	int rc = m ? read_ranges_now(p->pid, rg, m, err) : 0;
	free(rg);
	return rc;
}

static int present_in(pid_t pid, uint64_t s, uint64_t e, struct fp_rlist *out, fp_error *err)
{
	int fd = fp_pagemap_open(pid, err);
	if (fd < 0)
		return -1;
	enum { VEC = 512 };
	struct fp_page_region vec[VEC];
	struct fp_pm_scan_arg m = { 0 };
	m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	m.return_mask = m.category_anyof_mask;
	int r = fp_pagemap_scan(fd, s, e, &m, vec, VEC, (fp_pm_range_fn)fp_rlist_add, out);
	close(fd);
	return r <= 0 ? fp_fail(err, errno, "PAGEMAP_SCAN of %d: %s", (int)pid, strerror(errno)) : 0;
}

static int save_area(struct rb_proc *p, struct rb_vma_op *o, uint64_t s, uint64_t e, fp_error *err)
{
	if (s >= e)
		return 0;
	if (present_in(p->pid, s, e, &o->saved, err))
		return -1;
	size_t len = fp_rlist_bytes(&o->saved);
	if (!len)
		return 0;
	o->data = malloc(len);
	if (!o->data)
		return fp_fail(err, ENOMEM, "out of memory (%zu MiB to keep a removed mapping)", len >> 20);
	return read_list(p->pid, &o->saved, o->data, err);
}

/* ---- save --------------------------------------------------------------- */

/* SNAP's pages of l through the window buf (cap bytes): each window read
 * (and proven, rollback_image.c), then, if `write`, written into the
 * process, until `limit` pages are written (*done). Windows keep the
 * helper's memory at cap however many pages a rollback writes back:
 * fresh memory costs more here than reading the page cache twice. */
static int stream_snap(struct rb_proc *p, const struct fp_rlist *l, uint8_t *buf, size_t cap, bool write,
		       uint64_t limit, uint64_t *done, fp_error *err)
{
	struct fp_range *sub = malloc(cap / CR_PAGE_SIZE * sizeof(*sub));
	if (!sub)
		return fp_fail(err, ENOMEM, "out of memory");
	*done = 0;
	size_t i = 0;
	uint64_t at = l->n ? l->r[0].start : 0;
	int rc = 0;
	while (i < l->n && !rc && *done < limit) {
		size_t k = 0, fill = 0;
		while (i < l->n && fill < cap && !rc) {
			uint64_t e = l->r[i].end;
			if (e - at > cap - fill)
				e = at + (cap - fill);
			sub[k++] = (struct fp_range){ at, e };
			rc = rb_snap_read(p, at, e - at, buf + fill, err);
			fill += e - at;
			at = e;
			if (at == l->r[i].end && ++i < l->n)
				at = l->r[i].start;
		}
		if (rc || !write)
			continue;
		struct fp_rlist w = { sub, k, k };
		uint64_t d = 0;
		rc = write_ranges(p->pid, &w, buf, NULL, limit - *done, &d, err);
		*done += d;
	}
	free(sub);
	return rc;
}

int rb_save(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	size_t lw = fp_rlist_bytes(&p->wr), ln = fp_rlist_bytes(&p->wr_new);
	p->resident = lw + ln <= c->resident_max;
	/* cut where the read ahead's live copies begin and end: a range is
	 * saved from one of them or read */
	if (p->live_ok.n && !c->no_save) {
		struct fp_rlist cw = { 0 };
		if (rb_cut_at(&p->wr, p->live_ok.r, p->live_ok.n, &cw, NULL)) {
			free(cw.r);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		fp_rlist_free(&p->wr);
		p->wr = cw;
	}
	/* resident: SNAP's pages where rb_prefetch read them, the others read
	 * now (rb_place cuts wr there: the same pages, in the same order) */
	if (p->resident && rb_place(c, p, err))
		return -1;
	fp_rb_mark(c->r, "s_place");
	/* FP_ROLLBACK_SAVE=0: no copy of the live pages (rollback_inplace.h) */
	p->old = c->no_save ? NULL : rb_old_buf(c, p, lw, err);
	fp_rb_mark(c->r, "s_oldbuf");
	if (!p->resident) {
		p->newd_len = c->window;
		p->newd = p->old || c->no_save ? rb_buf_get(rb_slot(c, p, RB_SLOT_NEW), p->newd_len ? p->newd_len : 1, err)
						: NULL;
	}
	if ((!p->old && !c->no_save) || !p->newd)
		return -1;
	if (c->per_page && !p->resident) /* each page proven as it is read */
		c->r->verified_bytes += lw + ln;
	if (p->old && save_old(p, err))
		return fp_wrap(err, "saving the pages of %d that the rollback overwrites", (int)p->pid);
	c->r->saved_ahead_bytes += p->saved_ahead;
	fp_rb_mark(c->r, "s_old");
	if (!p->resident) { /* proven now, before anything is written; read again then */
		uint64_t d;
		if (stream_snap(p, &p->wr, p->newd, c->window, false, UINT64_MAX, &d, err) ||
		    stream_snap(p, &p->wr_new, p->newd, c->window, false, UINT64_MAX, &d, err))
			return -1;
	}
	for (size_t i = 0; i < p->nvops; i++) {
		struct rb_vma_op *o = &p->vops[i];
		if (o->kind == RB_MUNMAP && save_area(p, o, o->start, o->end, err))
			return -1;
	}
	fp_rb_mark(c->r, "s_areas");
	for (size_t i = 0; i < p->nth; i++) {
		struct rb_thread *t = &p->th[i];
		size_t xs;
		if (fp_pt_get_regs(t->tid, &t->old, err) || fp_pt_xstate_size(t->tid, &xs, err))
			return -1;
		t->old_xs = malloc(xs);
		if (!t->old_xs)
			return fp_fail(err, ENOMEM, "out of memory");
		if (fp_pt_get_xstate(t->tid, t->old_xs, xs, &t->old_xs_len, err) || fp_pt_get_sigmask(t->tid, &t->old_mask, err))
			return -1;
		t->saved = true;
	}
	fp_rb_mark(c->r, "s_regs");
	return 0;
}

/* ---- apply -------------------------------------------------------------- */

static int vma_op(struct rb_proc *p, struct rb_vma_op *o, fp_error *err)
{
	int64_t r;
	switch (o->kind) {
	case RB_BRK: {
		if (inject_ok(p, "brk(0)", SYS_brk, 0, 0, 0, 0, 0, 0, &r, err))
			return -1;
		o->old_brk = (uint64_t)r;
		uint64_t old_end = (o->old_brk + CR_PAGE_SIZE - 1) & ~(uint64_t)(CR_PAGE_SIZE - 1);
		uint64_t new_end = o->end ? o->end : o->brk;
		if (old_end > new_end && save_area(p, o, new_end, old_end, err))
			return -1;
		if (inject_ok(p, "brk", SYS_brk, o->brk, 0, 0, 0, 0, 0, &r, err))
			return -1;
		if ((uint64_t)r != o->brk)
			return fp_fail(err, ENOMEM, "process %d: brk(0x%llx) gave 0x%llx", (int)p->pid,
				       (unsigned long long)o->brk, (unsigned long long)r);
		break;
	}
	case RB_MUNMAP:
		if (inject_ok(p, "munmap", SYS_munmap, o->start, o->end - o->start, 0, 0, 0, 0, NULL, err))
			return -1;
		break;
	case RB_MMAP:
		if (inject_ok(p, "mmap", SYS_mmap, o->start, o->end - o->start, (uint64_t)o->prot,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &r, err))
			return -1;
		if ((uint64_t)r != o->start)
			return fp_fail(err, EEXIST, "process %d: mmap at 0x%llx landed at 0x%llx", (int)p->pid,
				       (unsigned long long)o->start, (unsigned long long)r);
		break;
	case RB_MPROTECT:
		if (inject_ok(p, "mprotect", SYS_mprotect, o->start, o->end - o->start, (uint64_t)o->prot, 0, 0, 0, NULL,
			      err))
			return -1;
		break;
	}
	o->done = true;
	return 0;
}

static int reopen(struct rb_proc *p, int fd, const char *path, int flags, uint64_t pos, fp_error *err)
{
	uint64_t a;
	int64_t nfd, r;
	if (scratch_path(p, path, &a, err) ||
	    inject_ok(p, path, SYS_openat, (uint64_t)AT_FDCWD, a, (uint64_t)((flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC),
		      0, 0, 0, &nfd, err))
		return -1;
	int rc = inject_ok(p, "lseek", SYS_lseek, (uint64_t)nfd, pos, SEEK_SET, 0, 0, 0, NULL, err);
	if (nfd == fd) {
		/* fd was free (closed since SNAP) and the lowest one: the open
		 * landed on it, and dup3 onto itself is EINVAL */
		if (!rc && !(flags & O_CLOEXEC))
			rc = inject_ok(p, "fcntl", SYS_fcntl, (uint64_t)fd, F_SETFD, 0, 0, 0, 0, NULL, err);
		if (rc)
			rb_inject(p, SYS_close, (uint64_t)nfd, 0, 0, 0, 0, 0, &r, NULL);
		return rc;
	}
	if (!rc)
		rc = inject_ok(p, "dup3", SYS_dup3, (uint64_t)nfd, (uint64_t)fd, (flags & O_CLOEXEC) ? O_CLOEXEC : 0, 0, 0, 0,
			       NULL, err);
	if (rb_inject(p, SYS_close, (uint64_t)nfd, 0, 0, 0, 0, 0, &r, rc ? NULL : err))
		rc = -1;
	return rc;
}

/* Set by the helper on the terminal itself (through the process's fd),
 * not injected: the helper is in no session of that terminal, so no
 * SIGTTOU applies. */
static int tty_modes(pid_t pid, int fd, const struct termios *tio, fp_error *err)
{
	char lp[64];
	snprintf(lp, sizeof(lp), "/proc/%d/fd/%d", (int)pid, fd);
	int t = open(lp, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (t < 0 || tcsetattr(t, TCSANOW, tio) < 0) {
		int e = errno;
		if (t >= 0)
			close(t);
		return fp_fail(err, e, "cannot put back the modes of %d's terminal (fd %d): %s", (int)pid, fd, strerror(e));
	}
	close(t);
	return 0;
}

/* A copy of p's fd (pidfd_getfd: the same open file description), -1 if
 * none can be taken. */
static int copy_of(struct rb_proc *p, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	int mine = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (pidfd >= 0)
		close(pidfd);
	return mine;
}

/* An fd's offset belongs to its open file description, which a copy taken
 * with pidfd_getfd shares: the helper moves it itself. An injected lseek
 * was the rollback's first return of the stopped thread to user mode,
 * where this VM's hypervisor makes it pay for the page tables that the
 * step changed (3-11 ms at 1 GiB, 1% written, under load). 1: done; 0:
 * no copy could be taken (the caller injects). */
static int seek_here(struct rb_proc *p, int fd, uint64_t pos, fp_error *err)
{
	int mine = copy_of(p, fd);
	if (mine < 0)
		return 0;
	off_t r = lseek(mine, (off_t)pos, SEEK_SET);
	int e = errno;
	close(mine);
	if (r < 0)
		return fp_fail(err, e, "process %d: lseek of fd %d failed: %s", (int)p->pid, fd, strerror(e));
	return 1;
}

/* An fd's status flags belong to its open file description too: set
 * through a copy (1), or 0 when none could be taken (the caller injects). */
static int setfl_here(struct rb_proc *p, int fd, int flags, fp_error *err)
{
	int mine = copy_of(p, fd);
	if (mine < 0)
		return 0;
	int r = fcntl(mine, F_SETFL, flags);
	int e = errno;
	close(mine);
	if (r < 0)
		return fp_fail(err, e, "process %d: fcntl(F_SETFL) of fd %d failed: %s", (int)p->pid, fd, strerror(e));
	return 1;
}

/* Before a reopen replaces a live fd: its description kept at a spare fd
 * of the process, above every fd open now or in SNAP, so that no op of
 * this rollback lands on it. An undo puts that one description back, not
 * a new open of the path (which would lose the offset's sharing with other
 * fds and processes, its locks, and a file deleted since). The op counts
 * as done from here: its undo applies however far it got. Where no spare
 * fd can be had (the fd limit), the undo opens the path again. */
static int keep_live(struct rb_proc *p, struct rb_fd_op *o, fp_error *err)
{
	int64_t spare;
	if (rb_inject(p, SYS_fcntl, (uint64_t)o->fd, F_DUPFD_CLOEXEC, (uint64_t)p->fd_max + 1, 0, 0, 0, &spare, err))
		return -1;
	if (spare > 0) {
		o->spare = (int)spare;
		o->done = true;
	}
	return 0;
}

static int fd_op(struct rb_proc *p, struct rb_fd_op *o, bool undo, fp_error *err)
{
	uint64_t a;
	int here;
	switch (o->kind) {
	case RB_SEEK:
		here = seek_here(p, o->fd, undo ? o->old_pos : o->pos, err);
		if (here < 0 || (!here && inject_ok(p, "lseek", SYS_lseek, (uint64_t)o->fd, undo ? o->old_pos : o->pos,
						     SEEK_SET, 0, 0, 0, NULL, err)))
			return -1;
		break;
	case RB_REOPEN:
		if (undo && !o->old_path[0]) { /* it was closed */
			int64_t r;
			if (rb_inject(p, SYS_close, (uint64_t)o->fd, 0, 0, 0, 0, 0, &r, err))
				return -1;
			break;
		}
		if (undo && o->spare) { /* the live description, as it was */
			int cloexec = (o->flags & O_CLOEXEC) ? O_CLOEXEC : 0; /* SNAP's = the live one, or RB_SETFD's undo follows */
			if (inject_ok(p, "dup3", SYS_dup3, (uint64_t)o->spare, (uint64_t)o->fd, (uint64_t)cloexec, 0, 0, 0,
				      NULL, err) ||
			    inject_ok(p, "close", SYS_close, (uint64_t)o->spare, 0, 0, 0, 0, 0, NULL, err))
				return -1;
			o->spare = 0;
			break;
		}
		if (!undo && o->old_path[0] && keep_live(p, o, err))
			return -1;
		if (!undo && o->src_pid) { /* SNAP's description, shared (rollback_fdshare.c) */
			fp_error de;
			if (rb_inject_session(p, err))
				return -1;
			if (!fp_inject_dup_from(&p->ij, o->src_pid, o->src_fd, o->fd, (o->flags & O_CLOEXEC) != 0, &de))
				break;
			if (de.errnum != EPERM && de.errnum != EACCES) {
				*err = de;
				return -1;
			}
			/* not allowed to take another process's fd (Yama): its own, as before */
		}
		if (reopen(p, o->fd, undo ? o->old_path : o->path, o->flags, undo ? o->old_pos : o->pos, err))
			return -1;
		break;
	case RB_CHDIR:
		if (scratch_path(p, undo ? o->old_path : o->path, &a, err) ||
		    inject_ok(p, "chdir", SYS_chdir, a, 0, 0, 0, 0, 0, NULL, err))
			return -1;
		break;
	case RB_TTY_MODES:
		if (tty_modes(p->pid, o->fd, undo ? &o->old_tio : &o->tio, err))
			return -1;
		break;
	case RB_SETFL:
		here = setfl_here(p, o->fd, undo ? o->old_flags : o->flags, err);
		if (here < 0 || (!here && inject_ok(p, "fcntl(F_SETFL)", SYS_fcntl, (uint64_t)o->fd, F_SETFL,
						     (uint64_t)(undo ? o->old_flags : o->flags), 0, 0, 0, NULL, err)))
			return -1;
		break;
	case RB_SETFD: /* the fd table is the process's own: injected */
		if (inject_ok(p, "fcntl(F_SETFD)", SYS_fcntl, (uint64_t)o->fd, F_SETFD,
			      (uint64_t)(undo ? o->old_flags : o->flags), 0, 0, 0, NULL, err))
			return -1;
		break;
	case RB_CLOSE:
		return 0; /* rb_commit */
	}
	o->done = !undo;
	return 0;
}

static int set_thread(struct rb_thread *t, fp_error *err)
{
	fp_xstate_layout lay;
	if (fp_xstate_layout_get(&lay, err))
		return -1;
	struct user_regs_struct r;
	const cr_thread_info *ti = &t->core.thread_info;
	if (!t->core.has_thread_info || fp_regs_from_image(&ti->gpregs, &r, err))
		return t->core.has_thread_info ? -1 : fp_fail(err, EINVAL, "thread %d: no registers in SNAP", (int)t->tid);
	/* As a restore does: a thread that SNAP caught in a system call
	 * makes it again (or sees EINTR), and the kernel must not restart
	 * the live thread's own call on top of that. */
	if (fp_regs_fixup_restart(&r) != FP_RESTART_NONE)
		r.orig_rax = (unsigned long long)-1;
	size_t xs = t->old_xs_len;
	uint8_t *buf = calloc(1, xs);
	if (!buf)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = fp_xstate_from_image(&ti->fpregs, &lay, buf, xs, err);
	t->written = true;
	if (!rc)
		rc = fp_pt_set_regs(t->tid, &r, err);
	if (!rc)
		rc = fp_pt_set_xstate(t->tid, buf, xs, err);
	if (!rc && t->core.has_thread_core && t->core.thread_core.has_blk_sigset)
		rc = fp_pt_set_sigmask(t->tid, t->core.thread_core.blk_sigset, err);
	free(buf);
	return rc;
}

int rb_apply(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	for (size_t i = 0; i < p->nvops; i++)
		if (vma_op(p, &p->vops[i], err))
			return -1;
	for (size_t i = 0; i < p->nfops; i++)
		if (fd_op(p, &p->fops[i], false, err))
			return -1;
	/* the scratch mapping goes in this same run of injected calls: the
	 * mappings are SNAP's again before the pages are written */
	if (rb_timers_set(p, false, err) || rb_attrs_set(p, false, err) || rb_thread_attrs_set(p, false, err) ||
	    fp_inject_scratch_drop(&p->ij, err))
		return -1;
	if (inject_end(p, err))
		return -1;
	c->r->vma_ops += p->nvops;
	c->r->fd_ops += p->nfops;
	fp_rb_mark(c->r, "a_ops");
	uint64_t npages = fp_rlist_bytes(&p->wr) / CR_PAGE_SIZE;
	uint64_t limit = c->fault_after >= 0 && (uint64_t)c->fault_after < npages ? (uint64_t)c->fault_after : npages;
	if (!p->resident && c->per_page)
		c->r->verified_bytes += fp_rlist_bytes(&p->wr) + fp_rlist_bytes(&p->wr_new);
	int wrc;
	if (p->resident && limit == npages)
		wrc = write_two_cpus(p->pid, &p->wr, p->wr_ptr, &p->pages_done, err);
	else if (p->resident)
		wrc = write_ranges(p->pid, &p->wr, NULL, p->wr_ptr, limit, &p->pages_done, err);
	else
		wrc = stream_snap(p, &p->wr, p->newd, c->window, true, limit, &p->pages_done, err);
	if (wrc)
		return fp_wrap(err, "writing SNAP's pages back into %d", (int)p->pid);
	c->r->pages += p->pages_done;
	fp_rb_mark(c->r, "a_pages");
	if (c->fault_after >= 0) {
		c->fault_after -= (long)p->pages_done;
		if (p->pages_done < npages || c->fault_after <= 0) {
			c->fault_after = -1;
			return fp_fail(err, EIO, "failing on purpose after %llu pages (FORKPOINT_FAULT=rollback-after-N-pages)",
				       (unsigned long long)c->r->pages);
		}
	}
	uint64_t nn;
	if (p->resident ? write_ranges(p->pid, &p->wr_new, p->wrn_data, NULL, UINT64_MAX, &nn, err)
			: stream_snap(p, &p->wr_new, p->newd, c->window, true, UINT64_MAX, &nn, err))
		return fp_wrap(err, "writing SNAP's pages into the mappings of %d made again", (int)p->pid);
	c->r->pages += nn;
	fp_rb_mark(c->r, "a_new");
	for (size_t i = 0; i < p->nth; i++)
		if (set_thread(&p->th[i], err))
			return fp_wrap(err, "setting the registers of thread %d", (int)p->th[i].tid);
	fp_rb_mark(c->r, "a_regs");
	return 0;
}

/* ---- undo --------------------------------------------------------------- */

static int undo_vma(struct rb_proc *p, struct rb_vma_op *o, fp_error *err)
{
	int64_t r;
	uint64_t done;
	switch (o->kind) {
	case RB_BRK:
		if (inject_ok(p, "brk", SYS_brk, o->old_brk, 0, 0, 0, 0, 0, &r, err))
			return -1;
		break;
	case RB_MMAP:
		return inject_ok(p, "munmap", SYS_munmap, o->start, o->end - o->start, 0, 0, 0, 0, NULL, err);
	case RB_MUNMAP:
		if (inject_ok(p, "mmap", SYS_mmap, o->start, o->end - o->start, (uint64_t)o->old_prot,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &r, err))
			return -1;
		break;
	case RB_MPROTECT:
		return inject_ok(p, "mprotect", SYS_mprotect, o->start, o->end - o->start, (uint64_t)o->old_prot, 0, 0, 0,
				 NULL, err);
	}
	return o->saved.n ? write_ranges(p->pid, &o->saved, o->data, NULL, UINT64_MAX, &done, err) : 0;
}

int rb_undo(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	(void)c;
	int rc = 0;
	fp_error e2;
	for (size_t i = p->nth; i-- > 0;) {
		struct rb_thread *t = &p->th[i];
		if (!t->written)
			continue;
		if (fp_pt_set_regs(t->tid, &t->old, rc ? &e2 : err) ||
		    fp_pt_set_xstate(t->tid, t->old_xs, t->old_xs_len, rc ? &e2 : err) ||
		    fp_pt_set_sigmask(t->tid, t->old_mask, rc ? &e2 : err))
			rc = -1;
	}
	uint64_t done;
	if (p->pages_done && !p->old) /* FP_ROLLBACK_SAVE=0: the caller never gets here then */
		rc = fp_fail(rc ? &e2 : err, EINVAL, "process %d: %llu pages written back were not saved", (int)p->pid,
			     (unsigned long long)p->pages_done);
	else if (p->pages_done && write_ranges(p->pid, &p->wr, p->old_ptr ? NULL : p->old, p->old_ptr, p->pages_done, &done,
					       rc ? &e2 : err))
		rc = -1;
	if (rb_thread_attrs_set(p, true, rc ? &e2 : err))
		rc = -1;
	if (rb_attrs_set(p, true, rc ? &e2 : err))
		rc = -1;
	if (p->timers_set && rb_timers_set(p, true, rc ? &e2 : err))
		rc = -1;
	for (size_t i = p->nfops; i-- > 0;)
		if (p->fops[i].done && fd_op(p, &p->fops[i], true, rc ? &e2 : err))
			rc = -1;
	for (size_t i = p->nvops; i-- > 0;)
		if (p->vops[i].done && undo_vma(p, &p->vops[i], rc ? &e2 : err))
			rc = -1;
	if (inject_end(p, rc ? &e2 : err))
		rc = -1;
	return rc;
}

int rb_commit(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	(void)c;
	int rc = 0;
	for (size_t i = 0; i < p->nfops && !rc; i++) {
		int64_t r;
		if (p->fops[i].kind == RB_CLOSE)
			rc = rb_inject(p, SYS_close, (uint64_t)p->fops[i].fd, 0, 0, 0, 0, 0, &r, err);
		else if (p->fops[i].spare) /* the live description it replaced */
			rc = rb_inject(p, SYS_close, (uint64_t)p->fops[i].spare, 0, 0, 0, 0, 0, &r, err);
	}
	if (inject_end(p, rc ? NULL : err))
		rc = -1;
	return rc;
}
