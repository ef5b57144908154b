/* Rollback in place: the page tables read with PAGEMAP_SCAN
 * (rollback_int.h), for what differs (rollback_diff.c) and for what to
 * read ahead (rollback_read.c). */
#include "session/rollback_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"

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

/* Pages of ranges in the categories: present or swapped (anyof), and
 * (written) without our write protection, or (cow) not the file's. A
 * never-touched page under our protection carries a marker that reads as
 * swapped: "present" alone leaves those out. */
int rb_scan(int fd, const struct fp_rlist *in, uint64_t anyof, uint64_t must, uint64_t must_not,
		struct fp_rlist *out, fp_error *err)
{
	enum { VEC = 1024 };
	struct fp_page_region vec[VEC];
	struct fp_pm_scan_arg m = { 0 };
	m.category_mask = must | must_not;
	m.category_inverted = must_not;
	m.category_anyof_mask = anyof;
	m.return_mask = anyof;
	struct scan_sink k = { out, false };
	for (size_t i = 0; i < in->n; i++) {
		int r = fp_pagemap_scan(fd, in->r[i].start, in->r[i].end, &m, vec, VEC, sink_add, &k);
		if (k.oom)
			return fp_fail(err, ENOMEM, "out of memory");
		if (r <= 0)
			return fp_fail(err, r ? errno : ENOTSUP, "PAGEMAP_SCAN: %s",
				       r ? strerror(errno) : "not supported by this kernel");
	}
	return 0;
}

/* The pages written since the tracking's snapshot in the registered
 * ranges (present or swapped, without our write protection) and the
 * pages present in the kept mappings (not the shared zero page), in one
 * walk of the page tables over both: two scans of 1 GiB cost two walks
 * of 262,144 entries while the processes are stopped. Each region comes
 * with its categories, and is sorted into the one list or the other (or
 * both), cut to its ranges afterwards. */
struct wp_sink {
	struct fp_rlist *w, *pr;
	bool oom;
};

static int wp_add(void *arg, const struct fp_page_region *r)
{
	struct wp_sink *k = arg;
	if ((r->categories & FP_PAGE_IS_WRITTEN) && fp_rlist_add(k->w, r->start, r->end))
		k->oom = true;
	if ((r->categories & FP_PAGE_IS_PRESENT) && !(r->categories & FP_PAGE_IS_PFNZERO) &&
	    fp_rlist_add(k->pr, r->start, r->end))
		k->oom = true;
	return k->oom;
}

int rb_scan_written_present(int fd, const struct fp_rlist *reg, const struct fp_rlist *keep,
			    struct fp_rlist *written, struct fp_rlist *present, fp_error *err)
{
	enum { VEC = 1024 };
	struct fp_page_region vec[VEC];
	struct fp_pm_scan_arg m = { 0 };
	m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	m.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED | FP_PAGE_IS_WRITTEN | FP_PAGE_IS_PFNZERO;
	struct fp_rlist all = { 0 }, w = { 0 }, pr = { 0 };
	struct wp_sink k = { &w, &pr, false };
	int rc = fp_rlist_union(reg, keep, &all) ? fp_fail(err, ENOMEM, "out of memory") : 0;
	for (size_t i = 0; i < all.n && !rc; i++) {
		int r = fp_pagemap_scan_regions(fd, all.r[i].start, all.r[i].end, &m, vec, VEC, wp_add, &k);
		if (k.oom)
			rc = fp_fail(err, ENOMEM, "out of memory");
		else if (r <= 0)
			rc = fp_fail(err, r ? errno : ENOTSUP, "PAGEMAP_SCAN: %s",
				     r ? strerror(errno) : "not supported by this kernel");
	}
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
	int rc = rb_scan(fd, &reg, FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED, FP_PAGE_IS_WRITTEN, 0, out, err);
	close(fd);
	if (!rc && fp_rlist_normalize(out))
		rc = fp_fail(err, ENOMEM, "out of memory");
	return rc;
}
