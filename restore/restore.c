/* fp_restore: picks the engine, runs it, falls back from native to CRIU
 * when (and only when) the native engine reports it cannot restore
 * something, and never leaves a half-restored process behind. */
#include "restore/restore.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "restore/rst_int.h"

/* Tests make a restore fail after a given step to check that nothing is
 * left behind (FORKPOINT_RESTORE_FAIL_AT=memory, threads, files, signals,
 * mm, registers). It fires once per process. */
static int fail_at(const char *step, fp_error *err)
{
	const char *e = getenv("FORKPOINT_RESTORE_FAIL_AT");
	if (!e || strcmp(e, step))
		return 0;
	/* Once per process: a session helper's rollback restore must work. */
	unsetenv("FORKPOINT_RESTORE_FAIL_AT");
	return fp_fail(err, EIO, "failing on purpose after this step (FORKPOINT_RESTORE_FAIL_AT=%s)", step);
}

static int native_restore(rst_image *im, rst_log *log, int timeout_ms, pid_t *pid, fp_error *err)
{
	rst_proc p;
	memset(&p, 0, sizeof(p));
	p.deadline_ns = rst_now_ns() + (int64_t)timeout_ms * 1000000;
	long long t0 = rst_now_ns();
	if (rst_proc_create(&p, im, log, err))
		return fp_wrap(err, "creating process %u", im->pid);
	long long t1 = rst_now_ns();
	const char *step = "memory";
	int rc = rst_mem_restore(&p, err) || fail_at(step, err);
	long long t2 = rst_now_ns();
	if (!rc && (step = "threads", rst_task_restore(&p, err) || fail_at(step, err)) == 0 &&
	    (step = "files", rst_files_restore(&p, err) || fail_at(step, err)) == 0 &&
	    (step = "signals", rst_task_finish(&p, err) || fail_at(step, err)) == 0 &&
	    (step = "mm", rst_mem_finish(&p, err) || fail_at(step, err)) == 0 &&
	    (step = "registers", rst_task_regs(&p, err) || fail_at(step, err)) == 0) {
		*pid = p.pid;
		step = "release";
		rc = rst_proc_release(&p, err);
	} else {
		rc = -1;
	}
	if (rc) {
		fp_wrap(err, "restoring the %s of process %u", step, im->pid);
		rst_logf(log, 1, "%s", err->msg);
		rst_proc_kill(&p);
		*pid = 0;
		return -1;
	}
	long long t3 = rst_now_ns();
	rst_logf(log, 3, "restored %u natively: stub %.2f ms, memory %.2f ms, rest %.2f ms", im->pid, (t1 - t0) / 1e6,
		 (t2 - t1) / 1e6, (t3 - t2) / 1e6);
	return 0;
}

int fp_restore_check(const char *dir, char *native_reason, size_t len, fp_error *err)
{
	return fp_restore_check_ex(dir, true, native_reason, len, err);
}

int fp_restore_check_ex(const char *dir, bool check_pids, char *native_reason, size_t len, fp_error *err)
{
	rst_image im;
	int rc = rst_image_load_ex(&im, dir, check_pids, err);
	if (native_reason && len)
		snprintf(native_reason, len, "%s", rc ? "" : im.unsupported);
	rst_image_free(&im);
	return rc;
}

int fp_restore(const struct fp_restore_opts *o, struct fp_restore_result *r, fp_error *err)
{
	memset(r, 0, sizeof(*r));
	if (!o->dir)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "no image directory given");
	long long t0 = rst_now_ns();
	int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
	if (o->log_path)
		snprintf(r->log_path, sizeof(r->log_path), "%s", o->log_path);
	else
		snprintf(r->log_path, sizeof(r->log_path), "%s/restore.log", o->dir);
	rst_log log;
	if (rst_log_open(&log, r->log_path, o->verbosity, err))
		return -1;
	rst_image im;
	int rc = rst_image_load_ex(&im, o->dir, false, err) || rst_image_check_pids(&im, err);
	if (rc && !o->exact_pids && err->errnum == EEXIST) {
		rst_logf(&log, 2, "%s: restoring into a new pid namespace", err->msg);
		rst_image_free(&im);
		rst_log_close(&log);
		fp_error_clear(err);
		rc = rst_pidns_restore(o, r, timeout_ms, err);
		r->elapsed_ms = (rst_now_ns() - t0) / 1e6;
		return rc;
	}
	if (rc) {
		rst_logf(&log, 1, "%s", err->msg);
		goto out;
	}
	rst_logf(&log, 3, "image %s: pid %u, %zu threads, %zu VMAs, %llu pages, %zu fds", o->dir, im.pid, im.nth,
		 im.mm.n_vmas, (unsigned long long)im.present_pages, im.nfdi);
	enum fp_restore_engine eng = o->engine;
	if (eng != FP_RESTORE_CRIU && im.unsupported[0]) {
		if (eng == FP_RESTORE_NATIVE) {
			rc = fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					  "the native engine cannot restore %s: %s (use --engine criu)", o->dir, im.unsupported);
			rst_logf(&log, 1, "%s", err->msg);
			goto out;
		}
		snprintf(r->fallback_reason, sizeof(r->fallback_reason), "%s", im.unsupported);
		eng = FP_RESTORE_CRIU;
	}
	if (eng != FP_RESTORE_CRIU) {
		r->engine_used = FP_RESTORE_NATIVE;
		rc = native_restore(&im, &log, timeout_ms, &r->pid, err);
		if (rc == 0 || eng == FP_RESTORE_NATIVE || err->exit_code != FP_EXIT_UNSUPPORTED)
			goto out;
		snprintf(r->fallback_reason, sizeof(r->fallback_reason), "%s", err->msg);
	}
	if (r->fallback_reason[0])
		rst_logf(&log, 2, "falling back to criu: %s", r->fallback_reason);
	rst_image_free(&im);
	rst_log_close(&log);
	r->engine_used = FP_RESTORE_CRIU;
	fp_error_clear(err);
	rc = rst_criu_restore(o->dir, r->log_path, o->verbosity, timeout_ms, o->adopt, &r->pid, err);
	r->elapsed_ms = (rst_now_ns() - t0) / 1e6;
	return rc;
out:
	rst_image_free(&im);
	rst_log_close(&log);
	r->elapsed_ms = (rst_now_ns() - t0) / 1e6;
	return rc;
}

int fp_restore_wait(pid_t pid, int timeout_ms, int *status, fp_error *err)
{
	long long dl = timeout_ms < 0 ? 0 : rst_now_ns() + (long long)timeout_ms * 1000000;
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (w == pid) {
			*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return 0;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == ECHILD)
			return fp_fail(err, ECHILD,
				       "the restored process %d is not our child any more, or its exit status was taken by "
				       "another reaper in this process", (int)pid);
		if (w < 0)
			return fp_fail(err, errno, "waiting for %d: %s", (int)pid, strerror(errno));
		if (rst_now_ns() > dl)
			return fp_fail_code(err, FP_EXIT_TIMEOUT, ETIMEDOUT, "%d did not end within %d ms", (int)pid, timeout_ms);
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
}
