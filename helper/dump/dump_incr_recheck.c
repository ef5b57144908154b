/* Re-protecting the written pages after the resume, not during the stop.
 *
 * PAGEMAP_SCAN with PM_SCAN_WP_MATCHING finds and re-protects the written
 * pages in one walk, but the re-protection costs a TLB flush for every
 * 2 MiB with a written page in it: ~10 us each here, ~5 ms for 1 GiB at 1%
 * written, 50-100 ms on a loaded machine, all of it pause. The scan alone
 * (no protection change) takes ~0.5 ms. So the stop only scans (and reads
 * the written pages, as before) and the process resumes with those pages
 * still unprotected; after the resume, exactly those pages are protected
 * again (UFFDIO_WRITEPROTECT, in a thread beside the rest of the snapshot
 * and after its reply: dump_incr_settle.c). Never whole mappings: a page that
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
#include "config.h"

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
		d = !fp_env_flag("FP_DUMP_REPROTECT_STOPPED");
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

