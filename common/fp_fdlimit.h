/* A share of the process's file limit, for caches that keep fds open. */
#ifndef FP_FDLIMIT_H
#define FP_FDLIMIT_H

#include <stddef.h>

/* The soft RLIMIT_NOFILE divided by div, within [lo, hi] (hi when it is
 * unlimited or cannot be read). Read each time: callers keep the answer. */
size_t fp_fdlimit_share(unsigned div, size_t lo, size_t hi);

#endif
