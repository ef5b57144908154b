/* Sessions on disk: $FORKPOINT_HOME/sessions/NAME/, owner-only.
 *   session.meta   key=value lines written atomically by the session helper
 *   control.sock   the helper's unix socket (present while it runs)
 *   output.log     the target's stdout/stderr when detached
 *   snapshots/     snapshots taken by `forkpoint snap` */
#ifndef FP_SESSION_STORE_H
#define FP_SESSION_STORE_H

#include <limits.h>
#include <sys/types.h>

#include "fp_error.h"

#define FP_SESSION_NAME_MAX 64

struct fp_session_info {
	char name[FP_SESSION_NAME_MAX + 1];
	char dir[PATH_MAX];
	pid_t helper_pid;
	unsigned long long helper_start; /* /proc/PID/stat starttime, guards pid reuse */
	pid_t target_pid;
	long long started;               /* unix seconds */
	int detached;
	int shim;                        /* 1 if the target runs under the shim */
	int shell;                       /* run --shell: the target is bash on the helper's pty */
	char state[16];                  /* starting, running, exited */
	int exit_status;                 /* wait status once exited */
	char cwd[PATH_MAX];
	char cmd[1024];                  /* argv joined by spaces, for display */
	char workdir[PATH_MAX];          /* run --workdir DIR (absolute), "" if none */
	unsigned long long mnt_ns;       /* inode of the helper's private mount namespace, 0 if none */
};

/* Every process a session starts carries FP_SESSION_MARK=<session dir> in its
 * environment (restored ones too: it is in their memory), so `cleanup
 * --force` finds them after the helper was killed and they were scattered
 * to other parents. */
#define FP_SESSION_MARK "FORKPOINT_SESSION_DIR"

int fp_session_name_valid(const char *name, fp_error *err);
int fp_sessions_root(char *buf, size_t len, int create, fp_error *err);
int fp_session_dir(const char *name, char *buf, size_t len, fp_error *err);

/* Reserves a new session directory. With name NULL a name is made from
 * `base` (the command's basename) plus a number. A directory left by a helper
 * that is gone (and holding no snapshots) is reclaimed. */
int fp_session_reserve(const char *name, const char *base, struct fp_session_info *info,
		       fp_error *err);

int fp_session_save(const struct fp_session_info *info, fp_error *err);
/* A helper in its own pid namespace (a branch) knows its processes by their
 * inner pids; session.meta is read from outside, so saves translate. */
void fp_session_set_pid_view(pid_t (*view)(pid_t));
int fp_session_load(const char *name, struct fp_session_info *info, fp_error *err);

/* Every session directory, live or not (state "exited", or "dead" when its
 * helper is gone without saying so), sorted by name. *out is malloc'd. */
int fp_session_list_all(struct fp_session_info **out, size_t *n, fp_error *err);

/* True if the helper process recorded in info still runs. */
int fp_session_helper_alive(const struct fp_session_info *info);

/* All sessions with a live helper, sorted by name. *out is malloc'd. */
int fp_session_list(struct fp_session_info **out, size_t *n, fp_error *err);

unsigned long long fp_proc_starttime(pid_t pid);

#endif
