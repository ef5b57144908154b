/* Private helpers shared by the ptrace/pt_*.c files: clocks, deadline
 * waits and the little /proc reading ptrace needs (kept here, not in
 * common/procfs, so the ptrace layer depends on nothing else). */
#ifndef FP_PT_INTERNAL_H
#define FP_PT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fp_error.h"

#define FP_PF_KTHREAD 0x00200000UL /* task flags bit, /proc/PID/stat field 9 */

int64_t fp_pt_now_ns(void);
int64_t fp_pt_deadline(int timeout_ms);

/* waitpid(tid, __WALL|WNOHANG) until it reports or the deadline passes.
 * Returns 1 with *status set, 0 on timeout, -1 with errno (ECHILD: not ours
 * or already reaped). */
int fp_pt_wait_one(pid_t tid, int64_t deadline_ns, int *status);

/* Backoff between polls: polls hard first, then sleeps growing from 1 µs
 * to 1 ms. round counts from 0. */
void fp_pt_backoff(unsigned round);

/* /proc/<pid>/task/<tid>/stat: state letter and flags. -1 with errno. */
int fp_pt_stat(pid_t pid, pid_t tid, char *state, unsigned long *flags);
/* Value of "Key:" in /proc/<pid>/status (leading blanks stripped). */
int fp_pt_status_field(pid_t pid, const char *key, char *out, size_t len);
/* fp_pt_check_traceable that also returns the process name. */
int fp_pt_check(pid_t pid, char *comm, size_t comm_len, fp_error *err);
/* comm of pid, "?" if unreadable. */
void fp_pt_comm(pid_t pid, char *buf, size_t len);
/* tids in /proc/<pid>/task; *tids is malloc'ed. -1 with errno. */
int fp_pt_list_tasks(pid_t pid, pid_t **tids, size_t *n);
/* Short text for a thread that will not stop: "state D, wchan foo". */
void fp_pt_describe_thread(pid_t pid, pid_t tid, char *buf, size_t len);

#endif
