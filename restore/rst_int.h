/* Internals of the native restorer, shared by restore/rst_*.c. */
#ifndef FP_RST_INT_H
#define FP_RST_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "fp_error.h"
#include "ptrace/ptrace.h"
#include "images/criu_io.h"
#include "images/criu_msgs.h"
#include "images/pagestore.h"

/* The embedded stub executable (restore/stub_blob.c). */
extern const unsigned char fp_rst_stub_elf[], fp_rst_stub_elf_end[];

/* ---- log ---------------------------------------------------------------- */
typedef struct rst_log {
	FILE *f;
	int level;        /* 1 errors .. 4 debug */
	long long t0_ns;
} rst_log;

/* user_named: path came from the user (-o), who may point it through a
 * link of their own; the default path is never followed through a link. */
int rst_log_open(rst_log *l, const char *path, bool user_named, int level, fp_error *err);
/* The default log: $FORKPOINT_HOME/logs/restore-<pid>.log (a private
 * directory; never the image directory, which may be anyone's). "" if
 * there is no state directory. Logs older than a day are removed. */
void rst_log_default(char *buf, size_t len);
void rst_log_close(rst_log *l);
void rst_logf(rst_log *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
long long rst_now_ns(void);

/* ---- the image ---------------------------------------------------------- */
typedef struct rst_thread {
	uint32_t tid;
	cr_core core;
} rst_thread;

typedef struct rst_image {
	int dirfd;
	bool skip_pid_check; /* the caller frees the pids after validation */
	char dir[4096];
	cr_inventory inv;
	cr_pstree *ps;
	size_t nps;
	uint32_t pid;
	size_t index;   /* of this process in ps[]: 0 is the tree's root */
	cr_ids ids;
	rst_thread *th; /* th[0] is the leader */
	size_t nth;
	cr_mm mm;
	cr_pagemap_head pmh;
	cr_pagemap_entry *pe;
	size_t npe;
	uint64_t present_pages;
	pgs_reader *pages; /* pages-<pages_id>.fpz or .img */
	cr_file *files;
	size_t nfiles;
	cr_fdinfo *fdi;
	size_t nfdi;
	cr_fs fs;
	cr_pipe_data *pd;
	size_t npd;
	cr_pipe_data *fifod; /* fifo-data.img */
	size_t nfifod;
	cr_remap_fpath *remaps; /* remap-fpath.img */
	size_t nremaps;
	struct rst_ghost *ghosts_made; /* rst_ghost.c: files made for ghosts */
	size_t nghosts_made;
	bool has_timens;
	cr_timens timens;
	cr_tty_info *ttys; /* tty-info.img, read when an fd is a terminal */
	size_t nttys;
	cr_file_lock *locks; /* filelocks.img: every process's, each takes its own */
	size_t nlocks;
	cr_sk_packet *skq; /* sk-queues.img */
	size_t nskq;
	/* index of the vdso / vvar VMAs in mm.vmas, -1 if none */
	int vdso_vma, vvar_vma;
	bool take_foreground; /* fp_restore_opts.foreground */
	bool stop_foreground; /* fp_restore_opts.stop_foreground_job */
	bool job_stopped;     /* root image: a process was stopped for it */
	bool zombie;          /* only pstree and core: a child not yet reaped */
	/* first reason the native engine cannot restore this image, "" if none */
	char unsupported[512];
} rst_image;

/* Loads and validates everything (no process is created). A bad image is
 * an error; something only the native engine lacks is noted in
 * im->unsupported and is not an error. */
int rst_image_load(rst_image *im, const char *dir, fp_error *err);
/* check_pids false: everything but "are the image's pids free" (a session
 * validates a snapshot before it stops the processes holding those pids). */
int rst_image_load_ex(rst_image *im, const char *dir, bool check_pids, fp_error *err);
int rst_image_check_pids(const rst_image *im, fp_error *err);
/* Process ps[index] of the image's tree (no pid check). */
int rst_image_load_proc(rst_image *im, const char *dir, size_t index, bool check_pids, fp_error *err);
void rst_image_free(rst_image *im);
const cr_file *rst_file(const rst_image *im, uint32_t id);
const char *rst_file_path(const rst_image *im, uint32_t id);
/* The terminal a TTY entry comes back on (rst_tty.c), and its tty-info. */
const char *rst_tty_path(const rst_image *im, const cr_file *f, char *buf, size_t len);
/* The restorer's own pseudo-terminal among fds 0-2, or -1. */
int rst_tty_own_fd(void);
const cr_tty_info *rst_tty_info(const rst_image *im, const cr_file *f);
/* printf into im->unsupported unless already set. */
void rst_unsupported(rst_image *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* vDSO: compares the dumped vdso pages with the running kernel's. 0 if they
 * match; -1 with a message saying what differs. */
int rst_vdso_check(rst_image *im, fp_error *err);

/* ---- the process being built -------------------------------------------- */
typedef struct rst_map { /* a line of /proc/PID/maps */
	uint64_t start, end;
	char name[64];
} rst_map;

/* What the processes of a tree share: open file descriptions (by file id,
 * where a process already holds one) and pipes (by pipe id, both ends kept
 * open in the process that made it until every fd table is done). */
struct rst_proc;
typedef struct rst_share_file {
	uint32_t id;
	pid_t pid;
	int fd;
} rst_share_file;
typedef struct rst_share_pipe {
	uint32_t pipe_id;
	struct rst_proc *owner;
	int end[2];
} rst_share_pipe;
typedef struct rst_share {
	rst_share_file *files;
	size_t nfiles, capfiles;
	rst_share_pipe *pipes;
	size_t npipes, cappipes;
} rst_share;

/* Shared memory objects of a restore (rst_shmem.c), made once for the
 * whole tree. */
struct rst_shm_obj;
typedef struct rst_shm {
	struct rst_shm_obj *o;
	size_t n;
	cr_memfd_inode *mi; /* memfd.img, read on first use */
	size_t nmi;
	bool mi_loaded;
	struct rst_sysv *sysv; /* SysV segments (rst_sysvshm.c), NULL when none */
	struct rst_ghost *ghosts; /* files made for ghost files, one per ghost for the tree (rst_ghost.c) */
	size_t nghosts;
} rst_shm;

/* Unix sockets other than listeners (rst_usk.c), made once for the tree. */
struct rst_usk_sk;
typedef struct rst_usks {
	bool made;
	struct rst_usk_sk *sk;
	size_t n;
	int sender; /* a datagram socket of ours, -1 until needed */
} rst_usks;

/* Established TCP connections (rst_tcp.c), made in repair mode by us. */
struct rst_tcp_sk;
typedef struct rst_tcps {
	struct rst_tcp_sk *sk;
	size_t n;
} rst_tcps;

typedef struct rst_proc {
	rst_image *im;
	rst_share *share; /* NULL for a single process */
	rst_shm *shm;     /* shared memory and memfds of the restore */
	rst_usks *usk;    /* unix sockets of the restore */
	rst_tcps *tcp;    /* established TCP connections of the restore; NULL: none allowed */
	bool files_shared; /* its fd table is its parent's (CLONE_FILES) */
	rst_log *log;
	pid_t pid;
	fp_pt_proc pt;
	/* Registers of the stub at its first stop: the segments and flags every
	 * injected call (rst_batch.c) starts from. */
	struct user_regs_struct base_regs;
	uint64_t sys_ip;               /* a `syscall` instruction for single steps */
	uint64_t runner;               /* the syscall-list runner's page, 0 until mapped */
	struct rst_batch *batch;       /* queued system calls, NULL until the first */
	struct rst_pw *pw;             /* page data being written, NULL when none */
	/* The page data may still be written after rst_mem_restore returns (a
	 * single process; in a tree each process's writers end in its memory
	 * step, so that no more than one set runs at a time). pages_pending:
	 * rst_mem_pages_done is still to be called. */
	bool pages_async, pages_pending;
	uint64_t stub_start, stub_end; /* the stub's text mapping, 0 once unmapped */
	uint64_t scratch, scratch_len; /* our scratch mapping in the target */
	/* the kernel's vDSO/vvar in the stub (after the first move) */
	uint64_t kvvar_start, kvvar_end, kvdso_start, kvdso_end;
	uint64_t kvclock_start, kvclock_end; /* 0 when the kernel has none */
	int64_t deadline_ns;
	/* the soft RLIMIT_NOFILE before restore_fds raised it (rst_fdroom.c),
	 * put back by rst_task_restore when the image has no limit of its own */
	bool nofile_raised;
	uint64_t nofile_soft;
} rst_proc;

/* Creates the stub with the image's pid, seized and stopped at its first
 * instruction, with its stack unmapped and its vDSO parked out of the way. */
int rst_proc_create(rst_proc *p, rst_image *im, rst_log *log, fp_error *err);
/* A process that holds the image's memory already (restore.h, fp_restore_adopt). */
int rst_proc_adopt(rst_proc *p, rst_image *im, rst_log *log, pid_t pid, uint64_t sys_ip, fp_error *err);
/* A child process of a tree, forked by its parent's stub (both bare stubs). */
int rst_proc_fork(rst_proc *parent, rst_proc *c, rst_image *im, fp_error *err);
/* A child of an adopted process (rst_proc_adopt), which holds a whole
 * image's memory: cloned sharing that memory (no page table copied) and
 * made a bare stub at once by exec'ing the stub, then as rst_proc_fork's
 * child (rst_fork_exec.c). */
int rst_proc_fork_exec(rst_proc *parent, rst_proc *c, rst_image *im, fp_error *err);
/* rst_proc.c's steps, shared with rst_fork_exec.c: the stub executable in
 * a memfd; the stub's address space made ready after its exec; clone3
 * with set_tid queued in p; a new child's session and group; a stop. */
int rst_stub_memfd(fp_error *err);
int rst_proc_prepare(rst_proc *p, fp_error *err);
int rst_queue_clone3(rst_proc *p, uint64_t flags, int exit_signal, pid_t want, const char *what, int64_t *ret,
		     fp_error *err);
int rst_proc_join_group(rst_proc *parent, rst_proc *c, fp_error *err);
/* clone3 of c (c->im set) in parent with flags and c's pid, seized from
 * birth; c's thread table made; *st its first stop. */
int rst_proc_clone(rst_proc *parent, rst_proc *c, uint64_t flags, int *st, fp_error *err);
int rst_wait_stop(rst_proc *p, pid_t tid, int64_t deadline, int *st, const char *what, fp_error *err);
/* The native engine (restore.c) on a loaded root image; adopt_pid > 0:
 * the root is that process, which holds its memory already (a fork of a
 * hot snapshot's copy, rst_proc_adopt; killed on failure), and its
 * children come from it (rst_proc_fork_exec). */
int rst_native_restore(rst_image *root_im, rst_log *log, int timeout_ms, pid_t adopt_pid, uint64_t adopt_ip, pid_t *pid,
		       fp_error *err);

/* Kills and reaps everything created (with a deadline); safe to call twice. */
void rst_proc_kill(rst_proc *p);
/* Lets the restored process run (after rst_task_regs). */
int rst_proc_release(rst_proc *p, fp_error *err);

/* ---- event fds and sockets (rst_evfd.c, rst_sock.c) ---------------------- */

/* Makes the file of an eventfd, signalfd, timerfd or epoll entry (without
 * its watches) in p; *fd is its temporary number there. */
int rst_evfd_make(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
/* Adds every epoll watch, once every fd of p is in place. */
int rst_evfd_watches(rst_proc *p, fp_error *err);
/* Makes a listening or unconnected TCP socket, or a unix listener. */
int rst_sock_make(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
/* The options of a socket, set on fd of p (queued). */
int rst_sock_opts(rst_proc *p, int fd, const cr_sk_opts *o, bool tcp, fp_error *err);
/* Removes a socket file at path that no socket is bound to any more. */
void rst_unix_clear_stale(const char *path, int type);
/* rst_usk.c: a unix socket entry other than a listener, in p (*fd its
 * temporary number); the first call makes all of them. */
bool rst_usk_is_listener(const cr_file *f);
int rst_usk_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
/* Once every process's fds are in place: the queued messages (with their
 * fds in flight), the closed peers, shutdowns, flags, unlinked names. */
int rst_usk_finish(rst_usks *s, const rst_proc *ps, size_t n, fp_error *err);
void rst_usk_free(rst_usks *s);
/* rst_tcp.c: an established TCP connection in p (*fd its temporary number),
 * made in repair mode; once every process has its fds, every connection
 * leaves repair mode and the dump's network lock is lifted. */
int rst_tcp_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
int rst_tcp_ended(rst_proc *p, const cr_file *f, fp_error *err);
int rst_tcp_finish(rst_tcps *s, rst_log *log, fp_error *err);
void rst_tcp_free(rst_tcps *s);
/* rst_tcp_seg.c: a segment from c's peer to c (flags TH_FIN, TH_ACK, and
 * TH_URG: one urgent byte), past the network lock. */
struct fp_tcp_conn;
int rst_tcp_segment(const struct fp_tcp_conn *c, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t window,
		    uint8_t urgent, fp_error *err);
/* rst_inotify.c: an inotify with its watches, in p (*fd its temporary
 * number). */
int rst_inotify_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
/* rst_files.c: a copy in p of fd of process pid (same open file
 * description), *out its number in p. */
int rst_fetch_fd(rst_proc *p, pid_t pid, int fd, int *out, fp_error *err);

/* ---- shared memory and memfds (rst_shmem.c) ------------------------------ */

/* Queues, in p, the fd to map shared anonymous memory or memfd VMA v from
 * (its number lands in *out at the flush). */
int rst_shm_map_fd(rst_proc *p, const cr_vma *v, int64_t *out, fp_error *err);
/* A memfd FileEntry's fd in p: its own open file description, flags and
 * offset; *fd is its temporary number there. */
int rst_shm_file_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
/* The memfds' seals, once every mapping of the tree is made. */
int rst_shm_seal(rst_shm *s, fp_error *err);
void rst_shm_free(rst_shm *s);
/* Copies shared object shmid's pages from the image into map (else into fd
 * with pwrite), size bytes. */
int rst_shm_fill(const rst_image *im, uint64_t shmid, int fd, uint8_t *map, uint64_t size, fp_error *err);

/* ---- SysV shared memory (rst_sysvshm.c) ----------------------------------- */

/* Before any process exists: every segment of ipcns-shm-*.img with its id,
 * key, owner, mode and pages (in a new IPC namespace when one is taken). */
int rst_sysv_prepare(rst_shm *s, const rst_image *im, rst_log *log, fp_error *err);
/* Queues, in p, the attach of SysV vma v at its address (*got: the result). */
int rst_sysv_attach(rst_proc *p, const cr_vma *v, int64_t *got, fp_error *err);
/* Once every process has attached: segments removed at dump time are removed
 * again (they go with their last attach). */
int rst_sysv_finish(rst_shm *s, fp_error *err);
/* After a failure: the segments made here are removed. */
void rst_sysv_free(rst_shm *s);

/* ---- system calls in the process being built (rst_batch.c) --------------- */

/* The runner's list entry (rst_runner.c). */
typedef struct rst_ent {
	uint64_t nr;
	uint64_t ctl; /* RST_CTL_* */
	uint64_t a[6];
	int64_t ret;
} rst_ent;
#define RST_CTL_STOP 1u /* a result of -4095..-1 ends the list */
#define RST_CTL_REF 2u  /* a[(ctl >> 8) & 7] = ret of the entry (ctl >> 16) earlier */
extern const unsigned char fp_rst_runner[], fp_rst_runner_syscall[], fp_rst_runner_end[], fp_rst_runner_stop[];

/* The scratch area made in every stub (rst_proc.c): fixed places for
 * rst_scratch_put below 32 KiB and in the last 4 KiB, the batch between. */
#define RST_SCRATCH_LEN (256 * 1024)

/* rst_q flags: RST_MUST fails the flush (and ends that thread's list) on a
 * result of -4095..-1; RST_REF(slot, back) makes argument slot the result
 * of this thread's call `back` calls earlier, in the same flush. */
#define RST_MUST RST_CTL_STOP
#define RST_REF(slot, back) (RST_CTL_REF | (unsigned)(slot) << 8 | (unsigned)(back) << 16)

/* Queues a system call for thread tid (see rst_batch.c for the rules).
 * what names it in a failure message (may be NULL for unchecked calls);
 * *ret (may be NULL) is filled by the flush that runs it. */
int rst_q(rst_proc *p, pid_t tid, const char *what, unsigned flags, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	  uint64_t a3, uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err);
/* The same with argument `slot` pointing to a copy of len bytes of data. */
int rst_q_mem(rst_proc *p, pid_t tid, const char *what, unsigned flags, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	      uint64_t a3, uint64_t a4, uint64_t a5, int slot, const void *data, size_t len, int64_t *ret, fp_error *err);
/* len zeroed bytes of the batch's data area, to fill before the flush;
 * *remote is their address in the target. NULL on error. */
void *rst_q_data(rst_proc *p, size_t len, uint64_t *remote, fp_error *err);
/* Flushes now unless `entries` calls with `bytes` of data fit the queue. */
int rst_q_room(rst_proc *p, size_t entries, size_t bytes, fp_error *err);

/* rst_caps.c: whether a thread of these creds needs its capabilities set
 * (they are not the restorer's own); the securebits to set before its ids
 * change (KEEP_CAPS, NO_SETUID_FIXUP and its unlocked bits); after them,
 * the calls that give it the image's capabilities and securebits (bits_now:
 * the securebits set before). */
int rst_caps_wanted(const cr_creds *cr, bool *wanted, fp_error *err);
uint32_t rst_caps_keep_bits(uint32_t secbits);
int rst_caps_after_ids(rst_proc *p, pid_t tid, const cr_creds *cr, uint32_t bits_now, fp_error *err);
/* Runs everything queued: each thread's calls in one round trip, all
 * threads at once. Fails naming the first RST_MUST call that failed. */
int rst_flush(rst_proc *p, fp_error *err);
void rst_batch_free(rst_proc *p);
/* One call by single-stepping the `syscall` at p->sys_ip (before the
 * runner exists, and for the call that unmaps it). */
int rst_step_sys(rst_proc *p, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 uint64_t a5, int64_t *ret, fp_error *err);
/* Resumes the threads (stopped at a `syscall` instruction) into their
 * syscall-entry stops, all at once. */
int rst_resume_to_syscall(rst_proc *p, const pid_t *tids, size_t n, fp_error *err);

/* Blocking waits for our tracees' stops (rst_wait.c): between begin and
 * end, rst_wait sleeps until a stop or the deadline, as fp_pt_wait_one. */
void rst_wait_begin(void);
void rst_wait_end(void);
int rst_wait(pid_t tid, int64_t deadline_ns, int *status);

/* One syscall in thread tid (queue + flush); fails if it returns -errno,
 * naming what. *ret may be NULL. */
int rst_sys(rst_proc *p, pid_t tid, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	    uint64_t a3, uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err);
/* The same returning the raw result (>= 0 or -errno) without failing on it. */
int rst_sys_raw(rst_proc *p, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, int64_t *ret, fp_error *err);
/* Copies len bytes to the scratch area at offset off; returns the remote
 * address in *addr. */
int rst_scratch_put(rst_proc *p, size_t off, const void *data, size_t len, uint64_t *addr, fp_error *err);
/* Reads /proc/PID/maps of the target. *maps is malloc'd. */
int rst_read_maps(pid_t pid, rst_map **maps, size_t *n, fp_error *err);
/* Creates the image's other threads (CLONE_THREAD, set_tid) from the
 * leader, each seized and stopped before it runs any image code. */
int rst_proc_make_threads(rst_proc *p, fp_error *err);

/* ---- steps -------------------------------------------------------------- */
int rst_mem_restore(rst_proc *p, fp_error *err);     /* VMAs, pages, vDSO */
int rst_mem_finish(rst_proc *p, fp_error *err);      /* stub gone, mm fields */
/* Page data written by threads of ours, alongside the restore (rst_pages.c).
 * start: 1 started (the threads decode, then wait for go), 0 not worth it
 * (one CPU or one chunk: rst_mem_restore writes the pages itself), -1
 * error. go: the VMAs are mapped, write. wait: helps, joins, reports. abort:
 * stops and joins them (failure paths). */
int rst_pages_start(rst_proc *p, rst_image *im, fp_error *err);
void rst_pages_go(rst_proc *p);
int rst_pages_wait(rst_proc *p, fp_error *err);
void rst_pages_abort(rst_proc *p);
/* Before go: the private anonymous VMAs are registered with a userfaultfd
 * and their pages put in with UFFDIO_COPY (rst_uffd.c). */
int rst_pages_uffd(rst_proc *p, fp_error *err);
int rst_uffd_open(rst_proc *p, int *fd, fp_error *err);
int rst_uffd_register(int fd, uint64_t start, uint64_t len);
void rst_uffd_unregister(int fd, uint64_t start, uint64_t len);
int rst_uffd_copy(int fd, uint64_t dst, const void *src, uint64_t len, fp_error *err);
/* Waits for the page data (rst_pages_wait) and gives the VMAs their
 * protection back: before anything reads the memory (rseq registration). */
int rst_mem_pages_done(rst_proc *p, fp_error *err);
int rst_files_restore(rst_proc *p, fp_error *err);   /* fds, pipes, cwd, root, umask, locks */
/* Room for the fds that wait above the image's highest one (rst_fdroom.c);
 * the limit as it was when the image has none of its own. */
int rst_fd_room(rst_proc *p, int high, size_t extra, fp_error *err);
void rst_fd_room_back(rst_proc *p);
/* rst_timers.c: p's POSIX timers, with their ids, once its threads exist;
 * whether this kernel can give a timer a chosen id. */
int rst_posix_timers(rst_proc *p, fp_error *err);
bool rst_timers_supported(void);
/* rst_zombie.c: z, just forked by parent's stub, ends with its image's wait
 * status and stays a zombie of parent. */
int rst_zombie_end(rst_proc *parent, rst_proc *z, fp_error *err);
/* rst_locks.c: takes back p's file locks; its fds must be in place. */
int rst_locks_take(rst_proc *p, fp_error *err);
/* rst_files.c: an injected open(path, flags) whose fd is needed now; refills
 * a pipe (or FIFO) through its write end wfd with the bytes it held. */
int rst_open_now(rst_proc *p, const char *what, const char *path, uint32_t flags, int *fd, fp_error *err);
int rst_pipe_refill(rst_proc *p, int wfd, const cr_pipe_data *pd, fp_error *err);
/* rst_ghost.c: the remap of file entry file_id, if any, and whether it is
 * a ghost (a deleted file kept in the image); the path to open for REG
 * entry f (a ghost's bytes written to a new file first; NULL on error);
 * unlinking those files once the fds that need them are open. */
const cr_remap_fpath *rst_remap(const rst_image *im, uint32_t file_id);
bool rst_remap_is_ghost(const cr_remap_fpath *r);
const char *rst_ghost_path(rst_proc *p, const cr_file *f, fp_error *err);
/* The path to open for REG entry id (a ghost's file made first), NULL with
 * err on error or when id is no REG entry. The ghosts' files are unlinked
 * once the mappings, the fds and the executable are in place
 * (rst_mem_finish), or when the image is freed. */
const char *rst_reg_path(rst_proc *p, uint32_t id, fp_error *err);
void rst_ghosts_unlink(rst_image *im);
/* The tree's ghost files unlinked, once every process holds what it needs. */
void rst_ghosts_unlink_tree(rst_shm *s);
/* rst_fifo.c: opens the named FIFO of entry f in p, without blocking. */
int rst_fifo_open(rst_proc *p, const cr_file *f, int *fd, fp_error *err);
/* rst_tty.c: gives the terminal's foreground back to p's group if it had it
 * (p must still have every signal blocked). */
int rst_tty_foreground(rst_proc *p, fp_error *err);
/* The process's group had the foreground of one of its terminals. */
bool rst_tty_had_foreground(const rst_image *im);
int rst_share_done(rst_share *s, fp_error *err);      /* closes the kept pipe ends, frees */
int rst_task_restore(rst_proc *p, fp_error *err);    /* sigactions, rlimits, timers, threads */
int rst_task_finish(rst_proc *p, fp_error *err);     /* pdeath signals, pending signals */
int rst_task_regs(rst_proc *p, fp_error *err);       /* creds, scratch gone, regs, masks */
int rst_tty_finish(rst_proc *p, fp_error *err);      /* termios, controlling terminal */

/* A restore into a new pid namespace, when the image's pids are taken. */
struct fp_restore_opts;
struct fp_restore_result;
int rst_pidns_restore(const struct fp_restore_opts *o, struct fp_restore_result *r, int timeout_ms, fp_error *err);

/* The CRIU engine. */
int rst_criu_restore(const struct fp_restore_opts *o, const char *log_path, int timeout_ms, pid_t *pid,
		     fp_error *err);

#endif
