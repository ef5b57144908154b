/* Errors are values: every fallible function returns 0 or -1 and, on -1,
 * leaves a message in a caller-owned fp_error naming the cause and the fix.
 * No component prints errors itself or exits; only cli/ decides what the user
 * sees. */
#ifndef FP_ERROR_H
#define FP_ERROR_H

#include <stddef.h>

enum fp_exit {
	FP_EXIT_OK = 0,
	FP_EXIT_FAIL = 1,        /* generic failure */
	FP_EXIT_USAGE = 2,       /* bad command line */
	FP_EXIT_NOTFOUND = 3,    /* no such pid, session or snapshot */
	FP_EXIT_UNSUPPORTED = 4, /* kernel, binary or image feature we cannot handle */
	FP_EXIT_TIMEOUT = 5,     /* a deadline expired */
	FP_EXIT_PERM = 6,        /* not allowed (ptrace, file permissions) */
};

typedef struct fp_error {
	int errnum;      /* errno of the root cause, 0 if none */
	int exit_code;   /* an fp_exit value the CLI should use */
	char msg[1536];
} fp_error;

/* Sets *e (if non-NULL) and returns -1, so `return fp_fail(...)` reads well. */
int fp_fail(fp_error *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, with an explicit exit code. */
int fp_fail_code(fp_error *e, int exit_code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prefixes the existing message with a step name: "dump: " + old message. */
int fp_wrap(fp_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fp_error_clear(fp_error *e);

#endif
