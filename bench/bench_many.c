/* A target with many fds or many mappings, for bench/shim_pause.sh and
 * bench/rollback_fds.sh:
 *
 *   bench_many fds N STATUS    N fds: a third separate opens of /dev/null,
 *                              a third of one file at distinct offsets, a
 *                              third dups (as build/bench/fd_pause)
 *   bench_many maps N STATUS   N separate one-page anonymous mappings
 *                              (read-only and writable by turns, so the
 *                              kernel cannot merge them), the writable ones
 *                              written
 *
 * Writes "ready PID" to STATUS, then waits for signals. Plain libc calls, so
 * under the shim every fd and mapping goes through its wrappers. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return fprintf(stderr, "usage: bench_many fds|maps N STATUS\n"), 2;
	int n = atoi(argv[2]);
	if (!strcmp(argv[1], "fds")) {
		struct rlimit rl = { (rlim_t)n + 64, (rlim_t)n + 64 };
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return perror("setrlimit"), 1;
		char file[4200];
		snprintf(file, sizeof(file), "%s.data", argv[3]);
		int first = -1, fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
			return perror(file), 1;
		close(fd);
		for (int i = 0; i < n; i++) {
			if (i % 3 == 0)
				fd = open("/dev/null", O_RDWR);
			else if (i % 3 == 1) {
				fd = open(file, O_RDONLY);
				if (fd >= 0)
					lseek(fd, i, SEEK_SET);
			} else
				fd = dup(first);
			if (fd < 0)
				return perror("open"), 1;
			if (first < 0)
				first = fd;
		}
	} else if (!strcmp(argv[1], "maps")) {
		long pg = sysconf(_SC_PAGESIZE);
		/* One range, each page mapped over it: one VMA per page, since
		 * neighbours differ in protection. */
		char *base = mmap(NULL, (size_t)n * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED)
			return perror("mmap"), 1;
		for (int i = 0; i < n; i++) {
			int prot = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
			char *p = mmap(base + (size_t)i * pg, pg, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			if (p == MAP_FAILED)
				return perror("mmap"), 1;
			if (prot & PROT_WRITE)
				p[0] = (char)i;
		}
	} else {
		return fprintf(stderr, "fds or maps, not %s\n", argv[1]), 2;
	}
	FILE *f = fopen(argv[3], "w");
	if (!f)
		return perror(argv[3]), 1;
	fprintf(f, "ready %d\n", (int)getpid());
	fclose(f);
	for (;;)
		pause();
}
