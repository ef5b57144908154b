/* Requests the session helper answers over its control socket. Each request
 * is one line "VERB [ARGS...]"; handlers write the whole response. */
#ifndef FP_SESSION_CMDS_H
#define FP_SESSION_CMDS_H

#include <sys/types.h>

#include "session_store.h"

struct fp_ws;
struct fp_shell;
struct fp_exec_srv;

struct fp_session_ctx {
	struct fp_session_info *info;
	pid_t target;
	struct fp_ws *ws;          /* the workspace (run --workdir), NULL without one */
	struct fp_shell *shell;    /* run --shell: the shell's terminal, else NULL */
	struct fp_exec_srv *exec;  /* running and queued `exec` requests (session_exec.h) */
	long long stop_deadline_ms; /* CLOCK_MONOTONIC ms after which `stop` kills everything, 0 if none */
	unsigned restores;         /* restores done: a running exec's command did not survive them */
};

/* Reads one request from client fd c and answers it. Returns 1 if the
 * request keeps c (exec), 0 if the caller closes it. */
/* CLOCK_MONOTONIC ms when the helper was last done with a request, its
 * work after the reply included (restore's reply says it: was the helper
 * still busy when a request was made?) */
extern double fp_session_idle_at;
/* How long the last request waited for the read ahead to stop (ms). */
extern double fp_session_ahead_stop_ms;
int fp_session_handle_client(struct fp_session_ctx *ctx, int c);

#endif
