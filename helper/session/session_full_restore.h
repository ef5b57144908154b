/* A session's full restore: the live processes are saved and killed, and
 * the snapshot's are made in their place, as children of the helper.
 *
 * It ends in the snapshot's state or in the one before, never in neither:
 * the snapshot is checked first (with the session running untouched), the
 * saved state is proved restorable before the kill, and the image's pids,
 * which another process of the machine may take between the kill and the
 * restore, are not needed to be free here: when they cannot all be had,
 * the session moves into a pid namespace of its own (session_pidns.h),
 * where they are free by construction. */
#ifndef FP_SESSION_FULL_RESTORE_H
#define FP_SESSION_FULL_RESTORE_H

#include <stdbool.h>

#include "session/session_cmds.h"

/* Restores snapshot snap (its directory dir) of the session and answers
 * client c ("ok\npid=..." or "error N\nMESSAGE"). inplace_why says why the
 * rollback in place was not used. keep_live false: the live processes are
 * no state to keep (a rollback in place failed half way without saving
 * what it overwrote, rollback_inplace.h): they are not saved, and if SNAP
 * cannot be restored the session ends with an error. */
void fp_session_full_restore(struct fp_session_ctx *ctx, int c, const char *snap, const char *dir,
			     const char *inplace_why, bool keep_live);

#endif
