/* Finding a CRIU that works on this machine.
 *
 * Distributions ship CRIU versions that fail on recent kernels (Debian 12's
 * 3.17 cannot even initialise on 6.x vDSO layouts; 4.1.1 passes `criu check`
 * but hangs in dump where hardware breakpoints do not trap), so a binary is
 * accepted only if `criu --version` says 4.x or later, `criu check` exits 0
 * AND it dumps and restores a test process in time (criu_probe.h).
 * `make setup` (scripts/setup.sh) provisions one under /opt/forkpoint/criu.
 *
 * Candidates, in order:
 *   1. $FORKPOINT_CRIU, when set. It is then the only candidate: an explicit
 *      choice that does not work is an error, never silently replaced.
 *   2. $FORKPOINT_CRIU_PREFIX/bin/criu (default /opt/forkpoint/criu/bin/criu).
 *   3. `criu` on $PATH.
 *
 * Those tests take a while, so the verdict (either way) is cached in
 * $FORKPOINT_HOME/criu-check.cache (if that directory exists) or else
 * /tmp/forkpoint-criu-check-<uid>, keyed by path, inode, size, mtime and boot
 * id: replacing the binary or rebooting (perhaps into another kernel) re-runs
 * the checks. */
#ifndef FP_CRIU_H
#define FP_CRIU_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "fp_error.h"

#define FP_CRIU_DEFAULT_PREFIX "/opt/forkpoint/criu"
#define FP_CRIU_MIN_MAJOR 4

/* One binary forkpoint would consider, and its verdict. */
typedef struct fp_criu_candidate {
	char path[PATH_MAX];
	const char *source; /* "FORKPOINT_CRIU", "setup prefix" or "PATH" */
	int exists;
	int usable;
	int major, minor, patch; /* 0.0.0 when unknown */
	int cached;              /* the verdict came from the cache */
	char why[700];           /* why it was refused */
} fp_criu_candidate;

#define FP_CRIU_MAX_CANDIDATES 2

/* Decides the candidates in order into c (at most max) and returns how many
 * it filled. It stops at the first usable one unless all is set; fresh
 * re-tests each binary instead of trusting a cached verdict. */
int fp_criu_survey(fp_criu_candidate *c, int max, bool all, bool fresh);

/* Puts the path of a working CRIU into path. On failure the message lists
 * every candidate with the reason it was refused, and how to get a good one. */
int fp_criu_find(char *path, size_t len, fp_error *err);

/* Runs `path --version` and parses "Version: X.Y[.Z]" (a missing part is 0).
 * Any of the out pointers may be NULL. */
int fp_criu_version(const char *path, int *major, int *minor, int *patch, fp_error *err);

#endif
