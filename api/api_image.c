/* The image layer of include/forkpoint.h: dump/dump.h and
 * restore/restore.h behind flags instead of option structs. */
#include "api/api_int.h"

#include "dump/dump.h"
#include "restore/restore.h"

int forkpoint_dump(pid_t pid, const char *dir, unsigned flags, forkpoint_error *err)
{
	if (pid <= 0 || !dir || !*dir)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_dump needs a pid > 0 and a directory");
	struct fp_dump_opts o = {
		.pid = pid,
		.dir = dir,
		.leave_running = flags & FORKPOINT_DUMP_LEAVE_RUNNING,
		.compress = (flags & FORKPOINT_DUMP_NO_COMPRESS) ? FP_DUMP_NONE : FP_DUMP_ZSTD,
		.fsync = flags & FORKPOINT_DUMP_FSYNC,
		.tcp_established = flags & FORKPOINT_DUMP_TCP_ESTABLISHED,
	};
	struct fp_dump_stats st;
	fp_error e = { 0 };
	return fp_dump(&o, &st, &e) < 0 ? api_error(err, &e) : 0;
}

int forkpoint_restore(const char *dir, unsigned flags, pid_t *pid, forkpoint_error *err)
{
	if (!dir || !*dir || !pid)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_restore needs a directory and a place for the pid");
	if ((flags & FORKPOINT_RESTORE_NATIVE) && (flags & FORKPOINT_RESTORE_CRIU))
		return api_fail(err, FORKPOINT_EINVAL, 0, "give FORKPOINT_RESTORE_NATIVE or _CRIU, not both");
	struct fp_restore_opts o = {
		.dir = dir,
		.engine = (flags & FORKPOINT_RESTORE_NATIVE) ? FP_RESTORE_NATIVE
			  : (flags & FORKPOINT_RESTORE_CRIU) ? FP_RESTORE_CRIU
							      : FP_RESTORE_AUTO,
		.exact_pids = flags & FORKPOINT_RESTORE_EXACT_PIDS,
		.adopt = true, /* the root is the caller's child, whichever engine */
	};
	struct fp_restore_result r;
	fp_error e = { 0 };
	if (fp_restore(&o, &r, &e) < 0)
		return api_error(err, &e);
	/* In a new pid namespace its init (our child) reports the root's end. */
	*pid = r.ns_init ? r.ns_init : r.pid;
	return 0;
}

int forkpoint_wait(pid_t pid, int timeout_ms, int *status, forkpoint_error *err)
{
	int st = 0;
	fp_error e = { 0 };
	if (fp_restore_wait(pid, timeout_ms, &st, &e) < 0)
		return api_error(err, &e);
	if (status)
		*status = st;
	return 0;
}

int forkpoint_verify(const char *dir, forkpoint_error *err)
{
	if (!dir || !*dir)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_verify needs a directory");
	fp_error e = { 0 };
	return fp_dump_verify(dir, &e) < 0 ? api_error(err, &e) : 0;
}
