/* Touches the machine's free memory once, then frees it: the benchmarks run
 * this first (bench/tools.py warm_memory).
 *
 * In a VM whose memory the host backs lazily (Firecracker), a guest page
 * that was never used costs a host fault the first time the guest uses it:
 * 19 GiB took 55 s here on a fresh boot (~11 us a page). Page cache for a
 * new file comes from such pages, so on a fresh boot writing 10 MiB took
 * 27 ms where it takes 2.4 ms once the guest's memory is backed, and CRIU's
 * dump of 1 GiB paid the same for every page it wrote: the numbers measured
 * the host, not the tools. Freed pages stay backed, so after one pass both
 * tools write into warm memory.
 *
 *   warm_memory [KEEP_MIB]   touch MemAvailable minus KEEP_MIB (default
 *                            1024), 1 GiB at a time; prints what it did */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static long long mem_available_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib < 0 ? -1 : kib / 1024;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long long keep = argc > 1 ? strtoll(argv[1], NULL, 10) : 1024;
	long long avail = mem_available_mib();
	if (avail < 0) {
		fprintf(stderr, "warm_memory: no MemAvailable in /proc/meminfo\n");
		return 1;
	}
	long long want = avail - keep, done = 0;
	double t0 = now_s();
	/* Each chunk stays mapped until the end: a chunk freed at once would
	 * hand its (now backed) pages to the next one. */
	while (done < want) {
		size_t mib = want - done < 1024 ? (size_t)(want - done) : 1024;
		void *m = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (m == MAP_FAILED) {
			perror("warm_memory: mmap");
			break;
		}
		done += (long long)mib;
	}
	printf("warm_memory: %lld MiB touched in %.1f s (MemAvailable %lld MiB, %lld MiB left alone)\n", done,
	       now_s() - t0, avail, keep);
	return 0;
}
