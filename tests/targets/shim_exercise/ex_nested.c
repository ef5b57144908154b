/* shim_exercise: the nested command. A signal handler changes an fd while
 * its thread holds another fd's slot (inside fclose, blocked writing to a
 * full pipe), and the fd it changes is held by a third thread (also inside
 * fclose, blocked the same way). Were the handler to wait for that slot,
 * it could wait for good: the holder may be waiting for the handler's own
 * thread (a dup2 takes its second fd after its first). The shim must let
 * the handler go on at once, its change unrecorded and counted. Answers
 * "ok" if the handler returned while the other thread still held its slot,
 * "err ..." if not (the pipes are drained then, which lets all go on). */
#include <sys/ioctl.h>

#include "ex.h"

#define NESTED_SIG (SIGRTMIN + 5)
#define NESTED_DEADLINE_MS 5000

static int nested_y;                 /* the fd the handler changes */
static atomic_int nested_handled;
static atomic_int nested_tid[2];     /* of the two closers: Y's, X's */
static atomic_int nested_done[2];

static void on_nested(int sig)
{
	(void)sig;
	fcntl(nested_y, F_SETFD, FD_CLOEXEC); /* a wrapper that holds Y's slot */
	atomic_store(&nested_handled, 1);
}

struct closer {
	FILE *f;
	int i;
};

static void *closer_run(void *a)
{
	struct closer *c = a;
	atomic_store(&nested_tid[c->i], (int)syscall(SYS_gettid));
	fclose(c->f); /* flushes into the full pipe: blocks, holding the slot */
	atomic_store(&nested_done[c->i], 1);
	return NULL;
}

/* A pipe whose write end is full, as a stream with a byte buffered. */
static FILE *full_pipe(int p[2])
{
	if (pipe(p))
		die("pipe");
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	char buf[4096] = { 0 };
	while (write(p[1], buf, sizeof(buf)) > 0)
		;
	fcntl(p[1], F_SETFL, 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	FILE *f = fdopen(p[1], "w");
	if (!f || fputc('z', f) == EOF)
		die("fdopen");
	return f;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Thread tid is blocked in write(fd) (its /proc syscall line). */
static int writing(int tid, int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	ssize_t n = read(f, line, sizeof(line) - 1);
	close(f);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	long nr = -1;
	unsigned long a0 = 0;
	return sscanf(line, "%ld 0x%lx", &nr, &a0) == 2 && nr == SYS_write && a0 == (unsigned long)fd;
}

static int wait_until(int (*cond)(int, int), int a, int b)
{
	for (long end = now_ms() + NESTED_DEADLINE_MS; now_ms() < end;) {
		if (cond(a, b))
			return 1;
		sched_yield();
	}
	return 0;
}

static int handled(int a, int b)
{
	(void)a, (void)b;
	return atomic_load(&nested_handled);
}

void cmd_nested(void)
{
	struct sigaction sa = { .sa_handler = on_nested, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(NESTED_SIG, &sa, NULL);
	int py[2], px[2];
	struct closer cy = { full_pipe(py), 0 }, cx = { full_pipe(px), 1 };
	nested_y = py[1];
	atomic_store(&nested_handled, 0);
	pthread_t ty, tx;
	if (pthread_create(&ty, NULL, closer_run, &cy))
		die("pthread_create");
	const char *err = NULL;
	while (!atomic_load(&nested_tid[0]))
		sched_yield();
	if (!wait_until(writing, atomic_load(&nested_tid[0]), py[1]))
		err = "the first closer never blocked";
	if (pthread_create(&tx, NULL, closer_run, &cx))
		die("pthread_create");
	while (!atomic_load(&nested_tid[1]))
		sched_yield();
	if (!err && !wait_until(writing, atomic_load(&nested_tid[1]), px[1]))
		err = "the second closer never blocked";
	if (!err) {
		pthread_kill(tx, NESTED_SIG);
		if (!wait_until(handled, 0, 0))
			err = "the handler waited for the other thread's slot";
	}
	/* drained: both flushes end, both closers return */
	char buf[4096];
	for (long end = now_ms() + 4 * NESTED_DEADLINE_MS;
	     (!atomic_load(&nested_done[0]) || !atomic_load(&nested_done[1])) && now_ms() < end;) {
		while (read(py[0], buf, sizeof(buf)) > 0 || read(px[0], buf, sizeof(buf)) > 0)
			;
		sched_yield();
	}
	pthread_join(ty, NULL);
	pthread_join(tx, NULL);
	close(py[0]);
	close(px[0]);
	signal(NESTED_SIG, SIG_DFL);
	atomic_store(&nested_tid[0], 0);
	atomic_store(&nested_tid[1], 0);
	atomic_store(&nested_done[0], 0);
	atomic_store(&nested_done[1], 0);
	if (err)
		reply("err %s", err);
	else
		reply("ok");
}
