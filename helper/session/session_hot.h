/* Hot snapshots: a session helper keeps, for the snapshots taken with
 * `snap --hot`, a stopped copy-on-write copy of every process (the dump's
 * frozen copies, dump/dump_hot.c), so that a branch can be forked from
 * memory instead of restored from disk. The snapshot on disk is still
 * written and stays the durable form; the copy only makes it fast.
 *
 * The copies cost memory (every page either side writes afterwards is
 * duplicated): a session keeps at most `limit` hot snapshots (snap
 * --hot-limit N, default FP_HOT_DEFAULT_LIMIT), the oldest is released
 * first. `rm` of a hot snapshot releases its copies, and they die with the
 * helper (PTRACE_O_EXITKILL): stop and cleanup leave none.
 *
 * $SESSION/hot lists the hot snapshots of a running helper, one a line:
 * "NAME PROCESS:COPY ...", for `tree` and for the branch that forks them.
 * Only the helper writes it. */
#ifndef FP_SESSION_HOT_H
#define FP_SESSION_HOT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fp_error.h"
#include "dump/dump.h"

#define FP_HOT_DEFAULT_LIMIT 2
#define FP_HOT_MAX 8

/* Takes over h's copies as snapshot snap's, releasing the oldest beyond
 * limit (1..FP_HOT_MAX). */
void fp_hot_keep(const char *session_dir, const char *snap, const struct fp_dump_hot *h, int limit);

/* Kills snap's copies, if it is hot. Returns whether it was. */
bool fp_hot_release(const char *session_dir, const char *snap);
void fp_hot_release_all(const char *session_dir);

/* The helper's copies of snap, or NULL. */
const struct fp_dump_hot *fp_hot_find(const char *snap);

/* From outside the helper: whether snap is listed hot in session_dir/hot. */
bool fp_hot_listed(const char *session_dir, const char *snap);

#endif
