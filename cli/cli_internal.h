/* For the commands that still call forkpoint's internal layers directly
 * (doctor, config, build): reporting an internal error.
 * Every other command is a client of include/forkpoint.h only, and
 * tests/e2e/layout_deps.sh keeps it so; this header goes when the last
 * of these does. */
#ifndef FP_CLI_INTERNAL_H
#define FP_CLI_INTERNAL_H

#include "fp_error.h"

/* Prints "forkpoint: <msg>" to stderr and returns the error's exit code. */
int cli_report(const fp_error *err);

#endif
