/* Overhead of libforkpoint-preload.so on a syscall-heavy loop. Measures, never
 * asserts.
 *
 *   shim_overhead [--shim PATH] [--before PATH] [--runs R] [--iters N]
 *       runs itself R times without the shim, R times with LD_PRELOAD=PATH and,
 *       with --before, R times with an older shim (interleaved), and prints per
 *       operation pair two tables of medians over the runs: of each run's mean
 *       ns per iteration (what issue 16 quoted), and of each run's median ns
 *       per iteration (robust against the preemptions of a shared machine)
 *   shim_overhead --loop N [K]
 *       one run: N iterations of each pair (of pair K only), prints "pair
 *       mean median" lines; bench/shim_overhead.sh --instr counts its instructions
 *   shim_overhead --paired N
 *       one run of N iterations, each doing a pair through libc (so through
 *       the shim when it is preloaded) and the same pair as raw syscall()s
 *       (past any shim) back to back, in alternating order; prints per pair
 *       the median and the 25th percentile of the differences. With and
 *       without the shim, the difference of the two is the shim's own cost:
 *       the kernel's share and most of a loaded machine's noise cancel out.
 *   shim_overhead --paired N --threaded
 *       the same with a second thread blocked for the whole run: glibc then
 *       counts the process as multi-threaded, and the shim's list locks take
 *       their lock word (a single-threaded process skips it, shim_lock.c)
 *
 * Pairs: open+close of a file, dup+close, mmap+munmap of one anonymous page,
 * mmap+munmap of one file page, pipe+close+close, socket+close,
 * pthread_create+join, and mmap+munmap of one anonymous page into a hole this
 * program made between two read-only pages: the same neighbours with and
 * without the shim. The kernel's own cost of mmap depends on what lies next to
 * the new page (merging with a neighbour or not), and the shim's object shifts
 * where the kernel puts it, so "(hole)" is the pair that shows the shim's
 * bookkeeping alone. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPAIRS 8
static const char *const pair_names[NPAIRS] = {
	"open+close",   "dup+close",    "mmap+munmap(anon)",   "mmap+munmap(file)",
	"pipe+2*close", "socket+close", "pthread_create+join", "mmap+munmap(hole)"};

static void *nothing(void *arg)
{
	return arg;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct loop {
	char path[32];
	int fd;
	char *hole;
};

static void one(int k, const struct loop *l)
{
	switch (k) {
	case 0:
		close(open(l->path, O_RDONLY | O_CLOEXEC));
		break;
	case 1:
		close(dup(l->fd));
		break;
	case 2: {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 4096);
		break;
	}
	case 3: {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, l->fd, 0);
		munmap(p, 4096);
		break;
	}
	case 4: {
		int p[2];
		if (pipe(p) == 0) {
			close(p[0]);
			close(p[1]);
		}
		break;
	}
	case 5:
		close(socket(AF_UNIX, SOCK_STREAM, 0));
		break;
	case 6: {
		pthread_t th;
		if (pthread_create(&th, NULL, nothing, NULL) == 0)
			pthread_join(th, NULL);
		break;
	}
	case 7: {
		void *p = mmap(l->hole, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		munmap(p, 4096);
		break;
	}
	}
}

/* The raw twin of pair k (0, 1, 2, 4, 5): past libc and any shim. */
static void one_raw(int k, const struct loop *l)
{
	switch (k) {
	case 0:
		syscall(SYS_close, syscall(SYS_openat, AT_FDCWD, l->path, O_RDONLY | O_CLOEXEC, 0));
		break;
	case 1:
		syscall(SYS_close, syscall(SYS_dup, l->fd));
		break;
	case 2: {
		long p = syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		syscall(SYS_munmap, p, 4096);
		break;
	}
	case 4: {
		int p[2];
		if (syscall(SYS_pipe2, p, 0) == 0) {
			syscall(SYS_close, p[0]);
			syscall(SYS_close, p[1]);
		}
		break;
	}
	case 5:
		syscall(SYS_close, syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0));
		break;
	}
}

/* The idle thread of --paired --threaded: blocked until the run is over. */
static void *idle_until_closed(void *arg)
{
	char c;
	while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static int run_paired(long n, int threaded)
{
	static const int pairs[] = { 0, 1, 2, 4, 5 };
	struct loop l = { "/tmp/fp-shim-bench.XXXXXX", -1, NULL };
	int idle_pipe[2] = { -1, -1 };
	pthread_t idle;
	if (threaded && (pipe(idle_pipe) < 0 || pthread_create(&idle, NULL, idle_until_closed, &idle_pipe[0]) != 0)) {
		perror("the idle thread");
		return 1;
	}
	l.fd = mkstemp(l.path);
	double *d = malloc((size_t)n * sizeof(*d));
	if (l.fd < 0 || !d)
		return 1;
	for (size_t j = 0; j < sizeof(pairs) / sizeof(pairs[0]); j++) {
		int k = pairs[j];
		for (long i = 0; i < n; i++) {
			double t0 = now_ns();
			if (i & 1)
				one_raw(k, &l);
			else
				one(k, &l);
			double t1 = now_ns();
			if (i & 1)
				one(k, &l);
			else
				one_raw(k, &l);
			double t2 = now_ns();
			d[i] = (i & 1) ? (t2 - t1) - (t1 - t0) : (t1 - t0) - (t2 - t1);
		}
		double med = median(d, (int)n); /* sorts d */
		printf("%d %.1f %.1f\n", k, med, d[n / 4]);
	}
	free(d);
	close(l.fd);
	unlink(l.path);
	if (threaded) {
		close(idle_pipe[1]);
		pthread_join(idle, NULL);
		close(idle_pipe[0]);
	}
	return 0;
}

static int run_loop(long n, int only)
{
	struct loop l = {"/tmp/fp-shim-bench.XXXXXX", -1, NULL};
	char *region = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || munmap(region + 4096, 4096) < 0) {
		perror("mmap");
		return 1;
	}
	l.hole = region + 4096;
	l.fd = mkstemp(l.path);
	if (l.fd < 0 || ftruncate(l.fd, 4096) < 0) {
		perror("mkstemp");
		return 1;
	}
	double *dt = malloc((size_t)n * sizeof(*dt));
	if (!dt)
		return 1;
	for (int k = 0; k < NPAIRS; k++) {
		if (only >= 0 && k != only)
			continue;
		/* a thread costs ~20x a system call: fewer iterations */
		long m = k == 6 ? n / 10 + 1 : n;
		double total = 0;
		for (long i = 0; i < m; i++) {
			double t0 = now_ns();
			one(k, &l);
			dt[i] = now_ns() - t0;
			total += dt[i];
		}
		printf("%d %.1f %.1f\n", k, total / (double)m, median(dt, (int)m));
	}
	free(dt);
	close(l.fd);
	unlink(l.path);
	return 0;
}

/* Runs "self --loop n", with LD_PRELOAD=shim if shim; fills mean[NPAIRS]
 * and med[NPAIRS]. */
static int run_child(const char *self, const char *shim, long n, double *mean, double *med)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	char nbuf[32], pre[4200];
	snprintf(nbuf, sizeof(nbuf), "%ld", n);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		if (shim) {
			snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", shim);
			char *envp[] = {pre, NULL};
			execle(self, self, "--loop", nbuf, (char *)NULL, envp);
		} else {
			char *envp[] = {NULL};
			execle(self, self, "--loop", nbuf, (char *)NULL, envp);
		}
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	int got = 0, k;
	double v, w;
	while (f && fscanf(f, "%d %lf %lf", &k, &v, &w) == 3)
		if (k >= 0 && k < NPAIRS) {
			mean[k] = v;
			med[k] = w;
			got++;
		}
	if (f)
		fclose(f);
	int st;
	waitpid(pid, &st, 0);
	return (got == NPAIRS && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
}

/* results[variant][stat][pair][run]; variants: plain, shim, before */
#define MAXRUNS 99
static double res[3][2][NPAIRS][MAXRUNS];

static void table(int stat, int nvar, int runs, const char *title)
{
	printf("\n%s\n", title);
	if (nvar == 3) {
		printf("%-20s %9s %9s %9s %7s %7s %9s %9s\n", "pair", "plain", "before", "after",
		       "before", "after", "+before", "+after");
	} else {
		printf("%-20s %10s %10s %8s %10s\n", "pair", "plain", "shim", "ratio", "+ns");
	}
	for (int k = 0; k < NPAIRS; k++) {
		double p = median(res[0][stat][k], runs), a = median(res[1][stat][k], runs);
		if (nvar == 3) {
			double b = median(res[2][stat][k], runs);
			printf("%-20s %9.1f %9.1f %9.1f %6.2fx %6.2fx %9.1f %9.1f\n", pair_names[k], p, b,
			       a, b / p, a / p, b - p, a - p);
		} else {
			printf("%-20s %10.1f %10.1f %7.2fx %10.1f\n", pair_names[k], p, a, a / p, a - p);
		}
	}
}

static int abs_path(const char *in, char *out, const char *what)
{
	if (realpath(in, out))
		return 0;
	fprintf(stderr, "shim_overhead: no %s at %s: %s (build it with make)\n", what, in,
		strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	const char *shim = NULL, *before = NULL;
	int runs = 9;
	long iters = 20000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--loop") && i + 1 < argc)
			return run_loop(atol(argv[i + 1]), i + 2 < argc ? atoi(argv[i + 2]) : -1);
		if (!strcmp(argv[i], "--paired") && i + 1 < argc)
			return run_paired(atol(argv[i + 1]),
					  i + 2 < argc && !strcmp(argv[i + 2], "--threaded"));
		if (!strcmp(argv[i], "--shim") && i + 1 < argc)
			shim = argv[++i];
		else if (!strcmp(argv[i], "--before") && i + 1 < argc)
			before = argv[++i];
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atol(argv[++i]);
		else {
			fprintf(stderr,
				"usage: %s [--shim PATH] [--before PATH] [--runs R] [--iters N] | --loop N\n",
				argv[0]);
			return 2;
		}
	}
	char fallback[4096];
	if (!shim) {
		const char *b = getenv("FP_BUILD");
		snprintf(fallback, sizeof(fallback), "%s/lib/libforkpoint-preload.so", b ? b : "build");
		shim = fallback;
	}
	char shim_abs[4096], before_abs[4096], self[4096];
	if (abs_path(shim, shim_abs, "shim") < 0 || (before && abs_path(before, before_abs, "shim") < 0))
		return 1;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl < 0)
		return 1;
	self[sl] = '\0';
	if (runs < 1 || runs > MAXRUNS)
		runs = 9;
	if (iters < 10)
		iters = 10;
	int nvar = before ? 3 : 2;
	const char *var[3] = {NULL, shim_abs, before ? before_abs : NULL};
	for (int r = 0; r < runs; r++) {
		for (int v = 0; v < nvar; v++) {
			double mean[NPAIRS], med[NPAIRS];
			if (run_child(self, var[v], iters, mean, med) < 0) {
				fprintf(stderr, "shim_overhead: a run failed\n");
				return 1;
			}
			for (int k = 0; k < NPAIRS; k++) {
				res[v][0][k][r] = mean[k];
				res[v][1][k][r] = med[k];
			}
		}
	}
	printf("shim overhead: %s\n", shim_abs);
	if (before)
		printf("before: %s\n", before_abs);
	printf("%d runs x %ld iterations each (pthread_create+join: %ld), interleaved\n", runs,
	       iters, iters / 10 + 1);
	table(0, nvar, runs, "ns per iteration, median over the runs of each run's mean");
	table(1, nvar, runs, "ns per iteration, median over the runs of each run's median");
	return 0;
}
