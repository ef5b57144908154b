#include "ptrace/pagemap_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int fp_pagemap_scan_regions(int fd, uint64_t start, uint64_t end, const struct fp_pm_scan_arg *masks,
			    struct fp_page_region *vec, size_t vec_len, fp_pm_region_fn fn, void *arg)
{
	while (start < end) {
		struct fp_pm_scan_arg a = *masks;
		a.size = sizeof(a);
		a.start = start;
		a.end = end;
		a.vec = (uint64_t)(uintptr_t)vec;
		a.vec_len = vec_len;
		long n = ioctl(fd, FP_PAGEMAP_SCAN, &a);
		if (n < 0)
			return errno == ENOTTY || errno == EINVAL ? 0 : -1;
		for (long i = 0; i < n; i++)
			if (fn(arg, &vec[i]))
				return -1;
		if ((size_t)n < vec_len)
			break; /* complete (walk_end is unreliable here, machine-limits §5) */
		uint64_t next = vec[n - 1].end;
		start = a.walk_end > next ? a.walk_end : next;
	}
	return 1;
}

struct by_range {
	fp_pm_range_fn fn;
	void *arg;
};

static int by_range_cb(void *arg, const struct fp_page_region *r)
{
	struct by_range *b = arg;
	return b->fn(b->arg, r->start, r->end);
}

int fp_pagemap_scan(int fd, uint64_t start, uint64_t end, const struct fp_pm_scan_arg *masks,
		    struct fp_page_region *vec, size_t vec_len, fp_pm_range_fn fn, void *arg)
{
	struct by_range b = { fn, arg };
	return fp_pagemap_scan_regions(fd, start, end, masks, vec, vec_len, by_range_cb, &b);
}

int fp_pagemap_open(pid_t pid, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	return fd;
}
