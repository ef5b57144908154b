/* fp_restore_adopt: the native restore of one process whose memory is in
 * place already (a fork of a hot snapshot's frozen copy): every step of
 * native_restore (restore.c) but the stub and the memory. Pages are not
 * read, so the page data is not verified against the manifest; the other
 * images are decoded and checked as for any restore. */
#include "restore/restore.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include "restore/rst_int.h"

/* What a fork cannot stand for: memory it would share with the original. */
static const char *not_adoptable(const rst_image *im)
{
	if (im->nps != 1)
		return "the snapshot holds a process tree";
	if (im->unsupported[0])
		return im->unsupported;
	for (size_t i = 0; i < im->mm.n_vmas; i++)
		if ((im->mm.vmas[i].flags & MAP_SHARED) && (im->mm.vmas[i].prot & PROT_WRITE))
			return "the process has writable shared memory, which a fork would share with the original";
	return NULL;
}

int fp_restore_adopt_check(const char *dir, char *why, size_t len, fp_error *err)
{
	rst_image im;
	if (rst_image_load_ex(&im, dir, false, err))
		return -1;
	const char *w = not_adoptable(&im);
	snprintf(why, len, "%s", w ? w : "");
	int pid = (int)im.pid;
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
	const char *why = not_adoptable(&im);
	rst_proc p;
	memset(&p, 0, sizeof(p));
	rst_shm shm;
	memset(&shm, 0, sizeof(shm));
	rst_usks usk;
	memset(&usk, 0, sizeof(usk));
	const char *step = "process";
	rst_wait_begin();
	im.take_foreground = o->foreground;
	p.deadline_ns = t0 + (int64_t)(o->timeout_ms > 0 ? o->timeout_ms : 60000) * 1000000;
	p.shm = &shm;
	p.usk = &usk;
	if (why) {
		kill(pid, SIGKILL);
		rc = fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "%s", why);
	} else {
		rc = rst_proc_adopt(&p, &im, &log, pid, sys_ip, err);
	}
	if (!rc)
		rc = (step = "files", rst_files_restore(&p, err)) || (step = "threads", rst_task_restore(&p, err)) ||
		     (step = "files", rst_usk_finish(&usk, &p, 1, err)) || (step = "files", rst_shm_seal(&shm, err)) ||
		     (step = "signals", rst_task_finish(&p, err)) || (step = "registers", rst_task_regs(&p, err));
	if (!rc && im.th[0].core.tc.task_state == CR_TASK_STOPPED && kill(p.pid, SIGSTOP))
		rc = fp_fail(err, errno, "cannot stop %d again: %s", (int)p.pid, strerror(errno));
	if (!rc)
		rst_ghosts_unlink_tree(&shm); /* the fds hold them now */
	if (!rc)
		rc = (step = "release", rst_proc_release(&p, err));
	if (rc) {
		fp_wrap(err, "restoring the %s of process %u (forked from a hot snapshot)", step, im.pid);
		rst_logf(&log, 1, "%s", err->msg);
		rst_proc_kill(&p);
	} else {
		r->pid = p.pid;
		r->engine_used = FP_RESTORE_NATIVE;
		rst_logf(&log, 3, "restored %u from a hot snapshot's fork in %.2f ms", im.pid, (rst_now_ns() - t0) / 1e6);
	}
	rst_shm_free(&shm);
	rst_usk_free(&usk);
	rst_wait_end();
	rst_image_free(&im);
	rst_log_close(&log);
	r->elapsed_ms = (rst_now_ns() - t0) / 1e6;
	return rc ? -1 : 0;
}
