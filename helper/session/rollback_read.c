/* Rollback in place: reading SNAP's pages (rollback_int.h).
 *
 * Each page is one pread and one hash (they lie scattered in the stores
 * of SNAP's chain, mostly in the full snapshot's): at 1 GiB with 1%
 * written per step, 2,630 of them took 17-60 ms, the larger part of the
 * rollback's stop. SNAP's pages never change, so they need not be read
 * while the processes are stopped: before the stop, the pages written
 * since the tracking's snapshot (one PAGEMAP_SCAN, the process running)
 * and those the snapshots in between hold are read (rb_prefetch); at the
 * stop, the pages to write back that were read already are written from
 * there, and only the others, written in between or found by the
 * comparison (untracked memory, mappings made again), are read then
 * (rb_place). Both reads run on two CPUs, one reader each, each batching
 * its reads in an io_uring (rollback_uring.c). */
#include "session/rollback_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct read_job {
	struct rb_proc *p;
	pthread_t main;
	const struct fp_range *r;
	const size_t *off;
	uint8_t *dst;
	int failed; /* atomic: the first failure claims err */
	fp_error err;
};

static void read_some(void *arg, size_t from, size_t to)
{
	struct read_job *j = arg;
	bool main = pthread_equal(pthread_self(), j->main);
	pgs_reader *rd = main ? j->p->rd : j->p->rd2;
	fp_error ue;
	int u = rb_uring_read(j->p, rd, main ? 0 : 1, j->r + from, to - from, j->off + from, j->dst, &ue);
	if (u <= 0) {
		int zero = 0;
		if (u && __atomic_compare_exchange_n(&j->failed, &zero, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			j->err = ue;
		return;
	}
	for (size_t i = from; i < to && !__atomic_load_n(&j->failed, __ATOMIC_RELAXED); i++) {
		fp_error e;
		if (rb_snap_read_with(j->p, rd, j->r[i].start, j->r[i].end - j->r[i].start, j->dst + j->off[i], &e)) {
			int zero = 0;
			if (__atomic_compare_exchange_n(&j->failed, &zero, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				j->err = e;
		}
	}
}

/* From SNAP's frozen copy the ranges it holds (rollback_hot.c), the
 * others from the stores; *hot: the bytes from the copy (not hashed). */
int rb_read_ranges(struct rb_ctx *c, struct rb_proc *p, const struct fp_range *r, size_t n, uint8_t *dst,
		   bool one_cpu, size_t *hot, fp_error *err)
{
	*hot = 0;
	if (!n)
		return 0;
	size_t *off = calloc(n, sizeof(*off)), o = 0;
	uint8_t *ok = calloc(n, 1);
	struct fp_range *rest = malloc(n * sizeof(*rest));
	size_t *rest_off = malloc(n * sizeof(*rest_off)), nrest = 0;
	if (!off || !ok || !rest || !rest_off) {
		free(off), free(ok), free(rest), free(rest_off);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		off[i] = o, o += r[i].end - r[i].start;
	*hot = rb_hot_read(p, r, n, off, dst, ok, c->r);
	c->r->hot_bytes += *hot;
	if (p->hot)
		fp_rb_mark(c->r, "h_read");
	for (size_t i = 0; i < n; i++)
		if (!ok[i])
			rest[nrest] = r[i], rest_off[nrest++] = off[i];
	c->r->files_bytes += o - *hot;
	int rc = 0;
	if (nrest && !one_cpu && !p->rd2) { /* the second CPU's reader: the same chain, its own files */
		p->rd2 = pgs_dup(p->rd, -1, 0, err);
		if (!p->rd2 || (c->per_page && pgs_check_pages(p->rd2, -1, 0, err)))
			rc = -1;
	}
	struct read_job j = { .p = p, .main = pthread_self(), .r = rest, .off = rest_off, .dst = dst };
	if (!rc && nrest && one_cpu)
		read_some(&j, 0, nrest);
	else if (!rc && nrest)
		rb_two_cpus(nrest, read_some, &j);
	free(off), free(ok), free(rest), free(rest_off);
	if (j.failed) {
		*err = j.err;
		return -1;
	}
	return rc;
}

/* p->pre read into one buffer, one range after the other (pre_ptr) */
static int read_ranges_pre(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	size_t len = fp_rlist_bytes(&p->pre), o = 0, hot = 0;
	uint8_t *dst = rb_buf_get(rb_slot(c, p, RB_SLOT_PRE), len, err);
	fp_rb_mark(c->r, "p_buf");
	if (!dst || rb_read_ranges(c, p, p->pre.r, p->pre.n, dst, false, &hot, err))
		return -1;
	for (size_t k = 0; k < p->pre.n; k++)
		p->pre_ptr[k] = dst + o, o += p->pre.r[k].end - p->pre.r[k].start;
	if (c->per_page)
		c->r->verified_bytes += len - hot;
	return 0;
}

int rb_prefetch(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	if (!c->no_save && rb_ahead_live(c, p) < 0)
		return fp_fail(err, ENOMEM, "out of memory");
	uint64_t ahead = 0;
	int a = rb_ahead_take(c, p, &ahead, err);
	if (a) {
		c->r->ahead_bytes += ahead;
		if (c->per_page) /* proven as they were read ahead */
			c->r->verified_bytes += ahead;
		fp_rb_mark(c->r, "p_ahead");
		return a < 0 ? -1 : 0;
	}
	struct fp_rlist w = { 0 };
	if (rb_written_now(p, false, &w, err) || fp_rlist_merge(&w, &p->path_pages)) {
		fp_rlist_free(&w);
		return -1;
	}
	fp_rb_mark(c->r, "p_written");
	int rc = fp_rlist_inter(&w, &p->snap_pages, &p->pre) ? fp_fail(err, ENOMEM, "out of memory") : 0;
	fp_rlist_free(&w);
	size_t len = fp_rlist_bytes(&p->pre);
	if (rc || !len || len > c->resident_max) { /* big ones are streamed (rb_save) */
		fp_rlist_free(&p->pre);
		return rc;
	}
	if (!(p->pre_ptr = calloc(p->pre.n, sizeof(*p->pre_ptr))))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc)
		rc = read_ranges_pre(c, p, err);
	if (rc) {
		fp_rlist_free(&p->pre);
		free(p->pre_ptr);
		p->pre_ptr = NULL;
	}
	return rc;
}

int rb_cut_at(const struct fp_rlist *l, const struct fp_range *by, size_t nby, struct fp_rlist *out, bool **in)
{
	size_t cap = l->n + 2 * nby + 1, k = 0;
	*out = (struct fp_rlist){ 0 };
	out->r = malloc(cap * sizeof(*out->r));
	if (in)
		*in = malloc(cap * sizeof(**in));
	if (!out->r || (in && !*in))
		return -1;
	out->cap = cap;
	for (size_t i = 0; i < l->n; i++) {
		uint64_t a = l->r[i].start, b = l->r[i].end;
		while (a < b) {
			while (k < nby && by[k].end <= a)
				k++;
			bool inside = k < nby && by[k].start <= a;
			uint64_t e = inside ? by[k].end : k < nby ? by[k].start : b;
			if (e > b)
				e = b;
			if (in)
				(*in)[out->n] = inside;
			out->r[out->n++] = (struct fp_range){ a, e };
			a = e;
		}
	}
	return 0;
}

int rb_place(struct rb_ctx *c, struct rb_proc *p, fp_error *err)
{
	struct fp_rlist wr = { 0 };
	bool *in = NULL;
	if (rb_cut_at(&p->wr, p->pre.r, p->pre.n, &wr, &in)) {
		free(wr.r);
		free(in);
		return fp_fail(err, ENOMEM, "out of memory");
	}
	fp_rlist_free(&p->wr);
	p->wr = wr;
	p->wr_ptr = malloc((wr.n ? wr.n : 1) * sizeof(*p->wr_ptr));
	struct fp_range *miss = malloc((wr.n ? wr.n : 1) * sizeof(*miss));
	int rc = p->wr_ptr && miss ? 0 : fp_fail(err, ENOMEM, "out of memory");
	size_t nmiss = 0, lmiss = 0, k = 0;
	for (size_t i = 0; i < wr.n && !rc; i++) {
		size_t len = wr.r[i].end - wr.r[i].start;
		if (!in[i]) {
			miss[nmiss++] = wr.r[i], lmiss += len;
			continue;
		}
		while (p->pre.r[k].end <= wr.r[i].start) /* pre is walked once, in order */
			k++;
		p->wr_ptr[i] = p->pre_ptr[k] + (wr.r[i].start - p->pre.r[k].start);
	}
	size_t ln = fp_rlist_bytes(&p->wr_new);
	p->newd_len = lmiss + ln;
	p->newd = rc ? NULL : rb_buf_get(rb_slot(c, p, RB_SLOT_NEW), p->newd_len ? p->newd_len : 1, err);
	if (!rc && !p->newd)
		rc = -1;
	size_t hot1 = 0, hot2 = 0;
	if (!rc)
		rc = rb_read_ranges(c, p, miss, nmiss, p->newd, false, &hot1, err);
	for (size_t i = 0, o = 0; i < wr.n && !rc; i++)
		if (!in[i])
			p->wr_ptr[i] = p->newd + o, o += wr.r[i].end - wr.r[i].start;
	p->wrn_data = p->newd ? p->newd + lmiss : NULL;
	if (!rc)
		rc = rb_read_ranges(c, p, p->wr_new.r, p->wr_new.n, p->newd + lmiss, false, &hot2, err);
	if (!rc && c->per_page)
		c->r->verified_bytes += lmiss + ln - hot1 - hot2;
	free(miss);
	free(in);
	return rc;
}
