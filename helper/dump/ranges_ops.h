/* Set operations on sorted, non-overlapping [start, end) range lists
 * (struct fp_range, dirty_tracker.h). Each result is a new malloc'd list
 * (NULL and 0 when empty); -1 only when out of memory. */
#ifndef FP_RANGES_OPS_H
#define FP_RANGES_OPS_H

#include "dump/dirty_tracker.h"

struct fp_rlist {
	struct fp_range *r;
	size_t n, cap;
};

int fp_rlist_add(struct fp_rlist *l, uint64_t s, uint64_t e);
void fp_rlist_free(struct fp_rlist *l);
/* out = a ∪ b, a ∩ b, a ∖ b (out must be empty and distinct from a, b). */
int fp_rlist_union(const struct fp_rlist *a, const struct fp_rlist *b, struct fp_rlist *out);
int fp_rlist_inter(const struct fp_rlist *a, const struct fp_rlist *b, struct fp_rlist *out);
int fp_rlist_minus(const struct fp_rlist *a, const struct fp_rlist *b, struct fp_rlist *out);
/* a := a ∪ b. */
int fp_rlist_merge(struct fp_rlist *a, const struct fp_rlist *b);
/* Sorts and merges a list whose ranges were added in any order. */
int fp_rlist_normalize(struct fp_rlist *l);
uint64_t fp_rlist_bytes(const struct fp_rlist *l);
/* r[0..n) (sorted pieces, each with its bytes at ptr[i]) less w (sorted):
 * the pieces left into *out, *optr, *nout (new arrays), their pointers
 * moved with their starts. -1: out of memory. */
int fp_pieces_minus(const struct fp_range *r, const uint8_t *const *ptr, size_t n, const struct fp_rlist *w,
		    struct fp_range **out, const uint8_t ***optr, size_t *nout);

#endif
