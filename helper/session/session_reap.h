/* Ending a session leaves no process: the helper is the subreaper of its
 * tree, so every process the session started (children, grandchildren,
 * daemons that called setsid and double-forked) is a descendant of it. */
#ifndef FP_SESSION_REAP_H
#define FP_SESSION_REAP_H

#include <stddef.h>
#include <sys/types.h>

/* Every descendant of pid, from /proc/PID/task/TID/children, appended to
 * out from index n. Returns the new count. */
size_t fp_proc_descendants(pid_t pid, pid_t *out, size_t cap, size_t n);

/* Sends sig to every descendant of this process. Returns how many. */
size_t fp_session_signal_all(int sig);

/* SIGKILLs and reaps every descendant of this process, again until none is
 * left (a fork racing the kill is caught on the next round). Returns 0, or
 * -1 if some remained after deadline_ms. */
int fp_session_kill_all(int deadline_ms);

#endif
