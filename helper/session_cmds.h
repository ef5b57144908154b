/* Requests the session helper answers over its control socket. Each request
 * is one line "VERB [ARGS...]"; handlers write the whole response. */
#ifndef FP_SESSION_CMDS_H
#define FP_SESSION_CMDS_H

#include <sys/types.h>

#include "session_store.h"

struct fp_ws;

struct fp_session_ctx {
	struct fp_session_info *info;
	pid_t target;
	struct fp_ws *ws; /* the workspace (run --workdir), NULL without one */
};

/* Reads one request from client fd c and answers it. */
void fp_session_handle_client(struct fp_session_ctx *ctx, int c);

#endif
