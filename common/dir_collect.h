/* Listing a directory into an array of records: one load per entry, entries
 * that do not load are skipped (a half-written session or snapshot is not
 * an error for a listing), the result sorted. */
#ifndef FP_DIR_COLLECT_H
#define FP_DIR_COLLECT_H

#include <stddef.h>

#include "fp_error.h"

/* Fills *rec (elem bytes) for directory entry `name` and returns 0, or
 * returns -1 to skip the entry. */
typedef int (*fp_dir_load_fn)(void *ctx, const char *name, void *rec);

/* Loads every entry of dir not starting with '.' into a malloc'd array
 * (*out, *n; free it). A missing dir is an empty list. cmp may be NULL. */
int fp_dir_collect(const char *dir, size_t elem, fp_dir_load_fn load, void *ctx,
		   int (*cmp)(const void *, const void *), void **out, size_t *n, fp_error *err);

#endif
