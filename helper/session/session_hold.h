/* A failed session restore never costs the session: what can be known
 * before the live processes are stopped is checked first (session_hold.c
 * says how the rest is made impossible). */
#ifndef FP_SESSION_HOLD_H
#define FP_SESSION_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "fp_error.h"

/* Checks, with the session running untouched, that a same-pid restore of
 * snapdir can be made somewhere: permission to choose pids (else -1), and
 * *here set when every pid and tid of the snapshot is free or held by
 * this helper's own descendants (else why says which is not, and the
 * restore goes to a new pid namespace: -1 if this helper may not make one). */
int fp_session_restore_preflight(const char *snapdir, bool *here, char *why, size_t len, fp_error *err);

/* The same pid check alone, at any time: true when all are free or ours,
 * else false with why (of len bytes, may be NULL) naming the first taken. */
bool fp_session_pids_free(const char *snapdir, char *why, size_t len);

/* When FORKPOINT_FAULT names point (tests only): creates DIR/POINT.paused
 * and waits (at most 60 s) until DIR/POINT.go exists, so a test can act at
 * this exact step. */
void fp_session_fault_pause(const char *point, const char *dir);

/* -1 with err set when FORKPOINT_FAULT (comma-separated) names point: a
 * test asks this step to fail. */
int fp_session_fault(const char *point, fp_error *err);


/* The save's while_stopped hook: fails while the tree is held when
 * FORKPOINT_FAULT names session-save. */
struct fp_pt_proc;
int fp_session_save_fault(void *arg, struct fp_pt_proc **procs, size_t n, fp_error *err);

/* The save's before_kill hook: the saved image at dir must decode, verify
 * and be restorable here, or the held processes are let go. */
int fp_session_save_check(void *arg, const char *dir, fp_error *err);

#endif
