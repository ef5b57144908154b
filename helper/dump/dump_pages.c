/* Which pages to dump (pagemap-<pid>.img) and their contents
 * (pages-<id>.img or .fpz). CRIU's rule: anonymous private VMAs (and the
 * vDSO) give every present or swapped page except the shared zero page;
 * file-private VMAs give only the pages that were copied on write. Present
 * pages are found with the PAGEMAP_SCAN ioctl (Linux 6.7+), else by reading
 * /proc/PID/pagemap. */
#include "dump/dump_int.h"
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"
#include "ptrace/pt_mem.h"
#include "images/criu_io.h"
#include "images/hash64.h"
#include "images/pagehash.h"
#include "images/pagestore.h"


#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_FILE (1ull << 61)
#define PM_PFN_MASK ((1ull << 55) - 1)

#define SCAN_VEC 4096

struct runs {
	cr_pagemap_entry *pe;
	size_t n, cap;
	uint64_t pages;
};

static int add_run(struct runs *r, uint64_t start, uint64_t end, fp_error *err)
{
	if (end <= start)
		return 0;
	uint64_t np = (end - start) / CR_PAGE_SIZE;
	if (r->n && r->pe[r->n - 1].vaddr + r->pe[r->n - 1].nr_pages * CR_PAGE_SIZE == start) {
		r->pe[r->n - 1].nr_pages += np; /* adjacent (may span VMAs: CRIU allows it) */
		r->pages += np;
		return 0;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		cr_pagemap_entry *n = realloc(r->pe, r->cap * sizeof(*n));
		if (!n)
			return fp_fail(err, ENOMEM, "out of memory");
		r->pe = n;
	}
	cr_pagemap_entry *e = &r->pe[r->n++];
	memset(e, 0, sizeof(*e));
	e->vaddr = start;
	e->nr_pages = np;
	e->has_flags = true;
	e->flags = CR_PE_PRESENT;
	r->pages += np;
	return 0;
}

struct regions {
	struct { uint64_t start, end, cat; } *r;
	size_t n, cap;
};

static int region_cb(void *arg, const struct fp_page_region *x)
{
	struct regions *g = arg;
	if (g->n && g->r[g->n - 1].end == x->start && g->r[g->n - 1].cat == x->categories) {
		g->r[g->n - 1].end = x->end;
		return 0;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 256;
		void *n = realloc(g->r, cap * sizeof(*g->r));
		if (!n)
			return -1;
		g->r = n;
		g->cap = cap;
	}
	g->r[g->n].start = x->start;
	g->r[g->n].end = x->end;
	g->r[g->n].cat = x->categories;
	g->n++;
	return 0;
}

/* FP_DUMP_ONE_WALK=0: the written pages in a walk of their own. */
static bool one_walk(void)
{
	static _Atomic int w = -1;
	if (w < 0)
		w = !fp_env_off("FP_DUMP_ONE_WALK");
	return w;
}

/* The pages a dump takes in [start, end), as a mapping of the kind
 * file_private would have them, into g. 1: scanned; 0: PAGEMAP_SCAN not
 * available; -1: error. */
static int scan_range(int fd, uint64_t start, uint64_t end, bool file_private, bool written, struct regions *g,
		      struct fp_page_region *vec, fp_error *err)
{
	struct fp_pm_scan_arg m = { 0 };
	m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	m.category_inverted = FP_PAGE_IS_PFNZERO | (file_private ? FP_PAGE_IS_FILE : 0);
	m.category_mask = m.category_inverted;
	/* the write tracking's "written" too: one walk where two were */
	m.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED | (written ? FP_PAGE_IS_WRITTEN : 0);
	g->n = 0;
	int rc = fp_pagemap_scan_regions(fd, start, end, &m, vec, SCAN_VEC, region_cb, g);
	if (rc < 0)
		return fp_fail(err, errno ? errno : ENOMEM, "PAGEMAP_SCAN of 0x%" PRIx64 "-0x%" PRIx64 ": %s", start, end,
			       strerror(errno ? errno : ENOMEM));
	return rc;
}

/* A big run is walked on two CPUs (the stop's second thread, parked
 * already: dump_worker.c): in pieces taken from a counter, so that a
 * thread that gets less CPU takes fewer, each piece's regions apart, then
 * joined in address order. The walk costs ~1.3 ms per GiB of present
 * pages here, most of an incremental snapshot's stop after the copy. */
#define SPLIT_MIN (64ull << 20)
#define SPLIT_PIECES 8

struct split_job {
	int fd;
	uint64_t start, end;
	bool file_private, written;
	struct regions part[SPLIT_PIECES];
	int rc[SPLIT_PIECES];
	int err[SPLIT_PIECES];
	_Atomic unsigned next;
	_Atomic int inflight; /* pieces being walked */
	_Atomic int refs;     /* the poster's, the worker's: the last frees it */
	struct fp_page_region *vec2; /* the worker's */
};

static void split_unref(struct split_job *j)
{
	if (--j->refs == 0)
		free(j);
}

static void split_run(struct split_job *j, struct fp_page_region *vec)
{
	uint64_t span = (j->end - j->start) / SPLIT_PIECES;
	span = (span + (2ull << 20) - 1) & ~((2ull << 20) - 1); /* whole page tables */
	for (;;) {
		j->inflight++; /* before the claim: the poster waits for it */
		unsigned k = j->next++;
		if (k >= SPLIT_PIECES) {
			j->inflight--;
			return;
		}
		uint64_t s = j->start + span * k, e = k == SPLIT_PIECES - 1 ? j->end : s + span;
		if (e > j->end)
			e = j->end;
		if (s >= e) {
			j->rc[k] = 1;
		} else {
			fp_error err = { 0 };
			j->rc[k] = scan_range(j->fd, s, e, j->file_private, j->written, &j->part[k], vec, &err);
			j->err[k] = err.errnum;
		}
		j->inflight--;
	}
}

static void split_worker(void *arg)
{
	struct split_job *j = arg;
	split_run(j, j->vec2);
	split_unref(j);
}

/* scan_range of [start, end), on two CPUs when it is big and the second
 * thread is there. */
static int scan_range_two(int fd, uint64_t start, uint64_t end, bool file_private, bool written, struct regions *g,
			  struct fp_page_region *vec, unsigned *two, fp_error *err)
{
	struct fp_page_region *vec2 = end - start >= SPLIT_MIN ? malloc(SCAN_VEC * sizeof(*vec2)) : NULL;
	struct split_job *j = vec2 ? calloc(1, sizeof(*j)) : NULL;
	if (j) {
		j->fd = fd;
		j->start = start;
		j->end = end;
		j->file_private = file_private;
		j->written = written;
		j->vec2 = vec2;
		j->refs = 2;
	}
	if (!j || !dump_worker_post(split_worker, j)) {
		free(vec2);
		free(j);
		return scan_range(fd, start, end, file_private, written, g, vec, err);
	}
	split_run(j, vec);
	/* Only the pieces it took are waited for: a thread that starts late
	 * (its CPU busy) finds none left and ends on its own, joined after
	 * the resume (dump_worker_end). */
	while (j->inflight)
		__builtin_ia32_pause();
	(*two)++;
	int rc = 1;
	g->n = 0;
	for (int k = 0; k < SPLIT_PIECES; k++) {
		if (rc == 1 && j->rc[k] != 1)
			rc = j->rc[k] < 0 ? fp_fail(err, j->err[k] ? j->err[k] : ENOMEM, "PAGEMAP_SCAN of 0x%" PRIx64 "-0x%" PRIx64
						    ": %s", start, end, strerror(j->err[k] ? j->err[k] : ENOMEM))
					  : 0;
		for (size_t i = 0; i < j->part[k].n && rc == 1; i++) {
			struct fp_page_region x = { j->part[k].r[i].start, j->part[k].r[i].end, j->part[k].r[i].cat };
			if (region_cb(g, &x))
				rc = fp_fail(err, ENOMEM, "out of memory");
		}
		free(j->part[k].r);
	}
	free(vec2);
	split_unref(j);
	return rc;
}

struct wlist {
	struct fp_range *r;
	size_t n, cap;
};

/* Adds g's parts inside [start, end) from *at on (g is sorted, and so are
 * the calls); w (if any) gets those of them that are written. */
static int add_clipped(struct runs *r, const struct regions *g, size_t *at, uint64_t start, uint64_t end,
		       struct wlist *w, fp_error *err)
{
	while (*at < g->n && g->r[*at].end <= start)
		(*at)++;
	for (size_t k = *at; k < g->n && g->r[k].start < end; k++) {
		uint64_t s = g->r[k].start > start ? g->r[k].start : start, e = g->r[k].end < end ? g->r[k].end : end;
		if (add_run(r, s, e, err))
			return -1;
		if (w && (g->r[k].cat & FP_PAGE_IS_WRITTEN) && fp_ranges_push(&w->r, &w->n, &w->cap, s, e))
			return fp_fail(err, ENOMEM, "out of memory");
	}
	return 0;
}

struct fast_sink {
	struct runs *r;
	struct wlist *w;
	fp_error *err;
};

static int fast_page(void *arg, uint64_t s, uint64_t e)
{
	struct fast_sink *k = arg;
	return add_run(k->r, s, e, k->err);
}

static int fast_written(void *arg, uint64_t s, uint64_t e)
{
	struct fast_sink *k = arg;
	return fp_ranges_push(&k->w->r, &k->w->n, &k->w->cap, s, e) ? fp_fail(k->err, ENOMEM, "out of memory") : 0;
}

static uint64_t zero_pfn(void)
{
	static uint64_t pfn = UINT64_MAX;
	if (pfn != UINT64_MAX)
		return pfn;
	void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return pfn = 0;
	volatile char x = *(volatile char *)m; /* read fault: maps the zero page */
	(void)x;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;
	if (fd >= 0) {
		if (pread(fd, &e, 8, (off_t)((uintptr_t)m / 4096 * 8)) != 8)
			e = 0;
		close(fd);
	}
	munmap(m, 4096);
	pfn = (e & PM_PRESENT) ? (e & PM_PFN_MASK) : 0;
	return pfn;
}

static int read_vma(int fd, const struct dump_vma *v, struct runs *r, fp_error *err)
{
	uint64_t zpfn = zero_pfn();
	uint64_t buf[4096];
	uint64_t run = 0;
	bool in = false;
	for (uint64_t a = v->start; a < v->end;) {
		size_t n = (size_t)((v->end - a) / CR_PAGE_SIZE);
		if (n > 4096)
			n = 4096;
		ssize_t got = pread(fd, buf, n * 8, (off_t)(a / CR_PAGE_SIZE * 8));
		if (got <= 0)
			return fp_fail(err, got < 0 ? errno : EIO, "reading pagemap at 0x%" PRIx64 ": %s", a,
				       got < 0 ? strerror(errno) : "short read");
		n = (size_t)got / 8;
		for (size_t i = 0; i < n; i++, a += CR_PAGE_SIZE) {
			uint64_t e = buf[i];
			bool want = (e & (PM_PRESENT | PM_SWAP)) != 0;
			if (want && (e & PM_PRESENT) && zpfn && (e & PM_PFN_MASK) == zpfn)
				want = false;
			if (want && v->file_private && (e & PM_FILE))
				want = false;
			if (want && !in) {
				run = a;
				in = true;
			} else if (!want && in) {
				if (add_run(r, run, a, err))
					return -1;
				in = false;
			}
		}
	}
	if (in && add_run(r, run, v->end, err))
		return -1;
	return 0;
}

const struct dump_span *dump_span_at(const struct dump_proc *p, uint64_t a)
{
	for (size_t i = 0; i < p->nfb; i++)
		if (a >= p->fb[i].start && a < p->fb[i].end)
			return &p->fb[i];
	return NULL;
}

/* Pages come from the frozen copy when there is one: its pagemap shows the
 * target's pages as they were at the clone (present and shared copy-on-write),
 * except for the areas in p->fb, copied from the target itself. Touching
 * mappings are scanned together, once as anonymous and once as file-private
 * memory (at most two system calls for a run of them instead of one per
 * mapping: a process with 60,000 small mappings), and each mapping takes the
 * pages of its kind. */
int dump_proc_pagemap(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	int fd = fp_pagemap_open(p->cow ? p->cow : p->pid, err);
	if (fd < 0)
		return -1;
	struct fp_page_region *vec = malloc(SCAN_VEC * sizeof(*vec));
	if (!vec) {
		close(fd);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	struct runs r = { 0 };
	struct regions g[2] = { { 0 } }; /* anonymous, file-private */
	static _Atomic int use_scan = 1; /* the kernel's, once known */
	/* An incremental snapshot's written pages (found, not re-protected:
	 * dump_incr_final) come from the same walk. */
	struct dump_precopy *pc = c->incr && p->pre && !p->cow && c->o->leave_running && dump_incr_defer() && one_walk()
					  ? p->pre : NULL;
	struct wlist wl = { 0 };
	int rc = 0;
	unsigned two = 0;
	/* the tracked memory's pages from its written ones (dump_incr_content.c) */
	struct dump_incr_fast fast;
	int have_fast = pc && use_scan && dump_incr_fast_on() ? dump_incr_fast(c, p, fd, &fast, err) : 0;
	if (have_fast < 0)
		rc = -1;
	if (have_fast > 0 && dump_incr_fast_check(c, p, fd, &fast, err))
		rc = -1;
	struct fast_sink fs = { &r, &wl, err };
	for (size_t i = 0; i < p->nvmas && !rc;) {
		struct dump_vma *v = &p->vmas[i];
		if (!v->dump_pages) {
			i++;
			continue;
		}
		const struct dump_span *fb = dump_span_at(p, v->start);
		if (fb || !use_scan)
			pc = NULL; /* no written pages from this walk: dump_incr_final scans */
		if (!fb && have_fast > 0 && dump_incr_fast_covers(&fast, v->start, v->end)) {
			rc = dump_incr_fast_each(&fast.pages, v->start, v->end, fast_page, &fs) ||
			     dump_incr_fast_each(&fast.written, v->start, v->end, fast_written, &fs);
			i++;
			continue;
		}
		if (fb) {
			for (size_t k = 0; k < fb->npe && !rc; k++)
				rc = add_run(&r, fb->pe[k].vaddr, fb->pe[k].vaddr + fb->pe[k].nr_pages * CR_PAGE_SIZE, err);
			i++;
			continue;
		}
		if (!use_scan) {
			rc = read_vma(fd, v, &r, err);
			i++;
			continue;
		}
		/* the run of touching mappings from i to j */
		size_t j = i + 1;
		bool kinds[2] = { !v->file_private, v->file_private };
		while (j < p->nvmas && p->vmas[j].dump_pages && p->vmas[j].start == p->vmas[j - 1].end &&
		       !dump_span_at(p, p->vmas[j].start) &&
		       !(have_fast > 0 && dump_incr_fast_covers(&fast, p->vmas[j].start, p->vmas[j].end))) {
			kinds[p->vmas[j].file_private] = true;
			j++;
		}
		int sc = 1;
		for (int k = 0; k < 2 && sc == 1; k++)
			if (kinds[k])
				sc = scan_range_two(fd, v->start, p->vmas[j - 1].end, k, pc != NULL, &g[k], vec, &two, err);
		if (sc < 0) {
			rc = -1;
		} else if (sc == 0) {
			use_scan = 0;
			dlog(c, "PAGEMAP_SCAN not available; reading /proc/%d/pagemap", p->pid);
			continue; /* this run again, from pagemap */
		}
		size_t at[2] = { 0, 0 };
		for (size_t k = i; k < j && !rc; k++) {
			const struct dump_vma *w = &p->vmas[k];
			rc = add_clipped(&r, &g[w->file_private], &at[w->file_private], w->start, w->end, pc ? &wl : NULL, err);
		}
		i = j;
	}
	if (have_fast > 0)
		dump_incr_fast_free(&fast);
	free(g[0].r);
	free(g[1].r);
	free(vec);
	close(fd);
	if (two)
		dlog(c, "%d: %u run(s) of mappings walked on two CPUs", p->pid, two);
	if (rc) {
		free(r.pe);
		free(wl.r);
		return -1;
	}
	if (p->pre)
		p->pre->written_scanned = false;
	if (pc) {
		free(pc->written);
		pc->written = wl.r;
		pc->nwritten = wl.n;
		pc->written_scanned = true;
	} else {
		free(wl.r);
	}
	p->pe = r.pe;
	p->npe = r.n;
	p->npages = r.pages;
	return 0;
}

/* 1 if [start, end) of pid has a present or swapped page, 0 if none, -1 if
 * it cannot tell. A probe (max_pages 1): it stops at the first page. */
int dump_range_has_pages(pid_t pid, uint64_t start, uint64_t end, bool file_private)
{
	int fd = fp_pagemap_open(pid, NULL);
	if (fd < 0)
		return -1;
	struct fp_page_region vec[1];
	struct fp_pm_scan_arg a = { 0 };
	a.size = sizeof(a);
	a.start = start;
	a.end = end;
	a.vec = (uint64_t)(uintptr_t)vec;
	a.vec_len = 1;
	a.max_pages = 1;
	a.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	/* the pages a dump takes: not the zero page, not file pages of a
	 * file-private mapping (only its copied-on-write ones) */
	a.category_inverted = FP_PAGE_IS_PFNZERO | (file_private ? FP_PAGE_IS_FILE : 0);
	a.category_mask = a.category_inverted;
	a.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	long n = ioctl(fd, FP_PAGEMAP_SCAN, &a);
	if (n < 0) {
		/* No PAGEMAP_SCAN: read the entries (slow for big areas, old kernels only). */
		uint64_t buf[512];
		n = 0;
		for (uint64_t x = start; x < end && !n;) {
			size_t k = (size_t)((end - x) / CR_PAGE_SIZE);
			if (k > 512)
				k = 512;
			ssize_t got = pread(fd, buf, k * 8, (off_t)(x / CR_PAGE_SIZE * 8));
			if (got <= 0) {
				n = -1;
				break;
			}
			for (size_t i = 0; i < (size_t)got / 8; i++)
				if ((buf[i] & (PM_PRESENT | PM_SWAP)) && !(file_private && (buf[i] & PM_FILE)) &&
				    !((buf[i] & PM_PRESENT) && zero_pfn() && (buf[i] & PM_PFN_MASK) == zero_pfn()))
					n = 1;
			x += (uint64_t)got / 8 * CR_PAGE_SIZE;
		}
	}
	close(fd);
	return n < 0 ? -1 : n > 0;
}

/* Copies the dump pages of VMA v from the stopped target itself (for an area
 * the frozen copy does not have: MADV_WIPEONFORK, MADV_DONTFORK). */
int dump_copy_vma(struct dump_ctx *c, struct dump_proc *p, const struct dump_vma *v, fp_error *err)
{
	(void)c;
	int fd = fp_pagemap_open(p->pid, err);
	if (fd < 0)
		return -1;
	struct fp_page_region *vec = malloc(SCAN_VEC * sizeof(*vec));
	struct runs r = { 0 };
	int rc = vec ? 0 : fp_fail(err, ENOMEM, "out of memory");
	struct regions g = { 0 };
	if (!rc) {
		int s = scan_range(fd, v->start, v->end, v->file_private, false, &g, vec, err);
		size_t at = 0;
		if (s < 0)
			rc = -1;
		else if (s == 0)
			rc = read_vma(fd, v, &r, err);
		else
			rc = add_clipped(&r, &g, &at, v->start, v->end, NULL, err);
	}
	free(g.r);
	free(vec);
	close(fd);
	struct dump_span sp = { .start = v->start, .end = v->end, .pe = r.pe, .npe = r.n, .npages = r.pages };
	if (!rc && r.pages && !(sp.data = malloc(r.pages * CR_PAGE_SIZE)))
		rc = fp_fail(err, ENOMEM, "out of memory for %" PRIu64 " pages", r.pages);
	uint64_t off = 0;
	for (size_t k = 0; k < r.n && !rc; k++) {
		size_t len = r.pe[k].nr_pages * CR_PAGE_SIZE;
		rc = fp_mem_read(p->pid, r.pe[k].vaddr, sp.data + off, len, err);
		off += len;
	}
	struct dump_span *nfb = rc ? NULL : realloc(p->fb, (p->nfb + 1) * sizeof(*nfb));
	if (!rc && !nfb)
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc) {
		free(r.pe);
		free(sp.data);
		return -1;
	}
	p->fb = nfb;
	p->fb[p->nfb++] = sp;
	return 0;
}

/* Anonymous pages of pid: the kernel's RssAnon counter (smaps_rollup
 * would walk every page table for the same number). */
uint64_t dump_estimate_pages(pid_t pid)
{
	char v[64];
	if (dump_status_field(pid, "RssAnon", v, sizeof(v)))
		return 0;
	return strtoull(v, NULL, 10) / 4;
}

int dump_pagebuf_prepare(struct dump_ctx *c, uint64_t pages, fp_error *err)
{
	size_t len = (size_t)pages * CR_PAGE_SIZE;
	if (len <= c->pagebuf_len)
		return 0;
	/* Reserve generously (address space is cheap), populate what we need:
	 * a destination that faults during the copy runs at 1-2 GB/s instead of
	 * 8-10 (machine-limits.md §1). */
	size_t reserve = len + (len >> 2) + (64u << 20);
	uint8_t *m = c->pagebuf;
	if (!m) {
		m = mmap(NULL, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED)
			return fp_fail(err, errno, "cannot reserve %zu MiB for the page copy: %s", reserve >> 20, strerror(errno));
		madvise(m, reserve, MADV_HUGEPAGE);
		c->pagebuf = m;
		c->pagebuf_len = 0;
		c->pagebuf_res = reserve;
	} else if (len > c->pagebuf_res) {
		/* Grow: rare (the process grew while we prepared); mremap keeps it. */
		void *n = mremap(m, c->pagebuf_res, reserve, MREMAP_MAYMOVE);
		if (n == MAP_FAILED)
			return fp_fail(err, errno, "cannot grow the page copy buffer to %zu MiB: %s", reserve >> 20,
				       strerror(errno));
		c->pagebuf = n;
		c->pagebuf_res = reserve;
	}
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
	if (madvise(c->pagebuf + c->pagebuf_len, len - c->pagebuf_len, MADV_POPULATE_WRITE)) {
		/* Older kernels: touch each page. */
		for (size_t o = c->pagebuf_len; o < len; o += CR_PAGE_SIZE)
			c->pagebuf[o] = 0;
	}
	c->pagebuf_len = len;
	return 0;
}

/* Copies every process's dump pages into c->pagebuf while stopped. */
int dump_copy_pages(struct dump_ctx *c, fp_error *err)
{
	uint64_t total = 0;
	for (size_t i = 0; i < c->nprocs; i++)
		total += c->procs[i].cow || c->procs[i].pre ? 0 : c->procs[i].npages;
	if (dump_pagebuf_prepare(c, total, err))
		return -1;
	uint64_t off = 0;
	fp_mem_range *rg = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		if (p->cow || p->pre)
			continue;
		/* one piece: the pages in pagemap order, back to back */
		if (p->npages) {
			p->segs = malloc(sizeof(*p->segs));
			if (!p->segs) {
				free(rg);
				return fp_fail(err, ENOMEM, "out of memory");
			}
			p->segs[0] = (struct dump_seg){ p->npe ? p->pe[0].vaddr : 0, p->npages, c->pagebuf + off };
			p->nsegs = 1;
		}
		size_t n = 0;
		uint64_t o = off;
		for (size_t k = 0; k < p->npe; k++) {
			/* Pieces of at most 4 MiB keep each iovec cache friendly. */
			uint64_t a = p->pe[k].vaddr, left = p->pe[k].nr_pages * CR_PAGE_SIZE;
			while (left) {
				size_t take = left > (4u << 20) ? (4u << 20) : (size_t)left;
				if (n == cap) {
					cap = cap ? cap * 2 : 1024;
					fp_mem_range *nr = realloc(rg, cap * sizeof(*nr));
					if (!nr) {
						free(rg);
						return fp_fail(err, ENOMEM, "out of memory");
					}
					rg = nr;
				}
				rg[n++] = (fp_mem_range){ a, take, c->pagebuf + o };
				a += take;
				o += take;
				left -= take;
			}
		}
		if (n && fp_mem_read_ranges(p->pid, rg, n, err)) {
			free(rg);
			return fp_wrap(err, "copying the pages of %d", p->pid);
		}
		off = o;
	}
	free(rg);
	return 0;
}
