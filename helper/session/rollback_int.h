/* Internals of rollback in place (rollback_inplace.h), shared by
 * rollback_image.c (SNAP's images), rollback_diff.c (what differs),
 * rollback_apply.c (write back, undo) and rollback_inplace.c. */
#ifndef FP_ROLLBACK_INT_H
#define FP_ROLLBACK_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <sys/user.h>
#include <termios.h>

#include "ptrace/inject.h"
#include "ptrace/ptrace.h"
#include "dump/ranges_ops.h"
#include "dump/dump_two_cpus.h"
#include "session/rollback_inplace.h"
#include "images/criu_msgs.h"
#include "images/pagestore.h"

struct dump_vma;
struct dump_kfile;

/* The checks' answer that a rollback in place cannot be made: the reason
 * into why (len bytes, both the checking function's parameters), then 0. */
#define NOT(...) (snprintf(why, len, __VA_ARGS__), 0)

/* The kernel's stack_t (x86_64), as sigaltstack reads and writes it. */
struct rb_kstack {
	uint64_t sp;
	int32_t flags;
	int32_t pad;
	uint64_t size;
};

struct rb_thread {
	pid_t tid;
	cr_core core;                   /* SNAP's */
	struct user_regs_struct old;    /* live, saved before writing */
	uint8_t *old_xs;
	size_t old_xs_len;
	uint64_t old_mask;
	bool saved, written;
	struct rb_kstack sas_live;      /* the alternate stack and parent-death signal */
	int32_t pdeath_live;            /* at the stop (rb_diff_thread_attrs), */
	bool sas_set, pdeath_set;       /* whether SNAP's must be set over them, */
	bool sas_done, pdeath_done;     /* and whether it was (rb_thread_attrs_set) */
};

enum rb_vma_kind { RB_MUNMAP, RB_MMAP, RB_MPROTECT, RB_BRK };

struct rb_vma_op {
	enum rb_vma_kind kind;
	uint64_t start, end;
	int prot, old_prot;             /* mmap/mprotect: SNAP's; undo: live */
	uint64_t brk, old_brk;
	struct fp_rlist saved;          /* munmap: the live pages there, */
	uint8_t *data;                  /* and their contents */
	bool done;
};

enum rb_fd_kind { RB_SEEK, RB_CLOSE, RB_REOPEN, RB_CHDIR, RB_TTY_MODES, RB_SETFL, RB_SETFD };

struct rb_fd_op {
	enum rb_fd_kind kind;
	int fd;
	uint64_t pos, old_pos;
	int flags;                      /* reopen: open flags (O_CLOEXEC as fd flag); */
	int old_flags;                  /* setfl: SNAP's status flags, the live ones;
					   setfd: SNAP's fd flags, the live ones */
	char path[PATH_MAX];            /* reopen, chdir: SNAP's */
	char old_path[PATH_MAX];        /* chdir undo; reopen undo */
	struct termios tio, old_tio;    /* tty modes: SNAP's, live (set by the helper) */
	pid_t src_pid;                  /* reopen: SNAP's description is src_pid's */
	int src_fd;                     /* src_fd's by then (rollback_fdshare.c); 0 none */
	/* reopen over a live fd: the live description kept at this fd of the
	 * process itself until the commit closes it (an undo puts it back:
	 * its offset, flags, locks and sharing); 0 none */
	int spare;
	bool done;
};

struct rb_proc {
	pid_t pid;
	fp_pt_proc pt;
	bool seized;
	fp_inject ij;
	bool ij_init;
	struct fp_track_proc *tp;       /* its write tracking */
	/* SNAP's images */
	cr_pstree *ps;
	cr_mm mm;
	bool have_mm;
	struct rb_thread *th;
	size_t nth;
	cr_fdinfo *fdi;
	size_t nfdi;
	cr_fs fs;
	cr_pagemap_entry *flat;         /* every page of SNAP, PE_PRESENT */
	size_t nflat;
	uint64_t *flat_first;           /* index of flat[i]'s first page in rd */
	pgs_reader *rd;
	struct fp_rlist snap_pages;     /* flat as ranges */
	struct fp_rlist path_pages;     /* held by the snapshots between */
	/* what differs */
	struct fp_rlist keep;           /* SNAP's anon mappings that stay */
	struct fp_rlist wr;             /* pages to write back in kept mappings */
	struct fp_rlist wr_new;         /* pages to write into re-made mappings */
	struct rb_vma_op *vops;
	size_t nvops;
	struct dump_vma *lv;            /* the live mappings at the stop */
	size_t nlv;
	struct rb_fd_op *fops;
	size_t nfops, cap_fops;
	int fd_max;                     /* the highest fd open now or in SNAP (rb_diff) */
	struct dump_kfile *kf;          /* its fds by the kernel's iterator (rb_kfiles) */
	size_t nkf;
	bool kf_read;
	uint8_t *old;                   /* live contents of wr (rb_old_buf) */
	uint8_t *newd;                  /* SNAP's contents of wr, then of wr_new, */
	size_t newd_len;                /* all of them when resident, else a */
	bool resident;                  /* window of RB_CHUNK bytes (streamed) */
	struct fp_rlist pre;            /* SNAP's pages read before the stop (rb_prefetch), */
	const uint8_t **pre_ptr;        /* each range's contents (read ahead, or now) */
	struct fp_rlist live;           /* live pages copied by the read ahead after it */
	const uint8_t **live_ptr;       /* protected them (rb_ahead_live), each range's */
	struct fp_rlist live_ok;        /* of them those not written since (the stop's */
	const uint8_t **live_ok_ptr;    /* rb_written_now): what they hold now */
	const uint8_t **old_ptr;        /* each range of wr's live contents (rb_save) */
	uint64_t saved_ahead;           /* bytes of them from live_ok */
	const uint8_t **wr_ptr;         /* resident: SNAP's contents of each range of wr */
	const uint8_t *wrn_data;        /* ... and of wr_new, one after the other (rb_place) */
	pgs_reader *rd2;                /* a second reader of SNAP's pages, for a second CPU */
	uint64_t pages_done;            /* of wr, written so far */
	pid_t hot;                      /* SNAP's frozen copy of it (rollback_hot.c), 0 none */
	struct itimerval it_old[3];     /* the live timers that rb_timers_set replaced */
	struct itimerspec *pt_old;      /* (per SNAP's POSIX timer, in its order), */
	size_t timers_set;              /* the first this many (3 itimers, then POSIX) */
	bool umask_set, umask_done;     /* SNAP's umask (fs.umask) is set back, */
	uint32_t umask_old;             /* the live one for an undo */
	fp_ksigaction sa_old[64];       /* the live handlers rb_attrs_set replaced: */
	uint64_t sa_set;                /* of the signals in this set (bit sig - 1) */
	int32_t sub_live;               /* the child-subreaper flag at the stop; */
	bool sub_set, sub_done;         /* SNAP's differs; SNAP's was set over it */
	uint64_t hot_area, hot_area_len; /* the copy's injection area: not SNAP's */
};

struct rb_ctx {
	pid_t root;
	const char *snap_dir, *snap;
	struct fp_ws *ws;
	struct fp_track *t;
	struct fp_rb_result *r;
	int snap_dirfd;
	cr_pstree *ps;
	size_t nps;
	cr_file *files;
	size_t nfiles;
	struct rb_file_at *file_by_id;  /* files sorted by id (rb_file) */
	struct rb_locks_read *locks_rd; /* /proc/locks being read (rollback_locks.c) */
	struct rb_proc *procs;
	size_t nprocs;
	long fault_after;               /* FORKPOINT_FAULT pages, -1 none */
	size_t resident_max;            /* RB_RESIDENT_MAX, or 0 with */
	size_t window;                  /* FORKPOINT_FAULT's window; RB_CHUNK */
	uint8_t *pool;                  /* the tracking's page buffer, lent to */
	size_t pool_len;                /* one process's `old` (rb_old_buf) */
	bool pool_lent;
	dev_t tty;                      /* the terminal whose modes may go back, 0 none */
	cr_tty_info *ttys;              /* SNAP's tty-info.img, read at its first terminal */
	size_t nttys;
	bool ttys_read;
	bool per_page;                  /* SNAP's pages are proven as read (rollback_image.c) */
	bool chain_checked;             /* every snapshot of SNAP's chain proven, not only SNAP */
	bool top_checked;               /* SNAP itself proven */
	bool no_save;                   /* FP_ROLLBACK_SAVE=0: the live pages are not
					   saved (rollback_inplace.h) */
	enum rb_cache_how { RB_CACHE_MISS, RB_CACHE_PARENT, RB_CACHE_HIT } how; /* the worst of its processes' */
};

/* A snapshot directory's identity: its device and inode, and its
 * manifest's inode, size and change time (a directory removed and made
 * again under its name is another one). */
struct rb_ident {
	dev_t dev;
	ino_t ino, mino;
	off_t msize;
	struct timespec mctime;
};
/* dirfd's (sub NULL) or that of sub in it; -1 if it has no manifest. */
int rb_ident_of(int dirfd, const char *sub, struct rb_ident *id);
bool rb_ident_same(const struct rb_ident *a, const struct rb_ident *b);

/* rollback_cache.c: SNAP's pages resolved through its chain (flat, rd),
 * kept from the last time or made over its parent's kept resolution, or
 * read from every pagemap of the chain: that only when chain_checked
 * (else 1: the caller proves the chain first and asks again). per_page:
 * the chain's stores have per-page hashes (only then is it kept). */
int rb_cache_pages(int dirfd, uint32_t pid, uint32_t pages_id, const cr_pagemap_entry *pe, size_t npe,
		   bool chain_checked, bool per_page, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **rd,
		   enum rb_cache_how *how, fp_error *err);
/* 1 and SNAP's kept resolution (no pagemap read at all), 0 if none. */
int rb_cache_kept(int dirfd, uint32_t pid, cr_pagemap_entry **flat, size_t *nflat, pgs_reader **rd, fp_error *err);
/* Whether rb_cache_pages can do without the parents' pagemaps. */
bool rb_cache_resolvable(int dirfd, uint32_t pid);

/* rollback_image.c */
/* Up to this many pages of a SNAP are all written back when nothing says
 * which differ (the tracking's snapshot was removed): 64 MiB. */
#define RB_UNKNOWN_PATH_MAX_PAGES 16384
int rb_load_snapshot(struct rb_ctx *c, fp_error *err);
/* 1 and path_pages filled: SNAP and the tracking's snapshot share a chain;
 * 0 with why: they do not. */
int rb_load_path(struct rb_ctx *c, char *why, size_t len, fp_error *err);
const cr_file *rb_file(const struct rb_ctx *c, uint32_t id);
/* f[0..n) sorted by id (NULL: out of memory), and a search of it. */
struct rb_file_at {
	uint32_t id;
	const cr_file *f;
};
struct rb_file_at *rb_files_index(const cr_file *f, size_t n);
const cr_file *rb_files_find(const struct rb_file_at *x, size_t n, uint32_t id);
bool rb_ghost_unchanged(const struct rb_ctx *c, pid_t pid, int fd, const cr_file *f, const char *link);
/* rollback_fdkind.c: the fds that are not regular files. diff_tty: the
 * session's terminal (its modes as an op); same_object: 1 when fd (whose
 * /proc link is link) is still the pipe, socket or event fd of SNAP's fi,
 * else 0 with why. rb_fop_new: a new fd op of p (rollback_diff.c). */
int rb_diff_tty(struct rb_ctx *c, struct rb_proc *p, int fd, const cr_file *f, char *why, size_t len, fp_error *err);
int rb_fd_same_object(const struct rb_ctx *c, pid_t pid, int fd, const cr_fdinfo *fi, const cr_file *f,
		      const char *link, char *why, size_t len);
/* rollback_objmap.c: SNAP's inode and file type of fi's pipe or socket
 * (ino 0: not recorded), false for other kinds; learn: after a full
 * restore from snap_dir, notes which new object stands for which recorded
 * one; same: whether live_ino is snap_ino, directly or through notes. */
bool rb_snap_object(const cr_fdinfo *fi, const cr_file *f, uint64_t *ino, mode_t *fmt);
/* rollback_evfd.c: 1 when event fd fd of pid (of SNAP's kind) holds what
 * SNAP's f recorded (count, watches, mask, timer), else 0 with why. */
int rb_event_same(pid_t pid, int fd, const cr_fdinfo *fi, const cr_file *f, char *why, size_t len);
void rb_objmap_learn(struct fp_track *t, const char *snap_dir);
/* rollback_queues.c: 1 when every pipe, FIFO and socket of the tree holds
 * the bytes SNAP recorded (after rb_diff of every process: the fds are
 * SNAP's), 0 with why when one does not, -1 on error. */
int rb_diff_queues(struct rb_ctx *c, char *why, size_t len, fp_error *err);
bool rb_objmap_same(const struct fp_track *t, uint64_t snap_ino, uint64_t live_ino);
/* rollback_locks.c: 1 when the file locks the processes hold are SNAP's
 * (after rb_diff of every process: its fd ops known), 0 with why when
 * not, -1 on error. */
int rb_diff_locks(struct rb_ctx *c, char *why, size_t len, fp_error *err);
/* At the stop: /proc/locks read in a thread when a process has many fds
 * (rb_diff_locks takes it); rb_locks_free (rb_free) ends an unused one. */
void rb_locks_start(struct rb_ctx *c);
void rb_locks_free(struct rb_ctx *c);
struct rb_fd_op *rb_fop_new(struct rb_proc *p);
/* rollback_fdkind.c: an fd's status flags (live, UINT32_MAX: not read)
 * against SNAP's record f: the ones F_SETFL changes go back (an op);
 * 1, or -1 on error. */
int rb_diff_status(struct rb_proc *p, int fd, const cr_file *f, uint32_t live, fp_error *err);
/* fd's close-on-exec flag (live: 0 or 1, -1 not read) against SNAP's fi:
 * set back by an op; 1, or -1 on error. */
int rb_diff_cloexec(struct rb_proc *p, int fd, const cr_fdinfo *fi, int live, fp_error *err);
/* rollback_fdpos.c: a process's file offsets through copies of its fds */
struct rb_fdpos {
	pid_t pid;
	int pidfd; /* -1: every offset from /proc/PID/fdinfo */
};
void rb_fdpos_open(struct rb_fdpos *x, pid_t pid);
/* fd's fdinfo: offset (UINT64_MAX), status flags without O_CLOEXEC
 * (UINT32_MAX) and close-on-exec (-1) when they cannot be read */
struct rb_fdinfo {
	uint64_t pos;
	uint32_t flags;
	int cloexec;
};
void rb_fdinfo_read(pid_t pid, int fd, struct rb_fdinfo *out);
void rb_fdpos_close(struct rb_fdpos *x);
/* rollback_fdtab.c: the fds open now from the shim's table, per fd
 * SNAP's mark when its slot's seq is still the one SNAP's dump saw (then it
 * is SNAP's file: no wrapper touched it since). 1: filled; 0: list them
 * from /proc, why says why. */
struct fp_fdmark_fd;
struct rb_fdtab {
	int *fds;                               /* ascending */
	const struct fp_fdmark_fd **mark_of;    /* per fds[i], NULL: changed or not marked */
	size_t n, same;
	/* the close-on-exec flags as the kernel holds them (dump_cloexec_bpf):
	 * fds below 64 * ncoe; a marked fd above is read from fdinfo */
	uint64_t *coe;
	size_t ncoe;
};
/* rollback_fds.c: p's fds and cwd against SNAP's (1, ops made; 0 with why:
 * not in place). rb_fop_new: a new fd op of p. */
int rb_diff_fds(struct rb_ctx *c, struct rb_proc *p, char *why, size_t len, fp_error *err);
/* fd's close-on-exec flag from x's bitmap: 0 or 1, -1 if not covered */
int rb_fdtab_cloexec(const struct rb_fdtab *x, int fd);
/* p's fds as the BPF fd iterator reads them (dump_fdfiles_bpf), read once
 * per rollback (the processes are stopped): NULL when not available. */
const struct dump_kfile *rb_kfiles(struct rb_proc *p, size_t *n);
int rb_fdtab_list(struct rb_ctx *c, struct rb_proc *p, struct rb_fdtab *x, char *why, size_t len);
void rb_fdtab_free(struct rb_fdtab *x);
/* fd's offset through a copy whose file must be mf's (a regular file of
 * that inode): 1 and *pos, 0 another file, -1 not readable. */
int rb_fdpos_same(struct rb_fdpos *x, int fd, const struct fp_fdmark_fd *mf, uint64_t *pos, uint32_t *flags);
/* SNAP's record of terminal f, NULL if it has none. */
const cr_tty_info *rb_tty_info(struct rb_ctx *c, const cr_file *f, fp_error *err);
int rb_snap_read(struct rb_proc *p, uint64_t addr, size_t len, uint8_t *dst, fp_error *err);
int rb_snap_read_with(struct rb_proc *p, pgs_reader *rd, uint64_t addr, size_t len, uint8_t *dst, fp_error *err);
/* SNAP's pages [addr, addr+len) into dst: zeros where SNAP has none,
 * fn(arg, first, n, at) for pages [first, first+n) of p's reader (flat
 * order) that go to at. fn's non-zero ends the walk (returned; -1 with
 * err wrapped). */
int rb_snap_walk(struct rb_proc *p, uint64_t addr, size_t len, uint8_t *dst,
		 int (*fn)(void *arg, uint64_t first, uint64_t n, uint8_t *dst, fp_error *err), void *arg, fp_error *err);

/* rollback_read.c: before the stop, SNAP's contents of the pages written
 * since the tracking's snapshot and of path_pages (while the processes
 * run: they never change); at the stop, wr_ptr and wrn_data for every
 * page to write back, from there or read then. */
int rb_prefetch(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
int rb_place(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
void rb_free(struct rb_ctx *c);
/* SNAP's contents of r[0..n) into dst, one after the other, proven (on
 * this thread alone with one_cpu); *hot: the bytes from SNAP's frozen
 * copy. */
int rb_read_ranges(struct rb_ctx *c, struct rb_proc *p, const struct fp_range *r, size_t n, uint8_t *dst,
		   bool one_cpu, size_t *hot, fp_error *err);

/* rollback_ahead.c: 1 with p->pre and pre_ptr what a read ahead of the
 * request (fp_rollback_ahead_start) holds of SNAP for p, *bytes of it; 0
 * when it holds none (not SNAP's, not p's: nothing is set). It stands
 * for the prefetch's scan and reads: a page written since its last pass
 * is read at the stop (rb_place), which walks the page tables anyway. */
int rb_ahead_take(struct rb_ctx *c, struct rb_proc *p, uint64_t *bytes, fp_error *err);
/* 1 with p->live and live_ptr the live pages the read ahead copied after
 * protecting them again (a rollback's save takes those not written since
 * from there); 0 none, -1 out of memory. */
int rb_ahead_live(struct rb_ctx *c, struct rb_proc *p);
/* rollback_read.c: l cut where the pieces by[0..nby) (sorted) begin and
 * end, so that each range of out is wholly inside one or outside all
 * ((*in)[i] says which, when in is not NULL). -1: out of memory. */
int rb_cut_at(const struct fp_rlist *l, const struct fp_range *by, size_t nby, struct fp_rlist *out, bool **in);

/* rollback_uring.c: SNAP's pages r[0..n) into dst + off[i] as
 * rb_snap_read_with reads them, through io_uring (ring 0 or 1, one per
 * CPU of rb_two_cpus): one system call per batch of reads, not one pread
 * per page. 1: not possible here (no io_uring, a compressed store), read
 * them otherwise; nothing is half read then that matters (all of dst
 * is read again). */
int rb_uring_read(struct rb_proc *p, pgs_reader *rd, unsigned ring, const struct fp_range *r, size_t n,
		  const size_t *off, uint8_t *dst, fp_error *err);

/* rollback_map.c: store fd's file mapped read-only (its length in *len),
 * or NULL: read it. rb_map_copy: 0, or -1 on SIGBUS (the file shrank).
 * rb_map_trim: the mappings of removed files go. */
const uint8_t *rb_map_get(int fd, uint64_t *len);
int rb_map_copy(uint8_t *dst, const uint8_t *src, size_t len);
void rb_map_trim(void);
/* The plain stores of rd's chain mapped (rb_map_get), ahead of a
 * rollback: the top `levels` of them (0: all). */
void rb_map_chain(pgs_reader *rd, size_t levels);

/* rollback_hot.c: when SNAP is hot, each process's frozen copy (p->hot);
 * rb_hot_read reads from it each range r[i] that it holds whole into
 * dst + off[i], sets ok[i] for those, and returns their bytes: the
 * others are for the stores. */
void rb_hot_attach(struct rb_ctx *c);
/* Whether child pid is a frozen copy (exit signal 0, held by this helper,
 * or released and dead): no process of the session's tree. */
bool rb_hot_is_copy(pid_t pid);
size_t rb_hot_read(struct rb_proc *p, const struct fp_range *r, size_t n, const size_t *off, uint8_t *dst,
		   uint8_t *ok, struct fp_rb_result *res);

/* rollback_bufs.c: buffer `slot` (two per process) of at least len bytes,
 * kept from one rollback to the next; rb_bufs_trim after a rollback. */
uint8_t *rb_buf_get(unsigned slot, size_t len, fp_error *err);
enum { RB_SLOT_OLD, RB_SLOT_NEW, RB_SLOT_PRE, RB_SLOTS_PER_PROC };
unsigned rb_slot(const struct rb_ctx *c, const struct rb_proc *p, unsigned which);
void rb_bufs_trim(void);
/* Buffer `slot` made at least len bytes now and faulted in on a thread of
 * its own (after a snapshot's reply, for a rollback to it). */
void rb_bufs_warm(unsigned slot, size_t len);
/* madvise(p, len, advice) (MADV_POPULATE_*) on a detached thread. */
void rb_populate_later(void *p, size_t len, int advice);
/* The buffer for the live pages that process p's rollback overwrites: the
 * tracking's (faulted in by the snapshots) when it is free and fits, else
 * p's slot. */
uint8_t *rb_old_buf(struct rb_ctx *c, struct rb_proc *p, size_t len, fp_error *err);
/* SNAP's pages are held in one buffer (kept between rollbacks) up to an
 * eighth of the available memory, between RB_RESIDENT_MIN and
 * RB_RESIDENT_MAX bytes (FP_ROLLBACK_RESIDENT_MIB: A/B). Beyond, they are
 * streamed through a window of RB_CHUNK bytes: read and proven once before
 * anything is written, then again, window by window, as they are written
 * back; scattered pages cost a pread each, so reading them twice is kept
 * for big rollbacks (at 128 MiB a python3 process writing 188 MiB per step
 * spent 43 of its 142 ms of rollback in the first pass).
 * FORKPOINT_FAULT=rollback-window-N-pages streams any rollback through
 * N pages (tests). */
#define RB_RESIDENT_MIN (128ull << 20)
#define RB_RESIDENT_MAX (1ull << 30)
#define RB_CHUNK (16u << 20)

/* fn over [0, n) on this CPU and another (dump_two_cpus.c), 64 ranges a
 * chunk, a second thread from 256 of them */
static inline void rb_two_cpus(size_t n, void (*fn)(void *arg, size_t from, size_t to), void *arg)
{
	dump_two_cpus_by(n, 64, 256, fn, arg);
}

/* rollback_rearm.c: the tracking goes on from SNAP (during the stop); the
 * written pages protected then, or after the reply (fp_rollback_settle);
 * cancel forgets those not protected yet (they stay written). */
int rb_rearm(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
void rb_rearm_cancel(void);

/* rollback_diff.c: before the stop, whether in place is possible (0 with
 * why); during it, what differs (0 with why: not in place after all). */
int rb_check_tree(struct rb_ctx *c, char *why, size_t len, fp_error *err);
int rb_diff(struct rb_ctx *c, struct rb_proc *p, char *why, size_t len, fp_error *err);

/* rollback_scan.c: PAGEMAP_SCAN of the ranges in of an open pagemap, the
 * pages in the categories (any of anyof, all of must, none of must_not)
 * added to out; the pages written since the tracking's snapshot in reg
 * and those present in keep (not the zero page), in one walk; the pages
 * written since the tracking's snapshot, now (out normalized). */
int rb_scan(int fd, const struct fp_rlist *in, uint64_t anyof, uint64_t must, uint64_t must_not, struct fp_rlist *out,
	    fp_error *err);
int rb_scan_written_present(int fd, const struct fp_rlist *reg, const struct fp_rlist *keep, struct fp_rlist *written,
			    struct fp_rlist *present, fp_error *err);
int rb_written_now(struct rb_proc *p, bool at_stop, struct fp_rlist *out, fp_error *err);
/* (at_stop: and p->live_ok, rb_live_unwritten) */
/* out ∪= the pages the read ahead protected again (tp->ahead_w, in reg):
 * written since the tracking's snapshot too. -1: out of memory. */
int rb_ahead_written(const struct rb_proc *p, struct fp_rlist *out);
/* At the stop, p->live_ok: the read ahead's live copies (p->live) less
 * the pages written since (written: what the stop's scan reports, every
 * range that lost its registration included) and, given present, less
 * the pages without content now (the fast loop reports emptied entries as
 * written; the full walk does not); they hold what the pages hold now.
 * -1: out of memory. */
int rb_live_unwritten(struct rb_proc *p, const struct fp_rlist *written, const struct fp_rlist *present);
/* rollback_pages.c: p->wr (and p->wr_new cut to SNAP's pages), the pages
 * to write back; 1, 0 when not in place (why), -1 error. fpriv: the
 * private file mappings that stay. */
int rb_diff_pages(struct rb_proc *p, const struct fp_rlist *fpriv, char *why, size_t len, fp_error *err);

/* rollback_apply.c */
int rb_save(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
int rb_apply(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
int rb_undo(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
int rb_commit(struct rb_ctx *c, struct rb_proc *p, fp_error *err);
int rb_inject(struct rb_proc *p, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
	      uint64_t a5, int64_t *ret, fp_error *err);
/* The injection session on p's leader: opened (if it is not), ended. */
int rb_inject_session(struct rb_proc *p, fp_error *err);
int rb_inject_end(struct rb_proc *p, fp_error *err);
/* Scratch memory of len bytes in p (an injection session begun). */
int rb_scratch(struct rb_proc *p, size_t len, uint64_t *addr, fp_error *err);

/* rollback_timers.c: during the stop, whether p's POSIX timers are SNAP's
 * (id, clock, signal, target; 0 with why if not); in rb_apply, SNAP's
 * interval and POSIX timers set (undo: the live ones back). */
int rb_diff_timers(struct rb_proc *p, char *why, size_t len, fp_error *err);
int rb_timers_set(struct rb_proc *p, bool undo, fp_error *err);

/* rollback_attrs.c: during the stop, whether p's creds, thread names,
 * scheduling, resource limits, personality, oom_score_adj, process group
 * and session are SNAP's (0 with why if not), and whether its umask must
 * go back; in rb_apply, the umask and SNAP's handlers of the signals it
 * catches set (undo: the live ones back). */
int rb_diff_attrs(struct rb_proc *p, char *why, size_t len, fp_error *err);
int rb_attrs_set(struct rb_proc *p, bool undo, fp_error *err);
/* rollback_threadset.c: during the stop, each thread's alternate signal
 * stack, parent-death signal and securebits, and the process's
 * child-subreaper flag asked (0 with why: securebits not SNAP's, or a
 * thread on an alternate stack that is not SNAP's); in rb_apply, SNAP's
 * stack, signal and flag set where they differ (undo: the live ones back);
 * leaves an injection session open on the leader. */
int rb_diff_thread_attrs(struct rb_proc *p, char *why, size_t len, fp_error *err);
int rb_thread_attrs_set(struct rb_proc *p, bool undo, fp_error *err);
/* rollback_fdshare.c: after every process's diff, each fd to be opened
 * again whose SNAP description other fds shared (dup, fork) takes that of
 * one of them (src_pid, src_fd) instead of an open of its own; the fds
 * that stay must share as at SNAP (0 with why if not). *by_bpf: told by
 * the descriptions' addresses (a BPF iterator), not kcmp. */
int rb_fd_shares(struct rb_ctx *c, bool *by_bpf, char *why, size_t len, fp_error *err);
/* rollback_vmflags.c: during the stop, after the mappings are compared,
 * whether the flags that madvise and mlock set are SNAP's on every
 * mapping the rollback keeps or maps again (0 with why if not). */
int rb_diff_vmflags(struct rb_ctx *c, struct rb_proc *p, char *why, size_t len, fp_error *err);

#endif
