/* Where the shim's fd table stood at each snapshot, for a rollback in place
 * (issue 16: the fds created or closed since a snapshot listed from the
 * table, dump_fdmark.c and helper/session/rollback_fdtab.c). */
#ifndef FP_DUMP_FDMARK_H
#define FP_DUMP_FDMARK_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fp_track;

enum fp_fdmark_kind {
	FP_FDM_OTHER = 0, /* pipes, sockets, directories...: no offset read */
	FP_FDM_REG,       /* a regular file: its offset moves without a wrapper */
	FP_FDM_FIXED,     /* /dev/null, zero, full, random, urandom: nothing moves */
};

struct fp_fdmark_fd {
	int32_t fd;
	uint32_t seq;     /* its slot's at the snapshot's stop (even) */
	uint64_t dev, ino; /* the open file's, for the check of a REG at rollback */
	uint8_t kind;     /* enum fp_fdmark_kind */
};

struct fp_fdmark {
	pid_t pid;
	unsigned long long start_time;
	uint64_t addr;    /* the shim's table in the process */
	char snap[PATH_MAX]; /* the snapshot's directory */
	struct fp_fdmark_fd *fd; /* sorted by fd */
	size_t n;
};

/* The mark of snap_dir for pid (the same process: start time), or NULL. */
const struct fp_fdmark *fp_fdmark_find(const struct fp_track *t, pid_t pid, const char *snap_dir);
/* fd's record in m, or NULL (the snapshot did not take it from the table). */
const struct fp_fdmark_fd *fp_fdmark_fd(const struct fp_fdmark *m, int fd);
/* After a rollback in place to snap_dir: the process's line of states now
 * goes through snap_dir, so the marks of snapshots taken after it (on the
 * line that was left) no longer say anything about the table's seqs; they
 * go, and all go if snap_dir has none. */
void fp_fdmark_rolled_back(struct fp_track *t, const char *snap_dir);
void fp_fdmarks_free(struct fp_track *t);

#endif
