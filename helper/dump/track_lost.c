/* Where the write tracking's evidence is void.
 *
 * The tracking reads "still protected" as "unchanged since the protection"
 * (dirty_tracker.h). That holds only while the page's mapping stays
 * registered with our userfaultfd: in a mapping that is not registered, a
 * write does not clear the protection bit (the fault takes the ordinary
 * path and keeps the bit), so a written page looks unchanged.
 *
 * The kernel takes a mapping out of the registration without clearing its
 * pages' bits in at least one way that any program can trigger: mremap of a
 * registered mapping so that it lands beside another of ours with which it
 * can merge (the same anon_vma and contiguous offsets: a piece moved away
 * and back). Without UFFD_FEATURE_EVENT_REMAP the kernel drops the
 * registration of the moved mapping, and, merged, that is also the
 * neighbour's, whose pages keep their bits (checked on 6.18: every page of
 * the neighbour written, none reported written). ct_churn hit it about once
 * in fifty runs of e2e/snap_incr_race, as pages of a snapshot taken from a
 * stale copy.
 *
 * So every user of the bits checks first, with the process stopped where
 * it decides (the snapshot's stop, the rollback's diff), that the tracked
 * ranges are still registered: PAGEMAP_SCAN reports PAGE_IS_WPALLOWED per
 * mapping, and the scan below skips every mapping that has it without
 * walking its page tables, so the check costs one call per range. A range
 * found lost is read in full and tracked anew (registered and protected as
 * a new mapping, its parent's pages not trusted). And nothing registers a
 * tracked range again on the belief that it is still ours: that would make
 * the stale bits look valid (dump_incremental.c, dump_incr_shim.c,
 * dump_incr_precopy.c). */
#include "dump/dirty_tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"

struct lost_sink {
	struct fp_range **out;
	size_t *n, cap;
};

static int lost_add(void *arg, uint64_t s, uint64_t e)
{
	struct lost_sink *k = arg;
	return fp_ranges_push(k->out, k->n, &k->cap, s, e) ? -1 : 0;
}

/* Tracked ranges closer than this are scanned in one call, the gap with
 * them: a process with 10,000 small mappings has as many ranges, and a
 * call costs about a microsecond, where walking a small gap's unregistered
 * mappings costs less. */
#define GAP_JOIN (1ull << 20)

int fp_track_lost(int pagemap_fd, const struct fp_range *reg, size_t nreg, struct fp_range **out, size_t *nout)
{
	enum { VEC = 64 };
	struct fp_page_region vec[VEC];
	struct fp_pm_scan_arg m = { 0 };
	/* the pages (present or not) of mappings without the registration */
	m.category_inverted = FP_PAGE_IS_WPALLOWED;
	m.category_mask = FP_PAGE_IS_WPALLOWED;
	m.return_mask = FP_PAGE_IS_WPALLOWED;
	struct fp_range *found = NULL;
	size_t nfound = 0;
	struct lost_sink k = { &found, &nfound, 0 };
	int rc = 0;
	for (size_t i = 0; i < nreg && !rc;) {
		size_t j = i + 1;
		while (j < nreg && reg[j].start - reg[j - 1].end <= GAP_JOIN)
			j++;
		int r = fp_pagemap_scan(pagemap_fd, reg[i].start, reg[j - 1].end, &m, vec, VEC, lost_add, &k);
		if (r == 0)
			errno = ENOTSUP;
		if (r <= 0)
			rc = -1;
		i = j;
	}
	/* what was found in the gaps is not ours to judge: only reg's part */
	size_t cap = *nout;
	for (size_t i = 0, j = 0; !rc && i < nfound && j < nreg;) {
		uint64_t s = found[i].start > reg[j].start ? found[i].start : reg[j].start;
		uint64_t e = found[i].end < reg[j].end ? found[i].end : reg[j].end;
		if (s < e && fp_ranges_push(out, nout, &cap, s, e))
			rc = -1;
		if (found[i].end < reg[j].end)
			i++;
		else
			j++;
	}
	free(found);
	return rc;
}

int fp_track_lost_of(pid_t pid, const struct fp_range *reg, size_t nreg, struct fp_range **out, size_t *nout,
		     fp_error *err)
{
	int fd = fp_pagemap_open(pid, err);
	if (fd < 0)
		return -1;
	int rc = fp_track_lost(fd, reg, nreg, out, nout);
	int e = errno;
	close(fd);
	if (rc)
		return fp_fail(err, e, "PAGEMAP_SCAN of %d for tracked mappings that lost their registration: %s", (int)pid,
			       strerror(e));
	return 0;
}
