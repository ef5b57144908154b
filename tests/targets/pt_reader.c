/* Target for the injection, signal and stack tests. Sets up state a dumper
 * reads by injection, prints its own view of it on one "ready" line, then
 * serves stdin line by line from pt_reader_wait_input (blocked in read):
 *   "umask"   -> "umask <octal>"
 *   "tidaddr" -> "tidaddr <hex>"
 *   other     -> "got <line>"
 * A SIGUSR1 (SA_RESTART handler) prints "sig". A read that fails (EINTR or
 * a raw -ERESTART value) prints "FAIL ..." and exits 1. EOF exits 0.
 * With argument "block": SIGUSR2 and SIGRTMIN+2 are blocked, so signals sent
 * to it stay pending. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

static char altstack[65536];

static void on_usr1(int sig)
{
	(void)sig;
	static const char msg[] = "sig\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(3);
}

__attribute__((noinline)) ssize_t pt_reader_wait_input(char *buf, size_t len)
{
	ssize_t r = read(0, buf, len);
	__asm__ volatile("" ::: "memory"); /* keep this frame (no tail call) */
	return r;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "block")) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR2);
		sigaddset(&s, SIGRTMIN + 2);
		sigprocmask(SIG_BLOCK, &s, NULL);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaction(SIGUSR1, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGHUP);
	umask(027);
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0 };
	sigaltstack(&ss, NULL);
	struct itimerval itv = { .it_interval = { 50, 0 }, .it_value = { 100, 0 } };
	setitimer(ITIMER_VIRTUAL, &itv, NULL);

	uint64_t tidaddr = 0;
	prctl(PR_GET_TID_ADDRESS, &tidaddr);
	void *volatile heap = malloc(64); /* set up the heap now so brk stays put afterwards */
	free(heap);
	long brk = syscall(SYS_brk, 0);
	struct ksigaction k;
	int pdeath = -1;
	prctl(PR_GET_PDEATHSIG, &pdeath);
	syscall(SYS_rt_sigaction, SIGUSR1, NULL, &k, 8);
	dprintf(1, "ready pid=%d brk=%lx tidaddr=%lx usr1=%lx usr1flags=%lx usr1mask=%lx pdeath=%d dumpable=%d umask=%o altstack=%lx\n",
		getpid(), brk, (unsigned long)tidaddr, (unsigned long)k.handler, (unsigned long)k.flags,
		(unsigned long)k.mask, pdeath, prctl(PR_GET_DUMPABLE),
		027, (unsigned long)(uintptr_t)altstack);

	char line[256];
	size_t have = 0;
	for (;;) {
		ssize_t r = pt_reader_wait_input(line + have, sizeof(line) - 1 - have);
		if (r < 0) {
			dprintf(1, "FAIL read: %s (%zd)\n", strerror(errno), r);
			return 1;
		}
		if (r == 0)
			return 0;
		have += (size_t)r;
		line[have] = '\0';
		char *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			if (!strcmp(line, "umask")) {
				mode_t m = umask(0);
				umask(m);
				dprintf(1, "umask %o\n", m);
			} else if (!strcmp(line, "tidaddr")) {
				prctl(PR_GET_TID_ADDRESS, &tidaddr);
				dprintf(1, "tidaddr %lx\n", (unsigned long)tidaddr);
			} else {
				dprintf(1, "got %s\n", line);
			}
			size_t used = (size_t)(nl + 1 - line);
			memmove(line, nl + 1, have - used + 1);
			have -= used;
		}
		if (have >= sizeof(line) - 1)
			have = 0;
	}
}
