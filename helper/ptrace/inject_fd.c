/* An fd of another process given to the traced one, as the same open file
 * description (inject.h: fp_inject_dup_from). Nothing else installs an fd
 * in a process: the process takes it itself, by pidfd_getfd on the other
 * one, run as injected calls. */
#include "ptrace/inject.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

static int call(fp_inject *ij, long nr, uint64_t a0, uint64_t a1, uint64_t a2, int64_t *ret, fp_error *err)
{
	const uint64_t args[6] = { a0, a1, a2, 0, 0, 0 };
	return fp_inject_call(ij, nr, args, ret, err);
}

int fp_inject_dup_from(fp_inject *ij, pid_t src_pid, int src_fd, int fd, bool cloexec, fp_error *err)
{
	pid_t self = ij->proc->pid;
	int64_t pidfd = -1, got = (int64_t)src_fd, r = 0, ignored;
	const char *what = "pidfd_open";
	int rc = 0;
	if (src_pid != self) {
		rc = call(ij, SYS_pidfd_open, (uint64_t)src_pid, 0, 0, &pidfd, err);
		if (!rc && pidfd >= 0) {
			what = "pidfd_getfd";
			rc = call(ij, SYS_pidfd_getfd, (uint64_t)pidfd, (uint64_t)src_fd, 0, &got, err);
		}
		r = pidfd < 0 ? pidfd : got;
	}
	if (!rc && r >= 0 && got != fd) {
		what = "dup3";
		rc = call(ij, SYS_dup3, (uint64_t)got, (uint64_t)fd, cloexec ? O_CLOEXEC : 0, &r, err);
	} else if (!rc && r >= 0) { /* got landed on fd itself: its own flag */
		what = "fcntl(F_SETFD)";
		rc = call(ij, SYS_fcntl, (uint64_t)fd, F_SETFD, cloexec ? FD_CLOEXEC : 0, &r, err);
	}
	if (src_pid != self && got >= 0 && got != fd && got != src_fd)
		call(ij, SYS_close, (uint64_t)got, 0, 0, &ignored, NULL);
	if (pidfd >= 0)
		call(ij, SYS_close, (uint64_t)pidfd, 0, 0, &ignored, NULL);
	if (rc)
		return -1;
	if (r < 0)
		return fp_fail(err, (int)-r, "process %d: %s for fd %d of %d (onto its fd %d): %s", (int)self, what, src_fd,
			       (int)src_pid, fd, strerror((int)-r));
	return 0;
}
