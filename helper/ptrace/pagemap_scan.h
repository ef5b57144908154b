/* The PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+; the build
 * headers may be older): one call returns the ranges of pages in given
 * categories, instead of reading 8 bytes per page. Note that a userfaultfd
 * write-protect marker on a never-touched page is reported as "swapped". */
#ifndef FP_PAGEMAP_SCAN_H
#define FP_PAGEMAP_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "fp_error.h"

struct fp_page_region {
	uint64_t start, end, categories;
};

struct fp_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define FP_PAGEMAP_SCAN _IOWR('f', 16, struct fp_pm_scan_arg)
#define FP_PAGE_IS_WPALLOWED (1u << 0) /* its mapping is registered for asynchronous write protection */
#define FP_PAGE_IS_WRITTEN (1u << 1)   /* no userfaultfd write protection */
#define FP_PAGE_IS_FILE (1u << 2)
#define FP_PAGE_IS_PRESENT (1u << 3)
#define FP_PAGE_IS_SWAPPED (1u << 4)
#define FP_PAGE_IS_PFNZERO (1u << 5)

/* Called for each matching range, in address order; nonzero stops. */
typedef int (*fp_pm_range_fn)(void *arg, uint64_t start, uint64_t end);

/* /proc/PID/pagemap opened for reading (close-on-exec), or -1 with err. */
int fp_pagemap_open(pid_t pid, fp_error *err);

/* Scans [start, end) of an open pagemap with the category masks of *masks
 * (its other fields are set here), vec_len ranges per call. 1: done; 0: the
 * kernel has no PAGEMAP_SCAN; -1: errno, or what fn returned. */
int fp_pagemap_scan(int fd, uint64_t start, uint64_t end, const struct fp_pm_scan_arg *masks,
		    struct fp_page_region *vec, size_t vec_len, fp_pm_range_fn fn, void *arg);
/* The same, fn told each range's categories (those in return_mask). */
typedef int (*fp_pm_region_fn)(void *arg, const struct fp_page_region *r);
int fp_pagemap_scan_regions(int fd, uint64_t start, uint64_t end, const struct fp_pm_scan_arg *masks,
			    struct fp_page_region *vec, size_t vec_len, fp_pm_region_fn fn, void *arg);

#endif
