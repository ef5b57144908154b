/* Snapshots that other snapshots use as their parent (incremental
 * snapshots, dump/dump_incremental.c): removing one must keep the others
 * restorable.
 *
 * `forkpoint rm` of such a snapshot keeps its directory, hidden from every
 * listing as snapshots/.kept-NAME-N, and points its children's `parent`
 * links there (each link replaced atomically); `forkpoint gc` deletes a
 * kept directory once no snapshot (and no other kept directory) names it
 * as its parent. */
#ifndef FP_SNAP_CHAIN_H
#define FP_SNAP_CHAIN_H

#include <stddef.h>

#include "fp_error.h"

/* Moves snapshot dir (in session_dir/snapshots) out of the way: to a
 * kept directory when a snapshot's parent is dir (*kept true), else to a
 * hidden name to be deleted (*kept false). *gone receives the new path. */
int fp_snap_retire(const char *session_dir, const char *name, char *gone, size_t len, int *kept, fp_error *err);

/* Deletes the kept directories nothing refers to any more. */
int fp_snap_chain_gc(const char *session_dir, unsigned *removed, unsigned *kept, fp_error *err);

#endif
