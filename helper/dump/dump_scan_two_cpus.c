/* PAGEMAP_SCAN on two CPUs (dump_scan_two_cpus.h).
 *
 * The walk is mostly the kernel reading page tables (~0.5 ms a GiB on one
 * CPU for the fast loop that asks for "written" alone, ~1 ms with each
 * page's categories): the larger part of finding an incremental
 * snapshot's written pages, and of a rollback's `diff` during its stop. So
 * the ranges are cut into pieces of at most PIECE bytes, at its multiples,
 * which both CPUs take from one counter (dump_two_cpus.c), each into its
 * own lists, merged afterwards. Both use the one pagemap fd: PAGEMAP_SCAN
 * keeps no position. */
#include "dump/dump_scan_two_cpus.h"
#include "dump/dump_two_cpus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PIECE (32ull << 20)

struct scan_job {
	int fd;
	pthread_t caller;
	const struct fp_pm_scan_arg *m;
	fp_scan_sort_fn sort;
	void *arg;
	struct fp_range *piece;
	struct fp_rlist a[2], b[2]; /* per thread: the caller's [0] */
	int failed;                 /* 1: errno in err_no (ENOTSUP: no PAGEMAP_SCAN); 2: out of memory */
	int err_no;
};

struct sink {
	struct scan_job *j;
	struct fp_rlist *a, *b;
	bool oom;
};

static int sink_region(void *arg, const struct fp_page_region *r)
{
	struct sink *k = arg;
	k->oom = k->j->sort ? k->j->sort(k->j->arg, r, k->a, k->b) != 0 : fp_rlist_add(k->a, r->start, r->end) != 0;
	return k->oom;
}

static void scan_some(void *arg, size_t from, size_t to)
{
	struct scan_job *j = arg;
	unsigned me = pthread_equal(pthread_self(), j->caller) ? 0 : 1;
	enum { VEC = 1024 };
	struct fp_page_region vec[VEC];
	struct sink k = { j, &j->a[me], &j->b[me], false };
	for (size_t i = from; i < to && !__atomic_load_n(&j->failed, __ATOMIC_RELAXED); i++) {
		errno = 0;
		int r = fp_pagemap_scan_regions(j->fd, j->piece[i].start, j->piece[i].end, j->m, vec, VEC, sink_region, &k);
		int zero = 0, e = r < 0 ? errno : ENOTSUP;
		if ((k.oom || r <= 0) && __atomic_compare_exchange_n(&j->failed, &zero, k.oom ? 2 : 1, false,
								     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			j->err_no = e;
	}
}

static struct fp_range *pieces_of(const struct fp_range *reg, size_t nreg, size_t *n)
{
	size_t cap = 0;
	for (size_t i = 0; i < nreg; i++)
		cap += (reg[i].end - reg[i].start) / PIECE + 2;
	struct fp_range *pc = malloc((cap ? cap : 1) * sizeof(*pc));
	*n = 0;
	for (size_t i = 0; pc && i < nreg; i++)
		for (uint64_t s = reg[i].start; s < reg[i].end;) {
			uint64_t e = (s / PIECE + 1) * PIECE;
			if (e > reg[i].end)
				e = reg[i].end;
			pc[(*n)++] = (struct fp_range){ s, e };
			s = e;
		}
	return pc;
}

int fp_scan_two_cpus(int fd, const struct fp_range *reg, size_t nreg, const struct fp_pm_scan_arg *m,
		     fp_scan_sort_fn sort, void *arg, bool one_cpu, struct fp_rlist *a, struct fp_rlist *b,
		     fp_error *err)
{
	struct scan_job j = { .fd = fd, .caller = pthread_self(), .m = m, .sort = sort, .arg = arg };
	size_t n;
	if (!(j.piece = pieces_of(reg, nreg, &n)))
		return fp_fail(err, ENOMEM, "out of memory");
	if (one_cpu)
		scan_some(&j, 0, n);
	else
		dump_two_cpus_by(n, 1, 4, scan_some, &j);
	free(j.piece);
	int rc = 0;
	if (j.failed == 1 && j.err_no == ENOTSUP)
		rc = 1;
	else if (j.failed == 1)
		rc = fp_fail(err, j.err_no, "%s", strerror(j.err_no));
	for (int t = 0; t < 2 && !rc; t++)
		if (j.failed == 2 || fp_rlist_merge(a, &j.a[t]) || (b && fp_rlist_merge(b, &j.b[t])))
			rc = fp_fail(err, ENOMEM, "out of memory");
	for (int t = 0; t < 2; t++)
		fp_rlist_free(&j.a[t]), fp_rlist_free(&j.b[t]);
	return rc;
}

#define PM_SCAN_WP_MATCHING_FLAG 1ull /* linux/fs.h's PM_SCAN_WP_MATCHING */

/* each region into the written pages (a), and those neither present nor
 * swapped (emptied) into b too */
static int written_sort(void *arg, const struct fp_page_region *r, struct fp_rlist *a, struct fp_rlist *b)
{
	(void)arg;
	return fp_rlist_add(a, r->start, r->end) ||
	       (!(r->categories & (FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED)) && fp_rlist_add(b, r->start, r->end));
}

int fp_scan_protect_written(int fd, const struct fp_range *reg, size_t nreg, bool one_cpu, struct fp_rlist *written,
			    struct fp_rlist *gone, fp_error *err)
{
	struct fp_pm_scan_arg m = { 0 };
	m.flags = PM_SCAN_WP_MATCHING_FLAG;
	/* written, and not the shared zero page (never dumped) */
	m.category_inverted = FP_PAGE_IS_PFNZERO;
	m.category_mask = FP_PAGE_IS_WRITTEN | FP_PAGE_IS_PFNZERO;
	m.return_mask = FP_PAGE_IS_WRITTEN | FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	return fp_scan_two_cpus(fd, reg, nreg, &m, written_sort, NULL, one_cpu, written, gone, err);
}
