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

/* Sessions started by one call (create: one; branch: up to 64). */
#define API_START_MAX 64
struct api_started {
	int n;
	char names[API_START_MAX][FP_SESSION_NAME_MAX + 1];
};

/* Runs start(arg, ...) in a child process made clean for it (default
 * signal dispositions and mask, no fds of the caller's but stdio), which
 * exits when start returns: the session helpers it started are then
 * nobody's children here (no zombies for the caller, who may be an
 * interpreter with its own signal handlers). Fills *st with their names. */
int api_start(int (*start)(void *arg, struct api_started *st, fp_error *err), void *arg,
	      struct api_started *st, forkpoint_error *err);

/* Handles on every session in st (out has st->n places): all or none. */
int api_open_all(const struct api_started *st, forkpoint_session **out, forkpoint_error *err);

#endif
