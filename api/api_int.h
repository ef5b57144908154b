/* Shared by the api/ files: the public API (include/forkpoint.h) is a thin
 * layer over the internal one; these turn internal values into public ones. */
#ifndef FP_API_INT_H
#define FP_API_INT_H

#include "include/forkpoint.h"

#include "fp_error.h"
#include "session/session_store.h"

struct forkpoint_session {
	struct fp_session_info info;
};

/* Copies an internal error into the caller's public one (NULL is fine);
 * returns -1. */
int api_error(forkpoint_error *out, const fp_error *in);

/* A public error made here; returns -1. */
int api_fail(forkpoint_error *out, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* forkpoint_info's makers (api_info.c). set and set_body (a helper's
 * key=value lines) return -1 when out of memory; api_info_out hands r to
 * *out (or frees it when out is NULL), and fails when r is NULL. */
forkpoint_info *api_info_new(void);
int api_info_set(forkpoint_info *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int api_info_set_body(forkpoint_info *r, const char *body);
forkpoint_info *api_info_add_item(forkpoint_info *r);
int api_info_out(forkpoint_info *r, forkpoint_info **out, forkpoint_error *err);

/* The saved signal state inside a forkpoint_signals (NULL for NULL). */
struct fp_inherited_signals;
const struct fp_inherited_signals *api_signals(const forkpoint_signals *s);

/* One request to the session's running helper (its handle's info read
 * anew); body gets the key=value answer. */
int api_session_request(forkpoint_session *s, const char *req, char *body, size_t len, int timeout_ms,
			forkpoint_error *err);
/* restore SNAP in a running session; *res as forkpoint_session_restore_with's. */
int api_session_restore_live(forkpoint_session *s, const char *snap, forkpoint_info **res, forkpoint_error *err);

/* Sessions started by one call (create: one; branch: up to 64). */
#define API_START_MAX 64
struct api_started {
	int n;
	char names[API_START_MAX][FP_SESSION_NAME_MAX + 1];
	char info[API_START_MAX][1024]; /* what each took, key=value lines ("" if nothing said) */
};

/* Runs start(arg, ...) in a child process made clean for it (default
 * signal dispositions and mask, no fds of the caller's but stdio), which
 * exits when start returns: the session helpers it started are then
 * nobody's children here (no zombies for the caller, who may be an
 * interpreter with its own signal handlers). Fills *st with their names. */
int api_start(int (*start)(void *arg, struct api_started *st, fp_error *err), void *arg,
	      struct api_started *st, forkpoint_error *err);

/* n branches of session's snapshot snap started (branch_with's and
 * branch's common part): st gets their names and what each took. */
int api_branch_start(const char *session, const char *snap, const char *name, int n, struct api_started *st,
		     forkpoint_error *err);

/* Handles on every session in st (out has st->n places): all or none. */
int api_open_all(const struct api_started *st, forkpoint_session **out, forkpoint_error *err);

#endif
