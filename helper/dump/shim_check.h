/* Comparing a copy of the shim's table with what /proc says about the same
 * process, to find where the shim's view and the kernel's disagree.
 *
 * The comparison is meaningful when the target is quiescent (stopped, or
 * blocked in a call the shim does not wrap): on a running target the table
 * and /proc are read at different instants.
 *
 * What is compared:
 *  - fds: open in /proc but not in the table and the reverse; identity
 *    (dev/ino of the open file where the table has it, else the last
 *    component of the name the program used against the fd's link),
 *    close-on-exec, access mode and the O_APPEND/O_NONBLOCK status flags,
 *    type (where the table has it);
 *  - mappings: after merging adjacent compatible entries on both sides (the
 *    kernel merges VMAs, the table keeps what the program asked for), ranges
 *    in /proc not covered by the table and the reverse, then prot, sharing,
 *    file identity (or name, as for fds) and offset where both have the range;
 *  - threads: in /proc but not in the table (zombies ignored) and the reverse;
 *  - the table's pid (a copy inherited by a child that did not go through
 *    fork's fix-up).
 * The shim's own fds and mappings are listed, never reported. */
#ifndef FP_SHIM_CHECK_H
#define FP_SHIM_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"
#include "preload/shim_table.h"

enum fp_shim_dis_kind {
	FP_DIS_TABLE_PID = 0,     /* the table belongs to another process */
	FP_DIS_FD_MISSING,        /* open in /proc, not in the table */
	FP_DIS_FD_STALE,          /* in the table, not open */
	FP_DIS_FD_IDENTITY,       /* another file (dev/ino) */
	FP_DIS_FD_CLOEXEC,
	FP_DIS_FD_FLAGS,          /* access mode, O_APPEND or O_NONBLOCK */
	FP_DIS_FD_TYPE,
	FP_DIS_MAP_MISSING,       /* mapped in /proc, not covered by the table */
	FP_DIS_MAP_STALE,         /* in the table, not mapped */
	FP_DIS_MAP_PROT,
	FP_DIS_MAP_SHARING,       /* private in one, shared in the other */
	FP_DIS_MAP_FILE,          /* anonymous vs file, or another file */
	FP_DIS_MAP_OFFSET,
	FP_DIS_THREAD_MISSING,    /* a live thread in /proc, not in the table */
	FP_DIS_THREAD_STALE,      /* in the table, not in /proc */
};

struct fp_shim_dis {
	enum fp_shim_dis_kind kind;
	int fd;                   /* fd kinds, else -1 */
	pid_t tid;                /* thread kinds, else 0 */
	uint64_t start, end;      /* map kinds, else 0 */
	char msg[512];            /* one human-readable line */
};

struct fp_shim_range {
	uint64_t start, end;
};

struct fp_shim_report {
	struct fp_shim_dis *v;    /* disagreements */
	size_t n;
	struct fp_shim_range *shim_maps; /* the shim's own mappings (in /proc), excluded */
	size_t n_shim_maps;
	int *shim_fds;            /* the shim's own fds (in /proc), excluded */
	size_t n_shim_fds;
	size_t fds, maps, threads; /* how many /proc entries were compared */
};

/* Reads /proc for pid and compares it with t (a copy from fp_shim_read).
 * Returns 0 with the report filled (out->n == 0: they agree), -1 if /proc
 * could not be read. Free with fp_shim_report_free. */
int fp_shim_check(pid_t pid, const struct fp_shim_table *t, struct fp_shim_report *out,
		  fp_error *err);
void fp_shim_report_free(struct fp_shim_report *r);
const char *fp_shim_dis_kind_name(enum fp_shim_dis_kind k);

#endif
