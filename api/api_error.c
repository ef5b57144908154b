#include "api/api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The public codes are the command's exit codes; what else a helper may
 * answer (127: command not found, 126: not executable) is mapped onto them. */
static int public_code(int exit_code)
{
	if (exit_code >= FORKPOINT_EFAIL && exit_code <= FORKPOINT_EUNAVAILABLE)
		return exit_code;
	if (exit_code == 127)
		return FORKPOINT_ENOTFOUND;
	if (exit_code == 126)
		return FORKPOINT_EPERM;
	return FORKPOINT_EFAIL;
}

int api_error(forkpoint_error *out, const fp_error *in)
{
	if (!out)
		return -1;
	out->code = public_code(in->exit_code);
	out->errnum = in->errnum;
	snprintf(out->message, sizeof(out->message), "%s", in->msg[0] ? in->msg : "failed (no message)");
	return -1;
}

int api_fail(forkpoint_error *out, int code, int errnum, const char *fmt, ...)
{
	if (!out)
		return -1;
	out->code = code;
	out->errnum = errnum;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
	return -1;
}

const char *forkpoint_version(void)
{
	return FORKPOINT_VERSION;
}
