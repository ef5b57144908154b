/* ct_idle: the checkpoint-target protocol with minimal state, for restore
 * chains and benchmarks. Checks a small static buffer, a stack buffer and the
 * process-wide state (see ct_proto.h and README.md).
 *
 *   ct_idle STATUS [--seed=N] [common options]
 */
#include "ct_proto.h"

static unsigned char idle_static[4096] = { 1 }; /* .data */

static void usage(void)
{
	fprintf(stderr, "usage: ct_idle STATUS [--seed=N] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_idle";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	unsigned long long seed = 1;
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i]) && !ct_num_arg(argv[i], "--seed", &seed))
			usage();
	ct_setup();

	unsigned char stack[256];
	ct_fill(idle_static, sizeof(idle_static), seed);
	ct_fill(stack, sizeof(stack), seed + 1);
	ct_info("static %p %zu", (void *)idle_static, sizeof(idle_static));
	ct_info("stack %p %zu", (void *)stack, sizeof(stack));
	ct_ready();

	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		long off;
		if ((off = ct_check_fill(idle_static, sizeof(idle_static), seed)) >= 0)
			ct_fail("static buffer differs at offset %ld", off);
		if ((off = ct_check_fill(stack, sizeof(stack), seed + 1)) >= 0)
			ct_fail("stack buffer differs at offset %ld", off);
		bool ok = ct_verify_end(NULL);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
	}
}
