/* Rollback in place: the page tables read with PAGEMAP_SCAN
 * (rollback_int.h), for what differs (rollback_diff.c) and for what to
 * read ahead (rollback_read.c). */
#include "session/rollback_int.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"

/* The page tables are walked on two CPUs (dump_two_cpus.c), in pieces of
 * at most SCAN_PIECE bytes cut at its multiples, each CPU into its own
 * lists, merged afterwards: the walk of 1 GiB (262,144 entries) was the
 * larger part of `diff` during the stop (1.9-3.3 ms) and of finding the
 * pages to read ahead (0.9-1.6 ms). Both CPUs use the one pagemap fd
 * (PAGEMAP_SCAN keeps no position). FP_ROLLBACK_SCAN_ONE_CPU=1 walks on
 * one, as before (A/B). Both now ask for "written" alone, which the kernel
 * answers from each entry's protection bit (rollback_pages.c); the walk of
 * every entry's categories is FP_ROLLBACK_FULL_WALK=1's. */
#define SCAN_PIECE (32ull << 20)

static bool one_cpu(void)
{
	return fp_env_flag("FP_ROLLBACK_SCAN_ONE_CPU");
}

static struct fp_range *pieces_of(const struct fp_rlist *in, size_t *n)
{
	size_t cap = 0;
	for (size_t i = 0; i < in->n; i++)
		cap += (in->r[i].end - in->r[i].start) / SCAN_PIECE + 2;
	struct fp_range *pc = malloc((cap ? cap : 1) * sizeof(*pc));
	*n = 0;
	for (size_t i = 0; pc && i < in->n; i++)
		for (uint64_t a = in->r[i].start; a < in->r[i].end;) {
			uint64_t e = (a / SCAN_PIECE + 1) * SCAN_PIECE;
			if (e > in->r[i].end)
				e = in->r[i].end;
			pc[(*n)++] = (struct fp_range){ a, e };
			a = e;
		}
	return pc;
}

struct par_scan {
	int fd;
	pthread_t main;
	const struct fp_range *pc;
	struct fp_pm_scan_arg m;
	bool regions;                   /* wp_add per region, else sink_add per range */
	struct fp_rlist a[2], b[2];     /* per CPU: the lists filled */
	int failed;                     /* 1: errno in err_no; 2: out of memory */
	int err_no;
};

struct scan_sink {
	struct fp_rlist *l;
	bool oom;
};

static int sink_add(void *arg, uint64_t s, uint64_t e)
{
	struct scan_sink *k = arg;
	k->oom = fp_rlist_add(k->l, s, e) != 0;
	return k->oom;
}

struct wp_sink {
	struct fp_rlist *w, *pr;
	bool oom;
};

static int wp_add(void *arg, const struct fp_page_region *r)
{
	struct wp_sink *k = arg;
	/* written, or in a mapping whose registration the kernel dropped
	 * (track_lost.c): its protection bits say nothing. Not the shared
	 * zero page (a read of a page that was never there): it reads as no
	 * page does, and taken as written it had zeros written over it, a
	 * page made for each (e2e/rollback_drop's resident size) */
	bool written = ((r->categories & FP_PAGE_IS_WRITTEN) || !(r->categories & FP_PAGE_IS_WPALLOWED)) &&
		       !(r->categories & FP_PAGE_IS_PFNZERO);
	if (written && fp_rlist_add(k->w, r->start, r->end))
		k->oom = true;
	if ((r->categories & FP_PAGE_IS_PRESENT) && !(r->categories & FP_PAGE_IS_PFNZERO) &&
	    fp_rlist_add(k->pr, r->start, r->end))
		k->oom = true;
	return k->oom;
}

static void scan_some(void *arg, size_t from, size_t to)
{
	struct par_scan *j = arg;
	unsigned me = pthread_equal(pthread_self(), j->main) ? 0 : 1;
	enum { VEC = 1024 };
	struct fp_page_region vec[VEC];
	struct scan_sink k = { &j->a[me], false };
	struct wp_sink wk = { &j->a[me], &j->b[me], false };
	for (size_t i = from; i < to && !__atomic_load_n(&j->failed, __ATOMIC_RELAXED); i++) {
		int r = j->regions ? fp_pagemap_scan_regions(j->fd, j->pc[i].start, j->pc[i].end, &j->m, vec, VEC, wp_add, &wk)
				   : fp_pagemap_scan(j->fd, j->pc[i].start, j->pc[i].end, &j->m, vec, VEC, sink_add, &k);
		int zero = 0, e = errno;
		if ((k.oom || wk.oom || r <= 0) &&
		    __atomic_compare_exchange_n(&j->failed, &zero, k.oom || wk.oom ? 2 : 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			j->err_no = r < 0 ? e : ENOTSUP;
	}
}

/* in walked into j's lists; then a (and b) merged into out_a (out_b). */
static int par_scan(struct par_scan *j, const struct fp_rlist *in, struct fp_rlist *out_a, struct fp_rlist *out_b,
		    fp_error *err)
{
	size_t n;
	struct fp_range *pc = pieces_of(in, &n);
	if (!pc)
		return fp_fail(err, ENOMEM, "out of memory");
	j->pc = pc;
	j->main = pthread_self();
	if (one_cpu())
		scan_some(j, 0, n);
	else
		dump_two_cpus_by(n, 1, 4, scan_some, j);
	free(pc);
	int rc = 0;
	if (j->failed == 2 || (!j->failed && (fp_rlist_merge(out_a, &j->a[0]) || fp_rlist_merge(out_a, &j->a[1]) ||
					      (out_b && (fp_rlist_merge(out_b, &j->b[0]) || fp_rlist_merge(out_b, &j->b[1]))))))
		rc = fp_fail(err, ENOMEM, "out of memory");
	else if (j->failed)
		rc = fp_fail(err, j->err_no, "PAGEMAP_SCAN: %s",
			     j->err_no == ENOTSUP ? "not supported by this kernel" : strerror(j->err_no));
	for (int i = 0; i < 2; i++)
		fp_rlist_free(&j->a[i]), fp_rlist_free(&j->b[i]);
	return rc;
}

/* Pages of ranges in the categories: present or swapped (anyof), and
 * (written) without our write protection, or (cow) not the file's. A
 * never-touched page under our protection carries a marker that reads as
 * swapped: "present" alone leaves those out. out: normalized. */
int rb_scan(int fd, const struct fp_rlist *in, uint64_t anyof, uint64_t must, uint64_t must_not,
		struct fp_rlist *out, fp_error *err)
{
	struct par_scan j = { .fd = fd };
	j.m.category_mask = must | must_not;
	j.m.category_inverted = must_not;
	j.m.category_anyof_mask = anyof;
	j.m.return_mask = anyof;
	if (par_scan(&j, in, out, NULL, err))
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
	struct par_scan j = { .fd = fd, .regions = true };
	j.m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	j.m.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED | FP_PAGE_IS_WRITTEN | FP_PAGE_IS_PFNZERO |
			  FP_PAGE_IS_WPALLOWED;
	struct fp_rlist all = { 0 }, w = { 0 }, pr = { 0 };
	int rc = fp_rlist_union(reg, keep, &all) ? fp_fail(err, ENOMEM, "out of memory") : 0;
	if (!rc)
		rc = par_scan(&j, &all, &w, &pr, err);
	if (!rc && (fp_rlist_normalize(&w) || fp_rlist_normalize(&pr) || fp_rlist_inter(&w, reg, written) ||
		    fp_rlist_inter(&pr, keep, present)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&all);
	fp_rlist_free(&w);
	fp_rlist_free(&pr);
	return rc;
}

int rb_written_now(struct rb_proc *p, struct fp_rlist *out, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	struct fp_rlist reg = { p->tp->reg, p->tp->nreg, p->tp->nreg };
	/* Exactly "written" asked and returned: the kernel's fast loop, which
	 * reads only each entry's protection bit (p_written 0.41-0.45 ms at 1 GiB here,
	 * against 0.64-0.76 ms with each page's categories worked out as well).
	 * It also reports entries emptied since (MADV_DONTNEED): more to read
	 * ahead, never less. A hint only: the stop's walk decides. */
	struct par_scan j = { .fd = fd };
	j.m.category_mask = FP_PAGE_IS_WRITTEN;
	j.m.return_mask = FP_PAGE_IS_WRITTEN;
	int rc = par_scan(&j, &reg, out, NULL, err);
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
	return rc;
}
