#include "fp_fdlimit.h"

#include <sys/resource.h>

size_t fp_fdlimit_share(unsigned div, size_t lo, size_t hi)
{
	struct rlimit rl;
	if (!div || getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return hi;
	rlim_t k = rl.rlim_cur / div;
	return k < lo ? lo : k > hi ? hi : (size_t)k;
}
