/* FP_DUMP_FAST_CHECK=1 (tests): an incremental stop that took its tracked
 * pages from the written ones (dump_incr_content.c) also walks them all,
 * and the snapshot fails unless the image restores the same contents.
 *
 * The two lists may differ in presence where the content is zeros: the
 * walk shows a page where a rollback wrote zeros over a page SNAP lacked,
 * or where our protection left a marker in an emptied entry; the parent's
 * list may hold a page (read as zeros) where the process now has none or
 * the shared zero page. So, page by page:
 *
 *   - "written" must be the same in both;
 *   - a page only the walk has is left out of the image (restored as
 *     zeros): it must read as zeros now;
 *   - a page only the fast list has is taken from the parent (PE_PARENT):
 *     the parent's copy must equal what the process holds now.
 *
 * It reads through /proc/PID/mem, which maps the zero page where there
 * is none: a test-only mode, like FP_ROLLBACK_CHECK. */
#include "dump/dump_int.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "images/criu_io.h"
#include "images/pagestore_chain.h"

/* The parent's pages of pid, as one flat list over a chain reader. */
struct parent_pages {
	cr_pagemap_entry *flat;
	size_t nflat;
	pgs_reader *rd;
};

static int parent_open(const char *dir, pid_t pid, struct parent_pages *pp, fp_error *err)
{
	memset(pp, 0, sizeof(*pp));
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return fp_fail(err, errno, "cannot open the parent %s: %s", dir, strerror(errno));
	cr_pagemap_head h;
	cr_pagemap_entry *pe = NULL;
	size_t npe = 0;
	int rc = cr_read_pagemap(d, (uint32_t)pid, &h, &pe, &npe, err) ||
			 pgs_chain_open(d, (uint32_t)pid, h.pages_id, pe, npe, &pp->flat, &pp->nflat, &pp->rd, err)
		 ? -1
		 : 0;
	free(pe);
	close(d);
	return rc;
}

/* The parent's copy of the page at a into buf; 0 read, 1 none there. */
static int parent_page(struct parent_pages *pp, uint64_t a, uint8_t *buf, fp_error *err)
{
	uint64_t idx = 0;
	for (size_t i = 0; i < pp->nflat; i++) {
		uint64_t s = pp->flat[i].vaddr, n = pp->flat[i].nr_pages;
		if (a >= s && a < s + n * CR_PAGE_SIZE)
			return pgs_read(pp->rd, idx + (a - s) / CR_PAGE_SIZE, 1, buf, err) ? -1 : 0;
		idx += n;
	}
	return 1;
}

static bool all_zero(const uint8_t *b)
{
	for (size_t i = 0; i < CR_PAGE_SIZE; i++)
		if (b[i])
			return false;
	return true;
}

/* Each page of l against the rule; the first that breaks it fails. */
static int check_pages(struct dump_ctx *c, pid_t pid, int memfd, const struct fp_rlist *l, bool from_parent,
		       fp_error *err)
{
	struct parent_pages pp = { 0 };
	if (from_parent && l->n && parent_open(c->parent_dir, pid, &pp, err))
		return fp_wrap(err, "FP_DUMP_FAST_CHECK reading the parent's pages");
	uint8_t now[CR_PAGE_SIZE], then[CR_PAGE_SIZE];
	int rc = 0;
	size_t n = 0;
	for (size_t i = 0; i < l->n && !rc; i++)
		for (uint64_t a = l->r[i].start; a < l->r[i].end && !rc; a += CR_PAGE_SIZE, n++) {
			errno = 0;
			if (pread(memfd, now, CR_PAGE_SIZE, (off_t)a) != (ssize_t)CR_PAGE_SIZE) {
				rc = fp_fail(err, errno ? errno : EIO, "FP_DUMP_FAST_CHECK: cannot read page 0x%" PRIx64 " of %d: %s", a,
					     pid, strerror(errno ? errno : EIO));
				break;
			}
			if (!from_parent) {
				if (!all_zero(now))
					rc = fp_fail(err, EIO, "FP_DUMP_FAST_CHECK: page 0x%" PRIx64 " of %d is left out of the "
						 "image (restored as zeros) but holds data", a, pid);
				continue;
			}
			int r = parent_page(&pp, a, then, err);
			if (r < 0)
				rc = fp_wrap(err, "FP_DUMP_FAST_CHECK reading the parent's page 0x%" PRIx64, a);
			else if (r > 0)
				rc = fp_fail(err, EIO, "FP_DUMP_FAST_CHECK: page 0x%" PRIx64 " of %d is left in the parent, "
					 "which has none there", a, pid);
			else if (memcmp(now, then, CR_PAGE_SIZE))
				rc = fp_fail(err, EIO, "FP_DUMP_FAST_CHECK: page 0x%" PRIx64 " of %d is left in the parent, "
					 "whose copy differs from the process's", a, pid);
		}
	if (!rc && l->n)
		dlog(c, "%d: FP_DUMP_FAST_CHECK: %zu page(s) %s: same content", pid, n,
		     from_parent ? "only in the fast list (the parent's copy)" : "only in the walk (zeros)");
	free(pp.flat);
	if (pp.rd)
		pgs_close(pp.rd);
	return rc;
}

int dump_incr_fast_check(struct dump_ctx *c, struct dump_proc *p, int fd, const struct dump_incr_fast *f, fp_error *err)
{
	if (!fp_env_flag("FP_DUMP_FAST_CHECK"))
		return 0;
	struct fp_rlist x = { 0 }, y = { 0 }, d1 = { 0 }, d2 = { 0 }, d3 = { 0 }, d4 = { 0 }, d2pw = { 0 }, in = { 0 },
			fp = { 0 }, fw = { 0 };
	const struct fp_rlist pw0 = { p->pre->pw, p->pre->npw, p->pre->npw };
	/* the mappings whose pages come from f (dump_proc_pagemap); f's
	 * lists may reach past them (ranges unmapped since) */
	int rc = 0;
	for (size_t i = 0; i < p->nvmas && !rc; i++)
		if (p->vmas[i].dump_pages && dump_incr_fast_covers(f, p->vmas[i].start, p->vmas[i].end) &&
		    fp_rlist_add(&in, p->vmas[i].start, p->vmas[i].end))
			rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc && (fp_rlist_normalize(&in) || fp_rlist_inter(&f->pages, &in, &fp) || fp_rlist_inter(&f->written, &in, &fw)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc)
		rc = dump_incr_content_walk(p->pid, fd, &in, &x, &y, err);
	if (!rc && (fp_rlist_minus(&x, &fp, &d1) || fp_rlist_minus(&fp, &x, &d2) || fp_rlist_minus(&y, &fw, &d3) ||
		    fp_rlist_minus(&fw, &y, &d4) || fp_rlist_inter(&d2, &pw0, &d2pw)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc && (d3.n || d4.n))
		rc = fp_fail(err, EIO, "FP_DUMP_FAST_CHECK: the written pages of %d differ from the full walk's: %zu range(s) "
			     "only walked (first 0x%" PRIx64 "), %zu only derived (first 0x%" PRIx64 ")", p->pid, d3.n,
			     d3.n ? d3.r[0].start : 0, d4.n, d4.n ? d4.r[0].start : 0);
	/* a page copied before the stop is dumped from that copy, not the
	 * parent: one without content now would be a wrong page */
	if (!rc && d2pw.n)
		rc = fp_fail(err, EIO, "FP_DUMP_FAST_CHECK: page 0x%" PRIx64 " of %d was copied before the stop and has no "
			     "content now, yet the fast list dumps it", d2pw.r[0].start, p->pid);
	int memfd = -1;
	if (!rc && (d1.n || d2.n)) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
		memfd = open(path, O_RDONLY | O_CLOEXEC);
		if (memfd < 0)
			rc = fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	}
	if (!rc)
		rc = check_pages(c, p->pid, memfd, &d1, false, err) || check_pages(c, p->pid, memfd, &d2, true, err) ? -1 : 0;
	if (memfd >= 0)
		close(memfd);
	if (!rc)
		dlog(c, "%d: FP_DUMP_FAST_CHECK: the pages from the written ones restore what the full walk's would "
			"(%zu run(s) walked, %zu only walked, %zu only in the fast list)", p->pid, x.n, d1.n, d2.n);
	else
		dlog(c, "%s", err->msg);
	fp_rlist_free(&x), fp_rlist_free(&y), fp_rlist_free(&d1), fp_rlist_free(&d2), fp_rlist_free(&d3);
	fp_rlist_free(&d4), fp_rlist_free(&d2pw), fp_rlist_free(&in), fp_rlist_free(&fp), fp_rlist_free(&fw);
	return rc;
}
