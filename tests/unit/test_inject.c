/* Syscall injection into a target blocked in read() on a pipe: getpid, brk,
 * prctl(PR_GET_TID_ADDRESS), rt_sigaction x64, sigaltstack, getitimer,
 * pdeathsig, dumpable, umask, userfaultfd + close must return what the
 * target reports about itself; registers must be restored exactly, and the
 * interrupted read must go on reading correctly afterwards. */
#include "ptrace/inject.h"
#include "ptrace/pt_mem.h"
#include "ptrace/ptrace.h"
#include "test_ptrace_util.h"

#include <sys/syscall.h>

static unsigned long field(const char *line, const char *key, int base)
{
	const char *p = strstr(line, key);
	return p ? strtoul(p + strlen(key), NULL, base) : 0;
}

static int maps_contain(pid_t pid, uint64_t addr)
{
	char path[64], l[512];
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	int found = 0;
	while (f && fgets(l, sizeof(l), f)) {
		unsigned long long s, e;
		if (sscanf(l, "%llx-%llx", &s, &e) == 2 && addr >= s && addr < e)
			found = 1;
	}
	if (f)
		fclose(f);
	return found;
}

/* The echo is written before the target re-enters read(): wait (with a
 * deadline) until /proc says it sits in read, so the test is not a race. */
static int wait_in_read(pid_t pid, int timeout_ms)
{
	char path[64], buf[128];
	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	for (double end = pt_now_us() + timeout_ms * 1000.0; pt_now_us() < end;) {
		FILE *f = fopen(path, "r");
		if (f) {
			/* A running thread reads "running", and atoi of that is 0,
			 * which is SYS_read: compare the text itself. */
			int ok = fgets(buf, sizeof(buf), f) && !strncmp(buf, "0 ", 2);
			fclose(f);
			if (ok)
				return 0;
		}
		usleep(200);
	}
	return -1;
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
	printf("target: %s\n", line);
	/* Let it get into read(): a first line echoed back proves it. */
	CHECK(pt_send(&c, "first\n") == 0);
	CHECK(pt_readline(&c, line + 256, 256, 10000) >= 0 && !strcmp(line + 256, "got first"));
	CHECK(wait_in_read(c.pid, 10000) == 0);

	fp_pt_proc p;
	CHECKF(fp_pt_seize(&p, c.pid, 5000, &err) == 0, "%s", err.msg);
	pid_t tid = c.pid;
	struct user_regs_struct before, after;
	CHECK(fp_pt_get_regs(tid, &before, &err) == 0);
	printf("stopped at ip 0x%llx orig_ax %lld ax %lld\n", before.rip, (long long)before.orig_rax, (long long)before.rax);
	CHECK((long long)before.orig_rax == SYS_read); /* inside read() */

	fp_inject ij;
	double t0 = pt_now_us();
	CHECKF(fp_inject_init(&ij, &p, &err) == 0, "%s", err.msg);
	printf("syscall instruction at 0x%llx in %s, found in %.0f us\n", (unsigned long long)ij.syscall_ip,
	       ij.syscall_where, pt_now_us() - t0);

	int64_t ret = 0;
	CHECK(fp_inject_syscall(&ij, tid, SYS_getpid, NULL, &ret, &err) == 0 && ret == c.pid);
	uint64_t brk = 0, tidaddr = 0;
	CHECKF(fp_inject_brk(&ij, tid, &brk, &err) == 0 && brk == field(line, "brk=", 16), "brk %llx: %s",
	       (unsigned long long)brk, err.msg);
	CHECKF(fp_inject_get_tid_address(&ij, tid, &tidaddr, &err) == 0 && tidaddr == field(line, "tidaddr=", 16),
	       "tidaddr %llx: %s", (unsigned long long)tidaddr, err.msg);
	fp_ksigaction sa[64];
	CHECKF(fp_inject_sigactions(&ij, tid, sa, &err) == 0, "%s", err.msg);
	CHECK(sa[SIGUSR1 - 1].handler == field(line, "usr1=", 16));
	CHECK(sa[SIGUSR1 - 1].flags == field(line, "usr1flags=", 16));
	CHECK(sa[SIGUSR1 - 1].mask == field(line, "usr1mask=", 16));
	CHECK(sa[SIGTERM - 1].handler == 0 && sa[SIGKILL - 1].handler == 0);
	stack_t ss;
	CHECK(fp_inject_sigaltstack(&ij, tid, &ss, &err) == 0 && (uintptr_t)ss.ss_sp == field(line, "altstack=", 16) &&
	      ss.ss_size == 65536);
	struct itimerval itv[3];
	CHECK(fp_inject_getitimers(&ij, tid, itv, &err) == 0 && itv[ITIMER_VIRTUAL].it_interval.tv_sec == 50 &&
	      itv[ITIMER_REAL].it_value.tv_sec == 0);
	int pdeath = 0, dumpable = 0;
	CHECK(fp_inject_get_pdeathsig(&ij, tid, &pdeath, &err) == 0 && pdeath == (int)field(line, "pdeath=", 10));
	CHECK(fp_inject_get_dumpable(&ij, tid, &dumpable, &err) == 0 && dumpable == (int)field(line, "dumpable=", 10));
	unsigned um = 0;
	CHECK(fp_inject_umask(&ij, tid, &um, &err) == 0 && um == 027);

	/* userfaultfd appears in the target's fd table, close removes it. */
	int ufd = -1;
	if (fp_inject_userfaultfd(&ij, tid, O_CLOEXEC | O_NONBLOCK, &ufd, &err) == 0) {
		char path[64], link[128] = "";
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", c.pid, ufd);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		CHECKF(strstr(link, "userfaultfd") != NULL, "fd %d is '%s'", ufd, link);
		CHECK(fp_inject_close(&ij, tid, ufd, &err) == 0);
		CHECK(readlink(path, link, sizeof(link)) < 0);
	} else {
		printf("userfaultfd not available: %s\n", err.msg);
	}
	/* An injected syscall that fails reports the errno. */
	CHECK(fp_inject_close(&ij, tid, 9999, &err) == -1 && err.errnum == EBADF);

	/* Cost of one injected syscall, alone and batched in a session. */
	int n = 300;
	t0 = pt_now_us();
	for (int i = 0; i < n; i++)
		fp_inject_syscall(&ij, tid, SYS_getppid, NULL, &ret, &err);
	double single = (pt_now_us() - t0) / n;
	CHECK(fp_inject_begin(&ij, tid, &err) == 0);
	t0 = pt_now_us();
	int good = 0;
	for (int i = 0; i < n; i++)
		good += fp_inject_call(&ij, SYS_getpid, NULL, &ret, &err) == 0 && ret == c.pid;
	double batched = (pt_now_us() - t0) / n;
	CHECK(fp_inject_end(&ij, &err) == 0);
	CHECK(good == n);
	printf("injected syscall: %.1f us alone (save+step+restore), %.1f us in a session\n", single, batched);

	/* Registers exactly as before (orig_ax included). */
	CHECK(fp_pt_get_regs(tid, &after, &err) == 0);
	CHECK(!memcmp(&before, &after, sizeof(before)));

	uint64_t scratch = ij.scratch;
	CHECK(scratch && maps_contain(c.pid, scratch));
	CHECK(fp_inject_fini(&ij, &err) == 0);
	CHECK(!maps_contain(c.pid, scratch));
	CHECK(fp_pt_detach(&p, &err) == 0);

	/* The interrupted read restarts and reads correctly. */
	CHECK(pt_send(&c, "hello\n") == 0);
	CHECKF(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "got hello"), "target said '%s'", line);
	CHECK(pt_send(&c, "umask\n") == 0);
	CHECKF(pt_readline(&c, line, sizeof(line), 10000) >= 0 && !strcmp(line, "umask 27"), "target said '%s'", line);

	/* Memory: read the target's scratch-free stack region and a big range. */
	CHECK(pt_finish(&c, 10000) == 0);
	return fp_test_done();
}
