/* Rollback in place (rollback_inplace.h): stop, compare, save, write back,
 * re-arm the write tracking, resume; or undo. */
#include "session/rollback_int.h"
#include "fp_fault_pause.h"
#include "fp_clock.h"
#include "procfs.h"
#include "images/criu_io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump_int.h"
#include "overlay/workspace.h"
#include "session/session_hold.h"

/* The helper's own CPU time: what a rollback costs, apart from waiting
 * for a CPU on a loaded machine. */
static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* FORKPOINT_FAULT=rollback-after-N-pages, once per helper. */
static long fault_after(void)
{
	static _Atomic bool fired;
	long n;
	if (fired || !fp_fault_num("rollback-after-%ld-pages%n", &n) || n < 0)
		return -1;
	fired = true;
	return n;
}

/* How much of SNAP a rollback holds at once (rollback_int.h): an eighth of
 * the memory available now, between RB_RESIDENT_MIN and RB_RESIDENT_MAX.
 * Beyond it every page is read and proven twice. FP_ROLLBACK_RESIDENT_MIB
 * sets it (A/B). */
static size_t rb_resident_max(void)
{
	const char *e = getenv("FP_ROLLBACK_RESIDENT_MIB");
	if (e && *e)
		return (size_t)strtoull(e, NULL, 10) << 20;
	return fp_mem_share(RB_RESIDENT_MIN, RB_RESIDENT_MAX);
}

/* FORKPOINT_FAULT=rollback-window-N-pages: small targets take the
 * streamed path of big rollbacks (rb_save). */
static void window(struct rb_ctx *c)
{
	long n;
	c->resident_max = rb_resident_max();
	c->window = RB_CHUNK;
	if (fp_fault_num("rollback-window-%ld-pages%n", &n) && n > 0 && (size_t)n < RB_CHUNK / CR_PAGE_SIZE) {
		c->resident_max = 0;
		c->window = (size_t)n * CR_PAGE_SIZE;
	}
}

void fp_rb_mark(struct fp_rb_result *r, const char *name)
{
	double now = fp_mono_ms_f();
	size_t at = strlen(r->steps);
	if (r->step_at > 0 && at + 32 < sizeof(r->steps))
		snprintf(r->steps + at, sizeof(r->steps) - at, "%s%s %.2f", at ? " " : "", name, now - r->step_at);
	r->step_at = now;
}

/* FP_ROLLBACK_SAVE=0 (rollback_inplace.h) */
static bool save_pages(void)
{
	const char *e = getenv("FP_ROLLBACK_SAVE");
	return !e || !*e || strcmp(e, "0");
}

static void release(struct rb_ctx *c)
{
	for (size_t i = 0; i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		fp_error e2;
		if (p->ij_init)
			fp_inject_fini(&p->ij, &e2);
		p->ij_init = false;
		if (p->seized)
			fp_pt_detach(&p->pt, &e2);
		p->seized = false;
	}
}

static int run(struct rb_ctx *c, fp_error *err)
{
	struct fp_rb_result *r = c->r;
	char *why = r->why;
	size_t len = sizeof(r->why);
	fp_error le;
	double tl = fp_mono_ms_f(), cpu0 = cpu_ms();
	if (rb_load_snapshot(c, &le) < 0) {
		snprintf(why, len, "%s", le.msg);
		return FP_RB_NOT_POSSIBLE;
	}
	fp_rb_mark(r, "images");
	int rc = rb_check_tree(c, why, len, err);
	fp_rb_mark(r, "tree");
	if (rc == 1)
		rc = rb_load_path(c, why, len, err);
	fp_rb_mark(r, "path");
	if (rc != 1)
		return rc < 0 ? (snprintf(why, len, "%s", err->msg), FP_RB_NOT_POSSIBLE) : FP_RB_NOT_POSSIBLE;
	double tp = fp_mono_ms_f();
	r->load_ms = tp - tl;
	rb_hot_attach(c);
	fp_rb_mark(r, "hot_attach");
	/* SNAP's pages that will be written back, read while the processes
	 * still run (rollback_read.c); a failure here only means they are
	 * read at the stop */
	for (size_t i = 0; i < c->nprocs; i++)
		if (rb_prefetch(c, &c->procs[i], &le))
			fprintf(stderr, "forkpoint: rollback of %d: reading SNAP's pages ahead: %s\n", (int)c->procs[i].pid,
				le.msg);
	double t0 = fp_mono_ms_f();
	r->prefetch_ms = t0 - tp;
	fp_rb_mark(r, "prefetch");
	for (size_t i = 0; i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		if (fp_pt_seize(&p->pt, p->pid, 0, &le) < 0) {
			snprintf(why, len, "cannot stop process %d: %s", (int)p->pid, le.msg);
			return FP_RB_NOT_POSSIBLE;
		}
		p->seized = true;
	}
	double ts = fp_mono_ms_f();
	r->stop_ms = ts - t0;
	fp_rb_mark(r, "seize");
	rb_locks_start(c);
	for (size_t i = 0; i < c->nprocs; i++) {
		double td = fp_mono_ms_f();
		rc = rb_diff(c, &c->procs[i], why, len, &le);
		r->diff_ms += fp_mono_ms_f() - td;
		fp_rb_mark(r, "d_threadset");
		td = fp_mono_ms_f();
		if (rc == 1)
			rc = rb_save(c, &c->procs[i], &le) ? -1 : 1;
		r->save_ms += fp_mono_ms_f() - td;
		if (rc != 1) {
			if (rc < 0)
				snprintf(why, len, "%s", le.msg);
			return FP_RB_NOT_POSSIBLE;
		}
	}
	/* fds opened again share SNAP's descriptions; those that stay, too */
	bool by_bpf = false;
	rc = rb_fd_shares(c, &by_bpf, why, len, &le);
	fp_rb_mark(r, by_bpf ? "d_shares" : "d_shares_kcmp");
	/* what the pipes and sockets hold: SNAP's bytes, or a full restore */
	if (rc == 1)
		rc = rb_diff_queues(c, why, len, &le);
	fp_rb_mark(r, "d_queues");
	if (rc == 1) { /* and the file locks they hold: SNAP's */
		rc = rb_diff_locks(c, why, len, &le);
		fp_rb_mark(r, "d_locks");
	}
	if (rc != 1) {
		if (rc < 0)
			snprintf(why, len, "%s", le.msg);
		return FP_RB_NOT_POSSIBLE;
	}
	/* From here on the processes change: every failure undoes. */
	struct fp_ws_switch sw;
	if (c->ws && fp_ws_restore_begin(c->ws, c->snap, &sw, &le) < 0) {
		snprintf(why, len, "workspace: %s", le.msg);
		return FP_RB_NOT_POSSIBLE;
	}
	fp_rb_mark(r, "ws_begin");
	size_t applied = 0;
	rc = 0;
	double ta = fp_mono_ms_f();
	for (; applied < c->nprocs && !rc; applied++)
		rc = rb_apply(c, &c->procs[applied], err);
	if (rc) {
		if (c->ws)
			fp_ws_restore_abort(c->ws, &sw);
		uint64_t unsaved = 0;
		for (size_t i = 0; c->no_save && i < applied; i++)
			unsaved += c->procs[i].pages_done;
		if (unsaved) { /* nothing to bring the pages written back with */
			/* killed while still stopped: a mix never runs a
			 * single instruction (the caller restores SNAP) */
			for (size_t i = 0; i < c->nprocs; i++)
				kill(c->procs[i].pid, SIGKILL);
			r->mixed = true;
			snprintf(why, len, "the rollback in place failed after writing %llu pages that were not saved "
				 "(FP_ROLLBACK_SAVE=0): %s", (unsigned long long)unsaved, err->msg);
			return FP_RB_BROKEN;
		}
		int urc = 0;
		fp_error ue;
		for (size_t i = applied; i-- > 0;)
			if (rb_undo(c, &c->procs[i], urc ? &le : &ue))
				urc = -1;
		if (urc) {
			fp_wrap(err, "and bringing back the state before failed too: %s", ue.msg);
			return FP_RB_BROKEN;
		}
		return FP_RB_UNDONE;
	}
	fp_rb_mark(r, "apply");
	if (c->ws && fp_ws_restore_commit(c->ws, &sw, &le) < 0)
		fprintf(stderr, "forkpoint: warning: workspace restore commit: %s\n", le.msg);
	fp_rb_mark(r, "ws_commit");
	for (size_t i = 0; i < c->nprocs; i++) {
		struct rb_proc *p = &c->procs[i];
		if (rb_commit(c, p, &le))
			fprintf(stderr, "forkpoint: warning: rollback of %d: closing the fds opened since: %s\n", (int)p->pid,
				le.msg);
	}
	double tr = fp_mono_ms_f();
	r->apply_ms = tr - ta;
	fp_rb_mark(r, "commit");
	/* the tracking follows SNAP now */
	bool tracked = true;
	for (size_t i = 0; i < c->nprocs && tracked; i++)
		if (rb_rearm(c, &c->procs[i], &le))
			tracked = false;
	if (tracked) {
		snprintf(c->t->parent_dir, sizeof(c->t->parent_dir), "%s", c->snap_dir);
		c->t->parent_depth = 0; /* SNAP's: counted by the next snapshot */
	} else {
		char w[300];
		snprintf(w, sizeof(w), "the write tracking could not follow a rollback: %s", le.msg);
		fp_track_drop(c->t, w);
	}
	r->nprocs = (unsigned)c->nprocs;
	for (size_t i = 0; i < c->nprocs; i++)
		r->nthreads += (unsigned)c->procs[i].nth;
	double tq = fp_mono_ms_f();
	r->rearm_ms = tq - tr;
	fp_rb_mark(r, "rearm");
	release(c);
	fp_rb_mark(r, "resume");
	r->resume_ms = fp_mono_ms_f() - tq;
	r->ms = fp_mono_ms_f() - t0;
	r->cpu_ms = cpu_ms() - cpu0;
	r->in_place = true;
	return FP_RB_DONE;
}

int fp_rollback_inplace(pid_t root, const char *snap_dir, const char *snap, struct fp_ws *ws, struct fp_track *t,
			dev_t tty, struct fp_rb_result *r, fp_error *err)
{
	struct fp_rb_result keep = *r; /* the caller's marks so far */
	memset(r, 0, sizeof(*r));
	memcpy(r->steps, keep.steps, sizeof(r->steps));
	r->step_at = keep.step_at;
	fp_error fault;
	/* tests of the full restore's own recovery; rollback-full-N: the
	 * first N rollbacks only (the next ones in place, after the arming
	 * that a full restore ends with) */
	static long rollbacks;
	long first_n = 0;
	rollbacks++;
	if (fp_session_fault("rollback-full", &fault) < 0 ||
	    (fp_fault_num("rollback-full-%ld%n", &first_n) && rollbacks <= first_n)) {
		snprintf(r->why, sizeof(r->why), "FORKPOINT_FAULT=%s", getenv("FORKPOINT_FAULT"));
		return FP_RB_NOT_POSSIBLE;
	}
	/* the live sockets have moved on: only sockets made anew in repair
	 * mode (a full restore) take a snapshot's connections back */
	if (cr_has_tcp_streams(snap_dir)) {
		snprintf(r->why, sizeof(r->why), "the snapshot holds established TCP connections (made anew by a full restore)");
		return FP_RB_NOT_POSSIBLE;
	}
	fp_rb_mark(r, "tcp");
	struct rb_ctx c = { .root = root, .snap_dir = snap_dir, .snap = snap, .ws = ws, .t = t, .r = r,
			    .snap_dirfd = -1, .fault_after = fault_after(), .tty = tty, .no_save = !save_pages() };
	window(&c);
	/* the snapshots' page buffer, faulted in already: one process's saved
	 * pages go there (rb_old_buf), and it is theirs again afterwards */
	c.pool = t->pool, c.pool_len = t->pool_len;
	t->pool = NULL, t->pool_len = 0;
	rb_rearm_cancel();
	int rc = run(&c, err);
	release(&c);
	rb_free(&c);
	fp_rb_mark(r, "free");
	if (rc != FP_RB_DONE) { /* else fp_rollback_settle, after the reply */
		rb_rearm_cancel();
		rb_bufs_trim();
	}
	if (c.pool && t->active && !t->pool)
		t->pool = c.pool, t->pool_len = c.pool_len;
	else if (c.pool)
		munmap(c.pool, c.pool_len);
	return rc;
}

void fp_rollback_arm(pid_t root, const char *snap_dir, struct fp_track *t)
{
	fp_track_drop(t, "");
	rb_objmap_learn(t, snap_dir); /* the pipes and sockets it made anew */
	struct fp_dump_opts o = { .pid = root };
	struct fp_dump_stats st = { 0 };
	struct dump_ctx c = { 0 };
	c.o = &o, c.st = &st, c.dirfd = -1, c.t0 = dump_now_ns();
	fp_error err;
	int rc = dump_precopy_take(&c, &err);
	t->procs = rc ? NULL : calloc(c.npre ? c.npre : 1, sizeof(*t->procs));
	for (size_t i = 0; t->procs && i < c.npre; i++) {
		struct dump_precopy *pc = &c.pre[i];
		struct dump_vma *regv = NULL;
		size_t nregv = 0;
		dump_incr_shim_mark(&c, pc);
		if (dump_precopy_protect(&c, pc, &regv, &nregv, &err)) {
			free(regv);
			rc = -1;
			break;
		}
		free(regv);
		struct fp_track_proc *tp = &t->procs[t->n++];
		dump_incr_hand_over(pc, tp);
		/* nothing is known to equal SNAP: the processes ran before this */
		tp->cov = NULL;
		tp->ncov = 0;
		tp->cov_known = false;
	}
	dump_ctx_free(&c);
	if (rc || !t->procs || !t->n) {
		fp_track_drop(t, rc ? "the write tracking could not start after a restore" : "no process could be write-tracked");
		return;
	}
	t->active = true;
	snprintf(t->parent_dir, sizeof(t->parent_dir), "%s", snap_dir);
	t->parent_depth = 0;
}
