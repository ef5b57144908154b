/* The dumper: writes a CRIU-compatible image set (CRIU 4.1.1 restores it)
 * for a process and its children, through ptrace and /proc only.
 *
 *     struct fp_dump_opts o = { .pid = 1234, .dir = "/snaps/a" };
 *     struct fp_dump_stats st;
 *     fp_error err;
 *     if (fp_dump(&o, &st, &err)) ... err.msg names the step and the cause
 *
 * What it guarantees:
 *   - The snapshot appears atomically: everything is written into a sibling
 *     temp directory, a manifest (forkpoint.manifest) is written last, and
 *     the directory is renamed to o->dir. A directory without the manifest
 *     is not a snapshot. o->dir must not exist or be empty. This holds
 *     against the dumper being killed at any moment, with or without fsync.
 *   - Durability (o->fsync): by default nothing is synced, like `criu dump`:
 *     after a power loss or kernel crash a snapshot may be missing or, rarely,
 *     fail `forkpoint decompress --verify` (the manifest checksums every
 *     file). With fsync, syncfs runs before the manifest and the parent is
 *     fsync'ed after the rename. Measured here (ct_heap, ext4 on virtio,
 *     busy shared VM): 10 MiB dumps 30-90 ms without, +10-25 ms with it;
 *     100 MiB uncompressed 130-150 ms without, 220-500 ms with; 1 GiB
 *     uncompressed 0.8-1.3 s (quiet moments) without, 3.7-4 s with. That
 *     can double a dump, and `criu dump` does not sync either: opt-in.
 *   - The target is only ever held with PTRACE_SEIZE: if the dumper dies the
 *     kernel lets it go. On any error it is detached and runs on untouched.
 *     Every syscall run inside it is kill-safe (dump_inject.c): a kill -9 of
 *     the dumper at any point leaves every thread going on where it was.
 *     Without leave_running it is killed (SIGKILL) only after every image is
 *     written.
 *   - With leave_running the pause is short. From FP_PRECOPY_MIN_BYTES of
 *     anonymous memory on (o->snapshot AUTO) or with PRECOPY, the pages are
 *     copied while the process runs, under userfaultfd write tracking, and
 *     the stop reads only the pages written meanwhile (dump_precopy.c: a
 *     1 GiB process pauses ~8-15 ms here instead of ~30 with a fork copy;
 *     the userfaultfd is made in a first stop of ~1-2 ms). Otherwise the
 *     target is stopped while its
 *     registers and per-thread/per-process state are captured and a frozen
 *     copy-on-write copy of it is made (a clone without CLONE_VM, ~17 ms per
 *     GiB of page tables; dump_cow.c), then resumed; its pages are read from
 *     the copy, compressed and written afterwards, and the copy is killed and
 *     reaped. When no copy can be made (no clone possible, no `syscall; ret`
 *     in the process, o->snapshot COPY) every page is copied into the
 *     dumper while stopped instead (~0.15 s per GiB). The log says which.
 *     Areas a fork does not copy (MADV_DONTFORK, MADV_WIPEONFORK) are copied
 *     while stopped.
 *   - Without leave_running pages are read straight from the stopped target.
 *
 * Compression: FP_DUMP_ZSTD writes pages-<id>.fpz (images/pagestore.h);
 * `forkpoint decompress DIR` (fp_dump_decompress) turns the directory into
 * one plain `criu restore` accepts. FP_DUMP_NONE writes pages-<id>.img.
 * Chunks are compressed by o->threads threads. Level -1 by default: on
 * python heap memory it runs ~15% faster than level 1 for ~10% more bytes
 * (machine-limits.md §2), on ct_heap's half-random data 20% faster for 1%
 * more; compression is most of a dump's wall time. */
#ifndef FP_DUMP_H
#define FP_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"
#include "images/img_verify.h" /* FP_MANIFEST_NAME */

struct fp_pt_proc;
struct fp_track;

#define FP_DUMP_LOG_NAME "dump.log"

enum fp_dump_compress { FP_DUMP_ZSTD = 0, FP_DUMP_NONE = 1 };

/* How a leave_running dump holds the pages while the process runs on. */
enum fp_dump_snap {
	FP_DUMP_SNAP_AUTO = 0,    /* PRECOPY from FP_PRECOPY_MIN_BYTES of anonymous
				     memory on (if the dumper may hold a copy), else FORK */
	FP_DUMP_SNAP_COPY = 1,    /* copy every page into the dumper while stopped */
	FP_DUMP_SNAP_FORK = 2,    /* a frozen copy-on-write copy when possible, else COPY */
	FP_DUMP_SNAP_PRECOPY = 3, /* copy while running under write tracking, then
				     only the written pages while stopped; FORK if
				     the kernel or the process does not allow it */
};

#define FP_PRECOPY_MIN_BYTES (64ull << 20)

/* zstd level when zstd_level is 0 (see the numbers above). */
#define FP_DUMP_DEFAULT_LEVEL (-1)

/* CRIU's default is 1 MiB (--ghost-limit); temporary files are often
 * bigger, and a snapshot carries pages of that size anyway. */
#define FP_DUMP_GHOST_LIMIT (64ull << 20)

struct fp_dump_stats;
struct fp_dump_opts {
	pid_t pid;                 /* root of the tree to dump */
	const char *dir;           /* snapshot directory to create */
	bool leave_running;        /* default: kill the tree after the dump */
	enum fp_dump_compress compress;
	int zstd_level;            /* 0: FP_DUMP_DEFAULT_LEVEL */
	int threads;               /* compression threads; 0: one per CPU we may
				      run on, at most 4 */
	enum fp_dump_snap snapshot;
	const char *log_path;      /* NULL: <dir>/dump.log (a failed dump keeps
				      its log as <dir>.failed.log) */
	int verbose;               /* 0 info, 1 debug (per VMA, per fd) */
	int timeout_ms;            /* per ptrace wait; 0: FP_PT_TIMEOUT_MS */
	uint64_t ghost_limit;      /* the largest deleted-but-open file the
				      image carries; 0: FP_DUMP_GHOST_LIMIT */
	bool tcp_established;      /* save established TCP connections with TCP
				      repair mode (`criu dump --tcp-established`;
				      needs iptables and CAP_NET_ADMIN); without
				      it they are refused */
	bool ext_unix_sk;          /* a unix socket connected to a named datagram
				      socket outside the tree is saved with that
				      peer as an external entry, to connect to
				      again (`criu dump --ext-unix-sk`); without
				      it such sockets are refused */
	bool drop_waiting;         /* connections waiting on a listening socket
				      and inotify events not read are left out
				      of the image (a rollback's save of
				      processes it kills: they die with them
				      either way); without it they are refused */
	bool fsync;                /* durable against power loss: syncfs the
				      images before the manifest, fsync the
				      parent after the rename (see above) */
	/* Called once every thread of the tree is stopped, before anything is
	 * read: a session freezes its workspace here, so files and memory are
	 * captured at one instant. A failure aborts the dump and the tree is
	 * resumed untouched. procs[i] are the seized processes. */
	int (*while_stopped)(void *arg, struct fp_pt_proc **procs, size_t n, fp_error *err);
	void *while_stopped_arg;
	/* Without leave_running: called once the snapshot is in place at
	 * `dir`, before the tree is killed. A failure lets the tree go
	 * untouched instead (the snapshot stays) and the dump fails with it:
	 * a session proves its saved state restorable here before it gives
	 * up the live processes. */
	int (*before_kill)(void *arg, const char *dir, fp_error *err);
	void *before_kill_arg;
	/* A session's write tracking (dump/dirty_tracker.h), kept between
	 * its snapshots. When it is active, the dump is incremental: pages not
	 * written since track->parent_dir stay there (a `parent` link and
	 * PE_PARENT pagemap entries, as CRIU's own incremental dumps).
	 * Otherwise the dump is full and, with leave_running, starts the
	 * tracking (a pre-copy whose userfaultfd is kept). On success the
	 * tracking names this snapshot as the next one's parent; on failure
	 * it is dropped (the next snapshot is full). */
	struct fp_track *track;
	/* With track: the caller calls fp_track_settle(track) itself, when it
	 * has replied to its client (the re-protection of the written pages
	 * then finishes beside that); else fp_dump waits for it before it
	 * returns. */
	bool settle_later;
	/* Non-NULL (with leave_running): keep a frozen copy of every process
	 * (see struct fp_dump_hot); filled on success. A tree of more than
	 * FP_DUMP_HOT_MAX processes, or a process where no copy can be made,
	 * keeps none (hot->why). */
	struct fp_dump_hot *hot;
	/* With leave_running, without hot: called once the processes run
	 * again and everything the images hold is in the dumper's memory
	 * (st as known then: pages, incremental, pause_ms; total_ms to this
	 * call), before the images are written. The caller replies to its
	 * client here; fp_dump then writes and publishes the snapshot and
	 * returns as usual (st->replied_early set). A failure after this
	 * call is never retried: the snapshot does not appear, its log stays
	 * as DIR.failed.log. */
	void (*early_reply)(void *arg, const struct fp_dump_stats *st);
	void *early_reply_arg;
};

/* A hot snapshot (o->hot): a frozen copy-on-write copy of each process,
 * made while the tree is stopped (as the fork copy of dump_cow.c), kept
 * stopped after the dump and handed to the caller, who becomes its owner:
 * it is traced by the calling thread and dies with it (PTRACE_O_EXITKILL).
 * The copy is a child of its process with exit signal 0: once killed it
 * stays a zombie there, invisible to the process's wait(), until the next
 * dump reaps it or the process exits. */
#define FP_DUMP_HOT_MAX 16
struct fp_dump_hot_copy {
	pid_t pid;             /* the process */
	pid_t copy;            /* its frozen copy, stopped, traced by us */
	uint64_t scratch;      /* writable memory in the copy only (the old injection page) */
	uint32_t scratch_len;
	uint64_t sysret;       /* a `syscall; ret` in the copy, to run system calls there */
	uint64_t area, area_len; /* the whole of that memory (not in the image: unmap it in a fork) */
};
struct fp_dump_hot {
	size_t n;
	struct fp_dump_hot_copy c[FP_DUMP_HOT_MAX];
	char why[256];         /* why no copies were kept (n == 0), "" if they were */
};
struct fp_dump_stats {
	int nprocs, nthreads;
	double freeze_ms;          /* seize + stop of every thread */
	double pause_ms;           /* first thread stopped -> last resumed/killed */
	double fork_ms;            /* making the frozen copies (inside the pause) */
	double reap_pause_ms;      /* the second short stop that reaps the copies */
	double prestop_ms;         /* precopy: the short stop that takes the userfaultfd */
	const char *method;        /* "precopy", "fork", "copy", "fork+copy", ... or "direct" */
	double capture_ms;         /* state + page copy while stopped */
	double write_ms;           /* images + pages written */
	double total_ms;
	uint64_t pages;            /* pages dumped (4 KiB) */
	uint64_t bytes_pages;      /* uncompressed page bytes */
	uint64_t bytes_written;    /* every file of the snapshot */
	/* with o->track */
	bool incremental;          /* some pages are left in the parent */
	uint64_t pages_parent;     /* how many */
	uint64_t pages_ahead;      /* copied before the stop from a rollback's read
				      ahead's copies (dump_incr_precopy.c) */
	char full_why[256];        /* why it is full (or partly full), "" if not */
	bool shim_checked;         /* the shim's fd table was compared with /proc */
	unsigned shim_disagree;    /* fds where they disagree (/proc was kept) */
	char shim_note[256];       /* the first disagreement, "" if none */
	char phases[512];          /* "name ms name ms ...": where the time went */
	bool replied_early;        /* o->early_reply was called */
	int reaped;                /* left-over temporary directories of dead dumps removed */
	char reaped_names[512];
	int netlocks;              /* network locks of deleted, never restored snapshots lifted */
	size_t netlock_conns;      /* ... of that many TCP connections */
	char netlock_names[512];   /* the snapshots */
};

int fp_dump(const struct fp_dump_opts *o, struct fp_dump_stats *st, fp_error *err);

/* Makes a snapshot directory restorable by plain `criu restore`: expands
 * every pages-<id>.fpz into pages-<id>.img (keep_store: keep the .fpz). */
int fp_dump_decompress(const char *dir, bool keep_store, fp_error *err);

/* Checks a snapshot against its manifest (sizes, checksums, page counts).
 * 0 when complete and intact. */
int fp_dump_verify(const char *dir, fp_error *err);

#endif
