/* The incremental snapshot's part of the dumper (dump_incremental.c and the
 * dump_incr_*.c files), declared apart from dump_int.h, which includes it
 * where the types it uses are known. */
#ifndef FP_DUMP_INCR_INT_H
#define FP_DUMP_INCR_INT_H

#include "dump/ranges_ops.h"
#include "ptrace/pagemap_scan.h"

/* dump_incr_content.c: at an incremental stop (dump_proc_pagemap's one
 * walk), the tracked ranges whose registration holds, the pages in them
 * (sorted, as the walk would find them: present or swapped, not the zero
 * page) and which of those were written since the protection, from the
 * fast loop for written pages; the others are walked as before.
 * 1: f filled; 0: not available here (the walk); -1 error. on: not
 * FP_DUMP_FAST_WRITTEN=0. */
struct dump_incr_fast {
	struct fp_rlist tracked, pages, written;
};
bool dump_incr_fast_on(void);
int dump_incr_fast(struct dump_ctx *c, struct dump_proc *p, int fd, struct dump_incr_fast *f, fp_error *err);
void dump_incr_fast_free(struct dump_incr_fast *f);
/* the pages with content (present or swapped, not the zero page) in
 * spans, and which of them are written: the full walk's view */
int dump_incr_content_walk(pid_t pid, int fd, const struct fp_rlist *spans, struct fp_rlist *pages,
			   struct fp_rlist *written, fp_error *err);
/* dump_incr_fastcheck.c: FP_DUMP_FAST_CHECK=1, f against the full walk */
int dump_incr_fast_check(struct dump_ctx *c, struct dump_proc *p, int fd, const struct dump_incr_fast *f, fp_error *err);
/* whether [start, end) lies in one of f's tracked ranges; fn over the
 * parts of l (sorted) in [start, end), in order */
bool dump_incr_fast_covers(const struct dump_incr_fast *f, uint64_t start, uint64_t end);
int dump_incr_fast_each(const struct fp_rlist *l, uint64_t start, uint64_t end, int (*fn)(void *arg, uint64_t s, uint64_t e),
			void *arg);

/* dump_incremental.c (dump_incr_keep.c: link_parent, keep): snapshots
 * against a parent, with o->track.
 * prepare: before the stop; 1 incremental (c->pre holds the tracking), 0
 * not (a full dump that starts tracking; st->full_why says why), -1 error.
 * final: during the stop, for p with p->pre when c->incr (after
 * dump_proc_pagemap): PE_PARENT for the pages not written, reads the others.
 * rearm: during the stop, re-protects what was written (keep_track).
 * link_parent: the `parent` symlink, when a page is in the parent.
 * keep: after the snapshot is published, the tracking goes to o->track. */
int dump_incr_prepare(struct dump_ctx *c, fp_error *err);
/* dump_chain.c: the deepest chain a session's next snapshot may extend
 * (FORKPOINT_CHAIN_MAX, default 256), and the levels of dir's chain
 * (dir itself counts one). */
unsigned dump_chain_max(struct dump_ctx *c);
unsigned dump_chain_depth(const char *dir);
int dump_incr_final(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
/* Cuts from pc->reg (and pc->cov) the tracked ranges whose mapping is not
 * registered any more (track_lost.c), saying so in dump.log; *out (may be
 * NULL) gets them, *nlost their number (dump_incr_lost.c). */
int dump_incr_drop_lost(struct dump_ctx *c, struct dump_precopy *pc, struct fp_range **out, size_t *nlost,
			fp_error *err);
/* Verbose only: the incremental stop's lists in dump.log (dump_incr_trace.c):
 * tracked, lost, written, protected by the pre-copy, left in the parent,
 * then the pre-copy's copied and used pieces. */
void dump_incr_trace(struct dump_ctx *c, pid_t pid, const struct fp_range *const lists[5], const size_t n[5],
		     const fp_mem_range *copied, size_t ncopied, const fp_mem_range *taken, size_t ntaken);
int dump_incr_rearm(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_incr_link_parent(struct dump_ctx *c, const char *final, fp_error *err);
void dump_incr_keep(struct dump_ctx *c, const char *final);
/* dump_incr_shim.c: new mappings registered from the shim's change log.
 * mark: the log's position before a walk of /proc (none without a shim);
 * track: 1 when registered from the log, 0 when /proc must do it (dump.log
 * says why), -1 on error; check: after the stop, a trackable mapping in
 * /proc that the log never showed sends the next snapshot to /proc. */
void dump_incr_shim_mark(struct dump_ctx *c, struct dump_precopy *pc);
int dump_incr_shim_track(struct dump_ctx *c, struct dump_precopy *pc, fp_error *err);
void dump_incr_shim_check(struct dump_ctx *c, struct dump_proc *p);
/* The stop may take the preparation's VmFlags (no smaps while stopped): the
 * shim's log shows no change since, and the process has at least
 * FP_SHIM_FLAGS_KEPT_MIN mappings (fewer: smaps costs less than the check
 * after the resume). */
#define FP_SHIM_FLAGS_KEPT_MIN 1024
bool dump_incr_shim_flags_kept(struct dump_ctx *c, const struct dump_precopy *pc);
/* dump_incr_settle.c: after the resume, for every process whose written
 * pages stayed unprotected through the stop (pc->deferred), a thread
 * re-protects them, then unprotects again those that the running process
 * changed before their protection was back, so the next snapshot sees
 * them as written (dump_incr_settle). Never fails the snapshot.
 * start: at the resume (c->settling); hand_over: with the tracking, in
 * dump_incr_keep (fp_track_settle waits for it); abort: waits for it and
 * forgets it (the dump failed: the tracking goes anyway). */
void dump_incr_settle_start(struct dump_ctx *c);
void dump_incr_settle_hand_over(struct dump_ctx *c, struct fp_track *t);
void dump_incr_settle_abort(struct dump_ctx *c);
/* The comparison of that check, for any caller that wrote or read the
 * pages while the process was stopped and protected them after its resume
 * (the rollback in place too): x (sorted, nx ranges) against copy[i], the
 * contents they must hold; every page that differs, cannot be read, or
 * has no copy (copy[i] NULL) is unprotected again (written for the next
 * snapshot). *unprotected: how many pages. */
int dump_incr_settle(pid_t pid, int uffd, const struct fp_range *x, size_t nx, const uint8_t *const *copy,
		     uint64_t *unprotected, fp_error *err);
/* Whether the written pages are re-protected after the resume
 * (FP_DUMP_REPROTECT_STOPPED=1: during the stop, as before). */
bool dump_incr_defer(void);
/* (incremental) dump_incr_precopy.c: the written pages protected again then
 * copied before the stop (FP_DUMP_NO_PRECOPY_WRITTEN=1: off; usable: those
 * not in w, written at the stop); else dump_incr_pool.c: the stop's buffer. */
bool dump_incr_precopy_on(void);
int dump_incr_precopy(struct dump_ctx *c, fp_error *err);
/* pc->apw and apw_gone (the read ahead's, dirty_tracker.h) into pw and
 * pw_gone, as written since the parent: nonzero when out of memory. */
int dump_incr_ahead_merge(struct dump_precopy *pc);
int dump_incr_precopy_usable(const struct dump_precopy *pc, const struct fp_range *w, size_t nw, fp_mem_range **out,
			     size_t *nout);
void dump_incr_pool_ready(struct dump_ctx *c);
/* dump_incr_store.c: the pre-copy's pages written into the page store by a
 * thread while they are copied. wanted: whether it may be (stores without
 * compression); start: before the copy (false: not done,
 * written after the stop as before); ready: the buffer's first `upto` bytes
 * are copied; finish: in dump_write_pages, 1 when the store is in place
 * (p->ph, p->pages_hash set), 0 when the caller writes it, -1 error; drop:
 * the thread stopped and joined, its file removed (any time, twice too). */
bool dump_incr_store_wanted(const struct dump_ctx *c);
bool dump_incr_store_start(struct dump_ctx *c, struct dump_precopy *pc, uint64_t bytes);
void dump_incr_store_ready(struct dump_precopy *pc, uint64_t upto);
/* After an early reply: the stores' threads, held until then, start. */
void dump_incr_store_go(struct dump_ctx *c);
int dump_incr_store_finish(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
void dump_incr_store_drop(struct dump_precopy *pc);
void dump_incr_store_drop_all(struct dump_ctx *c);
/* dump_incr_reserve.c: pid's reserve file renamed to dirfd/name (its
 * filling stopped where it is) and returned open for writing, its zeros'
 * bytes in *bytes; -1 when there is none, or its filling failed (the
 * store makes a new file). */
int dump_reserve_take(struct fp_track *t, pid_t pid, int dirfd, const char *name, uint64_t *bytes);
/* take: the tracking's part for the store (back-off after misses, the
 * untracked pages the last stop read) into pc, at the preparation; give:
 * back to the tracking after this snapshot, at its hand-over. */
struct fp_track_proc;
void dump_incr_store_take(struct dump_precopy *pc, struct fp_track_proc *tp);
void dump_incr_store_give(struct dump_precopy *pc, struct fp_track_proc *tp);
/* [a, stop) is in the image, copied before the stop or read over a place:
 * its part that was a place of untracked memory stays one (stop_full). */
int dump_incr_store_still_untracked(struct dump_precopy *pc, size_t *cap, uint64_t a, uint64_t stop);

#endif
