/* An incremental snapshot's written pages, copied before its stop (as live
 * migration's iterative pre-copy does).
 *
 * Without this the stop reads every page written since the parent (~2,600
 * scattered pages for 1% of 1 GiB: ~3.4 ms of process_vm_readv, half the
 * pause). Here, while the process still runs (dump_incr_prepare, last):
 *
 *   1. one PAGEMAP_SCAN with PM_SCAN_WP_MATCHING finds the pages written
 *      since the parent (no protection bit) and protects exactly those
 *      again, in the same walk (the kernel flushes the TLB of each page
 *      table it changed before the ioctl returns): the list it returns is
 *      the list it protected (`pw`);
 *   2. THEN those pages are copied (process_vm_readv) into the snapshot's
 *      buffer (`dirty`, from its start; `pre_rd` says where each is).
 *
 * A write to such a page after 1 clears the bit again: the stop's walk
 * shows it written and the stop reads it, as before. A page that still
 * carries the bit at the stop was not written since 1, so the copy of 2,
 * made after 1, is its content. Protecting after the copy would be wrong:
 * a write between the copy and the protection would leave a stale copy
 * under a bit that says "unchanged" (tests/e2e/snap_incr_precopy.sh fails
 * with the order reversed).
 *
 * At the stop (dump_incr_final), for a dumped page in a tracked range:
 *
 *   - written at the stop: read now (and re-protected after the resume,
 *     dump_incr_settle.c);
 *   - in `pw`, not written at the stop, copied: taken from the copy;
 *   - in `pw`, not copied (that piece failed: unmapped meanwhile): read
 *     now (it is protected: unchanged since 1, so the read is exact);
 *   - in neither, in the parent's pages: left in the parent (PE_PARENT).
 *     Pages in `pw` never are: they were written since the parent.
 *
 * Only the stop's walk decides which pages the image has: a page copied
 * here and zapped (MADV_DONTNEED, munmap, mremap away) before the stop is
 * not in it, so its copy is simply not used; a page faulted in again at an
 * address is a new page without the bit (written). A process whose memory
 * went (exec, exit) before the stop has no usable scan: every page is read
 * (dump_incr_final ignores the copy then).
 *
 * The tracking's invariant after the snapshot is the same as without the
 * pre-copy: a page not reported written equals its content in this
 * snapshot (pre-copied pages not written since 1 are protected, and hold
 * exactly what the copy has). A failure in step 1 (after the kernel may
 * have protected pages we did not record) fails the preparation: the
 * tracking is dropped and the snapshot is full, saying why. A failure in
 * step 2 only means those pages are read at the stop.
 *
 * PM_SCAN_WP_MATCHING acts only on mappings registered for asynchronous
 * write protection and skips the others: a tracked range whose mapping
 * lost its registration (track_lost.c) is not protected here, and the
 * stop, which checks for that with the process stopped, reads it in full.
 * It is not registered again here: that would make the stale protection
 * bits of such a mapping look valid (the cause of e2e/snap_incr_race's
 * rare failures until then). The one mapping in a tracked range it could
 * wrongly act on is one the process registered with a userfaultfd of its
 * own, in asynchronous write-protect mode, after ours was dropped from it:
 * we know of no program that does.
 *
 * Pages that a rollback's read ahead protected again between requests
 * (dirty_tracker.h: ahead_w) were written since the parent too, though
 * step 1 does not find them: they join `pw` before step 2
 * (dump_incr_ahead_merge), so they are copied, never left in the parent;
 * those it found emptied join `pw_gone`, unless written again since.
 *
 * FP_DUMP_NO_PRECOPY_WRITTEN=1 turns it off (the stop reads them all;
 * the read ahead's pages are `pw` alone then, read at the stop). */
#include "dump/dump_int.h"
#include "config.h"
#include "fp_fault_pause.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump_scan_two_cpus.h"
#include "ptrace/pagemap_scan.h"
#include "ptrace/pt_mem.h"

/* FORKPOINT_FAULT=snap-precopy-gap-N-ms (tests): N ms between the
 * protection and the copy, and snap-precopy-wait-N-ms: N ms between the
 * copy and the stop, so that a process writing without pause surely writes,
 * zaps and remaps pages in both windows (tests/e2e/snap_incr_precopy.sh;
 * the full pre-copy waits too: dump_precopy_copy.c). */
void dump_fault_sleep(const char *pattern)
{
	long ms = 0;
	if (!fp_fault_num(pattern, &ms) || ms <= 0 || ms > 10000)
		return;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

bool dump_incr_precopy_on(void)
{
	static _Atomic int on = -1;
	if (on < 0) {
		on = !fp_env_flag("FP_DUMP_NO_PRECOPY_WRITTEN");
	}
	return on;
}

/* Step 1: the written pages, protected again and listed in pc->pw (and
 * of them the emptied ones in pc->pw_gone). */
static int find_and_protect(struct dump_precopy *pc, fp_error *err)
{
	int fd = fp_pagemap_open(pc->pid, err);
	if (fd < 0)
		return -1;
	struct fp_rlist pw = { 0 }, gone = { 0 };
	int rc = fp_scan_protect_written(fd, pc->reg, pc->nreg, false, &pw, &gone, err);
	pc->pw = pw.r, pc->npw = pw.n;
	pc->pw_gone = gone.r, pc->npw_gone = gone.n;
	if (rc)
		rc = rc > 0 ? fp_fail(err, ENOTSUP, "PAGEMAP_SCAN of %d protecting its written pages: not supported by this "
				      "kernel", pc->pid)
			    : fp_wrap(err, "PAGEMAP_SCAN of %d protecting its written pages", pc->pid);
	close(fd);
	return rc;
}

/* Step 1 is not needed when the rollback's read ahead walked every tracked
 * page of the process, protecting the written ones again and copying them
 * (dirty_tracker.h: ahead_walked), and the process has hardly run since:
 * the pages it wrote after that walk are few, and the stop's walk finds
 * and reads them (it decides which pages the image has either way; a copy
 * of a page written since is never used). That walk of 1 GiB cost 0.5-0.8
 * ms of each snapshot's wall time at 1% written, nearly always finding
 * nothing new. FP_DUMP_PRECOPY_WALK=1 walks always (A/B). */
#define REST_CPU_MS 0.5 /* of CPU since the read ahead's walk: a few hundred pages written at most */

static double rest_cpu_ms(void)
{
	/* FP_DUMP_PRECOPY_REST_CPU_MS (tests): another bound, so that many
	 * pages written after the walk are left to the stop */
	const char *e = getenv("FP_DUMP_PRECOPY_REST_CPU_MS");
	double v = e && *e ? strtod(e, NULL) : REST_CPU_MS;
	return v >= 0 ? v : REST_CPU_MS;
}

static bool walk_needed(struct dump_precopy *pc, double *ran_ms)
{
	clockid_t clk;
	struct timespec ts;
	if (!pc->ahead_walked || fp_env_flag("FP_DUMP_PRECOPY_WALK") || clock_getcpuclockid(pc->pid, &clk) ||
	    clock_gettime(clk, &ts))
		return true;
	*ran_ms = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 - pc->ahead_cpu_ms;
	return *ran_ms > rest_cpu_ms();
}

static uint8_t *buffer_for(struct dump_ctx *c, size_t need, size_t *len)
{
	struct fp_track *t = c->o->track;
	if (t->pool && t->pool_len >= need) {
		uint8_t *b = t->pool; /* the last snapshot's: faulted in already */
		*len = t->pool_len;
		t->pool = NULL;
		t->pool_len = 0;
		return b;
	}
	size_t want = need + need / 4;
	uint8_t *b = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (b == MAP_FAILED)
		return NULL;
	*len = want;
	return b;
}

static int pre_rd_push(struct dump_precopy *pc, size_t *cap, const fp_mem_range *r)
{
	if (pc->npre_rd == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		fp_mem_range *x = realloc(pc->pre_rd, nc * sizeof(*x));
		if (!x)
			return -1;
		pc->pre_rd = x;
		*cap = nc;
	}
	pc->pre_rd[pc->npre_rd++] = *r;
	return 0;
}

/* The copy on two CPUs, each taking pieces of ranges from a counter (the
 * copy is mostly the kernel's per-page walk and pinning, ~1.4-1.9 us a
 * scattered page), a piece that fails read again range by range (one
 * unmapped meanwhile). With a page store written beside (dump_incr_store.c)
 * the buffer's complete prefix is handed to its thread as pieces end. */
struct copy_job {
	struct dump_precopy *pc;
	fp_mem_range *rg;
	const uint8_t **src; /* per range: a copy of it to take, or NULL: read */
	bool *ok;     /* per range: copied */
	bool *ended;  /* per range: its piece is done (mu) */
	size_t n, prefix; /* (mu) ranges [0, prefix) all ended */
	uint64_t total;
	pthread_mutex_t mu;
};

/* rd[0..n) read at once, and those that failed one by one: ok[at[k]] */
static void read_batch(struct copy_job *j, const fp_mem_range *rd, const size_t *at, size_t n)
{
	fp_error ign;
	bool all = fp_mem_read_ranges(j->pc->pid, rd, n, &ign) == 0;
	for (size_t k = 0; k < n; k++)
		j->ok[at[k]] = all || fp_mem_read_ranges(j->pc->pid, &rd[k], 1, &ign) == 0;
}

static void copy_some(void *arg, size_t from, size_t to)
{
	struct copy_job *j = arg;
	enum { BATCH = 64 };
	fp_mem_range rd[BATCH];
	size_t at[BATCH], n = 0;
	for (size_t i = from; i < to; i++) {
		if (j->src[i]) {
			memcpy(j->rg[i].local, j->src[i], j->rg[i].len);
			j->ok[i] = true;
			continue;
		}
		at[n] = i, rd[n++] = j->rg[i];
		if (n == BATCH)
			read_batch(j, rd, at, n), n = 0;
	}
	if (n)
		read_batch(j, rd, at, n);
	if (!j->pc->store)
		return;
	pthread_mutex_lock(&j->mu);
	for (size_t i = from; i < to; i++)
		j->ended[i] = true;
	while (j->prefix < j->n && j->ended[j->prefix])
		j->prefix++;
	uint64_t upto = j->prefix < j->n ? (uint64_t)((uint8_t *)j->rg[j->prefix].local - j->pc->dirty) : j->total;
	pthread_mutex_unlock(&j->mu);
	dump_incr_store_ready(j->pc, upto);
}

/* pc->plan: pw, and the pages the last stop read in full that pw does not
 * hold, in address order (*from_pw: which are pw's); *extra: the pages
 * added. Nothing (0) when there are none; -1: out of memory. */
static int make_plan(struct dump_precopy *pc, bool **from_pw, uint64_t *extra)
{
	struct fp_range *u = NULL;
	size_t nu = 0, capu = 0, k = 0;
	*extra = 0;
	for (size_t i = 0; i < pc->nuntracked; i++) {
		uint64_t s = pc->untracked[i].start, e = pc->untracked[i].end;
		while (k < pc->npw && pc->pw[k].end <= s)
			k++;
		for (size_t j = k; s < e; j++) {
			uint64_t cut = j < pc->npw && pc->pw[j].start < e ? pc->pw[j].start : e;
			if (cut > s) {
				if (fp_ranges_push(&u, &nu, &capu, s, cut))
					return free(u), -1;
				*extra += (cut - s) / CR_PAGE_SIZE;
			}
			if (j >= pc->npw || pc->pw[j].start >= e)
				break;
			s = pc->pw[j].end > s ? pc->pw[j].end : s;
		}
	}
	if (!nu)
		return 0;
	size_t n = pc->npw + nu;
	pc->plan = malloc(n * sizeof(*pc->plan));
	*from_pw = malloc(n * sizeof(**from_pw));
	if (!pc->plan || !*from_pw) {
		free(pc->plan), free(*from_pw), free(u);
		pc->plan = NULL, *from_pw = NULL;
		return -1;
	}
	for (size_t i = 0, a = 0, b = 0; i < n; i++) {
		bool take_pw = b == nu || (a < pc->npw && pc->pw[a].start < u[b].start);
		pc->plan[i] = take_pw ? pc->pw[a++] : u[b++];
		(*from_pw)[i] = take_pw;
	}
	pc->nplan = n;
	free(u);
	return 1;
}

/* Step 2: pc->pw copied into pc->dirty from its start, in pw's order (with
 * a page store written beside, pc->plan's order: untracked pages between);
 * pre_rd lists the pw pieces read (locals: offsets into dirty). */
static void copy_written(struct dump_ctx *c, struct dump_precopy *pc, uint64_t pages, const struct fp_range *vr,
			 const uint8_t *const *vp, size_t vn)
{
	bool *from_pw = NULL;
	uint64_t extra = 0;
	bool beside = dump_incr_store_wanted(c) && !pc->store_skip;
	if (pc->store_skip && dump_incr_store_wanted(c))
		dlog(c, "%d: the page store is written after the stop (the last one written beside was not the image's; "
			"%u more snapshot(s) before trying again)", pc->pid, pc->store_skip - 1);
	if (beside && make_plan(pc, &from_pw, &extra) < 0)
		dlog(c, "%d: out of memory for the page store's places: written after the stop", pc->pid);
	/* room for the pages written until the stop (the stop grows it if
	 * not enough) */
	size_t need = (size_t)(pages + extra + (pages + extra) / 4 + 256) * CR_PAGE_SIZE;
	if (!pc->dirty && !(pc->dirty = buffer_for(c, need, &pc->dirty_len))) {
		pc->dirty = NULL;
		pc->dirty_len = 0;
		dlog(c, "%d: no buffer for the written pages before the stop: read at the stop", pc->pid);
		free(from_pw);
		return;
	}
	if (!(beside && dump_incr_store_start(c, pc, (pages + extra) * CR_PAGE_SIZE)) && pc->plan) {
		/* no store: the untracked pages are read at the stop only */
		free(pc->plan), free(from_pw);
		pc->plan = NULL, from_pw = NULL;
		pc->nplan = 0;
	}
	if (pc->plan) {
		pages += extra;
		dlog(c, "%d: %" PRIu64 " pages the last stop read in full (untracked) copied too: the page store has their "
			"places", pc->pid, extra);
	}
	const struct fp_range *list = pc->plan ? pc->plan : pc->pw;
	size_t nlist = pc->plan ? pc->nplan : pc->npw, cap_rg = nlist + 2 * vn;
	struct copy_job j = { .pc = pc, .total = pages * CR_PAGE_SIZE };
	j.rg = malloc(cap_rg * sizeof(*j.rg));
	j.src = calloc(cap_rg, sizeof(*j.src));
	j.ok = calloc(cap_rg, sizeof(*j.ok));
	j.ended = calloc(cap_rg, sizeof(*j.ended));
	bool *pwf = malloc(cap_rg * sizeof(*pwf)); /* per range of rg: pw's */
	if (!j.rg || !j.src || !j.ok || !j.ended || !pwf) {
		free(j.rg), free(j.src), free(j.ok), free(j.ended), free(pwf), free(from_pw);
		dump_incr_store_drop(pc);
		dlog(c, "%d: out of memory for the copy before the stop: read at the stop", pc->pid);
		return;
	}
	/* list's ranges back to back into `dirty`; cut where the live copies
	 * not written since begin and end: a piece inside one is taken from
	 * it (a written page of pw only; an untracked page's bits say
	 * nothing), the others are read */
	size_t off = 0, v = 0;
	uint64_t from_live = 0;
	for (size_t i = 0; i < nlist; i++) {
		bool is_pw = !from_pw || from_pw[i];
		for (uint64_t a = list[i].start, e; a < list[i].end; a = e) {
			while (is_pw && v < vn && vr[v].end <= a)
				v++;
			bool in = is_pw && v < vn && vr[v].start <= a;
			e = in ? vr[v].end : is_pw && v < vn ? vr[v].start : list[i].end;
			if (e > list[i].end)
				e = list[i].end;
			j.rg[j.n] = (fp_mem_range){ a, (size_t)(e - a), pc->dirty + off };
			j.src[j.n] = in ? vp[v] + (a - vr[v].start) : NULL;
			pwf[j.n++] = is_pw;
			off += e - a;
			from_live += in ? e - a : 0;
		}
	}
	c->st->pages_ahead += from_live / CR_PAGE_SIZE;
	if (from_live)
		dlog(c, "%d: %" PRIu64 " pages from the copies the rollback's read ahead made (not written since)",
		     pc->pid, from_live / CR_PAGE_SIZE);
	pthread_mutex_init(&j.mu, NULL);
	dump_two_cpus(j.n, copy_some, &j);
	pthread_mutex_destroy(&j.mu);
	size_t cap = 0, lost = 0;
	for (size_t i = 0; i < j.n; i++) {
		if (!pwf[i])
			continue; /* an untracked page: read again at the stop */
		fp_mem_range r = { j.rg[i].addr, j.rg[i].len, (void *)(uintptr_t)((uint8_t *)j.rg[i].local - pc->dirty) };
		/* not listed: read at the stop, which is exact too */
		if (!j.ok[i] || pre_rd_push(pc, &cap, &r))
			lost += j.rg[i].len / CR_PAGE_SIZE;
	}
	free(j.rg), free(j.src), free(j.ok), free(j.ended), free(pwf);
	pc->plan_pw = from_pw;
	pc->pre_pages = pages;
	if (lost)
		dlog(c, "%d: %zu written pages not copied before the stop (unmapped meanwhile?): read at the stop", pc->pid,
		     lost);
}

int dump_incr_ahead_merge(struct dump_precopy *pc)
{
	if (!pc->napw && !pc->napw_gone)
		return 0;
	struct fp_rlist pw = { pc->pw, pc->npw, pc->npw }, gone = { pc->pw_gone, pc->npw_gone, pc->npw_gone };
	struct fp_rlist apw = { pc->apw, pc->napw, pc->napw }, ag = { pc->apw_gone, pc->napw_gone, pc->napw_gone };
	struct fp_rlist ag_now = { 0 };
	/* emptied then, and not written since (written ones are in pw now) */
	int rc = fp_rlist_minus(&ag, &pw, &ag_now) || fp_rlist_merge(&pw, &apw) || fp_rlist_merge(&gone, &ag_now) ? -1 : 0;
	fp_rlist_free(&ag_now);
	pc->pw = pw.r, pc->npw = pw.n;
	pc->pw_gone = gone.r, pc->npw_gone = gone.n;
	if (!rc) {
		fp_rlist_free(&apw), fp_rlist_free(&ag);
		pc->apw = pc->apw_gone = NULL;
		pc->napw = pc->napw_gone = 0;
	}
	return rc;
}

int dump_incr_precopy(struct dump_ctx *c, fp_error *err)
{
	if (!dump_incr_precopy_on())
		return 0;
	const struct fp_track *t = c->o->track;
	for (size_t i = 0; i < c->npre; i++) {
		struct dump_precopy *pc = &c->pre[i];
		if (!pc->tracked || pc->uffd < 0)
			continue; /* new to the tracking: read in full at the stop */
		int64_t t0 = dump_now_ns();
		double ran = 0;
		bool walk = walk_needed(pc, &ran);
		if (walk && find_and_protect(pc, err))
			return fp_wrap(err, "finding the pages %d wrote before the stop", pc->pid);
		if (!walk)
			dlog(c, "%d: no walk before the stop: the read ahead protected its written pages again while it was at "
				"rest (%.3f ms of CPU since); those written since are read at the stop", pc->pid, ran);
		/* the read ahead's live copies, less the pages written since
		 * their protection (found just now, and protected again) */
		const struct fp_range *lr = NULL;
		const uint8_t *const *lp = NULL;
		struct fp_range *vr = NULL;
		const uint8_t **vp = NULL;
		size_t vn = 0, ln = t->live_copies ? t->live_copies(t, pc->pid, &lr, &lp) : 0;
		struct fp_rlist now = { pc->pw, pc->npw, pc->npw };
		if (ln && fp_pieces_minus(lr, lp, ln, &now, &vr, &vp, &vn))
			vn = 0; /* out of memory: all read */
		size_t from_ahead = pc->napw;
		if (dump_incr_ahead_merge(pc)) {
			free(vr), free(vp);
			return fp_fail(err, ENOMEM, "out of memory");
		}
		if (from_ahead)
			dlog(c, "%d: %zu range(s) of written pages protected again by the rollback's read ahead added", pc->pid,
			     from_ahead);
		double prot_ms = (double)(dump_now_ns() - t0) / 1e6;
		dump_fault_sleep("snap-precopy-gap-%ld-ms%n");
		uint64_t pages = 0;
		for (size_t k = 0; k < pc->npw; k++)
			pages += (pc->pw[k].end - pc->pw[k].start) / CR_PAGE_SIZE;
		if (pages)
			copy_written(c, pc, pages, vr, vp, vn);
		free(vr), free(vp);
		dlog(c, "%d: %" PRIu64 " written pages (%zu ranges) protected again in %.3f ms and copied before the stop, "
			"%.3f ms in all",
		     pc->pid, pages, pc->npw, prot_ms, (double)(dump_now_ns() - t0) / 1e6);
	}
	dump_fault_sleep("snap-precopy-wait-%ld-ms%n");
	return 0;
}

/* The copied pieces not written at the stop (w: written, sorted): their
 * copy is their content. Locals stay offsets into dirty. */
int dump_incr_precopy_usable(const struct dump_precopy *pc, const struct fp_range *w, size_t nw, fp_mem_range **out,
			     size_t *nout)
{
	size_t cap = 0, j = 0;
	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < pc->npre_rd; i++) {
		uint64_t s = pc->pre_rd[i].addr, e = s + pc->pre_rd[i].len;
		uintptr_t off = (uintptr_t)pc->pre_rd[i].local;
		while (j < nw && w[j].end <= s)
			j++;
		for (size_t k = j; s < e; k++) {
			uint64_t cut = k < nw && w[k].start < e ? (w[k].start > s ? w[k].start : s) : e;
			if (cut > s) {
				if (*nout == cap) {
					cap = cap ? cap * 2 : 256;
					fp_mem_range *x = realloc(*out, cap * sizeof(*x));
					if (!x)
						return -1;
					*out = x;
				}
				(*out)[(*nout)++] = (fp_mem_range){ s, (size_t)(cut - s), (void *)(off + (s - pc->pre_rd[i].addr)) };
			}
			if (cut >= e)
				break;
			s = w[k].end > cut ? w[k].end : cut;
		}
	}
	return 0;
}
