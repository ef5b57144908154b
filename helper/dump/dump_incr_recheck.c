/* Re-protecting the written pages after the resume, not during the stop.
 *
 * PAGEMAP_SCAN with PM_SCAN_WP_MATCHING finds and re-protects the written
 * pages in one walk, but the re-protection costs a TLB flush for every
 * 2 MiB with a written page in it: ~10 us each here, ~5 ms for 1 GiB at 1%
 * written, 50-100 ms on a loaded machine, all of it pause. The scan alone
 * (no protection change) takes ~0.5 ms. So the stop only scans (and reads
 * the written pages, as before) and the process resumes with those pages
 * still unprotected; here, after the resume, exactly those pages are
 * protected again (UFFDIO_WRITEPROTECT). Never whole mappings: a page that
 * was protected at the stop and written after the resume is written since
 * this snapshot, and a protection over it would hide that.
 *
 * A write to one of those pages between the resume and its protection
 * leaves no trace by itself. So once the protection is back, each is
 * compared with the copy the stop took: one that differs was written
 * meanwhile, and its protection is taken off again (mode 0), so the next
 * snapshot sees it written and reads it. One that equals the copy holds
 * the snapshot's content, and any write after its protection came back is
 * tracked as usual. Written pages that the stop did not read (not present
 * then) are left unprotected: written for the next snapshot too. The
 * tracking thus says exactly what it said before: a page not reported
 * written equals its content in this snapshot (tests/e2e/snap_incr_race.sh
 * has a process write through every resume). */
#include "dump/dump_int.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CHUNK (1u << 20)

bool dump_incr_defer(void)
{
	static _Atomic int d = -1;
	if (d < 0) {
		const char *e = getenv("FP_DUMP_REPROTECT_STOPPED");
		d = !(e && *e && strcmp(e, "0"));
	}
	return d;
}

struct unprot {
	int uffd;
	uint64_t s, e; /* the pending range, merged */
	uint64_t pages;
	int err;       /* first failure (errno), 0 if none */
};

static void unprot_flush(struct unprot *u)
{
	if (u->e <= u->s)
		return;
	struct uffdio_writeprotect w = { .range = { u->s, u->e - u->s }, .mode = 0 };
	/* ENOENT: unmapped meanwhile (a new mapping there is read in full) */
	if (ioctl(u->uffd, UFFDIO_WRITEPROTECT, &w) && errno != ENOENT && !u->err)
		u->err = errno;
	u->pages += (u->e - u->s) / CR_PAGE_SIZE;
	u->s = u->e = 0;
}

static void unprot_add(struct unprot *u, uint64_t s, uint64_t e)
{
	if (u->e == s && u->e > u->s) {
		u->e = e;
		return;
	}
	unprot_flush(u);
	u->s = s;
	u->e = e;
}

/* Pieces to compare, read back in one process_vm_readv: the written pages
 * are scattered, one syscall each would cost more than the reading. */
#define BATCH 512
struct cmp {
	pid_t pid;
	fp_mem_range r[BATCH];
	const uint8_t *copy[BATCH];
	size_t n, bytes;
	uint8_t *tmp; /* CHUNK bytes */
};

static void cmp_pages(struct unprot *u, uint64_t a, size_t len, const uint8_t *now, const uint8_t *copy)
{
	for (size_t off = 0; off < len; off += CR_PAGE_SIZE)
		if (memcmp(now + off, copy + off, CR_PAGE_SIZE))
			unprot_add(u, a + off, a + off + CR_PAGE_SIZE);
}

static void cmp_flush(struct cmp *b, struct unprot *u)
{
	fp_error ign;
	if (b->n && fp_mem_read_ranges(b->pid, b->r, b->n, &ign) == 0) {
		for (size_t i = 0; i < b->n; i++)
			cmp_pages(u, b->r[i].addr, b->r[i].len, b->r[i].local, b->copy[i]);
	} else {
		/* one of them is gone (unmapped meanwhile): one by one */
		for (size_t i = 0; i < b->n; i++) {
			if (fp_mem_read_ranges(b->pid, &b->r[i], 1, &ign))
				unprot_add(u, b->r[i].addr, b->r[i].addr + b->r[i].len); /* unreadable: written, to be safe */
			else
				cmp_pages(u, b->r[i].addr, b->r[i].len, b->r[i].local, b->copy[i]);
		}
	}
	b->n = b->bytes = 0;
}

/* Compares [s, e) (read at the stop into `copy`) with the process now. */
static void compare(struct cmp *b, struct unprot *u, uint64_t s, uint64_t e, const uint8_t *copy)
{
	while (s < e) {
		if (b->n == BATCH || b->bytes == CHUNK)
			cmp_flush(b, u);
		size_t len = e - s;
		if (len > CHUNK - b->bytes)
			len = CHUNK - b->bytes;
		b->r[b->n] = (fp_mem_range){ s, len, b->tmp + b->bytes };
		b->copy[b->n++] = copy;
		b->bytes += len;
		copy += len;
		s += len;
	}
}

/* The written pages the stop read: W ∩ R, both sorted. */
static int read_and_written(const struct dump_precopy *pc, struct fp_range **out, size_t *n)
{
	size_t cap = 0, j = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < pc->nwritten; i++) {
		uint64_t s = pc->written[i].start, e = pc->written[i].end;
		while (j < pc->nrd && pc->rd[j].addr + pc->rd[j].len <= s)
			j++;
		for (size_t k = j; k < pc->nrd && pc->rd[k].addr < e; k++) {
			uint64_t a = s > pc->rd[k].addr ? s : pc->rd[k].addr;
			uint64_t b = e < pc->rd[k].addr + pc->rd[k].len ? e : pc->rd[k].addr + pc->rd[k].len;
			if (a < b && fp_ranges_push(out, n, &cap, a, b))
				return -1;
		}
	}
	return 0;
}

int dump_incr_settle(pid_t pid, int uffd, const struct fp_range *x, size_t nx, const uint8_t *const *copy,
		     uint64_t *unprotected, fp_error *err)
{
	struct cmp *b = calloc(1, sizeof(*b));
	uint8_t *tmp = b ? malloc(CHUNK) : NULL;
	if (!tmp) {
		free(b);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	struct unprot u = { .uffd = uffd };
	b->pid = pid;
	b->tmp = tmp;
	for (size_t i = 0; i < nx; i++) {
		if (copy[i]) {
			compare(b, &u, x[i].start, x[i].end, copy[i]);
			continue;
		}
		cmp_flush(b, &u); /* in address order: unprot_add merges */
		unprot_add(&u, x[i].start, x[i].end);
	}
	cmp_flush(b, &u);
	unprot_flush(&u);
	free(tmp);
	free(b);
	*unprotected = u.pages;
	if (u.err)
		return fp_fail(err, u.err, "unprotecting pages of %d written during its resume: %s", (int)pid,
			       strerror(u.err));
	return 0;
}

static int recheck(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	int64_t t0 = dump_now_ns();
	struct fp_range *x = NULL;
	size_t nx = 0;
	if (read_and_written(pc, &x, &nx))
		return fp_fail(err, ENOMEM, "out of memory");
	/* Exactly these pages: a page the process writes after its resume
	 * that was protected at the stop is written since this snapshot, and
	 * must stay so (a protection over whole mappings would hide it). The
	 * written pages the stop did not read (not present then) stay
	 * unprotected: written for the next snapshot too. */
	uint64_t prot = 0;
	for (size_t i = 0; i < nx; i++) {
		struct uffdio_writeprotect w = { .range = { x[i].start, x[i].end - x[i].start },
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		/* ENOENT: unmapped meanwhile (a new mapping there is read in full) */
		if (ioctl(pc->uffd, UFFDIO_WRITEPROTECT, &w) && errno != ENOENT) {
			int e = errno;
			free(x);
			return fp_fail(err, e, "re-protecting the pages %d wrote: %s", p->pid, strerror(e));
		}
		prot += (x[i].end - x[i].start) / CR_PAGE_SIZE;
	}
	double prot_ms = (double)(dump_now_ns() - t0) / 1e6;
	const uint8_t **copy = malloc((nx ? nx : 1) * sizeof(*copy));
	if (!copy) {
		free(x);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	size_t j = 0;
	for (size_t i = 0; i < nx; i++) {
		while (pc->rd[j].addr + pc->rd[j].len <= x[i].start)
			j++; /* x[i] lies inside rd[j] */
		copy[i] = (const uint8_t *)pc->rd[j].local + (x[i].start - pc->rd[j].addr);
	}
	uint64_t unp = 0;
	int rc = dump_incr_settle(p->pid, pc->uffd, x, nx, copy, &unp, err);
	free(copy);
	free(x);
	if (rc)
		return -1;
	dlog(c, "%d: %" PRIu64 " written pages re-protected after the resume in %.3f ms, compared with the stop's copy: "
		"%" PRIu64 " written meanwhile (left unprotected), %.3f ms in all",
	     p->pid, prot, prot_ms, unp, (double)(dump_now_ns() - t0) / 1e6);
	return 0;
}

void dump_incr_after_resume(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_proc *p = &c->procs[i];
		if (!p->pre || !p->pre->deferred || p->pre->uffd < 0)
			continue;
		fp_error e;
		if (!recheck(c, p, &e))
			continue;
		/* Its tracking cannot be trusted: dropped with the dump's
		 * end (dump_incr_keep skips it); the next snapshot reads it in
		 * full and says why. */
		p->pre->untrusted = true;
		dlog(c, "%d: write tracking dropped: %s", p->pid, e.msg);
	}
}
