/* Rollback in place: the page tables read with PAGEMAP_SCAN
 * (rollback_int.h), for what differs (rollback_diff.c) and for what to
 * read ahead (rollback_read.c). */
#include "session/rollback_int.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump/dump_scan_two_cpus.h"
#include "ptrace/pagemap_scan.h"

/* The page tables are walked on two CPUs (dump_scan_two_cpus.c): the walk
 * of 1 GiB (262,144 entries) was the larger part of `diff` during the stop
 * (1.9-3.3 ms on one) and of finding the pages to read ahead (0.9-1.6 ms).
 * FP_ROLLBACK_SCAN_ONE_CPU=1 walks on one, as before (A/B). Both now ask
 * for "written" alone, which the kernel answers from each entry's
 * protection bit (rollback_pages.c); the walk of every entry's categories
 * is FP_ROLLBACK_FULL_WALK=1's. */
static bool one_cpu(void)
{
	return fp_env_flag("FP_ROLLBACK_SCAN_ONE_CPU");
}

/* in walked into out_a (and out_b) */
static int scan(int fd, const struct fp_rlist *in, const struct fp_pm_scan_arg *m, fp_scan_sort_fn sort,
		struct fp_rlist *out_a, struct fp_rlist *out_b, fp_error *err)
{
	int rc = fp_scan_two_cpus(fd, in->r, in->n, m, sort, NULL, one_cpu(), out_a, out_b, err);
	if (rc > 0)
		return fp_fail(err, ENOTSUP, "PAGEMAP_SCAN: not supported by this kernel");
	return rc ? fp_wrap(err, "PAGEMAP_SCAN") : 0;
}

/* written (a), or in a mapping whose registration the kernel dropped
 * (track_lost.c): its protection bits say nothing. Not the shared zero
 * page (a read of a page that was never there): it reads as no page does,
 * and taken as written it had zeros written over it, a page made for each
 * (e2e/rollback_drop's resident size). Present (b): not the zero page. */
static int wp_sort(void *arg, const struct fp_page_region *r, struct fp_rlist *a, struct fp_rlist *b)
{
	(void)arg;
	bool written = ((r->categories & FP_PAGE_IS_WRITTEN) || !(r->categories & FP_PAGE_IS_WPALLOWED)) &&
		       !(r->categories & FP_PAGE_IS_PFNZERO);
	return (written && fp_rlist_add(a, r->start, r->end)) ||
	       ((r->categories & FP_PAGE_IS_PRESENT) && !(r->categories & FP_PAGE_IS_PFNZERO) &&
		fp_rlist_add(b, r->start, r->end));
}

/* Pages of ranges in the categories: present or swapped (anyof), and
 * (written) without our write protection, or (cow) not the file's. A
 * never-touched page under our protection carries a marker that reads as
 * swapped: "present" alone leaves those out. out: normalized. */
int rb_scan(int fd, const struct fp_rlist *in, uint64_t anyof, uint64_t must, uint64_t must_not,
		struct fp_rlist *out, fp_error *err)
{
	struct fp_pm_scan_arg m = { 0 };
	m.category_mask = must | must_not;
	m.category_inverted = must_not;
	m.category_anyof_mask = anyof;
	m.return_mask = anyof;
	if (scan(fd, in, &m, NULL, out, NULL, err))
		return -1;
	return fp_rlist_normalize(out) ? fp_fail(err, ENOMEM, "out of memory") : 0;
}

/* The pages written since the tracking's snapshot in the registered
 * ranges (present or swapped, without our write protection) and the
 * pages present in the kept mappings (not the shared zero page), in one
 * walk of the page tables over both: two scans of 1 GiB cost two walks
 * of 262,144 entries while the processes are stopped. Each region comes
 * with its categories, and is sorted into the one list or the other (or
 * both), cut to its ranges afterwards. */
int rb_scan_written_present(int fd, const struct fp_rlist *reg, const struct fp_rlist *keep,
			    struct fp_rlist *written, struct fp_rlist *present, fp_error *err)
{
	struct fp_pm_scan_arg m = { 0 };
	m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	m.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED | FP_PAGE_IS_WRITTEN | FP_PAGE_IS_PFNZERO |
			FP_PAGE_IS_WPALLOWED;
	struct fp_rlist all = { 0 }, w = { 0 }, pr = { 0 };
	int rc = fp_rlist_union(reg, keep, &all) ? fp_fail(err, ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = scan(fd, &all, &m, wp_sort, &w, &pr, err);
	if (!rc && (fp_rlist_normalize(&w) || fp_rlist_normalize(&pr) || fp_rlist_inter(&w, reg, written) ||
		    fp_rlist_inter(&pr, keep, present)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&all);
	fp_rlist_free(&w);
	fp_rlist_free(&pr);
	return rc;
}

int rb_live_unwritten(struct rb_proc *p, const struct fp_rlist *written, const struct fp_rlist *present)
{
	free(p->live_ok.r), free(p->live_ok_ptr);
	p->live_ok = (struct fp_rlist){ 0 };
	p->live_ok_ptr = NULL;
	if (!p->live.n)
		return 0;
	struct fp_rlist not_present = { 0 }, all = { 0 };
	int rc = 0;
	if (present) { /* ~(present) within the copies' span */
		struct fp_range span = { p->live.r[0].start, p->live.r[p->live.n - 1].end };
		struct fp_rlist sp = { &span, 1, 1 };
		rc = fp_rlist_minus(&sp, present, &not_present) || fp_rlist_union(written, &not_present, &all);
	}
	if (!rc)
		rc = fp_pieces_minus(p->live.r, p->live_ptr, p->live.n, present ? &all : written, &p->live_ok.r,
				     &p->live_ok_ptr, &p->live_ok.n);
	p->live_ok.cap = p->live_ok.n;
	fp_rlist_free(&not_present), fp_rlist_free(&all);
	return rc ? -1 : 0;
}

int rb_ahead_written(const struct rb_proc *p, struct fp_rlist *out)
{
	struct fp_rlist aw = { p->tp->ahead_w, p->tp->nahead_w, p->tp->nahead_w }, reg = { p->tp->reg, p->tp->nreg, p->tp->nreg },
			x = { 0 };
	int rc = aw.n && (fp_rlist_inter(&aw, &reg, &x) || fp_rlist_merge(out, &x)) ? -1 : 0;
	fp_rlist_free(&x);
	return rc;
}

int rb_written_now(struct rb_proc *p, bool at_stop, struct fp_rlist *out, fp_error *err)
{
	int fd = fp_pagemap_open(p->pid, err);
	if (fd < 0)
		return -1;
	struct fp_rlist reg = { p->tp->reg, p->tp->nreg, p->tp->nreg };
	/* Exactly "written" asked and returned: the kernel's fast loop, which
	 * reads only each entry's protection bit (p_written 0.41-0.45 ms at 1 GiB here,
	 * against 0.64-0.76 ms with each page's categories worked out as well).
	 * It also reports entries emptied since (MADV_DONTNEED): more to read
	 * ahead, never less. A hint only: the stop's walk decides. */
	struct fp_pm_scan_arg m = { 0 };
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	int rc = scan(fd, &reg, &m, NULL, out, NULL, err);
	/* and all of a tracked range that lost its registration (track_lost.c) */
	struct fp_rlist lost = { 0 };
	if (!rc && fp_track_lost(fd, reg.r, reg.n, &lost.r, &lost.n))
		rc = fp_fail(err, errno, "PAGEMAP_SCAN of %d for mappings that lost their write tracking: %s", (int)p->pid,
			     strerror(errno));
	close(fd);
	lost.cap = lost.n;
	if (!rc && (fp_rlist_normalize(out) || fp_rlist_merge(out, &lost)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&lost);
	if (!rc && at_stop && rb_live_unwritten(p, out, NULL))
		rc = fp_fail(err, ENOMEM, "out of memory");
	/* and the pages the read ahead protected again: written, though the
	 * scan no longer says so (rollback_ahead.c) */
	if (!rc && rb_ahead_written(p, out))
		rc = fp_fail(err, ENOMEM, "out of memory");
	return rc;
}
