/* Rollback in place: SNAP's pages from its frozen copy (rollback_int.h).
 *
 * When SNAP is hot (session_hot.h), this helper holds, for each of its
 * processes, a stopped copy-on-write fork made at SNAP's instant: its
 * memory is SNAP's memory by construction. The copy is never resumed to
 * run its own code: only `hotfork` runs system calls in it, which write
 * nothing but its old injection area (area .. area_len, not in SNAP's
 * image, and never read from here); nothing here writes or resumes it.
 * So SNAP's pages are read from it with process_vm_readv, batched, on two
 * CPUs, instead of one pread and one hash each from the page stores.
 *
 * Not every page of SNAP is in the copy: a fork leaves out MADV_DONTFORK
 * areas, gives MADV_WIPEONFORK ones empty, and copies no page table of a
 * mapping without anonymous pages. Only pages that the copy holds
 * (PAGEMAP_SCAN: present or swapped) are read from it; the others, and
 * any range that the read cannot take whole, come from the stores. */
#include "session/rollback_int.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "procfs.h"
#include "ptrace/pagemap_scan.h"
#include "session/session_hot.h"

bool rb_hot_is_copy(pid_t pid)
{
	struct fp_proc_stat st;
	fp_error e;
	if (fp_proc_read_stat(pid, 0, &st, &e) || st.exit_signal != 0)
		return false;
	if (st.state == 'Z' || st.state == 'X')
		return true; /* a released one, reaped by the next snapshot (dump_tree.c) */
	char tr[32] = "0";
	return fp_proc_status_field(pid, "TracerPid", tr, sizeof(tr), &e) == 0 && atoi(tr) == (int)getpid();
}

/* FP_ROLLBACK_HOT_READ=0: SNAP's pages from the stores even when it is hot
 * (A/B: with the stores mapped, rollback_map.c, they cost a memcpy each,
 * where a read from the copy is a page walk of another process). */
static bool hot_read_off(void)
{
	return fp_env_off("FP_ROLLBACK_HOT_READ");
}

void rb_hot_attach(struct rb_ctx *c)
{
	const struct fp_dump_hot *h = c->snap && !hot_read_off() ? fp_hot_find(c->snap) : NULL;
	for (size_t i = 0; h && i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		for (size_t k = 0; k < h->n; k++)
			if (h->c[k].pid == p->pid) {
				p->hot = h->c[k].copy;
				p->hot_area = h->c[k].area;
				p->hot_area_len = h->c[k].area_len;
			}
	}
}

static int add_held(void *arg, uint64_t start, uint64_t end)
{
	return fp_rlist_add(arg, start, end);
}

/* Ranges less than this apart are scanned in one PAGEMAP_SCAN: one call
 * for pages scattered over a mapping, but not a walk of the gigabyte
 * between a few pages of the heap and a few of the stack (2 ms, at the
 * stop). */
#define HELD_GAP (4ull << 20)

/* The pages around r[0..n) (in address order) that the copy holds, minus
 * its injection area. */
static int held(struct rb_proc *p, const struct fp_range *r, size_t n, struct fp_rlist *out)
{
	int fd = fp_pagemap_open(p->hot, NULL);
	if (fd < 0)
		return -1;
	enum { VEC = 512 };
	struct fp_page_region *vec = malloc(VEC * sizeof(*vec));
	struct fp_pm_scan_arg m = { 0 };
	m.category_anyof_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	m.return_mask = FP_PAGE_IS_PRESENT | FP_PAGE_IS_SWAPPED;
	struct fp_rlist got = { 0 };
	int rc = vec ? 0 : -1;
	for (size_t i = 0; i < n && !rc;) {
		uint64_t start = r[i].start, end = r[i].end;
		for (i++; i < n && r[i].start >= end && r[i].start - end < HELD_GAP; i++)
			end = r[i].end;
		rc = fp_pagemap_scan(fd, start, end, &m, vec, VEC, add_held, &got) == 1 ? 0 : -1;
	}
	free(vec);
	close(fd);
	struct fp_rlist area = { 0 };
	if (!rc && p->hot_area_len && fp_rlist_add(&area, p->hot_area, p->hot_area + p->hot_area_len))
		rc = -1;
	if (!rc && fp_rlist_normalize(&got)) /* r out of order: clusters too */
		rc = -1;
	if (!rc)
		rc = fp_rlist_minus(&got, &area, out);
	fp_rlist_free(&got);
	fp_rlist_free(&area);
	return rc;
}

struct hot_job {
	pid_t copy;
	const struct fp_range *r;
	const size_t *off;
	uint8_t *dst;
	uint8_t *ok; /* per range: read whole from the copy */
};

static void read_some(void *arg, size_t from, size_t to)
{
	struct hot_job *j = arg;
	enum { BATCH = 64 };
	struct iovec l[BATCH], rm[BATCH];
	size_t idx[BATCH];
	while (from < to) {
		size_t n = 0, want = 0;
		for (; from < to && n < BATCH; from++) {
			if (!j->ok[from])
				continue;
			size_t len = j->r[from].end - j->r[from].start;
			l[n] = (struct iovec){ j->dst + j->off[from], len };
			rm[n] = (struct iovec){ (void *)(uintptr_t)j->r[from].start, len };
			idx[n++] = from;
			want += len;
		}
		ssize_t got = n ? process_vm_readv(j->copy, l, n, rm, n, 0) : 0;
		if (got == (ssize_t)want)
			continue;
		/* the ranges read whole stay; from the first short one on, the stores */
		size_t done = got > 0 ? (size_t)got : 0;
		for (size_t k = 0; k < n; k++) {
			size_t len = rm[k].iov_len;
			if (done >= len)
				done -= len;
			else
				j->ok[idx[k]] = 0, done = 0;
		}
	}
}

size_t rb_hot_read(struct rb_proc *p, const struct fp_range *r, size_t n, const size_t *off, uint8_t *dst,
		   uint8_t *ok, struct fp_rb_result *res)
{
	memset(ok, 0, n);
	if (!p->hot || !n)
		return 0;
	struct fp_rlist have = { 0 };
	if (held(p, r, n, &have)) {
		fp_rlist_free(&have);
		return 0;
	}
	/* r is in address order (else fewer are taken from the copy): one
	 * walk along the copy's held pages */
	size_t k = 0, cand = 0;
	for (size_t i = 0; i < n; i++) {
		while (k < have.n && have.r[k].end <= r[i].start)
			k++;
		ok[i] = k < have.n && have.r[k].start <= r[i].start && have.r[k].end >= r[i].end;
		cand += ok[i];
	}
	fp_rlist_free(&have);
	fp_rb_mark(res, "h_held");
	if (!cand)
		return 0;
	struct hot_job j = { .copy = p->hot, .r = r, .off = off, .dst = dst, .ok = ok };
	rb_two_cpus(n, read_some, &j);
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		if (ok[i])
			bytes += r[i].end - r[i].start;
	return bytes;
}
