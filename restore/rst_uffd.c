/* Filling the target's anonymous memory with UFFDIO_COPY.
 *
 * process_vm_writev into memory the target never touched takes a page fault
 * per 4 KiB page (allocate, zero, map) and then copies: about 2.7 µs a page
 * on this machine. UFFDIO_COPY allocates, copies and maps in one go, without
 * zeroing and without the fault: about 1.45 µs a page, 0.75 with two threads
 * (measured on 256 MiB). A userfaultfd acts on the memory of the process that
 * created it, whoever holds it, so the target makes one (an injected call),
 * the restorer takes it with pidfd_getfd, and the target's copy is closed.
 *
 * While a range is registered, anything touching a missing page in it waits
 * for us: the target's own accesses, the kernel's on its behalf, and
 * process_vm_writev or /proc/PID/mem writes from us. So only the page
 * writers touch registered memory, and every range is unregistered before
 * the restore goes on to anything that reads the memory (rst_pages_wait).
 * Only private anonymous VMAs can be registered this way; the rest of the
 * pages still go by process_vm_writev. */
#include "restore/rst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int rst_uffd_open(rst_proc *p, int *fd, fp_error *err)
{
	int64_t tfd = -1;
	*fd = -1;
	if (rst_sys(p, p->pid, "userfaultfd", SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0, &tfd, err))
		return -1;
	int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	int e = errno;
	if (pidfd >= 0) {
		*fd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)tfd, 0);
		e = errno;
		close(pidfd);
	}
	/* The target's copy goes with the next flush. */
	if (rst_q(p, p->pid, "closing the userfaultfd", RST_MUST, SYS_close, (uint64_t)tfd, 0, 0, 0, 0, 0, NULL, err))
		return -1;
	if (*fd < 0)
		return fp_fail(err, e, "cannot take the target's userfaultfd: %s", strerror(e));
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(*fd, UFFDIO_API, &api)) {
		e = errno;
		close(*fd);
		*fd = -1;
		return fp_fail(err, e, "UFFDIO_API: %s", strerror(e));
	}
	return 0;
}

int rst_uffd_register(int fd, uint64_t start, uint64_t len)
{
	struct uffdio_register reg = { .range = { start, len }, .mode = UFFDIO_REGISTER_MODE_MISSING };
	return ioctl(fd, UFFDIO_REGISTER, &reg);
}

void rst_uffd_unregister(int fd, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { start, len };
	ioctl(fd, UFFDIO_UNREGISTER, &r);
}

int rst_uffd_copy(int fd, uint64_t dst, const void *src, uint64_t len, fp_error *err)
{
	uint64_t done = 0;
	for (int tries = 0; done < len; tries++) {
		struct uffdio_copy c = { .dst = dst + done, .src = (uint64_t)(uintptr_t)src + done, .len = len - done };
		if (ioctl(fd, UFFDIO_COPY, &c) == 0) {
			done = len;
			break;
		}
		int e = errno;
		if (c.copy > 0)
			done += (uint64_t)c.copy;
		if ((e == EAGAIN || e == EINTR) && tries < 1000)
			continue; /* the target's mm changed meanwhile, or a signal: go on */
		return fp_fail(err, e, "UFFDIO_COPY of %llu bytes at 0x%llx: %s", (unsigned long long)(len - done),
			       (unsigned long long)(dst + done), strerror(e));
	}
	return 0;
}
