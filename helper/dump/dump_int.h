/* Internals shared by dump/dump*.c: the state of one dump in progress.
 * Capture (while the tree is stopped) fills these structs; writing (after
 * the tree is resumed or while it waits to be killed) turns them into
 * images. */
#ifndef FP_DUMP_INT_H
#define FP_DUMP_INT_H

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fp_error.h"
#include "dump/dump.h"
#include "ptrace/inject.h"
#include "ptrace/pt_mem.h"
#include "ptrace/ptrace.h"
#include "images/criu_msgs.h"
#include "images/pagehash.h"
#include "dump/dirty_tracker.h"

struct dump_ctx;

struct dump_thread {
	pid_t tid;
	cr_core core;
};

/* One mapping as /proc/PID/smaps shows it, plus what the dump does with it. */
struct dump_vma {
	uint64_t start, end, pgoff;
	char perms[5];
	dev_t dev;
	uint64_t ino;
	const char *path;  /* never NULL; shared, from dump_path_intern */
	const char *vmflags; /* never NULL ("" without smaps); interned, as path */
	bool dump_pages; /* anon private (incl. vdso) or file private: COW'd pages */
	bool file_private;
	bool flags_early; /* vmflags read before the stop (dump_precopy.c) */
	bool has_kbits;   /* kbits known: the kernel's vm_flags when vmflags was read */
	uint64_t kbits;   /* (dump_vmflags_bpf.c) */
};

struct dump_fd {
	int fd;
	cr_fdinfo fi;
};

struct dump_proc {
	pid_t pid, ppid, pgid, sid;
	char comm[32];
	char exe[PATH_MAX];    /* read while stopped: a short-lived process may be gone when its VMAs are written */
	fp_pt_proc pt;
	bool seized;
	fp_inject ij;          /* only for finding a syscall instruction */
	bool ij_init;
	uint64_t di_page;      /* dump_inject.c trampoline + data, 0 if none */
	uint64_t di_gone_start, di_gone_end; /* where it was (the copy keeps it) */
	unsigned inj_calls;
	int64_t inj_ns;
	bool g_searched, g_ok; /* page-less kill-safe calls (dump_inject.c) */
	uint64_t g_sysret, g_sigret;
	/* the frozen copy-on-write copy (leave_running, dump_cow.c) */
	pid_t cow;             /* its pid, 0 if none */
	pid_t hot;             /* the copy kept for the caller (o->hot, dump_hot.c), 0 if none */
	pid_t stale[8];        /* copies left by killed dumps, to reap */
	unsigned nstale;
	bool cow_exact;        /* VMAs from our own smaps (mlock, MADV_DONTFORK) */
	bool cow_killed;
	struct dump_span *fb;  /* ranges copied from the target while stopped */
	size_t nfb;
	fp_pt_thread *di_t;    /* thread of the open injection session */
	struct user_regs_struct di_saved;
	struct dump_thread *th;
	size_t nth;
	cr_ids ids;
	/* memory */
	struct dump_vma *vmas;
	size_t nvmas;
	struct dump_vma *maps_stop; /* maps as read at the stop (dump_shmem_capture), for the next reader */
	size_t nmaps_stop;
	cr_mm mm;
	cr_pagemap_entry *pe;
	size_t npe;
	uint64_t npages;
	struct dump_precopy *pre; /* its pre-copy (dump_precopy.c), NULL if none */
	struct dump_seg *segs;    /* pages copied into the dumper (pre-copy or
				     --pages copy): where each piece of p->pe is */
	size_t nsegs;
	uint32_t pages_id;
	uint64_t pages_hash; /* chain of fp_hash64 over each page, in order */
	pgh_list ph;         /* every link of that chain (pagehash-<id>.fph) */
	/* files */
	struct dump_fd *fds;
	size_t nfds;
	cr_fs fs;
};

/* Memory copied from the stopped target when the copy cannot show it
 * (MADV_WIPEONFORK / MADV_DONTFORK areas). */
struct dump_span {
	uint64_t start, end;   /* the VMA */
	cr_pagemap_entry *pe;  /* its page runs */
	size_t npe;
	uint64_t npages;
	uint8_t *data;         /* their pages, back to back */
};

/* A pre-copied piece of a process's memory (dump_precopy.c). */
struct dump_pre_piece {
	uint64_t vaddr, npages;
	uint64_t off; /* in buf */
	bool ok;      /* read; false: unmapped while it was read */
	bool place;   /* untracked memory: copied for its place in buf only (the
			 stop reads it again) */
	bool copied;  /* (atomic) its copy is over, ok or not */
};

struct dump_store;
struct dump_precopy {
	pid_t pid;
	int uffd;             /* the process's userfaultfd, -1 once closed */
	struct fp_range *reg; /* write-tracked ranges */
	size_t nreg;
	struct dump_pre_piece *piece; /* sorted by address */
	size_t npiece;
	uint64_t npages;
	uint8_t *buf;         /* the pre-copied pages */
	size_t buf_len;
	/* buf is the page cache of this unlinked file (dump_precopy_copy.c):
	 * the page store itself when the image's pages are exactly buf's
	 * (dump_precopy_store.c) */
	bool buf_file;
	int buf_fd;
	struct dump_pre_hash *hash; /* the chain taken behind the copy */
	uint8_t *dirty;       /* pages read during the stop */
	size_t dirty_len;
	struct dump_vma *fv;  /* smaps read just before the stop, for VmFlags */
	size_t nfv;
	struct dump_vma *fv_now; /* (tracking) smaps read after the resume */
	size_t nfv_now;
	/* incremental (dump_incremental.c): the pages the parent snapshot
	 * holds; a page in them still write-protected is left in the parent */
	struct fp_range *cov;
	size_t ncov;
	bool cov_known;       /* fp_track_proc's: cov is exactly the parent's pages */
	bool tracked;         /* the tracking ran since the parent */
	/* (dump_incr_recheck.c) the written pages are re-protected after the
	 * resume, not during the stop: until then they stay unprotected. */
	bool deferred;
	bool untrusted;       /* the check after the resume failed: tracking dropped */
	bool written_scanned; /* `written` came with the pages (dump_proc_pagemap): in the dumped pages only */
	struct fp_range *written; /* written since the parent (at the stop), sorted */
	fp_mem_range *rd;     /* what the stop read, into `dirty`, sorted */
	size_t nwritten, nrd;
	/* (dump_incr_precopy.c) pw: written since the parent, protected again and
	 * copied before the stop into `dirty` (its first pre_pages): pre_rd */
	struct fp_range *pw;
	fp_mem_range *pre_rd;
	size_t npw, npre_rd, pre_pages;
	/* of pw: the pages that had no content then (emptied, neither present
	 * nor swapped): the protection leaves a marker there (dump_incr_content.c) */
	struct fp_range *pw_gone;
	size_t npw_gone;
	/* the tracking's pages protected again by the rollback's read ahead
	 * (dirty_tracker.h: ahead_w, ahead_gone), added to pw and pw_gone by
	 * dump_incr_ahead_merge before anything reads those */
	struct fp_range *apw, *apw_gone;
	size_t napw, napw_gone;
	double ahead_cpu_ms; /* (dirty_tracker.h) */
	bool ahead_walked;
	/* ranges registered by this snapshot's preparation (new mappings, or
	 * tracked anew): the parent says nothing about them */
	struct fp_range *fresh;
	size_t nfresh, capfresh;
	/* (dump_incr_store.c) the page store written while the pre-copy
	 * copies; the stop's reads over the pre-copy's places (offsets in
	 * `dirty`); whether the image's pages are exactly the pre-copy's */
	struct dump_store *store;
	struct fp_range *patch;
	size_t npatch;
	bool store_layout;
	/* the store's places: pw and the pages the last stop read in full
	 * (untracked, from the tracking), in address order; this stop's pages
	 * read in full, for the next */
	struct fp_range *untracked, *plan, *stop_full;
	bool *plan_pw; /* per place of plan: pw's */
	unsigned store_skip, store_misses; /* the tracking's (dirty_tracker.h) */
	bool store_missed;   /* the one written beside was not the image's */
	bool store_used;     /* ... or was */
	bool untracked_known; /* the tracking's: `untracked` came from a stop */
	bool untracked_made;  /* this stop made stop_full (dump_incr_final) */
	size_t nuntracked, nplan, nstop_full;
	/* (dump_incr_shim.c) the shim's mapping change log: the table's
	 * address and the first event not yet taken into `reg`; shim_ok when
	 * shim_gen is good; shim_doubt: why the next snapshot must register
	 * from /proc instead ("" if it need not) */
	uint64_t shim_addr, shim_gen;
	bool shim_ok;
	char shim_doubt[160];
};

/* npages pages at vaddr, whose data is at data (pre-copy or dirty buffer). */
struct dump_seg {
	uint64_t vaddr, npages;
	const uint8_t *data;
};

/* A shared memory object: shared anonymous memory (maps: "/dev/zero
 * (deleted)") or a memfd. Read once for the whole tree, while it is stopped
 * (dump_shmem.c); written as pagemap-shmem-<shmid>.img and its pages. */
struct dump_shmem {
	uint64_t shmid;       /* its inode number (CRIU's shmid) */
	uint64_t size;        /* bytes: largest pgoff + length of its mappings */
	bool memfd;           /* memfd.img entry: name (without "memfd:"), owner, seals */
	char *name;
	uint32_t inode_id, uid, gid, seals;
	pid_t pid;            /* where to open it: a mapping, or an fd */
	uint64_t start, end;
	int fd;               /* -1: through the mapping */
	bool read;            /* contents taken */
	cr_pagemap_entry *pe; /* offsets in the object */
	size_t npe;
	uint64_t npages;
	uint8_t *data;
	uint32_t pages_id;
	uint64_t hash;
	bool sysv;            /* a SysV segment (dump_sysvshm.c): shmid is its id */
	bool file_obj;        /* a deleted tmpfs file mapped shared, dumped as a memfd */
	dev_t dev;            /* memfds and file_obj: the file system of the inode */
	uint32_t key, cuid, cgid, mode;
};

struct dump_pipe_key {
	uint64_t ino;
	bool have_data;
};

/* Phases of a dump, timed for st->phases (snap --json phases_ms). */
enum dump_phase {
	DPH_PREPARE, DPH_SEIZE, DPH_WHILE_STOPPED, DPH_CORES, DPH_MM, DPH_UNINJECT, DPH_VMAS, DPH_PAGEMAP,
	DPH_DIRTY_SCAN, DPH_DIRTY_READ, DPH_REPROTECT, DPH_FILES, DPH_IDS, DPH_RESUME, DPH_FDS_FINISH,
	DPH_FLAGS_CHECK, DPH_WRITE, DPH_PUBLISH, DPH_KEEP, DPH_N
};

struct dump_ctx {
	bool raced; /* a process of the tree exited while it was being stopped or read: try again */
	bool replied; /* o->early_reply was called: nothing is tried again */
	const struct fp_dump_opts *o;
	FILE *log;
	int64_t t0;           /* dump start, ns */
	int dirfd;            /* temp directory being filled */
	char tmpdir[PATH_MAX];
	struct dump_proc *procs;
	size_t nprocs;
	/* files.img, shared by every process */
	cr_file *files;
	size_t nfiles, capfiles;
	struct dump_fkey *fkeys; /* parallel to files */
	struct dump_findex *findex; /* files by path and by description (dump_findex.c) */
	struct dump_fdscan *fdscan; /* fd capture state (dump_fdscan.c) */
	struct dump_shimfds *shimfds; /* the shim's tables, as a check (dump_shim_fds.c) */
	struct dump_fdshorts *fdshort; /* the tables as a shortcut at the stop (dump_fdshort.c) */
	struct dump_kfile *self_kf;    /* the dumper's own fds, read once after the stop (dump_self_kfiles) */
	size_t nself_kf;
	int self_kf_state;             /* 0 not read, 1 read, -1 cannot be */
	cr_pipe_data *pipes;
	size_t npipes, cappipes;
	cr_tty_info *ttys;    /* tty-info.img, one per terminal */
	size_t nttys, capttys;
	struct dump_held_lock *locks; /* filelocks.img (dump_locks.c) */
	size_t nlocks, caplocks;
	struct dump_zombie *zombies;  /* unreaped children (dump_zombies.c) */
	size_t nzombies;
	struct dump_ghost *ghosts;    /* deleted files kept (dump_ghost.c) */
	size_t nghosts;
	cr_remap_fpath *remaps;       /* remap-fpath.img */
	size_t nremaps;
	cr_sk_packet *skq;            /* sk-queues.img (dump_usk.c) */
	size_t nskq, capskq;
	struct dump_inflight *inflight; /* fds in flight, ours until the end */
	size_t ninflight;
	struct dump_tcp *tcp;         /* established TCP connections (dump_tcp.c) */
	size_t ntcp;
	bool tcp_locked;              /* their network lock is taken */
	const char *final_dir;        /* the snapshot's name once published (its lock's owner) */
	/* pages */
	uint8_t *pagebuf;     /* leave_running: one buffer for every process */
	size_t pagebuf_len;   /* populated */
	size_t pagebuf_res;   /* reserved */
	struct fp_dump_stats *st;
	struct dump_precopy *pre; /* leave_running pre-copies, one per process */
	size_t npre;
	unsigned nthreads;    /* compression threads */
	bool incr;            /* o->track: pages against the parent (dump_incremental.c) */
	bool keep_track;      /* o->track: c->pre's tracking goes to o->track */
	unsigned vmflags_said; /* why the kernel's flags were not had: said once */
	char parent_dir[PATH_MAX]; /* c->incr: the parent snapshot */
	struct dump_shmem *shm; /* shared memory objects (dump_shmem.c) */
	size_t nshm, capshm;
	uint64_t ipcns_ino;   /* the tree's IPC namespace (dump_ipcns.c) */
	bool ipcns_own;       /* ... and it is not the dumper's */
	int64_t stop_ns, resume_ns;
	double ph[DPH_N];     /* ms per phase (st->phases) */
	long flt[DPH_N];      /* the dumper's page faults per phase (dump.log): each costs tens of us here */
	long flt_at;          /* the count at the last dump_phase */
	struct fp_track_settling *settling; /* the re-protection after the resume (dump_incr_settle.c) */
};

/* An fd in flight in a unix socket's queue (dump_usk.c): the dumper's copy,
 * and where its file id goes: skq[pkt].scm[0].rights[slot]. */
struct dump_inflight {
	int fd;
	size_t pkt, slot;
};

/* Dedup key of a FileEntry. */
struct dump_fkey {
	int kind;        /* 0 path-based (maps, exe, cwd, root), 1 fd description,
			    2 memfd mapping (dev, ino, flags), 3 in flight only,
			    4 deleted file mapped or executed (dev, ino, flags),
			    5 a unix socket outside the tree (ino; dump_usk_ext.c) */
	dev_t dev;
	uint64_t ino;
	uint32_t flags;
	pid_t pid;       /* kind 1: an fd that has this description */
	int fd;
};

/* dump_timers.c: the process's POSIX timers into t (injects; p stopped);
 * _list: as /proc lists them, without their times (no injection). */
int dump_posix_timers(struct dump_ctx *c, struct dump_proc *p, cr_timers *t, fp_error *err);
int dump_timers_list(pid_t pid, cr_timers *t, fp_error *err);

struct fp_proc_stat;
/* dump_zombies.c: a zombie child of ppid (its /proc stat) joins the tree;
 * their pstree entries (into ps, dump_zombie_count of them) and cores. */
int dump_add_zombie(struct dump_ctx *c, const struct fp_proc_stat *st, pid_t ppid, fp_error *err);
size_t dump_zombie_count(const struct dump_ctx *c);
int dump_write_zombies(struct dump_ctx *c, cr_pstree *ps, fp_error *err);

/* dump_ghost.c: the deleted file behind fd of pid (its file entry file_id)
 * into the image; remap-fpath.img. */
int dump_ghost_file(struct dump_ctx *c, pid_t pid, int fd, const struct stat *st, uint32_t file_id, fp_error *err);
/* A deleted file mapped by pid (or its executable), read through src (a
 * /proc/PID/map_files or /proc/PID/exe path), link its path in maps:
 * *file_id is its file entry, opened with flags, with a ghost remap. */
int dump_ghost_mapped(struct dump_ctx *c, pid_t pid, const char *src, const char *link, uint32_t flags, const char *what,
		      uint32_t *file_id, fp_error *err);
int dump_write_remaps(struct dump_ctx *c, fp_error *err);

/* dump_locks.c: the locks fdinfo text lists for fd of pid (whose open file
 * description is file_id), once each; filelocks.img when any. */
int dump_fd_locks(struct dump_ctx *c, pid_t pid, int fd, uint32_t file_id, const char *fdinfo,
		  fp_error *err);
int dump_write_locks(struct dump_ctx *c, fp_error *err);

/* dump.c: logging; freeing a context's captured state; moving the dumper
 * to the CPU pid last ran on while it drives pid (*saved: the mask to put
 * back with sched_setaffinity when *pinned) */
void dump_ctx_free(struct dump_ctx *c);
void dump_pin_near(struct dump_ctx *c, pid_t pid, cpu_set_t *saved, bool *pinned);
void dlog(struct dump_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dlogv(struct dump_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t dump_now_ns(void);
/* Adds the time since *t0 to phase ph and restarts *t0. */
void dump_phase(struct dump_ctx *c, enum dump_phase ph, int64_t *t0);

/* dump_tree.c */
int dump_tree_seize(struct dump_ctx *c, fp_error *err);
/* True if a seized process is exiting or gone (it was caught in its exit). */
bool dump_tree_any_exiting(struct dump_ctx *c);
/* The children of every thread of pid (malloc'd *out). */
int dump_list_children(pid_t pid, pid_t **out, size_t *n);
/* Before an incremental stop: sleeping threads stopped and resumed once, so
 * that the page table re-sync is paid outside the pause (dump_warm.c). */
void dump_warm_tree(struct dump_ctx *c, pid_t root);
void dump_tree_release(struct dump_ctx *c, bool kill_it);
int dump_tree_ids(struct dump_ctx *c, fp_error *err);
int dump_write_tree(struct dump_ctx *c, fp_error *err);
/* Appends a description of where every thread is (stacks) to the log. */
void dump_log_stacks(struct dump_ctx *c);

/* dump_inject.c: kill-safe syscall injection */
int dinj_init(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dinj_begin(struct dump_proc *p, pid_t tid, fp_error *err);
int dinj_call(struct dump_proc *p, long nr, const uint64_t a[6], int64_t *ret, fp_error *err);
/* Runs syscall nr, hands its result to take() at the call's exit stop, then
 * lets the target close(result): an fd the call made lives in the target
 * only while take() runs (pidfd_getfd it there), also if the dumper dies. */
int dinj_call_closing(struct dump_proc *p, long nr, const uint64_t a[6], int (*take)(void *arg, int64_t ret, fp_error *err),
		      void *arg, fp_error *err);
int dinj_end(struct dump_proc *p, fp_error *err);
uint64_t dinj_data(struct dump_proc *p);
/* Clones the stopped process (no CLONE_VM, exit signal 0) from its
 * injection page; the copy is traced, stopped before its first instruction
 * and, once dinj_clone_settle saw it stop, dies with the dumper
 * (PTRACE_O_EXITKILL). *child 0: not possible here
 * (logged), the caller copies while stopped instead. */
int dinj_clone(struct dump_ctx *c, struct dump_proc *p, pid_t *child, fp_error *err);
int dinj_clone_settle(struct dump_proc *p, pid_t kid, fp_error *err);
int dinj_copy_start(struct dump_proc *p, long nr, const uint64_t a[6], fp_error *err);
int dinj_copy_finish(struct dump_proc *p, int64_t *ret, fp_error *err);
uint64_t dinj_copy_scratch(struct dump_proc *p, size_t *len);
/* wait4(child, __WALL|WNOHANG) inside a stopped thread of p (the copy is its
 * child: nobody else can reap it). */
int dinj_reap(struct dump_ctx *c, struct dump_proc *p, pid_t child, fp_error *err);
int dinj_fini(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dinj_thread_facts(struct dump_proc *p, pid_t tid, uint64_t *tid_addr, stack_t *ss, int *pdeath, int *secbits,
		      fp_error *err);
int dinj_proc_facts(struct dump_proc *p, fp_ksigaction sa[64], struct itimerval it[3], uint64_t *brk, int *dumpable,
		    int *subreaper, fp_error *err);
/* The signals whose action must be asked (handled, ignored, and SIGCHLD):
 * the others are SIG_DFL, whose flags and mask never take effect. */
uint64_t dinj_sigactions_wanted(pid_t pid);

/* dump_inject_blob.c: a thread's facts (and with proc the process's, from
 * the leader) in one run of the thread, call by call where that is not
 * possible. blocked: the thread's signal mask. */
struct dinj_facts {
	uint64_t tid_addr; /* clear_child_tid */
	stack_t ss;
	int pdeath;
	int secbits; /* PR_GET_SECUREBITS */
	fp_ksigaction sa[64];
	struct itimerval it[3];
	uint64_t brk;
	int dumpable;
	int subreaper; /* PR_GET_CHILD_SUBREAPER */
};
int dinj_facts(struct dump_ctx *c, struct dump_proc *p, pid_t tid, uint64_t blocked, bool proc, struct dinj_facts *f,
	       fp_error *err);
/* The same, in one run only: 1 done, 0 not possible here, -1 error. */
int dinj_blob_facts(struct dump_ctx *c, struct dump_proc *p, pid_t tid, uint64_t blocked, bool proc, struct dinj_facts *f,
		    fp_error *err);

/* dump_core.c */
int dump_proc_cores(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_write_cores(struct dump_ctx *c, struct dump_proc *p, fp_error *err);

/* dump_mm.c */
int dump_proc_vmas(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_vmas_read(pid_t pid, bool smaps, struct dump_vma **out, size_t *n, fp_error *err);
/* p's maps while stopped: the list dump_shmem_capture read (taken over:
 * one read of a long list, not two), else read now. */
int dump_vmas_stopped(struct dump_proc *p, struct dump_vma **out, size_t *n, fp_error *err);
/* dump_paths.c: the one copy of a mapping's path (len bytes of s), valid
 * for the life of the process; NULL when out of memory. */
const char *dump_path_intern(const char *s, size_t len);
int dump_proc_mm(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_proc_vma_entries(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_write_mm(struct dump_ctx *c, struct dump_proc *p, fp_error *err);

/* dump_pages.c */
int dump_proc_pagemap(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
uint64_t dump_estimate_pages(pid_t pid);
int dump_pagebuf_prepare(struct dump_ctx *c, uint64_t pages, fp_error *err);
int dump_copy_pages(struct dump_ctx *c, fp_error *err);
int dump_write_pages(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_range_has_pages(pid_t pid, uint64_t start, uint64_t end, bool file_private);
int dump_copy_vma(struct dump_ctx *c, struct dump_proc *p, const struct dump_vma *v, fp_error *err);

/* dump_cow.c: the frozen copy-on-write copy (leave_running) */
int dump_cow_start(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_cow_vmas_stopped(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_cow_after(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
void dump_cow_kill(struct dump_ctx *c, struct dump_proc *p);
void dump_cow_finish(struct dump_ctx *c, struct dump_proc *p);

/* dump_hot.c: the frozen copies kept for a hot snapshot (o->hot) */
int dump_hot_start(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
void dump_hot_settle(struct dump_ctx *c);
void dump_hot_hand_over(struct dump_ctx *c);
void dump_hot_drop(struct dump_ctx *c);

/* dump_precopy.c: pages copied while running, under write tracking.
 * run: a short stop of its own, then protect + copy (c->pre); -1 leaves
 * nothing behind (the caller uses a fork copy instead). final: during the
 * capture, for a p with p->pre, after dump_proc_pagemap: fills p->segs.
 * unprotect: after the resume; end: frees everything (also on failure). */
int dump_precopy_run(struct dump_ctx *c, fp_error *err);
/* The short stop of the pre-copy alone: a userfaultfd for every process of
 * the tree that has no entry in c->pre yet. */
int dump_precopy_take(struct dump_ctx *c, fp_error *err);
/* Registers and write-protects every protectable mapping of pc->pid (regv:
 * what was registered, as dump VMAs). */
int dump_precopy_protect(struct dump_ctx *c, struct dump_precopy *pc, struct dump_vma **regv, size_t *nregv,
			 fp_error *err);
bool dump_precopy_protectable(const struct dump_vma *v);
/* dump_pipepeek.c: the bytes queued in pipe ino (fd of pid), left queued:
 * data (malloc'd, NULL when none), their count, the pipe's capacity. */
struct dump_pipe_bytes {
	int queued, size;
	uint8_t *data;
};
int dump_pipe_peek(pid_t pid, int fd, uint64_t ino, struct dump_pipe_bytes *out, fp_error *err);
/* FORKPOINT_FAULT pattern with one number of ms (tests): sleeps that long
 * (dump_incr_precopy.c). */
void dump_fault_sleep(const char *pattern);
/* dump_precopy_copy.c: the present pages of regv (and the places of the
 * untracked ones) copied into pc->buf while pc->pid runs. */
int dump_precopy_copy(struct dump_ctx *c, struct dump_precopy *pc, struct dump_vma *regv, size_t nregv, fp_error *err);
int dump_precopy_final(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
/* dump_incr_keep.c: pc's write tracking (userfaultfd, tracked ranges, the
 * shim's log position) handed to tp, which holds it from then on. */
struct fp_track_proc;
void dump_incr_hand_over(struct dump_precopy *pc, struct fp_track_proc *tp);
#include "dump/dump_vmflags.h"
/* Copies into v[] the VmFlags of the same mappings in known[] (both sorted);
 * returns how many v[] has that known[] has not. */
size_t dump_vmas_flags_from(struct dump_vma *v, size_t n, const struct dump_vma *known, size_t nknown);
void dump_precopy_unprotect(struct dump_ctx *c);
void dump_precopy_end(struct dump_ctx *c);


/* dump_shmem.c: shared anonymous memory. capture: while the tree is
 * stopped, before the VMA entries are built: finds every shared object the
 * tree maps and reads its pages. vma: fills the entry of a mapping of one
 * (1), or 0 if v is not shared anonymous memory. write: the pagemap-shmem
 * and pages images. */
bool dump_shmem_is_anon(const struct dump_vma *v);
int dump_shmem_capture(struct dump_ctx *c, fp_error *err);
int dump_shmem_vma(struct dump_ctx *c, struct dump_proc *p, struct dump_vma *v, cr_vma *o, fp_error *err);
/* An fd on a memfd (link "/memfd:NAME (deleted)"): f becomes its MEMFD
 * FileEntry, the memfd's contents are read (the tree is stopped). */
int dump_shmem_memfd_fd(struct dump_ctx *c, pid_t pid, int fd, const char *link, uint32_t flags, uint64_t pos,
			cr_file *f, fp_error *err);
int dump_shmem_write(struct dump_ctx *c, fp_error *err);
/* dump_shmem.c, for dump_sysvshm.c: the object shmid, known or new, at
 * least size bytes long; NULL (err set) if it grew after being read. */
struct dump_shmem *dump_shmem_note(struct dump_ctx *c, uint64_t shmid, uint64_t size, fp_error *err);
struct dump_shmem *dump_shmem_find(struct dump_ctx *c, uint64_t shmid);
/* An fd on (dev, ino) is on a deleted tmpfs file the tree maps shared,
 * which is dumped as a memfd (dump_shmem.c). */
bool dump_shmem_file_obj(struct dump_ctx *c, dev_t dev, uint64_t ino);
/* dump_ipcns.c: the tree's IPC namespace. probe: before the mappings, sets
 * ipcns_own and the tasks' ipc_ns_id; enter/leave: this thread into the
 * tree's namespace and back (nothing when it is ours); write: after the
 * segments are known, ipcns-var and the check that nothing is left out. */
#define DUMP_IPCNS_ID 2u
int dump_ipcns_probe(struct dump_ctx *c, fp_error *err);
int dump_ipcns_enter(struct dump_ctx *c, int *saved, fp_error *err);
void dump_ipcns_leave(struct dump_ctx *c, int saved);
int dump_ipcns_write(struct dump_ctx *c, size_t segs, fp_error *err);

/* dump_sysvshm.c: SysV shared memory (shmget/shmat). note: while the tree
 * is stopped, a segment mapped at v (its id and state; the pages are read
 * with the other shared objects). vma: the vma_entry of an attach (1), or
 * 0 if v is not one. write: ipcns-shm-<ns>.img. */
bool dump_sysvshm_is(const struct dump_vma *v);
int dump_sysvshm_note(struct dump_ctx *c, const struct dump_proc *p, const struct dump_vma *v, fp_error *err);
int dump_sysvshm_vma(struct dump_ctx *c, struct dump_proc *p, struct dump_vma *v, cr_vma *o, fp_error *err);
int dump_sysvshm_write(struct dump_ctx *c, fp_error *err);
void dump_shmem_free(struct dump_ctx *c);

/* dump_files.c */
cr_file *dump_new_file(struct dump_ctx *c, const struct dump_fkey *k, fp_error *err);
/* A new regular-file entry for path (strdup'ed), opened with flags at pos. */
cr_file *dump_new_reg_file(struct dump_ctx *c, const struct dump_fkey *k, const char *path, uint32_t flags,
			   uint64_t pos, fp_error *err);
int dump_file_path(struct dump_ctx *c, const char *path, uint32_t flags, uint32_t *id, fp_error *err);
/* An fd as read while its process is stopped: link and st may come from
 * the look before the stop (dump_fdscan.c) when the inode is the same. */
struct dump_fd_seen {
	int fd;
	uint64_t pos;
	uint32_t flags; /* status flags and O_CLOEXEC, from fdinfo */
	int mnt_id;
	uint64_t ino;
	struct stat st;
	const char *link;
	const char *info; /* the whole fdinfo text (lock lines) */
};
/* dump_files.c: an fd's CR_FD_* type (an error for kinds not dumped);
 * whether it is a file reopened by path that nothing else is read for
 * (its entry can be made after the tree resumes); the entry of an fd made
 * now (1: the shim's transient fd, left out). */
int dump_fd_type(struct dump_ctx *c, pid_t pid, int fd, const char *link, const struct stat *st, uint32_t *out, fp_error *err);
bool dump_fd_plain(uint32_t type, const char *link);
/* The shim's own short-lived /proc fd (left out of a dump). */
bool dump_fd_shim_transient(const char *link, uint32_t flags);
int dump_fd_now(struct dump_ctx *c, struct dump_proc *p, const struct dump_fd_seen *s, struct dump_fd *out,
		fp_error *err);
uint64_t dump_desc_key(const struct stat *st, uint64_t pos, uint32_t flags);
/* dump_fdscan.c: fd capture in one pass. _look (dump_fdlook.c): before
 * the stop, for each process of root's tree, what cannot change while it
 * runs (paths, inodes, fdinfo files kept open),
 * best effort; _files: while stopped, one fdinfo read per fd, the kinds
 * whose state is read at once done at once; _pin: still stopped, a
 * pidfd_getfd copy of each fd that may share its description; _finish:
 * after the resume, the rest of the entries (kcmp on the copies), each
 * path checked against its inode (*stale: a path no longer names it, the
 * dump must be done again without the look). */
void dump_fds_look(struct dump_ctx *c, pid_t root);
/* dump_fdread.c: the fdinfo text of each fd whose kept fdinfo file is
 * kept[i] (-1: none, len DUMP_FDTEXT_NONE), into out[i] (len: bytes, or
 * -errno, or DUMP_FDTEXT_LONG: too long for the slot, read it again), on
 * two CPUs when there are many (*threads: how many read). */
#define DUMP_FDTEXT_NONE INT16_MIN
#define DUMP_FDTEXT_LONG INT16_MAX
struct dump_fdtext {
	int16_t len;
	char txt[254];
};
void dump_fdread(const int *kept, size_t n, struct dump_fdtext *out, int *threads);
/* The fd numbers in /proc/PID/fd (dirfd: that directory), sorted, malloc'd. */
int dump_list_fds(int dirfd, int **out, size_t *nout);
/* fd's fdinfo text into buf (len, NUL-terminated by the caller): through
 * kept (its fdinfo file) when >= 0, else opened in infodir. */
ssize_t dump_fdinfo_read(int infodir, int kept, int fd, char *buf, size_t len);
/* /proc/PID/fd and /proc/PID/fdinfo opened (-1 each on failure). */
void dump_fd_dirs(pid_t pid, int *fddir, int *infodir);
#include "dump/dump_two_cpus.h"
#include "dump/dump_incr_int.h" /* incremental snapshots */
/* dump_worker.c: (incremental snapshots) a second thread for a job of the
 * stop, on a CPU other than where the target `near` last ran; from _start
 * (before the seize) to _end (after the resume), for this thread's dump
 * only. _post starts fn(arg) on it (false: none); _wait joins it (also
 * _end). fn must be a share of work that the poster also does (pieces
 * taken from a common counter), and must not need its caller's frame. */
void dump_worker_start(struct dump_ctx *c, pid_t near);
void dump_worker_end(void);
bool dump_worker_post(void (*fn)(void *), void *arg);
void dump_worker_wait(void);
/* The area of p->fb (copied while stopped) that holds a, or NULL. */
const struct dump_span *dump_span_at(const struct dump_proc *p, uint64_t a);
int dump_proc_files(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_fds_pin(struct dump_ctx *c, fp_error *err);
int dump_fds_finish(struct dump_ctx *c, bool *stale, fp_error *err);
void dump_fds_free(struct dump_ctx *c);
/* Whether the look saw fd of pid open (and its close-on-exec flag). */
bool dump_fds_looked(const struct dump_ctx *c, pid_t pid, int fd, bool *cloexec);
#include "dump/dump_fdshort.h" /* the shim's fd table: check, shortcut, carry, marks */
int dump_write_files(struct dump_ctx *c, fp_error *err);
/* dump_evfd.c: eventfd, epoll, signalfd, timerfd (CR_FD_* type of a
 * /proc/PID/fd link, 0 if none of them; the entry from its fdinfo). */
int dump_event_kind(const char *link);
int dump_event_file(struct dump_ctx *c, pid_t pid, int fd, uint32_t flags, cr_file *f, fp_error *err);
/* dump_inotify.c: an inotify fd's watches (from its fdinfo text) into f. */
int dump_inotify_entry(struct dump_ctx *c, pid_t pid, int fd, const char *info, cr_file *f, fp_error *err);
/* dump_sock.c: a TCP socket without connection state (listening or
 * unconnected) or a unix socket, or a clear refusal; sets f->type. One
 * sock_diag request (the reply for inode ino goes to fn; 1 found, 0 not,
 * -1 error with errno); the options every socket has. */
int dump_socket_file(struct dump_ctx *c, pid_t pid, int fd, uint64_t ino, uint32_t flags, cr_file *f, fp_error *err);
struct nlmsghdr;
int dump_sock_diag(const void *req, size_t len, uint32_t ino,
		   int (*fn)(const struct nlmsghdr *h, uint32_t ino, void *arg), void *arg);
void dump_sock_opts(int s, bool tcp, cr_sk_opts *o);
/* The connections waiting to be accepted on listening TCP socket ino:
 * 1 found, 0 not, -1 errno. */
int dump_inet_waiting(int family, uint32_t ino, uint32_t *waiting);
/* dump_tcp.c: an established TCP connection (o->tcp_established), socket s
 * (a copy of fd of pid): its entry now, its state once every fd is seen
 * (dump_tcp_capture: network lock, repair mode, queues, while stopped),
 * its tcp-stream image, and its repair mode left (or kept for the kill)
 * when the tree is let go. */
int dump_tcp_conn(struct dump_ctx *c, pid_t pid, int fd, int s, cr_inet_sk *k, fp_error *err);
int dump_tcp_capture(struct dump_ctx *c, fp_error *err);
int dump_tcp_write(struct dump_ctx *c, fp_error *err);
void dump_tcp_release(struct dump_ctx *c, bool killed);
void dump_tcp_unlock(struct dump_ctx *c);
void dump_tcp_free(struct dump_ctx *c);
/* dump_usk.c: unix socket s (a copy of fd of pid) into f->usk, its queued
 * messages into sk-queues.img; every peer is in the tree (after all the
 * processes are read). */
int dump_unix_socket(struct dump_ctx *c, pid_t pid, int fd, int s, cr_file *f, fp_error *err);
int dump_usk_check(struct dump_ctx *c, fp_error *err);
/* dump_tcp_urg.c: the urgent pointer (snd_up) and snd_una of n TCP
 * sockets (ours); known[i] when socket i has an urgent byte not yet
 * acknowledged. -1 (logged) when the kernel cannot tell. */
int dump_tcp_snd_urg(struct dump_ctx *c, const int *sks, size_t n, uint32_t *snd_up, uint32_t *snd_una, bool *known);
/* What sock_diag tells of a unix socket (dump_usk.c): 1 found, 0 not, -1 error. */
struct usk_diag {
	uint32_t state, type, peer, rq, wq;
	uint8_t shutdown;
	bool has_vfs;
	uint32_t vfs_ino;
	char name[108]; /* sun_path as bound (abstract: a leading NUL) */
	size_t name_len;
};
int dump_usk_query(uint32_t ino, struct usk_diag *d);
const cr_file *dump_usk_by_ino(const struct dump_ctx *c, uint32_t ino);
/* dump_usk_ext.c: file entry i is a unix socket whose peer no process of
 * the tree holds: with --ext-unix-sk a named datagram peer becomes an
 * external entry (CRIU's USK_EXTERN); anything else is refused. */
int dump_usk_external(struct dump_ctx *c, size_t i, fp_error *err);
int dump_usk_write(struct dump_ctx *c, fp_error *err);
/* dump_usk_order.c: files.img's entries in the order CRIU's restore of fds
 * in flight needs (*out: shallow copies, NULL when c->files is in order). */
int dump_usk_file_order(struct dump_ctx *c, cr_file **out, fp_error *err);
void dump_usk_free(struct dump_ctx *c);
/* dump_tty.c */
bool dump_is_pty_slave(const struct stat *st);
/* fd on a pty slave: its tty-info entry and the REG entry of its path. */
int dump_tty_file(struct dump_ctx *c, struct dump_proc *p, int fd, const char *link, const struct stat *st,
		  uint32_t flags, uint32_t *info_id, uint32_t *regf_id, fp_error *err);
int dump_write_ttys(struct dump_ctx *c, fp_error *err);
int dump_write_fdinfo(struct dump_ctx *c, struct dump_proc *p, fp_error *err);

/* dump_misc.c */
int dump_proc_fs(struct dump_ctx *c, struct dump_proc *p, fp_error *err);
int dump_write_misc(struct dump_ctx *c, fp_error *err);
int dump_write_fs(struct dump_ctx *c, struct dump_proc *p, fp_error *err);

/* dump_manifest.c */
struct dump_manifest_info {
	const char *compress;
	double pause_ms, total_ms;
	double prestop_ms; /* 0: none */
	const pid_t *pids;
	size_t npids;
	const uint32_t *pages_ids;
	const uint64_t *pages_n;
	const uint64_t *pages_hash;
	size_t npages_ids;
	bool fsync; /* o->fsync: the durability asked for (atomic either way) */
};
int dump_manifest_write(int dirfd, const struct dump_manifest_info *mi, uint64_t *bytes_total,
			fp_error *err);
/* dump_findex.c: finding a FileEntry in (amortised) constant time. _path:
 * 1 and its id if (path, flags) has one. _desc: 1 and its id if fd of pid
 * shares an open file description with an entry of inode ino and key (the
 * device, offset and flags, which such fds share), else
 * 0 and *pos, where the new entry goes (pass it to _add_desc). */
int dump_findex_path(struct dump_ctx *c, const char *path, uint32_t flags, uint32_t *id);
int dump_findex_add_path(struct dump_ctx *c, const char *path, uint32_t flags, size_t file, fp_error *err);
int dump_findex_desc(struct dump_ctx *c, int kind, pid_t pid, int fd, uint64_t key, uint64_t ino, uint32_t *id,
		     size_t *pos);
int dump_findex_add_desc(struct dump_ctx *c, int kind, uint64_t key, uint64_t ino, size_t pos, size_t file,
			 fp_error *err);
void dump_findex_free(struct dump_ctx *c);

/* dump_tmp.c: the mkdtemp template of a dump's temporary directory (it
 * names its owner), and the removal of those in parent whose owner is gone:
 * their number, and their names in note. */
void dump_tmp_template(char *buf, size_t len, const char *parent, const char *base);
int dump_tmp_reap(const char *parent, char *note, size_t len);

/* dump_manifest.c: the snapshot made whole: its manifest, then the
 * temporary directory renamed to final (fsync'd with o->fsync). */
int dump_publish(struct dump_ctx *c, const char *final, const char *parent, fp_error *err);
/* dump.c: st->phases from c->ph. */
void dump_phases_format(struct dump_ctx *c);

/* Small /proc readers (dump_misc.c). */
long dump_read_proc(const char *path, char *buf, size_t len);
int dump_status_field(pid_t tid, const char *key, char *out, size_t len);

#endif
