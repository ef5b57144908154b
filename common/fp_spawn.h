/* Running a helper program (criu, a tool) and collecting what it printed.
 *
 * forkpoint can be started by daemons with blocked signals, ignored SIGCHLD,
 * closed stdio or stray fds, and those are the known causes of CRIU hangs. So
 * every child gets: stdin on /dev/null, stdout and stderr into one pipe that we
 * read, no other inherited fd, an empty signal mask and default dispositions.
 * Every wait has a deadline; on expiry the child and all it started are killed
 * with SIGKILL (fp_kill_tree) and the child is
 * reaped. If the caller ignores SIGCHLD (which makes the kernel discard exit
 * statuses), SIGCHLD is set to SIG_DFL for the duration of the call and then
 * restored. */
#ifndef FP_SPAWN_H
#define FP_SPAWN_H

#include <stdbool.h>
#include <stddef.h>

#include "fp_error.h"

#define FP_SPAWN_DEFAULT_TIMEOUT_MS 60000

typedef struct fp_spawn_opts {
	int timeout_ms;    /* 0: FP_SPAWN_DEFAULT_TIMEOUT_MS */
	const char *cwd;   /* NULL: the caller's */
	char *const *envp; /* NULL: the caller's environment */
	bool stdin_tty;    /* stdin: the caller's terminal (of fds 0-2), if any */
	/* the child's soft file limit up to its hard one: CRIU puts its
	 * service fds above the image's highest fd, which a soft limit
	 * that the dumped process was close to leaves no room for */
	bool nofile_up;
} fp_spawn_opts;

typedef struct fp_spawn_result {
	int pid;
	int exited;        /* exited normally: exit_code is valid */
	int exit_code;
	int term_signal;   /* killed by this signal (SIGKILL after a timeout) */
	int timed_out;
	size_t out_len;    /* bytes of output kept in the caller's buffer */
	int out_truncated; /* it printed more than the buffer held (the rest is dropped) */
} fp_spawn_result;

/* Runs argv (argv[0] without a '/' is looked up on PATH) and waits for it.
 * Its stdout and stderr, interleaved, go into out (NUL-terminated, at most
 * out_len - 1 bytes; out may be NULL to discard). res and opts may be NULL.
 *
 * Returns 0 when the program ran and exited, whatever its exit code (check
 * res->exit_code). Returns -1 with *err set when it could not be started or
 * executed, was killed by a signal, ran past the deadline (ETIMEDOUT; it has
 * been killed and reaped), or its exit status was taken by another waiter in
 * this process (ECHILD). res and out are filled as far as known in every case. */
int fp_spawn(const char *const argv[], const fp_spawn_opts *opts, char *out, size_t out_len,
	     fp_spawn_result *res, fp_error *err);

/* Finds an executable called name on $PATH (or takes name as is when it holds
 * a '/'). Returns 0 with the path in buf, -1 (ENOENT) when there is none. */
int fp_which(const char *name, char *buf, size_t len, fp_error *err);

#endif
