#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char decompress_usage[] =
	"usage: forkpoint decompress [--keep] [--verify] DIR\n"
	"\n"
	"Expands the zstd page stores (pages-N.fpz) of snapshot DIR into plain\n"
	"pages-N.img files, so that `criu restore -D DIR` restores it.\n"
	"\n"
	"  --keep    keep the .fpz files as well\n"
	"  --verify  check every file against the manifest first\n";

int cmd_decompress(int argc, char **argv)
{
	const char *dir = NULL;
	bool keep = false, verify = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(decompress_usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else if (!strcmp(argv[i], "--verify"))
			verify = true;
		else if (argv[i][0] == '-')
			return cli_usage_error(decompress_usage, "unknown option '%s'", argv[i]);
		else if (!dir)
			dir = argv[i];
		else
			return cli_usage_error(decompress_usage, "too many arguments");
	}
	if (!dir)
		return cli_usage_error(decompress_usage, "no snapshot directory given");
	forkpoint_error err;
	unsigned flags = (keep ? FORKPOINT_DECOMPRESS_KEEP : 0) | (verify ? FORKPOINT_DECOMPRESS_VERIFY : 0);
	return forkpoint_decompress(dir, flags, &err) < 0 ? cli_report_api(&err) : 0;
}
