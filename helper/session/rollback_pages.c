/* Rollback in place: which pages to write back (rollback_int.h).
 *
 * A page differs from SNAP when it was written since the tracking's
 * snapshot T, when SNAP and T hold different pages there (the chain in
 * between, or T's own), or when it lies in memory that is not tracked.
 * Written back then: SNAP's page, or zeros where SNAP has none and the
 * page has content now.
 *
 * "Written" comes from PAGEMAP_SCAN's fast loop (with the pages the read
 * ahead protected again, rb_written_now), which asks exactly for
 * written pages and reads only each entry's protection bit (0.4 ms for
 * 1 GiB here). On this kernel it reports, besides the pages written, every
 * entry emptied (MADV_DONTNEED) and every range whose page table the
 * kernel freed (CONFIG_PT_RECLAIM, after MADV_DONTNEED of a whole 2 MiB):
 * what it does not report still carries our protection, so it has the
 * content, and the presence, it had at T. T's pages (`cov`) are the whole
 * page list of T's image, or SNAP's own after a rollback to SNAP (and
 * unknown after the arming that ends a full restore: then it walks); pages
 * with content outside that list hold zeros (those a rollback wrote where
 * SNAP had none, and the markers our protection leaves in emptied
 * entries): so in the three e2e tests where a trial that walked
 * everything at each snapshot's stop and compared found such pages
 * (rollback_drop, snap_incr_race: zeros read; snap_incr_shimlog:
 * markers). Only for the pages it reports
 * that SNAP does not have (and for untracked memory) is presence asked,
 * with the slower walk that works each entry's categories out; that walk
 * over the whole of 1 GiB was ~2 ms of the stop (FP_ROLLBACK_FULL_WALK=1
 * walks it all, as before: A/B). e2e/rollback_drop drops blocks, pages and
 * zero-page reads between SNAP and the rollback. */
#include "session/rollback_int.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"

/* a := a ∪ (x △ y) */
static int add_symdiff(struct fp_rlist *a, const struct fp_rlist *x, const struct fp_rlist *y)
{
	struct fp_rlist d1 = { 0 }, d2 = { 0 };
	int rc = fp_rlist_minus(x, y, &d1) || fp_rlist_minus(y, x, &d2) || fp_rlist_merge(a, &d1) ||
		 fp_rlist_merge(a, &d2);
	fp_rlist_free(&d1);
	fp_rlist_free(&d2);
	return rc ? -1 : 0;
}

/* Ranges of l closer than this are walked as one (a call per range costs
 * about a microsecond; the gap's entries less). */
#define JOIN_GAP (256ull << 10)

static int joined(const struct fp_rlist *l, struct fp_rlist *out)
{
	for (size_t i = 0; i < l->n; i++) {
		if (out->n && l->r[i].start - out->r[out->n - 1].end <= JOIN_GAP) {
			out->r[out->n - 1].end = l->r[i].end;
			continue;
		}
		if (fp_rlist_add(out, l->r[i].start, l->r[i].end))
			return -1;
	}
	return 0;
}

/* The pages of x that have content now: present (not the shared zero
 * page) or swapped. */
static int with_content(int fd, const struct fp_rlist *x, struct fp_rlist *out, fp_error *err)
{
	struct fp_rlist j = { 0 }, all = { 0 };
	int rc = joined(x, &j) ? fp_fail(err, ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = rb_scan(fd, &j, FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED, 0, FP_PAGE_IS_PFNZERO, &all, err);
	if (!rc && fp_rlist_inter(&all, x, out))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&j);
	fp_rlist_free(&all);
	return rc;
}

/* d (what differs) and has (pages with content now, where it matters:
 * those of d that SNAP does not have) from the fast loop. */
static int by_written(struct rb_proc *p, int fd, const struct fp_rlist *reg, const struct fp_rlist *cov,
		      struct fp_rlist *d, struct fp_rlist *has, fp_error *err)
{
	struct fp_rlist w = { 0 }, untracked = { 0 }, asked = { 0 }, x = { 0 }, y = { 0 }, quiet = { 0 };
	int rc = rb_written_now(p, true, &w, err);
	/* d: written (or emptied), SNAP against T, untracked memory */
	if (!rc && (fp_rlist_merge(d, &w) || fp_rlist_merge(d, &p->path_pages) || add_symdiff(d, &p->snap_pages, cov) ||
		    fp_rlist_minus(&p->keep, reg, &untracked) || fp_rlist_merge(d, &untracked)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	/* content now: walked where the protection says nothing (and SNAP
	 * has no page: its own is written there anyway), T's pages elsewhere */
	if (!rc && (fp_rlist_union(&w, &untracked, &asked) || fp_rlist_minus(&asked, &p->snap_pages, &x) ||
		    fp_rlist_inter(&x, &p->keep, &y)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc)
		rc = with_content(fd, &y, has, err);
	if (!rc && (fp_rlist_minus(cov, &asked, &quiet) || fp_rlist_merge(has, &quiet) || fp_rlist_normalize(has)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&w);
	fp_rlist_free(&untracked);
	fp_rlist_free(&asked);
	fp_rlist_free(&x);
	fp_rlist_free(&y);
	fp_rlist_free(&quiet);
	return rc;
}

/* The same from one walk of every entry of reg and keep (before). */
static int by_walk(struct rb_proc *p, int fd, const struct fp_rlist *reg, const struct fp_rlist *cov,
		   struct fp_rlist *d, struct fp_rlist *has, fp_error *err)
{
	struct fp_rlist written = { 0 }, present = { 0 }, untracked = { 0 };
	int rc = rb_scan_written_present(fd, reg, &p->keep, &written, &present, err);
	/* present in one of SNAP and now only, too; and the pages the read
	 * ahead protected again (differ, though neither list has them) */
	if (!rc && (rb_live_unwritten(p, &written, &present) || fp_rlist_merge(d, &written) || rb_ahead_written(p, d) ||
		    fp_rlist_merge(d, &p->path_pages) ||
		    add_symdiff(d, &p->snap_pages, cov) || add_symdiff(d, &p->snap_pages, &present) ||
		    fp_rlist_minus(&p->keep, reg, &untracked) || fp_rlist_merge(d, &untracked) ||
		    fp_rlist_union(&present, &written, has)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&written);
	fp_rlist_free(&present);
	fp_rlist_free(&untracked);
	return rc;
}

/* out = d ∩ (SNAP's pages ∪ has) ∩ the mappings that stay: what is written
 * back, SNAP's page or zeros */
static int to_write(const struct rb_proc *p, const struct fp_rlist *d, const struct fp_rlist *has,
		    struct fp_rlist *out)
{
	struct fp_rlist sp = { 0 }, x = { 0 };
	int rc = fp_rlist_union(&p->snap_pages, has, &sp) || fp_rlist_inter(d, &sp, &x) || fp_rlist_inter(&x, &p->keep, out);
	fp_rlist_free(&sp);
	fp_rlist_free(&x);
	return rc ? -1 : 0;
}

/* FP_ROLLBACK_CHECK=1 (tests): the full walk's answer too; every page
 * where the two differ (one writes it back, the other not) must hold
 * SNAP's content already (or zeros where SNAP has none), read now through
 * /proc/PID/mem, or the rollback fails here (before anything changed):
 * then the two are not the same rollback. */
static int check_with_walk(struct rb_proc *p, int fd, const struct fp_rlist *reg, const struct fp_rlist *cov,
			   fp_error *err)
{
	struct fp_rlist d = { 0 }, has = { 0 }, wr = { 0 }, a = { 0 }, b = { 0 };
	int rc = by_walk(p, fd, reg, cov, &d, &has, err);
	if (!rc && (to_write(p, &d, &has, &wr) || fp_rlist_minus(&wr, &p->wr, &a) || fp_rlist_minus(&p->wr, &wr, &b) ||
		    fp_rlist_merge(&a, &b)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)p->pid);
	int mem = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (!rc && mem < 0)
		rc = fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	uint8_t live[CR_PAGE_SIZE], snap[CR_PAGE_SIZE];
	for (size_t i = 0; i < a.n && !rc; i++)
		for (uint64_t at = a.r[i].start; at < a.r[i].end && !rc; at += CR_PAGE_SIZE) {
			if (pread(mem, live, CR_PAGE_SIZE, (off_t)at) != CR_PAGE_SIZE)
				rc = fp_fail(err, errno, "reading page 0x%llx of %d: %s", (unsigned long long)at, (int)p->pid,
					     strerror(errno));
			else if (rb_snap_read(p, at, CR_PAGE_SIZE, snap, err))
				rc = -1;
			else if (memcmp(live, snap, CR_PAGE_SIZE))
				rc = fp_fail(err, EIO, "FP_ROLLBACK_CHECK: page 0x%llx of %d is written back by one of the fast "
					      "comparison and the full walk only, and it is not SNAP's now",
					     (unsigned long long)at, (int)p->pid);
		}
	if (mem >= 0)
		close(mem);
	fp_rlist_free(&d), fp_rlist_free(&has), fp_rlist_free(&wr), fp_rlist_free(&a), fp_rlist_free(&b);
	return rc ? -1 : 0;
}

int rb_diff_pages(struct rb_proc *p, const struct fp_rlist *fpriv, char *why, size_t len, fp_error *err)
{
	int fd = fp_pagemap_open(p->pid, err);
	if (fd < 0)
		return -1;
	struct fp_rlist reg = { p->tp->reg, p->tp->nreg, p->tp->nreg }, cov = { p->tp->cov, p->tp->ncov, p->tp->ncov };
	struct fp_rlist d = { 0 }, has = { 0 }, cow = { 0 }, x = { 0 }, y = { 0 };
	int rc = 1;
	const uint64_t ps = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	/* T's page list unknown (the arming after a full restore: the
	 * processes ran before it): only the walk tells which pages have
	 * content (e2e/rollback_after_full) */
	bool walk = fp_env_flag("FP_ROLLBACK_FULL_WALK") || !p->tp->cov_known;
	if ((walk ? by_walk : by_written)(p, fd, &reg, &cov, &d, &has, err) ||
	    rb_scan(fd, fpriv, ps, 0, FP_PAGE_IS_FILE, &cow, err))
		rc = -1;
	/* written back: SNAP's pages, and zeros where SNAP has none but a
	 * page is there now */
	if (rc == 1 && to_write(p, &d, &has, &p->wr))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc == 1 && !walk && fp_env_flag("FP_ROLLBACK_CHECK") && check_with_walk(p, fd, &reg, &cov, err))
		rc = -1;
	close(fd);
	/* private file mappings: SNAP's copied-on-write pages; a page copied
	 * since would need the file's bytes back */
	fp_rlist_free(&x);
	if (rc == 1 && (fp_rlist_minus(&cow, &p->snap_pages, &y)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc == 1 && y.n)
		rc = NOT("process %d wrote to a private file mapping at 0x%llx since SNAP", (int)p->pid,
			 (unsigned long long)y.r[0].start);
	if (rc == 1 && (fp_rlist_inter(&p->snap_pages, fpriv, &x) || fp_rlist_merge(&p->wr, &x)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&x);
	fp_rlist_free(&y);
	fp_rlist_free(&d);
	fp_rlist_free(&has);
	fp_rlist_free(&cow);
	/* the new mappings: only the pages SNAP has there */
	struct fp_rlist wn = { 0 };
	if (rc == 1 && fp_rlist_inter(&p->wr_new, &p->snap_pages, &wn))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&p->wr_new);
	p->wr_new = wn;
	return rc;
}
