/* The BPF iterators over a process's fds (helper/dump/dump_fdfiles_bpf.c)
 * against /proc, on a live child with 1,500 fds:
 *  - the close-on-exec bitmap: every fd's bit is fdinfo's O_CLOEXEC, also
 *    after the child flips some with raw fcntl(F_SETFD) system calls, and
 *    fds above the first 512 (records of 512 fds each) are covered;
 *  - the open file descriptions' addresses: two fds have one address
 *    exactly when kcmp calls them one description (dups against separate
 *    opens of one file), and dump_fdesc_cmp agrees with kcmp's order;
 *  - each fd's offset, status flags, inode number and device: those of a
 *    copy of the fd (pidfd_getfd), through lseek, F_GETFL and fstat;
 *  - whether its inode has locks: a flock, a POSIX and an OFD lock on
 *    three files, none on the others. */
#include "fp_test.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dump/dump_int.h"

#define NFDS 1500
#define LOCKED_FD 1800

static pid_t child_with_fds(int *go, int *done)
{
	int ready[2], cmd[2];
	if (pipe(ready) || pipe(cmd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(cmd[1]);
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_max < NFDS + 16)
			_exit(1);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		/* fds 900-903: a flock'ed file, a POSIX-locked one, an OFD-locked
		 * one, and one without a lock */
		static const char *const name[] = { "/tmp/fp-fdbpf-flock", "/tmp/fp-fdbpf-posix", "/tmp/fp-fdbpf-ofd",
						     "/tmp/fp-fdbpf-none" };
		for (int i = 0; i < 4; i++) {
			int f = open(name[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
			if (f < 0 || dup2(f, LOCKED_FD + i) < 0)
				_exit(6);
			close(f);
			unlink(name[i]);
		}
		struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
		if (flock(LOCKED_FD, LOCK_EX) || fcntl(LOCKED_FD + 1, F_SETLK, &lk) ||
		    fcntl(LOCKED_FD + 2, F_OFD_SETLK, &lk))
			_exit(7);
		int first = -1;
		for (int i = 0; i < NFDS; i++) {
			/* every third a dup of the one before; a third of the
			 * opens without O_CLOEXEC */
			int fd = i % 3 == 2 ? fcntl(first, i % 2 ? F_DUPFD_CLOEXEC : F_DUPFD, 0)
					    : open("/proc/self/exe", O_RDONLY | (i % 3 ? O_CLOEXEC : 0));
			if (fd < 0)
				_exit(2);
			if (i % 3 != 2)
				lseek(fd, i, SEEK_SET);
			if (i % 5 == 0)
				fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND);
			first = fd;
		}
		char c = 'r';
		if (write(ready[1], &c, 1) != 1)
			_exit(3);
		/* on the word: flip the flag of every seventh fd from 600 on,
		 * by the system call itself */
		if (read(cmd[0], &c, 1) != 1)
			_exit(4);
		for (int fd = 600; fd < NFDS; fd += 7) {
			long fl = syscall(SYS_fcntl, fd, F_GETFD, 0);
			if (fl >= 0)
				syscall(SYS_fcntl, fd, F_SETFD, fl ^ FD_CLOEXEC);
		}
		if (write(ready[1], &c, 1) != 1)
			_exit(5);
		pause();
		_exit(0);
	}
	close(ready[1]);
	close(cmd[0]);
	char c;
	if (read(ready[0], &c, 1) != 1)
		return -1;
	*go = cmd[1];
	*done = ready[0];
	return pid;
}

/* fdinfo's close-on-exec flag of pid's fd: 0, 1, or -1 if not open */
static int fdinfo_cloexec(pid_t pid, int fd)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
	if (f >= 0)
		close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *fl = strstr(buf, "flags:");
	unsigned long v = fl ? strtoul(fl + 6, NULL, 8) : 0;
	return fl ? (v & O_CLOEXEC) != 0 : -1;
}

static void check_bits(pid_t pid, const char *when)
{
	uint64_t *w = NULL;
	size_t nw = 0;
	CHECKF(dump_cloexec_bpf(pid, &w, &nw) == 0, "%s: the close-on-exec iterator failed", when);
	CHECKF(nw * 64 >= NFDS + 3, "%s: %zu words for %d fds", when, nw, NFDS + 3);
	int bad = 0, seen = 0, set = 0;
	for (int fd = 0; fd < NFDS + 3 && (size_t)fd < nw * 64; fd++) {
		int live = fdinfo_cloexec(pid, fd);
		if (live < 0)
			continue;
		int bit = (int)((w[fd / 64] >> (fd % 64)) & 1);
		if (bit != live && bad++ < 5)
			fprintf(stderr, "%s: fd %d: bit %d, fdinfo %d\n", when, fd, bit, live);
		seen++;
		set += bit;
	}
	CHECKF(!bad && seen >= NFDS && set > NFDS / 3 && set < seen, "%s: %d of %d fds differ (%d set)", when, bad, seen,
	       set);
	free(w);
}

static void check_files(pid_t pid)
{
	struct dump_kfile *k = NULL;
	size_t n = 0;
	CHECK(dump_fdfiles_bpf(pid, &k, &n) == 0);
	CHECKF(n >= NFDS, "%zu fds from the iterator", n);
	int bad = 0, same = 0;
	for (int fd = 3; fd + 1 < NFDS + 3; fd++) {
		uint64_t a = dump_fdfile_of(k, n, fd), b = dump_fdfile_of(k, n, fd + 1);
		long kc = syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd, fd + 1);
		int cmp = dump_fdesc_cmp(pid, fd, a, pid, fd + 1, b), by_kcmp = dump_fdesc_cmp(pid, fd, 0, pid, fd + 1, 0);
		bad += !a || !b || (a == b) != (kc == 0) || (cmp == 0) != (kc == 0) ||
		       by_kcmp != (kc == 0 ? 0 : kc == 1 ? -1 : 1);
		same += a == b;
	}
	CHECKF(!bad && same >= NFDS / 3 - 8, "%d pairs differ from kcmp, %d pairs shared", bad, same);
	/* each fd's offset, status flags and inode, against a copy of it */
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), seen = 0;
	bad = 0;
	for (size_t i = 0; i < n && pidfd >= 0; i++) {
		int c = (int)syscall(SYS_pidfd_getfd, pidfd, (int)k[i].fd, 0);
		struct stat st;
		if (c < 0 || fstat(c, &st)) {
			if (c >= 0)
				close(c);
			continue;
		}
		off_t at = lseek(c, 0, SEEK_CUR);
		int fl = fcntl(c, F_GETFL);
		if ((S_ISREG(st.st_mode) && (uint64_t)at != k[i].pos) || (uint32_t)fl != k[i].flags ||
		    k[i].ino != (uint64_t)st.st_ino || k[i].dev != (uint32_t)st.st_dev) {
			if (bad++ < 5)
				fprintf(stderr, "fd %d: pos %lld/%llu flags %o/%o ino %llu/%llu dev %llx/%x\n", (int)k[i].fd,
					(long long)at, (unsigned long long)k[i].pos, fl, k[i].flags,
					(unsigned long long)st.st_ino, (unsigned long long)k[i].ino,
					(unsigned long long)st.st_dev, k[i].dev);
		}
		seen += S_ISREG(st.st_mode);
		close(c);
	}
	if (pidfd >= 0)
		close(pidfd);
	CHECKF(!bad && seen >= NFDS, "%d of %d fds' offset, flags or inode differ from a copy's", bad, seen);
	/* locks: on the three locked files' fds only */
	int locked = 0, at_locked = 0;
	for (size_t i = 0; i < n; i++) {
		locked += k[i].locked != 0;
		at_locked += k[i].locked && k[i].fd >= LOCKED_FD && k[i].fd < LOCKED_FD + 3;
	}
	CHECKF(locked == 3 && at_locked == 3, "%d fds seen locked, %d of them the locked files' (3 each)", locked,
	       at_locked);
	free(k);
}

int main(void)
{
	if (geteuid())
		SKIP("needs root (BPF iterators)");
	int go = -1, done = -1;
	pid_t pid = child_with_fds(&go, &done);
	CHECK(pid > 0);
	if (pid <= 0)
		return fp_test_done();
	dump_vmflags_bpf_warm();
	/* loaded by a thread of its own: wait for it, with a deadline */
	uint64_t *w = NULL;
	size_t nw;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc;
	do {
		rc = dump_cloexec_bpf(pid, &w, &nw);
		free(w);
		w = NULL;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (rc)
			usleep(20000); /* polling a load we cannot wait on otherwise */
	} while (rc && t.tv_sec - t0.tv_sec < 30);
	if (rc) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		SKIP("the close-on-exec BPF iterator did not load here (FP_BPF_DEBUG=1 says why)");
	}
	check_bits(pid, "at the start");
	check_files(pid);
	char c = 'g';
	CHECK(write(go, &c, 1) == 1);
	CHECK(read(done, &c, 1) == 1);
	check_bits(pid, "after raw F_SETFDs");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return fp_test_done();
}
