/* Injection into every thread of the 8-thread target (computing, futex,
 * nanosleep, read): gettid must return each thread's own id, registers
 * come back exactly, and afterwards no thread has seen an EINTR or a wrong
 * result (the target checks itself). Repeated to catch restart bugs. */
#include "ptrace/inject.h"
#include "ptrace/ptrace.h"
#include "test_ptrace_util.h"

#include <sys/syscall.h>

int main(void)
{
	pt_child c;
	char line[256];
	fp_error err;
	fp_error_clear(&err);
	if (pt_spawn(&c, "pt_threads", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "ready"));

	int rounds = 50, good = 0;
	for (int i = 0; i < rounds; i++) {
		fp_pt_proc p;
		if (fp_pt_seize(&p, c.pid, 5000, &err)) {
			CHECKF(0, "seize: %s", err.msg);
			break;
		}
		fp_inject ij;
		int ok = fp_inject_init(&ij, &p, &err) == 0;
		CHECKF(ok, "%s", err.msg);
		for (size_t k = 0; ok && k < p.nthreads; k++) {
			pid_t tid = p.threads[k].tid;
			struct user_regs_struct a, b;
			int64_t ret = 0;
			ok = fp_pt_get_regs(tid, &a, &err) == 0 &&
			     fp_inject_syscall(&ij, tid, SYS_gettid, NULL, &ret, &err) == 0 && ret == tid &&
			     fp_pt_get_regs(tid, &b, &err) == 0 && !memcmp(&a, &b, sizeof(a));
			CHECKF(ok, "round %d thread %d: ret %lld: %s", i, tid, (long long)ret, err.msg);
		}
		/* Scratch memory in one thread, too. */
		uint64_t brk;
		ok = ok && fp_inject_brk(&ij, p.threads[p.nthreads - 1].tid, &brk, &err) == 0;
		stack_t ss;
		ok = ok && fp_inject_sigaltstack(&ij, p.threads[1].tid, &ss, &err) == 0;
		ok = ok && fp_inject_fini(&ij, &err) == 0;
		ok = fp_pt_detach(&p, &err) == 0 && ok;
		CHECKF(ok, "round %d: %s", i, err.msg);
		good += ok;
	}
	CHECK(good == rounds);
	CHECK(pt_send(&c, "q") == 0);
	CHECKF(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ok ", 3), "target said '%s'", line);
	printf("target: %s\n", line);
	CHECK(pt_finish(&c, 10000) == 0);
	return fp_test_done();
}
