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

#endif
