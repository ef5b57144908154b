/* The shim's fd table in a dump (issue 16), for every process of the tree
 * that has one: a copy as the check of what /proc says (dump_shim_fds.c),
 * the shortcut at the stop (dump_fdshort.c), the fds carried to the next
 * snapshot (dump_fdcarry.c) and the marks for a rollback in place
 * (dump_fdmark.c). Each keeps its state per process (by pid). Included by
 * dump_int.h. */
#ifndef FP_DUMP_FDSHORT_H
#define FP_DUMP_FDSHORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fp_error.h"

struct dump_ctx;
struct dump_fd_seen;
struct fp_shim_copy;

/* dump_shim_fds.c: pid's fd table copied before the stop (pid under the
 * shim; read again, it replaces pid's copy), compared after the resume
 * with what the stop read, for each process copied. _of: pid's copy, or
 * NULL. */
void dump_shim_fds_read(struct dump_ctx *c, pid_t pid);
const struct fp_shim_copy *dump_shim_fds_of(const struct dump_ctx *c, pid_t pid);
void dump_shim_fds_check(struct dump_ctx *c);
void dump_shim_fds_free(struct dump_ctx *c);
/* One disagreement of the table with /proc: dump.log and the statistics. */
void dump_shim_disagree_note(struct dump_ctx *c, const char *line);
/* fdinfo text: pos, flags, mnt_id, ino (dump_fdscan.c). */
int dump_fdinfo_parse(const char *buf, struct dump_fd_seen *sn);
/* dump_fdshort.c: the shim's fd table as a shortcut at the stop, per
 * process. _begin (pid's look, before any of its fds is read): the slots'
 * seqs (a second _begin of pid starts over); _offer (after the look and
 * the table's copy; st and link kept until the dump ends): fd may take the
 * shortcut (1: with a copy of the fd, taken when may_pin; 2: no copy
 * needed; 0: no); _stop (pid stopped, before its fds): the seqs again and
 * the locks; _take: fd's fdinfo facts (pos, flags, mnt_id, ino) without
 * reading /proc when no wrapper touched it since the look (false: read
 * fdinfo); _pin: the copy of a taken fd (owned here, -1 if none); _verify
 * (after the resume): every taken fd of every process against /proc
 * (*stale and -1 when one differs: the dump is done again without the
 * looks). */
struct dump_fdshorts;
void dump_fdshort_begin(struct dump_ctx *c, pid_t pid, int maxfd);
int dump_fdshort_offer(struct dump_ctx *c, pid_t pid, int fd, const struct stat *st, const char *link,
		       const struct dump_fd_seen *sn, bool may_pin);
void dump_fdshort_stop(struct dump_ctx *c, pid_t pid);
void dump_fdshort_locks(struct dump_ctx *c, bool stopped); /* /proc/locks read in threads */
bool dump_fdshort_take(struct dump_ctx *c, pid_t pid, int fd, struct dump_fd_seen *sn);
int dump_fdshort_pin(const struct dump_ctx *c, pid_t pid, int fd);
int dump_fdshort_verify(struct dump_ctx *c, bool *stale, fp_error *err);
void dump_fdshort_free(struct dump_ctx *c);
void dump_fdshort_fault_pause(const struct dump_ctx *c);
/* What dump_fdcarry.c and dump_fdmark.c read of pid's: the look's seq of
 * fd (odd: none), whether the seqs were read, how many slots were followed
 * once the check after the resume passed (0 if it did not) and where the
 * table is, and the facts of a taken fd (link borrowed). */
struct dump_fd_look { /* an fd as the look before the stop read it */
	int fd;
	int info; /* its fdinfo file, kept open; -1 if none */
	uint32_t seq; /* its slot's in the shim's table (carried fds) */
	uint32_t flags;
	int mnt_id;
	uint64_t ino;
	uint64_t pos;
	struct stat st;
	char *link;
};
uint32_t dump_fdshort_seq(const struct dump_ctx *c, pid_t pid, int fd);
bool dump_fdshort_seq_ok(const struct dump_ctx *c, pid_t pid);
uint32_t dump_fdshort_slots(const struct dump_ctx *c, pid_t pid, uint64_t *addr);
bool dump_fdshort_taken(const struct dump_ctx *c, pid_t pid, int fd, struct dump_fd_look *r);
/* /dev/null, zero, full, random, urandom: devices whose offset nothing moves */
bool dump_fd_fixed_chr(const struct stat *st);
/* dump_fdcarry.c: the fds a session's last snapshot read, for its next,
 * per process. _list (pid's look, instead of listing /proc/PID/fd): 1 and
 * the fds from the shim's table (sorted, malloc'd), 0 or -1 (nothing
 * carried: list /proc); _get: fd's record when it is carried (no wrapper
 * touched it since); _keep: after a snapshot kept its tracking, what to
 * carry to the next. */
int dump_fdcarry_list(struct dump_ctx *c, pid_t pid, int **fds, size_t *n);
const struct dump_fd_look *dump_fdcarry_get(const struct dump_ctx *c, pid_t pid, int fd);
void dump_fdcarry_keep(struct dump_ctx *c, const char *final);
/* dump_fdmark.c: after a snapshot kept its tracking, each table's position
 * for a rollback to it (dump_fdmark.h) */
void dump_fdmark_keep(struct dump_ctx *c, const char *final);

#endif
