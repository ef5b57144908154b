/* Where forkpoint keeps its state and finds its own files. */
#ifndef FP_PATHS_H
#define FP_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "fp_error.h"

/* $FORKPOINT_HOME, else /var/lib/forkpoint for root, else
 * $XDG_STATE_HOME/forkpoint or ~/.local/state/forkpoint. Created 0700 when
 * `create` is set. */
int fp_home(char *buf, size_t len, int create, fp_error *err);

/* mkdir -p with mode for every created component. */
int fp_mkdir_p(const char *path, unsigned mode, fp_error *err);

/* Directory holding the running forkpoint executable. */
int fp_exe_dir(char *buf, size_t len, fp_error *err);

/* The shim: $FORKPOINT_SHIM, else <exe>/../lib/forkpoint/ or <exe>/../lib/. */
int fp_shim_path(char *buf, size_t len, fp_error *err);

/* Writes data to path atomically (temp file + fsync + rename), mode 0600. */
int fp_write_file_atomic(const char *path, const void *data, size_t len, fp_error *err);
/* The same without the fsync: readers see the old or the new file whole,
 * but a power loss may leave the old one. For records of running
 * processes, which a power loss ends anyway (an fsync costs tens of ms on
 * a busy disk, on every restore of a session). */
int fp_write_file_replace(const char *path, const void *data, size_t len, fp_error *err);

/* Reads a whole small file (NUL-terminated); returns length or -1. */
long fp_read_file(const char *path, char *buf, size_t len, fp_error *err);

/* Opens path for writing (created 0600, truncated) without following a
 * symbolic link someone else planted there: a link is refused, except, when
 * user_named (a path the user gave, such as -o LOG), one the caller owns.
 * Only regular files and character devices (/dev/null) are written. */
int fp_open_write(const char *path, bool user_named, fp_error *err);

/* A directory forkpoint keeps state in must be the caller's and writable by
 * no one else, or anyone could plant links in it. Refuses it otherwise (what
 * names it in the message); a symlink to it is accepted only for
 * $FORKPOINT_HOME itself (follow_link) and only if the caller or root owns
 * the link. Read and search bits for others are dropped (chmod 0700). */
int fp_check_private_dir(const char *path, const char *what, bool follow_link, fp_error *err);

/* Removes a directory tree; missing is fine. */
int fp_rm_rf(const char *path, fp_error *err);

#endif
