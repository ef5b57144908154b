/* Finding a CRIU that works on this machine.
 *
 * Distributions ship CRIU versions that fail on recent kernels (Debian 12's
 * 3.17 cannot even initialise on 6.x vDSO layouts), so a binary is accepted
 * only if `criu --version` says 4.x or later AND `criu check` exits 0.
 * `make setup` (scripts/setup.sh) provisions one under /opt/forkpoint/criu.
 *
 * Candidates, in order:
 *   1. $FORKPOINT_CRIU, when set. It is then the only candidate: an explicit
 *      choice that does not work is an error, never silently replaced.
 *   2. $FORKPOINT_CRIU_PREFIX/bin/criu (default /opt/forkpoint/criu/bin/criu).
 *   3. `criu` on $PATH.
 *
 * `criu check` takes a while, so a positive verdict is cached in
 * $FORKPOINT_HOME/criu-check.cache (if that directory exists) or else
 * /tmp/forkpoint-criu-check-<uid>, keyed by path, inode, size, mtime and boot
 * id: replacing the binary or rebooting (perhaps into another kernel) re-runs
 * the checks. */
#ifndef FP_CRIU_H
#define FP_CRIU_H

#include <stddef.h>

#include "fp_error.h"

#define FP_CRIU_DEFAULT_PREFIX "/opt/forkpoint/criu"
#define FP_CRIU_MIN_MAJOR 4

/* Puts the path of a working CRIU into path. On failure the message lists
 * every candidate with the reason it was refused, and how to get a good one. */
int fp_criu_find(char *path, size_t len, fp_error *err);

/* Runs `path --version` and parses "Version: X.Y[.Z]" (a missing part is 0).
 * Any of the out pointers may be NULL. */
int fp_criu_version(const char *path, int *major, int *minor, int *patch, fp_error *err);

#endif
