/* The table stays equal to /proc under a stress run: 100,000 wrapped calls
 * (open, dup, fcntl, pipe2, socketpair, eventfd, close, mmap, partial munmap,
 * mprotect, mremap, pthread_create/join, fork, dup3) over 8 threads. Checked
 * half way, while every worker waits on a pipe, and at the end. */
#include "test_shim_common.h"

int main(void)
{
	struct tgt t;
	char line[512];
	const char *calls = getenv("FP_SHIM_STRESS_CALLS");
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "stress %s 8", calls ? calls : "100000");
	CHECK(tgt_start(&t) == 0);
	CHECK(tgt_line(&t, line, sizeof(line), TGT_TIMEOUT_MS) == 0);
	CHECK(!strncmp(line, "ready", 5));

	uint64_t t0 = tgt_now_ms();
	CHECK(tgt_send(&t, cmd) == 0);
	/* generous: under ASan and on two CPUs the run takes a while */
	int got_mid = tgt_line(&t, line, sizeof(line), 300000) == 0 && !strcmp(line, "mid");
	CHECKF(got_mid, "no \"mid\" from the stress run (got \"%s\")", line);
	if (got_mid) {
		int n = shim_disagreements(t.pid, "stress, half way");
		CHECKF(n == 0, "half way: %d disagreements", n);
		CHECK(tgt_send(&t, "cont") == 0);
		CHECK(tgt_line(&t, line, sizeof(line), 300000) == 0 && !strcmp(line, "ok"));
		printf("stress: %s in %llu ms\n", cmd, (unsigned long long)(tgt_now_ms() - t0));
		n = shim_disagreements(t.pid, "stress, end");
		CHECKF(n == 0, "at the end: %d disagreements", n);
		struct fp_shim_copy c;
		if (read_table(t.pid, &c) == 0) {
			printf("table: %llu wrapped calls, %llu resyncs, %u fds (hwm), %u maps, "
			       "%u threads, overflows %u/%u/%u\n",
			       (unsigned long long)c.t->calls, (unsigned long long)c.t->resyncs,
			       c.t->fd_hwm, c.t->map_count, c.t->thread_count, c.t->fd_overflow,
			       c.t->map_overflow, c.t->thread_overflow);
			CHECK(c.t->calls >= 50000);
			fp_shim_copy_free(&c);
		}
		CHECK(tgt_cmd(&t, "cleanup", NULL, 0) == 0);
		n = shim_disagreements(t.pid, "stress, cleaned up");
		CHECKF(n == 0, "after cleanup: %d disagreements", n);
	}
	CHECK(tgt_finish(&t, got_mid) == 0);
	return fp_test_done();
}
