/* fp_restore: picks the engine, runs it, falls back from native to CRIU
 * when (and only when) the native engine reports it cannot restore
 * something, and never leaves a half-restored process behind. */
#include "restore/restore.h"

#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "restore/rst_int.h"

#include <fcntl.h>

#include "images/img_verify.h"

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

/* Kills what was created, children before their parents, and - for a
 * tree, where the restorer is a child subreaper meanwhile - reaps the
 * children too, so that every pid is free again when the restore returns
 * (a session's rollback restores right after). */
static void kill_all(rst_proc *ps, size_t n)
{
	pid_t *kids = calloc(n, sizeof(*kids));
	for (size_t i = n; i-- > 0;) {
		if (kids && i > 0)
			kids[i] = ps[i].pid;
		if (ps[i].pid)
			rst_proc_kill(&ps[i]);
	}
	long long dl = rst_now_ns() + 5000000000LL;
	for (size_t i = 1; kids && i < n; i++) {
		while (kids[i] > 0 && rst_now_ns() < dl) {
			pid_t w = waitpid(kids[i], NULL, WNOHANG | __WALL);
			if (w == kids[i] || (w < 0 && kill(kids[i], 0) < 0))
				break;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	free(kids);
}

/* One process, or a tree: every process is created first (the root by us,
 * each child forked by its parent's stub, so parents and sessions are as in
 * the image), then each gets its memory, threads and fds (open files and
 * pipes the processes share are made once and handed on), and last their
 * registers; then all run. Any failure kills everything created. */
int rst_native_restore(rst_image *root_im, rst_log *log, int timeout_ms, pid_t adopt_pid, uint64_t adopt_ip, pid_t *pid,
		       fp_error *err)
{
	size_t n = root_im->nps;
	rst_image *more = n > 1 ? calloc(n - 1, sizeof(*more)) : NULL;
	rst_image **im = calloc(n, sizeof(*im));
	rst_proc *ps = calloc(n, sizeof(*ps));
	size_t *parent = calloc(n, sizeof(*parent));
	rst_share share;
	memset(&share, 0, sizeof(share));
	rst_shm shm; /* shared memory objects, one for the tree */
	memset(&shm, 0, sizeof(shm));
	rst_usks usk; /* unix sockets, made once for the tree */
	memset(&usk, 0, sizeof(usk));
	rst_tcps tcp; /* established TCP connections */
	memset(&tcp, 0, sizeof(tcp));
	int rc = -1, was_subreaper = 1; /* 1: nothing to undo */
	size_t loaded = 0;
	const char *step = "images";
	bool adopt = adopt_pid > 0; /* adopt_pid is killed on failure until ps[0] holds it */
	if (!im || !ps || !parent || (n > 1 && !more)) {
		fp_fail(err, ENOMEM, "out of memory");
		goto done;
	}
	im[0] = root_im;
	for (size_t i = 1; i < n; i++) {
		im[i] = &more[i - 1];
		loaded = i; /* more[0..i-1] need freeing from here on */
		if (rst_image_load_proc(im[i], root_im->dir, i, false, err))
			goto done;
		im[i]->take_foreground = root_im->take_foreground;
		im[i]->stop_foreground = root_im->stop_foreground;
		if (im[i]->unsupported[0]) {
			fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP, "process %u: %s", im[i]->pid, im[i]->unsupported);
			goto done;
		}
		for (size_t j = 0; j < i; j++)
			if (im[j]->pid == im[i]->ps[i].ppid)
				parent[i] = j;
	}
	/* Children whose parent dies in a failed restore come to us to reap. */
	if (n > 1) {
		prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper);
		prctl(PR_SET_CHILD_SUBREAPER, 1);
	}
	/* Our tracees' stops are waited for asleep (rst_wait.c). */
	rst_wait_begin();
	long long t0 = rst_now_ns();
	for (size_t i = 0; i < n; i++) {
		ps[i].deadline_ns = t0 + (int64_t)timeout_ms * 1000000;
		ps[i].share = n > 1 ? &share : NULL;
		ps[i].shm = &shm;
		ps[i].usk = &usk;
		ps[i].tcp = &tcp;
	}
	ps[0].pages_async = n == 1 && !adopt;
	step = "processes";
	/* The root's page data starts decoding now, while its stub is made
	 * (rst_pages.c); the other processes' starts at their memory step. */
	if (!adopt && rst_pages_start(&ps[0], im[0], err) < 0)
		goto fail;
	if ((step = "SysV shared memory", rst_sysv_prepare(&shm, im[0], log, err)))
		goto fail;
	step = "processes";
	if (adopt) {
		if (rst_proc_adopt(&ps[0], im[0], log, adopt_pid, adopt_ip, err))
			goto fail; /* killed again at done: harmless if it was */
		adopt = false; /* ps[0] holds it now */
	} else if (rst_proc_create(&ps[0], im[0], log, err)) {
		goto fail;
	}
	for (size_t i = 1; i < n; i++) {
		if (adopt_pid > 0 && parent[i] == 0 ? rst_proc_fork_exec(&ps[0], &ps[i], im[i], err)
						    : rst_proc_fork(&ps[parent[i]], &ps[i], im[i], err))
			goto fail;
		ps[i].share = &share;
		ps[i].shm = &shm;
		ps[i].usk = &usk;
		ps[i].tcp = &tcp;
		if (im[i]->zombie && (step = "zombies", rst_zombie_end(&ps[parent[i]], &ps[i], err)))
			goto fail;
	}
	long long t1 = rst_now_ns();
	for (size_t i = adopt_pid > 0; i < n; i++) /* an adopted root has its memory */
		if (!im[i]->zombie && (step = "memory", rst_mem_restore(&ps[i], err) || fail_at(step, err)))
			goto fail;
	long long t2 = rst_now_ns();
	/* Files before threads: growing an fd table that threads share waits
	 * for an RCU grace period (about 10 ms here) each time. */
	for (size_t i = 0; i < n; i++)
		if (!im[i]->zombie && ((step = "files", rst_files_restore(&ps[i], err) || fail_at(step, err)) ||
				       (step = "threads", rst_task_restore(&ps[i], err) || fail_at(step, err))))
			goto fail;
	if ((step = "files", rst_usk_finish(&usk, ps, n, err)))
		goto fail;
	if ((step = "TCP connections", rst_tcp_finish(&tcp, log, err)))
		goto fail;
	if (n > 1 && (step = "files", rst_share_done(&share, err)))
		goto fail;
	/* memfd seals last: a write seal forbids the shared writable maps */
	if ((step = "files", rst_shm_seal(&shm, err)))
		goto fail;
	if ((step = "SysV shared memory", rst_sysv_finish(&shm, err)))
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (!im[i]->zombie && ((step = "signals", rst_task_finish(&ps[i], err) || fail_at(step, err)) ||
				       (step = "mm", (i == 0 && adopt_pid > 0 ? 0 : rst_mem_finish(&ps[i], err)) ||
						fail_at(step, err)) ||
				       (step = "registers", rst_task_regs(&ps[i], err) || fail_at(step, err))))
			goto fail;
	/* A process stopped at dump time stops again: SIGSTOP is queued while
	 * it is still in its ptrace-stop, and taken as a job-control stop as
	 * soon as the detach lets it run, before any of its own code. */
	for (size_t i = 0; i < n; i++) {
		/* A session leader stays in a session of its own, where it
		 * shares no keys with the restorer's shell. */
		const cr_pstree *me = &im[i]->ps[im[i]->index];
		bool fg_job = im[i]->stop_foreground && !im[i]->zombie && me->sid != me->pid &&
			      rst_tty_had_foreground(im[i]);
		if ((im[i]->th[0].core.tc.task_state == CR_TASK_STOPPED || fg_job) && kill(ps[i].pid, SIGSTOP)) {
			fp_fail(err, errno, "cannot stop %d again: %s", (int)ps[i].pid, strerror(errno));
			goto fail;
		}
		root_im->job_stopped |= fg_job;
	}
	/* mappings, fds and executables hold the ghosts' files now */
	rst_ghosts_unlink_tree(&shm);
	step = "release";
	rc = 0;
	for (size_t i = n; i-- > 0;) /* children first: the root runs last */
		if (!im[i]->zombie && rst_proc_release(&ps[i], rc ? NULL : err))
			rc = -1;
	if (rc)
		goto fail;
	*pid = ps[0].pid;
	rst_logf(log, 3, "restored %u natively (%zu process%s): stubs %.2f ms, memory %.2f ms, rest %.2f ms", im[0]->pid, n,
		 n > 1 ? "es" : "", (t1 - t0) / 1e6, (t2 - t1) / 1e6, (rst_now_ns() - t2) / 1e6);
	goto done;
fail:
	rc = -1;
	fp_wrap(err, "restoring the %s of process %u", step, im[0]->pid);
	rst_logf(log, 1, "%s", err->msg);
	if (n > 1)
		free(share.files), free(share.pipes);
	for (size_t i = 0; i < n; i++)
		rst_pages_abort(&ps[i]); /* also where no process was made */
	kill_all(ps, n);
	*pid = 0;
done:
	if (rc && adopt)
		kill(adopt_pid, SIGKILL);
	rst_shm_free(&shm);
	rst_usk_free(&usk);
	rst_tcp_free(&tcp);
	rst_wait_end();
	if (n > 1 && !was_subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	for (size_t i = 0; i < loaded; i++)
		rst_image_free(&more[i]);
	free(more);
	free(im);
	free(ps);
	free(parent);
	return rc;
}

/* Every byte of the image and of the snapshots its pages come from (its
 * `parent` chain) against their manifests, before anything else reads
 * them. */
static int verify_image(const char *dir, struct fp_restore_result *r, fp_error *err)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return fp_fail_code(err, errno == ENOENT ? FP_EXIT_NOTFOUND : FP_EXIT_FAIL, errno,
				    "cannot open the image directory %s: %s", dir, strerror(errno));
	struct img_verify_info vi;
	int rc = img_verify_chain(dirfd, dir, IMG_VERIFY_FULL, &vi, err);
	close(dirfd);
	if (rc)
		return fp_wrap(err, "refused before creating any process");
	if (r) {
		r->verify_ms = vi.ms;
		if (vi.trust == IMG_TRUST_CRIU)
			snprintf(r->verify_note, sizeof(r->verify_note),
				 "%s was written by CRIU and has no manifest: restored unverified (only its structure "
				 "was checked)",
				 dir);
	}
	return 0;
}

int fp_restore_check(const char *dir, char *native_reason, size_t len, fp_error *err)
{
	return fp_restore_check_ex(dir, true, native_reason, len, err);
}

int fp_restore_check_ex(const char *dir, bool check_pids, char *native_reason, size_t len, fp_error *err)
{
	rst_image im;
	if (verify_image(dir, NULL, err))
		return -1;
	int rc = rst_image_load_ex(&im, dir, check_pids, err);
	if (native_reason && len)
		snprintf(native_reason, len, "%s", rc ? "" : im.unsupported);
	rst_image_free(&im);
	return rc;
}

int fp_restore(const struct fp_restore_opts *o, struct fp_restore_result *r, fp_error *err)
{
	memset(r, 0, sizeof(*r));
	fp_error_clear(err);
	if (!o->dir)
		return fp_fail_code(err, FP_EXIT_USAGE, EINVAL, "no image directory given");
	long long t0 = rst_now_ns();
	if (!o->no_verify && verify_image(o->dir, r, err))
		return -1;
	int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
	if (o->log_path)
		snprintf(r->log_path, sizeof(r->log_path), "%s", o->log_path);
	else
		rst_log_default(r->log_path, sizeof(r->log_path));
	rst_log log;
	if (rst_log_open(&log, r->log_path, o->log_path != NULL, o->verbosity, err))
		return -1;
	rst_image im;
	int rc = rst_image_load_ex(&im, o->dir, false, err) || rst_image_check_pids(&im, err) ? -1 : 0;
	if (rc && !o->exact_pids && err->errnum == EEXIST) {
		rst_logf(&log, 2, "%s: restoring into a new pid namespace", err->msg);
		rst_image_free(&im);
		rst_log_close(&log);
		fp_error_clear(err);
		struct fp_restore_opts in = *o; /* the namespace's restore logs here too */
		in.log_path = r->log_path[0] ? r->log_path : NULL;
		rc = rst_pidns_restore(&in, r, timeout_ms, err);
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
		im.take_foreground = o->foreground;
		im.stop_foreground = o->stop_foreground_job;
		rc = rst_native_restore(&im, &log, timeout_ms, 0, 0, &r->pid, err);
		r->job_stopped = rc == 0 && im.job_stopped;
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
	rc = rst_criu_restore(o, r->log_path, timeout_ms, &r->pid, err);
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
