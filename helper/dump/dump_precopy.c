/* Short pauses for big processes: copy the pages while the process runs,
 * under write tracking, then stop it only to copy what it wrote meanwhile.
 *
 * A frozen fork copy (dump_cow.c) costs its page-table copy inside the
 * pause: ~25 ms per GiB here, whatever the process does. This method moves
 * the bulk copy out of the pause:
 *
 *   1. A short stop (injected calls only): the process creates a userfaultfd
 *      (the dumper cannot make one for another process's memory); the dumper
 *      takes it with pidfd_getfd and the process closes its own fd again in
 *      the same injected sequence (dinj_call_closing: also if the dumper
 *      dies in between). The process runs on.
 *   2. While it runs: every anonymous private mapping is registered for
 *      asynchronous write protection (UFFD_FEATURE_WP_ASYNC, Linux 6.7+)
 *      and protected;
 *      the kernel then clears a page's protection at its first write, at the
 *      cost of one minor fault (~0.7 us, like the first write after a fork
 *      copy is gone), and nothing waits for the dumper. Then every present
 *      page is copied into the dumper.
 *   3. The real stop (the capture): PAGEMAP_SCAN lists the pages whose
 *      protection is gone ("written"); only those, and pages that were not
 *      copied before, are read now. Every other dumped page is still
 *      protected, so it has not been written since it was protected, and
 *      the copy made after that is its content.
 *
 * Why this is exact and not a heuristic: a page counts as unchanged only if
 * the kernel still shows our protection bit on it at the stop. Any write
 * (by the process, the kernel on its behalf, ptrace or process_vm_writev)
 * goes through the fault that clears the bit; a page mapped anew (munmap +
 * mmap, MADV_DONTNEED + refault, mremap, a new mapping, exec) has no bit
 * (mremap drops it also when it moves whole page tables: checked on 6.18).
 * Such pages are read during the stop, like written ones, and so are the
 * copied-on-write pages of file mappings, which are not tracked. The
 * kernel keeps the bit across swap-out, migration and THP splits.
 *
 * What the process can notice, only while a dump runs: its first write to
 * each page takes a minor fault; registering its own userfaultfd on a
 * mapping fails with EBUSY (mappings it has already registered are simply
 * not pre-copied). Write protection is dropped when the dump ends (in
 * pieces, so the mmap lock is never held long), or by the kernel when the
 * dumper dies (the last reference to the userfaultfd is the dumper's).
 *
 * The pre-copy needs room for every page (dump_precopy_copy.c: page cache of an
 * unlinked file beside the image, not the dumper's anonymous memory) and
 * costs a second short stop; for small processes a
 * fork copy is as quick, so FP_DUMP_SNAP_AUTO uses it only from
 * FP_PRECOPY_MIN_BYTES of anonymous memory on. */
#include "dump/dump_int.h"
#include "dump/dump_precopy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"
#include "ptrace/pt_mem.h"
#include "images/criu_io.h"

/* Linux 6.7+ uapi, newer than the build headers may be. */
#define FP_UFFD_FEATURE_WP_ASYNC (1ull << 15)
#define FP_UFFD_USER_MODE_ONLY 1

/* Unregistering a whole GiB holds the process's mmap lock for ~25 ms while
 * it walks the page tables; in 2 MiB steps each hold is ~60 us. */
#define UNREG_STEP (2u << 20)

static double ms_since(int64_t t0)
{
	return (double)(dump_now_ns() - t0) / 1e6;
}

/* ---- 1. the userfaultfd, made inside the process ------------------------ */

struct take_arg {
	pid_t pid;
	int pidfd;
	int fd;
};

static int take_fd(void *arg, int64_t ret, fp_error *err)
{
	struct take_arg *a = arg;
	if (ret < 0)
		return fp_fail(err, (int)-ret, "userfaultfd() in %d failed: %s", a->pid, strerror((int)-ret));
	a->fd = (int)syscall(SYS_pidfd_getfd, a->pidfd, (int)ret, 0);
	if (a->fd < 0)
		return fp_fail(err, errno, "cannot take the userfaultfd of %d (pidfd_getfd): %s", a->pid, strerror(errno));
	return 0;
}

static int make_uffd(struct dump_ctx *c, struct dump_proc *p, int *fd, fp_error *err)
{
	struct take_arg a = { .pid = p->pid, .pidfd = -1, .fd = -1 };
	a.pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (a.pidfd < 0)
		return fp_fail(err, errno, "pidfd_open(%d): %s", p->pid, strerror(errno));
	/* User-mode-only needs no privilege; asynchronous protection never
	 * delivers a fault to us, so it changes nothing else. */
	uint64_t args[6] = { O_CLOEXEC | O_NONBLOCK | FP_UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0 };
	int rc = dinj_init(c, p, err);
	if (!rc)
		rc = dinj_begin(p, p->pid, err);
	if (!rc) {
		rc = dinj_call_closing(p, SYS_userfaultfd, args, take_fd, &a, err);
		if (dinj_end(p, rc ? NULL : err))
			rc = -1;
	}
	close(a.pidfd);
	if (rc) {
		if (a.fd >= 0)
			close(a.fd);
		return -1;
	}
	*fd = a.fd;
	return 0;
}

/* ---- 2. protect and copy while the process runs ------------------------- */

/* Anonymous private mappings only. In a file mapping, zapping a protected
 * page (MADV_DONTNEED) leaves a marker that PAGEMAP_SCAN shows as a swapped,
 * unwritten page, though the page is the file's again; their copied-on-write
 * pages (data sections: a few pages each) are read during the stop. */
bool dump_precopy_protectable(const struct dump_vma *v)
{
	return v->perms[3] == 'p' && v->ino == 0 && strcmp(v->path, "[vsyscall]") && strncmp(v->path, "[vvar", 5) &&
	       strcmp(v->path, "[uprobes]") && strcmp(v->path, "[vdso]");
}

int dump_precopy_protect(struct dump_ctx *c, struct dump_precopy *pc, struct dump_vma **regv, size_t *nregv, fp_error *err)
{
	/* Not WP_UNPOPULATED: it would give every never-touched page a marker
	 * (page tables for whole sparse reservations), and PAGEMAP_SCAN
	 * reports markers as swapped pages. A page first touched after the
	 * protection has no bit, so it counts as written: exact without it. */
	struct uffdio_api api = { .api = UFFD_API, .features = FP_UFFD_FEATURE_WP_ASYNC };
	if (ioctl(pc->uffd, UFFDIO_API, &api))
		return fp_fail(err, errno,
			       "userfaultfd asynchronous write protection is not available (%s; it needs Linux 6.7+)",
			       strerror(errno));
	struct dump_vma *v = NULL;
	size_t n = 0;
	if (dump_vmas_read(pc->pid, false, &v, &n, err))
		return -1;
	pc->reg = calloc(n ? n : 1, sizeof(*pc->reg));
	*regv = calloc(n ? n : 1, sizeof(**regv));
	if (!pc->reg || !*regv) {
		free(v);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	size_t skipped = 0;
	for (size_t i = 0; i < n; i++) {
		if (!dump_precopy_protectable(&v[i]))
			continue;
		struct uffdio_register r = { .range = { v[i].start, v[i].end - v[i].start }, .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(pc->uffd, UFFDIO_REGISTER, &r)) {
			/* e.g. EBUSY: the process's own userfaultfd has it. Its
			 * pages are read during the stop. */
			dlogv(c, "%d: %" PRIx64 "-%" PRIx64 " %s not write-tracked: %s", pc->pid, v[i].start, v[i].end, v[i].path,
			      strerror(errno));
			skipped++;
			continue;
		}
		pc->reg[pc->nreg].start = v[i].start;
		pc->reg[pc->nreg].end = v[i].end;
		pc->nreg++;
		(*regv)[*nregv] = v[i];
		(*regv)[*nregv].dump_pages = true;
		(*nregv)++;
	}
	free(v);
	int64_t t0 = dump_now_ns();
	for (size_t i = 0; i < pc->nreg; i++) {
		struct uffdio_writeprotect w = { .range = { pc->reg[i].start, pc->reg[i].end - pc->reg[i].start },
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		/* A failure (the mapping changed meanwhile) leaves pages
		 * unprotected: they count as written at the stop. */
		if (ioctl(pc->uffd, UFFDIO_WRITEPROTECT, &w))
			dlogv(c, "%d: protecting %" PRIx64 "-%" PRIx64 ": %s", pc->pid, pc->reg[i].start, pc->reg[i].end,
			      strerror(errno));
	}
	dlog(c, "%d: %zu mappings write-tracked (%zu not) and protected in %.3f ms", pc->pid, pc->nreg, skipped,
	     ms_since(t0));
	return 0;
}

static void pre_free(struct dump_precopy *pc)
{
	dump_incr_store_drop(pc);
	dump_precopy_store_close(pc);
	if (pc->uffd >= 0)
		close(pc->uffd);
	pc->uffd = -1;
	if (pc->buf)
		munmap(pc->buf, pc->buf_len);
	pc->buf = NULL;
	if (pc->dirty)
		munmap(pc->dirty, pc->dirty_len);
	pc->dirty = NULL;
	free(pc->piece);
	pc->piece = NULL;
	free(pc->reg);
	pc->reg = NULL;
	free(pc->fv);
	pc->fv = NULL;
	free(pc->fv_now);
	pc->fv_now = NULL;
	pc->nfv_now = 0;
	free(pc->cov);
	pc->cov = NULL;
	pc->ncov = 0;
	free(pc->written);
	pc->written = NULL;
	pc->nwritten = 0;
	free(pc->rd);
	pc->rd = NULL;
	pc->nrd = 0;
	free(pc->pw);
	free(pc->pre_rd);
	free(pc->untracked);
	free(pc->plan);
	free(pc->stop_full);
	free(pc->plan_pw);
	pc->plan_pw = NULL;
	pc->untracked = pc->plan = pc->stop_full = NULL;
	pc->nuntracked = pc->nplan = pc->nstop_full = 0;
	pc->pw = NULL;
	free(pc->pw_gone);
	pc->pw_gone = NULL;
	pc->npw_gone = 0;
	free(pc->apw);
	free(pc->apw_gone);
	pc->apw = pc->apw_gone = NULL;
	pc->napw = pc->napw_gone = 0;
	free(pc->fresh);
	pc->fresh = NULL;
	pc->nfresh = pc->capfresh = 0;
	pc->pre_rd = NULL;
	pc->npw = pc->npre_rd = pc->pre_pages = 0;
	pc->nfv = 0;
	pc->nreg = pc->npiece = 0;
}

static bool has_pre(const struct dump_ctx *c, pid_t pid)
{
	for (size_t k = 0; k < c->npre; k++)
		if (c->pre[k].pid == pid)
			return true;
	return false;
}

int dump_precopy_take(struct dump_ctx *c, fp_error *err)
{
	struct fp_dump_stats scratch = { 0 };
	struct dump_ctx s = { 0 };
	s.o = c->o;
	s.log = c->log;
	s.st = &scratch;
	s.t0 = c->t0;
	s.dirfd = -1;
	int rc = dump_tree_seize(&s, err);
	cpu_set_t saved;
	bool pinned = false;
	if (!rc)
		dump_pin_near(c, c->o->pid, &saved, &pinned);
	if (!rc) {
		struct dump_precopy *np = realloc(c->pre, (c->npre + s.nprocs + 1) * sizeof(*c->pre));
		if (!np)
			rc = fp_fail(err, ENOMEM, "out of memory");
		else
			c->pre = np;
	}
	size_t taken = 0;
	for (size_t i = 0; i < s.nprocs && !rc; i++) {
		if (has_pre(c, s.procs[i].pid))
			continue;
		struct dump_precopy *pc = &c->pre[c->npre];
		memset(pc, 0, sizeof(*pc));
		pc->pid = s.procs[i].pid;
		pc->uffd = -1;
		if (make_uffd(&s, &s.procs[i], &pc->uffd, err))
			rc = fp_wrap(err, "preparing the write tracking of %d", pc->pid);
		else
			c->npre++, taken++;
	}
	dump_tree_release(&s, false);
	if (pinned)
		sched_setaffinity(0, sizeof(saved), &saved);
	if (s.stop_ns)
		c->st->prestop_ms += (double)(s.resume_ns - s.stop_ns) / 1e6;
	dump_ctx_free(&s);
	dlog(c, "userfaultfd taken from %zu process(es), stopped %.3f ms", taken, c->st->prestop_ms);
	return rc;
}

int dump_precopy_run(struct dump_ctx *c, fp_error *err)
{
	int rc = dump_precopy_take(c, err);
	for (size_t i = 0; i < c->npre && !rc; i++) {
		struct dump_precopy *pc = &c->pre[i];
		struct dump_vma *regv = NULL;
		size_t nregv = 0;
		if (c->o->track)
			dump_incr_shim_mark(c, pc);
		rc = dump_precopy_protect(c, pc, &regv, &nregv, err);
		if (!rc)
			rc = dump_precopy_copy(c, pc, regv, nregv, err);
		free(regv);
		if (rc)
			fp_wrap(err, "pre-copying %d", pc->pid);
	}
	/* Last, closest to the stop: the flags the stop will take from here. */
	for (size_t i = 0; i < c->npre && !rc; i++) {
		int64_t t0 = dump_now_ns();
		rc = dump_vmas_read(c->pre[i].pid, true, &c->pre[i].fv, &c->pre[i].nfv, err);
		dlogv(c, "%d: smaps read in %.3f ms", c->pre[i].pid, ms_since(t0));
	}
	if (rc)
		dump_precopy_end(c);
	return rc;
}

/* The piece holding page a, copied or not, or NULL. */
static const struct dump_pre_piece *place_at(const struct dump_precopy *pc, uint64_t a)
{
	size_t lo = 0, hi = pc->npiece;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct dump_pre_piece *q = &pc->piece[mid];
		if (a < q->vaddr)
			hi = mid;
		else if (a >= q->vaddr + q->npages * CR_PAGE_SIZE)
			lo = mid + 1;
		else
			return q;
	}
	return NULL;
}

/* The pre-copied piece holding page a, or NULL. */
static const struct dump_pre_piece *piece_at(const struct dump_precopy *pc, uint64_t a)
{
	const struct dump_pre_piece *q = place_at(pc, a);
	return q && q->ok ? q : NULL;
}

struct ranges {
	struct { uint64_t start, end; } *r;
	size_t n, cap;
};

static int ranges_add(struct ranges *w, uint64_t s, uint64_t e, fp_error *err)
{
	if (w->n && w->r[w->n - 1].end == s) {
		w->r[w->n - 1].end = e;
		return 0;
	}
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		void *n = realloc(w->r, w->cap * sizeof(*w->r));
		if (!n)
			return fp_fail(err, ENOMEM, "out of memory");
		w->r = n;
	}
	w->r[w->n].start = s;
	w->r[w->n].end = e;
	w->n++;
	return 0;
}

struct written_sink {
	struct ranges *w;
	fp_error *err;
};

static int add_written(void *arg, uint64_t start, uint64_t end)
{
	struct written_sink *s = arg;
	return ranges_add(s->w, start, end, s->err);
}

/* Pages of p's dumped mappings without our protection: written since. */
static int written_pages(struct dump_proc *p, struct ranges *w, fp_error *err)
{
	int fd = fp_pagemap_open(p->pid, err);
	if (fd < 0)
		return -1;
	enum { VEC = 1024 };
	struct fp_page_region *vec = malloc(VEC * sizeof(*vec));
	int rc = vec ? 0 : fp_fail(err, ENOMEM, "out of memory");
	struct fp_pm_scan_arg m = { 0 };
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	fp_error e = { 0 };
	struct written_sink s = { w, &e };
	for (size_t i = 0; i < p->nvmas && !rc; i++) {
		const struct dump_vma *v = &p->vmas[i];
		if (!v->dump_pages)
			continue;
		/* Touching dumped mappings are scanned in one call: the same
		 * pages, one system call instead of one per mapping (a process
		 * with 60,000 small mappings). */
		uint64_t end = v->end;
		while (i + 1 < p->nvmas && p->vmas[i + 1].dump_pages && p->vmas[i + 1].start == end)
			end = p->vmas[++i].end;
		int r = fp_pagemap_scan(fd, v->start, end, &m, vec, VEC, add_written, &s);
		if (r < 0 && e.msg[0])
			rc = fp_fail(err, e.errnum, "%s", e.msg);
		else if (r <= 0)
			rc = fp_fail(err, r ? errno : ENOTSUP, "PAGEMAP_SCAN of %d for written pages: %s", p->pid,
				     r ? strerror(errno) : "not supported by this kernel");
	}
	free(vec);
	close(fd);
	return rc;
}

/* w ∪= the tracked ranges whose mapping lost its registration since
 * (track_lost.c): their protection bits say nothing, every page there is
 * read now. */
static int add_lost(struct dump_proc *p, struct ranges *w, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	struct fp_range *lost = NULL;
	size_t nlost = 0;
	if (fp_track_lost_of(p->pid, pc->reg, pc->nreg, &lost, &nlost, err)) {
		free(lost);
		return -1;
	}
	if (!nlost)
		return 0;
	struct ranges m = { 0 };
	size_t i = 0, j = 0;
	int rc = 0;
	while (!rc && (i < w->n || j < nlost)) {
		bool from_w = j == nlost || (i < w->n && w->r[i].start < lost[j].start);
		uint64_t s = from_w ? w->r[i].start : lost[j].start, e = from_w ? w->r[i++].end : lost[j++].end;
		if (m.n && s <= m.r[m.n - 1].end) {
			if (e > m.r[m.n - 1].end)
				m.r[m.n - 1].end = e;
		} else {
			rc = ranges_add(&m, s, e, err);
		}
	}
	free(lost);
	if (rc) {
		free(m.r);
		return -1;
	}
	free(w->r);
	*w = m;
	return 0;
}

/* Whether the userfaultfd still belongs to p's memory: after an exec (or an
 * exit) its mm is gone and the ioctl says ESRCH. The probe unprotects one
 * page, which is then read again below (it is taken before the scan). */
static bool uffd_alive(struct dump_precopy *pc)
{
	if (!pc->nreg)
		return false;
	struct uffdio_writeprotect w = { .range = { pc->reg[0].start, CR_PAGE_SIZE }, .mode = 0 };
	return ioctl(pc->uffd, UFFDIO_WRITEPROTECT, &w) == 0 || errno != ESRCH;
}

/* The first piece starting after a. */
static size_t piece_after(const struct dump_precopy *pc, uint64_t a)
{
	size_t lo = 0, hi = pc->npiece;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pc->piece[mid].vaddr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Start of the first usable pre-copied piece after a and before stop, else
 * stop. */
static uint64_t next_piece(const struct dump_precopy *pc, uint64_t a, uint64_t stop)
{
	for (size_t j = piece_after(pc, a); j < pc->npiece && pc->piece[j].vaddr < stop; j++)
		if (pc->piece[j].ok)
			return pc->piece[j].vaddr;
	return stop;
}

/* Start of the first piece after a and before stop, else stop. */
static uint64_t next_place(const struct dump_precopy *pc, uint64_t a, uint64_t stop)
{
	size_t j = piece_after(pc, a);
	return j < pc->npiece && pc->piece[j].vaddr < stop ? pc->piece[j].vaddr : stop;
}

/* Pages read during the stop, each range with where it goes. */
struct places {
	fp_mem_range *r;
	size_t n, cap;
};

static int place_add(struct places *l, uint64_t s, uint64_t e, uint8_t *to, fp_error *err)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		fp_mem_range *r = realloc(l->r, cap * sizeof(*r));
		if (!r)
			return fp_fail(err, ENOMEM, "out of memory");
		l->r = r, l->cap = cap;
	}
	l->r[l->n++] = (fp_mem_range){ s, (size_t)(e - s), to };
	return 0;
}

int dump_precopy_final(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	int64_t t0 = dump_now_ns();
	struct ranges w = { 0 };
	bool alive = uffd_alive(pc);
	if (!alive)
		dlog(c, "%d: its memory is not the one pre-copied (exec?): every page is read now", p->pid);
	if (alive && (written_pages(p, &w, err) || add_lost(p, &w, err))) {
		free(w.r);
		return -1;
	}
	double scan_ms = ms_since(t0);
	/* Walk the dumped runs against the written ranges (both sorted): a page
	 * comes from the pre-copy if it is not written and was pre-copied. */
	size_t cap = p->npe + 16, ns = 0, wi = 0;
	struct dump_seg *seg = malloc(cap * sizeof(*seg));
	struct ranges now = { 0 };
	struct places inpl = { 0 };
	int rc = seg ? 0 : fp_fail(err, ENOMEM, "out of memory");
	for (size_t k = 0; k < p->npe && !rc; k++) {
		uint64_t a = p->pe[k].vaddr, end = a + p->pe[k].nr_pages * CR_PAGE_SIZE;
		while (a < end && !rc) {
			while (wi < w.n && w.r[wi].end <= a)
				wi++;
			bool written = !alive || (wi < w.n && w.r[wi].start <= a);
			uint64_t stop = end;
			const uint8_t *data = NULL;
			if (written) {
				if (alive && w.r[wi].end < stop)
					stop = w.r[wi].end;
			} else {
				if (wi < w.n && w.r[wi].start < stop)
					stop = w.r[wi].start;
				const struct dump_pre_piece *q = piece_at(pc, a);
				if (q) {
					uint64_t qe = q->vaddr + q->npages * CR_PAGE_SIZE;
					if (qe < stop)
						stop = qe;
					data = pc->buf + q->off + (a - q->vaddr);
				} else {
					stop = next_piece(pc, a, stop); /* not pre-copied up to there */
				}
			}
			if (stop <= a) {
				rc = fp_fail(err, EIO, "internal: empty page piece at 0x%" PRIx64 " of %d", a, p->pid);
				break;
			}
			if (!data) { /* read now: over its place in buf, if it has one */
				const struct dump_pre_piece *q = place_at(pc, a);
				if (q) {
					uint64_t qe = q->vaddr + q->npages * CR_PAGE_SIZE;
					if (qe < stop)
						stop = qe;
					data = pc->buf + q->off + (a - q->vaddr);
					rc = place_add(&inpl, a, stop, (uint8_t *)data, err);
				} else {
					stop = next_place(pc, a, stop);
					rc = ranges_add(&now, a, stop, err);
				}
			}
			if (!rc && ns == cap) {
				cap *= 2;
				struct dump_seg *n2 = realloc(seg, cap * sizeof(*seg));
				if (!n2)
					rc = fp_fail(err, ENOMEM, "out of memory");
				else
					seg = n2;
			}
			if (!rc) {
				/* data NULL: filled in below from the dirty buffer */
				seg[ns++] = (struct dump_seg){ a, (stop - a) / CR_PAGE_SIZE, data };
			}
			a = stop;
		}
	}
	free(w.r);
	/* the scratch: first the pages with a place (read beside it, then
	 * copied over it where they differ), then those without one */
	uint64_t in_place = 0, dirty = 0;
	for (size_t i = 0; i < inpl.n; i++)
		in_place += inpl.r[i].len;
	for (size_t i = 0; i < now.n; i++)
		dirty += now.r[i].end - now.r[i].start;
	if (!rc && dirty + in_place) {
		pc->dirty = mmap(NULL, dirty + in_place, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (pc->dirty == MAP_FAILED) {
			pc->dirty = NULL;
			rc = fp_fail(err, errno, "cannot map %" PRIu64 " MiB for the written pages: %s",
				     (dirty + in_place) >> 20, strerror(errno));
		} else {
			pc->dirty_len = dirty + in_place;
		}
	}
	uint64_t off = in_place;
	for (size_t i = 0; i < ns && !rc; i++)
		if (!seg[i].data) {
			seg[i].data = pc->dirty + off;
			off += seg[i].npages * CR_PAGE_SIZE;
		}
	size_t nplaces = inpl.n;
	uint8_t **place = rc ? NULL : malloc((nplaces ? nplaces : 1) * sizeof(*place));
	if (!rc && !place)
		rc = fp_fail(err, ENOMEM, "out of memory");
	off = 0;
	for (size_t i = 0; i < nplaces && !rc; i++) {
		place[i] = inpl.r[i].local;
		inpl.r[i].local = pc->dirty + off;
		off += inpl.r[i].len;
	}
	for (size_t i = 0; i < now.n && !rc; i++) {
		size_t l = (size_t)(now.r[i].end - now.r[i].start);
		rc = place_add(&inpl, now.r[i].start, now.r[i].end, pc->dirty + off, err);
		off += l;
	}
	if (!rc && inpl.n && dump_mem_read_two_cpus(p->pid, inpl.r, inpl.n, err))
		rc = fp_wrap(err, "reading the pages %d wrote", p->pid);
	uint64_t changed = 0;
	for (size_t i = 0; i < nplaces && !rc; i++)
		for (size_t o = 0; o < inpl.r[i].len; o += CR_PAGE_SIZE)
			if (memcmp(place[i] + o, (uint8_t *)inpl.r[i].local + o, CR_PAGE_SIZE)) {
				memcpy(place[i] + o, (uint8_t *)inpl.r[i].local + o, CR_PAGE_SIZE);
				dump_precopy_patched(pc, (uint64_t)(place[i] + o - pc->buf));
				changed++;
			}
	free(place);
	free(now.r);
	free(inpl.r);
	if (rc) {
		free(seg);
		return -1;
	}
	p->segs = seg;
	p->nsegs = ns;
	dlog(c, "%d: %" PRIu64 " pages read while stopped (written or new; %" PRIu64 " with a place in the pre-copy, %"
		PRIu64 " changed there), %" PRIu64 " from the pre-copy; scan %.3f ms, total %.3f ms",
	     p->pid, (dirty + in_place) / CR_PAGE_SIZE, in_place / CR_PAGE_SIZE, changed,
	     p->npages - (dirty + in_place) / CR_PAGE_SIZE, scan_ms, ms_since(t0));
	return 0;
}

/* ---- the end -------------------------------------------------------------- */

void dump_precopy_unprotect(struct dump_ctx *c)
{
	int64_t t0 = dump_now_ns();
	size_t n = 0;
	bool any = false;
	for (size_t i = 0; i < c->npre; i++) {
		struct dump_precopy *pc = &c->pre[i];
		if (pc->uffd < 0)
			continue;
		any = true;
		for (size_t r = 0; r < pc->nreg; r++)
			for (uint64_t a = pc->reg[r].start; a < pc->reg[r].end; a += UNREG_STEP) {
				uint64_t e = a + UNREG_STEP < pc->reg[r].end ? a + UNREG_STEP : pc->reg[r].end;
				struct uffdio_range rg = { a, e - a };
				/* ENOENT/EINVAL: that part was unmapped or remapped */
				if (ioctl(pc->uffd, UFFDIO_UNREGISTER, &rg) && errno == ESRCH)
					break;
				n++;
			}
		close(pc->uffd);
		pc->uffd = -1;
	}
	if (any)
		dlog(c, "write tracking removed in %.3f ms (%zu steps)", ms_since(t0), n);
}

void dump_precopy_end(struct dump_ctx *c)
{
	dump_precopy_unprotect(c);
	for (size_t i = 0; i < c->npre; i++)
		pre_free(&c->pre[i]);
	free(c->pre);
	c->pre = NULL;
	c->npre = 0;
}
