/* The new mount API for overlayfs: one fsconfig call per lower layer, so a
 * chain is limited by the kernel's 500 layers, not by mount(2)'s one-page
 * option string (about 190 absolute paths). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "overlay/ws_int.h"

/* Appends the kernel's fs_context log (the reason behind an EINVAL). */
static void drain_log(int fs, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	char line[512];
	ssize_t r;
	while ((r = read(fs, line, sizeof(line) - 1)) > 0) {
		line[r] = '\0';
		int w = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", line);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

static int cfg(int fs, const char *key, const char *val, fp_error *err)
{
	if (fsconfig(fs, FSCONFIG_SET_STRING, key, val, 0) == 0)
		return 0;
	int e = errno;
	char log[1024];
	drain_log(fs, log, sizeof(log));
	return fp_fail(err, e, "overlay option %s=%s refused: %s%s%s", key, val, strerror(e),
		       log[0] ? " (kernel: " : "", log[0] ? log : "");
}

int ovl_build(const struct ovl_mount_spec *s, fp_error *err)
{
	if (s->nlowers == 0 || s->nlowers > FP_WS_MAX_LOWERS)
		return fp_fail(err, EINVAL, "an overlay needs 1 to %d lower layers, not %u",
			       FP_WS_MAX_LOWERS, s->nlowers);
	int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return fp_fail(err, errno,
			       "fsopen(overlay): %s (is the overlay module loaded and are we root?)",
			       strerror(errno));
	/* redirect_dir=on: a directory renamed after it went to a lower layer
	 * (every directory, after a snapshot) would otherwise fail with EXDEV. */
	if (cfg(fs, "redirect_dir", "on", err) < 0 || cfg(fs, "index", "off", err) < 0 ||
	    cfg(fs, "metacopy", "off", err) < 0 || cfg(fs, "xino", "auto", err) < 0)
		goto fail;
	for (unsigned i = 0; i < s->nlowers; i++)
		if (cfg(fs, "lowerdir+", s->lowers[i], err) < 0)
			goto fail;
	if (s->upper && (cfg(fs, "upperdir", s->upper, err) < 0 || cfg(fs, "workdir", s->work, err) < 0))
		goto fail;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int e = errno;
		char log[1024];
		drain_log(fs, log, sizeof(log));
		fp_fail(err, e, "cannot create the overlay (%u lowers, upper %s): %s%s%s%s", s->nlowers,
			s->upper ? s->upper : "none", strerror(e), log[0] ? " (kernel: " : "", log,
			log[0] ? ")" : "");
		goto fail;
	}
	int m = fsmount(fs, FSMOUNT_CLOEXEC, s->upper ? 0 : MOUNT_ATTR_RDONLY);
	if (m < 0) {
		fp_fail(err, errno, "fsmount(overlay): %s", strerror(errno));
		goto fail;
	}
	close(fs);
	return m;
fail:
	close(fs);
	return -1;
}

int ovl_attach(int mnt_fd, const char *target, fp_error *err)
{
	if (move_mount(mnt_fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fp_fail(err, errno, "cannot mount the workspace on %s: %s", target,
			       strerror(errno));
	return 0;
}

int ovl_detach(int mnt_fd, fp_error *err)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", mnt_fd);
	if (umount2(p, MNT_DETACH) < 0)
		return fp_fail(err, errno, "cannot detach the old workspace mount: %s", strerror(errno));
	return 0;
}

int ovl_set_ro(int mnt_fd, bool ro, fp_error *err)
{
	struct mount_attr a = { 0 };
	if (ro)
		a.attr_set = MOUNT_ATTR_RDONLY;
	else
		a.attr_clr = MOUNT_ATTR_RDONLY;
	if (syscall(SYS_mount_setattr, mnt_fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0) {
		if (errno == EBUSY && ro)
			return fp_fail(err, EBUSY,
				       "a process still has a file open for writing (or a shared "
				       "writable mapping) in the workspace mount being frozen; every "
				       "such reference must be re-pointed before the commit");
		return fp_fail(err, errno, "mount_setattr(%s): %s", ro ? "ro" : "rw", strerror(errno));
	}
	return 0;
}

uint64_t ovl_mnt_id_fd(int fd)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0)
		return 0;
	return sx.stx_mnt_id;
}

int fp_ws_private_ns(fp_error *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return fp_fail(err, errno, "cannot create a private mount namespace: %s (needs root "
				      "or CAP_SYS_ADMIN)", strerror(errno));
	/* Slave, not private: mounts made on the host still appear inside, and
	 * nothing we mount leaks out. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return fp_fail(err, errno, "cannot make / a slave mount: %s", strerror(errno));
	return 0;
}
