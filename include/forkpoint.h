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

#define FORKPOINT_VERSION "0.1.0"

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

/* The library's version ("0.1.0"); its soname is libforkpoint.so.0. */
const char *forkpoint_version(void);

/* ---- Images ---------------------------------------------------------- */

enum {
	FORKPOINT_DUMP_LEAVE_RUNNING = 1 << 0, /* the tree runs on (default: killed after the dump) */
	FORKPOINT_DUMP_NO_COMPRESS = 1 << 1,   /* pages-N.img as plain CRIU writes (default: zstd store) */
	FORKPOINT_DUMP_FSYNC = 1 << 2,         /* durable against power loss before it returns */
	FORKPOINT_DUMP_TCP_ESTABLISHED = 1 << 3, /* save established TCP connections (TCP repair
						    mode, `criu dump --tcp-established`); default: refused */
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
 * the caller sees it. Images are verified against their manifest first. */
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
 * only). A library built without the session library's branch fails with
 * FORKPOINT_EUNAVAILABLE ("not available in this build"). */
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

#ifdef __cplusplus
}
#endif

#endif
