/* dump_forkcases: memory a fork does not copy as it is, for the dumper's
 * frozen-copy path: an area with MADV_WIPEONFORK (empty in a fork), one with
 * MADV_DONTFORK (absent from a fork), an mlock'ed one (a fork is not
 * locked) and a plain one, each patterned and checked at every verification.
 *
 *   dump_forkcases STATUS [--seed=N] [common options]
 */
#include "ct_proto.h"

#include <sys/mman.h>

#define AREA (256u << 10)

static void usage(void)
{
	fprintf(stderr, "usage: dump_forkcases STATUS [--seed=N] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "dump_forkcases";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long seed = 7;
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--seed", &seed))
			usage();
	ct_setup();

	static const char *const names[4] = { "plain", "wipeonfork", "dontfork", "locked" };
	static const int advice[4] = { 0, MADV_WIPEONFORK, MADV_DONTFORK, 0 };
	unsigned char *area[4];
	for (int i = 0; i < 4; i++) {
		/* a guard page between areas keeps them from merging */
		unsigned char *m = mmap(NULL, AREA + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			ct_die("mmap: %s", strerror(errno));
		mprotect(m + AREA, 4096, PROT_NONE);
		area[i] = m;
		if (advice[i] && madvise(m, AREA, advice[i]))
			ct_die("madvise %s: %s", names[i], strerror(errno));
		if (i == 3 && mlock(m, AREA))
			ct_die("mlock: %s", strerror(errno));
		ct_fill(m, AREA, seed + (unsigned long long)i);
		ct_info("%s %p %u", names[i], (void *)m, AREA);
	}
	ct_ready();

	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		for (int i = 0; i < 4; i++) {
			long off = ct_check_fill(area[i], AREA, seed + (unsigned long long)i);
			if (off >= 0)
				ct_fail("%s area differs at offset %ld", names[i], off);
		}
		bool ok = ct_verify_end(NULL);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
