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

#endif
