/* inotify, as CRIU's INOTIFY file entries. The fd's fdinfo lists each watch:
 *
 *   inotify wd:N ino:X sdev:X mask:X ignored_mask:X fhandle-bytes:X
 *           fhandle-type:X f_handle:HEX
 *
 * The handle is opened (open_by_handle_at, relative to a mount of the
 * watch's filesystem) to learn the watched file's path, written next to
 * the handle (fh_entry's path) for the restorer. A watch on a file deleted
 * since (its inode still alive: open somewhere) has no path to come back
 * on: it is left out, and the dump log says so; after a restore that wd
 * reports nothing more, as if the file were gone. Events queued and not yet
 * read cannot be saved: such an inotify is refused (dump again once the
 * program has read them). */
#include "dump/dump_int.h"

#include "fhandle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The watched file's path through its handle; 1 found, 0 deleted (or its
 * handle no longer opens), -1 on a malformed handle. */
static int handle_path(cr_inotify_wd *w, const char *hex, char *path, size_t len)
{
	uint8_t bytes[CR_FH_WORDS * 8] = { 0 };
	if (w->f_handle.bytes > sizeof(bytes))
		return -1;
	for (uint32_t i = 0; i < w->f_handle.bytes; i++) {
		int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(w->f_handle.handle, bytes, sizeof(bytes));
	w->f_handle.n_handle = CR_FH_WORDS;
	int fd = fp_open_handle(w->s_dev, w->f_handle.bytes, (int)w->f_handle.type, bytes);
	if (fd < 0)
		return 0;
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, len - 1);
	close(fd);
	if (n <= 0)
		return 0;
	path[n] = 0;
	const char *del = strstr(path, " (deleted)");
	return path[0] == '/' && !(del && !del[10]);
}

static int pending_events(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int s = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	int n = -1;
	if (s >= 0 && ioctl(s, FIONREAD, &n) < 0)
		n = -1;
	if (s >= 0)
		close(s);
	if (pidfd >= 0)
		close(pidfd);
	return n;
}

int dump_inotify_entry(struct dump_ctx *c, pid_t pid, int fd, const char *info, cr_file *f, fp_error *err)
{
	int queued = pending_events(pid, fd);
	if (queued < 0)
		return fp_fail(err, errno, "cannot ask inotify fd %d of %d for its queued events: %s", fd, pid, strerror(errno));
	if (queued > 0 && c->o->drop_waiting)
		dlog(c, "inotify fd %d of %d: %d bytes of events not yet read left out", fd, pid, queued);
	else if (queued > 0)
		return fp_fail_code(err, FP_EXIT_UNSUPPORTED, EAGAIN,
				    "inotify fd %d of %d has %d bytes of events not yet read, which a snapshot cannot "
				    "keep; dump again once the program has read them",
				    fd, pid, queued);
	f->has_ify = true;
	size_t cap = 0;
	for (const char *p = strstr(info, "inotify wd:"); p; p = strstr(p + 11, "inotify wd:")) {
		cr_inotify_wd w = { 0 };
		unsigned long long ino;
		unsigned wd, sdev, mask, ign, hb;
		int ht, off = 0;
		if (sscanf(p, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x "
			      "f_handle:%n",
			   &wd, &ino, &sdev, &mask, &ign, &hb, &ht, &off) != 7 || !off)
			return fp_fail(err, EIO, "malformed watch in the fdinfo of inotify %d of %d: %.80s", fd, pid, p);
		w.id = f->id, w.wd = wd, w.i_ino = ino, w.s_dev = sdev, w.mask = mask, w.ignored_mask = ign;
		w.f_handle.bytes = hb, w.f_handle.type = (uint32_t)ht;
		char path[PATH_MAX];
		int r = handle_path(&w, p + off, path, sizeof(path));
		if (r < 0)
			return fp_fail(err, EIO, "inotify fd %d of %d: watch %u has a file handle of %u bytes", fd, pid, wd, hb);
		if (!r) {
			dlog(c, "WARNING: inotify fd %d of %d: watch %u is on inode %llu, deleted since: left out (after a "
				"restore it reports nothing)", fd, pid, wd, ino);
			continue;
		}
		if (f->ify.n_wd == cap) {
			cap = cap ? cap * 2 : 8;
			cr_inotify_wd *n = realloc(f->ify.wd, cap * sizeof(*n));
			if (!n)
				return fp_fail(err, ENOMEM, "out of memory");
			f->ify.wd = n;
		}
		w.f_handle.path = strdup(path);
		if (!w.f_handle.path)
			return fp_fail(err, ENOMEM, "out of memory");
		f->ify.wd[f->ify.n_wd++] = w;
		dlogv(c, "inotify fd %d of %d: watch %u mask %#x on %s", fd, pid, wd, mask, path);
	}
	return 0;
}
