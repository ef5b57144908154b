/* A thread's and a process's attributes as the dump reads them
 * (dump_core.c, dump_locks.c), for whoever compares live processes with a
 * snapshot's images the same way (a rollback in place,
 * helper/session/rollback_attrs.c and rollback_locks.c). */
#ifndef FP_DUMP_ATTRS_H
#define FP_DUMP_ATTRS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"
#include "images/criu_msgs.h"

/* The creds in buf, the text of /proc/PID/task/TID/status (cut up by
 * the parse); a thread under seccomp is refused (FP_EXIT_UNSUPPORTED). */
int dump_creds_parse(char *buf, pid_t pid, pid_t tid, cr_creds *cr, fp_error *err);
/* /proc/PID/task/TID/comm, "" when it cannot be read. */
void dump_read_comm(pid_t pid, pid_t tid, char *out, size_t len);
/* Scheduling policy (without SCHED_RESET_ON_FORK), RT priority and nice
 * of thread tid; false when they cannot be read. */
bool dump_read_sched(pid_t tid, uint32_t *policy, uint32_t *prio, int32_t *nice);
/* Resource limit r of pid (RLIM_INFINITY as UINT64_MAX); -1 with errno. */
int dump_read_rlimit(pid_t pid, int r, cr_rlimit *out);
/* One fdinfo "lock:" line (what follows "lock:") of pid's fd, as
 * filelocks.img records it, and the locked file's inode; leases and
 * mandatory locks are refused (FP_EXIT_UNSUPPORTED). */
int dump_lock_parse(const char *line, pid_t pid, int fd, cr_file_lock *e, uint64_t *ino, fp_error *err);

#endif
