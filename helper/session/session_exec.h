/* `forkpoint exec`: the session helper's side. A request arrives on a
 * control connection with the caller's pipes (SCM_RIGHTS): the write ends
 * of its stdout and stderr pipes and, with --stdin, the read end of its
 * stdin pipe. Output never passes through the helper: the command writes
 * straight into the caller's pipes.
 *
 * In a shell session (run --shell) the command runs in the session's bash,
 * which reaches the pipes through /proc/HELPER/fd/N, so state (cwd,
 * variables, functions, jobs) stays in that one shell. Otherwise the
 * command is a new process in the session's workspace view.
 *
 * One command runs at a time; later requests wait in a queue. The request
 * connection stays open while the command runs: the caller may send
 * "interrupt", and a caller that goes away interrupts the command too
 * (the helper then empties the output pipes the caller no longer reads,
 * so no writer dies of SIGPIPE, the shell least of all). The last message
 * on it is "ok\nexit_code=N\n..." or "error N\nmessage". */
#ifndef FP_SESSION_EXEC_H
#define FP_SESSION_EXEC_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "fp_error.h"

struct fp_session_ctx;

/* The exit code reported when --timeout ended the command (as timeout(1)). */
#define FP_EXEC_TIMEOUT_CODE 124
#define FP_EXEC_MAX_POLLFDS 24

/* Takes ownership of connection c and of the fds (whatever happens).
 * msg is the whole request: "exec\nkey=value...\n\n" then the body (a shell
 * string, or NUL-separated argv when form=argv). */
void fp_exec_request(struct fp_session_ctx *ctx, int c, const char *msg, size_t len, int *fds,
		     int nfds);

/* The helper's poll loop: fds to watch, then their events. Returns the
 * number of pollfds filled; *timeout_ms is lowered to the next deadline. */
int fp_exec_pollfds(struct fp_session_ctx *ctx, struct pollfd *pf, int max, int *timeout_ms);
void fp_exec_events(struct fp_session_ctx *ctx, const struct pollfd *pf, int n);

/* A child of the helper ended; returns 1 if it was an exec's process. */
int fp_exec_reaped(struct fp_session_ctx *ctx, pid_t pid, int status);

/* The session ends (its target exited with wait status `status`): every
 * running and queued exec is answered. */
void fp_exec_shutdown(struct fp_session_ctx *ctx, int status);

#endif
