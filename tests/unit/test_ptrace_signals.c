/* No signal is lost, and signal state reads right:
 *  - a signal sent while the target is seized, which the kernel tries to
 *    deliver while we run code in it (held), is delivered after detach;
 *  - signals racing with the seize itself are each delivered exactly once;
 *  - blocked pending signals show in PTRACE_PEEKSIGINFO (private and shared
 *    queues) and the blocked mask; rseq and robust list are readable. */
#include "ptrace/inject.h"
#include "ptrace/ptrace.h"
#include "test_ptrace_util.h"

#include <sys/syscall.h>

#define RACES 200

/* Polls /proc/PID/stat until the state letter is want (10 s deadline). */
static int wait_state(pid_t pid, char want)
{
	double end = pt_now_us() + 10e6;
	char path[64], b[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	while (pt_now_us() < end) {
		FILE *f = fopen(path, "r");
		if (!f)
			return 0;
		size_t n = fread(b, 1, sizeof(b) - 1, f);
		fclose(f);
		b[n] = '\0';
		char *q = strrchr(b, ')');
		if (q && q[2] == want)
			return 1;
	}
	return 0;
}

int main(void)
{
	pt_child c;
	char line[512];
	fp_error err;
	fp_error_clear(&err);
	if (pt_spawn(&c, "pt_reader", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ready", 5));

	/* 1. Deterministic: SIGUSR1 pending while stopped; injection makes the
	 * kernel try to deliver it; we hold it; detach delivers it. */
	fp_pt_proc p;
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	kill(c.pid, SIGUSR1);
	fp_inject ij;
	int64_t ret;
	CHECK(fp_inject_init(&ij, &p, &err) == 0);
	CHECK(fp_inject_syscall(&ij, c.pid, SYS_getpid, NULL, &ret, &err) == 0 && ret == c.pid);
	fp_pt_thread *t = fp_pt_find(&p, c.pid);
	CHECKF(t && t->nheld == 1 && t->held[0].si_signo == SIGUSR1 && t->held[0].si_code == SI_USER &&
		       t->held[0].si_pid == getpid(),
	       "held %d", t ? t->nheld : -1);
	siginfo_t *sv = NULL;
	size_t n = 0;
	CHECK(fp_pt_peek_signals(c.pid, t, false, &sv, &n, &err) == 0 && n == 1 && sv[0].si_signo == SIGUSR1);
	free(sv);
	CHECK(fp_inject_fini(&ij, &err) == 0);
	CHECK(fp_pt_detach(&p, &err) == 0);
	CHECKF(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "sig"), "target said '%s'", line);
	/* SA_RESTART: its read goes on. */
	CHECK(pt_send(&c, "a\n") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "got a"));

	/* 2. Races: a signal sent right before each seize, delivered once. */
	int delivered = 0, seized = 0;
	for (int i = 0; i < RACES; i++) {
		kill(c.pid, SIGUSR1);
		if (fp_pt_seize(&p, c.pid, 5000, &err) == 0) {
			seized++;
			fp_pt_detach(&p, &err);
		}
		if (pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "sig"))
			delivered++;
		else
			break;
	}
	CHECKF(seized == RACES && delivered == RACES, "seized %d delivered %d of %d", seized, delivered, RACES);
	CHECK(pt_send(&c, "b\n") == 0);
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "got b"));
	CHECK(pt_finish(&c, 10000) == 0);

	/* 3. A stopped (SIGSTOP) process stays stopped after seize + injection
	 * + detach, and continues normally on SIGCONT. */
	if (pt_spawn(&c, "pt_reader", NULL))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ready", 5));
	kill(c.pid, SIGSTOP);
	CHECK(wait_state(c.pid, 'T'));
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	t = fp_pt_find(&p, c.pid);
	CHECK(t && t->group_stop);
	CHECK(fp_inject_init(&ij, &p, &err) == 0);
	CHECKF(fp_inject_syscall(&ij, c.pid, SYS_getpid, NULL, &ret, &err) == 0 && ret == c.pid, "ret %lld: %s", (long long)ret, err.msg);
	CHECK(fp_inject_fini(&ij, &err) == 0);
	CHECK(fp_pt_resume(&p, &err) == 0); /* LISTEN: still stopped */
	CHECKF(fp_pt_interrupt(&p, 5000, &err) == 0, "%s", err.msg);
	CHECKF(fp_pt_detach(&p, &err) == 0, "%s", err.msg);
	CHECK(wait_state(c.pid, 'T'));
	kill(c.pid, SIGCONT);
	CHECK(pt_send(&c, "c\n") == 0);
	CHECKF(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "got c"), "target said '%s'", line);
	CHECK(pt_finish(&c, 10000) == 0);

	/* 4. Blocked pending signals, mask, rseq, robust list. */
	if (pt_spawn(&c, "pt_reader", "block"))
		SKIP("cannot spawn");
	CHECK(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strncmp(line, "ready", 5));
	union sigval v1 = { .sival_int = 42 }, v2 = { .sival_int = 43 };
	CHECK(sigqueue(c.pid, SIGRTMIN + 2, v1) == 0 && sigqueue(c.pid, SIGRTMIN + 2, v2) == 0);
	CHECK(syscall(SYS_tgkill, c.pid, c.pid, SIGUSR2) == 0);
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	uint64_t mask = 0;
	CHECK(fp_pt_get_sigmask(c.pid, &mask, &err) == 0);
	CHECK((mask & (1ULL << (SIGUSR2 - 1))) && (mask & (1ULL << (SIGRTMIN + 2 - 1))));
	CHECK(fp_pt_set_sigmask(c.pid, mask | (1ULL << (SIGHUP - 1)), &err) == 0);
	uint64_t mask2 = 0;
	CHECK(fp_pt_get_sigmask(c.pid, &mask2, &err) == 0 && mask2 == (mask | (1ULL << (SIGHUP - 1))));
	CHECK(fp_pt_set_sigmask(c.pid, mask, &err) == 0);

	CHECK(fp_pt_peek_signals(c.pid, fp_pt_find(&p, c.pid), false, &sv, &n, &err) == 0);
	CHECKF(n == 1 && sv[0].si_signo == SIGUSR2 && sv[0].si_code == SI_TKILL, "private: %zu", n);
	free(sv);
	CHECK(fp_pt_peek_signals(c.pid, NULL, true, &sv, &n, &err) == 0);
	CHECKF(n == 2 && sv[0].si_signo == SIGRTMIN + 2 && sv[0].si_value.sival_int == 42 &&
		       sv[1].si_value.sival_int == 43 && sv[0].si_code == SI_QUEUE,
	       "shared: %zu", n);
	free(sv);

	fp_rseq_config rs;
	CHECK(fp_pt_get_rseq(c.pid, &rs, &err) == 0);
	printf("rseq: abi %#llx size %u sig %#x flags %u\n", (unsigned long long)rs.abi_pointer, rs.abi_size, rs.signature,
	       rs.flags);
	CHECK(rs.abi_pointer == 0 || rs.signature == 0x53053053); /* glibc registers rseq by default */
	uint64_t head = 0, hlen = 0;
	CHECK(fp_pt_get_robust_list(c.pid, &head, &hlen, &err) == 0);
	printf("robust list: head %#llx len %llu\n", (unsigned long long)head, (unsigned long long)hlen);
	CHECK(head != 0 && hlen == 24);
	CHECK(fp_pt_detach(&p, &err) == 0);
	CHECK(pt_finish(&c, 10000) == 0);
	return fp_test_done();
}
