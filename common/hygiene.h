/* forkpoint may be started by daemons (container agents, init systems,
 * language runtimes) with blocked signals, ignored SIGCHLD, closed stdio or
 * stray fds: the known causes of CRIU hanging or failing silently. Every
 * forkpoint process normalises itself first, and remembers what it inherited
 * so a launched target can get exactly the user's original signal state. */
#ifndef FP_HYGIENE_H
#define FP_HYGIENE_H

#include <signal.h>

struct fp_inherited_signals {
	sigset_t blocked;
	sigset_t ignored; /* signals whose disposition was SIG_IGN */
};

/* Records the inherited signal state into *saved (may be NULL), then unblocks
 * every signal, sets every disposition to SIG_DFL and makes sure fds 0-2 are
 * open (on /dev/null if they were closed). */
void fp_sanitize_self(struct fp_inherited_signals *saved);

/* In a freshly forked child: re-applies an inherited signal state. */
void fp_restore_inherited_signals(const struct fp_inherited_signals *saved);

/* Closes every fd above 2 but keep (-1: none): what a long-lived process
 * (a session helper) must not hold of whoever started it. */
void fp_close_fds_above_stdio(int keep);

#endif
