/* One rule, shared by the shim (seeding and resync) and the helper's checker,
 * for the type of an fd from its st_mode and its /proc/PID/fd link. Keeping it
 * in one header means both sides classify an fd the same way. Header-only,
 * allocation-free and async-signal-safe (the shim calls it from wrappers). */
#ifndef FP_SHIM_FDTYPE_H
#define FP_SHIM_FDTYPE_H

#include <string.h>
#include <sys/stat.h>

#include "shim_table.h"

static inline int fp_fdtype_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Anon inodes (st_mode has no file type bits) are named by their link:
 * "anon_inode:[eventfd]", "anon_inode:inotify", ... */
static inline enum fp_fd_type fp_fdtype_from_anon_link(const char *link)
{
	if (!link || !fp_fdtype_prefix(link, "anon_inode:"))
		return FP_FD_OTHER_ANON;
	const char *n = link + strlen("anon_inode:");
	if (*n == '[')
		n++;
	if (fp_fdtype_prefix(n, "eventfd"))
		return FP_FD_EVENTFD;
	if (fp_fdtype_prefix(n, "timerfd"))
		return FP_FD_TIMERFD;
	if (fp_fdtype_prefix(n, "signalfd"))
		return FP_FD_SIGNALFD;
	if (fp_fdtype_prefix(n, "eventpoll"))
		return FP_FD_EPOLL;
	if (fp_fdtype_prefix(n, "inotify"))
		return FP_FD_INOTIFY;
	if (fp_fdtype_prefix(n, "pidfd"))
		return FP_FD_PIDFD;
	return FP_FD_OTHER_ANON;
}

/* link may be NULL when unknown: then pipes are told from FIFOs by
 * pipefs_dev (the st_dev of an anonymous pipe; 0 if unknown) and anon inodes
 * stay FP_FD_OTHER_ANON. */
static inline enum fp_fd_type fp_fdtype_classify(unsigned mode, const char *link,
						 unsigned long long dev,
						 unsigned long long pipefs_dev)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		/* memfds are regular shmem files named "/memfd:NAME (deleted)" */
		if (link && fp_fdtype_prefix(link, "/memfd:"))
			return FP_FD_MEMFD;
		/* pidfs (6.9+) gives pidfds a regular-file mode */
		if (link && fp_fdtype_prefix(link, "pidfd:"))
			return FP_FD_PIDFD;
		return FP_FD_REG;
	case S_IFDIR:
		return FP_FD_DIR;
	case S_IFIFO:
		if (link)
			return fp_fdtype_prefix(link, "pipe:") ? FP_FD_PIPE : FP_FD_FIFO;
		return (pipefs_dev && dev == pipefs_dev) ? FP_FD_PIPE : FP_FD_FIFO;
	case S_IFSOCK:
		return FP_FD_SOCKET;
	case S_IFCHR:
		return FP_FD_CHR;
	case S_IFBLK:
		return FP_FD_BLK;
	case 0:
		return fp_fdtype_from_anon_link(link);
	default:
		return FP_FD_UNKNOWN;
	}
}

/* Do two names of a file end in the same last component (ignoring the
 * kernel's " (deleted)")? How the path a program named, maybe relative, is
 * matched with the kernel's absolute one when the file's identity (dev/ino)
 * was not recorded. a is the program's name. */
static inline int fp_same_basename(const char *a, size_t al, const char *b, size_t bl)
{
	static const char del[] = " (deleted)";
	const size_t dl = sizeof(del) - 1;
	if (al >= dl && !memcmp(a + al - dl, del, dl))
		al -= dl;
	if (bl >= dl && !memcmp(b + bl - dl, del, dl))
		bl -= dl;
	size_t ab = al, bb = bl;
	while (ab && a[ab - 1] != '/')
		ab--;
	while (bb && b[bb - 1] != '/')
		bb--;
	/* "." and ".." (opendir(".")) name a directory by where it is */
	if ((al - ab == 1 && a[ab] == '.') || (al - ab == 2 && a[ab] == '.' && a[ab + 1] == '.'))
		return 1;
	return al - ab == bl - bb && !memcmp(a + ab, b + bb, al - ab);
}

static inline const char *fp_fdtype_name(int t)
{
	static const char *const names[] = {
		"unknown", "reg",     "dir",      "pipe",  "fifo",    "socket",
		"chr",     "blk",     "eventfd",  "timerfd", "signalfd", "epoll",
		"inotify", "memfd",   "pidfd",    "anon",
	};
	return (t >= 0 && t < (int)(sizeof(names) / sizeof(names[0]))) ? names[t] : "?";
}

#endif
