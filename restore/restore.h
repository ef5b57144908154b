/* Restoring an image directory (CRIU's format, plus forkpoint's zstd page
 * store) into live processes.
 *
 * Two engines:
 *   native  forkpoint's own restorer: a tiny stub process created with the
 *           image's pid (clone3 set_tid) is driven from outside with ptrace
 *           and injected syscalls until it is the dumped program, then let go.
 *           A tree: each child is forked by its parent's stub with its own
 *           pid, so parents, groups and sessions come back as they were.
 *   criu    `criu restore` on the directory (pages decompressed first into a
 *           private tmpfs copy made of symlinks, so the snapshot is never
 *           modified), under a deadline, with its log's errors reported.
 * The default (FP_RESTORE_AUTO) is native, falling back to CRIU only when the
 * native engine reports that the image holds something it cannot restore
 * (the result says what). Bad images (corrupt, truncated pages, missing or
 * changed files, another architecture or format version) are refused before
 * any process is created, by both engines: first every file is checked
 * against forkpoint.manifest (images/img_verify.h; an image without one is
 * refused unless it is CRIU's own, restored unverified with a note), then
 * the images are decoded and checked against each other.
 *
 * The restored root process is a child of the calling process (with the criu
 * engine the caller becomes a child subreaper so the tree is reparented to
 * it when criu exits). The caller decides whether to wait for it
 * (fp_restore_wait) or leave it (detach: when the caller exits, init or the
 * nearest subreaper adopts it).
 *
 * Errors: fp_error.exit_code is FP_EXIT_UNSUPPORTED for images or features
 * neither engine can restore here, FP_EXIT_FAIL for bad images, FP_EXIT_TIMEOUT
 * when a deadline expired. A failure never leaves a process behind. */
#ifndef FP_RESTORE_H
#define FP_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

enum fp_restore_engine {
	FP_RESTORE_AUTO = 0, /* native, CRIU when native cannot */
	FP_RESTORE_NATIVE,
	FP_RESTORE_CRIU,
};

struct fp_restore_opts {
	const char *dir;                /* image directory (required) */
	enum fp_restore_engine engine;
	/* Every pid and tid exactly as in the image, or an error naming the
	 * pid in use and its owner. When false and a pid is taken, the
	 * process is restored into a new pid namespace (rst_pidns.c), where
	 * it keeps its pids; result.ns_init is then the namespace's init. */
	bool exact_pids;
	const char *log_path;           /* NULL: DIR/restore.log */
	int verbosity;                  /* 0..4 as CRIU's -v; 0 means 4 in the log */
	int timeout_ms;                 /* whole restore; 0: 60 s */
	/* criu engine only: make the caller a child subreaper so the restored
	 * root becomes its child (the native engine always makes it one). */
	bool adopt;
	/* The terminal's foreground process group goes back to the restored
	 * job when it had it at dump time (not for a detached restore from an
	 * interactive shell, which takes its terminal back). */
	bool foreground;
	/* A detached restore on a terminal (-d): a job that had the terminal's
	 * foreground comes back stopped, as after ^Z, before any of its own
	 * code runs. Running in the background it would read the keys of the
	 * shell the restore was typed in, or fail its reads with EIO and exit
	 * (an interactive bash), or take the terminal itself (bash does so
	 * before each prompt). `forkpoint fg PID` continues it in the
	 * foreground. Native engine only. */
	bool stop_foreground_job;
	/* CRIU flags given by the user (--file-locks, ...), passed on to
	 * `criu restore` when the criu engine runs. */
	const char *const *criu_flags;
	size_t ncriu_flags;
	/* Skip the check of the image against its forkpoint.manifest (sizes
	 * and hashes of every file, the page data): the user's own risk. */
	bool no_verify;
};

struct fp_restore_result {
	pid_t pid;                          /* restored root, as this process sees it */
	pid_t ns_init;                      /* new pid namespace: its init, our child; 0 if none */
	pid_t ns_pid;                       /* new pid namespace: the root's pid inside it */
	enum fp_restore_engine engine_used; /* NATIVE or CRIU */
	char fallback_reason[512];          /* why AUTO used CRIU, "" otherwise */
	char log_path[4096];
	double elapsed_ms;
	double verify_ms;                   /* checking the image against its manifest */
	char verify_note[256];              /* why the image was not verified, "" if it was */
	bool job_stopped;                   /* stop_foreground_job stopped a process */
};

int fp_restore(const struct fp_restore_opts *o, struct fp_restore_result *r, fp_error *err);

/* Only the checks made before anything is created (the image against its
 * manifest, decoding, pagemap against VMAs and the page data, files,
 * architecture, format, vDSO, free pids).
 * native_reason (may be NULL, len bytes) gets why the native engine could not
 * restore the image, "" if it can. */
int fp_restore_check(const char *dir, char *native_reason, size_t len, fp_error *err);
/* The same, optionally without the free-pid check: a session validates a
 * snapshot before it stops the processes that hold the image's pids. */
int fp_restore_check_ex(const char *dir, bool check_pids, char *native_reason, size_t len,
			fp_error *err);

/* Restores one process whose memory is in place already: pid, our child,
 * untraced, in pause() with every signal blocked, single-threaded, without fds, a fork of
 * a hot snapshot's frozen copy with the image's pid (session_hot_fork.h);
 * sys_ip a `syscall` in it. Everything else (fds, cwd, threads, signals,
 * timers, credentials, registers) comes from o->dir's images, as in the
 * native engine. On failure pid is killed. */
int fp_restore_adopt(const struct fp_restore_opts *o, pid_t pid, uint64_t sys_ip, struct fp_restore_result *r,
		     fp_error *err);
/* Whether dir's image can be restored that way: its root pid, why[] ""
 * if it can, else why not. */
int fp_restore_adopt_check(const char *dir, char *why, size_t len, fp_error *err);

/* Waits for the restored root (a child of the caller) to end; *status is a
 * shell-style code: the exit code, or 128 + the signal number. timeout_ms < 0
 * waits for ever (it is the user's program). */
int fp_restore_wait(pid_t pid, int timeout_ms, int *status, fp_error *err);

#endif
