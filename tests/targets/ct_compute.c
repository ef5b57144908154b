/* ct_compute: a deterministic computation that takes a while, to show that a
 * process checkpointed many times (e.g. with --leave-running) computes what
 * an untouched run computes. Each step draws from an LCG, scrambles one word
 * of a table (MiB in size) and keeps a running sum of the table; every 65536
 * steps a Game of Life generation runs on a 256x256 torus. At the end it
 * writes "result <16 hex digits>" and exits 0. Nothing depends on time.
 *
 * A verification (SIGUSR2) runs between two blocks of 4096 steps and checks
 * the invariants: the generator state equals the LCG jumped ahead by the step
 * count, the running sum equals the table's sum, the live-cell count and the
 * generation count match. SIGTERM verifies and exits without a result.
 *
 *   ct_compute STATUS [--iterations=N (default 100000000, about 3 s here)]
 *                     [--mib=N (table size, default 4)] [--seed=N] [common options]
 */
#include "ct_proto.h"

#define GRID 256
#define BLOCK 4096
#define LIFE_EVERY 65536

static const uint64_t LCG_A = 6364136223846793005ULL, LCG_C = 1442695040888963407ULL;

static uint64_t *table;
static size_t table_len;
static unsigned char grid[GRID * GRID], next_grid[GRID * GRID];
static uint64_t x, sum, gens, pop, seed;

static uint64_t lcg_skip(uint64_t v, uint64_t n)
{
	uint64_t a = LCG_A, c = LCG_C, am = 1, cm = 0;
	while (n) {
		if (n & 1) {
			am *= a;
			cm = cm * a + c;
		}
		c *= a + 1;
		a *= a;
		n >>= 1;
	}
	return am * v + cm;
}

static void life_step(void)
{
	uint64_t live = 0;
	for (int r = 0; r < GRID; r++)
		for (int c = 0; c < GRID; c++) {
			int n = 0;
			for (int dr = -1; dr <= 1; dr++)
				for (int dc = -1; dc <= 1; dc++)
					if (dr || dc)
						n += grid[((r + dr + GRID) % GRID) * GRID + (c + dc + GRID) % GRID];
			unsigned char alive = grid[r * GRID + c];
			unsigned char v = (unsigned char)(n == 3 || (alive && n == 2));
			next_grid[r * GRID + c] = v;
			live += v;
		}
	memcpy(grid, next_grid, sizeof(grid));
	pop = live;
	gens++;
}

static void verify_compute(uint64_t done)
{
	if (x != lcg_skip(seed, done))
		ct_fail("generator state lost after %" PRIu64 " steps", done);
	uint64_t s = 0;
	for (size_t i = 0; i < table_len; i++)
		s += table[i];
	if (s != sum)
		ct_fail("table sums to %#" PRIx64 ", running sum is %#" PRIx64, s, sum);
	uint64_t live = 0;
	for (size_t i = 0; i < sizeof(grid); i++) {
		if (grid[i] > 1) {
			ct_fail("grid cell %zu holds %u", i, grid[i]);
			break;
		}
		live += grid[i];
	}
	if (live != pop)
		ct_fail("grid has %" PRIu64 " live cells, expected %" PRIu64, live, pop);
	if (gens != done / LIFE_EVERY)
		ct_fail("%" PRIu64 " generations after %" PRIu64 " steps", gens, done);
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_compute STATUS [--iterations=N] [--mib=N] [--seed=N] [options]\n%s",
		ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_compute";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long iters = 100000000ULL, mib = 4, s = 1;
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--iterations", &iters) &&
		    !ct_num_arg(argv[i], "--mib", &mib) && !ct_num_arg(argv[i], "--seed", &s))
			usage();
	if (mib == 0)
		usage();
	seed = s;
	ct_setup();

	table_len = (size_t)mib * (1u << 20) / sizeof(uint64_t);
	table = malloc(table_len * sizeof(uint64_t));
	if (!table)
		ct_die("cannot allocate %llu MiB", mib);
	for (size_t i = 0; i < table_len; i++) {
		table[i] = ct_mix(seed ^ i);
		sum += table[i];
	}
	for (size_t i = 0; i < sizeof(grid); i++) {
		grid[i] = (unsigned char)(ct_mix(seed ^ (i << 24)) % 3 == 0);
		pop += grid[i];
	}
	x = seed;
	ct_info("table %p %zu", (void *)table, table_len * sizeof(uint64_t));
	ct_info("grid %p %zu", (void *)grid, sizeof(grid));
	ct_ready();

	uint64_t i = 0;
	while (i < iters) {
		uint64_t end = i + BLOCK < iters ? i + BLOCK : iters;
		for (; i < end; i++) {
			x = x * LCG_A + LCG_C;
			size_t j = (size_t)((x >> 24) % table_len);
			uint64_t old = table[j], v = old ^ x;
			v = ((v << 17) | (v >> 47)) * 0x2545f4914f6cdd1dULL + i;
			table[j] = v;
			sum += v - old;
			if ((i + 1) % LIFE_EVERY == 0)
				life_step();
		}
		enum ct_event ev = ct_pending();
		if (ev == CT_EV_NONE)
			continue;
		ct_verify_begin();
		verify_compute(i);
		char extra[64];
		snprintf(extra, sizeof(extra), "step=%" PRIu64, i);
		bool ok = ct_verify_end(extra);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
	uint64_t h = ct_mix(x ^ sum) ^ ct_mix(gens ^ (pop << 32));
	for (size_t k = 0; k < table_len; k++)
		h = ct_mix(h ^ table[k]);
	for (size_t k = 0; k < sizeof(grid); k += 8) {
		uint64_t w;
		memcpy(&w, grid + k, 8);
		h = ct_mix(h ^ w);
	}
	ct_line("result %016" PRIx64, h);
	return 0;
}
