/* Compressed page data, decoded on several threads. Each thread has its own
 * reader of the page store and takes whole chunks (each decodes on its own)
 * in turn: it decodes one and writes its pages into the stopped process
 * with process_vm_writev. Decoding is most of the cost, so two cores make
 * it nearly twice as fast. The page index -> address map comes from the
 * pagemap's present entries, in order; the vDSO's pages are skipped (the
 * kernel's own, checked equal). */
#include "restore/rst_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "helper/pt_mem.h"

#define MIN_CHUNKS 8 /* below this one thread is as fast */
#define MAX_THREADS 4
#define IOVS 512

struct run {
	uint64_t first; /* page index of its first page */
	uint64_t vaddr;
	uint64_t n;
	bool skip;      /* the vDSO */
};

struct pw {
	rst_proc *p;
	const struct run *runs;
	size_t nruns, nchunks;
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t mu;
	fp_error err; /* the first failure */
};

static void pw_fail(struct pw *w, const fp_error *e)
{
	pthread_mutex_lock(&w->mu);
	if (!atomic_exchange(&w->failed, true))
		w->err = *e;
	pthread_mutex_unlock(&w->mu);
}

/* The run holding page index `page` (runs are sorted by first). */
static size_t run_of(const struct pw *w, uint64_t page)
{
	size_t lo = 0, hi = w->nruns;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (w->runs[mid].first <= page)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int put_chunk(struct pw *w, const uint8_t *pages, uint64_t first, uint64_t n, struct iovec *loc,
		     struct iovec *rem, fp_error *err)
{
	pid_t pid = w->p->pid;
	size_t ri = run_of(w, first);
	uint64_t page = first, end = first + n;
	while (page < end) {
		size_t nr = 0;
		uint64_t bytes = 0;
		while (page < end && nr < IOVS) {
			if (ri >= w->nruns) { /* data past the last present page: unused */
				page = end;
				break;
			}
			if (page < w->runs[ri].first)
				return fp_fail(err, EIO, "internal: page %llu is in no pagemap entry", (unsigned long long)page);
			const struct run *r = &w->runs[ri];
			uint64_t in = page - r->first, take = r->n - in;
			if (take > end - page)
				take = end - page;
			if (!r->skip) {
				loc[nr].iov_base = (void *)(pages + (page - first) * CR_PAGE_SIZE);
				rem[nr].iov_base = (void *)(uintptr_t)(r->vaddr + in * CR_PAGE_SIZE);
				loc[nr].iov_len = rem[nr].iov_len = (size_t)(take * CR_PAGE_SIZE);
				bytes += take * CR_PAGE_SIZE;
				nr++;
			}
			page += take;
			if (in + take == r->n)
				ri++;
		}
		if (!nr)
			continue;
		ssize_t wr = process_vm_writev(pid, loc, nr, rem, nr, 0);
		if (wr != (ssize_t)bytes) /* a page it will not take (read-only): by /proc/PID/mem */
			for (size_t k = 0; k < nr; k++)
				if (fp_mem_write(pid, (uint64_t)(uintptr_t)rem[k].iov_base, loc[k].iov_base, rem[k].iov_len, err))
					return -1;
	}
	return 0;
}

static void *pw_worker(void *arg)
{
	struct pw *w = arg;
	rst_image *im = w->p->im;
	fp_error e;
	fp_error_clear(&e);
	struct iovec *loc = malloc(IOVS * sizeof(*loc)), *rem = malloc(IOVS * sizeof(*rem));
	pgs_reader *r = loc && rem ? pgs_open(im->dirfd, im->pmh.pages_id, &e) : NULL;
	if (!loc || !rem)
		fp_fail(&e, ENOMEM, "out of memory");
	if (!r)
		pw_fail(w, &e);
	while (r && !atomic_load(&w->failed)) {
		size_t i = atomic_fetch_add(&w->next, 1);
		if (i >= w->nchunks)
			break;
		const void *pages;
		uint64_t first, n;
		if (pgs_chunk(r, i, &pages, &first, &n, &e) || put_chunk(w, pages, first, n, loc, rem, &e))
			pw_fail(w, &e);
	}
	if (r)
		pgs_close(r);
	free(loc);
	free(rem);
	return NULL;
}

int rst_pages_parallel(rst_proc *p, fp_error *err)
{
	rst_image *im = p->im;
	size_t nchunks = pgs_chunk_count(im->pages);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nthreads = cpus > MAX_THREADS ? MAX_THREADS : cpus > 1 ? (size_t)cpus : 1;
	if (nchunks < MIN_CHUNKS || nthreads < 2)
		return 0;
	struct run *runs = calloc(im->npe + 1, sizeof(*runs));
	if (!runs)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t vd_s = 0, vd_e = 0;
	if (im->vdso_vma >= 0)
		vd_s = im->mm.vmas[im->vdso_vma].start, vd_e = im->mm.vmas[im->vdso_vma].end;
	size_t nruns = 0;
	uint64_t page = 0;
	for (size_t i = 0; i < im->npe; i++) {
		const cr_pagemap_entry *e = &im->pe[i];
		if (!(cr_pagemap_flags(e) & CR_PE_PRESENT) || !e->nr_pages)
			continue;
		runs[nruns++] = (struct run){ page, e->vaddr, e->nr_pages, e->vaddr >= vd_s && e->vaddr < vd_e };
		page += e->nr_pages;
	}
	struct pw w = { .p = p, .runs = runs, .nruns = nruns, .nchunks = nchunks };
	atomic_init(&w.next, 0);
	atomic_init(&w.failed, false);
	pthread_mutex_init(&w.mu, NULL);
	fp_error_clear(&w.err);
	pthread_t th[MAX_THREADS];
	size_t started = 0;
	for (size_t t = 1; t < nthreads; t++)
		if (pthread_create(&th[started], NULL, pw_worker, &w) == 0)
			started++;
	pw_worker(&w); /* this thread works too */
	for (size_t t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&w.mu);
	free(runs);
	if (atomic_load(&w.failed)) {
		*err = w.err;
		return -1;
	}
	if (page < im->present_pages)
		return fp_fail(err, EIO, "the pagemap has %llu present pages but says %llu", (unsigned long long)page,
			       (unsigned long long)im->present_pages);
	rst_logf(p->log, 3, "wrote %llu pages from %zu chunks on %zu threads", (unsigned long long)page, nchunks,
		 started + 1);
	return 1;
}
