/* Proving that a CRIU binary really dumps and restores on this kernel.
 *
 * `criu check` is not enough: CRIU 4.1.1 passes it on kernel builds where its
 * dump then waits forever for a hardware-breakpoint trap that never comes,
 * and only SIGKILL ends it. So a candidate must also dump a throw-away
 * process and restore it, each step under a deadline, its whole process tree
 * killed when the deadline passes. */
#ifndef FP_CRIU_PROBE_H
#define FP_CRIU_PROBE_H

#include <stddef.h>

/* Deadline of each step when FORKPOINT_CRIU_PROBE_TIMEOUT (seconds) is unset. */
#define FP_CRIU_PROBE_DEFAULT_MS 20000

/* The step deadline in ms: FORKPOINT_CRIU_PROBE_TIMEOUT or the default. */
int fp_criu_probe_timeout_ms(void);

/* Dumps a `sleep` started for the purpose with `criu dump`, restores it with
 * `criu restore -d`, checks it runs, and kills it. Returns 0 when all of it
 * worked; otherwise -1 with one line in why saying which step failed and how. */
int fp_criu_probe(const char *criu, char *why, size_t wlen);

#endif
