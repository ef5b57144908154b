/* ct_workspace: memory and files that must agree. The program works in a
 * directory DIR (a forkpoint workspace) through step k = 0, 1, 2, ...; each
 * verification (SIGUSR2) first checks that DIR holds exactly step k's files
 * and that its open fds, cwd and shared mapping still see them, then moves on
 * to step k+1. k lives in memory, so a process restored with a snapshot's
 * memory but another moment's files (or the reverse) fails its next check.
 *
 *   ct_workspace STATUS --dir=DIR [--no-map] [common options]
 *
 * Step k of DIR:
 *   log.txt        k+1 lines "line 0".."line k", appended through an O_APPEND fd
 *   current.txt    "k\n", rewritten in place through an O_RDWR fd
 *   step-J.txt     for J in {k-1, k} only: older ones are deleted
 *   dir-K/inner.txt  "k\n"; the directory is renamed dir-(k-1) -> dir-k
 *   counter.bin    8 bytes = k, written through a MAP_SHARED mapping (with
 *                  --no-map: through an fd, k kept in private memory, so
 *                  that a hot snapshot's fork can stand for the process)
 *   link           symlink -> step-k.txt
 *   mode.txt       mode 0600 when k is even, 0640 when odd
 * The process's cwd is DIR; relative paths are used on purpose. */
#include "ct_proto.h"

#include <sys/mman.h>

static const char *dir;
static int log_fd = -1, cur_fd = -1;
static uint64_t *counter_map, counter_mem;
static int counter_fd = -1; /* --no-map */
static unsigned long long k; /* the step the files are at */

static void writef(const char *path, const char *fmt, unsigned long long v)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), fmt, v);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		ct_die("write %s: %s", path, strerror(errno));
	close(fd);
}

/* The number in a small file, or -1. */
static long long readnum(const char *path)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoll(buf) : -1;
}

static void advance(void)
{
	unsigned long long n = k + 1;
	char line[64], path[64], old[64];
	int len = snprintf(line, sizeof(line), "line %llu\n", n);
	if (write(log_fd, line, (size_t)len) != len)
		ct_die("append log.txt: %s", strerror(errno));
	len = snprintf(line, sizeof(line), "%llu\n", n);
	if (pwrite(cur_fd, line, (size_t)len, 0) != len || ftruncate(cur_fd, len) < 0)
		ct_die("rewrite current.txt: %s", strerror(errno));
	snprintf(path, sizeof(path), "step-%llu.txt", n);
	writef(path, "%llu\n", n);
	if (n >= 2) {
		snprintf(old, sizeof(old), "step-%llu.txt", n - 2);
		if (unlink(old) < 0)
			ct_die("unlink %s: %s", old, strerror(errno));
	}
	snprintf(old, sizeof(old), "dir-%llu", k);
	snprintf(path, sizeof(path), "dir-%llu", n);
	if (rename(old, path) < 0)
		ct_die("rename %s %s: %s", old, path, strerror(errno));
	snprintf(path, sizeof(path), "dir-%llu/inner.txt", n);
	writef(path, "%llu\n", n);
	*counter_map = n;
	if (counter_fd >= 0 ? pwrite(counter_fd, &n, 8, 0) != 8 : msync(counter_map, 4096, MS_SYNC) < 0)
		ct_die("counter.bin: %s", strerror(errno));
	snprintf(path, sizeof(path), "step-%llu.txt", n);
	if (unlink("link") < 0 || symlink(path, "link") < 0)
		ct_die("relink: %s", strerror(errno));
	if (chmod("mode.txt", n % 2 ? 0640 : 0600) < 0)
		ct_die("chmod: %s", strerror(errno));
	k = n;
}

static void check(void)
{
	char path[64], buf[4096];
	/* log.txt: k+1 lines, through the path and through the kept fd. */
	long long lines = 0;
	int fd = open("log.txt", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ct_fail("log.txt: %s", strerror(errno));
	} else {
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			for (ssize_t i = 0; i < n; i++)
				lines += buf[i] == '\n';
		struct stat a, b;
		if (fstat(fd, &a) == 0 && fstat(log_fd, &b) == 0 && a.st_size != b.st_size)
			ct_fail("log.txt is %lld bytes by path but %lld through the open fd",
				(long long)a.st_size, (long long)b.st_size);
		close(fd);
		if (lines != (long long)k + 1)
			ct_fail("log.txt has %lld lines, memory says step %llu (want %llu)", lines, k, k + 1);
	}
	long long v = readnum("current.txt");
	if (v != (long long)k)
		ct_fail("current.txt holds %lld, memory says %llu", v, k);
	memset(buf, 0, 32);
	if (pread(cur_fd, buf, 31, 0) <= 0 || atoll(buf) != (long long)k)
		ct_fail("current.txt through its open fd holds '%.20s', want %llu", buf, k);
	for (unsigned long long j = 0; j <= k + 1; j++) {
		snprintf(path, sizeof(path), "step-%llu.txt", j);
		bool want = j <= k && j + 1 >= k;
		bool have = access(path, F_OK) == 0;
		if (want != have)
			ct_fail("%s %s at step %llu", path, have ? "exists" : "is missing", k);
		if (have && readnum(path) != (long long)j)
			ct_fail("%s holds %lld", path, readnum(path));
	}
	snprintf(path, sizeof(path), "dir-%llu/inner.txt", k);
	if (readnum(path) != (long long)k)
		ct_fail("%s holds %lld, want %llu", path, readnum(path), k);
	if (k > 0) {
		snprintf(path, sizeof(path), "dir-%llu", k - 1);
		if (access(path, F_OK) == 0)
			ct_fail("%s still exists after its rename", path);
	}
	if (*counter_map != k)
		ct_fail("the shared mapping of counter.bin holds %llu, want %llu",
			(unsigned long long)*counter_map, k);
	uint64_t disk = 0;
	fd = open("counter.bin", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &disk, 8, 0) != 8 || disk != k)
		ct_fail("counter.bin holds %llu on disk, want %llu", (unsigned long long)disk, k);
	if (fd >= 0)
		close(fd);
	ssize_t ln = readlink("link", buf, sizeof(buf) - 1);
	snprintf(path, sizeof(path), "step-%llu.txt", k);
	if (ln < 0 || (buf[ln] = 0, strcmp(buf, path)))
		ct_fail("link points to '%s', want %s", ln < 0 ? strerror(errno) : buf, path);
	struct stat st;
	unsigned want_mode = k % 2 ? 0640 : 0600;
	if (stat("mode.txt", &st) < 0 || (st.st_mode & 0777) != want_mode)
		ct_fail("mode.txt has mode %o, want %o", st.st_mode & 0777, want_mode);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, dir))
		ct_fail("cwd is %s, want %s", cwd, dir);
}

static void usage(void)
{
	fprintf(stderr, "usage: ct_workspace STATUS --dir=DIR [--no-map] [options]\n%s", ct_common_usage);
	exit(2);
}

int main(int argc, char **argv)
{
	ct.prog = "ct_workspace";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	ct.status_path = argv[1];
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--no-map"))
			counter_fd = 0; /* the fd comes below */
		else if (!ct_str_arg(argv[i], "--dir", &dir) && !ct_common_arg(argv[i]))
			usage();
	if (!dir)
		usage();
	/* The fds made here are part of the state: the generic fd check must not
	 * see them change, and they are opened before ct_setup records the table. */
	if (chdir(dir) < 0) {
		fprintf(stderr, "ct_workspace: chdir %s: %s\n", dir, strerror(errno));
		return 2;
	}
	log_fd = open("log.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	cur_fd = open("current.txt", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int map_fd = open("counter.bin", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0 || cur_fd < 0 || map_fd < 0 || ftruncate(map_fd, 4096) < 0) {
		fprintf(stderr, "ct_workspace: setup in %s: %s\n", dir, strerror(errno));
		return 2;
	}
	if (counter_fd == 0) {
		counter_fd = map_fd;
		counter_map = &counter_mem;
	} else {
		counter_map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
		close(map_fd);
	}
	if (counter_map == MAP_FAILED) {
		fprintf(stderr, "ct_workspace: mmap: %s\n", strerror(errno));
		return 2;
	}
	if (write(log_fd, "line 0\n", 7) != 7 || pwrite(cur_fd, "0\n", 2, 0) != 2) {
		fprintf(stderr, "ct_workspace: write: %s\n", strerror(errno));
		return 2;
	}
	writef("step-0.txt", "%llu\n", 0);
	writef("mode.txt", "%llu\n", 0);
	if (chmod("mode.txt", 0600) < 0 || mkdir("dir-0", 0755) < 0 || symlink("step-0.txt", "link") < 0) {
		fprintf(stderr, "ct_workspace: setup: %s\n", strerror(errno));
		return 2;
	}
	writef("dir-0/inner.txt", "%llu\n", 0);
	*counter_map = 0;
	if (counter_fd < 0)
		msync(counter_map, 4096, MS_SYNC);
	char realdir[PATH_MAX];
	if (!getcwd(realdir, sizeof(realdir))) {
		fprintf(stderr, "ct_workspace: getcwd: %s\n", strerror(errno));
		return 2;
	}
	dir = strdup(realdir);
	ct_setup();
	ct_ready();
	for (;;) {
		enum ct_event ev = ct_wait();
		ct_verify_begin();
		check();
		char extra[32];
		snprintf(extra, sizeof(extra), "step=%llu", k);
		bool ok = ct_verify_end(extra);
		if (ev == CT_EV_TERM)
			return ok ? 0 : 1;
		if (ok)
			advance();
	}
}
