/* Incremental snapshots: a session's snapshot after the first writes only
 * the pages written since the snapshot before (its parent).
 *
 * The tracking (dump/dirty_tracker.h) is the pre-copy's write protection
 * (dump_precopy.c), kept instead of dropped: the userfaultfd stays in the
 * session helper, and every snapshot re-protects the pages it saw written
 * (after the processes resume, in a thread that the next user of the
 * tracking waits for: dump_incr_settle.c, dump_incr_recheck.c). So at the
 * next stop:
 *
 *   - a page that still carries our protection bit and was in the parent
 *     (its "coverage") is unchanged: its pagemap entry is PE_PARENT and its
 *     data stays in the parent;
 *   - every other dumped page (written, faulted in anew, in a mapping that
 *     is not tracked, or in no tracked process) is read now and written as
 *     PE_PRESENT, exactly as in a full dump.
 *
 * The protection bit is positive evidence: only our userfaultfd sets it on
 * the mappings registered with it, and any write clears it (the process,
 * the kernel on its behalf, ptrace) while the registration holds. A
 * mapping replaced meanwhile (munmap + mmap, mremap, brk growth) has no bit
 * and no registration: its pages are read, and before the stop it is
 * registered and protected for the next snapshot. A tracked mapping whose
 * registration the kernel dropped while its pages kept their bits (an
 * mremap merge) is found by track_lost.c, before and at the stop: read in
 * full and tracked anew. A process whose memory is not the tracked one any
 * more (exec, exit and pid reuse) is read in full and tracked anew.
 *
 * On disk this is CRIU's own format: a relative `parent` symlink to the
 * parent's directory and PE_PARENT entries, so `crit` shows every member
 * and `criu restore` restores any (after `forkpoint decompress`).
 *
 * Here: before the stop (prepare) and during it (final, rearm); the parent
 * link and the hand-over after it are dump_incr_keep.c's. */
#include "dump/dump_int.h"
#include "dump/ranges_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ptrace/pagemap_scan.h"
#include "ptrace/pt_mem.h"
#include "images/criu_io.h"

#define FP_PM_SCAN_WP_MATCHING 1ull

static double ms_since(int64_t t0)
{
	return (double)(dump_now_ns() - t0) / 1e6;
}

static void say_full(struct dump_ctx *c, const char *why)
{
	if (!c->st->full_why[0])
		snprintf(c->st->full_why, sizeof(c->st->full_why), "%s", why);
	dlog(c, "full: %s", why);
}

/* Whether the userfaultfd still belongs to the process's memory: after an
 * exec or an exit its mm is gone and the ioctl says ESRCH. The probe
 * unprotects one page, which then counts as written (read again). */
static bool uffd_alive(int uffd, const struct fp_range *reg, size_t nreg)
{
	if (uffd < 0 || !nreg)
		return false;
	struct uffdio_writeprotect w = { .range = { reg[0].start, CR_PAGE_SIZE }, .mode = 0 };
	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) == 0 || errno != ESRCH;
}

/* Every process of the tree, from /proc (the tree runs: it is a hint;
 * the stop lists it again exactly). */
static size_t tree_pids(pid_t pid, pid_t *out, size_t cap, size_t n)
{
	if (n < cap)
		out[n++] = pid;
	pid_t *kids;
	size_t nk;
	if (dump_list_children(pid, &kids, &nk))
		return n;
	for (size_t i = 0; i < nk; i++)
		n = tree_pids(kids[i], out, cap, n);
	free(kids);
	return n;
}

static bool has_vmflag(const char *vmflags, const char *f)
{
	size_t l = strlen(f);
	for (const char *s = vmflags; (s = strstr(s, f)); s += l)
		if ((s == vmflags || s[-1] == ' ') && (s[l] == ' ' || s[l] == '\0'))
			return true;
	return false;
}

/* Keeps the registrations that are still there and registers the mappings
 * that are new since the last snapshot (their pages are read in full this
 * time). Also reads smaps: the VmFlags the stop takes (as a pre-copy). */
static int track_new_vmas(struct dump_ctx *c, struct dump_precopy *pc, fp_error *err)
{
	/* smaps walks every page table (~40 ms per GiB): when every mapping
	 * is one the last snapshot saw, its VmFlags come from there (read
	 * after its resume); the check after this one's resume covers the
	 * time since, as it covers a pre-copy's. */
	if (dump_vmas_read(pc->pid, !pc->fv_now, &pc->fv, &pc->nfv, err))
		return -1;
	if (pc->fv_now && dump_vmas_flags_from(pc->fv, pc->nfv, pc->fv_now, pc->nfv_now)) {
		free(pc->fv);
		pc->fv = NULL;
		dlog(c, "%d: mappings changed since the last snapshot: VmFlags read anew", pc->pid);
		if (dump_vmas_read(pc->pid, true, &pc->fv, &pc->nfv, err))
			return -1;
	}
	struct fp_range *reg = NULL;
	size_t n = 0, cap = 0, added = 0, foreign = 0;
	int64_t t0 = dump_now_ns();
	/* Tracked ranges whose mapping lost its registration since (replaced,
	 * or merged by an mremap: track_lost.c) are ours no more: tracked
	 * anew below. */
	size_t nlost = 0;
	if (dump_incr_drop_lost(c, pc, NULL, &nlost, err))
		return -1;
	for (size_t i = 0; i < pc->nfv; i++) {
		const struct dump_vma *v = &pc->fv[i];
		if (!dump_precopy_protectable(v))
			continue;
		/* Ours: registered ("uw") inside a range we registered and that
		 * kept its registration. Not registered again: that is a no-op
		 * where it is ours, and where it was lost just now it would make
		 * the stale protection bits look valid (the stop checks once
		 * more, with the process stopped). */
		bool ours = has_vmflag(v->vmflags, "uw") && fp_ranges_cover(pc->reg, pc->nreg, v->start, v->end);
		if (ours) {
			if (fp_ranges_push(&reg, &n, &cap, v->start, v->end))
				goto oom;
			continue;
		}
		/* New, or lost: registered (EBUSY: the process's own
		 * userfaultfd has it) and protected as a whole. */
		struct uffdio_register r = { .range = { v->start, v->end - v->start }, .mode = UFFDIO_REGISTER_MODE_WP };
		if (ioctl(pc->uffd, UFFDIO_REGISTER, &r)) {
			if (errno == EBUSY)
				foreign++;
			dlogv(c, "%d: %" PRIx64 "-%" PRIx64 " %s not write-tracked: %s", pc->pid, v->start, v->end, v->path,
			      strerror(errno));
			continue;
		}
		struct uffdio_writeprotect w = { .range = { v->start, v->end - v->start }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
		if (ioctl(pc->uffd, UFFDIO_WRITEPROTECT, &w))
			dlogv(c, "%d: protecting %" PRIx64 "-%" PRIx64 ": %s", pc->pid, v->start, v->end, strerror(errno));
		/* Its pages are protected now, before the stop, so they will look
		 * unwritten: whatever the parent had at these addresses (another
		 * mapping, since unmapped or moved over) is not their content. */
		if (fp_ranges_push(&reg, &n, &cap, v->start, v->end) ||
		    fp_ranges_push(&pc->fresh, &pc->nfresh, &pc->capfresh, v->start, v->end) ||
		    fp_ranges_cut(&pc->cov, &pc->ncov, v->start, v->end))
			goto oom;
		added++;
		dlogv(c, "%d: new mapping %" PRIx64 "-%" PRIx64 " %s tracked from now on", pc->pid, v->start, v->end, v->path);
	}
	free(pc->reg);
	pc->reg = reg;
	pc->nreg = n;
	dlog(c, "%d: %zu mappings tracked, %zu new (registered in %.3f ms)%s%s", pc->pid, n, added, ms_since(t0),
	     foreign ? ", some registered by the process itself (read in full)" : "",
	     nlost ? ", some of them tracked anew (their registration was lost)" : "");
	return 0;
oom:
	free(reg);
	return fp_fail(err, ENOMEM, "out of memory");
}

/* This snapshot builds on no parent (removed, or the chain is deep
 * enough): every page is read now. The userfaultfds and their
 * registrations stay (taking them anew costs a stop and an injection per
 * process, more than all the pages of a small process), and the next
 * snapshots build on this one. */
static void without_parent(struct dump_ctx *c, struct fp_track *t, const char *why)
{
	say_full(c, why);
	for (size_t i = 0; i < t->n; i++) {
		free(t->procs[i].cov);
		t->procs[i].cov = NULL;
		t->procs[i].ncov = 0;
		t->procs[i].cov_known = false;
	}
	t->parent_dir[0] = '\0';
}

int dump_incr_prepare(struct dump_ctx *c, fp_error *err)
{
	struct fp_track *t = c->o->track;
	dump_fdshort_locks(c, false); /* its grace period beside the preparation */
	fp_track_settle(t); /* the last snapshot's re-protection: done first */
	if (!t->active) {
		say_full(c, t->lost[0] ? t->lost : "the first snapshot: write tracking starts with it");
		return 0;
	}
	char man[PATH_MAX + 32];
	snprintf(man, sizeof(man), "%s/%s", t->parent_dir, FP_MANIFEST_NAME);
	char nop[PATH_MAX + 160]; /* why there is no parent */
	if (access(man, F_OK) < 0) {
		snprintf(nop, sizeof(nop), "the parent snapshot %s was removed", t->parent_dir);
		without_parent(c, t, nop);
	}
	unsigned max = dump_chain_max(c);
	if (t->parent_dir[0] && !t->parent_depth)
		t->parent_depth = dump_chain_depth(t->parent_dir);
	if (t->parent_dir[0] && t->parent_depth >= max) {
		snprintf(nop, sizeof(nop),
			 "the chain of incremental snapshots up to %s is %u deep (FORKPOINT_CHAIN_MAX %u): this one "
			 "holds every page, and the next ones build on it",
			 t->parent_dir, t->parent_depth, max);
		without_parent(c, t, nop);
	}
	snprintf(c->parent_dir, sizeof(c->parent_dir), "%s", t->parent_dir);
	c->pre = calloc(t->n + 1, sizeof(*c->pre));
	if (!c->pre)
		return fp_fail(err, ENOMEM, "out of memory");
	/* The tracking moves into this dump; it comes back only if it succeeds. */
	for (size_t i = 0; i < t->n; i++) {
		struct fp_track_proc *tp = &t->procs[i];
		bool same = fp_track_start_time(tp->pid) == tp->start_time;
		if (!same || !uffd_alive(tp->uffd, tp->reg, tp->nreg)) {
			char why[128];
			snprintf(why, sizeof(why), "process %d %s since the last snapshot: its memory is written in full", tp->pid,
				 same ? "ran exec" : "exited");
			say_full(c, why);
			fp_track_proc_free(tp);
			continue;
		}
		struct dump_precopy *pc = &c->pre[c->npre++];
		memset(pc, 0, sizeof(*pc));
		pc->pid = tp->pid;
		pc->uffd = tp->uffd;
		pc->reg = tp->reg;
		pc->nreg = tp->nreg;
		pc->cov = tp->cov;
		pc->ncov = tp->ncov;
		pc->cov_known = tp->cov_known;
		pc->fv_now = tp->vmas;
		pc->nfv_now = tp->nvmas;
		pc->shim_addr = tp->shim_addr;
		pc->shim_gen = tp->shim_gen;
		pc->shim_ok = tp->shim_ok;
		memcpy(pc->shim_doubt, tp->shim_doubt, sizeof(pc->shim_doubt));
		dump_incr_store_take(pc, tp);
		pc->apw = tp->ahead_w, pc->napw = tp->nahead_w;
		pc->apw_gone = tp->ahead_gone, pc->napw_gone = tp->nahead_gone;
		pc->ahead_cpu_ms = tp->ahead_cpu_ms, pc->ahead_walked = tp->ahead_walked;
		tp->ahead_w = tp->ahead_gone = NULL;
		tp->nahead_w = tp->nahead_gone = 0;
		tp->ahead_walked = false;
		pc->tracked = true;
		tp->uffd = -1;
		tp->reg = tp->cov = NULL;
		tp->vmas = NULL;
		tp->nreg = tp->ncov = tp->nvmas = 0;
	}
	free(t->procs);
	t->procs = NULL;
	t->n = 0;
	t->active = false;
	snprintf(t->lost, sizeof(t->lost), "the previous snapshot failed");
	/* New processes (children forked since) get a userfaultfd now: their
	 * memory is read in full at the stop, tracked from then on. */
	pid_t pids[256];
	size_t np = tree_pids(c->o->pid, pids, 256, 0), missing = 0;
	for (size_t i = 0; i < np; i++) {
		bool have = false;
		for (size_t k = 0; k < c->npre; k++)
			have |= c->pre[k].pid == pids[i];
		missing += !have;
	}
	if (missing && dump_precopy_take(c, err))
		return fp_wrap(err, "tracking the writes of new processes");
	for (size_t i = 0; i < c->npre; i++) {
		struct dump_precopy *pc = &c->pre[i];
		if (!pc->tracked) {
			struct dump_vma *regv = NULL;
			size_t nregv = 0;
			char why[96];
			snprintf(why, sizeof(why), "process %d is new to the write tracking: its memory is written in full", pc->pid);
			say_full(c, why);
			dump_incr_shim_mark(c, pc);
			int rc = dump_precopy_protect(c, pc, &regv, &nregv, err);
			free(regv);
			if (rc || dump_vmas_read(pc->pid, true, &pc->fv, &pc->nfv, err))
				return fp_wrap(err, "tracking the writes of %d", pc->pid);
		} else {
			int r = dump_incr_shim_track(c, pc, err);
			if (r == 0)
				dump_incr_shim_mark(c, pc);
			if (r < 0 || (r == 0 && track_new_vmas(c, pc, err)))
				return fp_wrap(err, "tracking the new mappings of %d", pc->pid);
		}
	}
	if (dump_incr_precopy_on()) {
		if (dump_incr_precopy(c, err))
			return -1;
	}
	/* without the pre-copy, the read ahead's protected pages are pw alone:
	 * read at the stop */
	for (size_t i = 0; i < c->npre; i++)
		if (dump_incr_ahead_merge(&c->pre[i]))
			return fp_fail(err, ENOMEM, "out of memory");
	if (!dump_incr_precopy_on())
		dump_incr_pool_ready(c);
	c->incr = true;
	c->keep_track = true;
	return 1;
}

/* ---- during the stop ------------------------------------------------------ */

/* fp_pagemap_scan's sink into a range list; out of memory stops it */
struct rsink {
	struct fp_rlist *l;
	bool oom;
};

static int rsink_add(void *arg, uint64_t s, uint64_t e)
{
	struct rsink *k = arg;
	k->oom = fp_rlist_add(k->l, s, e) != 0;
	return k->oom;
}

/* The pages written since the last snapshot, re-protected by the same
 * PAGEMAP_SCAN (PM_SCAN_WP_MATCHING) for the next one: one walk of the
 * page tables while the process is stopped, where a scan for the clean
 * pages and a second walk to re-protect took two. The dump fails as a
 * whole if anything after it fails, and the tracking goes with it. */
static int written_pages(struct dump_precopy *pc, int pmfd, struct fp_rlist *out, fp_error *err)
{
	enum { VEC = 4096 };
	struct fp_page_region *vec = malloc(VEC * sizeof(*vec));
	if (!vec)
		return fp_fail(err, ENOMEM, "out of memory");
	struct fp_pm_scan_arg m = { 0 };
	/* deferred: found only, re-protected after the resume (dump_incr_recheck.c) */
	m.flags = pc->deferred ? 0 : FP_PM_SCAN_WP_MATCHING;
	m.category_mask = FP_PAGE_IS_WRITTEN;
	m.return_mask = FP_PAGE_IS_WRITTEN;
	int rc = 0;
	struct rsink k = { out, false };
	for (size_t i = 0; i < pc->nreg && !rc; i++) {
		int r = fp_pagemap_scan(pmfd, pc->reg[i].start, pc->reg[i].end, &m, vec, VEC, rsink_add, &k);
		if (k.oom)
			rc = fp_fail(err, ENOMEM, "out of memory");
		else if (r <= 0)
			rc = fp_fail(err, r ? errno : ENOTSUP, "PAGEMAP_SCAN of %d for written pages: %s", pc->pid,
				     r ? strerror(errno) : "not supported by this kernel");
	}
	free(vec);
	return rc;
}

static int pe_push(cr_pagemap_entry **pe, size_t *n, size_t *cap, uint64_t s, uint64_t e, uint32_t flags)
{
	if (e <= s)
		return 0;
	uint64_t np = (e - s) / CR_PAGE_SIZE;
	if (*n) {
		cr_pagemap_entry *l = &(*pe)[*n - 1];
		if (l->flags == flags && l->vaddr + l->nr_pages * CR_PAGE_SIZE == s) {
			l->nr_pages += np;
			return 0;
		}
	}
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		cr_pagemap_entry *x = realloc(*pe, nc * sizeof(*x));
		if (!x)
			return -1;
		*pe = x;
		*cap = nc;
	}
	cr_pagemap_entry *x = &(*pe)[(*n)++];
	memset(x, 0, sizeof(*x));
	x->vaddr = s;
	x->nr_pages = np;
	x->has_flags = true;
	x->flags = flags;
	return 0;
}

int dump_incr_rearm(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	int fd = fp_pagemap_open(p->pid, err);
	if (fd < 0)
		return -1;
	int64_t t0 = dump_now_ns();
	int rc = 0;
	for (size_t i = 0; i < pc->nreg && !rc; i++) {
		/* No output vector: the kernel only re-protects what it finds
		 * written (its fast path). */
		struct fp_pm_scan_arg a = { 0 };
		a.size = sizeof(a);
		a.flags = FP_PM_SCAN_WP_MATCHING;
		a.start = pc->reg[i].start;
		a.end = pc->reg[i].end;
		a.category_mask = FP_PAGE_IS_WRITTEN;
		a.return_mask = FP_PAGE_IS_WRITTEN;
		if (ioctl(fd, FP_PAGEMAP_SCAN, &a) < 0)
			rc = fp_fail(err, errno, "re-protecting the written pages of %d (PAGEMAP_SCAN): %s", p->pid,
				     strerror(errno));
	}
	close(fd);
	dlog(c, "%d: written pages re-protected in %.3f ms", p->pid, ms_since(t0));
	return rc;
}

/* A piece read at the stop for a page the pre-copy has a place for. */
struct place_read {
	size_t rg;      /* the read's index in the stop's list */
	uint64_t place; /* its place: offset in `dirty` */
};

/* The pre-copy's places (dump_incr_store.c): its plan, or pw. */
static const struct fp_range *places(const struct dump_precopy *pc, size_t *n)
{
	*n = pc->plan ? pc->nplan : pc->npw;
	return pc->plan ? pc->plan : pc->pw;
}

/* The offset in `dirty` of each place (back to back in address order), or
 * NULL (out of memory). */
static uint64_t *slot_offsets(const struct dump_precopy *pc)
{
	size_t n;
	const struct fp_range *pl = places(pc, &n);
	uint64_t *o = malloc((n + 1) * sizeof(*o));
	if (!o)
		return NULL;
	o[0] = 0;
	for (size_t i = 0; i < n; i++)
		o[i + 1] = o[i] + (pl[i].end - pl[i].start);
	return o;
}

/* a's place in `dirty` if there is one for it (then *stop is cut to that
 * place's end), else -1 (then *stop is cut to the next place's start).
 * *at: the place to look from (the calls go up in addresses); *pw_place:
 * the place is pw's (written, tracked), not an untracked page's. */
static int64_t slot_of(const struct dump_precopy *pc, const uint64_t *slots, size_t *at, uint64_t a, uint64_t *stop,
		       bool *pw_place)
{
	size_t n;
	const struct fp_range *pl = places(pc, &n);
	while (*at < n && pl[*at].end <= a)
		(*at)++;
	if (*at == n)
		return -1;
	const struct fp_range *r = &pl[*at];
	if (r->start > a) {
		if (r->start < *stop)
			*stop = r->start;
		return -1;
	}
	if (r->end < *stop)
		*stop = r->end;
	*pw_place = !pc->plan || pc->plan_pw[*at];
	return (int64_t)(slots[*at] + (a - r->start));
}

int dump_incr_final(struct dump_ctx *c, struct dump_proc *p, fp_error *err)
{
	struct dump_precopy *pc = p->pre;
	int64_t t0 = dump_now_ns();
	struct fp_rlist written = { 0 }, covreg = { 0 }, keep1 = { 0 }, keep = { 0 }, notpre = { 0 };
	struct fp_range *lost = NULL;
	size_t nlost = 0;
	fp_mem_range *use = NULL; /* pre-copied, not written since: taken from the copy */
	size_t nuse = 0;
	int rc = 0;
	bool alive = uffd_alive(pc->uffd, pc->reg, pc->nreg);
	if (!alive) {
		char why[128];
		snprintf(why, sizeof(why), "process %d ran exec or lost its tracking just before the stop", p->pid);
		say_full(c, why);
	}
	if (alive) {
		int fd = fp_pagemap_open(p->pid, err);
		if (fd < 0)
			return -1;
		pc->deferred = c->o->leave_running && dump_incr_defer();
		/* first: a range that lost its registration is no evidence of
		 * anything (track_lost.c); out of `reg`, none of its pages is
		 * left in the parent, and none comes from the pre-copy */
		int dropped = dump_incr_drop_lost(c, pc, &lost, &nlost, err);
		/* the lists as they are after the drop (it cuts reg and cov) */
		const struct fp_rlist reg = { pc->reg, pc->nreg, pc->nreg }, cov = { pc->cov, pc->ncov, pc->ncov },
				      pw = { pc->pw, pc->npw, pc->npw };
		if (dropped)
			rc = -1;
		else if (pc->deferred && pc->written_scanned) {
			/* found by the walk for the pages (dump_proc_pagemap), in the
			 * dumped pages: those in the tracked ranges */
			const struct fp_rlist found = { pc->written, pc->nwritten, pc->nwritten };
			if (fp_rlist_inter(&found, &reg, &written))
				rc = fp_fail(err, ENOMEM, "out of memory");
			free(pc->written);
			pc->written = NULL;
			pc->nwritten = 0;
		} else {
			rc = written_pages(pc, fd, &written, err);
		}
		const struct fp_rlist gone = { lost, nlost, nlost };
		if (!rc && fp_rlist_union(&written, &gone, &notpre))
			rc = fp_fail(err, ENOMEM, "out of memory");
		close(fd);
		/* Left in the parent: what it holds, in a tracked range, not
		 * written since (and dumped now: present or swapped, below). */
		/* (dump_incr_precopy.c) the pages written before the pre-copy are
		 * not the parent's, protected again or not */
		if (!rc && (fp_rlist_inter(&cov, &reg, &covreg) || fp_rlist_minus(&covreg, &written, &keep1) ||
			    fp_rlist_minus(&keep1, &pw, &keep) ||
			    dump_incr_precopy_usable(pc, notpre.r, notpre.n, &use, &nuse)))
			rc = fp_fail(err, ENOMEM, "out of memory");
	}
	if (!rc && c->o->verbose) {
		const struct fp_range *lists[] = { pc->reg, lost, written.r, pc->pw, keep.r };
		const size_t n[] = { pc->nreg, nlost, written.n, pc->npw, keep.n };
		dump_incr_trace(c, p->pid, lists, n, pc->pre_rd, pc->npre_rd, use, nuse);
	}
	double scan_ms = ms_since(t0);
	int64_t tph = t0;
	dump_phase(c, DPH_DIRTY_SCAN, &tph);
	/* Split the dumped runs: pages in `keep` are the parent's, pages in
	 * `use` come from the pre-copy, the others are read now. Offsets in
	 * `dirty`: the pre-copy's from its start, the stop's reads after it. */
	cr_pagemap_entry *pe = NULL;
	size_t npe = 0, cap = 0, ki = 0, ui = 0;
	uint64_t present = 0, parent = 0, stop_pages = 0, from_pre = 0;
	uint64_t pre_bytes = pc->pre_pages * CR_PAGE_SIZE;
	fp_mem_range *rg = NULL;
	size_t nrg = 0, caprg = 0;
	struct dump_seg *seg = NULL;
	size_t nseg = 0, capseg = 0;
	uint64_t *slots = NULL; /* offset in `dirty` of each place */
	size_t si = 0, capcmp = 0, capfull = 0, cappatch = 0;
	struct place_read *cmp = NULL; /* the pieces of rg that have a place */
	size_t ncmp = 0;
	free(pc->stop_full);
	pc->stop_full = NULL;
	pc->nstop_full = 0;
	pc->untracked_made = true;
	if (!rc && pc->store && !(slots = slot_offsets(pc)))
		dump_incr_store_drop(pc);
	for (size_t k = 0; k < p->npe && !rc; k++) {
		uint64_t a = p->pe[k].vaddr, end = a + p->pe[k].nr_pages * CR_PAGE_SIZE;
		while (a < end && !rc) {
			while (ki < keep.n && keep.r[ki].end <= a)
				ki++;
			while (ui < nuse && use[ui].addr + use[ui].len <= a)
				ui++;
			bool in = ki < keep.n && keep.r[ki].start <= a;
			bool pre = !in && ui < nuse && use[ui].addr <= a;
			uint64_t stop = in ? (keep.r[ki].end < end ? keep.r[ki].end : end)
					   : (ki < keep.n && keep.r[ki].start < end ? keep.r[ki].start : end);
			if (pre && use[ui].addr + use[ui].len < stop)
				stop = use[ui].addr + use[ui].len;
			else if (!in && !pre && ui < nuse && use[ui].addr < stop)
				stop = use[ui].addr;
			/* with a page store written beside the pre-copy, a page the
			 * pre-copy has a place for keeps it (read beside, copied
			 * over it after the read) */
			int64_t slot = -1;
			bool pw_place = false;
			if (!in && !pre && slots)
				slot = slot_of(pc, slots, &si, a, &stop, &pw_place);
			if (pe_push(&pe, &npe, &cap, a, stop, in ? CR_PE_PARENT : CR_PE_PRESENT)) {
				rc = fp_fail(err, ENOMEM, "out of memory");
				break;
			}
			uint64_t np = (stop - a) / CR_PAGE_SIZE;
			if (in) {
				parent += np;
				a = stop;
				continue;
			}
			uint64_t off = pre	     ? (uint64_t)(uintptr_t)use[ui].local + (a - use[ui].addr)
				       : slot >= 0 ? (uint64_t)slot
						   : pre_bytes + stop_pages * CR_PAGE_SIZE;
			/* read beside its place (rg's next), compared with it then */
			if (slot >= 0 && ncmp == capcmp) {
				capcmp = capcmp ? capcmp * 2 : 64;
				struct place_read *x = realloc(cmp, capcmp * sizeof(*x));
				if (!x) {
					rc = fp_fail(err, ENOMEM, "out of memory");
					break;
				}
				cmp = x;
			}
			if (slot >= 0)
				cmp[ncmp++] = (struct place_read){ nrg, off };
			if (!pre && !pw_place ? fp_ranges_push(&pc->stop_full, &pc->nstop_full, &capfull, a, stop)
					      : dump_incr_store_still_untracked(pc, &capfull, a, stop)) {
				rc = fp_fail(err, ENOMEM, "out of memory");
				break;
			}
			if (!pre) {
				if (nrg == caprg) {
					caprg = caprg ? caprg * 2 : 256;
					fp_mem_range *x = realloc(rg, caprg * sizeof(*rg));
					if (!x) {
						rc = fp_fail(err, ENOMEM, "out of memory");
						break;
					}
					rg = x;
				}
				rg[nrg++] = (fp_mem_range){ a, (size_t)(stop - a),
							    (void *)(uintptr_t)(pre_bytes + stop_pages * CR_PAGE_SIZE) };
				stop_pages += np;
			} else {
				from_pre += np;
			}
			present += np;
			/* the image's pages, in pagemap order: pieces of `dirty` */
			struct dump_seg *l = nseg ? &seg[nseg - 1] : NULL;
			if (l && (uintptr_t)l->data + l->npages * CR_PAGE_SIZE == off) {
				l->npages += np;
			} else {
				if (nseg == capseg) {
					capseg = capseg ? capseg * 2 : 16;
					struct dump_seg *x = realloc(seg, capseg * sizeof(*seg));
					if (!x) {
						rc = fp_fail(err, ENOMEM, "out of memory");
						break;
					}
					seg = x;
				}
				seg[nseg++] = (struct dump_seg){ a, np, (const uint8_t *)(uintptr_t)off };
			}
			a = stop;
		}
	}
	free(slots);
	/* the image's data pages are the pre-copy's places, all and in order
	 * (a page without a place would be a piece of its own) */
	if (pc->store)
		pc->store_layout = !rc && nseg == 1 && (uintptr_t)seg[0].data == 0 &&
				   seg[0].npages * CR_PAGE_SIZE == pre_bytes;
	if (pc->deferred) {
		pc->written = written.r; /* for the check after the resume */
		pc->nwritten = written.n;
	} else {
		free(written.r);
	}
	free(covreg.r);
	free(keep1.r);
	free(keep.r);
	free(notpre.r);
	free(lost);
	free(use);
	/* The pages written (or new) since the pre-copy are read now, in
	 * pagemap order, after the pre-copied ones (those with a place are
	 * copied there after the read). */
	size_t need = (size_t)(pre_bytes + stop_pages * CR_PAGE_SIZE);
	if (!rc && stop_pages && pc->dirty && pc->dirty_len < need) {
		pc->store_missed |= pc->store != NULL; /* new pages: not the places */
		dump_incr_store_drop(pc); /* its thread reads the buffer, which moves */
		/* more written since the pre-copy than its room: grown (the
		 * copied pages move with it; new pages fault as they are read) */
		size_t want = need + need / 4;
		void *x = mremap(pc->dirty, pc->dirty_len, want, MREMAP_MAYMOVE);
		if (x == MAP_FAILED)
			rc = fp_fail(err, errno, "cannot grow the buffer of written pages to %zu MiB: %s", want >> 20,
				     strerror(errno));
		else
			pc->dirty = x, pc->dirty_len = want;
	} else if (!rc && stop_pages && !pc->dirty) {
		struct fp_track *t = c->o->track;
		if (t->pool && t->pool_len >= need) {
			/* the last snapshot's buffer: its pages are faulted in already */
			pc->dirty = t->pool;
			pc->dirty_len = t->pool_len;
			t->pool = NULL;
			t->pool_len = 0;
		} else {
			size_t want = need + need / 4; /* room for the next steps' variation */
			pc->dirty = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
			if (pc->dirty == MAP_FAILED) {
				pc->dirty = NULL;
				rc = fp_fail(err, errno, "cannot map %zu MiB for the written pages: %s", want >> 20, strerror(errno));
			} else {
				pc->dirty_len = want;
			}
		}
	}
	for (size_t i = 0; i < nrg && !rc; i++)
		rg[i].local = pc->dirty + (uintptr_t)rg[i].local;
	for (size_t i = 0; i < nseg && !rc; i++)
		seg[i].data = pc->dirty + (uintptr_t)seg[i].data;
	if (!rc && stop_pages) {
		int64_t tr = dump_now_ns();
		if (dump_mem_read_two_cpus(p->pid, rg, nrg, err))
			rc = fp_wrap(err, "reading the pages %d wrote", p->pid);
		/* into their places; the store's thread writes them again
		 * (patch) where they changed since the pre-copy */
		for (size_t i = 0; i < ncmp && !rc; i++) {
			const fp_mem_range *got = &rg[cmp[i].rg];
			uint8_t *place = pc->dirty + cmp[i].place;
			if (!memcmp(got->local, place, got->len))
				continue;
			memcpy(place, got->local, got->len);
			if (pc->store &&
			    fp_ranges_push(&pc->patch, &pc->npatch, &cappatch, cmp[i].place, cmp[i].place + got->len))
				rc = fp_fail(err, ENOMEM, "out of memory");
		}
		dlog(c, "%d: %zu ranges copied in %.3f ms", p->pid, nrg, ms_since(tr));
	}
	free(cmp);
	if (pc->deferred && !rc) {
		pc->rd = rg; /* the stop's copy, compared after the resume */
		pc->nrd = nrg;
	} else {
		free(rg);
	}
	double read_ms = ms_since(t0) - scan_ms;
	dump_phase(c, DPH_DIRTY_READ, &tph);
	/* an empty list (not NULL) says "copied already" to dump_write_pages,
	 * which must not read the process */
	if (!rc && !seg && !(seg = calloc(1, sizeof(*seg))))
		rc = fp_fail(err, ENOMEM, "out of memory");
	if (rc) {
		free(pe);
		free(seg);
		return -1;
	}
	free(p->pe);
	p->pe = pe;
	p->npe = npe;
	p->npages = present;
	p->segs = seg;
	p->nsegs = nseg;
	c->st->pages_parent += parent;
	dlog(c, "%d: %" PRIu64 " pages read while stopped (written or new), %" PRIu64 " copied before the stop, %" PRIu64
		" left in the parent; scan %.3f ms, read %.3f ms, total %.3f ms",
	     p->pid, stop_pages, from_pre, parent, scan_ms, read_ms, ms_since(t0));
	return 0;
}
