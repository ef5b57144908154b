/* Rollback in place: `forkpoint restore SESSION SNAP` brings the session's
 * live processes back to SNAP without creating them again, when they are
 * the processes SNAP was taken of (same pids and threads, no exec since,
 * tracked by the session's write tracking since a snapshot of SNAP's
 * chain).
 *
 * What changed since SNAP is the union of what the write tracking saw
 * written since its last snapshot (PAGEMAP_SCAN), the pages every snapshot
 * between that one and SNAP holds itself (their PE_PRESENT entries, along
 * the chain through the snapshots' common ancestor), and the mapping, fd,
 * cwd and register state compared with SNAP's images. Only that is written
 * back; the processes stay stopped meanwhile.
 *
 * Before anything is overwritten, what is overwritten is saved in the
 * helper (the live contents of those pages and of the mappings removed,
 * registers, fd offsets, cwd): if a step fails, the saved state is written
 * back, so the session ends in SNAP's state or in the one before.
 *
 * FORKPOINT_FAULT=rollback-after-N-pages makes the rollback fail on purpose
 * once N pages were written back (once per helper process), for tests. */
#ifndef FP_ROLLBACK_INPLACE_H
#define FP_ROLLBACK_INPLACE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"
#include "dump/dirty_tracker.h"

struct fp_ws;

struct fp_rb_result {
	bool in_place;          /* done in place */
	char why[512];          /* why not (nothing was changed then) */
	double ms;              /* stop to resume */
	double cpu_ms;          /* CPU time of the helper, load to resume */
	uint64_t pages;         /* pages written back */
	uint64_t vma_ops;       /* mmap/munmap/mprotect/brk injected */
	uint64_t verified_bytes; /* hashed to prove SNAP: its image files, and
				    the pages read (or its whole chain, for
				    snapshots without per-page hashes) */
	uint64_t fd_ops;        /* lseek/close/reopen/chdir injected */
	unsigned nprocs, nthreads;
	/* where the time went (ms): reading SNAP's images, reading SNAP's
	 * pages that will be written back (before the stop), stopping, comparing,
	 * saving what is overwritten (and reading SNAP's pages), writing back,
	 * re-arming the tracking, resuming */
	double load_ms, prefetch_ms, stop_ms, diff_ms, save_ms, apply_ms, rearm_ms, resume_ms;
	/* where SNAP's page map came from: "kept" (resolved before), "parent"
	 * (over its parent's kept one), "files" (every pagemap of its chain) */
	const char *pagemap_from;
	/* SNAP's pages read for it: from its frozen copy (a hot SNAP,
	 * rollback_hot.c) and from the page stores */
	uint64_t hot_bytes, files_bytes;
	/* of SNAP's pages written back, those read ahead before the request
	 * (rollback_ahead.c) */
	uint64_t ahead_bytes;
	/* of the live pages saved for an undo, those the read ahead copied
	 * (not written since it protected them again) */
	uint64_t saved_ahead_bytes;
	/* where the fds to compare came from: "table" (the shim's, checked
	 * by /proc's count, rollback_fdtab.c) or "proc", and why (fds_note:
	 * the first process's reason); "" when no process got that far */
	char fds_from[8];
	char fds_note[240];
	/* FP_RB_BROKEN of a rollback that had written pages it had not
	 * saved (FP_ROLLBACK_SAVE=0): what is live is a mix, not the state
	 * before; the caller restores SNAP in full without keeping it */
	bool mixed;
	/* every step's time, end to end (ms since the one before, from the
	 * request's arrival to the reply): "name ms name ms ..." */
	char steps[1024];
	double step_at;
};

/* Appends `name` and the ms since the last mark to r->steps. */
void fp_rb_mark(struct fp_rb_result *r, const char *name);

enum fp_rb_rc {
	FP_RB_DONE = 1,         /* the processes are in SNAP's state */
	FP_RB_NOT_POSSIBLE = 0, /* r->why says why; nothing changed */
	FP_RB_UNDONE = -1,      /* failed half way, the state before is back (err) */
	FP_RB_BROKEN = -2,      /* failed, and so did bringing the state back (err),
				   or there was none to bring (r->mixed): the
				   caller must restore SNAP in full */
};

/* FP_ROLLBACK_SAVE=0: the live pages that the rollback overwrites are not
 * saved first (the save read them all during the stop: 1.8-2.6 ms of a
 * ~14 ms rollback at 1 GiB, 1% written). A failure before any page is
 * written still undoes everything (mappings, fds, registers are saved as
 * always); one after leaves SNAP's pages and the live ones mixed, and
 * then SNAP, durable and proven on disk, is restored in full, the mix
 * thrown away (r->mixed). So the session ends in SNAP's state or in the
 * one before, as with the save, unless that full restore fails too: then
 * the session ends (its processes killed) with an error saying so, never
 * in a mix. The default (unset, 1) saves the pages. */

/* root: the session's target; snap_dir: SNAP's directory; ws: the
 * session's workspace or NULL; snap: SNAP's name (for the workspace);
 * tty: the session's own terminal (a shell session's pty, held by the
 * helper), whose foreground and modes may go back in place, or 0: then a
 * process on a terminal is restored in full. */
int fp_rollback_inplace(pid_t root, const char *snap_dir, const char *snap, struct fp_ws *ws, struct fp_track *t,
			dev_t tty, struct fp_rb_result *r, fp_error *err);

/* After fp_rollback_inplace returned FP_RB_DONE and its caller replied:
 * the pages written since the last snapshot and by the rollback are
 * protected again (rollback_rearm.c), off the rollback's pause and its
 * caller's wait. Must come before any other operation on the session. */
void fp_rollback_settle(struct fp_track *t);

/* rollback_cache.c: after the helper wrote snapshot dir (and replied),
 * its pages are resolved over its parent's kept resolution, so that a
 * rollback to it reads one pagemap, not its chain's; at `rm` of dir, what
 * is kept of it goes (and of any snapshot whose chain changed). */
void fp_rollback_preload(const char *dir);
void fp_rollback_forget(const char *dir);
/* How many (snapshot, process) resolutions are kept (tests). */
size_t fp_rollback_cached(void);

/* rollback_ahead.c: after a reply to `snap` or to a rollback in place,
 * a thread reads SNAP's contents of the pages written since the
 * tracking's snapshot while the session waits for its next request, so
 * that a rollback to that snapshot finds most of them read. Every request
 * but `status` and `exec` stops it first (fp_rollback_ahead_stop), and
 * the session's end frees
 * what it read (fp_rollback_ahead_free). FP_ROLLBACK_AHEAD=0: never. */
void fp_rollback_ahead_start(struct fp_track *t, const char *session_dir);
void fp_rollback_ahead_stop(void);
void fp_rollback_ahead_free(void);
/* SNAP's bytes it has read so far (for `status`). */
unsigned long long fp_rollback_ahead_bytes(void);

/* After a full restore of snap_dir: write tracking for the new processes,
 * so that the next rollback can be in place. Nothing is assumed about
 * their pages (they ran before the tracking started): the next rollback
 * writes back every page of the snapshot once, the next snapshot reads
 * every page once. Failure only means no tracking (t->lost says why). */
void fp_rollback_arm(pid_t root, const char *snap_dir, struct fp_track *t);

#endif
