/* A snapshot's tracked ranges that lost their registration (track_lost.c),
 * out of the tracking: before the stop they are tracked anew as new
 * mappings (dump_incremental.c: track_new_vmas), at the stop they are read
 * in full. */
#include "dump/dump_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

int dump_incr_drop_lost(struct dump_ctx *c, struct dump_precopy *pc, struct fp_range **out, size_t *nlost, fp_error *err)
{
	struct fp_range *lost = NULL;
	*nlost = 0;
	int rc = fp_track_lost_of(pc->pid, pc->reg, pc->nreg, &lost, nlost, err);
	uint64_t bytes = 0;
	for (size_t i = 0; i < *nlost && !rc; i++) {
		bytes += lost[i].end - lost[i].start;
		if (fp_ranges_cut(&pc->reg, &pc->nreg, lost[i].start, lost[i].end) ||
		    fp_ranges_cut(&pc->cov, &pc->ncov, lost[i].start, lost[i].end))
			rc = fp_fail(err, ENOMEM, "out of memory");
	}
	if (!rc && *nlost)
		dlog(c, "%d: %zu tracked range(s), %" PRIu64 " KiB, no longer registered for write tracking (a mapping "
			"put in their place, or merged by an mremap): their pages are not taken from the parent or the "
			"pre-copy",
		     pc->pid, *nlost, bytes >> 10);
	if (out && !rc)
		*out = lost;
	else
		free(lost);
	return rc;
}
