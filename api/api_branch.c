/* forkpoint_session_branch over the session library's branch
 * (session_branch.h, on the `branch` line of work). Where this tree has no
 * session_branch.h yet, the call says so (FORKPOINT_EUNAVAILABLE); where it
 * has one, it is used, from whichever folder it is in: helper/ as written,
 * or session/ once moved. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#if __has_include("session/session_branch.h")
#include "session/session_branch.h"
#define API_HAVE_BRANCH 1
#elif __has_include("helper/session_branch.h")
#include "session/session_branch.h"
#define API_HAVE_BRANCH 1
#endif

#ifdef API_HAVE_BRANCH
_Static_assert(FP_BRANCH_MAX <= API_START_MAX, "api_started holds every branch");

static int start_branches(void *arg, struct api_started *st, fp_error *err)
{
	const struct fp_branch_opts *o = arg;
	struct fp_branch_info *b = calloc((size_t)o->count, sizeof(*b));
	if (!b)
		return fp_fail(err, ENOMEM, "out of memory");
	int rc = fp_session_branch(o, b, err);
	if (rc == 0) {
		st->n = o->count;
		for (int i = 0; i < o->count; i++)
			snprintf(st->names[i], sizeof(st->names[i]), "%s", b[i].name);
	}
	free(b);
	return rc;
}
#endif

int forkpoint_session_branch(forkpoint_session *s, const char *snap, int n, forkpoint_session **out,
			     forkpoint_error *err)
{
	if (!s || !snap || !out || n < 1 || n > API_START_MAX)
		return api_fail(err, FORKPOINT_EINVAL, 0,
				"forkpoint_session_branch needs a session, a snapshot, 1 to %d branches and room for them",
				API_START_MAX);
#ifdef API_HAVE_BRANCH
	struct fp_branch_opts o = { .session = s->info.name, .snap = snap, .count = n };
	struct api_started st;
	if (api_start(start_branches, &o, &st, err) < 0)
		return -1;
	return api_open_all(&st, out, err);
#else
	return api_fail(err, FORKPOINT_EUNAVAILABLE, ENOSYS,
			"branch is not available in this build of libforkpoint %s (session '%s'); "
			"restore the snapshot in turn instead (forkpoint_session_restore)",
			FORKPOINT_VERSION, s->info.name);
#endif
}
