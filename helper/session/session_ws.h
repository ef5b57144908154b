/* The process side of a session's workspace (overlay/workspace.h): moving
 * the stopped processes' fds, cwd and shared writable mappings from the old
 * overlay mount to the new one when a snapshot freezes the upper layer. */
#ifndef FP_SESSION_WS_H
#define FP_SESSION_WS_H

#include <stddef.h>

#include "fp_error.h"
#include "ptrace/ptrace.h"
#include "overlay/workspace.h"

/* Freezes the workspace as snapshot `snap`. Every process in procs must be
 * seized and stopped (the caller holds them for the memory dump too). On
 * failure the workspace, its mounts and every process are as before. */
int fp_session_ws_freeze(struct fp_ws *ws, const char *snap, fp_pt_proc **procs, size_t nprocs,
			 double *ms, fp_error *err);

#endif
