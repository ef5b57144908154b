/* ct_zombies: children in the states a restore must keep:
 *
 *   a zombie that exited with status 7
 *   a zombie killed by SIGTERM
 *   a child stopped by SIGSTOP (it must stay stopped)
 *
 * Nothing reaps them. A verification looks without reaping: waitid with
 * WNOWAIT gives each zombie's exit status, /proc gives the stopped child's
 * state; and the children are still ours. "verify N ok".
 *
 *   ct_zombies STATUS [common options]
 */
#include "ct_proto.h"

#include <sys/wait.h>

static pid_t exited, killed, stopped;

static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : '?';
}

static void check_zombie(const char *what, pid_t pid, int code, int status)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		ct_fail("%s child %d: waitid: %s", what, (int)pid, strerror(errno));
	else if (si.si_pid != pid)
		ct_fail("%s child %d has not ended (state %c)", what, (int)pid, state_of(pid));
	else if (si.si_code != code || si.si_status != status)
		ct_fail("%s child %d: code %d status %d, expected code %d status %d", what, (int)pid, si.si_code,
			si.si_status, code, status);
}

static void verify(void)
{
	ct_verify_begin();
	check_zombie("exited", exited, CLD_EXITED, 7);
	check_zombie("killed", killed, CLD_KILLED, SIGTERM);
	if (state_of(stopped) != 'T')
		ct_fail("the stopped child %d is in state %c", (int)stopped, state_of(stopped));
	ct_verify_end(NULL);
}

/* A child that waits for a signal, returned once it takes SIGTERM's
 * default action (ct_proto's handler, inherited, would catch it). */
static pid_t child(void)
{
	int ready[2];
	if (pipe(ready))
		ct_die("pipe: %s", strerror(errno));
	pid_t p = fork();
	if (p < 0)
		ct_die("fork: %s", strerror(errno));
	if (p == 0) {
		signal(SIGTERM, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	char c;
	if (read(ready[0], &c, 1) != 1)
		ct_die("child %d did not start", (int)p);
	close(ready[0]);
	close(ready[1]);
	return p;
}

int main(int argc, char **argv)
{
	ct.prog = "ct_zombies";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_zombies STATUS [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "ct_zombies: unknown option %s\n", argv[i]);
			return 2;
		}
	ct_setup();
	exited = fork();
	if (exited == 0)
		_exit(7);
	killed = child();
	stopped = child();
	kill(killed, SIGTERM);
	kill(stopped, SIGSTOP);
	/* Ready once each is in its final state (waitid WNOWAIT: not reaped). */
	siginfo_t si;
	if (waitid(P_PID, (id_t)exited, &si, WEXITED | WNOWAIT) || waitid(P_PID, (id_t)killed, &si, WEXITED | WNOWAIT) ||
	    waitid(P_PID, (id_t)stopped, &si, WSTOPPED | WNOWAIT))
		ct_die("waitid: %s", strerror(errno));
	ct_info("children exited=%d killed=%d stopped=%d", (int)exited, (int)killed, (int)stopped);
	return ct_serve(verify);
}
