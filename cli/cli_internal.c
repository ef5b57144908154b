/* cli_report for the commands that still call internal layers
 * (cli_internal.h); every other command reports forkpoint_error values. */
#include <stdio.h>

#include "cli_internal.h"

int cli_report(const fp_error *err)
{
	fprintf(stderr, "forkpoint: %s\n", err->msg[0] ? err->msg : "unknown error");
	return err->exit_code ? err->exit_code : 1;
}
