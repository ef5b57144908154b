/* inotify in a native restore. The instance is made here, in the restorer,
 * with its watches under their old numbers, and the process takes it with
 * pidfd_getfd (one open file, shared like any other by the processes that
 * held it).
 *
 * A watch is added by the path the dump wrote next to its file handle, or,
 * in CRIU's images that have none, through the handle itself
 * (open_by_handle_at on a mount of its filesystem). The kernel hands out
 * watch numbers in rising order from the last one it gave: the next one is
 * set (INOTIFY_IOC_SETNEXTWD) before each watch is added; without that
 * ioctl, a number below the one wanted is taken and removed again until
 * the wanted one comes, and each removal queues an IN_IGNORED event, read
 * away at the end (the dump refuses an inotify with events not yet read). */
#include "restore/rst_int.h"

#include "fhandle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define WD_TRIES 100000 /* numbers skipped to reach one watch's */
#define FP_INOTIFY_IOC_SETNEXTWD _IOW('I', 0, int32_t)

/* What to hand inotify_add_watch for w: its path, or /proc/self/fd/N of
 * the file its handle opens (*held: that fd, to close after). */
static const char *watch_path(const cr_inotify_wd *w, char *buf, size_t len, int *held)
{
	*held = -1;
	if (w->f_handle.path)
		return w->f_handle.path;
	*held = fp_open_handle(w->s_dev, w->f_handle.bytes, (int)w->f_handle.type, w->f_handle.handle);
	if (*held < 0)
		return NULL;
	snprintf(buf, len, "/proc/self/fd/%d", *held);
	return buf;
}

static int cmp_wd(const void *a, const void *b)
{
	const cr_inotify_wd *x = *(const cr_inotify_wd *const *)a, *y = *(const cr_inotify_wd *const *)b;
	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int add_watches(int ifd, const cr_inotify *ify, fp_error *err)
{
	const cr_inotify_wd **order = calloc(ify->n_wd ? ify->n_wd : 1, sizeof(*order));
	if (!order)
		return fp_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < ify->n_wd; i++)
		order[i] = &ify->wd[i];
	qsort(order, ify->n_wd, sizeof(*order), cmp_wd);
	int rc = 0;
	for (size_t i = 0; i < ify->n_wd && !rc; i++) {
		const cr_inotify_wd *w = order[i];
		char buf[64];
		int held;
		const char *path = watch_path(w, buf, sizeof(buf), &held);
		if (!path) {
			rc = fp_fail(err, ENOENT, "inotify watch %u: its file (inode %llu) cannot be found again", w->wd,
				     (unsigned long long)w->i_ino);
			break;
		}
		int got = -1;
		ioctl(ifd, FP_INOTIFY_IOC_SETNEXTWD, (long)w->wd); /* else the loop finds it */
		for (unsigned k = 0; k < WD_TRIES; k++) {
			got = inotify_add_watch(ifd, path, w->mask);
			if (got < 0 || (uint32_t)got >= w->wd)
				break;
			inotify_rm_watch(ifd, got);
		}
		if (got < 0)
			rc = fp_fail(err, errno, "inotify watch %u on %s: %s", w->wd, w->f_handle.path ? path : "its file",
				     strerror(errno));
		else if ((uint32_t)got != w->wd)
			rc = fp_fail(err, EINVAL, "inotify watch %u on %s came back as watch %d", w->wd,
				     w->f_handle.path ? path : "its file", got);
		if (held >= 0)
			close(held);
	}
	free(order);
	return rc;
}

int rst_inotify_fd(rst_proc *p, const cr_file *f, int *fd, fp_error *err)
{
	if (!f->has_ify)
		return fp_fail(err, EINVAL, "files.img entry %u: an inotify without its data", f->id);
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return fp_fail(err, errno, "inotify_init1: %s (fs.inotify.max_user_instances?)", strerror(errno));
	int rc = add_watches(ifd, &f->ify, err);
	char drain[4096];
	while (!rc && read(ifd, drain, sizeof(drain)) > 0)
		;
	if (!rc && !(f->ify.flags & O_NONBLOCK) && fcntl(ifd, F_SETFL, 0))
		rc = fp_fail(err, errno, "fcntl: %s", strerror(errno));
	if (!rc)
		rc = rst_fetch_fd(p, getpid(), ifd, fd, err);
	close(ifd);
	if (!rc)
		rst_logf(p->log, 3, "inotify %u: %zu watches", f->id, f->ify.n_wd);
	return rc;
}
