/* ct_heap: single-threaded, MiB of patterned heap that looks like real data
 * (per 64 bytes: 24 pseudo-random bytes and 40 bytes of text, a function of
 * the block index and the seed, never of an address), plus a linked list of
 * small malloc blocks with holes freed between them (the brk heap and
 * malloc's own free lists), patterned .data, .bss and stack, a .bss area and
 * an 8 MiB anonymous mapping that must stay zero, and with --maps=N N
 * separate one-page mappings (writable and read-only by turns, so that the
 * kernel cannot merge them), each patterned. Verification recomputes
 * everything and exercises malloc.
 *
 *   ct_heap STATUS [--mib=N (default 100; 1024 works)] [--seed=N] [--maps=N] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>
#include <sys/resource.h>

#define CHUNK (1u << 20)
#define NODES 8192
#define ZERO_MAP (8u << 20)

struct node {
	struct node *next;
	uint64_t index;
	unsigned char payload[48];
};

static unsigned char heap_data[8192] = { 1 }; /* .data */
static unsigned char heap_bss[65536];          /* .bss, patterned */
static unsigned char heap_bss_zero[16384];     /* .bss, never written */
static unsigned char **chunks;
static size_t nchunks;
static struct node *list;
static unsigned char *zero_map;
static uint64_t seed;
static unsigned char *pages;  /* --maps: nmaps one-page mappings */
static size_t nmaps;

static const char *const words[32] = {
	"the ",    "data ",  "of ",     "process ", "restore ", "page ",   "memory ", "file ",
	"and ",    "a ",     "image ",  "kernel ",  "thread ",  "signal ", "state ",  "to ",
	"check ",  "point ", "in ",     "is ",      "tree ",    "map ",    "heap ",   "stack ",
	"offset ", "with ",  "value ",  "for ",     "each ",    "time ",   "zero ",   "load ",
};

/* Block b of the pattern: 24 random-looking bytes, then text. */
static inline void heap_block(uint64_t b, unsigned char out[64])
{
	uint64_t r0 = ct_mix(seed ^ (b * 0x9e3779b97f4a7c15ULL));
	uint64_t r1 = ct_mix(r0), r2 = ct_mix(r1);
	memcpy(out, &r0, 8);
	memcpy(out + 8, &r1, 8);
	memcpy(out + 16, &r2, 8);
	size_t pos = 24;
	uint64_t pick = r2;
	while (pos < 64) {
		const char *w = words[pick & 31];
		pick = (pick >> 5) | (pick << 59);
		for (size_t i = 0; w[i] && pos < 64; i++)
			out[pos++] = (unsigned char)w[i];
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ct_heap STATUS [--mib=N] [--seed=N] [--maps=N] [--no-spare-fds] [options]\n"
		"  --no-spare-fds    RLIMIT_NOFILE at the fds it has: no new fd can be made in it\n"
		"                    (raised only while it verifies)\n%s",
		ct_common_usage);
	exit(2);
}

/* Soft RLIMIT_NOFILE: at the lowest free fd (tight), or back at the hard
 * limit. Lowering and raising up to the hard limit needs no privilege. */
static void fd_limit(bool tight)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r))
		ct_die("getrlimit: %s", strerror(errno));
	int fd = tight ? dup(0) : -1;
	if (fd >= 0)
		close(fd);
	r.rlim_cur = tight ? (rlim_t)fd : r.rlim_max;
	if ((tight && fd < 0) || setrlimit(RLIMIT_NOFILE, &r))
		ct_die("setrlimit: %s", strerror(errno));
}

static void setup_heap(unsigned long long mib)
{
	nchunks = (size_t)mib;
	chunks = calloc(nchunks ? nchunks : 1, sizeof(*chunks));
	if (!chunks)
		ct_die("out of memory");
	unsigned char blk[64];
	for (size_t c = 0; c < nchunks; c++) {
		chunks[c] = malloc(CHUNK);
		if (!chunks[c])
			ct_die("cannot allocate %llu MiB: out of memory at chunk %zu", mib, c);
		for (size_t off = 0; off < CHUNK; off += 64) {
			heap_block(c * (CHUNK / 64) + off / 64, blk);
			memcpy(chunks[c] + off, blk, 64);
		}
	}
	/* Every other node is freed again, leaving holes on malloc's free lists. */
	struct node *tmp[NODES];
	for (size_t i = 0; i < NODES; i++) {
		tmp[i] = malloc(sizeof(struct node) + (i % 7) * 16);
		if (!tmp[i])
			ct_die("out of memory");
	}
	struct node **tail = &list;
	for (size_t i = 0; i < NODES; i++) {
		if (i % 2) {
			free(tmp[i]);
			continue;
		}
		tmp[i]->index = i;
		ct_fill(tmp[i]->payload, sizeof(tmp[i]->payload), seed ^ (i << 20));
		*tail = tmp[i];
		tail = &tmp[i]->next;
	}
	*tail = NULL;
	ct_fill(heap_data, sizeof(heap_data), seed + 2);
	ct_fill(heap_bss, sizeof(heap_bss), seed + 3);
	zero_map = mmap(NULL, ZERO_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (zero_map == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
}

static void setup_maps(void)
{
	if (!nmaps)
		return;
	pages = mmap(NULL, nmaps * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pages == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	for (size_t i = 0; i < nmaps; i++) {
		unsigned char *p = mmap(pages + i * 4096, 4096, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			ct_die("mmap: %s", strerror(errno));
		ct_fill(p, 4096, seed ^ (i << 32));
		if (i % 2 && mprotect(p, 4096, PROT_READ))
			ct_die("mprotect: %s", strerror(errno));
	}
}

static void check_zero(const unsigned char *p, size_t len, const char *what)
{
	for (size_t i = 0; i < len; i++)
		if (p[i]) {
			ct_fail("%s is not zero at offset %zu", what, i);
			return;
		}
}

static void verify_heap(const unsigned char *stack, size_t stack_len)
{
	unsigned char blk[64];
	for (size_t c = 0; c < nchunks; c++)
		for (size_t off = 0; off < CHUNK; off += 64) {
			heap_block(c * (CHUNK / 64) + off / 64, blk);
			if (memcmp(chunks[c] + off, blk, 64)) {
				size_t b = 0;
				while (chunks[c][off + b] == blk[b])
					b++;
				ct_fail("heap chunk %zu differs at offset %zu: %#x, expected %#x", c, off + b,
					chunks[c][off + b], blk[b]);
				c = nchunks;
				break;
			}
		}
	size_t count = 0;
	for (struct node *n = list; n && count <= NODES; n = n->next, count++) {
		long off;
		if (n->index != count * 2) {
			ct_fail("list node %zu has index %" PRIu64, count, n->index);
			break;
		}
		if ((off = ct_check_fill(n->payload, sizeof(n->payload), seed ^ (n->index << 20))) >= 0) {
			ct_fail("list node %zu payload differs at %ld", count, off);
			break;
		}
	}
	if (count != NODES / 2 && ct.nfail == 0)
		ct_fail("list has %zu nodes, expected %d", count, NODES / 2);
	long off;
	if ((off = ct_check_fill(heap_data, sizeof(heap_data), seed + 2)) >= 0)
		ct_fail(".data differs at offset %ld", off);
	if ((off = ct_check_fill(heap_bss, sizeof(heap_bss), seed + 3)) >= 0)
		ct_fail(".bss differs at offset %ld", off);
	if ((off = ct_check_fill(stack, stack_len, seed + 4)) >= 0)
		ct_fail("stack differs at offset %ld", off);
	for (size_t i = 0; i < nmaps; i++)
		if ((off = ct_check_fill(pages + i * 4096, 4096, seed ^ (i << 32))) >= 0) {
			ct_fail("one-page mapping %zu differs at offset %ld", i, off);
			break;
		}
	check_zero(heap_bss_zero, sizeof(heap_bss_zero), "untouched .bss");
	check_zero(zero_map, ZERO_MAP, "untouched mapping");
	/* malloc's free lists must still be consistent: use them. */
	void *p[64];
	for (int i = 0; i < 64; i++)
		p[i] = malloc(16 + (size_t)i * 24);
	for (int i = 0; i < 64; i++) {
		if (!p[i])
			ct_fail("malloc failed");
		free(p[i]);
	}
}

int main(int argc, char **argv)
{
	ct.prog = "ct_heap";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long mib = 100, s = 1, nm = 0;
	bool tight = false;
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--no-spare-fds"))
			tight = true;
		else if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--mib", &mib) &&
			 !ct_num_arg(argv[i], "--seed", &s) && !ct_num_arg(argv[i], "--maps", &nm))
			usage();
	seed = s;
	nmaps = (size_t)nm;
	ct_setup();

	unsigned char stack[16384];
	ct_fill(stack, sizeof(stack), seed + 4);
	setup_heap(mib);
	setup_maps();
	if (nchunks)
		ct_info("chunk0 %p %u", (void *)chunks[0], CHUNK);
	ct_info("node0 %p %zu", (void *)list, sizeof(*list));
	ct_info("data %p %zu", (void *)heap_data, sizeof(heap_data));
	ct_info("bss %p %zu", (void *)heap_bss, sizeof(heap_bss));
	ct_info("bss_zero %p %zu", (void *)heap_bss_zero, sizeof(heap_bss_zero));
	ct_info("zero_map %p %u", (void *)zero_map, ZERO_MAP);
	ct_info("stack %p %zu", (void *)stack, sizeof(stack));
	ct_ready();
	if (tight)
		fd_limit(true);

	for (;;) {
		enum ct_event ev = ct_wait();
		if (tight)
			fd_limit(false);
		ct_verify_begin();
		verify_heap(stack, sizeof(stack));
		bool ok = ct_verify_end(NULL);
		if (tight)
			fd_limit(true);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
