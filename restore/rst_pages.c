/* Page data written into the stopped process on several threads, each
 * taking whole chunks in turn and writing their pages with
 * process_vm_writev.
 *
 * Compressed stores: each thread has its own reader and decodes a chunk (an
 * independent zstd frame) before writing it.
 * Plain pages-<id>.img: a chunk is 1 MiB of the file, mapped read-only
 * (page cache, no copy of ours) for the write. Here the cost is the target's
 * page faults - each first write of a page allocates it, about 1.5 µs per
 * 4 KiB page on this machine (machine-limits.md §6) - and faults on two
 * cores go nearly twice as fast as one (measured: 1 GiB in 0.4 s instead of
 * 0.7-0.8 s), which is why the target no longer reads its pages itself.
 *
 * The work overlaps the rest of the restore: the threads start (and decode
 * their first chunks) before the stub exists, write once the target's VMAs
 * are mapped (rst_pages_go), and are joined (rst_pages_wait, the calling
 * thread helping) only before anything reads that memory. While they run,
 * the restorer's own thread mostly sleeps in ptrace round trips.
 *
 * The page index -> address map comes from the pagemap's present entries,
 * in order; the vDSO's pages are skipped (the kernel's own, checked equal). */
#include "restore/rst_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ptrace/pt_mem.h"

#define MIN_CHUNKS 2 /* one chunk: one thread is as fast */
#define PLAIN_CHUNK_PAGES 256
#define MAX_THREADS 4
#define IOVS 512

struct run {
	uint64_t first; /* page index of its first page */
	uint64_t vaddr;
	uint64_t n;
	bool skip;      /* the vDSO */
	bool uffd;      /* in a VMA registered with the userfaultfd */
	long vma;       /* index of the VMA holding it, -1 if none */
};

struct rst_pw {
	rst_proc *p;          /* its pid is read only after go */
	rst_image *im;
	struct run *runs;
	size_t nruns, nchunks;
	int plain_fd;         /* the plain pages file, -1 for a compressed store */
	uint64_t total_pages; /* in the plain file */
	uint64_t mapped;      /* present pages in the runs */
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go;              /* the target's VMAs are there (under mu) */
	fp_error err;         /* the first failure */
	pthread_t th[MAX_THREADS];
	size_t started, cpus;
	int uffd;             /* on the target's memory (rst_uffd.c), -1 if none */
	uint64_t (*reg)[2];   /* the ranges registered with it */
	size_t nreg;
	long long t0;
};

static void pw_fail(struct rst_pw *w, const fp_error *e)
{
	pthread_mutex_lock(&w->mu);
	if (!atomic_exchange(&w->failed, true))
		w->err = *e;
	pthread_mutex_unlock(&w->mu);
}

static void wait_go(struct rst_pw *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->go)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/* The run holding page index `page` (runs are sorted by first). */
static size_t run_of(const struct rst_pw *w, uint64_t page)
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

static int put_chunk(struct rst_pw *w, const uint8_t *pages, uint64_t first, uint64_t n, struct iovec *loc,
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
			if (!r->skip && r->uffd) {
				if (rst_uffd_copy(w->uffd, r->vaddr + in * CR_PAGE_SIZE, pages + (page - first) * CR_PAGE_SIZE,
						  take * CR_PAGE_SIZE, err))
					return -1;
			} else if (!r->skip) {
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
	struct rst_pw *w = arg;
	rst_image *im = w->im;
	fp_error e;
	fp_error_clear(&e);
	struct iovec *loc = malloc(IOVS * sizeof(*loc)), *rem = malloc(IOVS * sizeof(*rem));
	pgs_reader *r = loc && rem && w->plain_fd < 0 ? pgs_dup(im->pages, im->dirfd, im->pmh.pages_id, &e) : NULL;
	bool ready = loc && rem && (r || w->plain_fd >= 0);
	if (!loc || !rem)
		fp_fail(&e, ENOMEM, "out of memory");
	if (!ready)
		pw_fail(w, &e);
	while (ready && !atomic_load(&w->failed)) {
		size_t i = atomic_fetch_add(&w->next, 1);
		if (i >= w->nchunks)
			break;
		const void *pages;
		uint64_t first, n;
		void *m = NULL;
		if (r) {
			if (pgs_chunk(r, i, &pages, &first, &n, &e)) {
				pw_fail(w, &e);
				break;
			}
		} else {
			first = (uint64_t)i * PLAIN_CHUNK_PAGES;
			n = w->total_pages - first;
			if (n > PLAIN_CHUNK_PAGES)
				n = PLAIN_CHUNK_PAGES;
			m = mmap(NULL, n * CR_PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_POPULATE, w->plain_fd,
				 (off_t)(first * CR_PAGE_SIZE));
			if (m == MAP_FAILED) {
				fp_fail(&e, errno, "mapping the page data (pages %llu-%llu): %s", (unsigned long long)first,
					(unsigned long long)(first + n), strerror(errno));
				pw_fail(w, &e);
				break;
			}
			pages = m;
		}
		wait_go(w);
		if (!atomic_load(&w->failed) && put_chunk(w, pages, first, n, loc, rem, &e))
			pw_fail(w, &e);
		if (m)
			munmap(m, n * CR_PAGE_SIZE);
	}
	if (r)
		pgs_close(r);
	free(loc);
	free(rem);
	return NULL;
}

static void pw_free(rst_proc *p)
{
	struct rst_pw *w = p->pw;
	for (size_t i = 0; i < w->nreg; i++)
		rst_uffd_unregister(w->uffd, w->reg[i][0], w->reg[i][1] - w->reg[i][0]);
	if (w->uffd >= 0)
		close(w->uffd);
	free(w->reg);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->runs);
	if (w->plain_fd >= 0)
		close(w->plain_fd);
	free(w);
	p->pw = NULL;
}

int rst_pages_start(rst_proc *p, rst_image *im, fp_error *err)
{
	bool plain = !pgs_is_compressed(im->pages);
	uint64_t total = pgs_total_pages(im->pages);
	if (total > im->present_pages)
		total = im->present_pages; /* pages past the pagemap's are unused */
	size_t nchunks = plain ? (size_t)((total + PLAIN_CHUNK_PAGES - 1) / PLAIN_CHUNK_PAGES) : pgs_chunk_count(im->pages);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nthreads = cpus > MAX_THREADS ? MAX_THREADS : cpus > 1 ? (size_t)cpus : 1;
	if (p->pw || nchunks < MIN_CHUNKS || nthreads < 2)
		return 0;
	struct rst_pw *w = calloc(1, sizeof(*w));
	struct run *runs = calloc(im->npe + 1, sizeof(*runs));
	if (!w || !runs) {
		free(w);
		free(runs);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	w->plain_fd = -1;
	w->uffd = -1;
	if (plain) {
		char name[64];
		pgs_plain_name(name, sizeof(name), im->pmh.pages_id);
		w->plain_fd = openat(im->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (w->plain_fd < 0) {
			int e = errno;
			free(w);
			free(runs);
			return fp_fail(err, e, "cannot open the page data %s/%s: %s", im->dir, name, strerror(e));
		}
	}
	uint64_t vd_s = 0, vd_e = 0;
	if (im->vdso_vma >= 0)
		vd_s = im->mm.vmas[im->vdso_vma].start, vd_e = im->mm.vmas[im->vdso_vma].end;
	/* One run per pagemap entry and VMA: an entry may span adjacent VMAs,
	 * and each VMA is written its own way (rst_pages_uffd). */
	size_t nruns = 0, capruns = im->npe + 1, v = 0;
	uint64_t page = 0;
	for (size_t i = 0; i < im->npe; i++) {
		const cr_pagemap_entry *e = &im->pe[i];
		if (!(cr_pagemap_flags(e) & CR_PE_PRESENT) || !e->nr_pages)
			continue;
		uint64_t s = e->vaddr, end = e->vaddr + e->nr_pages * CR_PAGE_SIZE;
		while (s < end) {
			while (v < im->mm.n_vmas && im->mm.vmas[v].end <= s)
				v++;
			bool inside = v < im->mm.n_vmas && im->mm.vmas[v].start <= s;
			uint64_t to = inside && im->mm.vmas[v].end < end ? im->mm.vmas[v].end : end;
			if (nruns == capruns) {
				struct run *nr = realloc(runs, 2 * capruns * sizeof(*runs));
				if (!nr) {
					if (w->plain_fd >= 0)
						close(w->plain_fd);
					free(runs);
					free(w);
					return fp_fail(err, ENOMEM, "out of memory");
				}
				runs = nr;
				capruns *= 2;
			}
			runs[nruns++] = (struct run){ page, s, (to - s) / CR_PAGE_SIZE, s >= vd_s && s < vd_e, false,
						      inside ? (long)v : -1 };
			page += (to - s) / CR_PAGE_SIZE;
			s = to;
		}
	}
	w->p = p;
	w->im = im;
	w->runs = runs;
	w->nruns = nruns;
	w->nchunks = nchunks;
	w->total_pages = total;
	w->mapped = page;
	w->cpus = nthreads;
	w->t0 = rst_now_ns();
	atomic_init(&w->next, 0);
	atomic_init(&w->failed, false);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	fp_error_clear(&w->err);
	p->pw = w;
	/* One per CPU: meanwhile the calling thread mostly sleeps in ptrace
	 * round trips (it helps in rst_pages_wait only if one could not be
	 * started). */
	for (size_t t = 0; t < nthreads; t++)
		if (pthread_create(&w->th[w->started], NULL, pw_worker, w) == 0)
			w->started++;
	return 1;
}

void rst_pages_go(rst_proc *p)
{
	struct rst_pw *w = p->pw;
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->go = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int rst_pages_wait(rst_proc *p, fp_error *err)
{
	struct rst_pw *w = p->pw;
	if (!w)
		return 0;
	rst_pages_go(p);
	if (w->started < w->cpus) /* a CPU without a writer: help */
		pw_worker(w);
	for (size_t t = 0; t < w->started; t++)
		pthread_join(w->th[t], NULL);
	int rc = 0;
	rst_image *im = w->im;
	if (atomic_load(&w->failed)) {
		*err = w->err;
		rc = -1;
	} else if (w->mapped < im->present_pages) {
		rc = fp_fail(err, EIO, "the pagemap has %llu present pages but says %llu", (unsigned long long)w->mapped,
			     (unsigned long long)im->present_pages);
	} else {
		rst_logf(p->log, 3, "wrote %llu pages from %zu chunks on %zu threads in %.2f ms", (unsigned long long)w->mapped,
			 w->nchunks, w->started + (w->started < w->cpus), (rst_now_ns() - w->t0) / 1e6);
	}
	pw_free(p);
	return rc;
}

void rst_pages_abort(rst_proc *p)
{
	struct rst_pw *w = p->pw;
	if (!w)
		return;
	atomic_store(&w->failed, true);
	rst_pages_go(p);
	for (size_t t = 0; t < w->started; t++)
		pthread_join(w->th[t], NULL);
	pw_free(p);
}

static bool thp_mode_always(void)
{
	char buf[128] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, "[always]") != NULL;
}

/* Which pages go by UFFDIO_COPY: those of private anonymous VMAs, each
 * registered whole (runs never cross a VMA boundary, see rst_pages_start).
 * Not where transparent huge pages would be used (THP "always", or a VMA
 * with MADV_HUGEPAGE): there a first write faults in a huge page, which
 * UFFDIO_COPY would not. Not being able to use a userfaultfd is no error:
 * everything goes by process_vm_writev then. */
int rst_pages_uffd(rst_proc *p, fp_error *err)
{
	struct rst_pw *w = p->pw;
	rst_image *im = w ? w->im : NULL;
	if (!w || !im->mm.n_vmas)
		return 0;
	size_t nv = im->mm.n_vmas;
	bool *want = calloc(nv, sizeof(bool)), *reg = calloc(nv, sizeof(bool));
	w->reg = calloc(nv, sizeof(*w->reg));
	if (!want || !reg || !w->reg) {
		free(want);
		free(reg);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	bool any = false, thp_always = thp_mode_always();
	for (size_t i = 0; i < w->nruns && !thp_always; i++) {
		const struct run *r = &w->runs[i];
		if (r->skip || r->vma < 0)
			continue;
		const cr_vma *m = &im->mm.vmas[r->vma];
		/* UFFDIO_COPY maps 4 KiB pages; where faults would have given
		 * huge pages, they still do. */
		if (m->has_madv && (m->madv & (1ULL << MADV_HUGEPAGE)))
			continue;
		if ((m->status & CR_VMA_ANON_PRIVATE) &&
		    !(m->status & (CR_VMA_ANON_SHARED | CR_VMA_FILE_PRIVATE | CR_VMA_FILE_SHARED | CR_VMA_AREA_VDSO |
				   CR_VMA_AREA_VVAR | CR_VMA_AREA_VSYSCALL)))
			want[r->vma] = any = true;
	}
	int fd = -1;
	fp_error e;
	if (any && rst_uffd_open(p, &fd, &e)) {
		rst_logf(p->log, 2, "no userfaultfd for the page data (%s); writing it with process_vm_writev", e.msg);
		any = false;
	}
	for (size_t k = 0; any && k < nv; k++) {
		const cr_vma *m = &im->mm.vmas[k];
		if (!want[k] || rst_uffd_register(fd, m->start, m->end - m->start))
			continue;
		reg[k] = true;
		w->reg[w->nreg][0] = m->start;
		w->reg[w->nreg][1] = m->end;
		w->nreg++;
	}
	size_t by_uffd = 0;
	for (size_t i = 0; i < w->nruns; i++) {
		struct run *r = &w->runs[i];
		r->uffd = !r->skip && r->vma >= 0 && reg[r->vma];
		by_uffd += r->uffd ? r->n : 0;
	}
	w->uffd = fd;
	if (any)
		rst_logf(p->log, 3, "%zu VMAs registered with a userfaultfd: %zu of %llu pages by UFFDIO_COPY", w->nreg, by_uffd,
			 (unsigned long long)w->mapped);
	free(want);
	free(reg);
	return 0;
}
