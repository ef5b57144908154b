/* SNAP's pages read ahead of a rollback to it, before its request
 * (rollback_inplace.h, rollback_int.h); and the live pages that a
 * rollback saves, copied before it too.
 *
 * A rollback in place reads SNAP's contents of the pages written since
 * SNAP before it stops the processes (rb_prefetch): at 1 GiB with 1%
 * written per step, ~2,600 scattered pages, each proven by its hash,
 * 1.9-4.7 ms of a rollback of 7.5-11 ms here. Which pages those are is
 * known before the request: the ones written since the tracking's
 * snapshot, and an exploration step goes back to that snapshot most often
 * (snap, try something, go back). So after each reply, while the session
 * waits for its next request, a thread finds them (PAGEMAP_SCAN) and reads
 * SNAP's contents of them, in passes at growing intervals while the
 * processes write more. A rollback to that snapshot then takes what they
 * read instead of its own scan and reads (rb_ahead_take), and reads at the
 * stop only the pages written since their last pass; any other request
 * leaves it unused.
 *
 * What is kept is SNAP's bytes at some addresses, proven as every read of
 * SNAP is; which pages are written back is decided at the stop, as
 * always. It is used only for the same snapshot directory (the identity
 * rollback_cache.c keeps entries by: a snapshot removed and made again
 * under its name is another) and the same process.
 *
 * The live pages: a rollback keeps a copy of every page it overwrites
 * until it has succeeded (2.2-2.6 ms of its stop at 1 GiB, 1%). A pass
 * that finds a process at rest (less than a tenth of the time since the
 * last look on a CPU: between two steps, not in one) protects its written
 * pages again in the same walk that finds them, as the snapshot's
 * pre-copy does, and then copies them (copy_live); a page written after
 * its protection reads as written at the stop, so a copy of a page that
 * does not is exactly what the page holds (rb_live_unwritten), and the
 * rollback's save takes it from there. A walk that protects a page again
 * makes its copy stale (it no longer reads as written): the copy is
 * dropped, also when a request cuts the walk short (drop_copies). Pages
 * protected again no longer read as written, yet are written since the
 * tracking's snapshot: they go into the tracking (fp_track_proc.ahead_w,
 * dirty_tracker.h), which every reader of it adds (the snapshot's
 * pre-copy, dump_incr_ahead_merge; a rollback, rb_written_now and its full
 * walk), until a snapshot or a rollback moves the tracking on. A busy
 * process is not protected: it would write most pages again at once, a
 * fault each (~0.7 us), pass after pass. FP_ROLLBACK_AHEAD_PROTECT=0 turns
 * this part off (protect_on).
 *
 * The thread runs at nice 19, not SCHED_IDLE: its page-table walks hold
 * the process's mmap lock for reading, and a thread that gets no CPU must
 * not hold it. It walks 64 MiB and reads 16 ranges (at most 256 KiB) at a
 * time, and looks between them whether it must stop: a request waits for
 * at most one such piece (0.03-1 ms measured), and lends it nice 0 while
 * it waits. Passes: 2 ms after the reply, then at doubling intervals up to
 * a second, until the next request (a command sent with `exec` may write
 * for long); each pause is at least four times what the pass before took,
 * a hundred times after the first eight. */
#include "session/rollback_int.h"
#include "config.h"
#include "fp_fault_pause.h"
#include "fp_clock.h"
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/dirty_tracker.h"
#include "dump/dump_scan_two_cpus.h"

#define FIRST_MS 2.0
#define EARLY_PASSES 8
#define LATE_MS 1000.0
#define WALK_BYTES (64ull << 20)
#define READ_RANGES 16
#define READ_BYTES (256u << 10)
#define ARENA_MAX (256ull << 20)
#define ARENA_KEEP (32ull << 20) /* kept faulted in from one job to the next */

/* SNAP's contents of one process's pages read so far: pieces sorted by
 * address, each with its bytes in the arena; and the live contents of the
 * pages it protected again (live: the same) */
struct ahead_proc {
	pid_t pid;
	struct fp_track_proc *tp;
	struct fp_range *r;
	const uint8_t **ptr;
	size_t n, cap;
	struct fp_range *lr;
	const uint8_t **lptr;
	size_t ln;
	/* its CPU time (all threads) and the time at the last look (at_rest) */
	clockid_t clk;
	bool have_clk;
	double cpu_ms, at_ms;
};

static struct {
	pid_t owner; /* the process whose thread it is: a fork's copy has none */
	_Atomic pid_t tid; /* its thread id, for its priority */
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* to the thread: a job, or stop */
	pthread_cond_t out;  /* from it: out of a pass */
	bool busy;           /* (mu) in a pass: using the context, the process */
	bool stop, go;       /* (mu) */
	unsigned gen;        /* (mu) the job's: a new job ends the one before */
	/* the job, set while the thread waits for one */
	struct fp_track *t;
	char snap_dir[PATH_MAX], session_dir[PATH_MAX];
	/* written in its passes, read by others when it is not in one */
	struct rb_ctx c;
	struct fp_rb_result r;
	bool have_ctx;
	struct rb_ident id;
	bool have_id;
	struct ahead_proc *procs;
	size_t nprocs;
	uint8_t *arena;
	size_t arena_cap, used;
	/* a pass protected pages that it could not add to the tracking: the
	 * tracking is void, dropped by the next request (fp_rollback_ahead_stop) */
	char void_why[200];
} ah = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void conds_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&ah.cv, &a);
	pthread_cond_init(&ah.out, &a);
	pthread_condattr_destroy(&a);
}

/* FP_ROLLBACK_AHEAD_PROTECT=0: passes only read the protection bits and
 * copy no live page (for an A/B measurement). */
static bool protect_on(void)
{
	static _Atomic int on = -1;
	if (on < 0)
		on = !fp_env_off("FP_ROLLBACK_AHEAD_PROTECT");
	return on;
}

static bool told_to_stop(void)
{
	pthread_mutex_lock(&ah.mu);
	bool s = ah.stop;
	pthread_mutex_unlock(&ah.mu);
	return s;
}

/* Out of the pass for ms: true when the job goes on after them, false
 * when it was told to stop or replaced (then it must touch nothing).
 * FORKPOINT_FAULT=rollback-ahead-pass holds it after them, before the
 * pass, until a test lets it go (docs/hacking.md). */
static bool pause_for(unsigned gen, double ms, const char *session_dir)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long ns = ts.tv_nsec + (long long)(ms * 1e6);
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&ah.mu);
	ah.busy = false;
	pthread_cond_broadcast(&ah.out);
	while (!ah.stop && ah.gen == gen && pthread_cond_timedwait(&ah.cv, &ah.mu, &ts) != ETIMEDOUT)
		;
	bool go = !ah.stop && ah.gen == gen;
	if (go) {
		pthread_mutex_unlock(&ah.mu);
		fp_fault_pause("rollback-ahead-pass", session_dir);
		pthread_mutex_lock(&ah.mu);
		go = !ah.stop && ah.gen == gen;
	}
	ah.busy = go;
	pthread_mutex_unlock(&ah.mu);
	return go;
}

static void forget(void)
{
	size_t used = __atomic_load_n(&ah.used, __ATOMIC_RELAXED);
	if (used > ARENA_KEEP) /* a big step's pages: given back, not kept */
		madvise(ah.arena + ARENA_KEEP, used - ARENA_KEEP, MADV_DONTNEED);
	for (size_t i = 0; i < ah.nprocs; i++) {
		free(ah.procs[i].r);
		free(ah.procs[i].ptr);
		free(ah.procs[i].lr);
		free(ah.procs[i].lptr);
	}
	free(ah.procs);
	ah.procs = NULL;
	ah.nprocs = 0;
	ah.have_id = false;
	__atomic_store_n(&ah.used, 0, __ATOMIC_RELAXED);
	if (ah.have_ctx)
		rb_free(&ah.c);
	ah.have_ctx = false;
}

/* The pages written since the tracking's snapshot in reg, walked a piece
 * at a time: 0, 1 when told to stop, -1 with err. */
static int written(pid_t pid, const struct fp_range *reg, size_t nreg, struct fp_rlist *out, fp_error *err)
{
	int fd = fp_pagemap_open(pid, err);
	if (fd < 0)
		return -1;
	struct fp_pm_scan_arg m = { 0 };
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	int rc = 0;
	for (size_t i = 0; i < nreg && !rc; i++)
		for (uint64_t s = reg[i].start; s < reg[i].end && !rc; s += WALK_BYTES) {
			struct fp_range piece = { s, reg[i].end - s > WALK_BYTES ? s + WALK_BYTES : reg[i].end };
			if (told_to_stop()) {
				rc = 1;
				break;
			}
			rc = fp_scan_two_cpus(fd, &piece, 1, &m, NULL, NULL, true, out, NULL, err);
			if (rc > 0)
				rc = fp_fail(err, ENOTSUP, "PAGEMAP_SCAN of %d: not supported by this kernel", (int)pid);
		}
	close(fd);
	return rc;
}

/* l's ranges cut into pieces of at most max bytes (a multiple of pages) */
static int cut(struct fp_rlist *l, uint64_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += (l->r[i].end - l->r[i].start + max - 1) / max;
	if (n == l->n)
		return 0;
	struct fp_range *r = malloc(n * sizeof(*r));
	if (!r)
		return -1;
	for (size_t i = 0, k = 0; i < l->n; i++)
		for (uint64_t a = l->r[i].start; a < l->r[i].end; a += max)
			r[k++] = (struct fp_range){ a, l->r[i].end - a > max ? a + max : l->r[i].end };
	free(l->r);
	l->r = r, l->n = l->cap = n;
	return 0;
}

/* FORKPOINT_FAULT=rollback-ahead-nomem-N: the Nth walk that protects
 * pages (of the helper's life) runs out of memory recording them */
static bool nomem_fault(void)
{
	static long walks;
	long n;
	return fp_fault_num("rollback-ahead-nomem-%ld%n", &n) && ++walks == n;
}

/* A test's holds on a walk that protects (docs/hacking.md), each once in
 * the helper's life (a request waits for a pass to end), with the pagemap
 * open: FORKPOINT_FAULT=rollback-ahead-protect the first walk (a test
 * execs the process under it), rollback-ahead-reprotect the first of a
 * process that has copies already once the test made the file
 * rollback-ahead-reprotect.arm, until a request asks the thread to stop
 * (the walk is then cut short after its first piece). */
static void hold_walk(bool has_copies)
{
	static bool first_held, re_held;
	if (!first_held) {
		first_held = true;
		fp_fault_pause("rollback-ahead-protect", ah.session_dir);
	}
	char arm[PATH_MAX];
	snprintf(arm, sizeof(arm), "%s/rollback-ahead-reprotect.arm", ah.session_dir);
	if (has_copies && !re_held && fp_fault_named("rollback-ahead-reprotect") && access(arm, F_OK) == 0) {
		re_held = true;
		fp_fault_pause_until("rollback-ahead-reprotect", ah.session_dir, told_to_stop);
	}
}

/* The pages written since the last protection in tp's ranges, protected
 * again a piece at a time and added to tp's ahead_w and ahead_gone at once
 * (dirty_tracker.h: from then on they read as not written), and to got.
 * 0, 1 when told to stop, -1 with err; after a failure that may have
 * protected pages no list holds, the tracking is void (ah.void_why). */
static int protect(pid_t pid, struct fp_track_proc *tp, bool has_copies, struct fp_rlist *got, fp_error *err)
{
	int fd = fp_pagemap_open(pid, err);
	if (fd < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < tp->nreg && !rc; i++)
		for (uint64_t s = tp->reg[i].start; s < tp->reg[i].end && !rc; s += WALK_BYTES) {
			struct fp_range piece = { s, tp->reg[i].end - s > WALK_BYTES ? s + WALK_BYTES : tp->reg[i].end };
			if (told_to_stop()) {
				rc = 1;
				break;
			}
			if (i == 0 && s == tp->reg[0].start)
				hold_walk(has_copies);
			struct fp_rlist w = { 0 }, g = { 0 };
			struct fp_rlist aw = { tp->ahead_w, tp->nahead_w, tp->nahead_w },
					ag = { tp->ahead_gone, tp->nahead_gone, tp->nahead_gone };
			int r = fp_scan_protect_written(fd, &piece, 1, true, &w, &g, err);
			if (!r && (nomem_fault() || fp_rlist_merge(&aw, &w) || fp_rlist_merge(&ag, &g) || fp_rlist_merge(got, &w)))
				r = fp_fail(err, ENOMEM, "out of memory");
			tp->ahead_w = aw.r, tp->nahead_w = aw.n;
			tp->ahead_gone = ag.r, tp->nahead_gone = ag.n;
			fp_rlist_free(&w), fp_rlist_free(&g);
			if (r > 0) {
				rc = fp_fail(err, ENOTSUP, "PAGEMAP_SCAN of %d: not supported by this kernel", (int)pid);
			} else if (r < 0 && err->errnum == ESRCH) {
				/* its memory is gone (an exec or an exit during the
				 * pass): so are the pages protected; the request finds
				 * the tracking of it lost and says why */
				rc = -1;
			} else if (r < 0) {
				snprintf(ah.void_why, sizeof(ah.void_why),
					 "the write tracking of %d failed between requests (%s): the next snapshot is full", (int)pid,
					 err->msg);
				rc = -1;
			}
		}
	close(fd);
	return rc;
}

/* r[0..n) (sorted, none in *pr yet) with their bytes at at, one after the
 * other, into the pieces *pr, *pptr, *pn */
static int add_to(struct fp_range **pr, const uint8_t ***pptr, size_t *pn, const struct fp_range *r, size_t n,
		  const uint8_t *at)
{
	size_t total = *pn + n;
	struct fp_range *nr = malloc((total ? total : 1) * sizeof(*nr));
	const uint8_t **np = malloc((total ? total : 1) * sizeof(*np));
	if (!nr || !np) {
		free(nr), free(np);
		return -1;
	}
	for (size_t i = 0, a = 0, b = 0; i < total; i++) {
		if (b == n || (a < *pn && (*pr)[a].start < r[b].start)) {
			nr[i] = (*pr)[a], np[i] = (*pptr)[a], a++;
		} else {
			nr[i] = r[b], np[i] = at;
			at += r[b].end - r[b].start;
			b++;
		}
	}
	free(*pr), free(*pptr);
	*pr = nr, *pptr = np, *pn = total;
	return 0;
}

static int add_pieces(struct ahead_proc *ap, const struct fp_range *r, size_t n, const uint8_t *at)
{
	int rc = add_to(&ap->r, &ap->ptr, &ap->n, r, n, at);
	ap->cap = ap->n;
	return rc;
}

/* The copies of the pages in `got` dropped: a walk protected them again,
 * so they no longer read as written, and they were written since their
 * copy (a reader would take the copy as their content). Whether or not
 * that walk went to its end: one told to stop half way protected some.
 * Out of memory, every copy of ap is dropped (they are only a shortcut). */
static void drop_copies(struct ahead_proc *ap, const struct fp_rlist *got)
{
	struct fp_range *kr = NULL;
	const uint8_t **kp = NULL;
	size_t kn = 0;
	if (!got->n || !ap->ln)
		return;
	if (fp_pieces_minus(ap->lr, ap->lptr, ap->ln, got, &kr, &kp, &kn))
		kr = NULL, kp = NULL, kn = 0;
	free(ap->lr), free(ap->lptr);
	ap->lr = kr, ap->lptr = kp, ap->ln = kn;
}

/* The live contents of p's protected pages that ap holds none of, copied
 * into the arena after their protection (so a write since shows as
 * written at the stop, and the copy of a page not written since is its
 * content); those written again since their copy were dropped before
 * (drop_copies). 0, 1 when told to stop (or the arena is full), -1 when
 * out of memory. A piece the process unmapped meanwhile is not copied. */
static int copy_live(pid_t pid, const struct fp_track_proc *tp, struct ahead_proc *ap)
{
	struct fp_rlist all = { tp->ahead_w, tp->nahead_w, tp->nahead_w }, have = { ap->lr, ap->ln, ap->ln }, need = { 0 };
	if (fp_rlist_minus(&all, &have, &need) || cut(&need, READ_BYTES)) {
		fp_rlist_free(&need);
		return -1;
	}
	int rc = 0;
	fp_mem_range rg[READ_RANGES];
	for (size_t i = 0; !rc && i < need.n;) {
		size_t k = 0, len = 0;
		while (k < READ_RANGES && i + k < need.n) {
			size_t l = need.r[i + k].end - need.r[i + k].start;
			if (len + l > READ_BYTES || ah.used + len + l > ah.arena_cap)
				break;
			rg[k] = (fp_mem_range){ need.r[i + k].start, l, ah.arena + ah.used + len };
			len += l, k++;
		}
		if (!k || told_to_stop()) {
			rc = 1;
			break;
		}
		fp_error ign;
		if (fp_mem_read_ranges(pid, rg, k, &ign) == 0) {
			if (add_to(&ap->lr, &ap->lptr, &ap->ln, need.r + i, k, ah.arena + ah.used))
				rc = -1;
			else
				__atomic_store_n(&ah.used, ah.used + len, __ATOMIC_RELAXED);
		}
		i += k;
	}
	fp_rlist_free(&need);
	return rc;
}

/* The process's CPU time now, in ms (false: not known). */
static bool cpu_now(struct ahead_proc *ap, double *ms)
{
	struct timespec ts;
	if (!ap->have_clk || clock_gettime(ap->clk, &ts))
		return false;
	*ms = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
	return true;
}

static void look(struct ahead_proc *ap)
{
	ap->have_clk = clock_getcpuclockid(ap->pid, &ap->clk) == 0;
	if (!cpu_now(ap, &ap->cpu_ms))
		ap->have_clk = false;
	ap->at_ms = fp_mono_ms_f();
}

/* Whether the process ran less than a tenth of the time since the last
 * look (its threads together): at rest between two steps. Only then are
 * its written pages protected again: a busy process would write most of
 * them again at once, each first write a fault (~0.7 us), pass after
 * pass. */
static bool at_rest(struct ahead_proc *ap)
{
	double cpu, then = ap->cpu_ms, was = ap->at_ms;
	if (!cpu_now(ap, &cpu))
		return false;
	ap->cpu_ms = cpu;
	ap->at_ms = fp_mono_ms_f();
	return (cpu - then) * 10 < ap->at_ms - was;
}

/* One pass over p: its written pages protected again and copied when it is
 * at rest, and SNAP's contents of those written since the tracking's
 * snapshot that were not read yet, read into the arena. 0, 1 when told to
 * stop (or the arena is full), -1 with err. */
static int pass(struct rb_ctx *c, struct rb_proc *p, struct ahead_proc *ap, fp_error *err)
{
	struct fp_rlist w = { 0 }, want = { 0 }, fresh = { 0 };
	struct fp_rlist have = { ap->r, ap->n, ap->cap };
	int rc;
	if (protect_on() && at_rest(ap)) {
		struct fp_rlist got = { 0 };
		double cpu = ap->cpu_ms; /* at_rest's look, just before the walk */
		rc = protect(p->pid, p->tp, ap->ln > 0, &got, err);
		if (!rc) { /* every tracked page walked: the snapshot's pre-copy may skip its walk */
			p->tp->ahead_cpu_ms = cpu;
			p->tp->ahead_walked = true;
		}
		drop_copies(ap, &got);
		if (!rc && (rc = copy_live(p->pid, p->tp, ap)) < 0)
			rc = fp_fail(err, ENOMEM, "out of memory");
		fp_rlist_free(&got);
	} else {
		rc = written(p->pid, p->tp->reg, p->tp->nreg, &w, err);
	}
	/* written since the tracking's snapshot: what reads as written, and
	 * what the passes protected again */
	if (!rc && rb_ahead_written(p, &w))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc && (fp_rlist_inter(&w, &p->snap_pages, &want) || fp_rlist_minus(&want, &have, &fresh)))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (!rc && cut(&fresh, READ_BYTES))
		rc = fp_fail(err, ENOMEM, "out of memory");
	/* fresh[0, i) read one after the other from here, added to ap at the
	 * end (also when told to stop): once a pass, not once a piece */
	size_t i = 0, from = ah.used;
	while (!rc && i < fresh.n) {
		size_t k = 0, len = 0;
		while (k < READ_RANGES && i + k < fresh.n && len + (fresh.r[i + k].end - fresh.r[i + k].start) <= READ_BYTES &&
		       ah.used + len + (fresh.r[i + k].end - fresh.r[i + k].start) <= ah.arena_cap)
			len += fresh.r[i + k].end - fresh.r[i + k].start, k++;
		size_t hot = 0;
		if (!k || told_to_stop())
			rc = 1;
		else if (rb_read_ranges(c, p, fresh.r + i, k, ah.arena + ah.used, true, &hot, err))
			rc = -1;
		if (!rc)
			__atomic_store_n(&ah.used, ah.used + len, __ATOMIC_RELAXED), i += k;
	}
	if (i && add_pieces(ap, fresh.r, i, ah.arena + from))
		rc = fp_fail(err, ENOMEM, "out of memory");
	fp_rlist_free(&w);
	fp_rlist_free(&want);
	fp_rlist_free(&fresh);
	return rc;
}

static struct fp_track_proc *tracked(struct fp_track *t, pid_t pid)
{
	for (size_t k = 0; k < t->n; k++)
		if (t->procs[k].pid == pid && t->procs[k].nreg)
			return &t->procs[k];
	return NULL;
}

/* One job: SNAP loaded, then the passes. Returns when it is over, told
 * to stop, or replaced (it touches nothing then: the context is freed by
 * the helper's thread, forget). */
static void job(unsigned gen, const char *session_dir)
{
	double wait = FIRST_MS;
	fp_error e;
	/* the processes' CPU time from the reply on (at_rest); the tracking is
	 * read only while the job is on (a request that came first may be
	 * changing it: the thread is busy, a request waits until it is not) */
	struct ahead_proc *base = NULL;
	pthread_mutex_lock(&ah.mu);
	bool go = !ah.stop && ah.gen == gen;
	pthread_mutex_unlock(&ah.mu);
	if (go)
		base = calloc(ah.t->n ? ah.t->n : 1, sizeof(*base));
	for (size_t k = 0; base && k < ah.t->n; k++) {
		base[k].pid = ah.t->procs[k].pid;
		look(&base[k]);
	}
	go = go && pause_for(gen, wait, session_dir);
	if (!go) {
		free(base);
		return;
	}
	struct rb_ctx *c = &ah.c;
	memset(&ah.r, 0, sizeof(ah.r));
	*c = (struct rb_ctx){ .snap_dir = ah.snap_dir, .t = ah.t, .r = &ah.r, .snap_dirfd = -1 };
	ah.have_ctx = true;
	if (rb_load_snapshot(c, &e) || !c->per_page || rb_ident_of(c->snap_dirfd, NULL, &ah.id) ||
	    !(ah.procs = calloc(c->nprocs ? c->nprocs : 1, sizeof(*ah.procs)))) {
		free(base);
		return;
	}
	ah.nprocs = c->nprocs;
	for (size_t i = 0; i < c->nprocs; i++) {
		ah.procs[i].pid = c->procs[i].pid;
		ah.procs[i].tp = c->procs[i].tp = tracked(ah.t, c->procs[i].pid);
		look(&ah.procs[i]);
		for (size_t k = 0; base && k < ah.t->n; k++)
			if (base[k].pid == ah.procs[i].pid && base[k].have_clk)
				ah.procs[i].cpu_ms = base[k].cpu_ms, ah.procs[i].at_ms = base[k].at_ms;
	}
	free(base);
	base = NULL;
	ah.have_id = true;
	for (int k = 0;; k++) {
		double t0 = fp_mono_ms_f();
		for (size_t i = 0; i < c->nprocs; i++)
			if (c->procs[i].tp && pass(c, &c->procs[i], &ah.procs[i], &e))
				return; /* what was read stays good */
		/* at most a fifth of a CPU while the step is fresh, then a
		 * hundredth (a walk of 1 GiB takes ~0.8 ms) */
		double took = fp_mono_ms_f() - t0, least = took * (k < EARLY_PASSES ? 4 : 100);
		wait = wait * 2 < LATE_MS ? wait * 2 : LATE_MS;
		if (!pause_for(gen, wait > least ? wait : least, session_dir))
			return;
	}
}

static void *ahead_main(void *arg)
{
	(void)arg;
	ah.tid = (pid_t)syscall(SYS_gettid);
	for (;;) {
		pthread_mutex_lock(&ah.mu);
		while (!ah.go)
			pthread_cond_wait(&ah.cv, &ah.mu);
		setpriority(PRIO_PROCESS, (id_t)ah.tid, 19); /* each job; stop may have raised it */
		ah.go = false;
		ah.busy = true;
		unsigned gen = ah.gen;
		char session_dir[PATH_MAX];
		snprintf(session_dir, sizeof(session_dir), "%s", ah.session_dir);
		pthread_mutex_unlock(&ah.mu);
		job(gen, session_dir);
		pthread_mutex_lock(&ah.mu);
		ah.busy = false;
		pthread_cond_broadcast(&ah.out);
		pthread_mutex_unlock(&ah.mu);
	}
	return NULL;
}

void fp_rollback_ahead_stop(void)
{
	if (ah.owner != getpid()) { /* a fork of the helper: its thread is not here */
		if (ah.owner) { /* and its lock may have been held at the fork */
			ah.mu = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
			conds_init();
			ah.busy = false;
		}
		ah.owner = 0;
		return;
	}
	pthread_mutex_lock(&ah.mu);
	ah.stop = true;
	pthread_cond_broadcast(&ah.cv);
	/* In a pass at nice 19 on a busy machine it may wait long for a CPU
	 * to reach its next look at `stop` (a request waited 4.8 ms for it
	 * while a frozen copy of 1 GiB was exiting): the request's priority
	 * is lent to it, as far as the helper may raise it. */
	if (ah.busy && ah.tid)
		setpriority(PRIO_PROCESS, (id_t)ah.tid, 0);
	while (ah.busy)
		pthread_cond_wait(&ah.out, &ah.mu);
	pthread_mutex_unlock(&ah.mu);
	if (ah.void_why[0] && ah.t) { /* the request sees no tracking it cannot trust */
		forget(); /* its context points into the tracking */
		fp_track_drop(ah.t, ah.void_why);
		ah.void_why[0] = '\0';
	}
}

/* fp_track.live_copies: what the last job copied of pid's live pages
 * (the thread is stopped while a request is served, and the pieces stay
 * until the next job starts) */
static size_t lend(const struct fp_track *t, pid_t pid, const struct fp_range **r, const uint8_t *const **ptr)
{
	for (size_t i = 0; ah.owner == getpid() && t == ah.t && ah.have_id && i < ah.nprocs; i++)
		if (ah.procs[i].pid == pid && ah.procs[i].ln) {
			*r = ah.procs[i].lr;
			*ptr = ah.procs[i].lptr;
			return ah.procs[i].ln;
		}
	return 0;
}

void fp_rollback_ahead_start(struct fp_track *t, const char *session_dir)
{
	fp_rollback_ahead_stop();
	forget();
	if (fp_env_off("FP_ROLLBACK_AHEAD") || !t->active || !t->parent_dir[0])
		return;
	if (!ah.arena) {
		size_t cap = fp_mem_share(RB_RESIDENT_MIN, ARENA_MAX);
		void *a = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (a == MAP_FAILED)
			return;
		madvise(a, cap, MADV_HUGEPAGE);
		ah.arena = a;
		ah.arena_cap = cap;
	}
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, conds_init);
	if (ah.owner != getpid()) {
		pthread_attr_t at;
		if (pthread_attr_init(&at))
			return;
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_t th;
		bool made = pthread_create(&th, &at, ahead_main, NULL) == 0;
		pthread_attr_destroy(&at);
		if (!made)
			return;
		ah.owner = getpid();
	}
	pthread_mutex_lock(&ah.mu);
	ah.t = t;
	t->live_copies = lend;
	snprintf(ah.snap_dir, sizeof(ah.snap_dir), "%s", t->parent_dir);
	snprintf(ah.session_dir, sizeof(ah.session_dir), "%s", session_dir); /* a test's hold files */
	ah.gen++;
	ah.stop = false;
	ah.go = true;
	pthread_cond_broadcast(&ah.cv);
	pthread_mutex_unlock(&ah.mu);
}

void fp_rollback_ahead_free(void)
{
	fp_rollback_ahead_stop();
	forget();
	if (ah.arena)
		munmap(ah.arena, ah.arena_cap);
	ah.arena = NULL;
	ah.arena_cap = 0;
}

/* n pieces (r, ptr) copied into *l and *lptr: 0, or -1 (out of memory,
 * nothing set) */
static int give(const struct fp_range *r, const uint8_t *const *ptr, size_t n, struct fp_rlist *l,
		const uint8_t ***lptr)
{
	l->r = malloc(n * sizeof(*l->r));
	*lptr = malloc(n * sizeof(**lptr));
	if (!l->r || !*lptr) {
		free(l->r), free(*lptr);
		l->r = NULL, *lptr = NULL;
		return -1;
	}
	memcpy(l->r, r, n * sizeof(*l->r));
	memcpy(*lptr, ptr, n * sizeof(**lptr));
	l->n = l->cap = n;
	return 0;
}

int rb_ahead_take(struct rb_ctx *c, struct rb_proc *p, uint64_t *bytes, fp_error *err)
{
	*bytes = 0;
	fp_rollback_ahead_stop(); /* the caller's request did already: never two users */
	struct ahead_proc *ap = NULL;
	struct rb_ident id;
	for (size_t i = 0; ah.have_id && i < ah.nprocs && !ap; i++)
		if (ah.procs[i].pid == p->pid && ah.procs[i].n)
			ap = &ah.procs[i];
	/* a hot SNAP's frozen copy gives its pages without a read or a hash */
	if (!ap || !c->per_page || p->hot || p->path_pages.n || rb_ident_of(c->snap_dirfd, NULL, &id) ||
	    !rb_ident_same(&id, &ah.id))
		return 0;
	uint64_t len = 0;
	for (size_t i = 0; i < ap->n; i++)
		len += ap->r[i].end - ap->r[i].start;
	if (len > c->resident_max) /* a window smaller than that (tests): streamed */
		return 0;
	if (give(ap->r, ap->ptr, ap->n, &p->pre, &p->pre_ptr))
		return fp_fail(err, ENOMEM, "out of memory");
	*bytes = len;
	return 1;
}

int rb_ahead_live(struct rb_ctx *c, struct rb_proc *p)
{
	fp_rollback_ahead_stop();
	struct ahead_proc *ap = NULL;
	for (size_t i = 0; ah.have_id && ah.t == c->t && i < ah.nprocs && !ap; i++)
		if (ah.procs[i].pid == p->pid && ah.procs[i].tp == p->tp && ah.procs[i].ln)
			ap = &ah.procs[i];
	if (!ap || p->live.n)
		return 0;
	return give(ap->lr, ap->lptr, ap->ln, &p->live, &p->live_ptr) ? -1 : 1;
}

unsigned long long fp_rollback_ahead_bytes(void)
{
	return __atomic_load_n(&ah.used, __ATOMIC_RELAXED);
}
