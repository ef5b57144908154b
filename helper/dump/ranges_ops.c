/* Range list set operations (ranges_ops.h). */
#include "dump/ranges_ops.h"

#include <stdlib.h>
#include <string.h>

int fp_rlist_add(struct fp_rlist *l, uint64_t s, uint64_t e)
{
	return fp_ranges_push(&l->r, &l->n, &l->cap, s, e);
}

void fp_rlist_free(struct fp_rlist *l)
{
	free(l->r);
	memset(l, 0, sizeof(*l));
}

int fp_rlist_union(const struct fp_rlist *a, const struct fp_rlist *b, struct fp_rlist *out)
{
	size_t i = 0, j = 0;
	uint64_t cs = 0, ce = 0;
	bool open = false;
	while (i < a->n || j < b->n) {
		const struct fp_range *x;
		if (j >= b->n || (i < a->n && a->r[i].start <= b->r[j].start))
			x = &a->r[i++];
		else
			x = &b->r[j++];
		if (open && x->start <= ce) {
			if (x->end > ce)
				ce = x->end;
			continue;
		}
		if (open && fp_rlist_add(out, cs, ce))
			return -1;
		cs = x->start, ce = x->end, open = true;
	}
	return open ? fp_rlist_add(out, cs, ce) : 0;
}

int fp_rlist_inter(const struct fp_rlist *a, const struct fp_rlist *b, struct fp_rlist *out)
{
	size_t i = 0, j = 0;
	while (i < a->n && j < b->n) {
		uint64_t s = a->r[i].start > b->r[j].start ? a->r[i].start : b->r[j].start;
		uint64_t e = a->r[i].end < b->r[j].end ? a->r[i].end : b->r[j].end;
		if (s < e && fp_rlist_add(out, s, e))
			return -1;
		if (a->r[i].end < b->r[j].end)
			i++;
		else
			j++;
	}
	return 0;
}

int fp_rlist_minus(const struct fp_rlist *a, const struct fp_rlist *b, struct fp_rlist *out)
{
	size_t j = 0;
	for (size_t i = 0; i < a->n; i++) {
		uint64_t s = a->r[i].start, e = a->r[i].end;
		while (j < b->n && b->r[j].end <= s)
			j++;
		for (size_t k = j; k < b->n && b->r[k].start < e && s < e; k++) {
			if (b->r[k].start > s && fp_rlist_add(out, s, b->r[k].start))
				return -1;
			if (b->r[k].end > s)
				s = b->r[k].end;
		}
		if (s < e && fp_rlist_add(out, s, e))
			return -1;
	}
	return 0;
}

int fp_rlist_merge(struct fp_rlist *a, const struct fp_rlist *b)
{
	if (!b->n)
		return 0;
	struct fp_rlist o = { 0 };
	if (fp_rlist_union(a, b, &o)) {
		fp_rlist_free(&o);
		return -1;
	}
	fp_rlist_free(a);
	*a = o;
	return 0;
}

static int cmp_start(const void *x, const void *y)
{
	const struct fp_range *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

int fp_rlist_normalize(struct fp_rlist *l)
{
	if (l->n < 2)
		return 0;
	size_t k = 1; /* mostly built in address order already: no sort then */
	while (k < l->n && l->r[k - 1].start <= l->r[k].start)
		k++;
	if (k < l->n)
		qsort(l->r, l->n, sizeof(*l->r), cmp_start);
	struct fp_rlist empty = { 0 }, o = { 0 };
	if (fp_rlist_union(l, &empty, &o)) {
		fp_rlist_free(&o);
		return -1;
	}
	fp_rlist_free(l);
	*l = o;
	return 0;
}

uint64_t fp_rlist_bytes(const struct fp_rlist *l)
{
	uint64_t b = 0;
	for (size_t i = 0; i < l->n; i++)
		b += l->r[i].end - l->r[i].start;
	return b;
}

int fp_pieces_minus(const struct fp_range *r, const uint8_t *const *ptr, size_t n, const struct fp_rlist *w,
		    struct fp_range **out, const uint8_t ***optr, size_t *nout)
{
	size_t cap = n + w->n + 1, k = 0, j = 0;
	*out = malloc(cap * sizeof(**out));
	*optr = malloc(cap * sizeof(**optr));
	*nout = 0;
	if (!*out || !*optr) {
		free(*out), free(*optr);
		*out = NULL, *optr = NULL;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t s = r[i].start, e = r[i].end;
		while (j < w->n && w->r[j].end <= s)
			j++;
		for (size_t q = j; s < e; q++) {
			uint64_t cut = q < w->n && w->r[q].start < e ? (w->r[q].start > s ? w->r[q].start : s) : e;
			if (cut > s) {
				(*out)[k] = (struct fp_range){ s, cut };
				(*optr)[k++] = ptr[i] + (s - r[i].start);
			}
			if (cut >= e)
				break;
			s = w->r[q].end > cut ? w->r[q].end : cut;
		}
	}
	*nout = k;
	return 0;
}
