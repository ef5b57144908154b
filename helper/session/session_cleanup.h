/* forkpoint cleanup: a session goes away completely, its processes, its
 * mounts and its directory (snapshots included), also when it is half dead:
 * its helper killed (its processes scattered to other parents), mounts
 * pinned, processes that ignore signals. */
#ifndef FP_SESSION_CLEANUP_H
#define FP_SESSION_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fp_error.h"
#include "session_store.h"

/* The session's live processes (zombies hold nothing), wherever they are
 * now: those whose environment carries its FP_SESSION_MARK, those in its
 * private mount namespace (while one of them is in it too), and their
 * descendants. The caller itself is never listed. Returns the count (at
 * most cap). */
size_t fp_session_find_procs(const struct fp_session_info *info, pid_t *out, size_t cap);

struct fp_cleanup_result {
	int killed;       /* processes killed here (not by the helper) */
	int unmounted;    /* mounts detached here */
	bool helper_killed; /* the helper did not answer and was SIGKILLed */
};

/* Without force: a running session is stopped through its helper; a dead
 * one with processes or mounts left is refused, naming them. With force:
 * an unresponsive helper is killed, every process of the session is
 * SIGKILLed, every mount that names the session directory (or pins its
 * mount namespace) is detached. Then the directory is removed. When some
 * process or mount cannot be got rid of, the error names it (pid, state,
 * kernel wait channel; mount point). */
int fp_session_cleanup(const char *name, bool force, struct fp_cleanup_result *res, fp_error *err);

#endif
