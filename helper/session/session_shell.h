/* The terminal of a shell session (run --shell): a pseudo-terminal whose
 * master the session helper holds. bash is its session leader and reads
 * its commands from it, so job control (jobs, fg, ^C) works as for a person
 * at a terminal; the output of commands goes elsewhere (session_exec.h), and
 * what bash itself writes on the terminal (prompts, job notices) is read
 * and dropped. */
#ifndef FP_SESSION_SHELL_H
#define FP_SESSION_SHELL_H

#include <stddef.h>
#include <sys/types.h>

#include "fp_error.h"

struct fp_shell {
	int master;          /* -1 when closed */
	int slave;           /* the helper's own O_NOCTTY opening, to flush typed input */
	char slave_path[64]; /* /dev/pts/N */
};

/* The shell's command line: an interactive bash without rc files, line
 * editing or history (input comes from the helper, not a person). */
extern char *const fp_shell_argv[];

int fp_shell_pty_open(struct fp_shell *sh, fp_error *err);
void fp_shell_close(struct fp_shell *sh);

/* In the forked child, before exec: a new session whose controlling
 * terminal is the pty, on fds 0-2. Returns -1 with errno set. */
int fp_shell_child_attach(const struct fp_shell *sh);

/* Types text (whole lines) on the shell's terminal. */
int fp_shell_type(struct fp_shell *sh, const char *line, fp_error *err);

/* Drops input typed but not read (a restore replaced the shell). */
void fp_shell_flush_input(struct fp_shell *sh);

/* Reads and drops what bash wrote on its terminal. */
void fp_shell_drain(struct fp_shell *sh);

/* The terminal's foreground process group, or -1. */
pid_t fp_shell_foreground(const struct fp_shell *sh);

/* The shell (pid `shell`) sits at its prompt: it owns the terminal's
 * foreground, is blocked reading it, and nothing typed waits to be read.
 * *rchar is its read count (to tell a later look that it read meanwhile). */
int fp_shell_waits_for_input(const struct fp_shell *sh, pid_t shell, unsigned long long *rchar);

#endif
