/* The image layer of include/forkpoint.h in its first, flags-only form
 * (over the option handles of api_image_with.c), and the calls that take
 * no options. */
#include "api/api_int.h"

#include "dump/dump.h"
#include "restore/restore.h"

int forkpoint_dump(pid_t pid, const char *dir, unsigned flags, forkpoint_error *err)
{
	if (pid <= 0 || !dir || !*dir)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_dump needs a pid > 0 and a directory");
	forkpoint_dump_options *o;
	if (forkpoint_dump_options_new(pid, dir, &o, err) < 0)
		return -1;
	int rc = forkpoint_dump_options_set(o, FORKPOINT_DUMP_OPT_FLAGS, flags, err);
	if (rc == 0)
		rc = forkpoint_dump_with(o, NULL, err);
	forkpoint_dump_options_free(o);
	return rc;
}

int forkpoint_restore(const char *dir, unsigned flags, pid_t *pid, forkpoint_error *err)
{
	if (!dir || !*dir || !pid)
		return api_fail(err, FORKPOINT_EINVAL, 0, "forkpoint_restore needs a directory and a place for the pid");
	forkpoint_restore_options *o;
	forkpoint_info *r = NULL;
	if (forkpoint_restore_options_new(dir, &o, err) < 0)
		return -1;
	int rc = forkpoint_restore_options_set(o, FORKPOINT_RESTORE_OPT_FLAGS, flags, err);
	if (rc == 0)
		rc = forkpoint_restore_with(o, &r, err);
	forkpoint_restore_options_free(o);
	/* In a new pid namespace its init (our child) reports the root's end. */
	if (rc == 0)
		*pid = (pid_t)forkpoint_info_int(r, "wait_pid");
	forkpoint_info_free(r);
	return rc;
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
