/* A session's full restore into a pid namespace of its own, for when the
 * image's pids cannot all be had in the helper's (session_pidns.c says
 * why this makes the restore and its roll-back immune to taken pids). */
#ifndef FP_SESSION_PIDNS_H
#define FP_SESSION_PIDNS_H

#include <stdbool.h>
#include <sys/types.h>

#include "fp_error.h"
#include "restore/restore.h"
#include "session/session_store.h"

/* A session's restore of dir: the image's pids exactly, the root a child of
 * this helper, the terminal's foreground back to it. */
/* checked: this helper hashed dir moments ago (fp_restore_check_ex, or
 * it wrote it), so the restore does not hash it again. */
int fp_session_restore_exact(const char *dir, const char *log, bool checked, struct fp_restore_result *r,
			     fp_error *err);

/* True when this helper is pid 1 of a pid namespace of its own (a branch,
 * or a session moved by fp_session_pidns_restore): nothing outside the
 * session allocates pids there, so a freed pid cannot be taken. */
bool fp_session_in_own_pidns(void);

/* True when this process may create a pid namespace (CAP_SYS_ADMIN). */
bool fp_session_pidns_allowed(void);

enum fp_pidns_outcome {
	FP_PIDNS_FAILED = -1,   /* nothing restored, nothing left; err says why */
	FP_PIDNS_HANDED_OVER = 0, /* in the old helper: the new one serves now */
	FP_PIDNS_NEW_HELPER = 1,  /* in the new helper: r is the restored root */
};

/* Forks a new helper as pid 1 of a new pid and mount namespace (its own
 * /proc), which restores dir there with the image's exact pids, as its
 * child. The new helper is a copy of this one (session, workspace,
 * terminal, control socket) and goes on serving the session; it returns
 * FP_PIDNS_NEW_HELPER with r->pid the root's pid inside, r->ns_pid the
 * same, info naming it as the helper (by its pid outside), and the saved
 * session recording the target's pid outside. This process gets
 * FP_PIDNS_HANDED_OVER with *new_helper and r->pid as seen from here, or
 * FP_PIDNS_FAILED. */
enum fp_pidns_outcome fp_session_pidns_restore(struct fp_session_info *info, const char *dir, const char *log,
					       struct fp_restore_result *r, pid_t *new_helper, fp_error *err);

/* A child of this helper as the namespace the session came from sees it,
 * in a helper moved by fp_session_pidns_restore; pid itself elsewhere. */
pid_t fp_session_pidns_outer(pid_t pid);

/* The old helper after a hand-over: closes everything it held (the client
 * and the socket are the new helper's now) and ends. A foreground session's
 * helper is the user's `forkpoint run`: it waits for the new helper, passes
 * it the signals it gets, and exits as it does. Never returns. */
__attribute__((noreturn)) void fp_session_pidns_relay(pid_t new_helper, bool foreground);

/* fork() into new pid and mount namespaces: the child is pid 1 there
 * (0 returned in it), the parent gets its pid outside, or -1 (errno). */
long fp_fork_new_pidns(void);

/* In the child of fp_fork_new_pidns: its pid and start time as the
 * parent's namespace sees them, an fd on that namespace's /proc, and then
 * a /proc of its own (mounts made after it stay in its mount namespace).
 * what names the namespace in errors. */
int fp_pidns_own_proc(pid_t *self, unsigned long long *start, int *outer_proc_fd, const char *what, fp_error *err);

/* For a helper that is pid 1 of its own pid namespace (a branch's, or a
 * session's that moved): the pid outside of its child whose pid inside is
 * inner, read through proc (an fd on the outside's /proc) where the helper
 * is self; 0 if none. */
pid_t fp_pidns_child_outside(int proc, pid_t self, pid_t inner);

#endif
