/* PAGEMAP_SCAN on two CPUs (helper/dump/dump_scan_two_cpus.c), on this
 * process's own page tables: 160 MiB mapped, every other page touched
 * (so each 32 MiB piece holds thousands of regions: long enough for the
 * second thread to take pieces), and the pages around each piece boundary
 * too (runs that two threads walk in halves). The present pages asked
 * for must be exactly the runs touched, each one range, in order, on one
 * CPU and on two, and a sort function must get every region (here: those
 * below the middle into the second list as well). A kernel without
 * PAGEMAP_SCAN must say so (1), not fail. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fp_test.h"
#include "dump/dump_scan_two_cpus.h"

#define PG 4096ull
#define MIB (1ull << 20)
#define LEN (160 * MIB)
#define PIECE_PAGES (32 * MIB / PG)

static uint64_t mid;

static int split(void *arg, const struct fp_page_region *r, struct fp_rlist *a, struct fp_rlist *b)
{
	(void)arg;
	return fp_rlist_add(a, r->start, r->end) || (r->start < mid && fp_rlist_add(b, r->start, r->end));
}

static bool same(const struct fp_rlist *x, const struct fp_rlist *y)
{
	return x->n == y->n && (!x->n || !memcmp(x->r, y->r, x->n * sizeof(*x->r)));
}

int main(void)
{
	uint8_t *raw = mmap(NULL, LEN + 32 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(raw != MAP_FAILED);
	uint8_t *m = (uint8_t *)(((uintptr_t)raw + 32 * MIB - 1) & ~(uintptr_t)(32 * MIB - 1));
	CHECK(madvise(m, LEN, MADV_NOHUGEPAGE) == 0);
	uint64_t base = (uint64_t)(uintptr_t)m, npg = LEN / PG;
	mid = base + LEN / 2;
	bool *touched = calloc(npg, sizeof(bool));
	CHECK(touched != NULL);
	for (uint64_t p = 0; p < npg; p += 2)
		touched[p] = true;
	for (uint64_t b = PIECE_PAGES; b < npg; b += PIECE_PAGES)
		for (uint64_t p = b - 2; p < b + 2; p++)
			touched[p] = true;
	struct fp_rlist want = { 0 }, want_low = { 0 };
	int oom = 0;
	for (uint64_t p = 0; p < npg; p++)
		if (touched[p]) {
			m[p * PG] = 1;
			oom |= fp_rlist_add(&want, base + p * PG, base + (p + 1) * PG);
			if (base + p * PG < mid)
				oom |= fp_rlist_add(&want_low, base + p * PG, base + (p + 1) * PG);
		}
	CHECK(!oom);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	struct fp_pm_scan_arg q = { 0 };
	q.category_mask = FP_PAGE_IS_PRESENT;
	q.return_mask = FP_PAGE_IS_PRESENT;
	struct fp_range reg = { base, base + LEN };
	for (int cpus = 1; cpus <= 2; cpus++)
		for (int rep = 0; rep < 20; rep++) {
			struct fp_rlist a = { 0 }, b = { 0 };
			fp_error err = { 0 };
			bool sorted = rep % 2;
			int rc = fp_scan_two_cpus(fd, &reg, 1, &q, sorted ? split : NULL, NULL, cpus == 1, &a, &b, &err);
			if (rc == 1)
				SKIP("this kernel has no PAGEMAP_SCAN");
			CHECKF(rc == 0, "rc %d: %s", rc, err.msg);
			CHECKF(same(&a, &want), "%d CPU(s)%s: %zu ranges, not the %zu runs touched (first %#llx)", cpus,
			       sorted ? ", sorted" : "", a.n, want.n, a.n ? (unsigned long long)(a.r[0].start - base) : 0ull);
			if (sorted)
				CHECKF(same(&b, &want_low), "%d CPU(s): %zu ranges below the middle, not %zu", cpus, b.n,
				       want_low.n);
			else
				CHECKF(b.n == 0, "no sort, yet %zu ranges in the second list", b.n);
			fp_rlist_free(&a);
			fp_rlist_free(&b);
		}
	fp_rlist_free(&want);
	fp_rlist_free(&want_low);
	free(touched);
	close(fd);
	munmap(raw, LEN + 32 * MIB);
	return fp_test_done();
}
