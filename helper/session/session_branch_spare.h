/* Spare branches of a hot snapshot: a branch's helper made before anyone
 * asks for the branch, with its pid and mount namespaces, its /proc and the
 * snapshot's process already forked from the frozen copy (the page-table
 * copy that costs most of a hot branch), waiting. `branch` then only names
 * it, mounts the workspace and restores what is not memory.
 *
 * A spare listens on SESSION_DIR/spare.SNAP.K.sock (K = 1..FP_SPARE_MAX).
 * The caller that takes it sends "take NAME T0 TIMEOUT_MS" (the name it
 * reserved), gets "taken PID" at once, then the branch's report. A spare
 * ends by itself when the snapshot stops being hot (rm, --hot-limit) or
 * the session's helper ends. Each costs the fork's page tables (about
 * 2 MiB per GiB of the process) and a helper process; no page is copied. */
#ifndef FP_SESSION_BRANCH_SPARE_H
#define FP_SESSION_BRANCH_SPARE_H

#include <sys/types.h>

#include "fp_error.h"
#include "session/session_store.h"

#define FP_SPARE_MAX 4

/* Makes spares of from's hot SNAP until `want` of them exist (or are being
 * made): each is a process of its own, started as a child of the caller
 * and not waited for. Root, and a session that is not itself a branch. */
void fp_branch_spare_spawn(const struct fp_session_info *from, const char *snap, int want);

/* Takes a ready spare of SNAP, skipping the slots in *used (a bit mask,
 * updated): 1 with *fd the connection that the branch's report comes on
 * and *pid the spare's helper, 0 if none is free. */
int fp_branch_spare_take(const struct fp_session_info *from, const char *snap, const char *name, double t0,
			 int timeout_ms, unsigned *used, int *fd, pid_t *pid);

#endif
