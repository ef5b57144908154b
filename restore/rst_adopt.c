/* fp_restore_adopt: the native restore of a process tree whose root holds
 * its memory already (a fork of a hot snapshot's frozen copy): every step
 * of the native engine (restore.c) but the root's stub and memory. The
 * root's pages are not read, so they are not verified against the
 * manifest; the other images are decoded and checked as for any restore,
 * and the other processes are restored from them. */
#include "restore/restore.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "restore/rst_int.h"

/* What a fork of the root's copy cannot stand for: memory it would share
 * with the original. The other processes of a tree are restored from
 * their images onto stubs that the root clones (rst_fork_exec.c); what
 * they cannot be is said here too, so that a branch falls back to disk
 * before it starts rather than half way. why: "" if adoptable. strict:
 * a child's image that does not load is an error (in the branch); else
 * it is left to the branch (its caller may not see the workspace's files). */
static int not_adoptable(const rst_image *im, bool strict, char *why, size_t len, fp_error *err)
{
	why[0] = '\0';
	if (im->unsupported[0]) {
		snprintf(why, len, "%s", im->unsupported);
		return 0;
	}
	for (size_t i = 0; i < im->mm.n_vmas; i++)
		if ((im->mm.vmas[i].flags & MAP_SHARED) && (im->mm.vmas[i].prot & PROT_WRITE)) {
			snprintf(why, len, "the process has writable shared memory, which a fork would share with the original");
			return 0;
		}
	for (size_t i = 1; i < im->nps && !why[0]; i++) {
		rst_image k;
		if (rst_image_load_proc(&k, im->dir, i, false, err)) {
			rst_image_free(&k);
			if (strict)
				return -1;
			fp_error_clear(err);
			continue;
		}
		if (k.unsupported[0])
			snprintf(why, len, "process %u: %s", k.pid, k.unsupported);
		else if (im->ps[i].ppid == im->pid && (k.ids.files_id == im->ids.files_id || k.ids.fs_id == im->ids.fs_id))
			snprintf(why, len, "process %u shares its fd table or cwd with the root (CLONE_FILES/CLONE_FS)", k.pid);
		rst_image_free(&k);
	}
	return 0;
}

int fp_restore_adopt_check(const char *dir, char *why, size_t len, fp_error *err)
{
	rst_image im;
	if (rst_image_load_ex(&im, dir, false, err))
		return -1;
	int pid = not_adoptable(&im, false, why, len, err) < 0 ? -1 : (int)im.pid;
	rst_image_free(&im);
	return pid;
}

int fp_restore_adopt(const struct fp_restore_opts *o, pid_t pid, uint64_t sys_ip, struct fp_restore_result *r,
		     fp_error *err)
{
	memset(r, 0, sizeof(*r));
	fp_error_clear(err);
	long long t0 = rst_now_ns();
	snprintf(r->verify_note, sizeof(r->verify_note), "forked from a hot snapshot: its pages were not read");
	if (o->log_path)
		snprintf(r->log_path, sizeof(r->log_path), "%s", o->log_path);
	else
		rst_log_default(r->log_path, sizeof(r->log_path));
	rst_log log;
	if (rst_log_open(&log, r->log_path, o->log_path != NULL, o->verbosity, err)) {
		kill(pid, SIGKILL);
		return -1;
	}
	rst_image im;
	int rc = rst_image_load_ex(&im, o->dir, false, err);
	if (rc) {
		kill(pid, SIGKILL);
		rst_log_close(&log);
		return -1;
	}
	char why[512];
	rc = not_adoptable(&im, true, why, sizeof(why), err);
	if (!rc && why[0])
		rc = fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "%s", why);
	if (rc) {
		kill(pid, SIGKILL);
	} else {
		im.take_foreground = o->foreground;
		rc = rst_native_restore(&im, &log, o->timeout_ms > 0 ? o->timeout_ms : 60000, pid, sys_ip, &r->pid, err);
	}
	if (rc) {
		fp_wrap(err, "restoring from a hot snapshot's fork");
		rst_logf(&log, 1, "%s", err->msg);
	} else {
		r->engine_used = FP_RESTORE_NATIVE;
		rst_logf(&log, 3, "restored %u (%zu process%s) from a hot snapshot's fork in %.2f ms", im.pid, im.nps,
			 im.nps > 1 ? "es" : "", (rst_now_ns() - t0) / 1e6);
	}
	rst_image_free(&im);
	rst_log_close(&log);
	r->elapsed_ms = (rst_now_ns() - t0) / 1e6;
	return rc ? -1 : 0;
}
