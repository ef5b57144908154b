/* ct_remerge: memory that the kernel silently takes out of write tracking.
 *
 * Setup: R, one anonymous mapping of 3 MiB (one anon_vma); MiB i holds the
 * pattern of (i, 0). Each verification N checks R, then does step N:
 *
 *   odd N:  mremap R's MiB 0 to a fresh address (its pages move with it),
 *           then rewrite MiB 2 with the pattern of step N;
 *   even N: mremap it back onto R's start (MREMAP_FIXED into the hole it
 *           left), then rewrite MiB 1 and 2 with the pattern of step N.
 *
 * Moved back, MiB 0 merges with MiB 1-2 (the same anon_vma, contiguous
 * offsets). When a userfaultfd without UFFD_FEATURE_EVENT_REMAP has the
 * moved mapping registered (forkpoint's write tracking, which registers
 * the moved MiB as a new mapping at the snapshot between the two steps),
 * the kernel drops the registration of the merged mapping, MiB 1-2's
 * included, and their pages keep their protection bits: the rewrite of
 * step N clears none of them (helper/dump/track_lost.c). A snapshot or a
 * rollback that believed the bits would keep MiB 1-2 of an earlier step;
 * one that registered them again as they are would miss the next odd
 * step's rewrite of MiB 2 (a written page left writable with its bit on).
 * "verify N ok pid=P steps=S".
 *
 *   ct_remerge STATUS [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>

#define MIB (1u << 20)

static unsigned char *r;    /* R */
static unsigned char *part; /* where MiB 0 is: r, or away */
static unsigned steps;

static uint64_t seed(unsigned mib, unsigned step) { return ct_mix((uint64_t)step << 8 | mib) | 1; }

/* the step whose pattern MiB i holds */
static unsigned written_at(unsigned i) { return i == 2 ? steps : steps & ~1u; }

static void step(void)
{
	steps++;
	if (steps % 2) {
		void *to = mmap(NULL, MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (to == MAP_FAILED)
			ct_die("mmap: %s", strerror(errno));
		void *m = mremap(r, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (m == MAP_FAILED)
			ct_die("mremap away: %s", strerror(errno));
		part = m;
		ct_fill(r + 2 * (size_t)MIB, MIB, seed(2, steps));
		return;
	}
	void *m = mremap(part, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED, r);
	if (m == MAP_FAILED)
		ct_die("mremap back: %s", strerror(errno));
	part = r;
	for (unsigned i = 1; i < 3; i++)
		ct_fill(r + (size_t)i * MIB, MIB, seed(i, steps));
}

static void check(void)
{
	long off = ct_check_fill(part, MIB, seed(0, 0));
	if (off >= 0)
		ct_fail("MiB 0 (at %p) differs at offset %ld", (void *)part, off);
	for (unsigned i = 1; i < 3; i++) {
		unsigned s = written_at(i);
		off = ct_check_fill(r + (size_t)i * MIB, MIB, seed(i, s));
		if (off < 0)
			continue;
		/* which step's pattern it holds instead, if any */
		int had = -1;
		size_t at = (size_t)off / 4096 * 4096;
		unsigned char *full = malloc(at + 4096);
		/* (a rollback's target may hold a later step's pattern) */
		for (unsigned t = 0; full && t <= steps + 16 && had < 0; t++) {
			ct_fill(full, at + 4096, seed(i, t));
			if (!memcmp(full + at, r + (size_t)i * MIB + at, 4096))
				had = (int)t;
		}
		free(full);
		if (had >= 0)
			ct_fail("MiB %u differs at offset %ld from step %u's pattern: it holds step %d's", i, off, s, had);
		else
			ct_fail("MiB %u differs at offset %ld from step %u's pattern: it holds no step's", i, off, s);
	}
}

int main(int argc, char **argv)
{
	ct.prog = "ct_remerge";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_remerge STATUS [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "ct_remerge: unknown option %s\n", argv[i]);
			return 2;
		}
	ct_setup();
	r = mmap(NULL, 3 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	for (unsigned i = 0; i < 3; i++)
		ct_fill(r + (size_t)i * MIB, MIB, seed(i, 0));
	part = r;
	ct_info("r %lx", (unsigned long)(uintptr_t)r);
	ct_ready();
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		check();
		if (!ct.nfail && ev != CT_EV_TERM)
			step();
		char extra[64];
		snprintf(extra, sizeof(extra), "steps=%u", steps);
		bool ok = ct_verify_end(extra);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
