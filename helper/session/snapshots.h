/* A session's snapshots: $SESSION/snapshots/NAME/, each a CRIU-format image
 * directory made complete by its forkpoint.manifest (see dump/dump.h).
 * A snapshot is written in a dot-named temporary directory and renamed into
 * place with its manifest, so a listed directory that does not match its
 * manifest (or has none) is damaged: it is listed as such, and never
 * restored. */
#ifndef FP_SNAPSHOTS_H
#define FP_SNAPSHOTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fp_error.h"

#define FP_SNAP_NAME_MAX 64

struct fp_snap_info {
	char name[FP_SNAP_NAME_MAX + 1];
	char dir[PATH_MAX];
	long long created;       /* unix seconds, from the manifest */
	long long created_ns;    /* the manifest's mtime in ns: orders snapshots */
	double pause_ms, total_ms;
	uint64_t pages;          /* pages in the page store(s) */
	uint64_t disk_bytes;     /* bytes of the files in the directory */
	char compress[16];
	char pids[128];
	bool damaged;            /* fails img_verify (see damage) */
	char damage[512];
};

int fp_snap_name_valid(const char *name, fp_error *err);

/* The directory a new snapshot NAME of session_dir goes to. With name NULL
 * the first free "snap-N" is chosen. Fails if NAME exists (complete or not:
 * a leftover is named in the message with how to remove it). */
int fp_snap_new_path(const char *session_dir, const char *name, char *out_name, size_t name_len,
		     char *out_dir, size_t dir_len, fp_error *err);

/* Reads one snapshot's manifest summary. ENOENT if it has no manifest. */
int fp_snap_read(const char *snap_dir, struct fp_snap_info *info, fp_error *err);

/* A session's snapshots, oldest first, each checked: by the manifest, file
 * presence and sizes, or with full_verify every hash too (it reads every
 * byte). Damaged ones are in the list with damaged set. *out is malloc'd. */
int fp_snap_list(const char *session_dir, bool full_verify, struct fp_snap_info **out, size_t *n, fp_error *err);

#endif
