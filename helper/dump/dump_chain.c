/* How deep a session's chain of incremental snapshots may grow
 * (dump_incr_int.h).
 *
 * Each incremental snapshot names its parent, and a restore (ours, and
 * CRIU's after `forkpoint decompress`) follows the links down to a
 * snapshot that holds every page: a chain deeper than the readers take
 * (PGS_CHAIN_MAX_DEPTH, 4096 levels, the guard against a loop of links)
 * could be written but never restored, and a session that snapshots at
 * every step of a long exploration gets there. A rollback in place also
 * reads its pages from every level of the chain (their stores mapped, a
 * bounded number of them open). So when the parent's chain is
 * FORKPOINT_CHAIN_MAX levels deep (default 256), the next snapshot holds
 * every page again, as after a removed parent (the write tracking goes
 * on), and the next ones build on it. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "images/pagestore_chain.h"

#define CHAIN_MAX_DEFAULT 256

unsigned dump_chain_max(struct dump_ctx *c)
{
	const char *v = getenv("FORKPOINT_CHAIN_MAX");
	if (!v || !*v)
		return CHAIN_MAX_DEFAULT;
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || *end || n < 1) {
		dlog(c, "FORKPOINT_CHAIN_MAX=%s is not a number of levels (1 or more): %d is used", v, CHAIN_MAX_DEFAULT);
		return CHAIN_MAX_DEFAULT;
	}
	/* below the readers' own bound, with room for a restore's checks */
	return n > PGS_CHAIN_MAX_DEPTH - 96 ? PGS_CHAIN_MAX_DEPTH - 96 : (unsigned)n;
}

unsigned dump_chain_depth(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	unsigned n = 1;
	for (; n <= PGS_CHAIN_MAX_DEPTH; n++) {
		int up = openat(fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		if (up < 0)
			return n;
		fd = up;
	}
	close(fd);
	return n;
}
