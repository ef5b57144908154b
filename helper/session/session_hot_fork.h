/* A process forked from a hot snapshot's frozen copy into a branch's
 * namespaces (see session_hot_fork.c). Runs in the helper that keeps the
 * copy. */
#ifndef FP_SESSION_HOT_FORK_H
#define FP_SESSION_HOT_FORK_H

#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

/* holder: the branch helper's pid (as this helper sees it); want: the pid
 * the process must have inside. *pid: the new process as this helper sees
 * it, untraced, in pause() with every signal blocked, child of holder;
 * *sysret: a `syscall; ret` in it. */
int fp_hot_fork(const char *snap, pid_t holder, pid_t want, pid_t *pid, uint64_t *sysret, fp_error *err);

/* Closes every fd of h's copies (a frozen copy only lends its memory):
 * a file it held open for writing in the workspace would keep the next
 * snapshot from freezing the workspace's layer. */
struct fp_dump_hot;
int fp_hot_close_fds(const struct fp_dump_hot *h, fp_error *err);

/* The control request "hotfork SNAP HOLDER PID": replies "ok\npid=..\nsysret=..". */
void fp_hot_fork_request(const char *args, int c);

#endif
