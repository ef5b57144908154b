/* A snapshot's tracked ranges that lost their registration (track_lost.c),
 * out of the tracking: before the stop they are tracked anew as new
 * mappings (dump_incremental.c: track_new_vmas), at the stop they are read
 * in full. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Cuts from pc->reg the tracked ranges whose mapping is not registered
 * any more (track_lost.c); *nlost says how many. Used before the stop,
 * where such a range is tracked anew, and at the stop, where it is read in
 * full. *out (may be NULL) gets them. */
int dump_incr_drop_lost(struct dump_ctx *c, struct dump_precopy *pc, struct fp_range **out, size_t *nlost, fp_error *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pc->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	struct fp_range *lost = NULL;
	*nlost = 0;
	int rc = 0;
	if (fp_track_lost(fd, pc->reg, pc->nreg, &lost, nlost))
		rc = fp_fail(err, errno, "PAGEMAP_SCAN of %d for tracked mappings that lost their registration: %s", pc->pid,
			     strerror(errno));
	close(fd);
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
