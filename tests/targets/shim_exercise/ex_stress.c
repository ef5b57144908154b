/* shim_exercise: the stress and churn commands. */
#include "ex.h"

/* ---- stress ---- */

static pthread_barrier_t mid_barrier;
static int go_pipe[2];
static long stress_per_thread;

struct held {
	int fds[24];
	int nfds;
	struct {
		char *p;
		size_t len;
	} maps[12];
	int nmaps;
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static void *tiny(void *arg)
{
	return arg;
}

static void drop_fd(struct held *h, int i)
{
	close(h->fds[i]);
	h->fds[i] = h->fds[--h->nfds];
}

static void add_fd(struct held *h, int fd)
{
	if (fd < 0)
		return;
	if (h->nfds == 24)
		drop_fd(h, 0);
	h->fds[h->nfds++] = fd;
}

static void drop_map(struct held *h, int i)
{
	munmap(h->maps[i].p, h->maps[i].len);
	h->maps[i] = h->maps[--h->nmaps];
}

static void add_map(struct held *h, char *p, size_t len)
{
	if (p == MAP_FAILED)
		return;
	if (h->nmaps == 12)
		drop_map(h, 0);
	h->maps[h->nmaps].p = p;
	h->maps[h->nmaps].len = len;
	h->nmaps++;
}

static void stress_op(struct held *h, unsigned *seed, int file_fd, long i)
{
	const size_t pg = 4096;
	char name[64];
	int p[2];
	switch (rnd(seed) % 16) {
	case 0:
		snprintf(name, sizeof(name), "st_%ld_%u", i % 7, rnd(seed) % 5);
		add_fd(h, open(name, O_RDWR | O_CREAT | ((i & 1) ? O_CLOEXEC : 0), 0600));
		break;
	case 1:
		if (h->nfds)
			add_fd(h, dup(h->fds[rnd(seed) % h->nfds]));
		break;
	case 2:
		if (h->nfds)
			add_fd(h, fcntl(h->fds[rnd(seed) % h->nfds], F_DUPFD_CLOEXEC, 50));
		break;
	case 3:
		if (pipe2(p, (i & 1) ? O_CLOEXEC : 0) == 0) {
			add_fd(h, p[0]);
			add_fd(h, p[1]);
		}
		break;
	case 4:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0) {
			add_fd(h, p[0]);
			close(p[1]);
		}
		break;
	case 5:
		add_fd(h, eventfd(0, (i & 1) ? EFD_CLOEXEC : 0));
		break;
	case 6:
	case 7:
		if (h->nfds)
			drop_fd(h, (int)(rnd(seed) % h->nfds));
		break;
	case 8: {
		size_t len = (1 + rnd(seed) % 4) * pg;
		add_map(h, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
			len);
		break;
	}
	case 9:
		add_map(h, mmap(NULL, 4 * pg, PROT_READ, MAP_SHARED, file_fd, (rnd(seed) % 4) * pg),
			4 * pg);
		break;
	case 10:
		if (h->nmaps)
			drop_map(h, (int)(rnd(seed) % h->nmaps));
		break;
	case 11: {
		/* partial unmap: the middle page of a 3-page mapping */
		char *m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (m != MAP_FAILED) {
			munmap(m + pg, pg);
			add_map(h, m, pg);
			add_map(h, m + 2 * pg, pg);
		}
		break;
	}
	case 12:
		if (h->nmaps) {
			int k = (int)(rnd(seed) % h->nmaps);
			mprotect(h->maps[k].p, pg, (rnd(seed) & 1) ? PROT_READ : PROT_READ | PROT_WRITE);
		}
		break;
	case 13: {
		char *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED) {
			char *n = mremap(m, pg, 3 * pg, MREMAP_MAYMOVE);
			if (n == MAP_FAILED)
				munmap(m, pg);
			else
				add_map(h, n, 3 * pg);
		}
		break;
	}
	case 14:
		if (rnd(seed) % 8 == 0) {
			pthread_t t;
			if (pthread_create(&t, NULL, tiny, NULL) == 0)
				pthread_join(t, NULL);
		} else if (h->nfds) {
			int fd = h->fds[rnd(seed) % h->nfds];
			fcntl(fd, F_SETFD, (rnd(seed) & 1) ? FD_CLOEXEC : 0);
		}
		break;
	case 15:
		if (rnd(seed) % 64 == 0) {
			pid_t c = fork();
			if (c == 0)
				_exit(0);
			if (c > 0)
				waitpid(c, NULL, 0);
		} else if (h->nfds) {
			int fd = h->fds[rnd(seed) % h->nfds];
			add_fd(h, dup3(fd, 1000 + (int)(rnd(seed) % 1000), O_CLOEXEC));
		}
		break;
	}
}

static void *stress_worker(void *arg)
{
	unsigned seed = (unsigned)(long)arg * 7919u + 1;
	struct held *h = calloc(1, sizeof(*h));
	int file_fd = open("st_map", O_RDONLY);
	if (!h || file_fd < 0)
		die("worker");
	for (long i = 0; i < stress_per_thread; i++) {
		if (i == stress_per_thread / 2) {
			pthread_barrier_wait(&mid_barrier);
			char c;
			while (read(go_pipe[0], &c, 1) < 0 && errno == EINTR)
				;
		}
		stress_op(h, &seed, file_fd, i);
	}
	/* what is still held stays open/mapped for the final check */
	for (int i = 0; i < h->nfds; i++)
		keep_fd(h->fds[i]);
	for (int i = 0; i < h->nmaps; i++)
		keep_map(h->maps[i].p, h->maps[i].len);
	keep_fd(file_fd);
	free(h);
	return NULL;
}

void cmd_stress(long n, int t)
{
	if (t < 1 || t > 64)
		t = 8;
	stress_per_thread = n / t;
	int f = make_file("st_map", 8 * 4096);
	close(f);
	/* dup3 targets (1000..1999) may collide between threads: then one
	 * thread's fd silently becomes another file, which the table must follow */
	if (pipe(go_pipe) < 0)
		die("pipe");
	pthread_barrier_init(&mid_barrier, NULL, (unsigned)t + 1);
	pthread_t th[64];
	for (int i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, stress_worker, (void *)(long)i) != 0)
			die("pthread_create");
	pthread_barrier_wait(&mid_barrier);
	reply("mid");
	char line[64];
	if (!read_line(in_fd, line, sizeof(line)) || strcmp(line, "cont"))
		die("expected cont");
	char go[64];
	memset(go, 'g', sizeof(go));
	if (write(go_pipe[1], go, (size_t)t) != t)
		die("go");
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&mid_barrier);
	close(go_pipe[0]);
	close(go_pipe[1]);
	reply("ok");
}

/* ---- churn (for reading while running) ---- */

static atomic_int churn_stop;
static pthread_t churn_th[16];
static int churn_n;

/* cK is opened with flags that depend on K only, mK (opened O_RDONLY |
 * O_CLOEXEC) is mapped shared with a length of K+1 pages: any fd slot or
 * mapping entry that mixes two operations is visibly torn */
static int churn_flags(int k)
{
	static const int acc[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR | O_APPEND};
	return acc[k % 4] | ((k % 2) ? O_CLOEXEC : 0);
}

static void *churner(void *arg)
{
	unsigned seed = (unsigned)(long)arg * 31u + 7;
	int fds[8], nf = 0;
	struct {
		char *p;
		size_t len;
	} mp[4];
	int nm = 0;
	while (!atomic_load(&churn_stop)) {
		int k = (int)(rnd(&seed) % 16);
		char name[16];
		snprintf(name, sizeof(name), "c%d", k);
		switch (rnd(&seed) % 6) {
		case 0:
		case 1: {
			int fd = open(name, churn_flags(k));
			if (fd >= 0 && nf < 8)
				fds[nf++] = fd;
			else if (fd >= 0)
				close(fd);
			break;
		}
		case 2:
			if (nf) {
				int i = (int)(rnd(&seed) % nf);
				close(fds[i]);
				fds[i] = fds[--nf];
			}
			break;
		case 3:
			if (nm < 4) {
				snprintf(name, sizeof(name), "m%d", k);
				int fd = open(name, O_RDONLY | O_CLOEXEC);
				if (fd >= 0) {
					size_t len = (size_t)(k + 1) * 4096;
					char *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
					close(fd);
					if (p != MAP_FAILED) {
						mp[nm].p = p;
						mp[nm].len = len;
						nm++;
					}
				}
			}
			break;
		case 4:
			if (nm) {
				nm--;
				munmap(mp[nm].p, mp[nm].len);
			}
			break;
		case 5:
			if (rnd(&seed) % 16 == 0) {
				pthread_t t;
				if (pthread_create(&t, NULL, tiny, NULL) == 0)
					pthread_join(t, NULL);
			} else {
				int p[2];
				if (pipe(p) == 0) {
					close(p[0]);
					close(p[1]);
				}
			}
			break;
		}
	}
	while (nf)
		close(fds[--nf]);
	while (nm) {
		nm--;
		munmap(mp[nm].p, mp[nm].len);
	}
	return NULL;
}

void cmd_churn(int t)
{
	if (t < 1 || t > 16)
		t = 4;
	for (int k = 0; k < 16; k++) {
		char name[16];
		snprintf(name, sizeof(name), "c%d", k);
		close(make_file(name, 4096));
		snprintf(name, sizeof(name), "m%d", k);
		close(make_file(name, (size_t)(k + 1) * 4096));
	}
	atomic_store(&churn_stop, 0);
	churn_n = 0;
	for (int i = 0; i < t; i++) {
		if (pthread_create(&churn_th[i], NULL, churner, (void *)(long)i) != 0)
			die("pthread_create");
		churn_n++;
	}
	reply("ok");
}

void cmd_stop(void)
{
	atomic_store(&churn_stop, 1);
	for (int i = 0; i < churn_n; i++)
		pthread_join(churn_th[i], NULL);
	churn_n = 0;
	reply("ok");
}

