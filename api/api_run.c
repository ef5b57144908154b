/* forkpoint_run: a session started from the caller itself, in the
 * foreground or detached, as `forkpoint run` does. */
#include "api/api_int.h"

#include <stdio.h>

#include "session/session_helper.h"

int forkpoint_run(const char *name, const char *workdir, unsigned flags, char *const argv[],
		  const forkpoint_signals *sigs, forkpoint_info **res, forkpoint_error *err)
{
	int shell = !!(flags & FORKPOINT_SESSION_SHELL);
	if (res)
		*res = NULL;
	if (!shell && !(argv && argv[0]))
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_run needs a command (argv) or FORKPOINT_SESSION_SHELL");
	struct fp_run_opts o = {
		.name = name,
		.argv = argv && argv[0] ? argv : NULL,
		.detach = !!(flags & FORKPOINT_RUN_DETACH),
		.shell = shell,
		.workdir = workdir,
		.no_shim = !!(flags & FORKPOINT_SESSION_NO_SHIM),
		.sigs = api_signals(sigs),
	};
	struct fp_run_result r = { .name = "" };
	fp_error e = { 0 };
	fflush(NULL); /* the program may share our stdio */
	int rc = fp_run_session(&o, &r, &e);
	forkpoint_info *i = api_info_new();
	if (rc < 0) {
		if (i && api_info_set(i, "exit_code", "%d", e.exit_code ? e.exit_code : 1) == 0 && res)
			*res = i;
		else
			forkpoint_info_free(i);
		return api_error(err, &e);
	}
	if (i && (api_info_set(i, "name", "%s", r.name) < 0 || api_info_set(i, "workdir", "%s", r.workdir) < 0 ||
		  api_info_set(i, "pid", "%d", r.target_pid) < 0 ||
		  api_info_set(i, "wait_status", "%d", r.wait_status) < 0 ||
		  api_info_set(i, "notice", "%s", r.notice) < 0)) {
		forkpoint_info_free(i);
		i = NULL;
	}
	return api_info_out(i, res, err);
}
