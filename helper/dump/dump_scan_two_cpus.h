/* PAGEMAP_SCAN of ranges of one process on two CPUs (dump_scan_two_cpus.c),
 * for the incremental dump and for rollbacks in place. */
#ifndef FP_DUMP_SCAN_TWO_CPUS_H
#define FP_DUMP_SCAN_TWO_CPUS_H

#include <stdbool.h>

#include "fp_error.h"
#include "dump/ranges_ops.h"
#include "ptrace/pagemap_scan.h"

/* Where each region found goes: into a and/or b (nonzero: out of memory).
 * NULL: every region into a. */
typedef int (*fp_scan_sort_fn)(void *arg, const struct fp_page_region *r, struct fp_rlist *a, struct fp_rlist *b);

/* The regions of [reg[i].start, reg[i].end) (sorted) in the categories of
 * *m, each sorted into a and b (normalized, merged into what they hold);
 * one_cpu walks on this thread alone. 0; 1 when the kernel has no
 * PAGEMAP_SCAN; -1 with err (the first failure: with PM_SCAN_WP_MATCHING
 * the kernel may have protected pages that no list holds). */
int fp_scan_two_cpus(int fd, const struct fp_range *reg, size_t nreg, const struct fp_pm_scan_arg *m,
		     fp_scan_sort_fn sort, void *arg, bool one_cpu, struct fp_rlist *a, struct fp_rlist *b,
		     fp_error *err);

/* The written pages of reg (not the shared zero page) protected again in
 * the same walk (PM_SCAN_WP_MATCHING: the list returned is the list
 * protected), into written; of them those emptied (neither present nor
 * swapped) into gone too. Returns as fp_scan_two_cpus. */
int fp_scan_protect_written(int fd, const struct fp_range *reg, size_t nreg, bool one_cpu, struct fp_rlist *written,
			    struct fp_rlist *gone, fp_error *err);

#endif
