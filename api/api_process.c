/* The calling process's own set-up, as the command does it before any
 * subcommand: its config checked, its inherited signal state normalised
 * (and kept for the programs it starts). */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>

#include "config.h"
#include "hygiene.h"

struct forkpoint_signals {
	struct fp_inherited_signals s;
};

int forkpoint_config_check(forkpoint_error *err)
{
	fp_error e = { 0 };
	return fp_config_check(&e) < 0 ? api_error(err, &e) : 0;
}

int forkpoint_sanitize_self(forkpoint_signals **saved, forkpoint_error *err)
{
	forkpoint_signals *s = NULL;
	if (saved && !(s = calloc(1, sizeof(*s))))
		return api_fail(err, FORKPOINT_EFAIL, ENOMEM, "out of memory");
	fp_sanitize_self(s ? &s->s : NULL);
	if (saved)
		*saved = s;
	return 0;
}

void forkpoint_signals_free(forkpoint_signals *saved)
{
	free(saved);
}

const struct fp_inherited_signals *api_signals(const forkpoint_signals *s)
{
	return s ? &s->s : NULL;
}
