/* The native restorer's log: one line per step, with the time since start,
 * in the same spirit (and -v levels) as CRIU's restore.log. */
#include "restore/rst_int.h"

#include <errno.h>
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

int rst_log_open(rst_log *l, const char *path, int level, fp_error *err)
{
	memset(l, 0, sizeof(*l));
	l->level = level > 0 ? level : 4;
	l->t0_ns = rst_now_ns();
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fp_fail(err, errno, "cannot create the log file %s: %s", path, strerror(errno));
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
