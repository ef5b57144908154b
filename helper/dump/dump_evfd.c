/* Event fds: eventfd, epoll, signalfd and timerfd, as CRIU's EVENTFD,
 * EVENTPOLL, SIGNALFD and TIMERFD file entries (inotify: dump_inotify.c). Everything comes from
 * /proc/PID/fdinfo/FD, which the kernel fills for exactly this purpose:
 *
 *   eventfd   eventfd-count (hex), eventfd-semaphore
 *   epoll     one "tfd: N events: X data: X pos:N ino:X sdev:X" per watch
 *   signalfd  sigmask (hex)
 *   timerfd   clockid, ticks (expirations not yet read), settime flags,
 *             it_value (time left, relative) and it_interval
 *
 * An epoll watch names the watched file by the fd number it had when it was
 * added, which may have been closed (or reused) since while the file stays
 * open under another number. The watch lives on the open file: the dump
 * finds an fd of the process on that very file (kcmp KCMP_EPOLL_TFD) and
 * writes that number, as CRIU does, since a restorer re-adds each watch by
 * number. A watched file the process no longer holds is refused. */
#include "dump/dump_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

/* A watch list can be long: fdinfo is read whole. */
#define FDINFO_MAX (1u << 20)

static char *read_fdinfo(pid_t pid, int fd, fp_error *err)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	char *buf = malloc(FDINFO_MAX);
	if (!buf) {
		fp_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	long n = dump_read_proc(path, buf, FDINFO_MAX);
	if (n <= 0) {
		fp_fail(err, errno ? errno : EIO, "cannot read %s", path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* The number after "key" (base: 10, 16 or 8), or -1 if the key is missing. */
static int field(const char *buf, const char *key, int base, uint64_t *out)
{
	const char *p = strstr(buf, key);
	if (!p)
		return -1;
	p += strlen(key);
	char *end;
	*out = strtoull(p, &end, base);
	return end == p ? -1 : 0;
}

static int eventfd_entry(pid_t pid, int fd, const char *info, cr_file *f, fp_error *err)
{
	uint64_t count, sem = 0;
	if (field(info, "eventfd-count:", 16, &count))
		return fp_fail(err, EIO, "fdinfo of eventfd %d of %d has no eventfd-count", fd, pid);
	if (field(info, "eventfd-semaphore:", 10, &sem) == 0 && sem)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
				    "fd %d of %d is an eventfd in semaphore mode (EFD_SEMAPHORE), which the image format "
				    "cannot express; CRIU cannot keep it either",
				    fd, pid);
	f->has_efd = true;
	f->efd.counter = count;
	return 0;
}

static int signalfd_entry(pid_t pid, int fd, const char *info, cr_file *f, fp_error *err)
{
	uint64_t mask;
	if (field(info, "sigmask:", 16, &mask))
		return fp_fail(err, EIO, "fdinfo of signalfd %d of %d has no sigmask", fd, pid);
	f->has_sgfd = true;
	f->sgfd.sigmask = mask;
	return 0;
}

static int timerfd_entry(pid_t pid, int fd, const char *info, cr_file *f, fp_error *err)
{
	uint64_t clk, ticks, sflags;
	unsigned long long vs, vn, is, in;
	const char *v = strstr(info, "it_value: (");
	const char *i = strstr(info, "it_interval: (");
	if (field(info, "clockid:", 10, &clk) || field(info, "ticks:", 10, &ticks) ||
	    field(info, "settime flags:", 8, &sflags) || !v || !i || sscanf(v, "it_value: (%llu, %llu)", &vs, &vn) != 2 ||
	    sscanf(i, "it_interval: (%llu, %llu)", &is, &in) != 2)
		return fp_fail(err, EIO, "malformed fdinfo of timerfd %d of %d", fd, pid);
	f->has_tfd = true;
	f->tfd.clockid = (uint32_t)clk;
	f->tfd.ticks = ticks;
	f->tfd.settime_flags = (uint32_t)sflags;
	f->tfd.vsec = vs, f->tfd.vnsec = vn, f->tfd.isec = is, f->tfd.insec = in;
	return 0;
}

static bool is_watched(pid_t pid, int epfd, int tfd, int cand, unsigned long long ino, unsigned sdev)
{
	char path[96];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, cand);
	if (stat(path, &st) < 0 || st.st_ino != ino || st.st_dev != (dev_t)sdev)
		return false;
	struct kcmp_epoll_slot slot = { (uint32_t)epfd, (uint32_t)tfd, 0 };
	return syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, cand, &slot) == 0;
}

/* An fd of pid on the file epfd watches as tfd: tfd itself if it still is
 * that open file, else any that is; -1 if none. */
static int watched_fd(pid_t pid, int epfd, int tfd, unsigned long long ino, unsigned sdev)
{
	if (is_watched(pid, epfd, tfd, tfd, ino, sdev))
		return tfd;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	int found = -1;
	for (struct dirent *e; d && found < 0 && (e = readdir(d));)
		if (e->d_name[0] != '.' && is_watched(pid, epfd, tfd, atoi(e->d_name), ino, sdev))
			found = atoi(e->d_name);
	if (d)
		closedir(d);
	return found;
}

static int epoll_entry(pid_t pid, int fd, const char *info, cr_file *f, fp_error *err)
{
	size_t cap = 0;
	f->has_epfd = true;
	for (const char *p = strstr(info, "tfd:"); p; p = strstr(p + 4, "tfd:")) {
		int tfd;
		unsigned events;
		unsigned long long data, ino;
		long long pos;
		unsigned sdev;
		if (sscanf(p, "tfd: %d events: %x data: %llx pos:%lli ino:%llx sdev:%x", &tfd, &events, &data, &pos, &ino,
			   &sdev) != 6)
			return fp_fail(err, EIO, "malformed watch in the fdinfo of epoll %d of %d: %.60s", fd, pid, p);
		int now = watched_fd(pid, fd, tfd, ino, sdev);
		if (now < 0)
			return fp_fail_code(err, FP_EXIT_UNSUPPORTED, ENOTSUP,
					    "epoll fd %d of %d watches a file (added as fd %d, inode %llu) that the process no "
					    "longer holds open; forkpoint re-adds a watch through an fd on its file",
					    fd, pid, tfd, ino);
		tfd = now;
		if (f->epfd.n_tfd == cap) {
			cap = cap ? cap * 2 : 8;
			cr_epoll_tfd *n = realloc(f->epfd.tfd, cap * sizeof(*n));
			if (!n)
				return fp_fail(err, ENOMEM, "out of memory");
			f->epfd.tfd = n;
		}
		cr_epoll_tfd *t = &f->epfd.tfd[f->epfd.n_tfd++];
		memset(t, 0, sizeof(*t));
		t->id = f->id;
		t->tfd = (uint32_t)tfd;
		t->events = events;
		t->data = data;
		t->has_dev = true;
		t->dev = sdev;
		t->has_inode = true;
		t->inode = ino;
		t->has_pos = true;
		t->pos = (uint64_t)pos;
	}
	return 0;
}

int dump_event_kind(const char *link)
{
	static const struct { const char *name; int type; } kinds[] = {
		{ "anon_inode:[eventfd]", CR_FD_EVENTFD },
		{ "anon_inode:[eventpoll]", CR_FD_EVENTPOLL },
		{ "anon_inode:[signalfd]", CR_FD_SIGNALFD },
		{ "anon_inode:[timerfd]", CR_FD_TIMERFD },
		{ "anon_inode:inotify", CR_FD_INOTIFY },
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(link, kinds[i].name))
			return kinds[i].type;
	return 0;
}

int dump_event_file(struct dump_ctx *c, pid_t pid, int fd, uint32_t flags, cr_file *f, fp_error *err)
{
	char *info = read_fdinfo(pid, fd, err);
	if (!info)
		return -1;
	int rc;
	switch (f->type) {
	case CR_FD_EVENTFD:
		rc = eventfd_entry(pid, fd, info, f, err);
		f->efd.id = f->id, f->efd.flags = flags;
		break;
	case CR_FD_EVENTPOLL:
		rc = epoll_entry(pid, fd, info, f, err);
		f->epfd.id = f->id, f->epfd.flags = flags;
		break;
	case CR_FD_SIGNALFD:
		rc = signalfd_entry(pid, fd, info, f, err);
		f->sgfd.id = f->id, f->sgfd.flags = flags;
		break;
	case CR_FD_TIMERFD:
		rc = timerfd_entry(pid, fd, info, f, err);
		f->tfd.id = f->id, f->tfd.flags = flags;
		break;
	case CR_FD_INOTIFY:
		f->ify.id = f->id, f->ify.flags = flags;
		rc = dump_inotify_entry(c, pid, fd, info, f, err);
		break;
	default:
		rc = fp_fail(err, EINVAL, "internal: fd %d of %d is not an event fd", fd, pid);
	}
	free(info);
	return rc;
}
