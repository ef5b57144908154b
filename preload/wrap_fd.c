/* Wrappers of the calls that make, copy or close file descriptors.
 *
 * Cancellation points (open, close, accept, fcntl) go to libc's own function
 * so pthread_cancel behaves as without the shim; the rest are raw system
 * calls, which is what libc does for them anyway. If a wrapper runs before the
 * real function could be resolved (another library's constructor), it uses
 * the raw system call. */
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "shim_internal.h"

/* Fortified programs call these instead of open/openat. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int pidfd_open(pid_t pid, unsigned int flags);

static void opened(int fd, const char *path, int flags)
{
	fp_fd_record(fd, path, flags, (flags & O_CLOEXEC) ? FD_CLOEXEC : 0, FP_FD_UNKNOWN,
		     FP_ORIGIN_PROGRAM);
}

static int raw_openat(int dirfd, const char *path, int flags, int mode)
{
	return (int)fp_sys_ret(fp_sys4(SYS_openat, dirfd, path, flags, mode));
}

#define OPEN_MODE(flags, mode)                          \
	int mode = 0;                                   \
	if (__OPEN_NEEDS_MODE(flags)) {                 \
		va_list ap;                             \
		va_start(ap, flags);                    \
		mode = va_arg(ap, int);                 \
		va_end(ap);                             \
	}

#define OPEN_WRAPPER(name)                                                          \
	FP_EXPORT int name(const char *path, int flags, ...)                        \
	{                                                                           \
		OPEN_MODE(flags, mode)                                              \
		int track = fp_enter();                                             \
		__typeof__(&name) real = FP_REAL(name);                             \
		int fd = real ? real(path, flags, mode)                             \
			      : raw_openat(AT_FDCWD, path, flags, mode);            \
		if (track && fd >= 0)                                               \
			opened(fd, path, flags);                                    \
		return fd;                                                          \
	}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                                        \
	FP_EXPORT int name(int dirfd, const char *path, int flags, ...)             \
	{                                                                           \
		OPEN_MODE(flags, mode)                                              \
		int track = fp_enter();                                             \
		__typeof__(&name) real = FP_REAL(name);                             \
		int fd = real ? real(dirfd, path, flags, mode)                      \
			      : raw_openat(dirfd, path, flags, mode);               \
		if (track && fd >= 0)                                               \
			opened(fd, path, flags);                                    \
		return fd;                                                          \
	}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

#define OPEN2_WRAPPER(name, params, args, dirfd)                                    \
	FP_EXPORT int name params                                                   \
	{                                                                           \
		int track = fp_enter();                                             \
		__typeof__(&name) real = FP_REAL(name);                             \
		int fd = real ? real args : raw_openat(dirfd, path, flags, 0);      \
		if (track && fd >= 0)                                               \
			opened(fd, path, flags);                                    \
		return fd;                                                          \
	}
OPEN2_WRAPPER(__open_2, (const char *path, int flags), (path, flags), AT_FDCWD)
OPEN2_WRAPPER(__open64_2, (const char *path, int flags), (path, flags), AT_FDCWD)
OPEN2_WRAPPER(__openat_2, (int dirfd, const char *path, int flags), (dirfd, path, flags), dirfd)
OPEN2_WRAPPER(__openat64_2, (int dirfd, const char *path, int flags), (dirfd, path, flags),
	      dirfd)

#define CREAT_WRAPPER(name)                                                         \
	FP_EXPORT int name(const char *path, mode_t mode)                           \
	{                                                                           \
		int track = fp_enter();                                             \
		__typeof__(&name) real = FP_REAL(name);                             \
		int flags = O_CREAT | O_WRONLY | O_TRUNC;                           \
		int fd = real ? real(path, mode)                                    \
			      : raw_openat(AT_FDCWD, path, flags, (int)mode);       \
		if (track && fd >= 0)                                               \
			opened(fd, path, flags);                                    \
		return fd;                                                          \
	}
CREAT_WRAPPER(creat)
CREAT_WRAPPER(creat64)

FP_EXPORT int close(int fd)
{
	__typeof__(&close) real = FP_REAL(close);
	if (!fp_enter())
		return real ? real(fd) : (int)fp_sys_ret(fp_sys1(SYS_close, fd));
	int r;
	FP_FD_CLOSING(fd, r = real ? real(fd) : (int)fp_sys_ret(fp_sys1(SYS_close, fd)));
	return r;
}

FP_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	int track = fp_enter() && first <= last &&
		    !(flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC));
	if (track && !(flags & CLOSE_RANGE_CLOEXEC))
		fp_fd_forget_range(first, last);
	long r = fp_sys3(SYS_close_range, first, last, flags);
	if (track && (flags & CLOSE_RANGE_CLOEXEC) && !fp_sys_failed(r))
		fp_fd_cloexec_range(first, last);
	return (int)fp_sys_ret(r);
}

/* dup and F_DUPFD: oldfd is held across the call, so that what is copied
 * into the new slot is what the kernel copied. */
struct dup_from {
	struct fp_fd_hold h;
	struct fp_shim_fd copy;
};

static void dup_begin(struct dup_from *d, int oldfd)
{
	fp_fd_hold(oldfd, &d->h);
}

static void dup_end(struct dup_from *d, long r, int fd_flags)
{
	if (fp_sys_failed(r)) {
		fp_fd_release(&d->h);
		return;
	}
	int known = fp_fd_take_copy(&d->h, &d->copy);
	fp_fd_dup_copied(known ? &d->copy : NULL, (int)r, fd_flags);
}

FP_EXPORT int dup(int oldfd)
{
	if (!fp_enter())
		return (int)fp_sys_ret(fp_sys1(SYS_dup, oldfd));
	struct dup_from d;
	dup_begin(&d, oldfd);
	long r = fp_sys1(SYS_dup, oldfd);
	dup_end(&d, r, 0);
	return (int)fp_sys_ret(r);
}

/* Both numbers held, in fd order (two threads' dup2(a, b) and dup2(b, a)
 * take them in the same order). */
static long dup_onto(int oldfd, int newfd, int flags, int fd_flags)
{
	struct fp_fd_hold lo, hi;
	int old_lo = oldfd < newfd;
	fp_fd_hold(old_lo ? oldfd : newfd, &lo);
	fp_fd_hold_after(old_lo ? newfd : oldfd, &lo, &hi);
	long r = fp_sys3(SYS_dup3, oldfd, newfd, flags);
	if (!fp_sys_failed(r))
		fp_fd_dup_held(old_lo ? &lo : &hi, old_lo ? &hi : &lo, newfd, fd_flags);
	fp_fd_release(&hi);
	fp_fd_release(&lo);
	return r;
}

FP_EXPORT int dup2(int oldfd, int newfd)
{
	if (!fp_enter() || oldfd == newfd)
		return (int)fp_sys_ret(fp_sys2(SYS_dup2, oldfd, newfd));
	return (int)fp_sys_ret(dup_onto(oldfd, newfd, 0, 0));
}

FP_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!fp_enter() || oldfd == newfd)
		return (int)fp_sys_ret(fp_sys3(SYS_dup3, oldfd, newfd, flags));
	return (int)fp_sys_ret(dup_onto(oldfd, newfd, flags, (flags & O_CLOEXEC) ? FD_CLOEXEC : 0));
}

/* The fcntl commands the table follows, with fd held across the call. */
static int fcntl_tracked(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	long r;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		struct dup_from d;
		dup_begin(&d, fd);
		/* libc's failure is -1 with errno set: a failure to dup_end too */
		r = real ? real(fd, cmd, arg) : fp_sys3(SYS_fcntl, fd, cmd, arg);
		dup_end(&d, r, cmd == F_DUPFD_CLOEXEC ? FD_CLOEXEC : 0);
		return real ? (int)r : (int)fp_sys_ret(r);
	}
	struct fp_fd_hold h;
	fp_fd_hold(fd, &h);
	int ret = real ? real(fd, cmd, arg) : (int)fp_sys_ret(fp_sys3(SYS_fcntl, fd, cmd, arg));
	if (ret >= 0) {
		if (cmd == F_SETFD)
			fp_fd_set_fdflags_held(&h, (int)(long)arg & FD_CLOEXEC);
		else
			fp_fd_set_status_held(&h, (int)(long)arg);
	}
	fp_fd_release(&h);
	return ret;
}

#define FCNTL_WRAPPER(name)                                                         \
	FP_EXPORT int name(int fd, int cmd, ...)                                    \
	{                                                                           \
		va_list ap;                                                         \
		va_start(ap, cmd);                                                  \
		void *arg = va_arg(ap, void *);                                     \
		va_end(ap);                                                         \
		__typeof__(&name) real = FP_REAL(name);                             \
		if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC || cmd == F_SETFD ||  \
		     cmd == F_SETFL) && fp_enter())                                 \
			return fcntl_tracked(real, fd, cmd, arg);                   \
		return real ? real(fd, cmd, arg)                                    \
			    : (int)fp_sys_ret(fp_sys3(SYS_fcntl, fd, cmd, arg));    \
	}
FCNTL_WRAPPER(fcntl)
FCNTL_WRAPPER(fcntl64)

/* FIOCLEX and FIONCLEX set and clear close-on-exec as fcntl(F_SETFD) does
 * (Python's os.set_inheritable uses them): the slot follows, so that a
 * rollback that takes the table's word for an fd untouched since a
 * snapshot is not told wrong. Every other request goes straight to the
 * kernel, as libc's ioctl does on x86_64. */
FP_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (!(req == FIOCLEX || req == FIONCLEX) || !fp_enter())
		return (int)fp_sys_ret(fp_sys3(SYS_ioctl, fd, req, arg));
	struct fp_fd_hold h;
	fp_fd_hold(fd, &h);
	long r = fp_sys3(SYS_ioctl, fd, req, arg);
	if (!fp_sys_failed(r))
		fp_fd_set_fdflags_held(&h, req == FIOCLEX ? FD_CLOEXEC : 0);
	fp_fd_release(&h);
	return (int)fp_sys_ret(r);
}

static void pipe_made(const int fds[2], int flags)
{
	int st = flags & (O_NONBLOCK | O_DIRECT);
	int fdfl = (flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
	fp_fd_record(fds[0], NULL, O_RDONLY | st, fdfl, FP_FD_PIPE, FP_ORIGIN_PROGRAM);
	fp_fd_record(fds[1], NULL, O_WRONLY | st, fdfl, FP_FD_PIPE, FP_ORIGIN_PROGRAM);
}

FP_EXPORT int pipe(int fds[2])
{
	int track = fp_enter();
	long r = fp_sys2(SYS_pipe2, fds, 0);
	if (track && !fp_sys_failed(r))
		pipe_made(fds, 0);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int pipe2(int fds[2], int flags)
{
	int track = fp_enter();
	long r = fp_sys2(SYS_pipe2, fds, flags);
	if (track && !fp_sys_failed(r))
		pipe_made(fds, flags);
	return (int)fp_sys_ret(r);
}

static void sock_made(int fd, int type_flags)
{
	fp_fd_record(fd, NULL, O_RDWR | ((type_flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0),
		     (type_flags & SOCK_CLOEXEC) ? FD_CLOEXEC : 0, FP_FD_SOCKET,
		     FP_ORIGIN_PROGRAM);
}

FP_EXPORT int socket(int domain, int type, int protocol)
{
	int track = fp_enter();
	long r = fp_sys3(SYS_socket, domain, type, protocol);
	if (track && !fp_sys_failed(r))
		sock_made((int)r, type);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
	int track = fp_enter();
	long r = fp_sys4(SYS_socketpair, domain, type, protocol, sv);
	if (track && !fp_sys_failed(r)) {
		sock_made(sv[0], type);
		sock_made(sv[1], type);
	}
	return (int)fp_sys_ret(r);
}

FP_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int track = fp_enter();
	__typeof__(&accept) real = FP_REAL(accept);
	int r = real ? real(fd, addr, len) : (int)fp_sys_ret(fp_sys4(SYS_accept4, fd, addr, len, 0));
	if (track && r >= 0)
		sock_made(r, 0);
	return r;
}

FP_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int track = fp_enter();
	__typeof__(&accept4) real = FP_REAL(accept4);
	int r = real ? real(fd, addr, len, flags)
		     : (int)fp_sys_ret(fp_sys4(SYS_accept4, fd, addr, len, flags));
	if (track && r >= 0)
		sock_made(r, flags);
	return r;
}

/* fds passed with SCM_RIGHTS are new fds of this process too */
FP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	int track = fp_enter();
	__typeof__(&recvmsg) real = FP_REAL(recvmsg);
	ssize_t r = real ? real(fd, msg, flags)
			 : (ssize_t)fp_sys_ret(fp_sys3(SYS_recvmsg, fd, msg, flags));
	if (!track || r < 0 || !msg || !msg->msg_control ||
	    msg->msg_controllen < sizeof(struct cmsghdr))
		return r;
	int saved = errno;
	char *p = msg->msg_control, *end = p + msg->msg_controllen;
	while ((size_t)(end - p) >= sizeof(struct cmsghdr)) {
		struct cmsghdr *c = (struct cmsghdr *)p;
		if (c->cmsg_len < sizeof(struct cmsghdr) || c->cmsg_len > (size_t)(end - p))
			break;
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			const char *data = (const char *)CMSG_DATA(c);
			for (size_t i = 0; i < n; i++) {
				int nfd;
				__builtin_memcpy(&nfd, data + i * sizeof(int), sizeof(int));
				long fl = fp_sys3(SYS_fcntl, nfd, F_GETFL, 0);
				fp_fd_record(nfd, NULL, fp_sys_failed(fl) ? 0 : (int)fl,
					     (flags & MSG_CMSG_CLOEXEC) ? FD_CLOEXEC : 0,
					     FP_FD_UNKNOWN, FP_ORIGIN_PROGRAM);
			}
		}
		p += CMSG_ALIGN(c->cmsg_len);
	}
	errno = saved;
	return r;
}

static void anon_made(int fd, int nonblock, int cloexec, int type, int accmode)
{
	fp_fd_record(fd, NULL, accmode | (nonblock ? O_NONBLOCK : 0), cloexec ? FD_CLOEXEC : 0,
		     type, FP_ORIGIN_PROGRAM);
}

FP_EXPORT int eventfd(unsigned int initval, int flags)
{
	int track = fp_enter();
	long r = fp_sys2(SYS_eventfd2, initval, flags);
	if (track && !fp_sys_failed(r))
		anon_made((int)r, flags & EFD_NONBLOCK, flags & EFD_CLOEXEC, FP_FD_EVENTFD, O_RDWR);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int timerfd_create(clockid_t clock, int flags)
{
	int track = fp_enter();
	long r = fp_sys2(SYS_timerfd_create, clock, flags);
	if (track && !fp_sys_failed(r))
		anon_made((int)r, flags & TFD_NONBLOCK, flags & TFD_CLOEXEC, FP_FD_TIMERFD, O_RDWR);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	int track = fp_enter();
	long r = fp_sys4(SYS_signalfd4, fd, mask, sizeof(fp_ksigset), flags);
	/* with an existing fd this only changes its mask */
	if (track && !fp_sys_failed(r) && fd == -1)
		anon_made((int)r, flags & SFD_NONBLOCK, flags & SFD_CLOEXEC, FP_FD_SIGNALFD,
			  O_RDWR);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int epoll_create(int size)
{
	int track = fp_enter();
	long r = fp_sys1(SYS_epoll_create, size);
	if (track && !fp_sys_failed(r))
		anon_made((int)r, 0, 0, FP_FD_EPOLL, O_RDWR);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int epoll_create1(int flags)
{
	int track = fp_enter();
	long r = fp_sys1(SYS_epoll_create1, flags);
	if (track && !fp_sys_failed(r))
		anon_made((int)r, 0, flags & EPOLL_CLOEXEC, FP_FD_EPOLL, O_RDWR);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int memfd_create(const char *name, unsigned int flags)
{
	int track = fp_enter();
	long r = fp_sys2(SYS_memfd_create, name, flags);
	if (track && !fp_sys_failed(r)) {
		char path[FP_SHIM_PATH_MAX] = "memfd:";
		size_t n = 6;
		for (const char *p = name; p && *p && n < sizeof(path) - 1; p++)
			path[n++] = *p;
		path[n] = '\0';
		fp_fd_record((int)r, path, O_RDWR, (flags & MFD_CLOEXEC) ? FD_CLOEXEC : 0,
			     FP_FD_MEMFD, FP_ORIGIN_PROGRAM);
	}
	return (int)fp_sys_ret(r);
}

FP_EXPORT int inotify_init(void)
{
	int track = fp_enter();
	long r = fp_sys1(SYS_inotify_init1, 0);
	if (track && !fp_sys_failed(r))
		anon_made((int)r, 0, 0, FP_FD_INOTIFY, O_RDONLY);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int inotify_init1(int flags)
{
	int track = fp_enter();
	long r = fp_sys1(SYS_inotify_init1, flags);
	if (track && !fp_sys_failed(r))
		anon_made((int)r, flags & IN_NONBLOCK, flags & IN_CLOEXEC, FP_FD_INOTIFY, O_RDONLY);
	return (int)fp_sys_ret(r);
}

FP_EXPORT int pidfd_open(pid_t pid, unsigned int flags)
{
	int track = fp_enter();
	long r = fp_sys2(SYS_pidfd_open, pid, flags);
	/* pidfds are always close-on-exec; PIDFD_NONBLOCK is O_NONBLOCK */
	if (track && !fp_sys_failed(r))
		anon_made((int)r, flags & O_NONBLOCK, 1, FP_FD_PIDFD, O_RDWR);
	return (int)fp_sys_ret(r);
}
