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
 *     temp directory, synced, a manifest (forkpoint.manifest) is written
 *     last, and the directory is renamed to o->dir. A directory without the
 *     manifest is not a snapshot. o->dir must not exist or be empty.
 *   - The target is only ever held with PTRACE_SEIZE: if the dumper dies the
 *     kernel lets it go. On any error it is detached and runs on untouched.
 *     Without leave_running it is killed (SIGKILL) only after every image is
 *     written and synced.
 *   - With leave_running the pause is short: the target is stopped while its
 *     state is captured and its pages are copied into memory, then resumed;
 *     compression and writing happen afterwards.
 *
 * Compression: FP_DUMP_ZSTD writes pages-<id>.fpz (images/pagestore.h);
 * `forkpoint decompress DIR` (fp_dump_decompress) turns the directory into
 * one plain `criu restore` accepts. FP_DUMP_NONE writes pages-<id>.img. */
#ifndef FP_DUMP_H
#define FP_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

#define FP_MANIFEST_NAME "forkpoint.manifest"
#define FP_DUMP_LOG_NAME "dump.log"

enum fp_dump_compress { FP_DUMP_ZSTD = 0, FP_DUMP_NONE = 1 };

struct fp_dump_opts {
	pid_t pid;                 /* root of the tree to dump */
	const char *dir;           /* snapshot directory to create */
	bool leave_running;        /* default: kill the tree after the dump */
	enum fp_dump_compress compress;
	int zstd_level;            /* 0: 1 */
	const char *log_path;      /* NULL: <dir>/dump.log (a failed dump keeps
				      its log as <dir>.failed.log) */
	int verbose;               /* 0 info, 1 debug (per VMA, per fd) */
	int timeout_ms;            /* per ptrace wait; 0: FP_PT_TIMEOUT_MS */
	bool no_fsync;             /* skip syncfs/fsync (tests, benchmarks) */
};

struct fp_dump_stats {
	int nprocs, nthreads;
	double freeze_ms;          /* seize + stop of every thread */
	double pause_ms;           /* first thread stopped -> last resumed/killed */
	double capture_ms;         /* state + page copy while stopped */
	double write_ms;           /* images + pages written */
	double total_ms;
	uint64_t pages;            /* pages dumped (4 KiB) */
	uint64_t bytes_pages;      /* uncompressed page bytes */
	uint64_t bytes_written;    /* every file of the snapshot */
};

int fp_dump(const struct fp_dump_opts *o, struct fp_dump_stats *st, fp_error *err);

/* Makes a snapshot directory restorable by plain `criu restore`: expands
 * every pages-<id>.fpz into pages-<id>.img (keep_store: keep the .fpz). */
int fp_dump_decompress(const char *dir, bool keep_store, fp_error *err);

/* Checks a snapshot against its manifest (sizes, checksums, page counts).
 * 0 when complete and intact. */
int fp_dump_verify(const char *dir, fp_error *err);

#endif
