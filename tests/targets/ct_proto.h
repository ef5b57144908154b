/* The status-file protocol shared by the ct_* checkpoint targets (see
 * README.md): option parsing, the status file, the waiting shapes, and the
 * process-wide checks every target makes at each verification. Each target is
 * one .c file that includes this header; nothing here is forkpoint code.
 *
 * Everything a check compares against is recorded inside the process at setup,
 * so after a restore the process proves its own state without help. */
#ifndef CT_PROTO_H
#define CT_PROTO_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum ct_shape { CT_WAIT_READ, CT_WAIT_POLL, CT_WAIT_FUTEX, CT_WAIT_NANOSLEEP, CT_WAIT_SPIN, CT_WAIT_SIGSUSPEND };
static const char *const ct_shape_names[] = { "read", "poll", "futex", "nanosleep", "spin", "sigsuspend" };

enum ct_event { CT_EV_NONE, CT_EV_VERIFY, CT_EV_TERM };

/* A distinctive umask: a restorer that forgets it is caught. */
#define CT_UMASK 027
#define CT_MAX_FDS 128

struct ct_fdinfo {
	int fd, fdflags, flflags;
	char kind[PATH_MAX + 64];
	char locks[256]; /* the file locks held through it, as the kernel lists them */
};

struct ct_state {
	const char *prog, *status_path;
	int status_fd, selfpipe[2];
	enum ct_shape shape;
	bool opt_setsid, opt_quiet, opt_same_pid, opt_loose_fds, opt_no_rseq;
	int nthreads; /* expected entries in /proc/self/task */
	pid_t pid0;
	char cwd0[PATH_MAX], comm0[16];
	sigset_t mask0, suspend_mask;
	bool rseq_usable, have_kcmp;
	unsigned n; /* verifications done so far */
	int nfds;
	struct ct_fdinfo fds[CT_MAX_FDS];
	char why[1536];
	size_t why_len;
	int nfail;
};

static struct ct_state ct = { .status_fd = -1, .selfpipe = { -1, -1 }, .nthreads = 1 };
static volatile sig_atomic_t ct_usr2, ct_term;
static int ct_fword; /* futex word of the futex waiting shape */
static struct ct_fdinfo ct_scan_buf[CT_MAX_FDS];

static inline pid_t ct_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static inline long ct_futex(int *w, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* One write per line: O_APPEND makes concurrent writers (an original and its
 * restored copies share the file) interleave whole lines only. */
__attribute__((format(printf, 1, 2))) static inline void ct_line(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len > sizeof(buf) - 2)
		len = (int)sizeof(buf) - 2;
	if (buf[len - 1] != '\n')
		buf[len++] = '\n';
	if (ct.status_fd >= 0 && write(ct.status_fd, buf, (size_t)len) != len) {
		fprintf(stderr, "%s: cannot write to the status file %s: %s\n", ct.prog, ct.status_path,
			strerror(errno));
		_exit(3);
	}
}

/* Setup failure: a message on stderr and an "error" line, then exit 2. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void ct_die(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", ct.prog ? ct.prog : "ct", buf);
	if (ct.status_fd >= 0)
		ct_line("error %s", buf);
	exit(2);
}

/* Records one failed check of the current verification; the first few
 * reasons go on the verify line. */
__attribute__((format(printf, 1, 2))) static inline void ct_fail(const char *fmt, ...)
{
	ct.nfail++;
	size_t cap = sizeof(ct.why);
	if (ct.why_len + 8 >= cap)
		return;
	if (ct.why_len)
		ct.why_len += (size_t)snprintf(ct.why + ct.why_len, cap - ct.why_len, "; ");
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(ct.why + ct.why_len, cap - ct.why_len, fmt, ap);
	va_end(ap);
	if (len > 0)
		ct.why_len += (size_t)len;
	if (ct.why_len >= cap)
		ct.why_len = cap - 1;
	for (size_t i = 0; i < ct.why_len; i++)
		if (ct.why[i] == '\n')
			ct.why[i] = ' ';
}

static inline void ct_on_signal(int sig)
{
	int saved = errno;
	if (sig == SIGTERM)
		ct_term = 1;
	else
		ct_usr2 = 1;
	__atomic_store_n(&ct_fword, 1, __ATOMIC_SEQ_CST);
	ct_futex(&ct_fword, FUTEX_WAKE_PRIVATE, 1, NULL);
	char b = 's';
	if (write(ct.selfpipe[1], &b, 1) < 0) {
		/* full pipe: the reader wakes anyway */
	}
	errno = saved;
}

static const char ct_common_usage[] =
	"  --setsid          become a session leader (CRIU needs one unless --shell-job)\n"
	"  --quiet-stdio     stdin, stdout and stderr on /dev/null\n"
	"  --same-pid        fail verification if the pid or a tid changed\n"
	"  --loose-fds       do not compare the whole fd table with the one at setup\n"
	"  --no-rseq         do not check that glibc's rseq area is still registered\n"
	"  --wait=SHAPE      how the main thread waits: read (default), poll, futex,\n"
	"                    nanosleep, spin, sigsuspend\n";

/* Returns true when arg is a common option. */
static inline bool ct_common_arg(const char *arg)
{
	if (!strcmp(arg, "--setsid"))
		ct.opt_setsid = true;
	else if (!strcmp(arg, "--quiet-stdio"))
		ct.opt_quiet = true;
	else if (!strcmp(arg, "--same-pid"))
		ct.opt_same_pid = true;
	else if (!strcmp(arg, "--loose-fds"))
		ct.opt_loose_fds = true;
	else if (!strcmp(arg, "--no-rseq"))
		ct.opt_no_rseq = true;
	else if (!strncmp(arg, "--wait=", 7)) {
		size_t i;
		for (i = 0; i < sizeof(ct_shape_names) / sizeof(ct_shape_names[0]); i++)
			if (!strcmp(arg + 7, ct_shape_names[i]))
				break;
		if (i == sizeof(ct_shape_names) / sizeof(ct_shape_names[0]))
			ct_die("unknown waiting shape '%s'", arg + 7);
		ct.shape = (enum ct_shape)i;
	} else
		return false;
	return true;
}

/* Parses "--name=NUMBER" into *out; true when arg is that option. */
static inline bool ct_num_arg(const char *arg, const char *name, unsigned long long *out)
{
	size_t len = strlen(name);
	if (strncmp(arg, name, len) || arg[len] != '=')
		return false;
	char *end;
	errno = 0;
	*out = strtoull(arg + len + 1, &end, 0);
	if (errno || end == arg + len + 1 || *end)
		ct_die("bad number in %s", arg);
	return true;
}

/* "--NAME=VALUE": true and *out = VALUE (inside arg) if arg is that option. */
static inline bool ct_str_arg(const char *arg, const char *name, const char **out)
{
	size_t len = strlen(name);
	if (strncmp(arg, name, len) || arg[len] != '=')
		return false;
	*out = arg + len + 1;
	return true;
}

/* glibc registers an rseq area per thread. Registering the same area again
 * fails with EBUSY only if the kernel still knows it, so this is a precise,
 * side-effect-free probe (if it was lost, it is registered again). */
static inline int ct_rseq_probe(void)
{
	if (__rseq_size == 0)
		return -1;
	char *tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	long r = syscall(SYS_rseq, (void *)(tp + __rseq_offset), __rseq_size, 0, RSEQ_SIG);
	return r == 0 ? 0 : errno;
}

static inline void ct_check_rseq(const char *who)
{
	if (!ct.rseq_usable)
		return;
	int e = ct_rseq_probe();
	if (e == 0)
		ct_fail("%s: rseq area was not registered with the kernel", who);
	else if (e != EBUSY)
		ct_fail("%s: rseq probe: %s", who, strerror(e));
}

static inline void ct_drain_selfpipe(void)
{
	int avail = 0;
	char buf[64];
	while (ioctl(ct.selfpipe[0], FIONREAD, &avail) == 0 && avail > 0)
		if (read(ct.selfpipe[0], buf, (size_t)avail < sizeof(buf) ? (size_t)avail : sizeof(buf)) <= 0)
			break;
}

/* Opens the status file and sets up the process-wide state. Call after the
 * options are parsed. */
static inline void ct_setup(void)
{
	/* Keep 0-2 taken so the status file never lands on a stdio number. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			ct_die("cannot open /dev/null for fd %d", fd);
	ct.status_fd = open(ct.status_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (ct.status_fd < 0) {
		fprintf(stderr, "%s: cannot open status file %s: %s\n", ct.prog, ct.status_path, strerror(errno));
		exit(2);
	}
	if (ct.opt_setsid && setsid() < 0)
		ct_die("setsid: %s (already a process group leader?)", strerror(errno));
	if (ct.opt_quiet) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			ct_die("cannot put stdio on /dev/null: %s", strerror(errno));
		if (null > 2)
			close(null);
	}
	umask(CT_UMASK);
	if (!getcwd(ct.cwd0, sizeof(ct.cwd0)))
		ct_die("getcwd: %s", strerror(errno));
	ct.pid0 = getpid();
	if (pipe2(ct.selfpipe, 0) < 0 || fcntl(ct.selfpipe[1], F_SETFL, O_NONBLOCK) < 0)
		ct_die("self-pipe: %s", strerror(errno));

	struct sigaction sa = { .sa_handler = ct_on_signal, .sa_flags = SA_RESTART };
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		ct_die("sigaction: %s", strerror(errno));
	/* An ignored disposition is state too. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (ct.shape == CT_WAIT_SIGSUSPEND) {
		sigset_t block;
		sigemptyset(&block);
		sigaddset(&block, SIGUSR2);
		sigaddset(&block, SIGTERM);
		sigprocmask(SIG_BLOCK, &block, NULL);
		sigprocmask(SIG_BLOCK, NULL, &ct.suspend_mask);
		sigdelset(&ct.suspend_mask, SIGUSR2);
		sigdelset(&ct.suspend_mask, SIGTERM);
	}
	ct.rseq_usable = !ct.opt_no_rseq && ct_rseq_probe() == EBUSY;
	ct.have_kcmp = syscall(SYS_kcmp, ct.pid0, ct.pid0, KCMP_FILE, ct.status_fd, ct.status_fd) == 0;
}

/* The locks /proc/self/fdinfo/FD lists as held through fd, as "KIND MODE
 * TYPE START END" each (the lock's number and pid left out: a restore into a
 * pid namespace changes the pid as this process sees it). */
static inline void ct_fd_locks(int fd, char *out, size_t len)
{
	char path[64], buf[8192];
	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return;
	ssize_t n = read(f, buf, sizeof(buf) - 1);
	close(f);
	buf[n < 0 ? 0 : n] = 0;
	size_t used = 0;
	for (char *l = strstr(buf, "lock:"); l; l = strstr(l + 1, "\nlock:")) {
		char kind[16], mode[16], rw[16], start[32], end[32];
		if (sscanf(l + (l[0] == '\n') + 5, "%*d: %15s %15s %15s %*d %*s %31s %31s", kind, mode, rw, start,
			   end) == 5)
			used += (size_t)snprintf(out + used, len - used, "%s%s %s %s %s-%s", used ? "; " : "", kind,
						 mode, rw, start, end);
		if (used >= len)
			break;
	}
}

/* The identity of every open fd: number, fd flags, file flags, what it points
 * at, with pipe/socket inode numbers replaced by "which of the fds shares
 * this inode" and "which fds share this open file description" (kcmp), so
 * the description survives a restore that allocates new inodes, and the
 * file locks held through it. */
static inline int ct_scan_fds(struct ct_fdinfo *out)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < CT_MAX_FDS) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd == dirfd(d))
			continue;
		out[n].fd = fd;
		n++;
	}
	closedir(d);
	for (int i = 1; i < n; i++) /* insertion sort by fd */
		for (int j = i; j > 0 && out[j - 1].fd > out[j].fd; j--) {
			int t = out[j].fd;
			out[j].fd = out[j - 1].fd;
			out[j - 1].fd = t;
		}
	struct stat st[CT_MAX_FDS];
	for (int i = 0; i < n; i++) {
		int fd = out[i].fd;
		char proc[64], link[PATH_MAX];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		ssize_t len = readlink(proc, link, sizeof(link) - 1);
		link[len < 0 ? 0 : len] = 0;
		char *br = strchr(link, '[');
		if (link[0] != '/' && br && br[1] >= '0' && br[1] <= '9')
			br[1] = 0; /* "pipe:[1234]" -> "pipe:[" */
		out[i].fdflags = fcntl(fd, F_GETFD);
		out[i].flflags = fcntl(fd, F_GETFL);
		ct_fd_locks(fd, out[i].locks, sizeof(out[i].locks));
		if (fstat(fd, &st[i]) < 0)
			memset(&st[i], 0, sizeof(st[i]));
		int same_ino = i, same_ofd = i;
		for (int j = 0; j < i; j++)
			if (st[j].st_dev == st[i].st_dev && st[j].st_ino == st[i].st_ino) {
				same_ino = j;
				break;
			}
		for (int j = 0; ct.have_kcmp && j < i; j++)
			if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, out[j].fd, fd) == 0) {
				same_ofd = j;
				break;
			}
		snprintf(out[i].kind, sizeof(out[i].kind), "%s inode-of-fd:%d description-of-fd:%d", link,
			 out[same_ino].fd, out[same_ofd].fd);
	}
	return n;
}

static inline void ct_check_fds(void)
{
	int n = ct_scan_fds(ct_scan_buf);
	if (n < 0) {
		ct_fail("cannot list /proc/self/fd: %s", strerror(errno));
		return;
	}
	int i = 0, j = 0, reported = 0;
	while ((i < ct.nfds || j < n) && reported < 4) {
		const struct ct_fdinfo *want = i < ct.nfds ? &ct.fds[i] : NULL;
		const struct ct_fdinfo *got = j < n ? &ct_scan_buf[j] : NULL;
		if (want && (!got || want->fd < got->fd)) {
			ct_fail("fd %d (%s) is gone", want->fd, want->kind), reported++, i++;
		} else if (got && (!want || got->fd < want->fd)) {
			ct_fail("unexpected fd %d (%s)", got->fd, got->kind), reported++, j++;
		} else {
			if (want->fdflags != got->fdflags || want->flflags != got->flflags || strcmp(want->kind, got->kind))
				ct_fail("fd %d was fdflags %#x flags %#o %s, now fdflags %#x flags %#o %s", want->fd,
					want->fdflags, want->flflags, want->kind, got->fdflags, got->flflags, got->kind),
					reported++;
			else if (strcmp(want->locks, got->locks))
				ct_fail("fd %d held the locks [%s], now [%s]", want->fd, want->locks, got->locks),
					reported++;
			i++, j++;
		}
	}
}

static inline int ct_count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

__attribute__((format(printf, 1, 2))) static inline void ct_info(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ct_line("info %s", buf);
}

/* Records what the process-wide checks compare against and reports ready.
 * Call when the target's state is complete. */
static inline void ct_ready(void)
{
	prctl(PR_GET_NAME, ct.comm0);
	sigprocmask(SIG_BLOCK, NULL, &ct.mask0);
	if (!ct.opt_loose_fds) {
		ct.nfds = ct_scan_fds(ct.fds);
		if (ct.nfds < 0)
			ct_die("cannot list /proc/self/fd: %s", strerror(errno));
	}
	ct_line("ready %d", (int)getpid());
}

static inline void ct_check_common(void)
{
	pid_t pid = getpid(), tid = ct_gettid();
	if (tid != pid)
		ct_fail("main thread has tid %d but pid %d", (int)tid, (int)pid);
	if (ct.opt_same_pid && pid != ct.pid0)
		ct_fail("pid changed from %d to %d", (int)ct.pid0, (int)pid);
	if (ct.opt_setsid && (getsid(0) != pid || getpgid(0) != pid))
		ct_fail("no longer a session leader: sid %d pgid %d pid %d", (int)getsid(0), (int)getpgid(0), (int)pid);
	mode_t m = umask(0);
	umask(m);
	if (m != CT_UMASK)
		ct_fail("umask is %#o, expected %#o", (unsigned)m, (unsigned)CT_UMASK);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)) || strcmp(cwd, ct.cwd0))
		ct_fail("cwd is %s, expected %s", getcwd(cwd, sizeof(cwd)) ? cwd : "?", ct.cwd0);
	char comm[16] = "";
	prctl(PR_GET_NAME, comm);
	if (strcmp(comm, ct.comm0))
		ct_fail("main thread name is '%s', expected '%s'", comm, ct.comm0);
	sigset_t mask;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&mask, s) != sigismember(&ct.mask0, s))
			ct_fail("main thread signal %d is %sblocked", s, sigismember(&mask, s) ? "" : "un");
	const int sigs[] = { SIGUSR2, SIGTERM, SIGHUP, SIGPIPE };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		sigaction(sigs[i], NULL, &sa);
		bool ours = sigs[i] == SIGUSR2 || sigs[i] == SIGTERM;
		if (ours ? (sa.sa_handler != ct_on_signal || !(sa.sa_flags & SA_RESTART)) : sa.sa_handler != SIG_IGN)
			ct_fail("disposition of signal %d changed", sigs[i]);
	}
	int threads = ct_count_threads();
	if (threads != ct.nthreads)
		ct_fail("%d threads, expected %d", threads, ct.nthreads);
	if (!ct.opt_loose_fds)
		ct_check_fds();
	ct_check_rseq("main thread");
}

/* Starts verification number ct.n+1 with the process-wide checks; the target
 * then adds its own checks and calls ct_verify_end. */
static inline void ct_verify_begin(void)
{
	ct.n++;
	ct.why_len = 0;
	ct.why[0] = 0;
	ct.nfail = 0;
	ct_check_common();
}

/* Writes the verify line; extra (may be NULL) is appended to an ok line. */
static inline bool ct_verify_end(const char *extra)
{
	if (ct.nfail)
		ct_line("verify %u FAIL pid=%d: %s%s", ct.n, (int)getpid(), ct.why,
			ct.nfail > 1 ? " (and more)" : "");
	else
		ct_line("verify %u ok pid=%d%s%s", ct.n, (int)getpid(), extra ? " " : "", extra ? extra : "");
	return ct.nfail == 0;
}

/* Non-blocking: the request that arrived, if any. */
static inline enum ct_event ct_pending(void)
{
	if (ct_term) {
		ct_term = 0;
		ct_usr2 = 0;
		ct_drain_selfpipe();
		return CT_EV_TERM;
	}
	if (ct_usr2) {
		ct_usr2 = 0;
		ct_drain_selfpipe();
		return CT_EV_VERIFY;
	}
	return CT_EV_NONE;
}

/* Blocks the main thread in its waiting shape until a request arrives. */
static inline enum ct_event ct_wait(void)
{
	static volatile uint64_t spin;
	for (;;) {
		__atomic_store_n(&ct_fword, 0, __ATOMIC_SEQ_CST);
		enum ct_event ev = ct_pending();
		if (ev != CT_EV_NONE)
			return ev;
		switch (ct.shape) {
		case CT_WAIT_READ: {
			char b;
			if (read(ct.selfpipe[0], &b, 1) < 0 && errno != EINTR)
				ct_die("read self-pipe: %s", strerror(errno));
			break;
		}
		case CT_WAIT_POLL: {
			struct pollfd p = { .fd = ct.selfpipe[0], .events = POLLIN };
			ppoll(&p, 1, NULL, NULL);
			break;
		}
		case CT_WAIT_FUTEX:
			ct_futex(&ct_fword, FUTEX_WAIT_PRIVATE, 0, NULL);
			break;
		case CT_WAIT_NANOSLEEP: {
			struct timespec ts = { 1, 0 };
			nanosleep(&ts, NULL);
			break;
		}
		case CT_WAIT_SPIN:
			while (!ct_usr2 && !ct_term)
				spin = spin * 6364136223846793005ULL + 1;
			break;
		case CT_WAIT_SIGSUSPEND:
			sigsuspend(&ct.suspend_mask);
			break;
		}
	}
}

/* The main loop of a target whose verify() writes its own verify line:
 * one verification per SIGUSR2 until SIGTERM, then "exit". */
static inline int ct_serve(void (*verify)(void))
{
	ct_ready();
	for (;;) {
		if (ct_wait() == CT_EV_TERM)
			break;
		verify();
	}
	ct_line("exit");
	return 0;
}

/* Pattern helpers shared by the targets: an address-independent function of
 * (seed, index), so a restored process can recompute what it must hold. */
static inline uint64_t ct_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline void ct_fill(unsigned char *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = ct_mix(seed ^ (i * 0x100000001b3ULL));
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* Offset of the first byte that differs from ct_fill(seed), or -1. */
static inline long ct_check_fill(const unsigned char *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = ct_mix(seed ^ (i * 0x100000001b3ULL));
		size_t k = len - i < 8 ? len - i : 8;
		if (memcmp(p + i, &v, k))
			for (size_t b = 0; b < k; b++)
				if (p[i + b] != ((unsigned char *)&v)[b])
					return (long)(i + b);
	}
	return -1;
}

/* For a target with one helper child (kid, asked through the pipe fd req):
 * the verdict of a verification, and on SIGTERM the child told to quit
 * with the message quit (killed if it cannot be told) and reaped. -1: go
 * on; else the target's exit status. */
static inline int ct_verify_end_with_child(enum ct_event ev, pid_t kid, int req, const void *quit, size_t quit_len)
{
	char extra[32];
	snprintf(extra, sizeof(extra), "kid=%d", (int)kid);
	bool ok = ct_verify_end(extra);
	if (ev != CT_EV_TERM)
		return -1;
	if (write(req, quit, quit_len) != (ssize_t)quit_len)
		kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	return ok ? 0 : 1;
}

/* A helper child's answer of len bytes on fd, waited for at most ms. */
static inline bool ct_read_answer(int fd, void *buf, size_t len, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int pr;
	do
		pr = poll(&pf, 1, ms);
	while (pr < 0 && errno == EINTR);
	return pr > 0 && read(fd, buf, len) == (ssize_t)len;
}

#endif
