/* stdio, dirent and mkstemp wrappers. libc opens the fds of these inside
 * itself (not through open's PLT entry), so the wrapper records the fd the
 * result holds. Closing ones clear the slot before libc closes the fd. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "shim_internal.h"

/* real: libc's function; without it (a static program, a broken loader)
 * the call fails as a system call the kernel lacks would. */
#define REAL_OR_ENOSYS(name, fail)                       \
	__typeof__(&name) real = FP_REAL(name);          \
	if (!real) {                                     \
		errno = ENOSYS;                          \
		return fail;                             \
	}

/* open(2) flags for an fopen mode string, as glibc reads it */
static int mode_flags(const char *mode)
{
	int fl;
	if (!mode)
		return 0;
	switch (mode[0]) {
	case 'r':
		fl = O_RDONLY;
		break;
	case 'w':
		fl = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		fl = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return 0;
	}
	for (const char *p = mode + 1; *p && *p != ','; p++) {
		if (*p == '+')
			fl = (fl & ~O_ACCMODE) | O_RDWR;
		else if (*p == 'x')
			fl |= O_EXCL;
		else if (*p == 'e')
			fl |= O_CLOEXEC;
	}
	return fl;
}

static void stream_opened(FILE *f, const char *path, const char *mode)
{
	int fd = f ? fileno(f) : -1;
	if (fd < 0)
		return;
	int fl = mode_flags(mode);
	fp_fd_record(fd, path, fl, (fl & O_CLOEXEC) ? FD_CLOEXEC : 0, FP_FD_UNKNOWN,
		     FP_ORIGIN_PROGRAM);
}

#define FOPEN_WRAPPER(name)                                              \
	FP_EXPORT FILE *name(const char *path, const char *mode)         \
	{                                                                \
		int track = fp_enter();                                  \
		REAL_OR_ENOSYS(name, NULL);                  \
		FILE *f = real(path, mode);                              \
		if (track && f) {                                        \
			int saved = errno;                               \
			stream_opened(f, path, mode);                    \
			errno = saved;                                   \
		}                                                        \
		return f;                                                \
	}
FOPEN_WRAPPER(fopen)
FOPEN_WRAPPER(fopen64)

/* The stream's fd, without the EBADF fileno sets on a stream without one. */
static int stream_fd(FILE *f)
{
	int saved = errno;
	int fd = fileno(f);
	errno = saved;
	return fd;
}

FP_EXPORT int fclose(FILE *f)
{
	REAL_OR_ENOSYS(fclose, EOF);
	int r;
	FP_FD_CLOSING(fp_enter() && f ? stream_fd(f) : -1, r = real(f));
	return r;
}

/* freopen closes the stream's fd and opens path, which may or may not get
 * the same number: the old number is held across the call (a cancellation
 * point too), and the new fd is recorded once it is let go. path NULL
 * reopens the same file with another mode. */
#define FREOPEN_WRAPPER(name)                                                       \
	FP_EXPORT FILE *name(const char *path, const char *mode, FILE *f)           \
	{                                                                           \
		int track = fp_enter();                                             \
		REAL_OR_ENOSYS(name, NULL);                                         \
		char old_path[FP_SHIM_PATH_MAX];                                    \
		old_path[0] = '\0';                                                 \
		int fd = track && f ? stream_fd(f) : -1;                            \
		if (fd >= 0 && !path) {                                             \
			uint64_t d_, i_;                                            \
			int t_;                                                     \
			fp_fd_describe(fd, old_path, &d_, &i_, &t_);                \
		}                                                                   \
		FILE *r;                                                            \
		FP_FD_CLOSING(fd, r = real(path, mode, f));                         \
		if (track && r) {                                                   \
			int saved = errno;                                          \
			stream_opened(r, path ? path : old_path, mode);             \
			errno = saved;                                              \
		}                                                                   \
		return r;                                                           \
	}
FREOPEN_WRAPPER(freopen)
FREOPEN_WRAPPER(freopen64)

#define TMPFILE_WRAPPER(name)                                           \
	FP_EXPORT FILE *name(void)                                      \
	{                                                               \
		int track = fp_enter();                                 \
		REAL_OR_ENOSYS(name, NULL);                 \
		FILE *f = real();                                       \
		if (track && f) {                                       \
			int saved = errno;                              \
			stream_opened(f, NULL, "w+");                   \
			errno = saved;                                  \
		}                                                       \
		return f;                                               \
	}
TMPFILE_WRAPPER(tmpfile)
TMPFILE_WRAPPER(tmpfile64)

/* No new fd, but glibc may set O_APPEND on it ("a") */
FP_EXPORT FILE *fdopen(int fd, const char *mode)
{
	int track = fp_enter();
	REAL_OR_ENOSYS(fdopen, NULL);
	struct fp_fd_hold h;
	fp_fd_hold(track ? fd : -1, &h);
	FILE *f = real(fd, mode);
	if (f) {
		long fl = fp_sys3(SYS_fcntl, fd, F_GETFL, 0);
		if (!fp_sys_failed(fl))
			fp_fd_set_status_held(&h, (int)fl);
		long fdfl = fp_sys3(SYS_fcntl, fd, F_GETFD, 0);
		if (!fp_sys_failed(fdfl))
			fp_fd_set_fdflags_held(&h, (int)(fdfl & FD_CLOEXEC));
	}
	fp_fd_release(&h);
	return f;
}

FP_EXPORT DIR *opendir(const char *path)
{
	int track = fp_enter();
	REAL_OR_ENOSYS(opendir, NULL);
	DIR *d = real(path);
	if (track && d) {
		int saved = errno;
		int fd = dirfd(d);
		/* the flags glibc opens directories with */
		if (fd >= 0)
			fp_fd_record(fd, path, O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC,
				     FD_CLOEXEC, FP_FD_DIR, FP_ORIGIN_PROGRAM);
		errno = saved;
	}
	return d;
}

FP_EXPORT int closedir(DIR *d)
{
	REAL_OR_ENOSYS(closedir, -1);
	int r;
	FP_FD_CLOSING(fp_enter() ? dirfd(d) : -1, r = real(d));
	return r;
}

static void temp_made(int fd, const char *tmpl, int flags)
{
	flags |= O_RDWR | O_CREAT | O_EXCL;
	fp_fd_record(fd, tmpl, flags, (flags & O_CLOEXEC) ? FD_CLOEXEC : 0, FP_FD_REG,
		     FP_ORIGIN_PROGRAM);
}

#define MKSTEMP_WRAPPER(name, params, args, flags)                       \
	FP_EXPORT int name params                                        \
	{                                                                \
		int track = fp_enter();                                  \
		REAL_OR_ENOSYS(name, -1);                  \
		int fd = real args;                                      \
		if (track && fd >= 0)                                    \
			temp_made(fd, tmpl, flags);                      \
		return fd;                                               \
	}
MKSTEMP_WRAPPER(mkstemp, (char *tmpl), (tmpl), 0)
MKSTEMP_WRAPPER(mkstemp64, (char *tmpl), (tmpl), 0)
MKSTEMP_WRAPPER(mkostemp, (char *tmpl, int fl), (tmpl, fl), fl)
MKSTEMP_WRAPPER(mkostemp64, (char *tmpl, int fl), (tmpl, fl), fl)
MKSTEMP_WRAPPER(mkstemps, (char *tmpl, int sfx), (tmpl, sfx), 0)
MKSTEMP_WRAPPER(mkostemps, (char *tmpl, int sfx, int fl), (tmpl, sfx, fl), fl)
