/* What verifying an image costs a restore: img_verify (every file against
 * forkpoint.manifest) on DIR, ROUNDS times, against a plain read of the
 * same files (what any restore does at least once).
 *
 *   build/bench/verify_cost DIR [ROUNDS]
 *
 * Prints the median of each, in ms, and the verify rate in MB/s. Run it
 * twice: the first pass may read from disk, the rest from the page cache. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "images/img_verify.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double read_all(int dirfd)
{
	static char buf[1 << 20];
	double t0 = now_ms();
	DIR *d = fdopendir(dup(dirfd));
	if (d)
		rewinddir(d); /* the dup shares the directory's offset */
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int fd = e->d_name[0] == '.' ? -1 : openat(dirfd, e->d_name, O_RDONLY);
		while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
			;
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return now_ms() - t0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [ROUNDS]\n", argv[0]);
		return 2;
	}
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	if (rounds < 1 || rounds > 1000)
		rounds = 5;
	int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dirfd < 0) {
		perror(argv[1]);
		return 1;
	}
	double *v = calloc((size_t)rounds, sizeof(double)), *r = calloc((size_t)rounds, sizeof(double));
	struct img_verify_info vi = { 0 };
	for (int i = 0; i < rounds; i++) {
		fp_error err;
		double t0 = now_ms();
		if (img_verify(dirfd, argv[1], IMG_VERIFY_FULL, &vi, &err)) {
			fprintf(stderr, "verify: %s\n", err.msg);
			return 1;
		}
		v[i] = now_ms() - t0;
		r[i] = read_all(dirfd);
	}
	qsort(v, (size_t)rounds, sizeof(double), cmp_d);
	qsort(r, (size_t)rounds, sizeof(double), cmp_d);
	double mv = v[rounds / 2], mr = r[rounds / 2];
	printf("%s: verify %.1f ms (%.0f MB hashed, %.0f MB/s), plain read of the files %.1f ms, %d rounds\n", argv[1], mv,
	       vi.bytes_hashed / 1e6, vi.bytes_hashed / 1e3 / mv, mr, rounds);
	free(v);
	free(r);
	return 0;
}
