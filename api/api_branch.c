/* forkpoint_session_branch: n branches of a snapshot, a handle on each
 * (api_session_with.c starts them). */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>

int forkpoint_session_branch(forkpoint_session *s, const char *snap, int n, forkpoint_session **out,
			     forkpoint_error *err)
{
	if (!s || !snap || !out || n < 1 || n > FORKPOINT_BRANCH_MAX)
		return api_fail(err, FORKPOINT_EINVAL, 0,
				"forkpoint_session_branch needs a session, a snapshot, 1 to %d branches and room for them",
				FORKPOINT_BRANCH_MAX);
	struct api_started *st = malloc(sizeof(*st));
	if (!st)
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	int rc = api_branch_start(s->info.name, snap, NULL, n, st, err);
	if (rc == 0)
		rc = api_open_all(st, out, err);
	free(st);
	return rc;
}
