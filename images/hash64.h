/* A fast 64-bit non-cryptographic hash for detecting corrupt page data. It
 * implements the published XXH64 algorithm (seed 0 gives the standard XXH64
 * values), written here from the algorithm description. */
#ifndef FP_HASH64_H
#define FP_HASH64_H

#include <stddef.h>
#include <stdint.h>

uint64_t fp_hash64(const void *data, size_t len, uint64_t seed);

#endif
