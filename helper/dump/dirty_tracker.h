/* Write tracking that a session keeps between its snapshots, so that each
 * snapshot after the first writes only the pages written since the one
 * before (an incremental snapshot: CRIU's `parent` link and PE_PARENT
 * pagemap entries, see dump/dump_incremental.c).
 *
 * Per process it holds the userfaultfd that the first snapshot's pre-copy
 * made inside the process (dump/dump_precopy.c), the ranges registered
 * with it for asynchronous write protection, and the pages the last
 * snapshot holds (its "coverage"). The kernel clears a page's protection at
 * its first write; a snapshot re-protects exactly the pages it saw written
 * (after the resume, checked against what the stop read:
 * dump/dump_incr_settle.c), so between two snapshots "still protected"
 * means "unchanged", where the registration held (track_lost.c), but for
 * the pages that a rollback's read ahead protected again between requests
 * (ahead_w below), which the readers add.
 *
 * Only the session helper holds these fds: if it dies, the kernel drops
 * every registration with the last reference, and a new helper starts
 * over with a full snapshot. */
#ifndef FP_DIRTY_TRACKER_H
#define FP_DIRTY_TRACKER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

struct dump_vma;

struct fp_range {
	uint64_t start, end;
};

struct fp_track_proc {
	pid_t pid;
	unsigned long long start_time; /* /proc/PID/stat field 22: the same process */
	int uffd;                      /* -1 once handed to a dump or closed */
	struct fp_range *reg;          /* registered with uffd, sorted */
	size_t nreg;
	struct fp_range *cov;          /* pages of the last snapshot, sorted */
	size_t ncov;
	/* cov is exactly the page list of the state the tracking started
	 * from (a snapshot's, or SNAP's after a rollback to it); not after the
	 * arming that ends a full restore (the processes ran in between) */
	bool cov_known;
	struct dump_vma *vmas;         /* its mappings and their VmFlags then (smaps) */
	size_t nvmas;
	uint64_t shim_addr, shim_gen;  /* the shim's mapping change log (dump_incr_shim.c) */
	bool shim_ok;
	char shim_doubt[160];
	/* the pages the last snapshot read in full at its stop (untracked or
	 * new): the next pre-copy copies them too, so that the page store it
	 * writes meanwhile has their places (dump_incr_store.c) */
	struct fp_range *untracked;
	size_t nuntracked;
	/* snapshots still to write their page store after the stop, and the
	 * stores written beside that were not the image's, in a row
	 * (dump_incr_store.c) */
	unsigned store_skip, store_misses;
	bool untracked_known; /* `untracked` is a stop's (not the first incremental) */
	uint64_t store_pages; /* the last pre-copy's places: the next store's size */
	/* Pages written since the tracking's snapshot that the rollback's read
	 * ahead protected again between requests (rollback_ahead.c), and of
	 * them those it found emptied then: they no longer read as written,
	 * so every reader of the tracking adds them (the snapshot's pre-copy,
	 * dump_incr_ahead_merge; the rollback, rb_written_now). Sorted; emptied
	 * when the tracking moves to a new state (a snapshot, a rollback). */
	struct fp_range *ahead_w, *ahead_gone;
	size_t nahead_w, nahead_gone;
	/* The process's CPU time (its threads together, ms) when the read
	 * ahead's last protecting walk over all of its tracked memory began
	 * (ahead_walked): while it stands still, few pages are written since,
	 * and the snapshot's pre-copy needs no walk of its own
	 * (dump_incr_precopy.c). Dropped with ahead_w. */
	double ahead_cpu_ms;
	bool ahead_walked;
};

#define FP_RESERVES 8 /* page store files made ahead (dump_incr_reserve.c) */
struct fp_store_reserve;

#define FP_FDMARKS 16 /* per process and snapshot: 4 snapshots of 4 processes */
struct fp_fdmark;

struct fp_track {
	struct fp_track_proc *procs;
	size_t n;
	bool active;               /* procs hold tracking since parent_dir */
	char parent_dir[PATH_MAX]; /* the last snapshot taken with it */
	unsigned parent_depth;     /* levels of parent_dir's chain (1: it holds
				      every page); 0: not known, counted when
				      asked (dump_chain.c) */
	char lost[256];            /* why the next snapshot is full, "" if never tracked */
	/* The buffer the last snapshot read the written pages into, kept
	 * (faulted in) for the next one, and lent to a rollback for the
	 * pages it overwrites: up to fp_track_pool_max() bytes. Fresh memory
	 * costs a fault per page here, and far more on a loaded host (the
	 * guest reports free pages to it): a python3 step of 48k pages spent
	 * 80% of its rollback zeroing new pages. */
	uint8_t *pool;
	size_t pool_len;
	/* The live pages of process pid that a rollback's read ahead copied
	 * after protecting them again (set by session/rollback_ahead.c; the
	 * pieces stay valid until the request being served ends): how many,
	 * *r and *ptr their addresses and bytes. The snapshot's pre-copy takes
	 * those not written since from there (dump_incr_precopy.c). */
	size_t (*live_copies)(const struct fp_track *t, pid_t pid, const struct fp_range **r,
			      const uint8_t *const **ptr);
	/* The last snapshot's re-protection of the pages it saw written, still
	 * running after its reply (dump_incr_settle.c): fp_track_settle. */
	struct fp_track_settling *settling;
	/* Each process's fds as the last snapshot read them (dump_fdcarry.c) */
	struct dump_fdcarry *fdcarry;
	/* Where the shim's fd table stood at the last snapshots of the
	 * processes' current line, oldest first (dump_fdmark.c); not dropped
	 * with the tracking: they hold for as long as the processes live */
	struct fp_fdmark *fdmarks[FP_FDMARKS];
	size_t nfdmarks;
	/* Pipes and sockets made anew by full restores: the inode a snapshot
	 * recorded and the one standing for it now (rollback_objmap.c); kept
	 * for the helper's life */
	struct fp_objmap_note { uint64_t was, now; } *objmap;
	size_t nobjmap, capobjmap;
	/* Each process's next page store, filled with zeros ahead of its
	 * snapshot (dump_incr_reserve.c); kept across the tracking's drops */
	struct fp_store_reserve *reserve[FP_RESERVES];
	size_t nreserve;
	char reserve_dir[PATH_MAX]; /* "" until the first is made */
};

/* The pool's bound: an eighth of the available memory, 256 MiB to 1 GiB
 * (FP_TRACK_POOL_MIB sets it, for A/B). At 256 MiB fixed, a python3 step
 * writing 188 MiB (a buffer of ~295 MiB with the room for the stop's
 * pages) had a fresh buffer faulted in at every snapshot. */
size_t fp_track_pool_max(void);

/* The session helper's tracking (one session per helper process). */
struct fp_track *fp_track_session(void);

/* The process start time (0 if it is gone). */
unsigned long long fp_track_start_time(pid_t pid);

/* Forgets the fds carried to the next snapshot (dump_fdcarry.c). */
void fp_track_fdcarry_drop(struct fp_track *t);
struct dump_fdcarry;
void dump_fdcarry_free(struct dump_fdcarry *k);

/* Drops every process's tracking (unregistering in small steps so the
 * process's mmap lock is never held long) and says why the next snapshot
 * will be full. */
void fp_track_drop(struct fp_track *t, const char *why);

/* Waits for the last snapshot's re-protection (t->settling) and takes its
 * result: every user of the tracking calls it first (dump_incr_prepare and
 * fp_track_drop do; the session helper after its reply to `snap` and
 * before a rollback). A failed one drops the tracking, saying why. */
void fp_track_settle(struct fp_track *t);
/* The same, its result ignored (the tracking is being dropped). */
void fp_track_settle_discard(struct fp_track *t);

/* After the reply to `snap`: for each tracked process whose next snapshot
 * writes its page store beside the pre-copy, a file of about that store's
 * size filled with zeros by a thread of its own, under SESSION_DIR (the
 * page cache that the next store is written over). */
void fp_track_reserve(struct fp_track *t, const char *session_dir);
/* Tells their threads to stop after their current write, for a request
 * that wants the CPUs and the page allocator (a rollback): the next
 * fp_track_reserve goes on where they stopped. */
void fp_track_reserve_pause(struct fp_track *t);
/* Ends them: threads joined, files and their directory removed. */
void fp_track_reserve_free(struct fp_track *t);

/* Frees one process's tracking (fds and lists). */
void fp_track_proc_free(struct fp_track_proc *tp);

/* The parts of reg (sorted) whose mapping is not registered for
 * asynchronous write protection any more (track_lost.c): there a page's
 * protection bit says nothing, so every page counts as written. Appended
 * to *out (sorted). 0, or -1 with errno set. */
int fp_track_lost(int pagemap_fd, const struct fp_range *reg, size_t nreg, struct fp_range **out, size_t *nout);
/* The same for process pid, the error named. */
int fp_track_lost_of(pid_t pid, const struct fp_range *reg, size_t nreg, struct fp_range **out, size_t *nout,
		     fp_error *err);

/* Ranges: sorted, non-overlapping [start, end) lists. */
int fp_ranges_push(struct fp_range **r, size_t *n, size_t *cap, uint64_t start, uint64_t end);
/* Removes [start, end) from *r (a new list when something is cut). */
int fp_ranges_cut(struct fp_range **r, size_t *n, uint64_t start, uint64_t end);
/* Index of the first range ending after a (n if none). */
size_t fp_ranges_find(const struct fp_range *r, size_t n, uint64_t a);
/* Whether one range of r holds all of [start, end). */
bool fp_ranges_cover(const struct fp_range *r, size_t n, uint64_t start, uint64_t end);

#endif
