/* The buffer that an incremental snapshot's stop copies the written pages
 * into, made before the stop when the tracking holds none.
 *
 * Fresh memory costs a fault per page here (tens of us each on this VM,
 * more on a loaded host), so a buffer mapped inside the stop made the
 * first incremental snapshot's copy of 1% of 1 GiB take 16-90 ms where the
 * next ones, reusing the last buffer (fp_track.pool), took 3. Its size
 * comes from a count of the pages written so far (PAGEMAP_SCAN for
 * "written" only, which does not re-protect: ~0.5 ms per GiB, before the
 * stop), with room for what the process writes until the stop; if that
 * is not enough the stop maps a bigger one, as before. */
#include "dump/dump_int.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"

struct count {
	uint64_t pages;
};

static int count_cb(void *arg, uint64_t s, uint64_t e)
{
	((struct count *)arg)->pages += (e - s) / CR_PAGE_SIZE;
	return 0;
}

/* One ioctl per tracked range: a process of thousands of mappings is not
 * counted (its stop maps the buffer if the kept one is too small). */
#define POOL_COUNT_MAX_RANGES 256

static uint64_t written_so_far(const struct dump_precopy *pc)
{
	if (pc->nreg > POOL_COUNT_MAX_RANGES)
		return 0;
	int fd = fp_pagemap_open(pc->pid, NULL);
	if (fd < 0)
		return 0;
	struct fp_page_region vec[512];
	struct fp_pm_scan_arg m = { 0 }; /* no PM_SCAN_WP_MATCHING: only looks */
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	struct count n = { 0 };
	for (size_t i = 0; i < pc->nreg; i++)
		if (fp_pagemap_scan(fd, pc->reg[i].start, pc->reg[i].end, &m, vec, 512, count_cb, &n) <= 0)
			break;
	close(fd);
	return n.pages;
}

void dump_incr_pool_ready(struct dump_ctx *c)
{
	struct fp_track *t = c->o->track;
	int64_t t0 = dump_now_ns();
	uint64_t pages = 0;
	for (size_t i = 0; i < c->npre; i++)
		if (c->pre[i].tracked)
			pages += written_so_far(&c->pre[i]);
	size_t want = (size_t)(pages + pages / 4 + 256) * CR_PAGE_SIZE;
	if (!pages || t->pool_len >= want)
		return;
	if (t->pool)
		munmap(t->pool, t->pool_len);
	t->pool = NULL;
	t->pool_len = 0;
	void *m = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		return; /* the stop maps its own */
	t->pool = m;
	t->pool_len = want;
	dlog(c, "a buffer for the written pages made before the stop: %zu MiB (%llu pages written so far), %.3f ms",
	     want >> 20, (unsigned long long)pages, (double)(dump_now_ns() - t0) / 1e6);
}
