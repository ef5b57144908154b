/* forkpoint.h: the public C API of libforkpoint (link with
 * `pkg-config --cflags --libs forkpoint`). It is the only header forkpoint
 * installs; everything else in the source tree is private and may change.
 *
 * Two layers, both usable on their own.
 *
 * 1. Images: one process tree <-> one directory of CRIU-format images.
 *
 *        forkpoint_error e;
 *        if (forkpoint_dump(pid, "/tmp/img", FORKPOINT_DUMP_LEAVE_RUNNING, &e) < 0)
 *                fprintf(stderr, "%s\n", e.message);
 *        pid_t back;
 *        if (forkpoint_restore("/tmp/img", 0, &back, &e) < 0)
 *                fprintf(stderr, "%s\n", e.message);
 *        int status;
 *        forkpoint_wait(back, -1, &status, &e);
 *
 *    forkpoint_dump stops the tree for as short a time as it can (the pages
 *    are read after it runs on), writes the images into a temporary sibling
 *    and renames it into place with its manifest last: the directory either
 *    is a complete snapshot or does not exist. Without LEAVE_RUNNING the
 *    tree is killed once everything is written (criu dump's default).
 *    The caller becomes the tree's ptrace tracer for the duration of the
 *    call, so it must not be traced itself nor trace the target; the call
 *    waits for the target with SIGCHLD-driven waits, so the caller must not
 *    set SIGCHLD to SIG_IGN. When the caller is also the root's parent, a
 *    dump without LEAVE_RUNNING reaps the killed root itself: its wait
 *    status is not left for the caller.
 *
 *    forkpoint_restore creates the processes again with their pids (in a
 *    new pid namespace if those are taken and EXACT_PIDS is not set). The
 *    restored root is a child of the caller: wait for it with
 *    forkpoint_wait (or waitpid), or leave it, and init or the nearest
 *    subreaper adopts it when the caller exits. forkpoint_verify proves a
 *    directory against its manifest without creating anything.
 *
 * 2. Sessions: a program started under a forkpoint helper, which is its
 *    parent, owns its state on disk ($FORKPOINT_HOME/sessions/NAME) and
 *    serves snapshot, restore and exec requests over a unix socket.
 *
 *        forkpoint_session *s;
 *        forkpoint_session_create(NULL, NULL, FORKPOINT_SESSION_SHELL, NULL, &s, &e);
 *        forkpoint_exec_result r;
 *        forkpoint_session_exec(s, "x=41; echo $((x+1))", 0, &r, &e); // r.stdout_data: "42\n"
 *        forkpoint_exec_result_release(&r);
 *        forkpoint_session_snap(s, "a", NULL, &e);
 *        forkpoint_session_exec(s, "x=0", 0, &r, &e); ...
 *        forkpoint_session_restore(s, "a", NULL, &e);  // x is 41 again
 *        forkpoint_session_cleanup(s, &e);   // ends it, deletes its snapshots
 *        forkpoint_session_close(s);         // frees the handle
 *
 *    Lifecycle of a handle: create (starts a new session) or open (attaches
 *    to one by name) -> any number of exec/snap/restore/rm/snapshots/branch
 *    -> optionally stop (ends the program, keeps the snapshots) or cleanup
 *    (ends it and removes everything it kept) -> close, always, exactly
 *    once. A handle is a name plus what was read about the session; the
 *    session itself lives in its helper process, not in the caller: closing
 *    the handle, or the caller exiting, leaves it running, and another
 *    process (the `forkpoint` command too) may drive it meanwhile.
 *    forkpoint_session_create forks: the helper is started from a child of
 *    the caller, which exits once the session runs, so the helper is never
 *    the caller's child (no zombie to reap) and starts with default signal
 *    dispositions, whatever the caller (an interpreter) set.
 *    Requests to one session are served one at a time by its helper; a
 *    handle may be used from one thread at a time, different handles from
 *    different threads.
 *
 * 3. Every option, and results that grow (version 0.2): the calls named
 *    *_with take option handles or more arguments and give their results
 *    as a forkpoint_info, named values that a later version may add to:
 *
 *        forkpoint_dump_options *o;                    // new: pid and dir
 *        forkpoint_dump_options_new(pid, "/tmp/img", &o, &e);
 *        forkpoint_dump_options_set(o, FORKPOINT_DUMP_OPT_FLAGS, FORKPOINT_DUMP_LEAVE_RUNNING, &e);
 *        forkpoint_dump_options_set(o, FORKPOINT_DUMP_OPT_ZSTD_LEVEL, 3, &e);  // checked here
 *        forkpoint_info *st;
 *        if (forkpoint_dump_with(o, &st, &e) == 0)     // as often as wanted
 *                printf("pause %.1f ms\n", forkpoint_info_double(st, "pause_ms"));
 *        forkpoint_info_free(st);                      // NULL is fine
 *        forkpoint_dump_options_free(o);               // always, once
 *
 * 4. The rest of the command (version 0.3): its settings and where each
 *    came from (forkpoint_config), the CRIU it would use and why others
 *    were refused (forkpoint_doctor), a session in an image built from a
 *    Dockerfile (forkpoint_build), and job control for a job that a
 *    detached restore brought back stopped on a terminal:
 *
 *        forkpoint_info *c;
 *        if (forkpoint_config("home", &c, &e) == 0)    // value, set, source, ...
 *                printf("home from %s\n", forkpoint_info_get(c, "source"));
 *        forkpoint_info_free(c);
 *
 *    The job's lifecycle: the process that restores it with
 *    FORKPOINT_RESTORE_DETACHED | FORKPOINT_RESTORE_STOP_FOREGROUND_JOB,
 *    and sees job_stopped 1, calls forkpoint_job_keep: it stays the job's
 *    parent (so that the kernel does not hang up its orphaned group) and
 *    returns when the job has ended. Meanwhile a process in the
 *    terminal's foreground (the shell's command) calls
 *    forkpoint_job_foreground(pid) as often as the job is stopped: it
 *    continues the job with the terminal and returns when it ends (with
 *    its exit code, learnt from the keeper) or stops again.
 *
 *    The `forkpoint` command is written on these calls only: whatever it
 *    does, a program can do through this header.
 *
 * Conventions:
 *   - Every call that can fail returns 0 (or a count) on success and -1 on
 *     failure, and then fills the caller's forkpoint_error (if not NULL):
 *     code says what kind of failure (the `forkpoint` command exits with the
 *     same number), errnum the errno of the root cause if there is one, and
 *     message a sentence naming the cause and, where there is one, the fix.
 *   - No global state: the library keeps nothing between calls but what the
 *     handles hold; where sessions live is read from $FORKPOINT_HOME (else
 *     /var/lib/forkpoint for root, ~/.local/state/forkpoint otherwise) at
 *     each call, as the command does. Nothing is printed, nothing exits.
 *   - Strings the library returns inside result structs are owned by the
 *     struct and freed by its release function.
 *   - The library never leaves a target stopped or killed by accident: a
 *     failed dump resumes it untouched, a failed session restore puts the
 *     session back as it was. */
#ifndef FORKPOINT_H
#define FORKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FORKPOINT_VERSION "0.3.0"

/* forkpoint_error.code: the kind of failure. */
enum forkpoint_code {
	FORKPOINT_OK = 0,
	FORKPOINT_EFAIL = 1,        /* failed (the message says why) */
	FORKPOINT_EINVAL = 2,       /* a bad argument */
	FORKPOINT_ENOTFOUND = 3,    /* no such process, session or snapshot */
	FORKPOINT_EUNSUPPORTED = 4, /* a kernel, program or image feature that cannot be handled */
	FORKPOINT_ETIMEOUT = 5,     /* a deadline expired */
	FORKPOINT_EPERM = 6,        /* not allowed (ptrace, root only, file permissions) */
	FORKPOINT_EUNAVAILABLE = 7, /* not available in this build of the library */
};

typedef struct forkpoint_error {
	int code;          /* enum forkpoint_code */
	int errnum;        /* errno of the root cause, 0 if none */
	char message[1536];
} forkpoint_error;

/* The library's version ("0.3.0"); its soname is libforkpoint.so.0. Calls
 * under "Version 0.2" below are new in 0.2.0 (symbol version FORKPOINT_0.2),
 * those under "Version 0.3" new in 0.3.0 (FORKPOINT_0.3). */
const char *forkpoint_version(void);

/* ---- Images ---------------------------------------------------------- */

enum {
	FORKPOINT_DUMP_LEAVE_RUNNING = 1 << 0, /* the tree runs on (default: killed after the dump) */
	FORKPOINT_DUMP_NO_COMPRESS = 1 << 1,   /* pages-N.img as plain CRIU writes (default: zstd store) */
	FORKPOINT_DUMP_FSYNC = 1 << 2,         /* durable against power loss before it returns */
	FORKPOINT_DUMP_TCP_ESTABLISHED = 1 << 3, /* save established TCP connections (TCP repair
						    mode, `criu dump --tcp-established`); default: refused */
	FORKPOINT_DUMP_EXT_UNIX_SK = 1 << 4, /* a unix datagram socket connected to a named socket
						outside the tree is saved, to connect to it again
						(`criu dump --ext-unix-sk`); default: refused */
};

/* Dumps the process tree rooted at pid into dir (which must not exist or be
 * empty). */
int forkpoint_dump(pid_t pid, const char *dir, unsigned flags, forkpoint_error *err);

enum {
	FORKPOINT_RESTORE_EXACT_PIDS = 1 << 0, /* a pid in use is an error (default: new pid namespace) */
	FORKPOINT_RESTORE_NATIVE = 1 << 1,     /* only forkpoint's own restorer, never CRIU */
	FORKPOINT_RESTORE_CRIU = 1 << 2,       /* only `criu restore` */
};

/* Restores the tree in dir; *pid gets its root (a child of the caller) as
 * the caller sees it (in a new pid namespace: that namespace's init, whose
 * end is the root's). Images are verified against their manifest first.
 * flags: any FORKPOINT_RESTORE_* (forkpoint_restore_with's too). */
int forkpoint_restore(const char *dir, unsigned flags, pid_t *pid, forkpoint_error *err);

/* Waits for a restored root to end: *status is its exit code, or 128+N
 * when signal N ended it. timeout_ms < 0 waits for ever. */
int forkpoint_wait(pid_t pid, int timeout_ms, int *status, forkpoint_error *err);

/* 0 if dir is a complete, intact image (every file against the manifest). */
int forkpoint_verify(const char *dir, forkpoint_error *err);

/* ---- Sessions -------------------------------------------------------- */

typedef struct forkpoint_session forkpoint_session; /* opaque */

enum {
	FORKPOINT_SESSION_SHELL = 1 << 0,   /* the program is a bash fed by forkpoint_session_exec (argv NULL) */
	FORKPOINT_SESSION_NO_SHIM = 1 << 1, /* no LD_PRELOAD shim: /proc only */
};

/* Starts a session: argv (argv[0] searched in PATH; NULL-terminated) or,
 * with FORKPOINT_SESSION_SHELL, bash. name NULL: one is made up. workdir
 * non-NULL: the program sees an overlay view of that directory, which
 * itself is never written; snapshots capture its files (root only). The
 * program's output goes to the session's output.log. */
int forkpoint_session_create(const char *name, const char *workdir, unsigned flags, char *const argv[],
			     forkpoint_session **out, forkpoint_error *err);

/* Attaches to a running session by name. */
int forkpoint_session_open(const char *name, forkpoint_session **out, forkpoint_error *err);

/* Frees the handle; the session runs on. NULL is fine. */
void forkpoint_session_close(forkpoint_session *s);

const char *forkpoint_session_name(const forkpoint_session *s);
/* The program's pid (after a restore, the restored one's). */
pid_t forkpoint_session_pid(const forkpoint_session *s);

typedef struct forkpoint_exec_result {
	int exit_code;          /* 128+N when signal N ended it; 124 on timeout */
	int timed_out;
	int interrupted;
	long long duration_ms;
	char *stdout_data;      /* NUL-terminated; stdout_len bytes (may contain NULs) */
	size_t stdout_len;
	char *stderr_data;
	size_t stderr_len;
	char note[512];         /* something the helper wants said, "" if nothing */
} forkpoint_exec_result;

/* Runs a shell command line in the session (in its bash for a shell
 * session, so cd and variables stay; otherwise `sh -c` in the session's
 * workspace view) and collects its output. timeout_ms 0: no limit; at the
 * limit the command (not the shell) is ended and exit_code is 124. A
 * command that fails is not an error: see exit_code. One command runs at a
 * time in a session; others wait for it. */
int forkpoint_session_exec(forkpoint_session *s, const char *command, int timeout_ms,
			   forkpoint_exec_result *res, forkpoint_error *err);
/* Frees the output buffers (not res itself). */
void forkpoint_exec_result_release(forkpoint_exec_result *res);

/* The general form: streams instead of collecting. */
typedef void (*forkpoint_output_fn)(void *arg, int stream, const char *data, size_t len);
typedef struct forkpoint_exec_options {
	const char *command;    /* a shell command line, or NULL and: */
	char *const *argv;      /* a program and its arguments, run without a shell */
	int timeout_ms;         /* 0: no limit */
	int stdin_fd;           /* copied to the command's stdin; -1: it reads end-of-file */
	/* >= 0: watched; when readable, the library reads it (a signalfd, an
	 * eventfd, a pipe) and interrupts the command as ^C would */
	int interrupt_fd;
	/* called as the command writes to stdout (stream 1) or stderr (2);
	 * NULL: collected into the result as by forkpoint_session_exec */
	forkpoint_output_fn output;
	void *output_arg;
} forkpoint_exec_options;
/* Sets *o to the defaults (no stdin, no interrupt fd, collect output). */
void forkpoint_exec_options_init(forkpoint_exec_options *o);
int forkpoint_session_exec_with(forkpoint_session *s, const forkpoint_exec_options *o,
				forkpoint_exec_result *res, forkpoint_error *err);

typedef struct forkpoint_snap_result {
	char name[65];
	char dir[4096];
	int processes, threads;
	double pause_ms, total_ms;
	uint64_t pages, bytes_written;
	int incremental;        /* pages not written since the last snapshot stay there */
	uint64_t pages_parent;
	char why_full[256];     /* why it is not incremental, "" if it is */
} forkpoint_snap_result;

/* Snapshots the session while it runs. name NULL: "snap-N". res may be NULL. */
int forkpoint_session_snap(forkpoint_session *s, const char *name, forkpoint_snap_result *res,
			   forkpoint_error *err);

typedef struct forkpoint_restore_result {
	pid_t pid;
	char engine[16];         /* "native" or "criu" */
	char fallback[512];      /* why CRIU restored it, "" if native */
	double save_ms, restore_ms, total_ms;
} forkpoint_restore_result;

/* Sends the session back to a snapshot: its processes are replaced by the
 * snapshot's (same pids), its workspace files too. If that fails half way
 * the session comes back as it was. res may be NULL. */
int forkpoint_session_restore(forkpoint_session *s, const char *snap, forkpoint_restore_result *res,
			      forkpoint_error *err);

/* Starts n branches of snapshot snap (all or none): each a new session of
 * its own (a handle in out[0..n-1], to be closed), running from the
 * snapshot in its own pid and mount namespaces, while s runs on (root
 * only). forkpoint_session_branch_with names them and says what each
 * took. */
int forkpoint_session_branch(forkpoint_session *s, const char *snap, int n, forkpoint_session **out,
			     forkpoint_error *err);

typedef struct forkpoint_snapshot {
	char name[65];
	long long created;       /* unix seconds */
	double pause_ms;
	uint64_t pages, disk_bytes;
	int damaged;             /* fails its manifest check: never restored */
	char damage[512];
} forkpoint_snapshot;

/* The session's snapshots, oldest first: *out (free with
 * forkpoint_snapshots_free) holds the returned count. */
int forkpoint_session_snapshots(forkpoint_session *s, forkpoint_snapshot **out, forkpoint_error *err);
void forkpoint_snapshots_free(forkpoint_snapshot *list);

/* One session as forkpoint_sessions lists it. */
typedef struct forkpoint_session_info {
	char name[65];
	char state[16];          /* starting, running, exited, dead (helper gone) */
	pid_t helper_pid, target_pid;
	long long started;       /* unix seconds */
	int detached, shim, shell;
	char command[1024];      /* argv joined by spaces, for display */
	char cwd[4096];          /* the target's, at its start */
	char workdir[4096];      /* run --workdir DIR, "" if none */
} forkpoint_session_info;

/* Sessions of the caller's FORKPOINT_HOME, sorted by name: those with a
 * live helper, or every session directory with FORKPOINT_SESSIONS_ALL.
 * Returns the count, *out (free with forkpoint_sessions_free) holding them;
 * open one with forkpoint_session_open(info.name). */
enum { FORKPOINT_SESSIONS_ALL = 1 };
int forkpoint_sessions(unsigned flags, forkpoint_session_info **out, forkpoint_error *err);
void forkpoint_sessions_free(forkpoint_session_info *list);

/* Deletes one snapshot (and workspace layers nothing else uses). */
int forkpoint_session_rm(forkpoint_session *s, const char *snap, forkpoint_error *err);

/* Ends the session's program and everything it started (SIGTERM, SIGKILL
 * after 5 s or at once with kill set); returns once the helper is gone.
 * Its snapshots stay. Stopping an ended session is not an error. */
int forkpoint_session_stop(forkpoint_session *s, int kill, forkpoint_error *err);

/* Stops the session (with kill) and removes its directory: snapshots,
 * workspace layers, log. The handle must still be closed. */
int forkpoint_session_cleanup(forkpoint_session *s, forkpoint_error *err);

/* ---- Version 0.2: results that grow, options, the whole command ------ */

/* forkpoint_info: what a call found or did, as named values (and, for
 * calls about several things, a list of such records). A result that gains
 * a value later keeps every program built before working: no struct
 * changes size. Keys are documented at each call; a key that is absent
 * reads as "" (forkpoint_info_get) or 0.
 *
 *        forkpoint_info *r;
 *        if (forkpoint_session_snap_with(s, "a", 0, 0, &r, &e) == 0) {
 *                printf("%s paused %.1f ms\n", forkpoint_info_get(r, "name"),
 *                       forkpoint_info_double(r, "pause_ms"));
 *                forkpoint_info_free(r);
 *        }
 *
 * Lifecycle: the call that fills it allocates it (*out is NULL after a
 * failure unless the call says otherwise) -> any number of reads -> free,
 * exactly once. The strings returned point into it and live as long. */
typedef struct forkpoint_info forkpoint_info; /* opaque */

const char *forkpoint_info_get(const forkpoint_info *r, const char *key); /* "" if absent */
long long forkpoint_info_int(const forkpoint_info *r, const char *key);
double forkpoint_info_double(const forkpoint_info *r, const char *key);
/* Every key and value in the order they were set, i in 0..size-1. */
size_t forkpoint_info_size(const forkpoint_info *r);
const char *forkpoint_info_key(const forkpoint_info *r, size_t i);
const char *forkpoint_info_value(const forkpoint_info *r, size_t i);
/* Records of a list (branches, sessions collected, changes), in order. */
size_t forkpoint_info_items(const forkpoint_info *r);
const forkpoint_info *forkpoint_info_item(const forkpoint_info *r, size_t i);
/* 1 if key was set (a key absent and a key set to "" read alike). */
int forkpoint_info_has(const forkpoint_info *r, const char *key);
/* NULL is fine. */
void forkpoint_info_free(forkpoint_info *r);

/* Reads $FORKPOINT_HOME/config (and the environment's FORKPOINT_*
 * settings): an error names a setting that is wrong, so that none is ever
 * ignored in silence. The command checks it before every subcommand. */
int forkpoint_config_check(forkpoint_error *err);

/* A process that starts programs for its user (the command does) may have
 * been started with blocked or ignored signals, closed stdio or stray fds:
 * the known causes of CRIU hanging. forkpoint_sanitize_self records that
 * state, then unblocks every signal, sets every disposition to SIG_DFL and
 * opens fds 0-2 on /dev/null where closed. *saved (free with
 * forkpoint_signals_free) gives a program started by forkpoint_run the
 * user's original signal state back. Call it early, single-threaded. */
typedef struct forkpoint_signals forkpoint_signals; /* opaque */
int forkpoint_sanitize_self(forkpoint_signals **saved, forkpoint_error *err);
void forkpoint_signals_free(forkpoint_signals *saved);

/* -- Images with every option: dump, restore, decompress ---------------- */

/* Lifecycle: new (pid and directory) -> set any options -> dump_with, as
 * often as wanted -> free. Each set checks its value and fails with
 * FORKPOINT_EINVAL naming the allowed range. */
typedef struct forkpoint_dump_options forkpoint_dump_options; /* opaque */
enum forkpoint_dump_option {
	FORKPOINT_DUMP_OPT_FLAGS = 1,    /* FORKPOINT_DUMP_* bits (int) */
	FORKPOINT_DUMP_OPT_ZSTD_LEVEL,   /* -7..-1, 1..19 (int; default -1) */
	FORKPOINT_DUMP_OPT_THREADS,      /* compression threads 1..16 (int; default one per CPU, at most 4) */
	FORKPOINT_DUMP_OPT_PAGES,        /* how pages are taken, FORKPOINT_PAGES_* (int) */
	FORKPOINT_DUMP_OPT_GHOST_LIMIT,  /* bytes of a deleted file the image may carry (int) */
	FORKPOINT_DUMP_OPT_TIMEOUT_MS,   /* each thread's deadline to stop (int; default 2000) */
	FORKPOINT_DUMP_OPT_VERBOSE,      /* 1: every VMA and fd in the log (int) */
	FORKPOINT_DUMP_OPT_LOG,          /* the log's path (string; default DIR/dump.log) */
};
enum {
	FORKPOINT_PAGES_AUTO = 0, /* precopy from 64 MiB of anonymous memory on, else fork */
	FORKPOINT_PAGES_PRECOPY,  /* copied while it runs, under userfaultfd write tracking */
	FORKPOINT_PAGES_FORK,     /* read from a frozen copy-on-write clone */
	FORKPOINT_PAGES_COPY,     /* copied while it is stopped */
};
int forkpoint_dump_options_new(pid_t pid, const char *dir, forkpoint_dump_options **out, forkpoint_error *err);
int forkpoint_dump_options_set(forkpoint_dump_options *o, int option, long long value, forkpoint_error *err);
int forkpoint_dump_options_set_str(forkpoint_dump_options *o, int option, const char *value, forkpoint_error *err);
void forkpoint_dump_options_free(forkpoint_dump_options *o);
/* forkpoint_dump with options. *stats (may be NULL) gets: processes,
 * threads, pages, bytes_pages, bytes_written, pause_ms, total_ms, method
 * (how the pages were taken), and reaped, reaped_names (temporary
 * directories of dumps that died, removed on the way). *stats is filled
 * after a failure too (reaped is worth saying either way). */
int forkpoint_dump_with(const forkpoint_dump_options *o, forkpoint_info **stats, forkpoint_error *err);

/* Lifecycle as forkpoint_dump_options. */
typedef struct forkpoint_restore_options forkpoint_restore_options; /* opaque */
enum forkpoint_restore_option {
	FORKPOINT_RESTORE_OPT_FLAGS = 1, /* FORKPOINT_RESTORE_* bits (int) */
	FORKPOINT_RESTORE_OPT_VERBOSITY, /* of the log, 0..4 (int; default 4) */
	FORKPOINT_RESTORE_OPT_TIMEOUT_MS,/* of the restore itself (int; default 60000) */
	FORKPOINT_RESTORE_OPT_LOG,       /* the log's path (string) */
	FORKPOINT_RESTORE_OPT_CRIU_FLAG, /* a flag passed on to `criu restore` (string; once per flag) */
};
enum {
	FORKPOINT_RESTORE_NO_VERIFY = 1 << 3, /* skip the manifest check: the caller's own risk */
	/* The root is not made the caller's child (it is adopted by init or
	 * the nearest subreaper) and the terminal's foreground stays here. */
	FORKPOINT_RESTORE_DETACHED = 1 << 4,
	/* With DETACHED, on a terminal: a job that had the terminal's
	 * foreground comes back stopped, as after ^Z (native engine only). */
	FORKPOINT_RESTORE_STOP_FOREGROUND_JOB = 1 << 5,
	/* Without DETACHED: the terminal's foreground process group goes
	 * back to the restored job if it had it when dumped (as for a
	 * program the caller's user started from this terminal). */
	FORKPOINT_RESTORE_FOREGROUND = 1 << 6,
};
int forkpoint_restore_options_new(const char *dir, forkpoint_restore_options **out, forkpoint_error *err);
int forkpoint_restore_options_set(forkpoint_restore_options *o, int option, long long value, forkpoint_error *err);
int forkpoint_restore_options_set_str(forkpoint_restore_options *o, int option, const char *value,
				      forkpoint_error *err);
void forkpoint_restore_options_free(forkpoint_restore_options *o);
/* forkpoint_restore with options. *res gets: pid (the root as the caller
 * sees it), wait_pid (what forkpoint_wait takes: the root, or the init of
 * its new pid namespace), ns_init and ns_pid (0 without a new namespace),
 * engine, fallback (why CRIU restored it, "" if native), verify_note
 * (why it is unverified, "" if verified), job_stopped (1: waiting as after
 * ^Z for `forkpoint fg`). */
int forkpoint_restore_with(const forkpoint_restore_options *o, forkpoint_info **res, forkpoint_error *err);

enum {
	FORKPOINT_DECOMPRESS_KEEP = 1 << 0,   /* keep the zstd page stores as well */
	FORKPOINT_DECOMPRESS_VERIFY = 1 << 1, /* verify every file against the manifest first */
};
/* Expands dir's zstd page stores into plain pages-N.img, so that plain
 * `criu restore -D dir` restores it. */
int forkpoint_decompress(const char *dir, unsigned flags, forkpoint_error *err);

/* -- Sessions with every option ----------------------------------------- */

/* (enums, not macros: bindings that read this header see them too) */
enum { FORKPOINT_HOT_DEFAULT_LIMIT = 2, FORKPOINT_HOT_MAX = 8, FORKPOINT_BRANCH_MAX = 64 };

enum {
	FORKPOINT_RUN_DETACH = 1 << 2, /* return once the program runs (as create does) */
};
/* Starts a session from the calling process, as `forkpoint run` does:
 * flags FORKPOINT_SESSION_SHELL, _NO_SHIM, FORKPOINT_RUN_DETACH. Without
 * DETACH (and SHELL) the program keeps the caller's stdio and the call
 * returns when it has ended. sigs (may be NULL): the signal state the
 * program gets (forkpoint_sanitize_self). Unlike forkpoint_session_create
 * the helper is forked from the caller itself: call it from a
 * single-threaded process. *res gets: name, workdir (resolved, "" if
 * none), pid, wait_status (foreground: the program's wait status, as
 * waitpid gives it), notice (something the user should know, "" if
 * nothing). After a failure *res (when res is not NULL) is set too, with
 * exit_code: what a shell would exit with (127: the command is not found,
 * err's code FORKPOINT_ENOTFOUND; 126: not executable, FORKPOINT_EPERM). */
int forkpoint_run(const char *name, const char *workdir, unsigned flags, char *const argv[],
		  const forkpoint_signals *sigs, forkpoint_info **res, forkpoint_error *err);

/* forkpoint_session_snap, with a frozen copy kept in memory when
 * hot_limit > 0 (so that branches fork it instead of restoring from disk;
 * at most hot_limit of them in the session, 1..FORKPOINT_HOT_MAX, the
 * oldest released first); flags: FORKPOINT_SNAP_*. *res gets: name, dir, processes, threads,
 * pause_ms, total_ms, pages, bytes_written, incremental (1, else why says
 * why not), pages_parent, shim_checked, shim_disagree, shim_note, hot
 * (1: a frozen copy is kept, else hot_why), phases ("name ms name ms ..."). */
enum {
	FORKPOINT_SNAP_TCP_ESTABLISHED = 1 << 0, /* save established TCP connections (TCP repair mode, root;
						    as `criu dump --tcp-established`) */
	FORKPOINT_SNAP_EARLY_REPLY = 1 << 1,     /* return once the processes run again, before the images
						    are written, when at most 32 MiB of pages are to be
						    written (not with hot_limit): the session's next
						    request waits for them; early_reply=1 in *res then,
						    bytes_written 0. If writing them fails, the snapshot
						    is not made: the session's log and the next snapshot's
						    why say so, and NAME.failed.log keeps its log */
};
int forkpoint_session_snap_with(forkpoint_session *s, const char *name, int hot_limit, unsigned flags,
				forkpoint_info **res, forkpoint_error *err);

enum { FORKPOINT_SNAPSHOTS_VERIFY = 1 << 0 };
/* Session name's snapshots, oldest first, whether it runs or not; with
 * VERIFY every file's hash is checked too (reads every byte), else sizes.
 * One item per snapshot in *res: name, dir, created (unix seconds), pids,
 * compress, pause_ms, total_ms, pages, disk_bytes, damaged (1: it fails
 * its manifest check, damage says how; it is never restored), parent (the
 * incremental parent's name, "" for a full one), hot (1: its processes are
 * kept frozen by the running session's helper, for fast branches). */
int forkpoint_snapshots_with(const char *name, unsigned flags, forkpoint_info **res, forkpoint_error *err);

/* forkpoint_sessions as a list of records (flags: FORKPOINT_SESSIONS_ALL):
 * name, state, pid, helper_pid, started, command, workdir, and branch_of,
 * branch_snap (the session and snapshot a branch was started from, "" for
 * a session that is no branch). */
int forkpoint_sessions_with(unsigned flags, forkpoint_info **res, forkpoint_error *err);

/* forkpoint_session_restore that also brings back a session whose program
 * has ended (or whose helper is gone): a new helper restores the snapshot
 * (revived 1). *res gets: pid, workdir, revived, and for a live session
 * engine, fallback, save_ms, restore_ms, total_ms, in_place (1: the same
 * processes, what changed written back: pages, vma_ops, fd_ops, cpu_ms,
 * verified_bytes; else why, pidns, moved, ns_pid), phases. */
int forkpoint_session_restore_with(forkpoint_session *s, const char *snap, forkpoint_info **res,
				   forkpoint_error *err);

/* forkpoint_session_branch by name, with what each branch took: name NULL
 * gives SESSION-bN, else NAME (NAME-1..NAME-n for n > 1); s may have
 * ended. One item per branch in *res: name, pid, ns_pid, helper_pid, ms,
 * restore_ms, engine, hot, fork_ms, hot_why. Open a branch with
 * forkpoint_session_open(its name). Root only. */
int forkpoint_session_branch_with(forkpoint_session *s, const char *snap, const char *name, int n,
				  forkpoint_info **res, forkpoint_error *err);

enum { FORKPOINT_CLEANUP_FORCE = 1 << 0 };
/* Removes a session by name, also a half-dead one with FORCE (a helper
 * that does not answer killed, processes it left behind killed, mounts
 * detached); without FORCE such leftovers are named and nothing removed.
 * *res (may be NULL) gets: killed, unmounted, helper_killed. */
int forkpoint_cleanup(const char *name, unsigned flags, forkpoint_info **res, forkpoint_error *err);

/* Frees the workspace layers and parent snapshots nothing uses, of one
 * session (name) or, name NULL, of every session directory. One item per
 * session in *res: session, snaps_removed, snaps_kept, workspace (1 if it
 * has one: layers_removed, layers_kept, workdirs_removed), and error (a
 * message, "" if none) for a session that could not be collected: the
 * others are collected anyway, the call succeeds. */
int forkpoint_gc(const char *name, forkpoint_info **res, forkpoint_error *err);

/* What changed in a session's workspace from snapshot a to snapshot b. One
 * item per path in *res: change (A added, D deleted, M modified), type (f,
 * d, l, ...), path, what ("content,mode,...": type, content, mode, owner,
 * xattr, mtime; for M). */
int forkpoint_session_diff(const char *name, const char *a, const char *b, forkpoint_info **res,
			   forkpoint_error *err);

enum { FORKPOINT_INSPECT_NO_STACKS = 1 << 0 };
/* A process (what: a pid) or a session's program (what: its name) as seen
 * from outside, read without harming it: its threads' stacks through a
 * short ptrace stop (not with NO_STACKS, nor for a zombie), its mappings,
 * fds and memory sizes from /proc, and, under the shim, the shim's table
 * checked against /proc. *res gets: pid, session, note (e.g. a zombie),
 * comm, exe, static, state, ppid, threads, tracer_pid, vm_size_kb,
 * vm_rss_kb, rss_anon, rss_file, rss_shmem, vm_swap (as /proc says them),
 * stacks_note, shim_state (1 under the shim, 0 not, -1 unreadable),
 * shim_note, and under the shim shim_path, shim_addr, shim_calls,
 * shim_resyncs, shim_fd_hwm, shim_map_count, shim_thread_count,
 * shim_*_overflow, report_ok, report_fds, report_maps, report_threads,
 * report_shim_fds, report_shim_maps. Its items, each with a kind: thread
 * (tid, comm, state, stack_error; items: frames with ip, symbol, offset,
 * module, module_offset), map (start, end, prot, offset, map_kind, path,
 * deleted), fd (fd, target, flags, pos), shim_fd, shim_map, shim_thread,
 * disagreement (what, message). Numbers are decimal. A thread's id (not a
 * process's) fails with FORKPOINT_EINVAL, a kernel thread with
 * FORKPOINT_EUNSUPPORTED. */
int forkpoint_inspect(const char *what, unsigned flags, forkpoint_info **res, forkpoint_error *err);

/* ---- Version 0.3: settings, CRIU, images from Dockerfiles, jobs ------- */

/* The settings (read as every call reads them: the environment's
 * FORKPOINT_<KEY>, then $FORKPOINT_CONFIG, the user's and the system's
 * config file, then the default), after forkpoint_config_check's checks
 * (its errors fail this call too). key non-NULL: that setting alone, in
 * *res; an unknown key fails with FORKPOINT_EINVAL naming the known ones.
 * key NULL: *res gets files (the config files read, in order, one per
 * line) and one item per setting. A setting has: key, value ("" when the
 * default applies), set (1 if a value was found), source (the variable,
 * "FILE:LINE", or "default"), env (its environment variable), default
 * (the default, in words), meaning. */
int forkpoint_config(const char *key, forkpoint_info **res, forkpoint_error *err);

enum {
	FORKPOINT_DOCTOR_CACHED = 1 << 0,  /* trust verdicts found earlier since this boot (else each
					      candidate is tested again, up to a minute each) */
	FORKPOINT_DOCTOR_FIRST = 1 << 1,   /* stop at the first usable candidate */
	FORKPOINT_DOCTOR_REQUIRE = 1 << 2, /* no usable CRIU fails (FORKPOINT_EUNSUPPORTED), the message
					      naming every refusal and how to get a CRIU that works */
};
/* The CRIU forkpoint uses (for restores its own engine cannot do, and as
 * the benchmarks' baseline) and why each other candidate was refused.
 * Candidates, in order: the criu setting ($FORKPOINT_CRIU; when set, the
 * only one), the prefix that `make setup` provisions (criu_prefix), then
 * `criu` on PATH. One must be 4.x, pass `criu check`, and dump and restore
 * a test process under a deadline (criu_probe_timeout). *res gets: criu
 * (the path in use, "" if none is usable: forkpoint's own dump and
 * restore still work), criu_version, setup_report and setup_report_text
 * (what `make setup` found, if it left a report), and one item per
 * candidate: path, source, exists, usable, in_use, version, why (why it
 * was refused), cached (1: the verdict came from an earlier test). Not
 * an error when none is usable, unless with REQUIRE. */
int forkpoint_doctor(unsigned flags, forkpoint_info **res, forkpoint_error *err);

/* Builds context's Dockerfile (dockerfile NULL: context/Dockerfile) with
 * buildah (storage driver vfs) and starts a shell session inside the
 * image, as forkpoint_run with FORKPOINT_SESSION_SHELL | RUN_DETACH does:
 * its own mount namespace and root (the image, with /proc, /dev and
 * /tmp), the image's ENV, and its WORKDIR (/workspace when it sets none)
 * as the session's workspace and working directory. Snapshots capture the
 * workspace with the memory; forkpoint_cleanup removes the container.
 * name NULL: one is made up; sigs as forkpoint_run's. Root only (EPERM
 * otherwise); forks the helper from the caller, as forkpoint_run does.
 * *res gets: name, pid, image, container, root (the container's root
 * directory), workdir (inside the image), warning (the container could
 * not be recorded for cleanup: how to free it by hand; "" if nothing). */
int forkpoint_build(const char *context, const char *dockerfile, const char *name, const forkpoint_signals *sigs,
		    forkpoint_info **res, forkpoint_error *err);

/* The caller becomes the keeper of its children (the jobs a detached
 * restore left stopped on its terminal; lifecycle in 4. above): it answers
 * forkpoint_job_foreground's questions about how they ended, reaps them,
 * and returns when none is left. ready_fd >= 0: a byte is written to it,
 * and it is closed, once questions are answered (the caller's parent may
 * exit then). SIGCHLD is blocked in the calling thread meanwhile. */
int forkpoint_job_keep(int ready_fd, forkpoint_error *err);

/* Continues pid's process group in the foreground of the caller's
 * terminal (its stdin) and waits until pid ends or stops again, as a
 * shell's fg does; the terminal comes back to the caller's group either
 * way. The caller must be in pid's terminal session and in its
 * foreground (FORKPOINT_EINVAL otherwise, saying so). *res gets: state
 * ("ended" or "stopped"), status_known (1 when pid's parent was a
 * forkpoint_job_keep keeper that knew its end), exit_code (when known:
 * its exit code, 128+N when signal N ended it). */
int forkpoint_job_foreground(pid_t pid, forkpoint_info **res, forkpoint_error *err);

#ifdef __cplusplus
}
#endif

#endif
