/* pid_taker PID: makes an unrelated process that holds exactly PID (clone3
 * with set_tid; root), to stand for a process of a busy machine that took
 * a freed pid. The process sleeps until it is killed; pid_taker prints its
 * pid and exits 0, or says why not and exits 1. Not a ct_* target. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2 || atoi(argv[1]) <= 1) {
		fprintf(stderr, "usage: pid_taker PID\n");
		return 2;
	}
	pid_t want = (pid_t)atoi(argv[1]);
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&want;
	ca.set_tid_size = 1;
	fflush(stdout);
	long r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r < 0) {
		fprintf(stderr, "pid_taker: cannot take pid %d: %s\n", (int)want, strerror(errno));
		return 1;
	}
	if (r == 0) {
		setsid();
		int nul = open("/dev/null", O_RDWR);
		for (int fd = 0; fd < 3 && nul >= 0; fd++)
			dup2(nul, fd);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		for (;;)
			pause();
	}
	printf("%ld\n", r);
	return 0;
}
