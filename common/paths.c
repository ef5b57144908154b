#include "paths.h"
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fp_mkdir_p(const char *path, unsigned mode, fp_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return fp_fail(err, ENAMETOOLONG, "path too long: %s", path);
	for (char *p = tmp + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			*p = '\0';
			if (mkdir(tmp, mode) < 0 && errno != EEXIST)
				return fp_fail(err, errno, "cannot create directory %s: %s", tmp,
					       strerror(errno));
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

int fp_home(char *buf, size_t len, int create, fp_error *err)
{
	struct fp_config_value cv;
	const char *env = fp_setting("home", &cv);
	int n;
	if (env && *env) {
		n = snprintf(buf, len, "%s", env);
	} else if (geteuid() == 0) {
		n = snprintf(buf, len, "/var/lib/forkpoint");
	} else {
		const char *xdg = getenv("XDG_STATE_HOME");
		const char *home = getenv("HOME");
		if (xdg && *xdg)
			n = snprintf(buf, len, "%s/forkpoint", xdg);
		else if (home && *home)
			n = snprintf(buf, len, "%s/.local/state/forkpoint", home);
		else
			return fp_fail(err, EINVAL,
				       "cannot choose a state directory: HOME is not set; set FORKPOINT_HOME");
	}
	if (n < 0 || (size_t)n >= len)
		return fp_fail(err, ENAMETOOLONG, "FORKPOINT_HOME path too long");
	if (create && fp_mkdir_p(buf, 0700, err) < 0)
		return fp_wrap(err, "state directory (set FORKPOINT_HOME to a writable directory)");
	/* The tree holds process memory and is written by root: owner only. */
	struct stat st;
	if ((create || lstat(buf, &st) == 0) && fp_check_private_dir(buf, "FORKPOINT_HOME", true, err) < 0)
		return -1;
	return 0;
}

int fp_check_private_dir(const char *path, const char *what, bool follow_link, fp_error *err)
{
	struct stat st;
	uid_t me = geteuid();
	if (lstat(path, &st) < 0)
		return fp_fail(err, errno, "%s %s: %s", what, path, strerror(errno));
	if (S_ISLNK(st.st_mode)) {
		if (!follow_link || (st.st_uid != me && st.st_uid != 0))
			return fp_fail_code(err, FP_EXIT_PERM, ELOOP,
					    "%s %s is a symbolic link (owned by uid %u): refusing to keep state through "
					    "it; use the directory itself",
					    what, path, (unsigned)st.st_uid);
		if (stat(path, &st) < 0)
			return fp_fail(err, errno, "%s %s: %s", what, path, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return fp_fail(err, ENOTDIR, "%s %s is not a directory", what, path);
	if (st.st_uid != me)
		return fp_fail_code(err, FP_EXIT_PERM, EPERM,
				    "%s %s belongs to uid %u, not to you (uid %u): someone else controls what is in it, so "
				    "forkpoint refuses it; use a directory of your own (FORKPOINT_HOME)",
				    what, path, (unsigned)st.st_uid, (unsigned)me);
	if (st.st_mode & 022)
		return fp_fail_code(err, FP_EXIT_PERM, EPERM,
				    "%s %s is writable by others (mode %03o): anyone could plant links in it, so forkpoint "
				    "refuses it; check what is in it, then chmod 700 it",
				    what, path, (unsigned)(st.st_mode & 0777));
	if ((st.st_mode & 077) && chmod(path, 0700) < 0)
		return fp_fail(err, errno, "cannot make %s %s private (chmod 700): %s", what, path, strerror(errno));
	return 0;
}

int fp_open_write(const char *path, bool user_named, fp_error *err)
{
	const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK;
	int fd = open(path, flags | O_NOFOLLOW, 0600);
	struct stat st;
	if (fd < 0 && errno == ELOOP) {
		bool own = lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid == geteuid();
		if (!user_named || !own)
			return fp_fail_code(err, FP_EXIT_PERM, ELOOP,
					    "%s is a symbolic link%s: forkpoint does not write through it (it could point "
					    "anywhere); remove it or name another file",
					    path, own ? "" : ", made by another user");
		fd = open(path, flags, 0600);
	}
	if (fd < 0)
		return fp_fail(err, errno, "cannot create %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
		close(fd);
		return fp_fail(err, EINVAL, "%s is not a regular file: refusing to write to it", path);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int fp_exe_dir(char *buf, size_t len, fp_error *err)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return fp_fail(err, errno, "cannot read /proc/self/exe: %s (is /proc mounted?)",
			       strerror(errno));
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (snprintf(buf, len, "%s", exe) >= (int)len)
		return fp_fail(err, ENAMETOOLONG, "executable path too long");
	return 0;
}

int fp_shim_path(char *buf, size_t len, fp_error *err)
{
	struct fp_config_value cv;
	const char *env = fp_setting("shim", &cv);
	if (env && *env) {
		if (access(env, R_OK) < 0)
			return fp_fail(err, errno, "FORKPOINT_SHIM=%s: %s", env, strerror(errno));
		if (env[0] != '/')
			return fp_fail(err, EINVAL, "FORKPOINT_SHIM must be an absolute path, not %s", env);
		snprintf(buf, len, "%s", env);
		return 0;
	}
	/* Next to the program (bin/../lib), or, when this code runs inside
	 * libforkpoint.so in someone else's program (a Python interpreter),
	 * next to the library (lib/forkpoint/, or lib/ in the build tree). */
	char dirs[2][PATH_MAX];
	if (fp_exe_dir(dirs[0], sizeof(dirs[0]), err) < 0)
		return -1;
	dirs[1][0] = '\0';
	Dl_info dl;
	if (dladdr((void *)fp_shim_path, &dl) && dl.dli_fname && strchr(dl.dli_fname, '/')) {
		snprintf(dirs[1], sizeof(dirs[1]), "%s", dl.dli_fname);
		*strrchr(dirs[1], '/') = '\0';
	}
	const char *rel[2][2] = { { "../lib/forkpoint/libforkpoint-preload.so", "../lib/libforkpoint-preload.so" },
				  { "forkpoint/libforkpoint-preload.so", "libforkpoint-preload.so" } };
	for (size_t d = 0; d < 2; d++)
		for (size_t i = 0; dirs[d][0] && i < 2; i++) {
			char cand[PATH_MAX + 64], real[PATH_MAX];
			snprintf(cand, sizeof(cand), "%s/%s", dirs[d], rel[d][i]);
			if (realpath(cand, real) && access(real, R_OK) == 0) {
				if (snprintf(buf, len, "%s", real) >= (int)len)
					return fp_fail(err, ENAMETOOLONG, "shim path too long");
				return 0;
			}
		}
	return fp_fail(err, ENOENT,
		       "cannot find libforkpoint-preload.so next to %s (looked in ../lib/forkpoint and ../lib)%s%s; "
		       "rebuild with `make` or set FORKPOINT_SHIM", dirs[0], dirs[1][0] ? " or next to " : "", dirs[1]);
}

static int write_replace(const char *path, const void *data, size_t len, bool durable, fp_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return fp_fail(err, ENAMETOOLONG, "path too long: %s", path);
	unlink(tmp); /* ours, left by a crash; never written through */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fp_fail(err, errno, "cannot create %s: %s", tmp, strerror(errno));
	const char *p = data;
	size_t left = len;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			close(fd);
			unlink(tmp);
			return fp_fail(err, e, "cannot write %s: %s", tmp, strerror(e));
		}
		p += w;
		left -= (size_t)w;
	}
	if (durable && fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return fp_fail(err, e, "cannot fsync %s: %s", tmp, strerror(e));
	}
	close(fd);
	/* Not durable: swap the names instead of renaming over the old file.
	 * ext4 (auto_da_alloc) flushes a file renamed over another one, which
	 * costs milliseconds under I/O load; an exchange does not, and readers
	 * still see the old content or the new, never neither. */
	if (!durable && renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0) {
		unlink(tmp);
		return 0;
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return fp_fail(err, e, "cannot rename %s to %s: %s", tmp, path, strerror(e));
	}
	return 0;
}

int fp_write_file_atomic(const char *path, const void *data, size_t len, fp_error *err)
{
	return write_replace(path, data, len, true, err);
}

int fp_write_file_replace(const char *path, const void *data, size_t len, fp_error *err)
{
	return write_replace(path, data, len, false, err);
}

long fp_read_file(const char *path, char *buf, size_t len, fp_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fp_fail(err, errno, "cannot open %s: %s", path, strerror(errno));
	size_t got = 0;
	while (got + 1 < len) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return fp_fail(err, e, "cannot read %s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (long)got;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

int fp_rm_rf(const char *path, fp_error *err)
{
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return fp_fail(err, errno, "cannot remove %s: %s", path, strerror(errno));
	return 0;
}
