/* An incremental snapshot's pages in the tracked memory, at the stop,
 * without walking every page table entry (dump_incr_int.h).
 *
 * A full walk of 1 GiB (262,144 entries, each entry's categories worked
 * out: present, swapped, the zero page, written) took 1.6-2.3 ms of the
 * stop on two CPUs, most of the pause. But in the tracked ranges only the
 * pages that lost our protection can differ from the parent, and
 * PAGEMAP_SCAN's fast loop finds those alone: asked exactly for "written",
 * it reads only each entry's protection bit (~0.4 ms a GiB). On this
 * kernel it also reports entries emptied by MADV_DONTNEED and the ranges
 * of page tables the kernel freed then (CONFIG_PT_RECLAIM); measured, and
 * e2e/rollback_drop and e2e/snap_incr_drop fail if it does not. So at the
 * stop, in a tracked range whose registration holds:
 *
 *   - a page the loop does not report, and not written since the parent
 *     (the pre-copy's `pw`), has the content it had at the parent: it is
 *     in the image exactly when the parent has it (`cov`, PE_PARENT);
 *   - a page in `pw` that the loop does not report was protected before
 *     the pre-copy copied it: the copy is its content if it was present
 *     or swapped then (`pw` leaves out the shared zero page), else it has
 *     none (`pw_gone`: emptied; the protection left a marker there, which
 *     a read turns into the zero page, still protected);
 *   - a page the loop reports (written, emptied, or faulted in by the
 *     pre-copy's read of an emptied one) is walked as before, with its
 *     categories: those are few, and their walk covers only their span.
 *
 * This needs `cov` to be exactly the parent's pages: not when the parent
 * was removed (every page is read then) nor after the arming that ends a
 * full restore (cov_known: the processes ran before it); then, and for
 * ranges registered by this snapshot or no longer registered, the walk.
 * The image restores what the full walk's would; the two lists differ in
 * presence only where the content is zeros (a page a rollback wrote zeros
 * to where SNAP had none, a marker read as a page by an earlier dump), and
 * FP_DUMP_FAST_CHECK=1 (dump_incr_fastcheck.c; the ASan pass of the tests
 * runs with it) proves that page by page. FP_DUMP_FAST_WRITTEN=0 walks
 * everything (A/B). */
#include "dump/dump_int.h"
#include "config.h"
#include "dump/ranges_ops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dump/dump_scan_two_cpus.h"
#include "ptrace/pagemap_scan.h"

bool dump_incr_fast_on(void)
{
	static _Atomic int on = -1;
	if (on < 0)
		on = !fp_env_off("FP_DUMP_FAST_WRITTEN");
	return on;
}

struct content_sink {
	struct fp_rlist *pages, *written;
	bool oom;
};

static int content_add(void *arg, const struct fp_page_region *r)
{
	struct content_sink *k = arg;
	if (fp_rlist_add(k->pages, r->start, r->end) ||
	    ((r->categories & FP_PAGE_IS_WRITTEN) && fp_rlist_add(k->written, r->start, r->end)))
		k->oom = true;
	return k->oom ? -1 : 0;
}

int dump_incr_content_walk(pid_t pid, int fd, const struct fp_rlist *spans, struct fp_rlist *pages,
			   struct fp_rlist *written, fp_error *err)
{
	enum { VEC = 1024 };
	struct fp_page_region *vec = malloc(VEC * sizeof(*vec));
	if (!vec)
		return fp_fail(err, ENOMEM, "out of memory");
	/* as the full walk asks (dump_pages.c): present or swapped, not the
	 * shared zero page */
	struct fp_pm_scan_arg mc = { 0 };
	mc.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	mc.category_inverted = FP_PAGE_IS_PFNZERO;
	mc.category_mask = FP_PAGE_IS_PFNZERO;
	mc.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED | FP_PAGE_IS_WRITTEN;
	struct content_sink k = { pages, written, false };
	int rc = 0;
	for (size_t i = 0; i < spans->n && !rc; i++) {
		int r = fp_pagemap_scan_regions(fd, spans->r[i].start, spans->r[i].end, &mc, vec, VEC, content_add, &k);
		if (r <= 0 || k.oom)
			rc = fp_fail(err, k.oom ? ENOMEM : r ? errno : ENOTSUP, "PAGEMAP_SCAN of %d for its pages: %s", pid,
				     strerror(k.oom ? ENOMEM : r ? errno : ENOTSUP));
	}
	free(vec);
	if (!rc && (fp_rlist_normalize(pages) || fp_rlist_normalize(written)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	return rc;
}

/* Ranges of l closer than this are walked in one call (a call costs about
 * a microsecond here; the entries of a small gap less). */
#define JOIN_GAP (256ull << 10)

int dump_incr_fast(struct dump_ctx *c, struct dump_proc *p, int fd, struct dump_incr_fast *f, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	memset(f, 0, sizeof(*f));
	/* new to the tracking, no parent (removed), or the parent's page list
	 * not T's (tracking armed after a full restore): the walk */
	if (!pc->tracked || !pc->cov_known || !c->parent_dir[0])
		return 0;
	int64_t t0 = dump_now_ns();
	struct fp_rlist reg = { pc->reg, pc->nreg, pc->nreg }, cov = { pc->cov, pc->ncov, pc->ncov };
	struct fp_rlist pw = { pc->pw, pc->npw, pc->npw }, gone = { pc->pw_gone, pc->npw_gone, pc->npw_gone },
			lost = { 0 }, ws = { 0 }, x = { 0 }, y = { 0 }, j = { 0 }, pages = { 0 }, written = { 0 };
	int rc = 0;
	/* the ranges whose registration the kernel dropped (track_lost.c) are
	 * walked: their bits say nothing */
	if (!rc && fp_track_lost(fd, reg.r, reg.n, &lost.r, &lost.n))
		rc = fp_fail(err, errno, "PAGEMAP_SCAN of %d for ranges that lost their tracking: %s", p->pid,
			     strerror(errno));
	lost.cap = lost.n;
	/* and those registered just now: their pages are read in full */
	struct fp_rlist fresh = { pc->fresh, pc->nfresh, pc->capfresh }, kept = { 0 };
	if (!rc && (fp_rlist_normalize(&fresh) || fp_rlist_minus(&reg, &lost, &kept) ||
		    fp_rlist_minus(&kept, &fresh, &f->tracked) || fp_rlist_normalize(&f->tracked)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	pc->fresh = fresh.r, pc->nfresh = fresh.n, pc->capfresh = fresh.cap;
	fp_rlist_free(&kept);
	/* the fast loop, on two CPUs (~0.5 ms a GiB on one) */
	struct fp_pm_scan_arg m = { 0 };
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	if (!rc) {
		rc = fp_scan_two_cpus(fd, f->tracked.r, f->tracked.n, &m, NULL, NULL, false, &ws, NULL, err);
		if (rc < 0)
			fp_wrap(err, "PAGEMAP_SCAN of %d for written pages", p->pid);
	}
	if (!rc && fp_rlist_normalize(&ws))
		rc = fp_fail(err, ENOMEM, "out of memory");
	/* the reported pages, walked (in spans joined over small gaps) */
	for (size_t i = 0; i < ws.n && !rc; i++) {
		if (j.n && ws.r[i].start - j.r[j.n - 1].end <= JOIN_GAP)
			j.r[j.n - 1].end = ws.r[i].end;
		else if (fp_rlist_add(&j, ws.r[i].start, ws.r[i].end))
			rc = fp_fail(err, ENOMEM, "out of memory");
	}
	if (!rc && dump_incr_content_walk(p->pid, fd, &j, &x, &y, err))
		rc = -1;
	/* pages: cov and pw, less pw's emptied ones (gone is part of pw, so
	 * this is cov outside pw and pw with content then), outside ws; and
	 * what the walk of ws found there. written: what it found written
	 * there. (One pass over the long lists: a 10% step's pw has ~25,000
	 * ranges, and five passes took 2 ms of the stop.) */
	struct fp_rlist a = { 0 }, b = { 0 }, d = { 0 }, e = { 0 };
	if (!rc && (fp_rlist_union(&cov, &pw, &a) || fp_rlist_minus(&a, &gone, &b) || fp_rlist_minus(&b, &ws, &d) ||
		    fp_rlist_inter(&x, &ws, &pages) || fp_rlist_merge(&pages, &d) || fp_rlist_inter(&pages, &f->tracked, &e) ||
		    fp_rlist_inter(&y, &ws, &written)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	size_t nws = ws.n, nj = j.n;
	f->pages = e;
	e = (struct fp_rlist){ 0 };
	f->written = written;
	written = (struct fp_rlist){ 0 };
	fp_rlist_free(&a), fp_rlist_free(&b), fp_rlist_free(&d), fp_rlist_free(&e);
	fp_rlist_free(&lost), fp_rlist_free(&ws), fp_rlist_free(&x), fp_rlist_free(&y), fp_rlist_free(&j);
	fp_rlist_free(&pages), fp_rlist_free(&written);
	if (rc) {
		dump_incr_fast_free(f);
		return rc < 0 ? -1 : 0;
	}
	dlog(c, "%d: pages of its tracked memory from the written ones: %zu range(s) tracked, %zu reported written or "
		"emptied (walked in %zu span(s)), %zu page run(s), in %.3f ms", p->pid, f->tracked.n, nws, nj, f->pages.n,
	     (double)(dump_now_ns() - t0) / 1e6);
	return 1;
}

bool dump_incr_fast_covers(const struct dump_incr_fast *f, uint64_t start, uint64_t end)
{
	return fp_ranges_cover(f->tracked.r, f->tracked.n, start, end);
}

int dump_incr_fast_each(const struct fp_rlist *l, uint64_t start, uint64_t end, int (*fn)(void *arg, uint64_t s, uint64_t e),
			void *arg)
{
	for (size_t i = fp_ranges_find(l->r, l->n, start); i < l->n && l->r[i].start < end; i++)
		if (fn(arg, l->r[i].start > start ? l->r[i].start : start, l->r[i].end < end ? l->r[i].end : end))
			return -1;
	return 0;
}

void dump_incr_fast_free(struct dump_incr_fast *f)
{
	fp_rlist_free(&f->tracked);
	fp_rlist_free(&f->pages);
	fp_rlist_free(&f->written);
}
