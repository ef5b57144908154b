/* Where forkpoint keeps its state and finds its own files. */
#ifndef FP_PATHS_H
#define FP_PATHS_H

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

/* Reads a whole small file (NUL-terminated); returns length or -1. */
long fp_read_file(const char *path, char *buf, size_t len, fp_error *err);

/* Removes a directory tree; missing is fine. */
int fp_rm_rf(const char *path, fp_error *err);

#endif
