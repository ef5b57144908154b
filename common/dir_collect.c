#include "dir_collect.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fp_dir_collect(const char *dir, size_t elem, fp_dir_load_fn load, void *ctx,
		   int (*cmp)(const void *, const void *), void **out, size_t *n, fp_error *err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : fp_fail(err, errno, "cannot list %s: %s", dir, strerror(errno));
	size_t cap = 0;
	char *v = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char *nv = realloc(v, cap * elem);
			if (!nv) {
				closedir(d);
				free(v);
				*n = 0;
				return fp_fail(err, ENOMEM, "out of memory listing %s", dir);
			}
			v = nv;
		}
		if (load(ctx, de->d_name, v + *n * elem) == 0)
			(*n)++;
	}
	closedir(d);
	if (*n && cmp)
		qsort(v, *n, elem, cmp);
	*out = v;
	return 0;
}
