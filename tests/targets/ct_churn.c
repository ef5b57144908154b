/* ct_churn: a target whose memory map keeps changing while it is dumped, for
 * the pre-copy dump (pages copied while the process runs, under write
 * tracking). A worker thread runs numbered rounds without pause; each round
 * does one thing to one of 16 slots of 1 MiB, chosen by the round number:
 *
 *   0  overwrite the slot with a new pattern
 *   1  MADV_DONTNEED the slot, refill only its first half
 *   2  munmap the slot and map a new one (often elsewhere), fill it
 *   3  mremap the slot to another address, rewrite its first page
 *
 * and rewrites a few pages of a big heap (--mib, default 128). With
 * --rewrite-only every round overwrites its slot (0) and nothing else: the
 * pages it has stay the same ones, rewritten without pause (an incremental
 * snapshot's page store written beside its pre-copy, dump_incr_store.c,
 * then has the stop's reads to put over their places). Everything a
 * round leaves behind is a function of the round number, so a verification
 * (at a round boundary, the worker parked) replays the rounds on a small
 * model and compares every byte: a page taken from before a write, a page
 * kept after MADV_DONTNEED, munmap or mremap, shows as a mismatch.
 * "verify N ok round=R".
 *
 *   ct_churn STATUS [--mib=N] [--sleep-us=N] [--thp] [--rewrite-only] [common options]
 */
#include "ct_proto.h"

#include <pthread.h>
#include <sys/mman.h>

#define SLOTS 16
#define SLOT_SZ (1u << 20)
#define HEAP_WRITES 4 /* heap pages rewritten per round */

struct slot_model {
	uint64_t seed;  /* pattern of the whole slot, or of its first half */
	bool half;      /* second half zero (after DONTNEED) */
	uint64_t page0; /* nonzero: first page rewritten with this seed */
};

static unsigned char *slot[SLOTS];
static unsigned char *heap;
static size_t heap_pages;
static uint64_t round_no;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int parked, park_req;
static unsigned long long sleep_us;
static bool thp, rewrite_only;

static uint64_t heap_seed(size_t page) { return 0x4ea9ull << 32 | page; }
static uint64_t round_seed(uint64_t r) { return ct_mix(r + 77); }
static size_t heap_page_of(uint64_t r, int k) { return ct_mix(r * 8 + (uint64_t)k) % heap_pages; }
/* what round r does to its slot (0-3 above), and to how many heap pages */
static unsigned op_of(uint64_t r) { return rewrite_only ? 0 : (unsigned)((r / SLOTS) % 4); }
static int heap_writes(void) { return rewrite_only ? 0 : HEAP_WRITES; }

static void *map_slot(void)
{
	void *m = mmap(NULL, SLOT_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	return m;
}

static void do_round(uint64_t r)
{
	int k = (int)(r % SLOTS);
	uint64_t s = round_seed(r);
	switch (op_of(r)) {
	case 0:
		ct_fill(slot[k], SLOT_SZ, s);
		break;
	case 1:
		madvise(slot[k], SLOT_SZ, MADV_DONTNEED);
		ct_fill(slot[k], SLOT_SZ / 2, s);
		break;
	case 2: {
		munmap(slot[k], SLOT_SZ);
		slot[k] = map_slot();
		ct_fill(slot[k], SLOT_SZ, s);
		break;
	}
	case 3: {
		/* to a fresh address: reserve one, move over it */
		void *to = mmap(NULL, SLOT_SZ, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (to == MAP_FAILED)
			ct_die("mmap: %s", strerror(errno));
		void *m = mremap(slot[k], SLOT_SZ, SLOT_SZ, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (m == MAP_FAILED)
			ct_die("mremap: %s", strerror(errno));
		slot[k] = m;
		ct_fill(slot[k], 4096, s ^ 1);
		break;
	}
	}
	for (int i = 0; i < heap_writes(); i++) {
		size_t pg = heap_page_of(r, i);
		ct_fill(heap + pg * 4096, 4096, s + (uint64_t)i);
	}
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		do_round(round_no);
		if (sleep_us) {
			struct timespec ts = { (time_t)(sleep_us / 1000000), (long)(sleep_us % 1000000) * 1000 };
			nanosleep(&ts, NULL);
		}
		pthread_mutex_lock(&mu);
		round_no++;
		if (park_req) {
			parked = 1;
			pthread_cond_broadcast(&cv);
			while (parked)
				pthread_cond_wait(&cv, &mu);
		}
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static long zero_check(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return (long)i;
	return -1;
}

/* The page at byte offset off of ct_fill(seed) (its pattern depends on the
 * offset). */
static bool page_is_fill(const unsigned char *pg, size_t off, uint64_t seed)
{
	for (size_t i = 0; i < 4096; i += 8) {
		uint64_t v = ct_mix(seed ^ ((off + i) * 0x100000001b3ULL));
		if (memcmp(pg + i, &v, 8))
			return false;
	}
	return true;
}

/* What a page that differs from the replay holds instead: zeros, the data
 * of an earlier round of its slot (how many of the slot's rounds back), or
 * something else. A failure then says how stale the page is. */
static void describe_page(int k, const unsigned char *pg, size_t off, uint64_t rounds, char *out, size_t cap)
{
	if (zero_check(pg, 4096) < 0) {
		snprintf(out, cap, "zeros");
		return;
	}
	if (page_is_fill(pg, off, 1000 + (uint64_t)k)) {
		snprintf(out, cap, "the data it had before round 0");
		return;
	}
	snprintf(out, cap, "unknown data");
	unsigned back = 0;
	for (uint64_t r = rounds; r-- > 0 && back < 512;) {
		if ((int)(r % SLOTS) != k)
			continue;
		back++;
		uint64_t s = round_seed(r);
		unsigned c = op_of(r);
		bool hit = c == 3 ? off == 0 && page_is_fill(pg, 0, s ^ 1)
				  : (c != 1 || off < SLOT_SZ / 2) && page_is_fill(pg, off, s);
		if (hit) {
			snprintf(out, cap, "round %llu's data (%u of the slot's rounds back)", (unsigned long long)r, back);
			return;
		}
	}
}

static void check_memory(uint64_t rounds)
{
	struct slot_model m[SLOTS];
	for (int k = 0; k < SLOTS; k++)
		m[k] = (struct slot_model){ .seed = 1000 + (uint64_t)k };
	uint64_t *last = malloc(heap_pages * sizeof(uint64_t)); /* seed of each heap page */
	if (!last) {
		ct_fail("out of memory");
		return;
	}
	for (size_t pg = 0; pg < heap_pages; pg++)
		last[pg] = heap_seed(pg);
	for (uint64_t r = 0; r < rounds; r++) {
		int k = (int)(r % SLOTS);
		uint64_t s = round_seed(r);
		switch (op_of(r)) {
		case 0:
		case 2:
			m[k] = (struct slot_model){ .seed = s };
			break;
		case 1:
			m[k] = (struct slot_model){ .seed = s, .half = true };
			break;
		case 3:
			m[k].page0 = s ^ 1;
			break;
		}
		for (int i = 0; i < heap_writes(); i++)
			last[heap_page_of(r, i)] = s + (uint64_t)i;
	}
	for (int k = 0; k < SLOTS; k++) {
		size_t fill = m[k].half ? SLOT_SZ / 2 : SLOT_SZ;
		size_t from = m[k].page0 ? 4096 : 0;
		unsigned char *want = malloc(SLOT_SZ);
		if (!want) {
			ct_fail("out of memory");
			break;
		}
		ct_fill(want, fill, m[k].seed);
		/* the pattern depends on the offset: compare against a fresh fill */
		long bad = memcmp(slot[k] + from, want + from, fill - from) ? 1 : -1;
		if (m[k].page0) {
			ct_fill(want, 4096, m[k].page0);
			if (memcmp(slot[k], want, 4096))
				bad = 1;
		}
		free(want);
		if (bad >= 0) {
			char first[200] = "", d[120];
			unsigned nbad = 0;
			for (size_t off = 0; off < SLOT_SZ; off += 4096) {
				bool ok = off == 0 && m[k].page0 ? page_is_fill(slot[k], 0, m[k].page0)
					  : off < fill	       ? page_is_fill(slot[k] + off, off, m[k].seed)
								: zero_check(slot[k] + off, 4096) < 0;
				if (!ok && nbad++ == 0) {
					describe_page(k, slot[k] + off, off, rounds, d, sizeof(d));
					snprintf(first, sizeof(first), "; the first, page %zu, holds %s", off / 4096, d);
				}
			}
			ct_fail("round %llu: slot %d (%p) differs from the replay in %u of its 256 pages%s",
				(unsigned long long)rounds, k, (void *)slot[k], nbad, first);
		}
		else if (m[k].half && zero_check(slot[k] + SLOT_SZ / 2, SLOT_SZ / 2) >= 0)
			ct_fail("round %llu: slot %d kept data after MADV_DONTNEED", (unsigned long long)rounds, k);
	}
	size_t badpages = 0;
	for (size_t pg = 0; pg < heap_pages; pg++)
		if (ct_check_fill(heap + pg * 4096, 4096, last[pg]) >= 0)
			badpages++;
	if (badpages)
		ct_fail("round %llu: %zu heap pages differ from the replay", (unsigned long long)rounds, badpages);
	free(last);
}

static void verify(void)
{
	ct_verify_begin();
	pthread_mutex_lock(&mu);
	park_req = 1;
	while (!parked)
		pthread_cond_wait(&cv, &mu);
	uint64_t rounds = round_no;
	check_memory(rounds);
	park_req = 0;
	parked = 0;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	char extra[64];
	snprintf(extra, sizeof(extra), "round=%llu", (unsigned long long)rounds);
	ct_verify_end(extra);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_churn";
	unsigned long long mib = 128;
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_churn STATUS [--mib=N] [--sleep-us=N] [--thp] [--rewrite-only] [options]\n%s",
			ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--mib", &mib) &&
		    !ct_num_arg(argv[i], "--sleep-us", &sleep_us) && !(!strcmp(argv[i], "--thp") && (thp = true)) &&
		    !(!strcmp(argv[i], "--rewrite-only") && (rewrite_only = true))) {
			fprintf(stderr, "ct_churn: unknown option %s\n", argv[i]);
			return 2;
		}
	ct_setup();
	ct.nthreads = 2;
	heap_pages = (size_t)mib << 8;
	/* --thp: the heap in transparent huge pages (2 MiB aligned, madvised),
	 * whose write tracking works per 2 MiB until a page table is split */
	size_t hlen = heap_pages * 4096, extra = thp ? 2u << 20 : 0;
	unsigned char *hm = mmap(NULL, hlen + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hm == MAP_FAILED)
		ct_die("mmap of %llu MiB: %s", mib, strerror(errno));
	heap = thp ? (unsigned char *)(((uintptr_t)hm + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1)) : hm;
	if (thp && madvise(heap, hlen, MADV_HUGEPAGE))
		ct_die("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	for (size_t pg = 0; pg < heap_pages; pg++)
		ct_fill(heap + pg * 4096, 4096, heap_seed(pg));
	for (int k = 0; k < SLOTS; k++) {
		slot[k] = map_slot();
		ct_fill(slot[k], SLOT_SZ, 1000 + (uint64_t)k);
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t th;
	if (pthread_create(&th, NULL, worker, NULL))
		ct_die("pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ct_serve(verify);
}
