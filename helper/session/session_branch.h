/* Branches: new live sessions started from a snapshot of another session
 * while that one keeps running (`forkpoint branch`, libforkpoint's branch).
 *
 * Each branch is a full session with its own helper, name and directory.
 * The helper is pid 1 of a new pid namespace (so the image's pids are free,
 * and snapshots taken inside the branch record the pids the branch's
 * processes see: they restore again inside it) and lives in a new mount
 * namespace with its own /proc and, for a session with a workspace, its own
 * overlay: a fresh upper layer over the snapshot's layer chain
 * (overlay/workspace.h, fp_ws_create_branch). Nothing a branch writes, in
 * memory or in files, is seen by another branch or by the original.
 *
 * $SESSION/branch records where a branch came from: "parent=NAME\nsnap=SNAP\n". */
#ifndef FP_SESSION_BRANCH_H
#define FP_SESSION_BRANCH_H

#include <stddef.h>
#include <sys/types.h>

#include "fp_error.h"
#include "session_store.h"

#define FP_BRANCH_MAX 64

struct fp_branch_opts {
	const char *session;   /* the session branched from (may have ended) */
	const char *snap;      /* one of its snapshots */
	const char *name;      /* NULL: SESSION-bN (first free N); with count > 1: NAME-1..NAME-K */
	int count;             /* K branches, 1..FP_BRANCH_MAX (0 means 1) */
	int timeout_ms;        /* per branch, to running; 0: 120 s */
};

struct fp_branch_info {
	char name[FP_SESSION_NAME_MAX + 1];
	pid_t pid;             /* the restored root as the caller sees it (outside the namespace) */
	pid_t ns_pid;          /* the same inside the branch (the snapshot's pid) */
	pid_t helper_pid;
	double ms;             /* from the call to running */
	double restore_ms;     /* the restore alone */
	int engine_criu;       /* restored by CRIU (fallback) instead of natively */
	int hot;               /* forked from SNAP's frozen copy (a hot snapshot) */
	double fork_ms;        /* hot: the fork in the original's helper (part of ms, not of restore_ms) */
	int spare;             /* hot: forked ahead, by a spare (fork_ms was before the call) */
	char hot_why[256];     /* SNAP is hot but the branch was restored from disk: why */
};

/* Starts o->count branches of SNAP, all or none: if one fails, the others
 * are ended and err says why. out has room for count entries. Root only.
 * Each branch's helper is created as a child of the calling process (the
 * CLI exits at once, so they go to init); a long-lived caller should reap
 * them (SIGCHLD) when they end. Returns once every branch runs. The
 * helpers are forked from the caller and go on running its code: call this
 * from a single-threaded process (as the CLI is), or a lock that another of
 * its threads holds at that instant (malloc's) stays held in them. */
int fp_session_branch(const struct fp_branch_opts *o, struct fp_branch_info *out, fp_error *err);

/* Where session directory dir was branched from: 1 and parent/snap filled
 * if it is a branch, 0 if not. */
int fp_session_branch_of(const char *dir, char *parent, size_t plen, char *snap, size_t slen);

#endif
