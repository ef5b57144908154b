/* Ending a child program and everything it started.
 *
 * Killing only the top process of a stuck program (a CRIU that hangs, a shell
 * script around it) leaves its children running under pid 1, where they hold
 * ptrace stops, fds and pids. A process group cannot be used instead: `criu
 * restore --shell-job` must stay in the caller's group to take the terminal. */
#ifndef FP_KILL_TREE_H
#define FP_KILL_TREE_H

#include <sys/types.h>

/* Stops root and every descendant (so that none can fork or be reparented
 * while the tree is walked), then SIGKILLs them all. Returns how many were
 * signalled. root is not reaped: the caller waits for it as usual. */
int fp_kill_tree(pid_t root);

#endif
