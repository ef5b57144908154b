/* shim_exercise: the collide command. Threads change the same few fd numbers
 * at once (dup3 and dup2 onto them, close, F_SETFD, FIOCLEX, and dup
 * and F_DUPFD from them), as a program whose threads redirect one shared
 * number (a log fd, stdout) does. The kernel applies such calls in some
 * order; the table must end with the last one the kernel applied. No F_SETFL:
 * it changes the open file description, which other fds share, and the
 * table's status flags are per fd (the dump reads them with F_GETFL). */
#include <sys/ioctl.h>

#include "ex.h"

#define COLLIDE_TARGETS 4
#define COLLIDE_FIRST 1500
#define COLLIDE_COPIES 6
#define COLLIDE_THREADS 16

static long collide_per_thread;

/* What a round leaves open for the check: each thread's sources and its last
 * copies. Closed when the next round starts ("collide 0 T" only closes). */
struct collide_left {
	int src[3];
	int copies[COLLIDE_COPIES];
	int ncopies;
};
static struct collide_left left[COLLIDE_THREADS];
static int nleft;
static unsigned collide_round;

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static void keep_copy(struct collide_left *l, int fd)
{
	if (fd < 0)
		return;
	if (l->ncopies == COLLIDE_COPIES) {
		close(l->copies[0]);
		memmove(l->copies, l->copies + 1, sizeof(int) * (COLLIDE_COPIES - 1));
		l->ncopies--;
	}
	l->copies[l->ncopies++] = fd;
}

static void collide_op(struct collide_left *l, unsigned *seed)
{
	int t = COLLIDE_FIRST + (int)(rnd(seed) % COLLIDE_TARGETS);
	int s = l->src[rnd(seed) % 3];
	switch (rnd(seed) % 9) {
	case 0:
	case 1:
		dup3(s, t, (rnd(seed) & 1) ? O_CLOEXEC : 0);
		break;
	case 2:
		dup2(s, t);
		break;
	case 3:
	case 4:
		close(t);
		break;
	case 5:
		fcntl(t, F_SETFD, (rnd(seed) & 1) ? FD_CLOEXEC : 0);
		break;
	case 6:
		ioctl(t, (rnd(seed) & 1) ? FIOCLEX : FIONCLEX);
		break;
	case 7:
		/* a copy of whatever the number is now, kept: the copy's slot
		 * must describe what the kernel copied */
		keep_copy(l, dup(t));
		break;
	case 8:
		keep_copy(l, fcntl(t, F_DUPFD_CLOEXEC, 1600));
		break;
	}
}

static void *collide_worker(void *arg)
{
	long k = (long)arg;
	struct collide_left *l = &left[k];
	unsigned seed = (unsigned)k * 104729u + collide_round * 7919u + 3;
	char name[32];
	snprintf(name, sizeof(name), "col_%ld", k);
	l->src[0] = open(name, O_RDWR | O_CREAT, 0600);
	int p[2];
	if (l->src[0] < 0 || pipe(p) < 0)
		die("collide worker");
	l->src[1] = p[0];
	l->src[2] = p[1];
	l->ncopies = 0;
	for (long i = 0; i < collide_per_thread; i++)
		collide_op(l, &seed);
	return NULL;
}

static void collide_close_left(void)
{
	for (int k = 0; k < nleft; k++) {
		for (int i = 0; i < 3; i++)
			close(left[k].src[i]);
		for (int i = 0; i < left[k].ncopies; i++)
			close(left[k].copies[i]);
	}
	nleft = 0;
	for (int k = 0; k < COLLIDE_TARGETS; k++)
		close(COLLIDE_FIRST + k);
}

/* One round: what the previous round left is closed first; n 0 only closes. */
void cmd_collide(long n, int t)
{
	if (t < 2 || t > COLLIDE_THREADS)
		t = 4;
	collide_close_left();
	if (n <= 0) {
		reply("ok");
		return;
	}
	collide_per_thread = n / t;
	collide_round++;
	pthread_t th[COLLIDE_THREADS];
	for (int i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, collide_worker, (void *)(long)i) != 0)
			die("pthread_create");
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	nleft = t;
	reply("ok");
}
