/* The session helper's control channel: a SOCK_SEQPACKET unix socket in the
 * session directory. One request message, one response message; both are
 * text. Responses start with "ok\n" or "error <exit-code>\n<message>". */
#ifndef FP_CONTROL_H
#define FP_CONTROL_H

#include <stddef.h>

#include "fp_error.h"

#define FP_CTL_MAX_MSG 65536

int fp_ctl_listen(const char *sock_path, fp_error *err);

/* Sends `req`, waits up to timeout_ms for the response. */
int fp_ctl_request(const char *sock_path, const char *req, char *resp, size_t len,
		   int timeout_ms, fp_error *err);

#endif
