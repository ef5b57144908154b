/* The bytes queued in a pipe, without taking them out (dump_int.h): for the
 * dump's pipes-data.img (dump_files.c) and for a rollback in place, which
 * compares them with SNAP's (helper/session/rollback_queues.c). tee()
 * duplicates the pipe's buffers into a pipe of ours; the target's pipe
 * keeps them. */
#include "dump/dump_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The file behind fd FD of PID, as a new fd of ours, -1 if it cannot be had. */
static int pidfd_getfd_of(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -1;
	int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	return got;
}

/* bytes queued in pfd, copied into *data (NULL when none) */
static int tee_out(int pfd, int queued, int size, uint8_t **data, uint64_t ino, pid_t pid, int fd, fp_error *err)
{
	int mine[2];
	*data = NULL;
	if (pipe2(mine, O_CLOEXEC | O_NONBLOCK) < 0)
		return fp_fail(err, errno, "pipe: %s", strerror(errno));
	int rc = 0;
	if (fcntl(mine[1], F_SETPIPE_SZ, size) < size) {
		rc = fp_fail_code(err, FP_EXIT_UNSUPPORTED, errno,
				  "pipe %" PRIu64 " (fd %d of %d) has a %d-byte buffer and this process cannot make one that "
				  "big (no CAP_SYS_RESOURCE; /proc/sys/fs/pipe-max-size): its queued data cannot be copied",
				  ino, fd, pid, size);
	}
	ssize_t t = rc ? 0 : tee(pfd, mine[1], (size_t)queued, SPLICE_F_NONBLOCK);
	if (!rc && t != queued)
		rc = fp_fail(err, t < 0 ? errno : EIO, "tee from pipe %" PRIu64 " (fd %d of %d) copied %zd of %d bytes%s%s",
			     ino, fd, pid, t, queued, t < 0 ? ": " : "", t < 0 ? strerror(errno) : "");
	uint8_t *b = rc ? NULL : malloc((size_t)queued);
	if (!rc && !b)
		rc = fp_fail(err, ENOMEM, "out of memory");
	for (size_t got = 0; !rc && got < (size_t)queued;) {
		ssize_t r = read(mine[0], b + got, (size_t)queued - got);
		if (r <= 0)
			rc = fp_fail(err, r < 0 ? errno : EIO, "reading back pipe data: %s", r < 0 ? strerror(errno) : "EOF");
		else
			got += (size_t)r;
	}
	close(mine[0]);
	close(mine[1]);
	if (rc) {
		free(b);
		return -1;
	}
	*data = b;
	return 0;
}

int dump_pipe_peek(pid_t pid, int fd, uint64_t ino, struct dump_pipe_bytes *out, fp_error *err)
{
	memset(out, 0, sizeof(*out));
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	int pfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	bool readable = true;
	if (pfd < 0 && (errno == EACCES || errno == EPERM)) {
		/* A pipe made by another user (one the process inherited from
		 * root, say) is 0600 to its maker: a non-root dumper cannot
		 * reopen it, but may take the process's own file, which can be
		 * queried and, when it is a read end, tee'd. */
		int open_errno = errno;
		pfd = pidfd_getfd_of(pid, fd);
		if (pfd < 0)
			return fp_fail(err, open_errno, "cannot open %s to read the pipe's queued data: %s", path,
				       strerror(open_errno));
		int fl = fcntl(pfd, F_GETFL);
		readable = fl >= 0 && (fl & O_ACCMODE) != O_WRONLY;
	} else if (pfd < 0) {
		return fp_fail(err, errno, "cannot open %s to read the pipe's queued data: %s", path, strerror(errno));
	}
	int queued = 0, rc = 0;
	int size = fcntl(pfd, F_GETPIPE_SZ);
	if (ioctl(pfd, FIONREAD, &queued) < 0)
		queued = -1;
	if (queued < 0 || size < 0)
		rc = fp_fail(err, errno, "cannot query pipe %" PRIu64 " (fd %d of %d): %s", ino, fd, pid, strerror(errno));
	else if (queued > 0 && !readable)
		rc = fp_fail(err, EACCES,
			     "pipe %" PRIu64 " (fd %d of %d, its write end) holds %d queued byte(s) and belongs to another "
			     "user: this user cannot open it to read them (dump as root, or let its reader drain it)",
			     ino, fd, pid, queued);
	else if (queued > 0)
		rc = tee_out(pfd, queued, size, &out->data, ino, pid, fd, err);
	close(pfd);
	if (rc)
		return -1;
	out->queued = queued;
	out->size = size;
	return 0;
}
