/* ct_locks: state that a dump and restore used to change without a word,
 * each checked through the kernel's own view:
 *
 *   POSIX locks  a write lock on bytes 0-9 and a read lock from byte 20 to
 *                the end of ct_locks.a (held by this process)
 *   flock        a shared lock on ct_locks.b, through a descriptor that two
 *                fds share (dup)
 *   OFD lock     a write lock on bytes 0-99 of ct_locks.c
 *   timerfd      without close-on-exec (a restorer's temporary fd can land
 *                on its number), set with an absolute CLOCK_REALTIME time
 *   pipe         blocking, without close-on-exec
 *   memory       16 pages mapped MAP_LOCKED and 8 pages mlock()ed, with a
 *                pattern
 *
 * The process-wide checks compare every fd (flags, description, the locks
 * fdinfo lists through it) with the state at ready; this target adds the
 * timer, the lock count, and that the memory is still locked (VmFlags "lo",
 * /proc/self/smaps) and holds its pattern. Files go in --dir (default: the
 * status file's directory). "verify N ok".
 *
 *   ct_locks STATUS [--dir=DIR] [common options]
 */
#include "ct_proto.h"

#include <libgen.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/timerfd.h>

#define MAPPED_PAGES 16
#define MLOCKED_PAGES 8

static int tfd, lock_fds[4];
static time_t deadline; /* the timer's absolute expiry, CLOCK_REALTIME */
static uint8_t *mapped, *mlocked;
static long page;

/* The VmFlags line of the mapping at addr, from /proc/self/smaps. */
static bool vma_locked(const void *addr, char *flags, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	flags[0] = 0;
	if (!f)
		return false;
	char line[512];
	bool in = false;
	unsigned long want = (unsigned long)addr;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
			in = want >= s && want < e;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, len, "%s", line + 8);
			flags[strcspn(flags, "\n")] = 0;
			break;
		}
	}
	fclose(f);
	return strstr(flags, " lo") != NULL;
}

static void check_memory(const char *what, const uint8_t *p, int pages, uint8_t seed)
{
	char flags[256];
	if (!vma_locked(p, flags, sizeof(flags)))
		ct_fail("the %s memory is no longer locked (VmFlags:%s)", what, flags);
	for (long i = 0; i < pages * page; i++)
		if (p[i] != (uint8_t)(seed + i / page)) {
			ct_fail("the %s memory changed at byte %ld", what, i);
			return;
		}
}

static void verify(void)
{
	ct_verify_begin();
	struct itimerspec its;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (timerfd_gettime(tfd, &its))
		ct_fail("timerfd_gettime: %s", strerror(errno));
	else if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		ct_fail("the timer is disarmed");
	else if (labs((long)(now.tv_sec + its.it_value.tv_sec - deadline)) > 5)
		ct_fail("the timer expires at %lld, it was set for %lld", (long long)(now.tv_sec + its.it_value.tv_sec),
			(long long)deadline);
	char path[64], info[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", tfd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, info, sizeof(info) - 1);
	if (f >= 0)
		close(f);
	info[n < 0 ? 0 : n] = 0;
	char *sf = strstr(info, "settime flags:");
	if (!sf || strtol(sf + 14, NULL, 8) != TFD_TIMER_ABSTIME)
		ct_fail("the timer is no longer set with an absolute time: %s", info);
	char locks[256];
	int nlocks = 0;
	for (int i = 0; i < 4; i++) {
		ct_fd_locks(lock_fds[i], locks, sizeof(locks));
		for (char *l = locks; *l; l++)
			nlocks += *l == '-';
	}
	/* fd 0 and 1 of lock_fds share the flock, so it is listed twice */
	if (nlocks != 5)
		ct_fail("%d locks listed through the lock fds, expected 5", nlocks);
	check_memory("MAP_LOCKED", mapped, MAPPED_PAGES, 0x30);
	check_memory("mlock()ed", mlocked, MLOCKED_PAGES, 0x60);
	ct_verify_end(NULL);
}

static int open_in(const char *dir, const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		ct_die("cannot open %s: %s", path, strerror(errno));
	if (ftruncate(fd, 4096) < 0)
		ct_die("ftruncate %s: %s", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	ct.prog = "ct_locks";
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ct_locks STATUS [--dir=DIR] [options]\n%s", ct_common_usage);
		return 2;
	}
	ct.status_path = argv[1];
	char sdir[PATH_MAX];
	snprintf(sdir, sizeof(sdir), "%s", argv[1]);
	const char *dir = dirname(sdir);
	for (int i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "--dir=", 6))
			dir = argv[i] + 6;
		else if (!ct_common_arg(argv[i])) {
			fprintf(stderr, "ct_locks: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	ct_setup();
	page = sysconf(_SC_PAGESIZE);

	/* First, so that it takes the lowest free fd, as a restorer's own
	 * temporary fd would. */
	tfd = timerfd_create(CLOCK_REALTIME, 0);
	if (tfd < 0)
		ct_die("timerfd_create: %s", strerror(errno));
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	deadline = now.tv_sec + 5000;
	struct itimerspec at = { .it_value = { deadline, 0 } };
	if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &at, NULL))
		ct_die("timerfd_settime: %s", strerror(errno));
	int pfd[2];
	if (pipe(pfd))
		ct_die("pipe: %s", strerror(errno));

	int a = open_in(dir, "ct_locks.a");
	struct flock w = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	struct flock r = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 0 };
	if (fcntl(a, F_SETLK, &w) || fcntl(a, F_SETLK, &r))
		ct_die("POSIX locks on ct_locks.a: %s", strerror(errno));
	int b = open_in(dir, "ct_locks.b");
	if (flock(b, LOCK_SH | LOCK_NB))
		ct_die("flock ct_locks.b: %s", strerror(errno));
	int b2 = dup(b);
	int c = open_in(dir, "ct_locks.c");
	struct flock o = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	if (b2 < 0 || fcntl(c, F_OFD_SETLK, &o))
		ct_die("OFD lock on ct_locks.c: %s", strerror(errno));
	lock_fds[0] = b;
	lock_fds[1] = b2;
	lock_fds[2] = a;
	lock_fds[3] = c;

	mapped = mmap(NULL, MAPPED_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1,
		      0);
	mlocked = mmap(NULL, MLOCKED_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mapped == MAP_FAILED || mlocked == MAP_FAILED)
		ct_die("mmap: %s", strerror(errno));
	for (long i = 0; i < MAPPED_PAGES * page; i++)
		mapped[i] = (uint8_t)(0x30 + i / page);
	for (long i = 0; i < MLOCKED_PAGES * page; i++)
		mlocked[i] = (uint8_t)(0x60 + i / page);
	if (mlock(mlocked, MLOCKED_PAGES * page))
		ct_die("mlock: %s (RLIMIT_MEMLOCK?)", strerror(errno));
	ct_info("fds timer=%d pipe=%d,%d posix=%d flock=%d,%d ofd=%d", tfd, pfd[0], pfd[1], a, b, b2, c);
	return ct_serve(verify);
}
