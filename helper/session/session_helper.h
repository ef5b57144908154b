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
	/* A built image (forkpoint build): the target is chrooted into root,
	 * which holds workdir, starts in cwd (a path inside root) and gets env
	 * instead of our environment. The shim is not loaded (it is not in
	 * the image). */
	const char *root;
	const char *cwd;
	char *const *env;
};

struct fp_run_result {
	char name[FP_SESSION_NAME_MAX + 1];
	char workdir[PATH_MAX];  /* the --workdir DIR as resolved, "" if none */
	int target_pid;
	int wait_status;   /* foreground only: the target's wait status */
	char notice[512];  /* something the user should know (e.g. static binary) */
};

/* Foreground: returns when the target has ended. Detached: returns in the
 * calling process as soon as the target runs; the helper lives on. Exit codes
 * in err: 127 command not found, 126 not executable. */
int fp_run_session(const struct fp_run_opts *o, struct fp_run_result *res, fp_error *err);

/* A detached session's stdin: the named pipe SESSION_DIR/stdin, made if
 * missing and held open read-write by the helper (returned fd), so the
 * program waits for input (`echo CMD > .../stdin`) instead of reading EOF. */
int fp_session_stdin_hold(const struct fp_session_info *info, fp_error *err);

/* Starts a session helper in the background (its own session, stdio on
 * /dev/null): body runs in it, calls fp_session_ready(ready_fd, target) once
 * the target runs, then serves; a body that returns -1 before that fails
 * this call with its error. *target gets the target's pid. */
int fp_session_spawn(int (*body)(void *arg, int ready_fd, fp_error *err), void *arg, int *target,
		     fp_error *err);
void fp_session_ready(int ready_fd, pid_t target);

/* The helper's first steps, in the process that will be it: subreaper,
 * control socket (returned), its pid and start in info, the session mark
 * in its environment. */
int fp_session_helper_begin(struct fp_session_info *info, fp_error *err);

struct fp_ws;
struct fp_shell;
/* The helper's life after the target runs: serves requests until the
 * session ends, kills what is left of its tree, closes the shell's
 * terminal, the workspace and the socket, and records the end. Returns the
 * target's wait status. */
int fp_session_serve(struct fp_session_info *info, pid_t target, int lsock, struct fp_ws *ws,
		     struct fp_shell *sh);
/* The end of a session (part of fp_session_serve): marked exited, its
 * directory removed when it keeps nothing (no snapshots, no output log, no
 * layer a branch stands on). */
void fp_session_finish(struct fp_session_info *info, int status);

/* Resolves a command like execvp would; fills `path`. */
int fp_resolve_command(const char *cmd, char *path, size_t len, fp_error *err);

#endif
