/* bench_dirty: the exploration workload of bench/incremental.py. It fills
 * --mib MiB with data, then at each SIGUSR1 writes --pct percent of its
 * pages, chosen at random (8 bytes in each: the page is written), and
 * appends "step N" to STATUS. A stand-in for an agent's or a search's step.
 *
 * Each step's pages come from a fresh random salt (getrandom), which a
 * rollback does not take back: after a rollback the next step writes
 * other pages, as the next alternative of a search would. With
 * --same-pages they follow the step counter only, which the rollback
 * restores, so every step after a rollback to the same snapshot writes the
 * same pages again (the pages a rollback reads are then the ones the last
 * one read: warm; bench results before 2026-12-07 used that).
 *
 *   bench_dirty STATUS [--mib=N (default 1024)] [--pct=P (default 1)] [--same-pages]
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return fprintf(stderr, "usage: bench_dirty STATUS [--mib=N] [--pct=P]\n"), 2;
	size_t mib = 1024;
	double pct = 1;
	int same = 0;
	for (int i = 2; i < argc; i++)
		if (!strncmp(argv[i], "--mib=", 6))
			mib = strtoull(argv[i] + 6, NULL, 10);
		else if (!strncmp(argv[i], "--pct=", 6))
			pct = atof(argv[i] + 6);
		else if (!strcmp(argv[i], "--same-pages"))
			same = 1;
	size_t len = mib << 20, pages = len / 4096;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return perror("mmap"), 1;
	madvise(m, len, MADV_NOHUGEPAGE); /* 4 KiB pages, as most heaps */
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = mix(i);
		memcpy(m + i, &v, 8);
	}
	FILE *st = fopen(argv[1], "a");
	if (!st)
		return perror(argv[1]), 1;
	setvbuf(st, NULL, _IOLBF, 0);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	fprintf(st, "ready %d\n", (int)getpid());
	size_t per_step = (size_t)((double)pages * pct / 100.0);
	for (uint64_t n = 1;; n++) {
		while (!go)
			sigsuspend(&old);
		go = 0;
		uint64_t salt = 0;
		if (!same && getrandom(&salt, sizeof(salt), 0) != sizeof(salt))
			return perror("getrandom"), 1;
		for (size_t k = 0; k < per_step; k++) {
			size_t p = mix(salt ^ (n << 32 | k)) % pages;
			uint64_t v = mix(n ^ p);
			memcpy(m + p * 4096 + (k % 512) * 8, &v, 8);
		}
		fprintf(st, "step %llu\n", (unsigned long long)n);
	}
}
