/* CRIU's two-sided flags (given to both `criu dump` and `criu restore`),
 * accepted by forkpoint's dump and restore so that scripts written for CRIU
 * work unchanged. forkpoint always does what --file-locks, --shell-job and
 * --link-remap ask for (locks are dumped, terminals handled as shell jobs,
 * deleted files kept as ghost copies); --tcp-established makes forkpoint's
 * dump save established TCP connections (dump_tcp.c; without it they are
 * refused); --ext-unix-sk makes it save a unix datagram socket connected to
 * a named socket outside the tree, as CRIU does (dump_usk_ext.c; without
 * it such sockets are refused). On a restore that goes to CRIU, every flag
 * given is passed on. */
#include <string.h>

#include "cli.h"

static const char *const known[] = { "--tcp-established", "--file-locks", "--link-remap", "--shell-job",
				     "--ext-unix-sk" };

bool cli_criu_flag(const char *arg, struct cli_criu_flags *f)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(arg, known[i])) {
			for (size_t k = 0; k < f->n; k++)
				if (f->v[k] == known[i])
					return true;
			if (f->n < sizeof(f->v) / sizeof(f->v[0]))
				f->v[f->n++] = known[i];
			return true;
		}
	return false;
}
