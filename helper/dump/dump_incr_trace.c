/* Verbose logs (FP_DUMP_VERBOSE=1 for a session's snapshots): each list an
 * incremental stop's decision is made from (dump_incr_final), so that a
 * page found wrong in an image can be traced to the list that put it
 * there. */
#include "dump/dump_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static void dlogv_ranges(struct dump_ctx *c, pid_t pid, const char *what, const struct fp_range *r, size_t n)
{
	if (!c->o->verbose)
		return;
	char line[1024];
	size_t o = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || o > sizeof(line) - 40) {
			dlogv(c, "%d: %s (%zu):%s", pid, what, n, o ? line : " none");
			o = 0;
			if (i == n)
				break;
		}
		o += (size_t)snprintf(line + o, sizeof(line) - o, " %" PRIx64 "-%" PRIx64, r[i].start, r[i].end);
	}
}

static void dlogv_mem(struct dump_ctx *c, pid_t pid, const char *what, const fp_mem_range *m, size_t n)
{
	if (!c->o->verbose)
		return;
	struct fp_range *r = malloc((n ? n : 1) * sizeof(*r));
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		r[i] = (struct fp_range){ m[i].addr, m[i].addr + m[i].len };
	dlogv_ranges(c, pid, what, r, n);
	free(r);
}

void dump_incr_trace(struct dump_ctx *c, pid_t pid, const struct fp_range *const lists[5], const size_t n[5],
		     const fp_mem_range *copied, size_t ncopied, const fp_mem_range *taken, size_t ntaken)
{
	static const char *const what[5] = { "tracked", "lost their registration", "written at the stop",
					     "protected by the pre-copy", "left in the parent" };
	for (int i = 0; i < 5; i++)
		dlogv_ranges(c, pid, what[i], lists[i], n[i]);
	dlogv_mem(c, pid, "copied by the pre-copy", copied, ncopied);
	dlogv_mem(c, pid, "taken from the pre-copy", taken, ntaken);
}
