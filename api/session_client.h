/* Talking to a session's helper over its control socket (session/control.h). */
#ifndef FP_SESSION_CLIENT_H
#define FP_SESSION_CLIENT_H

#include <stddef.h>

#include "fp_error.h"
#include "session/session_store.h"

/* Loads the session and checks that its helper runs. */
int api_session_open(const char *name, struct fp_session_info *info, fp_error *err);

/* Sends a request; on "ok" copies the key=value body into body and returns 0;
 * on "error CODE" fills err with the helper's message and returns -1. */
int api_session_call(const struct fp_session_info *info, const char *req, char *body, size_t len,
		     int timeout_ms, fp_error *err);

/* When the session's helper runs: waits until it has served the request
 * before (a request of its own, "status"), so that what that request
 * writes after its reply (a snapshot taken with --early-reply) is on disk
 * before the caller reads the snapshots directory. */
void api_session_settled(const struct fp_session_info *info);

/* The value of key in a key=value body ("" if absent). */
const char *api_kv(const char *body, const char *key, char *val, size_t len);

#endif
