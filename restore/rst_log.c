/* The native restorer's log: one line per step, with the time since start,
 * in the same spirit (and -v levels) as CRIU's restore.log. */
#include "restore/rst_int.h"

#include "common/paths.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long rst_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rst_log_open(rst_log *l, const char *path, bool user_named, int level, fp_error *err)
{
	memset(l, 0, sizeof(*l));
	l->level = level > 0 ? level : 4;
	l->t0_ns = rst_now_ns();
	if (!path || !path[0])
		return 0;
	int fd = fp_open_write(path, user_named, err);
	if (fd < 0)
		return fp_wrap(err, "the restore log");
	l->f = fdopen(fd, "w");
	if (!l->f) {
		close(fd);
		return fp_fail(err, errno, "cannot open the log file %s: %s", path, strerror(errno));
	}
	return 0;
}

void rst_log_close(rst_log *l)
{
	if (l->f)
		fclose(l->f);
	l->f = NULL;
}

void rst_logf(rst_log *l, int level, const char *fmt, ...)
{
	if (!l || !l->f || level > l->level)
		return;
	long long t = rst_now_ns() - l->t0_ns;
	fprintf(l->f, "(%02lld.%06lld) %s", t / 1000000000LL, (t % 1000000000LL) / 1000,
		level == 1 ? "Error: " : level == 2 ? "Warn: " : "");
	va_list ap;
	va_start(ap, fmt);
	vfprintf(l->f, fmt, ap);
	va_end(ap);
	fputc('\n', l->f);
}

void rst_log_default(char *buf, size_t len)
{
	char dir[PATH_MAX];
	fp_error e;
	buf[0] = '\0';
	if (fp_home(dir, sizeof(dir) - 8, 1, &e) < 0)
		return;
	strcat(dir, "/logs");
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || fp_check_private_dir(dir, "the log directory", false, &e) < 0)
		return;
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t old = time(NULL) - 24 * 3600;
	while (d && (de = readdir(d))) {
		struct stat st;
		if (!strncmp(de->d_name, "restore-", 8) && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime < old)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d)
		closedir(d);
	snprintf(buf, len, "%s/restore-%d.log", dir, (int)getpid());
}
