#include <stdio.h>

#include "cli.h"

int cmd_inspect(int argc, char **argv)
{
	(void)argc, (void)argv;
	fprintf(stderr, "forkpoint: inspect is not built yet\n");
	return 1;
}
