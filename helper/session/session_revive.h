/* Restoring a session whose program has ended (or whose helper is gone):
 * a new helper starts in the background and restores the snapshot as its
 * child, in the session's workspace (mounted anew at the snapshot's files)
 * and, for a shell session, on a new terminal whose master it holds. The
 * session then runs again under its name, as after `run`. */
#ifndef FP_SESSION_REVIVE_H
#define FP_SESSION_REVIVE_H

#include "fp_error.h"
#include "session_store.h"

struct fp_revive_result {
	int pid;           /* the restored root */
	char workdir[PATH_MAX];
};

/* Refuses a session whose helper still runs (restore it in place) or that
 * left processes behind (`cleanup --force` or `stop` first). */
int fp_session_revive(const char *name, const char *snap, struct fp_revive_result *res, fp_error *err);

#endif
