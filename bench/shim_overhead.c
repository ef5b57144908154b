/* Overhead of libforkpoint-preload.so on a syscall-heavy loop. Measures, never
 * asserts.
 *
 *   shim_overhead [--shim PATH] [--runs R] [--iters N]
 *       runs itself R times without and R times with LD_PRELOAD=PATH
 *       (interleaved), and prints per operation pair the median ns per
 *       iteration of each and their ratio
 *   shim_overhead --loop N
 *       one run: N iterations of each pair, prints "name ns" lines
 *
 * Pairs: open+close of a file, dup+close, mmap+munmap of one anonymous page,
 * mmap+munmap of one file page, pipe+close+close, socket+close, and
 * pthread_create+join (where the shim resyncs its mapping list from
 * /proc/self/maps twice). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPAIRS 7
static const char *const pair_names[NPAIRS] = {
	"open+close",   "dup+close",    "mmap+munmap(anon)",  "mmap+munmap(file)",
	"pipe+2*close", "socket+close", "pthread_create+join"};

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

static int run_loop(long n)
{
	char path[] = "/tmp/fp-shim-bench.XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 4096) < 0) {
		perror("mkstemp");
		return 1;
	}
	double t[NPAIRS];
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		close(open(path, O_RDONLY | O_CLOEXEC));
	t[0] = now_ns() - t0;
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		close(dup(fd));
	t[1] = now_ns() - t0;
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 4096);
	}
	t[2] = now_ns() - t0;
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		munmap(p, 4096);
	}
	t[3] = now_ns() - t0;
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int p[2];
		if (pipe(p) == 0) {
			close(p[0]);
			close(p[1]);
		}
	}
	t[4] = now_ns() - t0;
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		close(socket(AF_UNIX, SOCK_STREAM, 0));
	t[5] = now_ns() - t0;
	/* thread creation costs the shim two resyncs of its mapping list (the
	 * stack is mapped inside libc): fewer iterations */
	long nt = n / 10 + 1;
	t0 = now_ns();
	for (long i = 0; i < nt; i++) {
		pthread_t th;
		if (pthread_create(&th, NULL, nothing, NULL) == 0)
			pthread_join(th, NULL);
	}
	t[6] = (now_ns() - t0) * (double)n / (double)nt;
	close(fd);
	unlink(path);
	for (int k = 0; k < NPAIRS; k++)
		printf("%d %.1f\n", k, t[k] / (double)n);
	return 0;
}

/* Runs "self --loop n", with LD_PRELOAD=shim if shim; fills ns[NPAIRS]. */
static int run_child(const char *self, const char *shim, long n, double *ns)
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
	double v;
	while (f && fscanf(f, "%d %lf", &k, &v) == 2)
		if (k >= 0 && k < NPAIRS) {
			ns[k] = v;
			got++;
		}
	if (f)
		fclose(f);
	int st;
	waitpid(pid, &st, 0);
	return (got == NPAIRS && WIFEXITED(st) && WEXITSTATUS(st) == 0) ? 0 : -1;
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

int main(int argc, char **argv)
{
	const char *shim = NULL;
	int runs = 9;
	long iters = 20000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--loop") && i + 1 < argc)
			return run_loop(atol(argv[i + 1]));
		if (!strcmp(argv[i], "--shim") && i + 1 < argc)
			shim = argv[++i];
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: %s [--shim PATH] [--runs R] [--iters N] | --loop N\n",
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
	char shim_abs[4096], self[4096];
	if (!realpath(shim, shim_abs)) {
		fprintf(stderr, "shim_overhead: no shim at %s: %s (build it with make)\n", shim,
			strerror(errno));
		return 1;
	}
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl < 0)
		return 1;
	self[sl] = '\0';
	if (runs < 1 || runs > 99)
		runs = 9;
	double plain[NPAIRS][99], shimmed[NPAIRS][99];
	for (int r = 0; r < runs; r++) {
		double a[NPAIRS], b[NPAIRS];
		if (run_child(self, NULL, iters, a) < 0 || run_child(self, shim_abs, iters, b) < 0) {
			fprintf(stderr, "shim_overhead: a run failed\n");
			return 1;
		}
		for (int k = 0; k < NPAIRS; k++) {
			plain[k][r] = a[k];
			shimmed[k][r] = b[k];
		}
	}
	printf("shim overhead: %s\n", shim_abs);
	printf("%d runs x %ld iterations each, median ns per iteration\n", runs, iters);
	printf("%-20s %10s %10s %8s %10s\n", "pair", "plain", "shim", "ratio", "+ns");
	for (int k = 0; k < NPAIRS; k++) {
		double p = median(plain[k], runs), s = median(shimmed[k], runs);
		printf("%-20s %10.1f %10.1f %7.2fx %10.1f\n", pair_names[k], p, s, s / p, s - p);
	}
	return 0;
}
