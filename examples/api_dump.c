/* api_dump: checkpoint a process and bring it back with libforkpoint,
 * using nothing but its public header:
 *
 *     cc api_dump.c $(pkg-config --cflags --libs forkpoint) -o api_dump
 *     sudo ./api_dump [IMAGE_DIR]
 *
 * The child keeps 8 MiB of a known pattern. It is dumped (and killed by the
 * dump), restored from the images with its pid, and asked to check its
 * memory: it exits 0 only if every byte came back. */
#include <forkpoint.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (8u << 20)

static volatile sig_atomic_t check_now;
static void on_usr1(int sig) { (void)sig; check_now = 1; }
static unsigned char pattern(size_t i) { return (unsigned char)((i * 2654435761u) >> 24); }

static void child(int ready_fd)
{
	setsid(); /* a session of its own: no terminal to bring back */
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0), dup2(null, 1), dup2(null, 2);
	unsigned char *p = malloc(SIZE);
	for (size_t i = 0; p && i < SIZE; i++)
		p[i] = pattern(i);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	if (write(ready_fd, "r", 1) != 1 || !p)
		_exit(2);
	close(ready_fd);
	while (!check_now)
		sigsuspend(&old); /* also returns when the dump interrupts it */
	for (size_t i = 0; i < SIZE; i++)
		if (p[i] != pattern(i))
			_exit(1);
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/api_dump.img";
	int ready[2];
	char c;
	if (pipe(ready) < 0)
		return perror("pipe"), 1;
	pid_t pid = fork();
	if (pid == 0)
		child(ready[1]);
	close(ready[1]);
	if (pid < 0 || read(ready[0], &c, 1) != 1)
		return fprintf(stderr, "the child did not start\n"), 1;
	close(ready[0]);

	forkpoint_error e;
	pid_t back;
	int status;
	if (forkpoint_dump(pid, dir, 0, &e) < 0) { /* 0: killed once dumped */
		fprintf(stderr, "dump: %s\n", e.message);
		kill(pid, SIGKILL);
		return 1;
	}
	waitpid(pid, NULL, 0); /* if the dump has not reaped it already */
	if (forkpoint_restore(dir, FORKPOINT_RESTORE_EXACT_PIDS, &back, &e) < 0) {
		fprintf(stderr, "restore: %s\n", e.message);
		return 1;
	}
	kill(back, SIGUSR1);
	if (forkpoint_wait(back, 30000, &status, &e) < 0) {
		fprintf(stderr, "wait: %s\n", e.message);
		kill(back, SIGKILL);
		return 1;
	}
	printf("libforkpoint %s: dumped %d into %s, restored as %d: memory %s\n", forkpoint_version(), (int)pid,
	       dir, (int)back, status == 0 ? "intact" : "DAMAGED");
	return status == 0 ? 0 : 1;
}
