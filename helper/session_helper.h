/* The session helper: parent of the target, owner of its session directory,
 * server of the control socket. `forkpoint run` becomes one (in the
 * foreground), or starts one in the background with --detach. */
#ifndef FP_SESSION_HELPER_H
#define FP_SESSION_HELPER_H

#include <stddef.h>
#include <sys/types.h>

#include "fp_error.h"
#include "hygiene.h"
#include "session_store.h"

struct fp_run_opts {
	const char *name;                        /* NULL: derived from the command */
	char *const *argv;                       /* the command, argv[0] searched in PATH */
	int detach;
	int shell;                               /* run --shell: bash on a pty, driven by `exec` (argv NULL) */
	const char *workdir;                     /* run in an overlay view of this directory */
	int no_shim;                             /* ptrace-only mode: no LD_PRELOAD shim */
	const struct fp_inherited_signals *sigs; /* the user's signal state, given to the target */
};

struct fp_run_result {
	char name[FP_SESSION_NAME_MAX + 1];
	int target_pid;
	int wait_status;   /* foreground only: the target's wait status */
	char notice[512];  /* something the user should know (e.g. static binary) */
};

/* Foreground: returns when the target has ended. Detached: returns in the
 * calling process as soon as the target runs; the helper lives on. Exit codes
 * in err: 127 command not found, 126 not executable. */
int fp_run_session(const struct fp_run_opts *o, struct fp_run_result *res, fp_error *err);

struct fp_ws;
struct fp_shell;
/* The helper's loop (also a branch's helper, helper/session_branch.c): serves
 * requests until the target ends; returns its wait status. */
int fp_session_serve(struct fp_session_info *info, pid_t target, int detached, int lsock, struct fp_ws *ws,
		     struct fp_shell *sh);
/* After serve: the session is marked exited, its directory removed when it
 * keeps nothing (no snapshots, no output log, no layer a branch stands on). */
void fp_session_finish(struct fp_session_info *info, int status);

/* Resolves a command like execvp would; fills `path`. */
int fp_resolve_command(const char *cmd, char *path, size_t len, fp_error *err);

#endif
