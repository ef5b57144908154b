/* ct_grow: a target whose memory changes by a known amount at each
 * verification, for incremental snapshots (only what changed is written).
 *
 * Setup: a heap of --mib MiB (default 16) of patterned pages, and two 1 MiB
 * mappings X and Y. Each verification N first checks everything, then:
 *
 *   - rewrites --write-pages=K pages of the heap (pages (N-1)*K .. N*K-1,
 *     with a pattern of N and the page; the heap must not wrap around);
 *   - with --grow:
 *       N == 1: munmap Y and mremap X onto Y's old address (MREMAP_FIXED):
 *               X's content now sits where Y's was, a page an incremental
 *               snapshot must not take from its parent;
 *       N > 1:  mremap X 1 MiB longer (it may move) and fill the new MiB;
 *       every N: mmap a new 1 MiB region and fill it; grow the brk heap by
 *               256 KiB (sbrk) and fill that.
 *     and reports each new range as "info grown KIND ADDR LEN" (hex).
 *
 *   - with --drop: in an area of 8 blocks of 2 MiB (2 MiB-aligned, no
 *     huge pages; blocks 0-3 filled at setup, 4-7 never touched), drops a
 *     whole block with MADV_DONTNEED (the kernel frees its page table),
 *     drops three single pages of another, writes two pages of a third
 *     (fresh pages where nothing was) and reads two of a fourth (the
 *     shared zero page where nothing was): the pages whose presence
 *     changes without a write to them.
 *
 * All patterns are functions of the verification number, so a process
 * restored from a snapshot taken after verification N checks exactly the
 * state of verification N. "verify N ok pid=P pages=K".
 *
 *   ct_grow STATUS [--mib=N] [--write-pages=K] [--grow] [--drop] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>

#define PAGE 4096u
#define MIB (1u << 20)
#define MAXR 512

struct region {
	unsigned char *p;
	size_t len;
	uint64_t seed;
};

static unsigned char *heap;
static size_t heap_pages;
static unsigned long long write_pages;
static bool grow;
static struct region reg[MAXR]; /* regions mapped by steps */
static size_t nreg;
static unsigned char *y_addr;
static unsigned steps; /* growth steps done */

#define BLOCK (2u * MIB)
#define DROP_BLOCKS 8u
#define DROP_PAGES (DROP_BLOCKS * BLOCK / PAGE)
#define BLOCK_PAGES (BLOCK / PAGE)
static bool drop_on;
static unsigned char *drop;
static uint64_t drop_seed[DROP_PAGES]; /* each page's pattern, 0: zeros */

static uint64_t page_seed(unsigned step, size_t i) { return ct_mix((uint64_t)step << 32 | i); }

static void heap_page_check(size_t i)
{
	size_t k = (size_t)write_pages;
	unsigned step = k && i < (size_t)steps * k ? (unsigned)(i / k) + 1 : 0;
	long off = ct_check_fill(heap + i * PAGE, PAGE, page_seed(step, i));
	if (off >= 0)
		ct_fail("heap page %zu (written at step %u) differs at offset %ld", i, step, off);
}

static void add_region(unsigned char *p, size_t len, uint64_t seed, const char *kind)
{
	if (nreg == MAXR)
		ct_die("too many regions");
	ct_fill(p, len, seed);
	reg[nreg++] = (struct region){ p, len, seed };
	ct_info("grown %s %lx %zx", kind, (unsigned long)(uintptr_t)p, len);
}

static unsigned char *map(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	return m;
}

/* X: one mapping of 1 + steps MiB (it grows by mremap and may move); MiB 0
 * has X's setup pattern, MiB s the pattern of step s. */
static unsigned char *x_addr;
static uint64_t x_seed(unsigned s) { return s ? ct_mix(s) | 1 : 0x1111; }

static unsigned char *drop_page(unsigned block, size_t k) { return drop + (size_t)block * BLOCK + k * PAGE; }

static void drop_setup(void)
{
	unsigned char *m = map(DROP_BLOCKS * BLOCK + BLOCK);
	drop = (unsigned char *)(((uintptr_t)m + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1));
	if (madvise(drop, DROP_BLOCKS * BLOCK, MADV_NOHUGEPAGE))
		ct_die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	for (size_t i = 0; i < DROP_PAGES / 2; i++) {
		drop_seed[i] = ct_mix(0xd00000 + i) | 1;
		ct_fill(drop + i * PAGE, PAGE, drop_seed[i]);
	}
	ct_info("drop %lx %x", (unsigned long)(uintptr_t)drop, DROP_BLOCKS * BLOCK);
}

static void drop_step(unsigned n)
{
	unsigned whole = n % DROP_BLOCKS;
	if (madvise(drop_page(whole, 0), BLOCK, MADV_DONTNEED))
		ct_die("madvise(MADV_DONTNEED): %s", strerror(errno));
	memset(drop_seed + (size_t)whole * BLOCK_PAGES, 0, BLOCK_PAGES * sizeof(*drop_seed));
	unsigned b = (n + 3) % DROP_BLOCKS;
	for (size_t j = 0; j < 3; j++) {
		size_t k = (n * 37 + j * 101) % BLOCK_PAGES;
		if (madvise(drop_page(b, k), PAGE, MADV_DONTNEED))
			ct_die("madvise(MADV_DONTNEED): %s", strerror(errno));
		drop_seed[(size_t)b * BLOCK_PAGES + k] = 0;
	}
	b = (n * 3 + 1) % DROP_BLOCKS;
	for (size_t j = 0; j < 2; j++) {
		size_t k = (n * 53 + j * 211) % BLOCK_PAGES, i = (size_t)b * BLOCK_PAGES + k;
		drop_seed[i] = ct_mix((uint64_t)n << 20 | i) | 1;
		ct_fill(drop_page(b, k), PAGE, drop_seed[i]);
	}
	b = (n * 5 + 2) % DROP_BLOCKS;
	for (size_t j = 0; j < 2; j++)
		(void)*(volatile unsigned char *)drop_page(b, (n * 29 + j * 157) % BLOCK_PAGES);
}

static void drop_check(void)
{
	static const unsigned char zero[PAGE];
	for (size_t i = 0; i < DROP_PAGES; i++) {
		const unsigned char *pg = drop + i * PAGE;
		long off = drop_seed[i] ? ct_check_fill(pg, PAGE, drop_seed[i]) : memcmp(pg, zero, PAGE) ? 0 : -1;
		if (off >= 0)
			ct_fail("drop area page %zu (block %zu) differs at offset %ld: it should hold %s", i, i / BLOCK_PAGES,
				off, drop_seed[i] ? "its pattern" : "zeros");
	}
}

static void step(void)
{
	steps++;
	if (drop_on)
		drop_step(steps);
	size_t k = (size_t)write_pages;
	if ((size_t)steps * k > heap_pages)
		ct_die("the heap of %zu pages is too small for step %u", heap_pages, steps);
	for (size_t i = (size_t)(steps - 1) * k; i < (size_t)steps * k; i++)
		ct_fill(heap + i * PAGE, PAGE, page_seed(steps, i));
	if (!grow)
		return;
	if (steps == 1) {
		/* X onto Y's address: content moved, not written; it stays there
		 * until the next step */
		munmap(y_addr, MIB);
		void *m = mremap(x_addr, MIB, MIB, MREMAP_MAYMOVE | MREMAP_FIXED, y_addr);
		if (m == MAP_FAILED)
			ct_die("mremap onto Y: %s", strerror(errno));
		x_addr = m;
		ct_info("grown moved %lx %x", (unsigned long)(uintptr_t)m, MIB);
	} else {
		size_t len = (size_t)(steps - 1) * MIB; /* X before this step */
		void *m = mremap(x_addr, len, len + MIB, MREMAP_MAYMOVE);
		if (m == MAP_FAILED)
			ct_die("mremap: %s", strerror(errno));
		x_addr = m;
		ct_fill(x_addr + len, MIB, x_seed(steps - 1));
		ct_info("grown mremap %lx %zx", (unsigned long)(uintptr_t)m, len + MIB);
	}
	add_region(map(MIB), MIB, ct_mix(steps + 1000), "mmap");
	void *b = sbrk(256 * 1024);
	if (b == (void *)-1)
		ct_die("sbrk: %s", strerror(errno));
	add_region(b, 256 * 1024, ct_mix(steps + 2000), "brk");
}

static void check_x(void)
{
	for (unsigned s = 0; s <= (grow && steps > 1 ? steps - 1 : 0); s++) {
		long off = ct_check_fill(x_addr + (size_t)s * MIB, MIB, x_seed(s));
		if (off >= 0)
			ct_fail("X (at %p) MiB %u differs at offset %ld", (void *)x_addr, s, off);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_grow STATUS [--mib=N] [--write-pages=K] [--grow] [--drop] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_grow";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long mib = 16;
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--grow"))
			grow = true;
		else if (!strcmp(argv[i], "--drop"))
			drop_on = true;
		else if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--mib", &mib) &&
			 !ct_num_arg(argv[i], "--write-pages", &write_pages))
			usage();
	ct_setup();
	heap_pages = (size_t)mib * (MIB / PAGE);
	heap = map(heap_pages * PAGE);
	for (size_t i = 0; i < heap_pages; i++)
		ct_fill(heap + i * PAGE, PAGE, page_seed(0, i));
	x_addr = map(MIB);
	ct_fill(x_addr, MIB, x_seed(0));
	y_addr = map(MIB);
	ct_fill(y_addr, MIB, 0x2222);
	ct_info("heap %lx %zx", (unsigned long)(uintptr_t)heap, heap_pages * PAGE);
	if (drop_on)
		drop_setup();
	ct_ready();

	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		for (size_t i = 0; i < heap_pages; i++)
			heap_page_check(i);
		check_x();
		if (drop_on)
			drop_check();
		for (size_t i = 0; i < nreg; i++) {
			long off = ct_check_fill(reg[i].p, reg[i].len, reg[i].seed);
			if (off >= 0)
				ct_fail("region %zu at %p (%zu bytes) differs at offset %ld", i, (void *)reg[i].p, reg[i].len, off);
		}
		if (grow && steps == 0) {
			long off = ct_check_fill(y_addr, MIB, 0x2222);
			if (off >= 0)
				ct_fail("Y differs at offset %ld", off);
		}
		if (!ct.nfail && ev != CT_EV_TERM)
			step();
		char extra[64];
		snprintf(extra, sizeof(extra), "steps=%u", steps);
		bool ok = ct_verify_end(extra);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
