/* The table stays equal to /proc when threads change the same fd numbers at
 * once: dup3/dup2 onto them, close, F_SETFD, FIOCLEX, and dup and
 * F_DUPFD from them (shim_exercise "collide"). The kernel applies such calls
 * in some order, and each wrapper records after its call returns: unless a
 * wrapper holds the number across its call, two threads record in the other
 * order than the kernel applied, and the table keeps the wrong file (the CI
 * run at 5be3ff9 saw it in test_shim_stress: "fd 1183 is a reg, the table
 * says pipe"). */
#include "test_shim_common.h"

int main(void)
{
	struct tgt t;
	char line[512];
	const char *calls = getenv("FP_SHIM_COLLIDE_CALLS");
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "collide %s 4", calls ? calls : "2000");
	CHECK(tgt_start(&t) == 0);
	CHECK(tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0);
	CHECK(!strncmp(line, "ready", 5));

	/* many short rounds: a slot recorded in the wrong order is usually
	 * put right by a later call, so what is checked is many end states */
	int rounds = 400, ok = 1, bad_rounds = 0;
	for (int r = 0; r < rounds && ok; r++) {
		uint64_t t0 = tgt_now_ms();
		CHECK(tgt_send(&t, cmd) == 0);
		ok = tgt_line(&t, line, sizeof(line), 300000) == 0 && !strcmp(line, "ok");
		CHECKF(ok, "round %d: no \"ok\" from the collide run (got \"%s\")", r, line);
		if (!ok)
			break;
		if (r == 0)
			printf("collide: %s in %llu ms\n", cmd, (unsigned long long)(tgt_now_ms() - t0));
		char what[32];
		snprintf(what, sizeof(what), "collide, round %d", r);
		if (shim_disagreements(t.pid, what))
			bad_rounds++;
	}
	CHECKF(bad_rounds == 0, "%d of %d rounds ended with the table not agreeing with /proc", bad_rounds, rounds);
	if (ok) {
		CHECK(tgt_cmd(&t, "collide 0 4", NULL, 0) == 0);
		int n = shim_disagreements(t.pid, "collide, cleaned up");
		CHECKF(n == 0, "after cleanup: %d disagreements", n);
	}
	CHECK(tgt_finish(&t, ok) == 0);
	return fp_test_done();
}
