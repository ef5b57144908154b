/* The re-protection after a snapshot's resume (dump_incr_recheck.c), off
 * the snapshot's critical path.
 *
 * Protecting the written pages again costs a TLB flush per written page
 * (~12 ms for 1 GiB at 1% written on a quiet machine, far more under
 * load), and nothing in the snapshot itself needs it: only the next
 * snapshot or rollback does. So a thread does it, started once the
 * snapshot is published (FP_DUMP_SETTLE_AT=resume: at the resume, beside
 * the writing of the images and the VmFlags check), and the tracking
 * carries it (fp_track.settling) until someone needs the tracking: the
 * next snapshot's preparation and fp_track_drop wait for it, the session
 * helper waits for it after its reply to `snap` (and before a rollback).
 * A caller that does not say it will wait (fp_dump_opts.settle_later)
 * gets it waited for at the end of fp_dump.
 *
 * The thread runs at a lower priority (nice +10) until someone waits for
 * it (fp_track_settle), then it is raised back (where the helper may:
 * CAP_SYS_NICE): started at the resume, it would leave the CPU to the
 * writing and the VmFlags check that the reply waits for.
 *
 * What the thread reads is read-only for everyone else: the stop's copy of
 * the written pages (also what write_images writes out) and lists made
 * for it here. It owns those copies (they go to the tracking's pool, or
 * are freed, once it is done). A check that fails drops the whole
 * tracking (the next snapshot is full and says why), as a rollback's does. */
#include "dump/dump_int.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

struct settle_job {
	pid_t pid;
	int uffd;
	struct fp_range *x; /* written and read by the stop, sorted */
	size_t nx;
	const uint8_t **copy; /* their contents at the stop */
	uint64_t prot, unp;
	double prot_ms, ms;
	int rc;
	char msg[240];
};

struct fp_track_settling {
	pthread_t th;
	bool thread;
	struct settle_job *job;
	size_t njob;
	uint8_t **buf; /* the stop's copies, owned */
	size_t *buf_len;
	size_t nbuf;
	char log[PATH_MAX]; /* the snapshot's dump.log, appended to at the end */
	int64_t t0;
	double ms;
	pthread_mutex_t mu; /* the thread's priority: */
	bool urgent;        /* someone waits for it: no lowering */
	pid_t tid;          /* lowered, from base (0: not) */
	int base;
	bool begun;         /* its thread was started */
};

/* The written pages the stop read: W ∩ R, both sorted. */
static int read_and_written(const struct dump_precopy *pc, struct fp_range **out, size_t *n)
{
	size_t cap = 0, j = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < pc->nwritten; i++) {
		uint64_t s = pc->written[i].start, e = pc->written[i].end;
		while (j < pc->nrd && pc->rd[j].addr + pc->rd[j].len <= s)
			j++;
		for (size_t k = j; k < pc->nrd && pc->rd[k].addr < e; k++) {
			uint64_t a = s > pc->rd[k].addr ? s : pc->rd[k].addr;
			uint64_t b = e < pc->rd[k].addr + pc->rd[k].len ? e : pc->rd[k].addr + pc->rd[k].len;
			if (a < b && fp_ranges_push(out, n, &cap, a, b))
				return -1;
		}
	}
	return 0;
}

static int job_make(const struct dump_precopy *pc, struct settle_job *j)
{
	memset(j, 0, sizeof(*j));
	j->pid = pc->pid;
	j->uffd = pc->uffd;
	if (read_and_written(pc, &j->x, &j->nx))
		return -1;
	j->copy = malloc((j->nx ? j->nx : 1) * sizeof(*j->copy));
	if (!j->copy)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < j->nx; i++) {
		while (pc->rd[k].addr + pc->rd[k].len <= j->x[i].start)
			k++; /* x[i] lies inside rd[k] */
		j->copy[i] = (const uint8_t *)pc->rd[k].local + (j->x[i].start - pc->rd[k].addr);
	}
	return 0;
}

/* Exactly these pages: a page the process writes after its resume that was
 * protected at the stop is written since this snapshot, and must stay so
 * (a protection over whole mappings would hide it). The written pages the
 * stop did not read (not present then) stay unprotected: written for the
 * next snapshot too. */
static void job_run(struct settle_job *j)
{
	int64_t t0 = dump_now_ns();
	fp_error e;
	for (size_t i = 0; i < j->nx; i++) {
		struct uffdio_writeprotect w = { .range = { j->x[i].start, j->x[i].end - j->x[i].start },
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		/* ENOENT: unmapped meanwhile (a new mapping there is read in full) */
		if (ioctl(j->uffd, UFFDIO_WRITEPROTECT, &w) && errno != ENOENT) {
			j->rc = errno;
			snprintf(j->msg, sizeof(j->msg), "re-protecting the pages %d wrote: %s", (int)j->pid, strerror(errno));
			return;
		}
		j->prot += (j->x[i].end - j->x[i].start) / CR_PAGE_SIZE;
	}
	j->prot_ms = (double)(dump_now_ns() - t0) / 1e6;
	if (dump_incr_settle(j->pid, j->uffd, j->x, j->nx, j->copy, &j->unp, &e)) {
		j->rc = e.errnum ? e.errnum : EIO;
		snprintf(j->msg, sizeof(j->msg), "%s", e.msg);
	}
	j->ms = (double)(dump_now_ns() - t0) / 1e6;
}

static void *settle_run(void *arg)
{
	struct fp_track_settling *s = arg;
	pthread_mutex_lock(&s->mu);
	if (!s->urgent) {
		errno = 0;
		s->base = getpriority(PRIO_PROCESS, 0);
		pid_t tid = gettid();
		if (!errno && s->base < 19 && setpriority(PRIO_PROCESS, (id_t)tid, s->base + 10 > 19 ? 19 : s->base + 10) == 0)
			s->tid = tid;
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < s->njob; i++)
		job_run(&s->job[i]);
	s->ms = (double)(dump_now_ns() - s->t0) / 1e6;
	return NULL;
}

static void settling_free(struct fp_track_settling *s)
{
	for (size_t i = 0; s->job && i < s->njob; i++) {
		free(s->job[i].x);
		free(s->job[i].copy);
	}
	for (size_t i = 0; i < s->nbuf; i++)
		if (s->buf[i])
			munmap(s->buf[i], s->buf_len[i]);
	free(s->job);
	free(s->buf);
	free(s->buf_len);
	free(s);
}

/* FP_DUMP_SETTLE_AT=resume starts the thread at the resume, beside the
 * writing; by default it starts once the snapshot is published, just
 * before the reply: on two busy CPUs a third thread slowed the writing and
 * the VmFlags check that the reply waits for. */
static bool settle_at_resume(void)
{
	static _Atomic int r = -1;
	if (r < 0) {
		const char *e = getenv("FP_DUMP_SETTLE_AT");
		r = e && !strcmp(e, "resume");
	}
	return r;
}

static void settling_run(struct dump_ctx *c, struct fp_track_settling *s)
{
	s->begun = true;
	s->thread = pthread_create(&s->th, NULL, settle_run, s) == 0;
	if (!s->thread) {
		s->urgent = true;
		settle_run(s); /* no thread: in line */
	}
	dlog(c, "re-protection of the written pages of %zu process(es) started %.3f ms after the resume%s", s->njob,
	     (double)(dump_now_ns() - s->t0) / 1e6, s->thread ? "" : " (in line: no thread)");
}

static void settling_join(struct fp_track_settling *s)
{
	if (!s->thread)
		return;
	pthread_mutex_lock(&s->mu);
	s->urgent = true;
	if (s->tid)
		setpriority(PRIO_PROCESS, (id_t)s->tid, s->base); /* may be refused: it finishes anyway */
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->th, NULL);
	s->thread = false;
}

void dump_incr_settle_start(struct dump_ctx *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nprocs; i++)
		n += c->procs[i].pre && c->procs[i].pre->deferred && c->procs[i].pre->uffd >= 0;
	if (!n)
		return;
	struct fp_track_settling *s = calloc(1, sizeof(*s));
	if (s) {
		s->job = calloc(n, sizeof(*s->job));
		s->buf = calloc(n, sizeof(*s->buf));
		s->buf_len = calloc(n, sizeof(*s->buf_len));
	}
	bool ok = s && s->job && s->buf && s->buf_len;
	for (size_t i = 0; i < c->nprocs && ok; i++) {
		struct dump_precopy *pc = c->procs[i].pre;
		if (pc && pc->deferred && pc->uffd >= 0)
			ok = !job_make(pc, &s->job[s->njob++]);
	}
	if (!ok) {
		/* the tracking cannot be trusted: dropped with the dump's end */
		for (size_t i = 0; i < c->nprocs; i++)
			if (c->procs[i].pre && c->procs[i].pre->deferred)
				c->procs[i].pre->untrusted = true;
		dlog(c, "write tracking dropped: out of memory for its re-protection");
		if (s)
			s->nbuf = 0, settling_free(s); /* settling_free takes NULL lists */
		return;
	}
	for (size_t i = 0; i < c->nprocs; i++) {
		struct dump_precopy *pc = c->procs[i].pre;
		if (!pc || !pc->deferred || pc->uffd < 0)
			continue;
		/* the copies are the thread's now (write_images only reads them) */
		s->buf[s->nbuf] = pc->dirty;
		s->buf_len[s->nbuf++] = pc->dirty_len;
		pc->dirty = NULL;
		pc->dirty_len = 0;
	}
	if (c->o->log_path)
		snprintf(s->log, sizeof(s->log), "%s", c->o->log_path);
	else if (c->final_dir)
		snprintf(s->log, sizeof(s->log), "%s/%s", c->final_dir, FP_DUMP_LOG_NAME);
	s->t0 = dump_now_ns();
	pthread_mutex_init(&s->mu, NULL);
	c->settling = s;
	if (settle_at_resume())
		settling_run(c, s);
}

void dump_incr_settle_abort(struct dump_ctx *c)
{
	dump_incr_store_drop_all(c); /* its thread reads the buffers freed here */
	if (!c->settling)
		return;
	settling_join(c->settling);
	settling_free(c->settling);
	c->settling = NULL;
}

void dump_incr_settle_hand_over(struct dump_ctx *c, struct fp_track *t)
{
	if (c->settling && !c->settling->begun)
		settling_run(c, c->settling);
	t->settling = c->settling;
	c->settling = NULL;
}

static void log_line(const struct fp_track_settling *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(const struct fp_track_settling *s, const char *fmt, ...)
{
	FILE *f = s->log[0] ? fopen(s->log, "ae") : NULL;
	if (!f)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(f, "(after the snapshot) ");
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	va_end(ap);
	fclose(f);
}

/* t's re-protection, done (NULL if none); *waited: ms waited for it. */
static struct fp_track_settling *settling_take(struct fp_track *t, double *waited)
{
	struct fp_track_settling *s = t->settling;
	t->settling = NULL;
	int64_t w0 = dump_now_ns();
	if (s)
		settling_join(s);
	*waited = (double)(dump_now_ns() - w0) / 1e6;
	return s;
}

void fp_track_settle(struct fp_track *t)
{
	double waited;
	struct fp_track_settling *s = settling_take(t, &waited);
	if (!s)
		return;
	char why[300] = "";
	for (size_t i = 0; i < s->njob; i++) {
		const struct settle_job *j = &s->job[i];
		bool tracked = false;
		for (size_t k = 0; k < t->n && !tracked; k++)
			tracked = t->procs[k].pid == j->pid && t->procs[k].uffd == j->uffd;
		if (!tracked)
			continue; /* not kept by the snapshot (gone meanwhile) */
		log_line(s, "%d: %" PRIu64 " written pages re-protected after the resume in %.3f ms, compared with the stop's "
			 "copy: %" PRIu64 " written meanwhile (left unprotected), %.3f ms in all%s%s",
			 (int)j->pid, j->prot, j->prot_ms, j->unp, j->ms, j->rc ? "; FAILED: " : "", j->rc ? j->msg : "");
		if (j->rc && !why[0])
			snprintf(why, sizeof(why), "the write tracking could not be re-armed after the snapshot: %s", j->msg);
	}
	log_line(s, "re-protection done %.3f ms after the resume; waited %.3f ms for it", s->ms, waited);
	if (why[0]) {
		settling_free(s);
		fp_track_drop(t, why);
		return;
	}
	/* The largest copy becomes the pool (faulted in already) for the next
	 * snapshot, unless it is big: the helper's memory stays bounded. */
	for (size_t i = 0; i < s->nbuf && t->active; i++) {
		if (!s->buf[i] || s->buf_len[i] > fp_track_pool_max() || s->buf_len[i] <= t->pool_len)
			continue;
		if (t->pool)
			munmap(t->pool, t->pool_len);
		t->pool = s->buf[i];
		t->pool_len = s->buf_len[i];
		s->buf[i] = NULL;
	}
	settling_free(s);
}

void fp_track_settle_discard(struct fp_track *t)
{
	double waited;
	struct fp_track_settling *s = settling_take(t, &waited);
	if (s)
		settling_free(s);
}
