#include "fp_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int exit_code_for(int errnum)
{
	switch (errnum) {
	case ESRCH:
	case ENOENT:
		return FP_EXIT_NOTFOUND;
	case EPERM:
	case EACCES:
		return FP_EXIT_PERM;
	case ETIMEDOUT:
		return FP_EXIT_TIMEOUT;
	case ENOSYS:
	case EOPNOTSUPP:
		return FP_EXIT_UNSUPPORTED;
	default:
		return FP_EXIT_FAIL;
	}
}

static int vfail(fp_error *e, int code, int errnum, const char *fmt, va_list ap)
{
	if (!e)
		return -1;
	e->errnum = errnum;
	e->exit_code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	return -1;
}

int fp_fail(fp_error *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, exit_code_for(errnum), errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int fp_fail_code(fp_error *e, int exit_code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, exit_code, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int fp_wrap(fp_error *e, const char *fmt, ...)
{
	if (!e)
		return -1;
	char prefix[512], old[sizeof(e->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	/* prefix is at most 511 bytes, so the cause (the old message) keeps at
	 * least a thousand bytes when the result must be cut. */
	size_t pl = strnlen(prefix, sizeof(prefix) - 1);
	memcpy(e->msg, prefix, pl);
	memcpy(e->msg + pl, ": ", 2);
	size_t room = sizeof(e->msg) - pl - 3;
	size_t ol = strnlen(old, room);
	memcpy(e->msg + pl + 2, old, ol);
	e->msg[pl + 2 + ol] = '\0';
	return -1;
}

void fp_error_clear(fp_error *e)
{
	if (e) {
		e->errnum = 0;
		e->exit_code = 0;
		e->msg[0] = '\0';
	}
}
