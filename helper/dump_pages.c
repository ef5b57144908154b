/* Which pages to dump (pagemap-<pid>.img) and their contents
 * (pages-<id>.img or .fpz). CRIU's rule: anonymous private VMAs (and the
 * vDSO) give every present or swapped page except the shared zero page;
 * file-private VMAs give only the pages that were copied on write. Present
 * pages are found with the PAGEMAP_SCAN ioctl (Linux 6.7+), else by reading
 * /proc/PID/pagemap. */
#include "helper/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helper/pt_mem.h"
#include "images/criu_io.h"
#include "images/hash64.h"
#include "images/pagestore.h"

/* PAGEMAP_SCAN (linux/fs.h of 6.7+; the build headers may be older). */
struct fp_page_region {
	uint64_t start, end, categories;
};
struct fp_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define FP_PAGEMAP_SCAN _IOWR('f', 16, struct fp_pm_scan_arg)
#define FP_PAGE_IS_FILE (1u << 2)
#define FP_PAGE_IS_PRESENT (1u << 3)
#define FP_PAGE_IS_SWAPPED (1u << 4)
#define FP_PAGE_IS_PFNZERO (1u << 5)

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

/* 1: scanned; 0: PAGEMAP_SCAN not available; -1: error. */
static int scan_vma(int fd, const struct dump_vma *v, struct runs *r, struct fp_page_region *vec, fp_error *err)
{
	uint64_t start = v->start;
	while (start < v->end) {
		struct fp_pm_scan_arg a = { 0 };
		a.size = sizeof(a);
		a.start = start;
		a.end = v->end;
		a.vec = (uint64_t)(uintptr_t)vec;
		a.vec_len = SCAN_VEC;
		a.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
		a.category_inverted = FP_PAGE_IS_PFNZERO | (v->file_private ? FP_PAGE_IS_FILE : 0);
		a.category_mask = a.category_inverted;
		a.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
		long n = ioctl(fd, FP_PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == ENOTTY || errno == EINVAL)
				return 0;
			return fp_fail(err, errno, "PAGEMAP_SCAN of 0x%" PRIx64 "-0x%" PRIx64 ": %s", v->start, v->end,
				       strerror(errno));
		}
		for (long i = 0; i < n; i++)
			if (add_run(r, vec[i].start, vec[i].end, err))
				return -1;
		if (n < SCAN_VEC)
			break; /* complete (walk_end is unreliable here, machine-limits §5) */
		uint64_t next = vec[n - 1].end;
		start = a.walk_end > next ? a.walk_end : next;
	}
	return 1;
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

int dump_proc_pagemap(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", p->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	struct fp_page_region *vec = malloc(SCAN_VEC * sizeof(*vec));
	if (!vec) {
		close(fd);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	struct runs r = { 0 };
	static int use_scan = 1;
	int rc = 0;
	for (size_t i = 0; i < p->nvmas && !rc; i++) {
		struct dump_vma *v = &p->vmas[i];
		if (!v->dump_pages)
			continue;
		int s = 0;
		if (use_scan) {
			s = scan_vma(fd, v, &r, vec, err);
			if (s < 0)
				rc = -1;
			else if (s == 0) {
				use_scan = 0;
				dlog(c, "PAGEMAP_SCAN not available; reading /proc/%d/pagemap", p->pid);
			}
		}
		if (!rc && s == 0)
			rc = read_vma(fd, v, &r, err);
	}
	free(vec);
	close(fd);
	if (rc) {
		free(r.pe);
		return -1;
	}
	p->pe = r.pe;
	p->npe = r.n;
	p->npages = r.pages;
	return 0;
}

/* Anonymous memory of pid (smaps_rollup), to pre-fault the copy buffer
 * before the target is stopped. */
uint64_t dump_estimate_pages(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	if (dump_read_proc(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *a = strstr(buf, "\nAnonymous:");
	if (!a)
		return 0;
	return strtoull(a + 11, NULL, 10) / 4;
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
		total += c->procs[i].npages;
	if (dump_pagebuf_prepare(c, total, err))
		return -1;
	uint64_t off = 0;
	fp_mem_range *rg = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		p->pages = c->pagebuf + off;
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

uint64_t dump_pages_hash(uint64_t h, const void *pages, size_t npages)
{
	const uint8_t *b = pages;
	for (size_t i = 0; i < npages; i++)
		h = fp_hash64(b + (size_t)i * CR_PAGE_SIZE, CR_PAGE_SIZE, h);
	return h;
}

struct sink_ctx {
	pgs_writer *w;
	struct dump_proc *p;
};

static int pages_sink(void *ctx, const void *data, size_t len, fp_error *err)
{
	struct sink_ctx *s = ctx;
	size_t np = len / CR_PAGE_SIZE;
	s->p->pages_hash = dump_pages_hash(s->p->pages_hash, data, np);
	return pgs_writer_add(s->w, data, np, err);
}

int dump_write_pages(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	cr_pagemap_head h = { .pages_id = p->pages_id };
	if (cr_write_pagemap(c->dirfd, (uint32_t)p->pid, &h, p->pe, p->npe, err))
		return -1;
	pgs_opts po = { 0 };
	po.compress = c->o->compress == FP_DUMP_NONE ? PGS_COMPRESS_NONE : PGS_COMPRESS_ZSTD;
	po.level = c->o->zstd_level;
	po.do_fsync = false; /* one syncfs before the manifest covers it */
	pgs_writer *w = pgs_writer_open(c->dirfd, p->pages_id, &po, err);
	if (!w)
		return -1;
	p->pages_hash = 0;
	int rc = 0;
	if (p->pages) {
		/* Already copied (leave_running): feed it in 4 MiB pieces. */
		for (uint64_t i = 0; i < p->npages && !rc;) {
			uint64_t n = p->npages - i > 1024 ? 1024 : p->npages - i;
			const uint8_t *d = p->pages + i * CR_PAGE_SIZE;
			p->pages_hash = dump_pages_hash(p->pages_hash, d, n);
			rc = pgs_writer_add(w, d, n, err);
			i += n;
		}
	} else if (p->npe) {
		/* Straight from the stopped target into the store. */
		fp_mem_span *sp = malloc(p->npe * sizeof(*sp));
		fp_mem_reader rd;
		if (!sp)
			rc = fp_fail(err, ENOMEM, "out of memory");
		else if (!(rc = fp_mem_reader_open(&rd, p->pid, 0, err))) {
			for (size_t k = 0; k < p->npe; k++)
				sp[k] = (fp_mem_span){ p->pe[k].vaddr, p->pe[k].nr_pages * CR_PAGE_SIZE };
			struct sink_ctx s = { w, p };
			rc = fp_mem_stream(&rd, sp, p->npe, pages_sink, &s, err);
			fp_mem_reader_close(&rd);
		}
		free(sp);
	}
	if (rc) {
		pgs_writer_abort(w);
		return -1;
	}
	pgs_stats ps;
	if (pgs_writer_close(w, &ps, err))
		return -1;
	c->st->bytes_pages += ps.bytes_in;
	return 0;
}
