/* Rollback in place: the write tracking goes on from SNAP (rollback_int.h).
 *
 * While the processes are stopped, every mapping is registered with the
 * tracking's userfaultfd (the re-made ones are new to it) and SNAP's pages
 * become what the next snapshot's parent holds. What was written (by the
 * process since the last snapshot, or by the rollback itself) must be
 * protected again, so that the next snapshot reads only what is written
 * after the rollback. That protection costs a TLB flush per 2 MiB with a
 * written page and a page-table update per page: 6-7 ms for 1 GiB at 1%
 * written on a quiet machine, 20-40 ms under load, the biggest part of a
 * rollback's pause. So, as snapshots do (dump_incr_recheck.c), it comes
 * after the resume, and after the reply to `restore` (fp_rollback_settle).
 *
 * After the resume, one PAGEMAP_SCAN with PM_SCAN_WP_MATCHING per tracked
 * range protects every page found written and says which ones it were.
 * A page the process writes after the resume and before the scan looks
 * like one the rollback wrote; each protected page is therefore compared
 * with the content the rollback wrote there (SNAP's, still in the
 * rollback's buffer): one that differs, or one the rollback did not write
 * at all, is unprotected again (dump_incr_settle), so the next snapshot
 * sees it written and reads it. A page that equals SNAP's holds the
 * parent's content, and a write after its protection is tracked as
 * usual. Rollbacks whose pages are streamed (no buffer holds them all) and
 * FP_DUMP_REPROTECT_STOPPED=1 protect during the stop, as before.
 * FORKPOINT_FAULT=rollback-settle-after-N-ms makes the protection wait N
 * ms after the reply (e2e/snap_incr_race: the target writes meanwhile). */
#include "session/rollback_int.h"
#include "fp_fault_pause.h"

#include "dump/dump_fdmark.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "ptrace/pagemap_scan.h"
#include "session/session_hold.h"

#define FP_PM_SCAN_WP_MATCHING 1ull

/* A rollback's processes whose written pages wait for their protection. */
struct pending {
	pid_t pid;
	int uffd;
	struct fp_range *reg; /* the tracked ranges (a copy) */
	size_t nreg;
	struct fp_range *piece; /* what the rollback wrote, disjoint, sorted, */
	const uint8_t **data;   /* with SNAP's contents there */
	size_t npiece;
};

static struct {
	struct pending *p;
	size_t n;
} pend;

static int sink_add(void *arg, uint64_t s, uint64_t e)
{
	return fp_rlist_add(arg, s, e) ? -1 : 0;
}

/* Protects every written page of reg; out (may be NULL) gets them. */
static int protect_written(pid_t pid, const struct fp_range *reg, size_t nreg, struct fp_rlist *out, fp_error *err)
{
	int fd = fp_pagemap_open(pid, err);
	if (fd < 0)
		return -1;
	enum { VEC = 512 };
	struct fp_page_region vec[VEC];
	struct fp_pm_scan_arg m = { 0 };
	m.flags = FP_PM_SCAN_WP_MATCHING;
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	struct fp_rlist ign = { 0 };
	int rc = 0;
	for (size_t i = 0; i < nreg && !rc; i++) {
		int r = fp_pagemap_scan(fd, reg[i].start, reg[i].end, &m, vec, VEC, sink_add, out ? out : &ign);
		if (r <= 0)
			rc = fp_fail(err, r ? errno : ENOTSUP, "re-protecting the pages of %d: %s", (int)pid,
				     r ? strerror(errno) : "no PAGEMAP_SCAN");
		fp_rlist_free(&ign);
	}
	close(fd);
	return rc;
}

/* What p's rollback wrote, with pointers to what it wrote (wr_ptr,
 * wrn_data: rb_place), as disjoint sorted pieces: wr and wr_new may
 * overlap where the heap grew back, with the same contents (SNAP's). */
static int pieces_of(const struct rb_proc *p, struct pending *q)
{
	size_t n = p->wr.n + p->wr_new.n;
	q->piece = malloc((n ? n : 1) * sizeof(*q->piece));
	q->data = malloc((n ? n : 1) * sizeof(*q->data));
	if (!q->piece || !q->data)
		return -1;
	const uint8_t *dn = p->wrn_data;
	size_t i = 0, j = 0;
	while (i < p->wr.n || j < p->wr_new.n) {
		bool take_w = j == p->wr_new.n || (i < p->wr.n && p->wr.r[i].start <= p->wr_new.r[j].start);
		const uint8_t *d = take_w ? p->wr_ptr[i] : dn;
		const struct fp_range *r = take_w ? &p->wr.r[i++] : &p->wr_new.r[j++];
		if (!take_w)
			dn += r->end - r->start;
		uint64_t s = r->start;
		if (q->npiece && q->piece[q->npiece - 1].end > s)
			s = q->piece[q->npiece - 1].end;
		if (s >= r->end)
			continue;
		q->piece[q->npiece] = (struct fp_range){ s, r->end };
		q->data[q->npiece++] = d + (s - r->start);
	}
	return 0;
}

/* Registers p's mappings with the tracking, SNAP's pages as the parent's;
 * the written pages protected now, or noted for fp_rollback_settle. */
int rb_rearm(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	struct fp_track_proc *tp = p->tp;
	/* the shim's mapping log went back to SNAP's with its memory */
	snprintf(tp->shim_doubt, sizeof(tp->shim_doubt), "a rollback wrote the shim's mapping log back");
	fp_track_fdcarry_drop(c->t); /* and its fd table: its fds are read from /proc */
	fp_fdmark_rolled_back(c->t, c->snap_dir); /* the marks of the line left behind */
	/* the mappings read at the stop, unless the rollback injected calls
	 * (mappings changed, or a scratch page for a path); offsets are
	 * moved without injecting (rollback_apply.c) */
	bool same = !p->nvops && !p->ij_init;
	struct dump_vma *v = same ? p->lv : NULL;
	size_t n = same ? p->nlv : 0;
	if (!same && dump_vmas_read(p->pid, false, &v, &n, err))
		return -1;
	/* A protection bit counts only where our registration held without a
	 * break since the bit was set: in the tracked ranges that kept it
	 * (track_lost.c). Every other mapping registered now (re-made by the
	 * rollback, untracked, or one whose registration the kernel dropped:
	 * it may hold pages left writable with the bit still on, which no
	 * write would ever clear once registered again) is protected as a
	 * whole, which rewrites every entry. The rollback wrote SNAP's pages
	 * into all of them (rollback_diff.c), so that is exact. */
	struct fp_rlist trusted = { 0 }, lost = { 0 };
	struct fp_rlist old = { tp->reg, tp->nreg, tp->nreg };
	int rc = fp_track_lost_of(p->pid, tp->reg, tp->nreg, &lost.r, &lost.n, err);
	lost.cap = lost.n;
	if (!rc && fp_rlist_minus(&old, &lost, &trusted))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&lost);
	struct fp_range *reg = NULL;
	size_t nreg = 0, cap = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!dump_precopy_protectable(&v[i]))
			continue;
		bool ours = fp_ranges_cover(trusted.r, trusted.n, v[i].start, v[i].end);
		struct uffdio_register r = { .range = { v[i].start, v[i].end - v[i].start }, .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(tp->uffd, UFFDIO_REGISTER, &r))
			continue; /* the process's own userfaultfd: read in full by snapshots */
		struct uffdio_writeprotect w = { .range = { v[i].start, v[i].end - v[i].start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (!ours && ioctl(tp->uffd, UFFDIO_WRITEPROTECT, &w))
			continue; /* untracked: the next snapshot reads it in full and tracks it anew */
		if (fp_ranges_push(&reg, &nreg, &cap, v[i].start, v[i].end))
			rc = fp_fail(err, ENOMEM, "out of memory");
	}
	fp_rlist_free(&trusted);
	if (v != p->lv)
		free(v);
	bool later = !rc && p->resident && dump_incr_defer();
	if (!rc && !later)
		rc = protect_written(p->pid, reg, nreg, NULL, err);
	struct pending *q = NULL;
	if (!rc && later) {
		struct pending *x = realloc(pend.p, (pend.n + 1) * sizeof(*x));
		if (x) {
			pend.p = x;
			q = memset(&x[pend.n++], 0, sizeof(*q));
			q->reg = malloc((nreg ? nreg : 1) * sizeof(*reg));
		}
		if (!q || !q->reg || pieces_of(p, q))
			rc = fp_fail(err, ENOMEM, "out of memory");
		else
			memcpy(q->reg, reg, nreg * sizeof(*reg)), q->nreg = nreg, q->pid = p->pid, q->uffd = tp->uffd;
	}
	struct fp_range *cov = rc ? NULL : malloc((p->snap_pages.n ? p->snap_pages.n : 1) * sizeof(*cov));
	if (!rc && !cov)
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc) {
		free(reg);
		return -1;
	}
	memcpy(cov, p->snap_pages.r, p->snap_pages.n * sizeof(*cov));
	free(tp->reg);
	free(tp->cov);
	tp->reg = reg, tp->nreg = nreg;
	tp->cov = cov, tp->ncov = p->snap_pages.n;
	tp->cov_known = true;
	/* what the read ahead protected again was written back to SNAP's */
	free(tp->ahead_w), free(tp->ahead_gone);
	tp->ahead_w = tp->ahead_gone = NULL;
	tp->nahead_w = tp->nahead_gone = 0;
	tp->ahead_walked = false;
	(void)c;
	return 0;
}

/* Protected pages P against q's pieces: x in address order, with the
 * contents they must hold, or NULL where the rollback wrote nothing. */
static int against_pieces(const struct pending *q, const struct fp_rlist *P, struct fp_range **x,
			  const uint8_t ***copy, size_t *nx)
{
	size_t cap = 2 * (P->n + q->npiece) + 1, k = 0;
	*x = malloc(cap * sizeof(**x));
	*copy = malloc(cap * sizeof(**copy));
	*nx = 0;
	if (!*x || !*copy)
		return -1;
	for (size_t i = 0; i < P->n; i++) {
		uint64_t a = P->r[i].start, b = P->r[i].end;
		while (a < b) {
			while (k < q->npiece && q->piece[k].end <= a)
				k++;
			bool in = k < q->npiece && q->piece[k].start <= a;
			uint64_t e = in ? q->piece[k].end : k < q->npiece ? q->piece[k].start : b;
			if (e > b)
				e = b;
			(*x)[*nx] = (struct fp_range){ a, e };
			(*copy)[(*nx)++] = in ? q->data[k] + (a - q->piece[k].start) : NULL;
			a = e;
		}
	}
	return 0;
}

static int settle_one(const struct pending *q, fp_error *err)
{
	struct fp_rlist P = { 0 };
	struct fp_range *x = NULL;
	const uint8_t **copy = NULL;
	size_t nx = 0;
	uint64_t unp = 0;
	int rc = protect_written(q->pid, q->reg, q->nreg, &P, err);
	if (!rc && against_pieces(q, &P, &x, &copy, &nx))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc)
		rc = dump_incr_settle(q->pid, q->uffd, x, nx, copy, &unp, err);
	free(x);
	free(copy);
	fp_rlist_free(&P);
	return rc;
}

static void pend_clear(void)
{
	for (size_t i = 0; i < pend.n; i++) {
		free(pend.p[i].reg);
		free(pend.p[i].piece);
		free(pend.p[i].data);
	}
	free(pend.p);
	pend.p = NULL;
	pend.n = 0;
}

void rb_rearm_cancel(void)
{
	pend_clear();
}

void fp_rollback_settle(struct fp_track *t)
{
	/* FORKPOINT_FAULT=rollback-settle-after-N-ms widens the window in
	 * which the resumed processes write pages not protected yet (tests) */
	long ms;
	if (pend.n && fp_fault_num("rollback-settle-after-%ld-ms%n", &ms) && ms > 0 && ms < 10000) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < pend.n && t->active; i++) {
		const struct pending *q = &pend.p[i];
		bool tracked = false;
		for (size_t k = 0; k < t->n && !tracked; k++)
			tracked = t->procs[k].pid == q->pid && t->procs[k].uffd == q->uffd;
		fp_error e;
		if (tracked && !settle_one(q, &e))
			continue;
		char w[300];
		snprintf(w, sizeof(w), "the write tracking could not follow a rollback: %s",
			 tracked ? e.msg : "a process's tracking changed before its pages were protected again");
		fp_track_drop(t, w);
	}
	pend_clear();
	rb_bufs_trim(); /* the pages compared with were in the rollback's buffers */
}
